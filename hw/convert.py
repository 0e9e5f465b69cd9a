"""Keras model + QuantSpec -> hls4ml model: Vitis backend, io_stream, sqz's kernels where hls4ml falls short.

    plan_design(keras_model, spec, ...)   validate everything, fix reuse factors: a `Design` (no hls4ml yet)
    to_hls4ml(design, output_dir)         the hls4ml ModelGraph, every type checked against the spec

What runs where
  conv1, conv10 (and any stand-alone Conv)  hls4ml's stock Conv2D / PointwiseConv2D + ReLU layer
                                            (+ its ZeroPadding2D for v1.0's conv10, pad 1 on a 1x1)
  loadable 1x1 convs (Design.loadable)      SqzConv1x1 (hw/kernels/sqz_conv.h): weights in a runtime-written
                                            array (UltraRAM), filled by the AXI top's load mode; which
                                            layers: hw.estimate.loadable_layers (plan_design(loadable=))
  Fire modules                              SqzFire (hw/kernels/sqz_fire.h), one kernel per module
  3x3 / stride 2 max pools                  SqzMaxPool2D (hls4ml's pooling asserts pool == stride)
  global average pool                       SqzGlobalAvgPool2D (exact sum, reciprocal multiply, one cast)
No softmax: the accelerator outputs the logits (codes of the average pool's result format).

How our kernels enter the graph
  hls4ml parses the Keras model into a list of layer dicts (`parse_keras_v3_model`); we rewrite that
  list -- seven dicts of a Fire module (squeeze, expand1x1, expand3x3, their ReLUs, the concatenation)
  become one SqzFire dict, a max pool with its round-up padding becomes one SqzMaxPool2D dict, the
  GlobalAveragePooling2D becomes SqzGlobalAvgPool2D -- and build the ModelGraph from the rewritten list
  (`ModelGraph.from_layer_list`, exactly what hls4ml's own Keras converter does next). The layers,
  templates and headers are registered through hls4ml's extension API (hw/layers.py). Why not the other
  two routes: a custom Keras `Fire` layer would need a second Keras model (the project's model, its
  float reference and its evaluation all use stock layers); an optimizer pass in the global 'optimize'
  flow is process-wide (it would rewrite any model converted in the same process) and must do graph
  surgery hls4ml has no helper for (remove_node refuses multi-input nodes). The rewrite is driven by
  model/architecture.py (the network as data): the names are known, and every dict is checked against
  the architecture's shapes, so a model that does not match fails here, before any C++ exists.

Arithmetic (quant/arithmetic.py is the definition)
  stock conv: accum_t = the spec's accum (exact). hls4ml casts the accumulator to the conv's result_t and
  its ReLU layer casts again; "ReLU, then one cast to the result format R" is preserved by choosing
  conv result_t = ap_fixed<W+1, I+1, same modes> for an unsigned R = ap_ufixed<W, I> (R itself for a
  signed R): same fractional bits and the same largest value, so positive values round and saturate
  exactly as R does, negative ones stay <= 0 and the ReLU makes them 0, and R's cast of the (already
  representable) result is exact. That holds for the saturating overflow modes; with AP_WRAP the conv
  result_t is the accumulator itself and the ReLU layer does the only cast. tests/test_hw_kernels.py
  checks it exhaustively for every rounding and saturating mode.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np

from model.architecture import Architecture, Conv, Fire, GlobalAvgPool, MaxPool, get_architecture
from quant.fixed_point import FixedFormat
from quant.spec import ConvFormats, PoolFormats, QuantSpec, input_formats

LATENCY_LIMIT = 4096          # hls4ml issue #572: Latency strategy only for filt_h*filt_w*n_chan*n_filt < 4096
MAX_DATA_BITS = 32            # weights, biases, activations, logits (and an AXI lane)
MAX_ACCUM_BITS = 64
SATURATING = ("AP_SAT", "AP_SAT_SYM", "AP_SAT_ZERO")
BACKEND = "Vitis"
PROJECT_NAME = "myproject"
FORMAT_VERSION = 1            # bump when the generated project changes in a way sources do not show
HW_DIR = Path(__file__).resolve().parent
# everything that decides the generated project besides the inputs (part of the build cache key)
GENERATOR_SOURCES = ("convert.py", "layers.py", "project.py", "axi.py", "scripts.py",
                     "kernels/sqz_common.h", "kernels/sqz_fire.h", "kernels/sqz_pool.h", "kernels/sqz_axi.h",
                     "kernels/sqz_conv.h")


class UnsupportedModelError(__import__("sqz.errors").errors.SqzError, ValueError):  # sqz.errors: a user error
    """The model, spec or options ask for something the hardware back end cannot build; raised before any C++."""


# -- the plan --------------------------------------------------------------------------------------

@dataclass
class LayerPlan:
    """One hardware layer as it will be generated (the CLI's "layers" entries)."""
    name: str
    kind: str                   # conv, zeropad, fire, maxpool, gap
    in_shape: tuple
    out_shape: tuple
    kernel: str                 # the C++ function that runs it
    reuse: int | dict | None = None
    strategy: str | None = None
    formats: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)

    def to_json(self) -> dict:
        return {"name": self.name, "kind": self.kind, "in_shape": list(self.in_shape),
                "out_shape": list(self.out_shape), "kernel": self.kernel, "reuse": self.reuse,
                "strategy": self.strategy, "formats": self.formats, "notes": self.notes}


