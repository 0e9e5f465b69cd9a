"""SqueezeNet as plain data: the one description of the graph that every stage walks.

The Keras builder (model/squeezenet.py), the fixed-point emulator (quant/) and the HLS
generator (hw/) all read these tuples, so the network is written down once, as the Caffe
prototxt files define it (forresti/SqueezeNet v1.0 and v1.1, and the Deep Compression
deploy file for v1.0).

Names follow the forresti prototxt with '/' replaced by '_' (Keras 3 forbids '/' in layer
names): conv1, pool1, fire2_squeeze1x1, fire2_expand1x1, fire2_expand3x3, ..., conv10, pool10.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from sqz.errors import SqzError


class ArchitectureError(SqzError, ValueError):
    """An unknown model name, or an input size the network cannot take."""


@dataclass(frozen=True)
class Conv:
    name: str
    filters: int
    kernel: int
    stride: int = 1
    pad: int = 0
    relu: bool = True


@dataclass(frozen=True)
class MaxPool:
    """Caffe max pooling: output size rounds UP, ceil((n - k) / s) + 1 (PyTorch's ceil_mode)."""
    name: str
    kernel: int = 3
    stride: int = 2


@dataclass(frozen=True)
class Fire:
    """squeeze 1x1 -> ReLU -> (expand 1x1 | expand 3x3 pad 1) -> ReLU -> concat on channels.

    bypass: the module's input is added to its output (SqueezeNet's "simple bypass", Iandola et al. 2016,
    section 6): no weights, no multiplies; the input must have as many channels as the output. Trained and
    evaluated in float only so far: quant/ and hw/ refuse it (refuse_bypass)."""
    name: str
    squeeze: int
    expand1x1: int
    expand3x3: int
    bypass: bool = False

    @property
    def convs(self) -> tuple[Conv, Conv, Conv]:
        return (Conv(f"{self.name}_squeeze1x1", self.squeeze, 1),
                Conv(f"{self.name}_expand1x1", self.expand1x1, 1),
                Conv(f"{self.name}_expand3x3", self.expand3x3, 3, pad=1))

    @property
    def filters(self) -> int:
        return self.expand1x1 + self.expand3x3


@dataclass(frozen=True)
class GlobalAvgPool:
    name: str


Layer = Conv | MaxPool | Fire | GlobalAvgPool


@dataclass(frozen=True)
class Architecture:
    name: str
    input_size: int
    layers: tuple[Layer, ...]
    in_channels: int = 3
    num_classes: int = 1000
    notes: str = ""
    # preprocessing the weights were trained with (model/imagenet.py): BGR 0..255 minus these integer means,
    # shorter side resized to `resize` then centre crop `input_size` (images already input_size pass untouched)
    mean_bgr: tuple[float, float, float] = (104.0, 117.0, 123.0)
    resize: int = 256

    def convs(self) -> list[Conv]:
        """Every convolution in graph order (Fire modules expanded: squeeze, expand1x1, expand3x3)."""
        out: list[Conv] = []
        for layer in self.layers:
            if isinstance(layer, Conv):
                out.append(layer)
            elif isinstance(layer, Fire):
                out.extend(layer.convs)
        return out

    def shapes(self, input_size: int | None = None) -> list[tuple[Layer, tuple[int, int, int], tuple[int, int, int]]]:
        """(layer, input HWC, output HWC) for every top-level layer; raises on an impossible size."""
        size = input_size or self.input_size
        shape = (size, size, self.in_channels)
        out = []
        for layer in self.layers:
            new = output_shape(layer, shape)
            out.append((layer, shape, new))
            shape = new
        return out

    def conv_shapes(self, input_size: int | None = None) -> dict[str, dict]:
        """Per convolution: input HWC, output HWC and weight shape (O, I, kh, kw)."""
        table: dict[str, dict] = {}

        def add(conv: Conv, src: tuple[int, int, int]) -> tuple[int, int, int]:
            out = output_shape(conv, src)
            table[conv.name] = {"in": src, "out": out, "weight": (conv.filters, src[2], conv.kernel, conv.kernel)}
            return out

        for layer, in_shape, _ in self.shapes(input_size):
            if isinstance(layer, Conv):
                add(layer, in_shape)
            elif isinstance(layer, Fire):
                squeeze, expand1x1, expand3x3 = layer.convs
                squeezed = add(squeeze, in_shape)
                add(expand1x1, squeezed)  # both expands read the squeeze output
                add(expand3x3, squeezed)
        return table

    def num_params(self) -> int:
        return sum(math.prod(t["weight"]) + t["weight"][0] for t in self.conv_shapes().values())


def pool_out(n: int, kernel: int, stride: int) -> int:
    return -(-(n - kernel) // stride) + 1  # ceil, as Caffe


def conv_out(n: int, kernel: int, stride: int, pad: int) -> int:
    return (n + 2 * pad - kernel) // stride + 1  # floor, as Caffe


def output_shape(layer: Layer, shape: tuple[int, int, int]) -> tuple[int, int, int]:
    h, w, c = shape
    if isinstance(layer, Conv):
        oh, ow = conv_out(h, layer.kernel, layer.stride, layer.pad), conv_out(w, layer.kernel, layer.stride, layer.pad)
        if oh < 1 or ow < 1:
            raise ArchitectureError(f"{layer.name}: input {h}x{w} is smaller than its {layer.kernel}x{layer.kernel} kernel")
        return (oh, ow, layer.filters)
    if isinstance(layer, MaxPool):
        if h < layer.kernel or w < layer.kernel:
            raise ArchitectureError(f"{layer.name}: input {h}x{w} is smaller than its {layer.kernel}x{layer.kernel} window")
        return (pool_out(h, layer.kernel, layer.stride), pool_out(w, layer.kernel, layer.stride), c)
    if isinstance(layer, Fire):
        if layer.bypass and c != layer.filters:
            raise ArchitectureError(f"{layer.name}: a bypass adds the input to the output, but the input has "
                                    f"{c} channels and the output {layer.filters}")
        return (h, w, layer.filters)
    if isinstance(layer, GlobalAvgPool):
        return (1, 1, c)
    raise TypeError(f"unknown layer {layer!r}")


def bypasses(arch: Architecture) -> list[str]:
    """The Fire modules of `arch` with a bypass, in graph order."""
    return [layer.name for layer in arch.layers if isinstance(layer, Fire) and layer.bypass]


def refuse_bypass(arch: Architecture, stage: str) -> None:
    """Fixed point and hardware do not build Fire bypasses yet: say so, naming the module, rather than
    silently dropping the addition."""
    if found := bypasses(arch):
        raise ArchitectureError(f"{arch.name}: {found[0]} has a bypass, which {stage} does not support yet "
                                f"(float training and evaluation only)")


def _fires(spec):
    return tuple(Fire(f"fire{n}", s, e, e) for n, s, e in spec)


def squeezenet1_0() -> Architecture:
    """SqueezeNet v1.0 as in the Deep Compression deploy file (and forresti's v1.0 deploy).

    conv10 has pad 1 on its 1x1 kernel in both files: a 15x15 output whose border is
    ReLU(bias), and that border enters the global average pool.
    """
    f = _fires([(2, 16, 64), (3, 16, 64), (4, 32, 128), (5, 32, 128),
                (6, 48, 192), (7, 48, 192), (8, 64, 256), (9, 64, 256)])
    layers = (Conv("conv1", 96, 7, stride=2), MaxPool("pool1"), f[0], f[1], f[2], MaxPool("pool4"),
              f[3], f[4], f[5], f[6], MaxPool("pool8"), f[7], Conv("conv10", 1000, 1, pad=1),
              GlobalAvgPool("pool10"))
    return Architecture("squeezenet1_0", 227, layers)


def squeezenet1_1() -> Architecture:
    """SqueezeNet v1.1 (forresti deploy): 3x3 conv1 with 64 filters, pooling earlier, conv10 without pad."""
    f = _fires([(2, 16, 64), (3, 16, 64), (4, 32, 128), (5, 32, 128),
                (6, 48, 192), (7, 48, 192), (8, 64, 256), (9, 64, 256)])
    layers = (Conv("conv1", 64, 3, stride=2), MaxPool("pool1"), f[0], f[1], MaxPool("pool3"),
              f[2], f[3], MaxPool("pool5"), f[4], f[5], f[6], f[7], Conv("conv10", 1000, 1),
              GlobalAvgPool("pool10"))
    return Architecture("squeezenet1_1", 227, layers)


# -- CIFAR-10 (issue 13) ------------------------------------------------------------------------------

#: CIFAR-10 training-set channel means (B, G, R), rounded to integers so that pixels minus means stay
#: integers (-125..141): the input format ap_fixed<9,9> holds them exactly, as for the Caffe models.
CIFAR_MEAN_BGR = (114.0, 123.0, 125.0)

#: Candidate Fire networks for 32x32 inputs, measured in BENCHMARKS.md "CIFAR-10 Fire network".
#: (stem filters, layers): the stem is a 3x3 stride-1 conv (pad 1); then Fire modules (squeeze, expand:
#: expand1x1 = expand3x3 = expand; a third item "+" adds a bypass) and "P", a 3x3/2 max pool (two of them:
#: 32 -> 16 -> 8); then conv10 1x1 to the 10 classes (with ReLU, as SqueezeNet's conv10 and every conv of the hardware) and the
#: global average pool. No fully connected layer.
CIFAR_CANDIDATES: dict[str, tuple[int, tuple]] = {
    "a": (32, ("P", (16, 32), (16, 32), "P", (32, 64), (32, 64))),
    "b": (48, ("P", (16, 48), (16, 48), "P", (32, 96), (48, 128))),
    "c": (32, ((16, 32), "P", (32, 64), (32, 64), "P", (48, 96), (64, 128))),
    "d": (48, ("P", (16, 48), (16, 48), (32, 96), "P", (32, 96), (48, 128), (64, 128))),
    "e": (64, ((16, 64), "P", (32, 96), (32, 96), "P", (48, 128), (64, 160))),
    # b and one more Fire at 8x8: the largest depth-wise extension of b at 6 bits that stays at
    # 900 fps on the PYNQ-Z2 within LUT <= 80 % (the 8-bit formats of it need ~91 % LUT there)
    "f": (48, ("P", (16, 48), (16, 48), "P", (32, 96), (48, 128), (48, 128))),
    # f and one more Fire at 8x8: at 900 fps on the PYNQ-Z2 it fits at 4 bits only (LUT ~71 %, DSP ~96 %),
    # trained to measure whether 4-bit formats buy accuracy through a larger network
    "g": (48, ("P", (16, 48), (16, 48), "P", (32, 96), (48, 128), (48, 128), (48, 128))),
    # f with SqueezeNet's simple bypass on the two Fire modules whose input and output widths match
    # (fire3, fire6): the same weights and MACs, trained to measure what the additions are worth
    "h": (48, ("P", (16, 48), (16, 48, "+"), "P", (32, 96), (48, 128), (48, 128, "+"))),
}
CIFAR_DEFAULT = "f"


def squeezenet_cifar(variant: str | None = None) -> Architecture:
    """A Fire network for CIFAR-10 (32x32x3): 3x3 stride-1 stem, Fire modules, two 3x3/2 max pools
    (32 -> 16 -> 8), conv10 1x1 (10 filters), global average pool. Batch norm is used in training only
    and folded into the convolutions' weights and biases (model/cifar_train.py) before anything here
    sees them. `squeezenet_cifar` is the chosen candidate (CIFAR_DEFAULT) under its own name, with its own
    trained weights; `squeezenet_cifar_<v>` is every candidate (the same layers for v = CIFAR_DEFAULT)."""
    name = "squeezenet_cifar" if variant is None else f"squeezenet_cifar_{variant}"
    variant = variant or CIFAR_DEFAULT
    try:
        stem, body = CIFAR_CANDIDATES[variant]
    except KeyError:
        raise ArchitectureError(f"unknown squeezenet_cifar variant {variant!r}; known: "
                                f"{', '.join(CIFAR_CANDIDATES)}") from None
    layers: list[Layer] = [Conv("conv1", stem, 3, pad=1)]
    n = 2
    for item in body:
        if item == "P":
            layers.append(MaxPool(f"pool{n - 1}"))
        else:
            layers.append(Fire(f"fire{n}", item[0], item[1], item[1], bypass=item[2:] == ("+",)))
            n += 1
    layers += [Conv("conv10", 10, 1), GlobalAvgPool("pool10")]
    return Architecture(name, 32, tuple(layers), num_classes=10, mean_bgr=CIFAR_MEAN_BGR, resize=32,
                        notes=f"CIFAR-10 Fire network, candidate {variant!r}")


ARCHITECTURES = {"squeezenet1_0": squeezenet1_0, "squeezenet1_1": squeezenet1_1,
                 "squeezenet_cifar": squeezenet_cifar,
                 **{f"squeezenet_cifar_{v}": (lambda v=v: squeezenet_cifar(v)) for v in CIFAR_CANDIDATES}}


def get_architecture(name: str) -> Architecture:
    try:
        return ARCHITECTURES[name]()
    except KeyError:
        raise ArchitectureError(f"unknown model {name!r}; known: {', '.join(ARCHITECTURES)}") from None
