"""A tiny SqueezeNet-shaped network for fast tests: every layer kind, Caffe round-up pooling, conv10 pad 1."""
import numpy as np

from model.architecture import Architecture, Conv, Fire, GlobalAvgPool, MaxPool


def tiny_arch() -> Architecture:
    # 19 -> conv 3x3/2 -> 9 -> pool -> 4 -> fire -> pool (round up: 4 -> 2, one padded border) -> fire
    # -> conv10 1x1 pad 1 -> 4x4 -> global average pool -> 10 classes
    return Architecture("tiny", 19, (Conv("conv1", 8, 3, stride=2), MaxPool("pool1"), Fire("fire2", 4, 6, 6),
                                     MaxPool("pool2"), Fire("fire3", 4, 6, 6), Conv("conv10", 10, 1, pad=1),
                                     GlobalAvgPool("pool10")), num_classes=10)


def tiny_params(arch: Architecture, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    params = {}
    for name, t in arch.conv_shapes().items():
        o, i, kh, kw = t["weight"]
        w = rng.normal(0, 1.5 / np.sqrt(i * kh * kw), (o, i, kh, kw)).astype(np.float32)
        w[rng.random(w.shape) < 0.3] = 0.0            # pruned, like the Deep Compression weights
        params[name] = (w, rng.normal(0.05, 0.1, o).astype(np.float32))
    return params


def tiny_images(n: int, seed: int = 1) -> np.ndarray:
    """Caffe-like inputs: integer pixels minus integer means."""
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n, 19, 19, 3)) - np.array([104, 117, 123])).astype(np.float32)