@dataclass
class Design:
    """Everything the generated project depends on, validated. `key()` names it for the build cache."""
    arch: Architecture
    spec: QuantSpec
    input_size: int
    keras_model: object
    params: dict                 # conv name -> (weight OIHW float32, bias float32), from the Keras model
    reuse: dict                  # conv / pool name -> reuse factor actually used
    reuse_changes: dict          # name -> (requested, used) where a request was not valid
    board: object                # hw.boards.Board
    clock_mhz: float
    fuse_fire: bool
    layers: list
    input_name: str
    weights_note: str = "trained"
    trace: tuple = ()            # hls4ml layer names whose outputs C simulation records (CSimulator.trace)
    loadable: tuple = ()         # convs whose weights are loaded at start-up into UltraRAM (SqzConv1x1)

    @property
    def logit_format(self) -> FixedFormat:
        return self.spec.logit_format

    def key(self) -> str:
        h = hashlib.sha256()

        def add(tag: str, data) -> None:
            data = data if isinstance(data, bytes) else str(data).encode()
            h.update(f"{tag}:{len(data)}:".encode())
            h.update(data)

        add("format", FORMAT_VERSION)
        add("hls4ml", metadata.version("hls4ml"))
        add("arch", repr(self.arch))
        add("input_size", self.input_size)
        spec = self.spec.to_json()
        spec.pop("calibration", None)  # informational only
        add("spec", json.dumps(spec, sort_keys=True))
        for name in sorted(self.params):
            w, b = self.params[name]
            add(f"{name}.w", f"{w.dtype}{w.shape}".encode() + np.ascontiguousarray(w).tobytes())
            add(f"{name}.b", f"{b.dtype}{b.shape}".encode() + np.ascontiguousarray(b).tobytes())
        add("reuse", json.dumps(self.reuse, sort_keys=True))
        add("board", f"{self.board.name} {self.board.part} {self.clock_mhz}")
        add("fuse_fire", self.fuse_fire)
        add("input_name", self.input_name)
        if self.trace:
            add("trace", ",".join(self.trace))
        if self.loadable:
            add("loadable", ",".join(self.loadable))
        for rel in GENERATOR_SOURCES:
            add(rel, (HW_DIR / rel).read_bytes())
        return h.hexdigest()

    def estimate_reuse(self) -> dict:
        """The reuse dict in hw.estimate's terms (every convolution by name, and the pools)."""
        return dict(self.reuse)


def _gap(arch: Architecture) -> GlobalAvgPool:
    return next(l for l in arch.layers if isinstance(l, GlobalAvgPool))


def plan_design(keras_model, spec: QuantSpec, arch: Architecture | str | None = None, reuse: dict | None = None,
                board="zcu104", clock_mhz: float | None = None, fuse_fire: bool = True,
                weights_note: str = "trained", trace=(), loadable="none") -> Design:
    """Validate model, spec and options against what the back end supports; fix every reuse factor.

    reuse: {name: R} for convolutions (Fire convolutions by their own names, or a Fire module's name for
    all three), max pools and the average pool (R = cycles per pixel; see hw/kernels). Missing entries:
    1 where hls4ml's Latency strategy fits (n_in * n_out < 4096), else the smallest valid R that brings
    the multipliers under that limit. Invalid requests move to the closest valid R (recorded).
    trace: names of layers of the generated hls4ml graph (e.g. 'pool1', 'fire2', or 'fire2_concat'
    when fuse_fire=False) whose outputs the C simulation records (hls4ml's TraceOutput; the extra code
    is #ifndef __SYNTHESIS__, synthesis is unchanged). Checked when the graph is built.
    loadable: which stand-alone 1x1 convolutions get runtime-loaded UltraRAM weights (SqzConv1x1 and the
    AXI top's load mode): 'none' (default), 'auto', 'all' or layer names -- hw.estimate.loadable_layers
    decides, for the reuse factors fixed here, exactly as the estimate does.
    Raises UnsupportedModelError / SpecError (both ValueError) with a message naming the layer.
    """
    from hw.boards import get_board

    if arch is None:
        arch = get_architecture(spec.model)
    elif isinstance(arch, str):
        arch = get_architecture(arch)
    board = get_board(board)
    check_architecture(arch)
    input_name, size = check_keras_model(keras_model, arch)
    if spec.model != arch.name:
        raise UnsupportedModelError(f"the QuantSpec is for {spec.model}, the model is {arch.name}")
    spec.validate(arch)
    params = keras_params(keras_model, arch)
    check_formats(arch, spec, size, params)
    used, changes = resolve_reuse(arch, size, reuse or {})
    from hw.estimate import loadable_layers

    try:
        names = loadable_layers(arch, board, spec, used, loadable, input_size=size, fuse_fire=fuse_fire)
    except ValueError as e:
        raise UnsupportedModelError(str(e)) from None
    design = Design(arch=arch, spec=spec, input_size=size, keras_model=keras_model, params=params, reuse=used,
                    reuse_changes=changes, board=board, clock_mhz=float(clock_mhz or board.clock_mhz),
                    fuse_fire=fuse_fire, layers=[], input_name=input_name, weights_note=weights_note,
                    trace=tuple(str(t) for t in trace), loadable=names)
    design.layers = layer_plans(design)
    return design


# -- validation ------------------------------------------------------------------------------------

def check_architecture(arch: Architecture) -> None:
    kinds = [type(l).__name__ for l in arch.layers]
    for layer in arch.layers:
        if isinstance(layer, MaxPool) and (layer.kernel, layer.stride) != (3, 2):
            raise UnsupportedModelError(
                f"{arch.name} layer {layer.name}: max pooling {layer.kernel}x{layer.kernel} / stride {layer.stride} "
                f"is not supported; the hardware pools 3x3 / stride 2 (SqueezeNet's overlapping pools)")
        if not isinstance(layer, (Conv, MaxPool, Fire, GlobalAvgPool)):
            raise UnsupportedModelError(f"{arch.name} layer {getattr(layer, 'name', layer)!r}: "
                                        f"kind {type(layer).__name__} is not supported")
    if kinds.count("GlobalAvgPool") != 1 or not isinstance(arch.layers[-1], GlobalAvgPool):
        raise UnsupportedModelError(f"{arch.name}: the network must end in exactly one global average pool "
                                    f"(the logits); layers are {kinds}")
    if not arch.convs():
        raise UnsupportedModelError(f"{arch.name}: no convolution")


