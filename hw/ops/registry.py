"""The op list of a network, and sqz's hls4ml extension (every op module's layers, templates, headers).

    ops = build_ops(arch, spec_or_formats, input_size, fuse_fire)      # in stream order, shell first
    register_extensions()                                              # hls4ml knows sqz's layers

Adding a layer kind: write hw/ops/<kind>.py with its op class (cost, folding, validation, hls4ml config
and rewrite, plan, side by side; base class hw/ops/base.py) and, if it has its own kernel, its
`hls4ml_extension()` and header in hw/kernels/ (listed in KERNEL_HEADERS); then add its branch to
build_ops below (which layer of model/architecture.py it implements) and, for an extension, its module to
EXTENSION_MODULES. README.md "Adding a hardware layer kind" says the same with an example.
"""
from __future__ import annotations

from pathlib import Path

from model.architecture import (Architecture, ArchitectureError, Conv, Fire, GlobalAvgPool as GapLayer, MaxPool,
                                refuse_bypass)

from hw.ops.base import HwOp, UnsupportedModelError
from hw.ops.conv import StockConv
from hw.ops.fire import FusedFire, GenericFire
from hw.ops.pad import ZeroPad
from hw.ops.pool import GlobalAvgPool, MaxPool3x3s2
from hw.ops.shell import Shell
from quant.fixed_point import FixedFormat

KERNEL_DIR = Path(__file__).resolve().parents[1] / "kernels"
KERNEL_HEADERS = ("sqz_common.h", "sqz_fire.h", "sqz_pool.h", "sqz_axi.h", "sqz_conv.h")
EXTENSION_MODULES = ("hw.ops.conv", "hw.ops.fire", "hw.ops.pool")


def layer_formats(arch: Architecture, spec) -> tuple[FixedFormat, dict, dict]:
    """(network input format, {layer: formats}, {layer: input format}) of a QuantSpec."""
    from quant.spec import input_formats

    return spec.input, spec.layers, input_formats(arch, spec)


def build_ops(arch: Architecture, spec, input_size: int | None = None, fuse_fire: bool = True,
              include_shell: bool = True) -> list[HwOp]:
    """The dataflow pipeline as ops, in stream order. spec: a QuantSpec or an int (uniform formats,
    quant/formats.uniform_spec -- the one rule for designs without calibration). Raises
    UnsupportedModelError naming the layer for a layer kind or shape the hardware cannot build."""
    if isinstance(spec, int) and not isinstance(spec, bool):
        from quant.formats import uniform_spec

        spec = uniform_spec(arch, spec, input_size)
    if getattr(spec, "model", arch.name) != arch.name:
        raise UnsupportedModelError(f"the QuantSpec is for {spec.model}, the model is {arch.name}")
    x_in, formats, ins = layer_formats(arch, spec)
    if not arch.convs():
        raise UnsupportedModelError(f"{arch.name}: no convolution")
    try:
        shapes = arch.shapes(input_size)
        refuse_bypass(arch, "hw/")
    except ArchitectureError as e:
        raise UnsupportedModelError(f"{arch.name}: {e}") from None
    ops: list[HwOp] = []
    current = x_in                              # the format on the stream
    for layer, in_shape, out_shape in shapes:
        if isinstance(layer, Conv):
            x = ins[layer.name]
            if layer.pad:
                pad = ZeroPad(layer, in_shape, x)
                ops.append(pad)
                in_shape = pad.out_shape
            ops.append(StockConv(layer, in_shape, out_shape, x, formats[layer.name]))
            current = formats[layer.name].result
        elif isinstance(layer, Fire):
            ops.append((FusedFire if fuse_fire else GenericFire)(layer, in_shape, out_shape, ins[layer.convs[0].name],
                                                                 formats))
            current = formats[layer.convs[1].name].result
        elif isinstance(layer, MaxPool):
            ops.append(MaxPool3x3s2(layer, in_shape, out_shape, current))
        elif isinstance(layer, GapLayer):
            ops.append(GlobalAvgPool(layer, in_shape, out_shape, ins[layer.name], formats[layer.name]))
            current = formats[layer.name].result
        else:
            raise UnsupportedModelError(f"{arch.name} layer {getattr(layer, 'name', layer)!r}: "
                                        f"kind {type(layer).__name__} is not supported")
    if include_shell:   # what the stream carries out: the logits (or, for a partial network, its last layer)
        ops.insert(0, Shell(shapes[0][1], x_in, shapes[-1][2][2], current))
    return ops


def check_architecture(arch: Architecture) -> None:
    """Every layer has an op, and the network ends in exactly one global average pool: the logits it
    streams out (estimates also take partial networks; a generated design needs this)."""
    for layer in arch.layers:
        if isinstance(layer, MaxPool):
            MaxPool3x3s2.check_layer(layer)
        elif not isinstance(layer, (Conv, Fire, GapLayer)):
            raise UnsupportedModelError(f"{arch.name} layer {getattr(layer, 'name', layer)!r}: "
                                        f"kind {type(layer).__name__} is not supported")
    kinds = [type(l).__name__ for l in arch.layers]
    if kinds.count("GlobalAvgPool") != 1 or not isinstance(arch.layers[-1], GapLayer):
        raise UnsupportedModelError(f"{arch.name}: the network must end in exactly one global average pool "
                                    f"(the logits); layers are {kinds}")


# -- hls4ml helpers the ops' extensions share -------------------------------------------------------

def named_type(layer, var: str):
    """A NamedType for `var` from the generated HLS config, as hls4ml's own layers ask for `accum`."""
    from hls4ml.model.types import NamedType

    precision, type_name = layer.model.config.get_precision(layer, var)
    return NamedType(type_name, precision)


def precision_format(p) -> FixedFormat:
    """hls4ml's FixedPrecisionType -> FixedFormat."""
    return FixedFormat(int(p.width), int(p.integer), bool(p.signed), f"AP_{p.rounding_mode}", f"AP_{p.saturation_mode}")


_registered = False


def register_extensions() -> None:
    """Register every op module's layers, templates and the kernel headers with hls4ml (idempotent):
    on both the Vivado and the Vitis backend (Vitis applies Vivado's templates after its own, and a
    header registered on one backend is missing on the other)."""
    global _registered
    if _registered:
        return
    import importlib

    from hls4ml.backends import get_backend
    from hls4ml.model.layers import register_layer

    layers, templates = [], []
    for name in EXTENSION_MODULES:
        ls, ts = importlib.import_module(name).hls4ml_extension()
        layers += ls
        templates += ts
    for cls in layers:
        register_layer(cls.__name__, cls)
    for backend_name in ("Vivado", "Vitis"):
        backend = get_backend(backend_name)
        for template in templates:
            backend.register_template(template)
        for header in KERNEL_HEADERS:
            backend.register_source(KERNEL_DIR / header)
    _registered = True
