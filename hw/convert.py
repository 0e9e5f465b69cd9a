"""Keras model + QuantSpec -> hls4ml model: Vitis backend, io_stream, sqz's kernels where hls4ml falls short.

    plan_design(keras_model, spec, ...)   validate everything, build the op list once, fold it: a `Design`
    to_hls4ml(design, output_dir)         the hls4ml ModelGraph, every type checked against the spec

What runs where is the op list (hw/ops/, one class per hardware layer kind): hls4ml's stock Conv2D +
ReLU for conv1 / conv10 (StockConv, with its ZeroPad where the conv is padded), sqz::conv1x1_rw for a
loadable 1x1 conv (LoadableConv), sqz::fire per Fire module (FusedFire; LoadableFire with UltraRAM
weights; GenericFire = hls4ml's unfused graph), sqz::maxpool_3x3s2 (hls4ml's pooling asserts pool ==
stride), sqz::global_avgpool (exact sum, reciprocal multiply, one cast), and the AXI shell. No softmax:
the accelerator outputs the logits (codes of the average pool's result format). Which ops get loadable
weights is hw.estimate.choose_loadable's one decision, for the design and its estimate alike.

How our kernels enter the graph
  hls4ml parses the Keras model into a list of layer dicts (`parse_keras_v3_model`); each op rewrites that
  list -- seven dicts of a Fire module (squeeze, expand1x1, expand3x3, their ReLUs, the concatenation)
  become one SqzFire dict, a max pool with its round-up padding becomes one SqzMaxPool2D dict, ... -- and
  the ModelGraph is built from the rewritten list (`ModelGraph.from_layer_list`, exactly what hls4ml's own
  Keras converter does next). The layers, templates and headers are registered through hls4ml's extension
  API (hw/ops/registry.register_extensions). Why not the other two routes: a custom Keras `Fire` layer
  would need a second Keras model (the project's model, its float reference and its evaluation all use
  stock layers); an optimizer pass in the global 'optimize' flow is process-wide (it would rewrite any
  model converted in the same process) and must do graph surgery hls4ml has no helper for (remove_node
  refuses multi-input nodes). Every dict is checked against the architecture's shapes, so a model that
  does not match fails here, before any C++ exists.

Arithmetic: quant/arithmetic.py is the definition; each op's module says how its kernel follows it
(hw/ops/conv.py: the stock conv's result_t that keeps "ReLU, then one cast" exact).
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

from hw.ops import GraphRewrite, HwOp, LayerPlan, UnsupportedModelError, build_ops  # noqa: F401
from hw.ops.conv import conv_result_format  # noqa: F401  (re-exported: tests and benchmarks use it)
from hw.ops.cost import closest
from hw.ops.registry import check_architecture, precision_format  # noqa: F401
from model.architecture import Architecture, ArchitectureError, get_architecture
from quant.fixed_point import FixedFormat
from quant.formats import uniform_spec  # noqa: F401  (re-exported: `sqz hls --bits`)
from quant.spec import QuantSpec

BACKEND = "Vitis"
PROJECT_NAME = "myproject"
FORMAT_VERSION = 1            # bump when the generated project changes in a way sources do not show
HW_DIR = Path(__file__).resolve().parent
# everything that decides the generated project besides the inputs (part of the build cache key)
GENERATOR_SOURCES = ("convert.py", "project.py", "scripts.py", "../host/axi.py", "../host/manifest.py", *sorted(
    str(p.relative_to(HW_DIR)) for p in (HW_DIR / "ops").glob("*.py")),
    "kernels/sqz_common.h", "kernels/sqz_fire.h", "kernels/sqz_pool.h", "kernels/sqz_axi.h", "kernels/sqz_conv.h")


# -- the plan --------------------------------------------------------------------------------------

@dataclass
class Design:
    """Everything the generated project depends on, validated. `key()` names it for the build cache.
    `ops` is the one op list (folded, loadable variants in place) that the estimate, the C++ generation
    and the manifest read."""
    arch: Architecture
    spec: QuantSpec
    input_size: int
    keras_model: object
    params: dict                 # conv name -> (weight OIHW float32, bias float32), from the Keras model
    reuse: dict                  # reuse key (conv / pool name) -> reuse factor actually used
    reuse_changes: dict          # name -> (requested, used) where a request was not valid
    board: object                # hw.boards.Board
    clock_mhz: float
    fuse_fire: bool
    ops: list
    input_name: str
    weights_note: str = "trained"
    trace: tuple = ()            # hls4ml layer names whose outputs C simulation records (CSimulator.trace)
    loadable: tuple = ()         # ops whose weights are loaded at start-up into UltraRAM
    layers: list = field(default_factory=list)   # LayerPlan per op (the CLI's and manifest's "layers")

    @property
    def logit_format(self) -> FixedFormat:
        return self.spec.logit_format

    def load_arrays(self) -> list:
        """Every runtime-written weight array of the design, in load order (hw/ops/base.LoadArray)."""
        return [a for op in self.ops for a in op.load_arrays(self.params)]

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

    def estimate(self, uram: str = "none"):
        """The ESTIMATE of exactly this design's op list (hw/estimate.py)."""
        from hw.estimate import estimate_ops

        return estimate_ops(self.ops, self.board, clock_mhz=self.clock_mhz, uram=uram, model=self.arch.name,
                            input_size=self.input_size, fuse_fire=self.fuse_fire)