_KERAS_KINDS = {"InputLayer", "Conv2D", "ZeroPadding2D", "MaxPooling2D", "Concatenate", "GlobalAveragePooling2D"}


def check_keras_model(model, arch: Architecture) -> tuple[str, int]:
    """The Keras model must be model/squeezenet.build_keras(arch, softmax=False): same names, kinds, sizes."""
    import keras

    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise UnsupportedModelError(f"Keras model {model.name}: needs one input and one output")
    shape = tuple(model.inputs[0].shape[1:])
    if len(shape) != 3 or shape[0] != shape[1] or shape[2] != arch.in_channels:
        raise UnsupportedModelError(f"Keras model {model.name}: input shape {shape} is not square "
                                    f"HxWx{arch.in_channels}")
    size = int(shape[0])
    try:
        arch.shapes(size)
    except ValueError as e:
        raise UnsupportedModelError(f"Keras model {model.name}: {e}") from None
    layers = {l.name: l for l in model.layers}
    by_kind = {}
    for l in model.layers:
        by_kind.setdefault(type(l).__name__, []).append(l.name)
    extra = {k: v for k, v in by_kind.items() if k not in _KERAS_KINDS}
    if "Softmax" in extra or any(getattr(l, "activation", None) is keras.activations.softmax for l in model.layers):
        raise UnsupportedModelError(f"Keras model {model.name}: has a softmax; the hardware outputs logits "
                                    f"(build it with build_keras(..., softmax=False))")
    if extra:
        kind, names = next(iter(extra.items()))
        raise UnsupportedModelError(f"Keras model {model.name}: layer {names[0]} of kind {kind} is not supported "
                                    f"(supported: {', '.join(sorted(_KERAS_KINDS))})")

    def need(name, kind):
        if name not in layers:
            raise UnsupportedModelError(f"Keras model {model.name}: layer {name} of {arch.name} is missing")
        if type(layers[name]).__name__ != kind:
            raise UnsupportedModelError(f"Keras model {model.name}: layer {name} is a "
                                        f"{type(layers[name]).__name__}, expected {kind}")
        return layers[name]

    expected = set()
    for layer in arch.layers:
        convs = layer.convs if isinstance(layer, Fire) else (layer,) if isinstance(layer, Conv) else ()
        for conv in convs:
            l = need(conv.name, "Conv2D")
            act = getattr(l.activation, "__name__", str(l.activation))
            if tuple(l.kernel_size) != (conv.kernel,) * 2 or tuple(l.strides) != (conv.stride,) * 2 \
                    or l.filters != conv.filters or act != ("relu" if conv.relu else "linear") \
                    or tuple(l.dilation_rate) != (1, 1) or not l.use_bias:
                raise UnsupportedModelError(
                    f"Keras model {model.name}: layer {conv.name} ({l.kernel_size} / {l.strides}, {l.filters} "
                    f"filters, activation {act}) does not match {conv} of {arch.name}")
            expected.add(conv.name)
            if f"{conv.name}_pad" in layers:
                expected.add(f"{conv.name}_pad")
        if isinstance(layer, Fire):
            need(f"{layer.name}_concat", "Concatenate")
            expected.add(f"{layer.name}_concat")
        elif isinstance(layer, MaxPool):
            l = need(layer.name, "MaxPooling2D")
            if tuple(l.pool_size) != (3, 3) or tuple(l.strides) != (2, 2) or l.padding != "valid":
                raise UnsupportedModelError(f"Keras model {model.name}: layer {layer.name} pools {l.pool_size} / "
                                            f"{l.strides} '{l.padding}'; expected 3x3 / 2 'valid'")
            expected.add(layer.name)
            if f"{layer.name}_ceilpad" in layers:
                expected.add(f"{layer.name}_ceilpad")
        elif isinstance(layer, GlobalAvgPool):
            need(layer.name, "GlobalAveragePooling2D")
            expected.add(layer.name)
    input_layer = next((l.name for l in model.layers if type(l).__name__ == "InputLayer"), None)
    expected.add(input_layer)
    unknown = [n for n in layers if n not in expected]
    if unknown:
        raise UnsupportedModelError(f"Keras model {model.name}: layer {unknown[0]} is not part of {arch.name}")
    if input_layer == "input":
        raise UnsupportedModelError("Keras model: an input layer named 'input' is reserved by hls4ml; rename it")
    return input_layer, size


def keras_params(model, arch: Architecture) -> dict:
    """conv name -> (weight OIHW, bias) as the Keras model holds them (float32)."""
    out = {}
    for conv in arch.convs():
        kernel, bias = model.get_layer(conv.name).get_weights()
        out[conv.name] = (np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)), np.asarray(bias))
    return out


