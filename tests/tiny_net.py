"""The one tiny SqueezeNet-shaped network of the tests (quant/ and hw/ alike), random weights:

    34x34x3 -> conv1 3x3/2 (8) -> 16x16 -> pool1 3x3/2 (Caffe round-up: 16 -> 8, one padded border)
    -> fire2 (4 -> 8 + 8) -> fire3 (6 -> 12 + 12) -> pool3 3x3/2 (round-up again: 8 -> 4)
    -> conv10 1x1 pad 1 (10) -> 6x6 -> global average pool -> 10 classes

Every layer kind of SqueezeNet v1.0, both max pools needing Caffe's round-up padding, conv10's pad 1, two
Fire modules (so a Fire module feeds a Fire module), 30 % of the weights pruned to zero like Deep
Compression's. The fixtures built on it (calibration, 8-bit spec, emulator, Keras model) are in conftest.py.

`tiny_arch` takes two parameters only for the tests of unsupported networks: `pool=(2, 2)` (a max pool the
hardware has no kernel for) and `with_fire3=False` (a model that lacks layers the spec names). Every other
test uses the default network.
"""
import numpy as np

from model.architecture import Architecture, Conv, Fire, GlobalAvgPool, MaxPool

SIZE = 34
# hw folding for the C-simulation tests: folds both ways somewhere (reuse below and above a layer's inputs)
REUSE = {"conv1": 3, "fire2": 4, "fire3_expand3x3": 6, "pool1": 2, "conv10": 4}


def tiny_arch(pool=(3, 2), with_fire3=True) -> Architecture:
    fires = (Fire("fire2", 4, 8, 8),) + ((Fire("fire3", 6, 12, 12),) if with_fire3 else ())
    return Architecture("tiny_fire", SIZE, (Conv("conv1", 8, 3, stride=2), MaxPool("pool1", *pool), *fires,
                                            MaxPool("pool3", *pool), Conv("conv10", 10, 1, pad=1),
                                            GlobalAvgPool("pool10")), num_classes=10)


def tiny_params(arch: Architecture, seed: int = 0) -> dict:
    """He-scaled random weights, 30 % pruned, and positive-leaning biases, so that most logits are non-zero.
    conv1 is scaled down for Caffe-range pixels; conv10 up (x10), so that the logits spread like a trained
    classifier's (std ~6) and the softmax is peaked: the search's KL then means something (He scaling
    alone gives logits of std 0.5, a nearly uniform softmax)."""
    rng = np.random.default_rng(seed)
    params = {}
    for name, t in arch.conv_shapes().items():
        o, i, kh, kw = t["weight"]
        scale = np.sqrt(2.0 / (i * kh * kw)) * {"conv1": 1 / 80.0, "conv10": 10.0}.get(name, 1.0)
        w = (rng.standard_normal((o, i, kh, kw)) * scale).astype(np.float32)
        w[rng.random(w.shape) < 0.3] = 0.0            # pruned, like the Deep Compression weights
        params[name] = (w, rng.normal(0.3, 0.3, o).astype(np.float32))
    return params


def tiny_images(n: int, seed: int = 1) -> np.ndarray:
    """Caffe-like inputs: integer pixels minus integer means."""
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n, SIZE, SIZE, 3)) - np.array([104, 117, 123])).astype(np.float32)


def keras_model(arch: Architecture, params: dict):
    from model.squeezenet import build_keras, keras_weights

    return build_keras(arch, softmax=False, weights=keras_weights(params))


def moved_biases(spec, params: dict, seed: int = 0, step: float = 0.25) -> dict:
    """Bias codes other than the float biases rounded (as trained biases would be): each moved by about
    +-`step`, kept inside its layer's bias format."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, (_, b) in params.items():
        f = spec.layers[name].bias
        codes = f.quantize(np.asarray(b, np.float64))
        move = np.rint(rng.choice([-1, 1], codes.shape) * step * 2.0 ** f.frac).astype(np.int64)
        out[name] = np.clip(codes + move, f.min_code, f.max_code)
    return out