def plan_design(keras_model, spec: QuantSpec, arch: Architecture | str | None = None, reuse: dict | None = None,
                board="zcu104", clock_mhz: float | None = None, fuse_fire: bool = True,
                weights_note: str = "trained", trace=(), loadable="none", fold: dict | None = None) -> Design:
    """Validate model, spec and options against what the back end supports; build and fold the op list.

    reuse: {name: R} for convolutions (Fire convolutions by their own names, or a Fire module's name for
    all three), max pools and the average pool (R = cycles per pixel; see hw/kernels). Missing entries:
    1 where hls4ml's Latency strategy fits (n_in * n_out < 4096), else the smallest valid R that brings
    the multipliers under that limit. Invalid requests move to the closest valid R (recorded).
    trace: names of layers of the generated hls4ml graph (e.g. 'pool1', 'fire2', or 'fire2_concat'
    when fuse_fire=False) whose outputs the C simulation records (hls4ml's TraceOutput; the extra code
    is #ifndef __SYNTHESIS__, synthesis is unchanged). Checked when the graph is built.
    loadable: which ops get runtime-loaded UltraRAM weights (the AXI top's load mode): 'none' (default),
    'auto', 'all' or op names (1x1 convs, Fire modules) -- hw.estimate.choose_loadable decides, for the
    reuse factors fixed here, exactly as the estimate does.
    fold: instead of `reuse`, fold the op list automatically: hw.estimate.fold's options (fps, max_dsp,
    uram; {} = the fastest folding that fits the board), for this loadable policy and clock.
    Raises UnsupportedModelError / SpecError with a message naming the layer.
    """
    from hw.boards import get_board
    from hw.estimate import configure, fold as fold_ops, loadable_names, with_loadable

    if arch is None:
        arch = get_architecture(spec.model)
    elif isinstance(arch, str):
        arch = get_architecture(arch)
    board = get_board(board)
    check_architecture(arch)
    size = keras_input_size(keras_model, arch)
    if spec.model != arch.name:
        raise UnsupportedModelError(f"the QuantSpec is for {spec.model}, the model is {arch.name}")
    spec.validate(arch)
    ops = build_ops(arch, spec, size, fuse_fire)
    input_name = check_keras_model(keras_model, arch, ops)
    params = keras_params(keras_model, arch)
    check_weight_codes(spec, params)
    for op in ops:
        op.validate(params)
    if fold is not None:
        if reuse:
            raise UnsupportedModelError("give reuse factors or folding options, not both")
        reuse = fold_ops(ops, board, clock_mhz=clock_mhz, loadable=loadable, fuse_fire=fuse_fire, **fold)
    used, changes = resolve_reuse(ops, arch, reuse or {})
    base = configure(ops, used, None, (), fuse_fire)
    names = loadable_names(base, board, loadable)
    design = Design(arch=arch, spec=spec, input_size=size, keras_model=keras_model, params=params, reuse=used,
                    reuse_changes=changes, board=board, clock_mhz=float(clock_mhz or board.clock_mhz),
                    fuse_fire=fuse_fire, ops=with_loadable(base, names), input_name=input_name,
                    weights_note=weights_note, trace=tuple(str(t) for t in trace), loadable=names)
    design.layers = layer_plans(design)
    return design


# -- validation ------------------------------------------------------------------------------------