def check_formats(arch: Architecture, spec: QuantSpec, size: int, params: dict) -> None:
    """Widths the kernels support, the AXI packing, and exact accumulation with these weights."""
    from hw.axi import AxiPacking
    from quant.emulator import accumulator_bound

    def width(name, field_name, fmt, limit):
        if fmt.width > limit:
            raise UnsupportedModelError(f"layer {name} field {field_name!r}: {fmt} is wider than the "
                                        f"{limit} bits the hardware back end supports")

    width("input", "input", spec.input, MAX_DATA_BITS)
    ins = input_formats(arch, spec)
    for name, f in spec.layers.items():
        if isinstance(f, ConvFormats):
            for k in ("weight", "bias", "result"):
                width(name, k, getattr(f, k), MAX_DATA_BITS)
            width(name, "accum", f.accum, MAX_ACCUM_BITS)
            x = ins[name]
            w_codes = f.weight.quantize(np.asarray(params[name][0], np.float64))
            if spec.weights is not None and name in spec.weights and not np.array_equal(w_codes, spec.weights[name]):
                raise UnsupportedModelError(f"layer {name}: the model's weights are not the QuantSpec's optimized "
                                            f"weight codes; build the Keras model from spec.effective_params(params)")
            b_codes = f.bias.quantize(np.asarray(params[name][1], np.float64))
            w_acc = w_codes << (f.accum.frac - x.frac - f.weight.frac)
            b_acc = b_codes << (f.accum.frac - f.bias.frac)
            bound = accumulator_bound(w_acc, b_acc, x)
            if bound > f.accum.max_code:
                need = int(np.ceil(np.log2(bound + 1))) + 1 - f.accum.frac
                raise UnsupportedModelError(f"layer {name} field 'accum': {f.accum} can overflow with these "
                                            f"weights (|acc| may reach {bound} codes); it needs at least {need} "
                                            f"integer bits for exact accumulation")
        else:
            width(name, "accum", f.accum, MAX_ACCUM_BITS)
            width(name, "result", f.result, MAX_DATA_BITS)
    gap = _gap(arch)
    p: PoolFormats = spec.layers[gap.name]
    x = ins[gap.name]
    _, in_shape, _ = next(t for t in arch.shapes(size) if t[0] is gap)
    pixels = in_shape[0] * in_shape[1]
    sum_bound = pixels * max(abs(x.min_code), x.max_code) << (p.accum.frac - x.frac)
    if sum_bound > p.accum.max_code:
        raise UnsupportedModelError(f"layer {gap.name} field 'accum': {p.accum} cannot hold the sum of "
                                    f"{pixels} values of {x} exactly")
    if p.multiplier >= 1 << 63:
        raise UnsupportedModelError(f"layer {gap.name}: multiplier {p.multiplier} wider than 63 bits")
    try:
        AxiPacking.for_formats(size, size, arch.in_channels, spec.input, in_shape[2], p.result)
    except ValueError as e:
        raise UnsupportedModelError(f"AXI interface: {e}") from None


# -- reuse factors ---------------------------------------------------------------------------------

def engines(arch: Architecture, size: int) -> dict[str, tuple[int, int]]:
    """conv name -> (n_in, n_out) of its per-pixel product (hls4ml's dense: n_in = k*k*channels)."""
    return {name: (t["weight"][1] * t["weight"][2] * t["weight"][3], t["weight"][0])
            for name, t in arch.conv_shapes(size).items()}


def _closest(valid: list[int], want: int) -> int:
    """hls4ml's choice for an invalid reuse factor: the closest valid one, the smaller on a tie."""
    return min(valid, key=lambda r: (abs(r - want), r))


def resolve_reuse(arch: Architecture, size: int, requested: dict) -> tuple[dict, dict]:
    from hw.estimate import valid_reuse_factors

    eng = engines(arch, size)
    channels = {}
    for layer, in_shape, _ in arch.shapes(size):
        if isinstance(layer, (MaxPool, GlobalAvgPool)):
            channels[layer.name] = in_shape[2]
    fires = {l.name: [c.name for c in l.convs] for l in arch.layers if isinstance(l, Fire)}
    unknown = [n for n in requested if n not in eng and n not in channels and n not in fires]
    if unknown:
        raise UnsupportedModelError(f"reuse factor for unknown layer {unknown[0]!r}; layers of {arch.name}: "
                                    f"{', '.join(list(eng) + list(fires) + list(channels))}")
    want = {}
    for fire, convs in fires.items():
        if fire in requested:
            want.update({c: requested[fire] for c in convs})
    want.update({n: r for n, r in requested.items() if n not in fires})
    for name, r in want.items():
        if not isinstance(r, (int, np.integer)) or isinstance(r, bool) or r < 1:
            raise UnsupportedModelError(f"reuse factor for {name} must be a positive integer, got {r!r}")
    used, changes = {}, {}
    for name, (n_in, n_out) in eng.items():
        valid = valid_reuse_factors(n_in, n_out)
        if name in want:
            r = _closest(valid, int(want[name]))
        else:
            r = 1 if n_in * n_out < LATENCY_LIMIT else next(v for v in valid if n_in * n_out / v < LATENCY_LIMIT)
        used[name] = r
        if name in want and r != want[name]:
            changes[name] = (int(want[name]), r)
    for name, c in channels.items():
        valid = [d for d in range(1, c + 1) if c % d == 0]
        r = _closest(valid, int(want.get(name, 1)))
        used[name] = r
        if name in want and r != want[name]:
            changes[name] = (int(want[name]), r)
    return used, changes


def strategy(n_in: int, n_out: int) -> str:
    return "Resource" if n_in * n_out >= LATENCY_LIMIT else "Latency"


# -- formats -------------------------------------------------------------------------------------

def conv_result_format(conv: Conv, f: ConvFormats) -> FixedFormat:
    """result_t of a stock hls4ml conv such that conv -> ReLU layer equals "ReLU, then cast to f.result"."""
    r = f.result
    if not conv.relu:
        return r
    if r.overflow in SATURATING:
        return r if r.signed else FixedFormat(r.width + 1, r.integer + 1, True, r.rounding, r.overflow)
    return f.accum  # AP_WRAP: keep the exact accumulator, the ReLU layer casts once


