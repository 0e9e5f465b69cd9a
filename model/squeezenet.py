"""SqueezeNet v1.0 / v1.1 as Keras 3 models built from model/architecture.py.

Input is 227x227x3 BGR, 0-255 with the Caffe mean (104, 117, 123) subtracted (model/imagenet.py).
Layers are stock Keras layers with the architecture's names; a Fire module is
squeeze (Conv2D 1x1, ReLU) -> expand1x1 and expand3x3 (Conv2D, ReLU) -> Concatenate (`fireN_concat`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from model.architecture import Architecture, Conv, Fire, GlobalAvgPool, MaxPool, get_architecture, output_shape


def _conv(keras, conv: Conv, x):
    if conv.pad and not (conv.stride == 1 and conv.kernel == 2 * conv.pad + 1):
        # e.g. conv10's pad 1 on a 1x1 kernel: an explicit border of zeros (output grows by 2)
        x = keras.layers.ZeroPadding2D(conv.pad, name=f"{conv.name}_pad")(x)
        padding = "valid"
    else:
        padding = "same" if conv.pad else "valid"
    return keras.layers.Conv2D(conv.filters, conv.kernel, strides=conv.stride, padding=padding,
                               activation="relu" if conv.relu else None, name=conv.name)(x)


def _maxpool(keras, pool: MaxPool, x, in_shape):
    # Caffe rounds the pooled size up; pad bottom/right so Keras' 'valid' (round down) gives the same
    # size. Zero padding equals -inf padding here because every pool follows a ReLU (inputs >= 0).
    out_h, out_w, _ = output_shape(pool, in_shape)
    pad_h = (out_h - 1) * pool.stride + pool.kernel - in_shape[0]
    pad_w = (out_w - 1) * pool.stride + pool.kernel - in_shape[1]
    if pad_h > 0 or pad_w > 0:
        x = keras.layers.ZeroPadding2D(((0, max(pad_h, 0)), (0, max(pad_w, 0))), name=f"{pool.name}_ceilpad")(x)
    return keras.layers.MaxPooling2D(pool.kernel, pool.stride, padding="valid", name=pool.name)(x)


def build_keras(arch: Architecture | str = "squeezenet1_0", input_size: int | None = None,
                softmax: bool = True, weights: dict[str, tuple[np.ndarray, np.ndarray]] | None = None):
    """Build the Keras model; `weights` maps conv name -> (kernel HWIO, bias).

    softmax=False ends at the global average pool (logits): what the hardware computes.
    """
    import keras

    if isinstance(arch, str):
        arch = get_architecture(arch)
    size = input_size or arch.input_size
    inputs = keras.Input((size, size, arch.in_channels), name="data")
    x = inputs
    for layer, in_shape, _ in arch.shapes(size):
        if isinstance(layer, Conv):
            x = _conv(keras, layer, x)
        elif isinstance(layer, MaxPool):
            x = _maxpool(keras, layer, x, in_shape)
        elif isinstance(layer, Fire):
            squeeze, expand1x1, expand3x3 = layer.convs
            s = _conv(keras, squeeze, x)
            y = keras.layers.Concatenate(axis=-1, name=f"{layer.name}_concat")(
                [_conv(keras, expand1x1, s), _conv(keras, expand3x3, s)])
            x = keras.layers.Add(name=f"{layer.name}_bypass")([x, y]) if layer.bypass else y
        elif isinstance(layer, GlobalAvgPool):
            x = keras.layers.GlobalAveragePooling2D(name=layer.name)(x)
    if softmax:
        x = keras.layers.Softmax(name="prob")(x)
    model = keras.Model(inputs, x, name=arch.name)
    if weights is not None:
        set_conv_weights(model, weights)
    return model


def keras_weights(params: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(weight OIHW, bias) per conv, as quant/ and hw/ hold them -> (kernel HWIO, bias) as Keras wants them."""
    return {name: (np.ascontiguousarray(w.transpose(2, 3, 1, 0)), b) for name, (w, b) in params.items()}


def set_conv_weights(model, weights: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    """Load (kernel HWIO, bias) into every Conv2D; every conv must be given, no extra names."""
    convs = {l.name: l for l in model.layers if l.__class__.__name__ == "Conv2D"}
    missing, extra = set(convs) - set(weights), set(weights) - set(convs)
    if missing or extra:
        raise ValueError(f"weights do not match model {model.name}: missing {sorted(missing)}, unknown {sorted(extra)}")
    for name, (kernel, bias) in weights.items():
        want = tuple(convs[name].kernel.shape)
        if tuple(kernel.shape) != want:
            raise ValueError(f"{name}: kernel shape {tuple(kernel.shape)} does not match the model's {want}")
        convs[name].set_weights([kernel, bias])


def load_pretrained(name: str = "squeezenet1_0", weights_path: str | Path | None = None,
                    softmax: bool = True, input_size: int | None = None):
    """The real model: SqueezeNet v1.0 with the Deep Compression ImageNet weights.

    No trained v1.1 weights ship with the project; build_keras('squeezenet1_1') gives the architecture.
    """
    from model import deep_compression

    if name != "squeezenet1_0":
        raise ValueError(f"no trained weights for {name!r}: only squeezenet1_0 ships with weights "
                         f"(use build_keras('{name}') for the architecture alone)")
    arch = get_architecture(name)
    layers = deep_compression.decode(weights_path or deep_compression.DEFAULT_PATH, arch)
    return build_keras(arch, input_size, softmax, keras_weights(deep_compression.float_params(layers)))