_KERAS_KINDS = {"InputLayer", "Conv2D", "ZeroPadding2D", "MaxPooling2D", "Concatenate", "GlobalAveragePooling2D"}


def keras_input_size(model, arch: Architecture) -> int:
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise UnsupportedModelError(f"Keras model {model.name}: needs one input and one output")
    shape = tuple(model.inputs[0].shape[1:])
    if len(shape) != 3 or shape[0] != shape[1] or shape[2] != arch.in_channels:
        raise UnsupportedModelError(f"Keras model {model.name}: input shape {shape} is not square "
                                    f"HxWx{arch.in_channels}")
    size = int(shape[0])
    try:
        arch.shapes(size)
    except ArchitectureError as e:
        raise UnsupportedModelError(f"Keras model {model.name}: {e}") from None
    return size


def check_keras_model(model, arch: Architecture, ops: list[HwOp]) -> str:
    """The Keras model must be model/squeezenet.build_keras(arch, softmax=False): the layers each op is
    generated from (HwOp.keras_layers), with their sizes (HwOp.check_keras), and nothing else. Returns
    the input layer's name."""
    import keras

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
    expected = set()
    for op in ops:
        for name, kind in op.keras_layers().items():
            if name not in layers:
                if kind == "ZeroPadding2D":   # optional: round-up / explicit padding only where needed
                    continue
                raise UnsupportedModelError(f"Keras model {model.name}: layer {name} of {arch.name} is missing")
            if type(layers[name]).__name__ != kind:
                raise UnsupportedModelError(f"Keras model {model.name}: layer {name} is a "
                                            f"{type(layers[name]).__name__}, expected {kind}")
            expected.add(name)
        op.check_keras(layers, model.name)
    input_layer = next((l.name for l in model.layers if type(l).__name__ == "InputLayer"), None)
    expected.add(input_layer)
    unknown = [n for n in layers if n not in expected]
    if unknown:
        raise UnsupportedModelError(f"Keras model {model.name}: layer {unknown[0]} is not part of {arch.name}")
    if input_layer == "input":
        raise UnsupportedModelError("Keras model: an input layer named 'input' is reserved by hls4ml; rename it")
    return input_layer


def keras_params(model, arch: Architecture) -> dict:
    """conv name -> (weight OIHW, bias) as the Keras model holds them (float32)."""
    out = {}
    for conv in arch.convs():
        kernel, bias = model.get_layer(conv.name).get_weights()
        out[conv.name] = (np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)), np.asarray(bias))
    return out


def check_weight_codes(spec: QuantSpec, params: dict) -> None:
    """A spec with its own weight (or bias) codes needs a Keras model holding exactly those codes."""
    for kind, plural, i, table in (("weight", "weights", 0, spec.weights), ("bias", "biases", 1, spec.biases)):
        for name, codes in (table or {}).items():
            got = getattr(spec.layers[name], kind).quantize(np.asarray(params[name][i], np.float64))
            if not np.array_equal(got, codes):
                raise UnsupportedModelError(f"layer {name}: the model's {plural} are not the QuantSpec's {kind} "
                                            f"codes; build the Keras model from spec.effective_params(params)")


# -- reuse factors ---------------------------------------------------------------------------------

def resolve_reuse(ops: list[HwOp], arch: Architecture, requested: dict) -> tuple[dict, dict]:
    """Every foldable key of the ops -> the reuse factor used; requests that are not valid move to the
    closest valid factor (recorded as name -> (requested, used)). A Fire module's name sets all three."""
    foldable = {k: (op, valid) for op in ops for k, valid in op.foldable().items()}
    fires = {op.name: list(op.foldable()) for op in ops if op.name not in op.foldable() and op.foldable()}
    unknown = [n for n in requested if n not in foldable and n not in fires]
    if unknown:
        raise UnsupportedModelError(f"reuse factor for unknown layer {unknown[0]!r}; layers of {arch.name}: "
                                    f"{', '.join(list(foldable) + list(fires))}")
    want = {}
    for fire, convs in fires.items():
        if fire in requested:
            want.update({c: requested[fire] for c in convs})
    want.update({n: r for n, r in requested.items() if n not in fires})
    for name, r in want.items():
        if not isinstance(r, (int, np.integer)) or isinstance(r, bool) or r < 1:
            raise UnsupportedModelError(f"reuse factor for {name} must be a positive integer, got {r!r}")
    used, changes = {}, {}
    for name, (op, valid) in foldable.items():
        r = closest(valid, int(want[name])) if name in want else op.default_reuse(name)
        used[name] = r
        if name in want and r != want[name]:
            changes[name] = (int(want[name]), r)
    return used, changes