def _conv_config(conv: Conv, spec: QuantSpec, reuse: int, n_in: int, n_out: int) -> dict:
    f = spec.layers[conv.name]
    return {"Precision": {"weight": str(f.weight), "bias": str(f.bias), "accum": str(f.accum),
                          "result": str(conv_result_format(conv, f))},
            "Strategy": strategy(n_in, n_out), "ReuseFactor": reuse}


def hls_config(design: Design) -> dict:
    """The hls4ml HLSConfig, generated from the spec and the reuse factors (never edited by hand)."""
    arch, spec, size = design.arch, design.spec, design.input_size
    eng = engines(arch, size)
    ins = input_formats(arch, spec)
    names: dict = {design.input_name: {"Precision": {"result": str(spec.input)}}}
    current = spec.input
    for layer in arch.layers:
        convs = (layer,) if isinstance(layer, Conv) else layer.convs if isinstance(layer, Fire) else ()
        if isinstance(layer, Fire) and design.fuse_fire:
            sq, e1, e3 = layer.convs
            prec = {"result": str(spec.layers[e1.name].result), "squeeze_result": str(spec.layers[sq.name].result)}
            for part, conv in zip(("squeeze", "expand1", "expand3"), layer.convs):
                f = spec.layers[conv.name]
                prec.update({f"{part}_weight": str(f.weight), f"{part}_bias": str(f.bias),
                             f"{part}_accum": str(f.accum)})
            names[layer.name] = {"Precision": prec, "SqueezeReuse": design.reuse[sq.name],
                                 "Expand1Reuse": design.reuse[e1.name], "Expand3Reuse": design.reuse[e3.name]}
        else:
            for conv in convs:
                names[conv.name] = _conv_config(conv, spec, design.reuse[conv.name], *eng[conv.name])
                if conv.name in design.loadable:   # SqzConv1x1: ReLU and the cast to the result inside
                    f = spec.layers[conv.name]
                    names[conv.name] = {"Precision": {"weight": str(f.weight), "bias": str(f.bias),
                                                      "accum": str(f.accum), "result": str(f.result)},
                                        "ReuseFactor": design.reuse[conv.name]}
                elif conv.relu:
                    names[f"{conv.name}_relu"] = {"Precision": {"result": str(spec.layers[conv.name].result)}}
                if conv.pad and not (conv.stride == 1 and conv.kernel == 2 * conv.pad + 1):
                    names[f"{conv.name}_pad"] = {"Precision": {"result": str(ins[conv.name])}}
            if isinstance(layer, Fire):
                names[f"{layer.name}_concat"] = {"Precision": {"result": str(spec.layers[layer.convs[1].name].result)}}
        if isinstance(layer, MaxPool):
            names[layer.name] = {"Precision": {"result": str(current)}, "ReuseFactor": design.reuse[layer.name]}
        elif isinstance(layer, GlobalAvgPool):
            p = spec.layers[layer.name]
            names[layer.name] = {"Precision": {"accum": str(p.accum), "result": str(p.result)},
                                 "ReuseFactor": design.reuse[layer.name]}
        if convs:
            current = spec.layers[convs[-1].name].result
    for name in design.trace:
        names.setdefault(name, {})["Trace"] = True
    return {"Model": {"Precision": {"default": "ap_fixed<16,6>"}, "ReuseFactor": 1, "Strategy": "Latency",
                      "BitExact": False, "TraceOutput": bool(design.trace)},
            "LayerName": names}


def layer_plans(design: Design) -> list[LayerPlan]:
    arch, spec, size = design.arch, design.spec, design.input_size
    eng = engines(arch, size)
    ins = input_formats(arch, spec)
    plans = []
    current = spec.input
    for layer, in_shape, out_shape in arch.shapes(size):
        if isinstance(layer, Conv):
            f = spec.layers[layer.name]
            if layer.pad and not (layer.stride == 1 and layer.kernel == 2 * layer.pad + 1):
                h, w, c = in_shape
                padded = (h + 2 * layer.pad, w + 2 * layer.pad, c)
                plans.append(LayerPlan(f"{layer.name}_pad", "zeropad", in_shape, padded, "nnet::zeropad2d_cl",
                                       formats={"result": str(ins[layer.name])}))
                in_shape = padded
            n_in, n_out = eng[layer.name]
            if layer.name in design.loadable:
                from hw.layers import loadable_array

                plans.append(LayerPlan(layer.name, "conv", in_shape, out_shape, "sqz::conv1x1_rw",
                                       design.reuse[layer.name], None, f.to_json(),
                                       [f"weights loaded at start-up (AXI top, mode 1) into {loadable_array(layer.name)}, "
                                        f"bound to UltraRAM"]))
            else:
                plans.append(LayerPlan(layer.name, "conv", in_shape, out_shape, "nnet::conv_2d_cl (hls4ml)",
                                       design.reuse[layer.name], strategy(n_in, n_out),
                                       {**f.to_json(), "conv_result_t": str(conv_result_format(layer, f))}))
            current = f.result
        elif isinstance(layer, Fire):
            formats = {c.name: spec.layers[c.name].to_json() for c in layer.convs}
            reuse = {c.name.rsplit("_", 1)[1]: design.reuse[c.name] for c in layer.convs}
            kernel = "sqz::fire" if design.fuse_fire else "hls4ml conv/clone/concatenate"
            plans.append(LayerPlan(layer.name, "fire", in_shape, out_shape, kernel, reuse, None, formats))
            current = spec.layers[layer.convs[1].name].result
        elif isinstance(layer, MaxPool):
            plans.append(LayerPlan(layer.name, "maxpool", in_shape, out_shape, "sqz::maxpool_3x3s2",
                                   design.reuse[layer.name], formats={"result": str(current)}))
        elif isinstance(layer, GlobalAvgPool):
            plans.append(LayerPlan(layer.name, "gap", in_shape, out_shape, "sqz::global_avgpool",
                                   design.reuse[layer.name], formats=spec.layers[layer.name].to_json()))
    for p in plans:
        for name, (want, got) in design.reuse_changes.items():
            if name == p.name or name.startswith(p.name + "_"):
                p.notes.append(f"reuse {want} requested for {name} is not valid; using {got}")
    return plans


# -- the layer-list rewrite ------------------------------------------------------------------------

def _quantized(fmt: FixedFormat, values) -> np.ndarray:
    """Values rounded and saturated to fmt, as exact float64 (hls4ml prints them with frac decimals)."""
    return fmt.to_float(fmt.quantize(np.asarray(values, np.float64)))


def _check_dims(d: dict, name: str, in_shape, out_shape) -> None:
    got_in = (d.get("in_height"), d.get("in_width"))
    got_out = (d.get("out_height"), d.get("out_width"))
    if got_in != tuple(in_shape[:2]) or (out_shape is not None and got_out != tuple(out_shape[:2])):
        raise UnsupportedModelError(f"layer {name}: hls4ml sees {got_in} -> {got_out}, the architecture "
                                    f"{tuple(in_shape[:2])} -> {tuple(out_shape[:2]) if out_shape else '?'}")


def rewrite_layer_list(layer_list: list[dict], design: Design) -> list[dict]:
    """Quantize the stock layers' weights and put sqz's layers in place of the patterns they replace."""
    arch, spec, size = design.arch, design.spec, design.input_size
    by_name = {d["name"]: d for d in layer_list}
    replace: dict[str, dict] = {}     # dict name -> the dict that takes its place
    drop: set[str] = set()
    rename: dict[str, str] = {}       # old output name -> new one (inputs of later layers)

    def get(name):
        if name not in by_name:
            raise UnsupportedModelError(f"layer {name} of {arch.name} is missing from the converted model")
        return by_name[name]

    def quantize_conv(conv: Conv):
        d = get(conv.name)
        f = spec.layers[conv.name]
        d["weight_data"] = _quantized(f.weight, d["weight_data"])
        d["bias_data"] = _quantized(f.bias, d["bias_data"])
        return d

    for layer, in_shape, out_shape in arch.shapes(size):
        if isinstance(layer, Conv) and layer.name in design.loadable:
            d = get(layer.name)
            _check_dims(d, layer.name, (d["in_height"], d["in_width"]), out_shape)
            f = spec.layers[layer.name]
            replace[layer.name] = {
                "name": layer.name, "class_name": "SqzConv1x1", "inputs": list(d["inputs"]),
                "data_format": "channels_last", "in_height": d["in_height"], "in_width": d["in_width"],
                "n_chan": d["n_chan"], "n_filt": layer.filters, "relu": bool(layer.relu),
                "bias_data": _quantized(f.bias, d["bias_data"])}
            if layer.relu:
                drop.add(get(f"{layer.name}_relu")["name"])
                rename[f"{layer.name}_relu"] = layer.name
        elif isinstance(layer, Conv):
            d = quantize_conv(layer)
            _check_dims(d, layer.name, (d["in_height"], d["in_width"]), out_shape)
        elif isinstance(layer, Fire) and not design.fuse_fire:
            for conv in layer.convs:
                _check_dims(quantize_conv(conv), conv.name, in_shape, out_shape)
        elif isinstance(layer, Fire):
            sq, e1, e3 = layer.convs
            ds = [get(n) for n in (sq.name, f"{sq.name}_relu", e1.name, f"{e1.name}_relu", e3.name,
                                   f"{e3.name}_relu", f"{layer.name}_concat")]
            for conv in layer.convs:
                _check_dims(get(conv.name), conv.name, in_shape, out_shape)
            h, w, c = in_shape

            def matrix(conv, n_in):
                f = spec.layers[conv.name]
                kernel = _quantized(f.weight, get(conv.name)["weight_data"])  # HWIO: rows (ky, kx, channel)
                return kernel.reshape(n_in, conv.filters), _quantized(f.bias, get(conv.name)["bias_data"])

            fire = {"name": layer.name, "class_name": "SqzFire", "inputs": list(ds[0]["inputs"]),
                    "data_format": "channels_last", "in_height": h, "in_width": w, "n_chan": c,
                    "n_squeeze": layer.squeeze, "n_expand1": layer.expand1x1, "n_expand3": layer.expand3x3}
            for part, conv, n_in in (("squeeze", sq, c), ("expand1", e1, layer.squeeze),
                                     ("expand3", e3, 9 * layer.squeeze)):
                fire[f"{part}_matrix"], fire[f"{part}_bias_data"] = matrix(conv, n_in)
            replace[sq.name] = fire
            drop.update(d["name"] for d in ds[1:])
            rename[f"{layer.name}_concat"] = layer.name
        elif isinstance(layer, MaxPool):
            pool = get(layer.name)
            pad = by_name.get(f"{layer.name}_ceilpad")
            first = pad or pool
            if pad is not None:
                if pad.get("pad_top", 0) or pad.get("pad_left", 0):
                    raise UnsupportedModelError(f"layer {pad['name']}: round-up padding must be bottom/right only")
                drop.add(pool["name"])
            if (pool.get("pool_height"), pool.get("pool_width"), pool.get("stride_height"),
                    pool.get("stride_width")) != (3, 3, 2, 2):
                raise UnsupportedModelError(f"layer {layer.name}: pooling must be 3x3 / stride 2")
            _check_dims(pool, layer.name, (pool["in_height"], pool["in_width"]), out_shape)
            replace[first["name"]] = {
                "name": layer.name, "class_name": "SqzMaxPool2D", "inputs": list(first["inputs"]),
                "data_format": "channels_last", "in_height": in_shape[0], "in_width": in_shape[1],
                "n_chan": in_shape[2], "out_height": out_shape[0], "out_width": out_shape[1]}
        elif isinstance(layer, GlobalAvgPool):
            d = get(layer.name)
            p: PoolFormats = spec.layers[layer.name]
            replace[layer.name] = {
                "name": layer.name, "class_name": "SqzGlobalAvgPool2D", "inputs": list(d["inputs"]),
                "data_format": "channels_last", "in_height": in_shape[0], "in_width": in_shape[1],
                "n_chan": in_shape[2], "multiplier": int(p.multiplier), "shift": int(p.shift)}
    out = []
    for d in layer_list:
        if d["name"] in drop:
            continue
        d = replace.get(d["name"], d)
        d["inputs"] = [rename.get(i, i) for i in d.get("inputs", [])]
        out.append(d)
    return out