# -- what the ops generate -------------------------------------------------------------------------

def hls_config(design: Design) -> dict:
    """The hls4ml HLSConfig, generated from the ops (never edited by hand)."""
    names: dict = {design.input_name: {"Precision": {"result": str(design.spec.input)}}}
    for op in design.ops:
        names.update(op.hls_config())
    for name in design.trace:
        names.setdefault(name, {})["Trace"] = True
    return {"Model": {"Precision": {"default": "ap_fixed<16,6>"}, "ReuseFactor": 1, "Strategy": "Latency",
                      "BitExact": False, "TraceOutput": bool(design.trace)},
            "LayerName": names}


def layer_plans(design: Design) -> list[LayerPlan]:
    plans = [op.plan() for op in design.ops if op.kind != "shell"]
    for p in plans:
        for name, (want, got) in design.reuse_changes.items():
            if name == p.name or name.startswith(p.name + "_"):
                p.notes.append(f"reuse {want} requested for {name} is not valid; using {got}")
    return plans


def rewrite_layer_list(layer_list: list[dict], design: Design) -> list[dict]:
    """Quantize the stock layers' weights and put sqz's layers in place of the patterns they replace."""
    graph = GraphRewrite(layer_list, design.arch.name)
    for op in design.ops:
        op.rewrite(graph)
    return graph.result()


def loadable_weight_codes(design: Design) -> dict:
    """{layer: integer weight codes in the order its kernel reads them} for every loadable array."""
    return {a.layer: a.codes for a in design.load_arrays()}


# -- conversion ----------------------------------------------------------------------------------

def to_hls4ml(design: Design, output_dir: str | Path, log: io.StringIO | None = None):
    """Build the hls4ml ModelGraph for the design (nothing is written or compiled here)."""
    from hls4ml.converters.keras_v3_to_hls import parse_keras_v3_model
    from hls4ml.model import ModelGraph
    from hls4ml.utils.config import create_config

    from hw.ops import register_extensions

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
        from hw.ops.cost import DEFAULT_FIFO_DEPTH

        set_fifo_depths(model, DEFAULT_FIFO_DEPTH)
    return model


def set_fifo_depths(model, depth: int) -> None:
    """Shallow inter-layer FIFOs. hls4ml sizes every io_stream FIFO to a whole feature map (H*W words:
    conv1's output alone would take ~9 Mbit of block RAM, hls4ml issues #524/#1049). With the Fire
    modules fused the network is one chain without reconverging branches, so short FIFOs cannot
    deadlock; the depth is the cost model's assumption (hw/ops/cost.DEFAULT_FIFO_DEPTH). (The unfused
    Clone/Concatenate graph keeps hls4ml's depths: there the 3x3 branch lags the 1x1 branch by a row.)"""
    for layer in model.get_layers():
        for var in layer.variables.values():
            pragma = getattr(var, "pragma", None)
            if isinstance(pragma, tuple) and pragma[0] == "stream":
                var.pragma = ("stream", min(int(pragma[1]), depth))


def stream_fifos(model, belongs=lambda name: True) -> list[dict]:
    """The FIFOs between the layers of an hls4ml graph, as its writer emits them (`#pragma HLS STREAM
    variable=... depth=...` in myproject.cpp): one entry per stream variable of the layers whose name
    satisfies `belongs`, with its depth and its word width in bits (channels x precision width).
    benchmarks/fire_vs_generic.py and the tests hold the ops' FIFO lists against this."""
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


def check_types(model, design: Design) -> None:
    """Every type in the generated graph is the one its op asks for (HwOp.expected_types)."""
    layers = {l.name: l for l in model.get_layers()}

    def node(name):
        if name not in layers:
            raise RuntimeError(f"internal: layer {name} missing from the hls4ml graph (has {', '.join(layers)})")
        return layers[name]

    want = [("input", node(design.input_name).get_output_variable().type.precision, design.spec.input)]
    for op in design.ops:
        want += op.expected_types(node)
    bad = [f"{what}: {precision_format(got)} (expected {expected})" for what, got, expected in want
           if precision_format(got) != expected]
    if bad:
        raise RuntimeError("internal: the hls4ml graph does not carry the spec's formats: " + "; ".join(bad))