def loadable_weight_codes(design: Design) -> dict:
    """{layer: integer weight codes in the order sqz::conv1x1_rw reads them} for every loadable layer:
    the spec's weight format applied to the model's weights, (n_in, n_out) folded by hw.layers.fold_matrix."""
    from hw.layers import fold_factors, fold_matrix

    out = {}
    for name in design.loadable:
        w = design.params[name][0]                       # OIHW, 1x1
        codes = design.spec.layers[name].weight.quantize(np.asarray(w, np.float64))
        matrix = codes[:, :, 0, 0].T                     # (n_in, n_out)
        out[name] = fold_matrix(matrix, *fold_factors(*matrix.shape, design.reuse[name])).astype(np.int64)
    return out


# -- conversion ----------------------------------------------------------------------------------

def to_hls4ml(design: Design, output_dir: str | Path, log: io.StringIO | None = None):
    """Build the hls4ml ModelGraph for the design (nothing is written or compiled here)."""
    from hls4ml.converters.keras_v3_to_hls import parse_keras_v3_model
    from hls4ml.model import ModelGraph
    from hls4ml.utils.config import create_config

    from hw.layers import register_extensions

    register_extensions()
    log = log if log is not None else io.StringIO()
    with contextlib.redirect_stdout(log), warnings.catch_warnings():  # hls4ml's progress and notices
        warnings.simplefilter("ignore", UserWarning)
        layer_list, inputs, outputs, _ = parse_keras_v3_model(design.keras_model, allow_da_fallback=False,
                                                              allow_v2_fallback=True)
        layer_list = rewrite_layer_list(layer_list, design)
        config = create_config(output_dir=str(output_dir), project_name=PROJECT_NAME, backend=BACKEND,
                               part=design.board.part, clock_period=round(1000.0 / design.clock_mhz, 3),
                               io_type="io_stream", write_weights_txt=True)
        config["HLSConfig"] = hls_config(design)
        config["InputData"] = config["OutputPredictions"] = None
        # hls4ml 1.3.0 reads TraceOutput from the top level of the config (HLSConfig.Model's is ignored)
        config["TraceOutput"] = bool(design.trace)
        model = ModelGraph.from_layer_list(config, layer_list, inputs, outputs)
    names = [l.name for l in model.get_layers()]
    missing = [t for t in design.trace if t not in names]
    if missing:
        raise UnsupportedModelError(f"cannot trace {missing[0]!r}: no such layer in the hls4ml graph "
                                    f"(layers: {', '.join(names)})")
    check_types(model, design)
    if design.fuse_fire:
        from hw.estimate import DEFAULT_FIFO_DEPTH

        set_fifo_depths(model, DEFAULT_FIFO_DEPTH)
    return model


def set_fifo_depths(model, depth: int) -> None:
    """Shallow inter-layer FIFOs. hls4ml sizes every io_stream FIFO to a whole feature map (H*W words:
    conv1's output alone would take ~9 Mbit of block RAM, hls4ml issues #524/#1049). With the Fire
    modules fused the network is one chain without reconverging branches, so short FIFOs cannot
    deadlock; the depth is hw.estimate's assumption. (The unfused Clone/Concatenate graph keeps hls4ml's
    depths: there the 3x3 branch lags the 1x1 branch by a row of pixels.)"""
    for layer in model.get_layers():
        for var in layer.variables.values():
            pragma = getattr(var, "pragma", None)
            if isinstance(pragma, tuple) and pragma[0] == "stream":
                var.pragma = ("stream", min(int(pragma[1]), depth))


def stream_fifos(model, belongs=lambda name: True) -> list[dict]:
    """The FIFOs between the layers of an hls4ml graph, as its writer emits them (`#pragma HLS STREAM
    variable=... depth=...` in myproject.cpp): one entry per stream variable of the layers whose name
    satisfies `belongs`, with its depth and its word width in bits (channels x precision width).
    benchmarks/fire_vs_generic.py and the tests hold hw.estimate's FIFO list against this."""
    out = []
    for layer in model.get_layers():
        if not belongs(layer.name):
            continue
        for var in layer.variables.values():
            pragma = getattr(var, "pragma", None)
            if isinstance(pragma, tuple) and pragma[0] == "stream":
                out.append({"layer": layer.name, "var": var.name, "depth": int(pragma[1]),
                            "width": int(var.shape[-1]) * int(var.type.precision.width)})
    return out


def precision_format(p) -> FixedFormat:
    """hls4ml's FixedPrecisionType -> FixedFormat."""
    return FixedFormat(int(p.width), int(p.integer), bool(p.signed), f"AP_{p.rounding_mode}", f"AP_{p.saturation_mode}")


def check_types(model, design: Design) -> None:
    """Every type in the generated graph is the one the spec (and conv_result_format) asks for."""
    arch, spec = design.arch, design.spec
    layers = {l.name: l for l in model.get_layers()}
    want: list[tuple[str, object, FixedFormat]] = []   # (what, hls4ml precision, expected)

    def var(name):
        if name not in layers:
            raise RuntimeError(f"internal: layer {name} missing from the hls4ml graph "
                               f"(has {', '.join(layers)})")
        return layers[name]

    want.append(("input", var(design.input_name).get_output_variable().type.precision, spec.input))
    for layer in arch.layers:
        if isinstance(layer, Fire) and design.fuse_fire:
            node = var(layer.name)
            for part, conv in zip(("squeeze", "expand1", "expand3"), layer.convs):
                f = spec.layers[conv.name]
                want += [(f"{conv.name} weight", node.get_weights(f"{part}_weight").type.precision, f.weight),
                         (f"{conv.name} bias", node.get_weights(f"{part}_bias").type.precision, f.bias),
                         (f"{conv.name} accum", node.get_attr(f"{part}_accum_t").precision, f.accum)]
            want.append((f"{layer.name} squeeze result", node.get_attr("squeeze_t").precision,
                         spec.layers[layer.convs[0].name].result))
            want.append((f"{layer.name} result", node.get_output_variable().type.precision,
                         spec.layers[layer.convs[1].name].result))
            continue
        convs = (layer,) if isinstance(layer, Conv) else layer.convs if isinstance(layer, Fire) else ()
        for conv in convs:
            node, f = var(conv.name), spec.layers[conv.name]
            loadable = conv.name in design.loadable    # SqzConv1x1: weights not an hls4ml variable, ReLU inside
            want += [(f"{conv.name} weight", (node.get_attr("weight_t") if loadable
                                              else node.get_weights("weight").type).precision, f.weight),
                     (f"{conv.name} bias", node.get_weights("bias").type.precision, f.bias),
                     (f"{conv.name} accum", node.get_attr("accum_t").precision, f.accum),
                     (f"{conv.name} result", node.get_output_variable().type.precision,
                      f.result if loadable else conv_result_format(conv, f))]
            if conv.relu and not loadable:
                want.append((f"{conv.name} relu", var(f"{conv.name}_relu").get_output_variable().type.precision,
                             f.result))
        if isinstance(layer, Fire):
            want.append((f"{layer.name}_concat", var(f"{layer.name}_concat").get_output_variable().type.precision,
                         spec.layers[layer.convs[1].name].result))
        elif isinstance(layer, GlobalAvgPool):
            node, p = var(layer.name), spec.layers[layer.name]
            want += [(f"{layer.name} accum", node.get_attr("accum_t").precision, p.accum),
                     (f"{layer.name} result", node.get_output_variable().type.precision, p.result)]
    for layer in arch.layers:
        if isinstance(layer, MaxPool):  # a pool passes values through: its format is its input's
            node = var(layer.name)
            want.append((layer.name, node.get_output_variable().type.precision,
                         precision_format(node.get_input_variable().type.precision)))
    bad = []
    for what, got, expected in want:
        got_fmt = precision_format(got)
        if got_fmt != expected:
            bad.append(f"{what}: {got_fmt} (expected {expected})")
    if bad:
        raise RuntimeError("internal: the hls4ml graph does not carry the spec's formats: " + "; ".join(bad))


# -- uniform formats (estimates without a calibrated spec) --------------------------------------------

def uniform_spec(arch: Architecture, bits: int, input_size: int | None = None) -> QuantSpec:
    """Uniform `bits`-bit formats with no calibration -- enough to generate and estimate a design.

    input ap_fixed<B,9> (Caffe pixels), weights ap_fixed<B,1>, activations ap_ufixed<B,8>, logits
    ap_ufixed<B,8>; biases and accumulators get the products' fractional bits and the integer bits that
    any weights of the weight format can reach, so accumulation is exact whatever the weights.
    """
    from quant.arithmetic import reciprocal

    if not 2 <= bits <= 16:
        raise UnsupportedModelError(f"--bits must be in 2..16 for uniform formats, got {bits}")
    rnd = ("AP_RND", "AP_SAT")
    x = FixedFormat(bits, 9, True, *rnd)
    spec_input, weight, act = x, FixedFormat(bits, 1, True, *rnd), FixedFormat(bits, 8, False, *rnd)
    shapes = arch.conv_shapes(input_size)
    layers: dict = {}
    fmt_in = {}
    for layer in arch.layers:
        convs = (layer,) if isinstance(layer, Conv) else layer.convs if isinstance(layer, Fire) else ()
        for k, conv in enumerate(convs):
            src = act if isinstance(layer, Fire) and k > 0 else x
            fmt_in[conv.name] = src
        if convs:
            x = act
    for conv in arch.convs():
        src = fmt_in[conv.name]
        frac = src.frac + weight.frac
        bias = FixedFormat(max(8 + frac, 2), 8, True, *rnd)
        o, i, kh, kw = shapes[conv.name]["weight"]
        bound = i * kh * kw * max(abs(src.min_code), src.max_code) * abs(weight.min_code) + bias.max_code
        acc_w = bound.bit_length() + 1
        layers[conv.name] = ConvFormats(weight, bias, FixedFormat(acc_w, acc_w - frac, True, "AP_TRN", "AP_WRAP"), act)
    gap = _gap(arch)
    h, w, _ = shapes[arch.convs()[-1].name]["out"]
    mult, shift = reciprocal(h * w)
    sum_w = act.width + int(h * w - 1).bit_length() + 1
    layers[gap.name] = PoolFormats(FixedFormat(sum_w, sum_w - act.frac, True, "AP_TRN", "AP_WRAP"),
                                   FixedFormat(bits, 8, False, *rnd), mult, shift)
    spec = QuantSpec(arch.name, spec_input, layers, {"uniform_bits": bits, "note": "no calibration: for estimates"})
    spec.validate(arch)
    return spec
