"""What every hardware op is: the base class, the plan entry it writes, and the graph-rewrite context.

An op is one hardware layer of the streaming dataflow pipeline (FINN's HLSCustomOp, in sqz's terms).
Each op kind lives in one file of hw/ops/ and owns, side by side:
  validation     `validate(params)`: shapes, widths and formats the kernel supports (errors name the layer)
  hls4ml         `keras_layers()`, `hls_config()`, `rewrite(graph)`, `expected_types(node)` and the
                 module's `hls4ml_extension()` (layer class, templates, kernel header) where it has its own
  plan           `plan()`: its entry of the CLI's "layers" list and the manifest
  cost           `memories()`, `engines()`, `cycles()`, `logic_luts()`: what hw/estimate.py adds up
  folding        `foldable()` (reuse keys and their valid factors), `stages()` for the folding search
  loadable       `load_candidate()`, `as_loadable()`, `load_arrays()` where its weights can live in UltraRAM
Ops are built from plain shapes and FixedFormats (`from_layer` takes the architecture's layer, but
nothing needs a Keras model or a QuantSpec object), so designs from elsewhere can be estimated too.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from hw.ops.cost import CostOptions, LayerEstimate, Memory, Stage
from quant.fixed_point import FixedFormat
from sqz.errors import SqzError

MAX_DATA_BITS = 32            # weights, biases, activations, logits (and an AXI lane)
MAX_ACCUM_BITS = 64
SATURATING = ("AP_SAT", "AP_SAT_SYM", "AP_SAT_ZERO")


class UnsupportedModelError(SqzError, ValueError):
    """The model, spec or options ask for something the hardware back end cannot build; raised before any C++."""


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


def check_width(name: str, field_name: str, fmt: FixedFormat, limit: int) -> None:
    if fmt.width > limit:
        raise UnsupportedModelError(f"layer {name} field {field_name!r}: {fmt} is wider than the "
                                    f"{limit} bits the hardware back end supports")


def quantized(fmt: FixedFormat, values) -> np.ndarray:
    """Values rounded and saturated to fmt, as exact float64 (hls4ml prints them with frac decimals)."""
    return fmt.to_float(fmt.quantize(np.asarray(values, np.float64)))


@dataclass
class LoadArray:
    """One runtime-written weight array of a loadable op: its codes in the order the kernel reads them,
    and where the generated graph names its C++ type (hls4ml layer `node`, attribute `type_attr`)."""
    layer: str                  # the convolution whose weights these are
    array: str                  # C++ name of the namespace-scope array (sqz_w_<layer>)
    codes: np.ndarray           # int64, folded order (hw/ops/cost.fold_matrix)
    fmt: FixedFormat
    reuse: int                  # the engine's reuse factor: the array is read codes.size / reuse per cycle
    node: str
    type_attr: str


class GraphRewrite:
    """hls4ml's parsed layer list (dicts) and the edits the ops make to it before the ModelGraph is built:
    `replace` a dict by another, `drop` dicts, `rename` an output (later layers' inputs follow)."""

    def __init__(self, layer_list: list[dict], model_name: str):
        self.layer_list = layer_list
        self.by_name = {d["name"]: d for d in layer_list}
        self.model_name = model_name
        self.replace: dict[str, dict] = {}
        self.drop: set[str] = set()
        self.rename: dict[str, str] = {}

    def get(self, name: str) -> dict:
        if name not in self.by_name:
            raise UnsupportedModelError(f"layer {name} of {self.model_name} is missing from the converted model")
        return self.by_name[name]

    def check_dims(self, d: dict, name: str, in_shape, out_shape) -> None:
        got_in = (d.get("in_height"), d.get("in_width"))
        got_out = (d.get("out_height"), d.get("out_width"))
        if got_in != tuple(in_shape[:2]) or (out_shape is not None and got_out != tuple(out_shape[:2])):
            raise UnsupportedModelError(f"layer {name}: hls4ml sees {got_in} -> {got_out}, the architecture "
                                        f"{tuple(in_shape[:2])} -> {tuple(out_shape[:2]) if out_shape else '?'}")

    def result(self) -> list[dict]:
        out = []
        for d in self.layer_list:
            if d["name"] in self.drop:
                continue
            d = self.replace.get(d["name"], d)
            d["inputs"] = [self.rename.get(i, i) for i in d.get("inputs", [])]
            out.append(d)
        return out


class HwOp:
    """A hardware op of the dataflow pipeline (see the module docstring for what each method owns)."""
    kind = "op"
    kernel = ""                   # the C++ function that runs it
    loadable = False              # weights in UltraRAM, written at start-up (the Loadable* ops)
    weighted = False              # has weights (its foldable keys are products, not channel groups)
    loadable_variant: type | None = None   # the class of the same op with runtime-written UltraRAM weights

    def __init__(self, name: str, in_shape, out_shape):
        self.name, self.in_shape, self.out_shape = name, tuple(in_shape), tuple(out_shape)
        self.reuse: dict[str, int] = {}           # reuse key -> factor, set by the folding
        self.fifo_depth: int | str = 32           # policy for the FIFO(s) it owns (hw/ops/cost.fifo_depth_for)
        self.fifo_per_channel = False             # hls4ml <= 0.6 streams: one FIFO per channel (designs from elsewhere)

    # -- folding ------------------------------------------------------------------------------
    def foldable(self) -> dict[str, list[int]]:
        """reuse key -> valid reuse factors (ascending); keys are layer names of the architecture."""
        return {}

    def default_reuse(self, key: str) -> int:
        return 1

    def stages(self) -> list[Stage]:
        return []

    def min_cycles(self) -> int:
        """The fewest cycles per frame this op can take, whatever its folding (the pipeline's floor)."""
        return 0

    def set_reuse(self, reuse: dict) -> None:
        """Take this op's keys from a {key: R} dict (missing keys: the default)."""
        self.reuse = {k: int(reuse.get(k, self.default_reuse(k))) for k in self.foldable()}

    def reuse_json(self):
        return None

    # -- cost ---------------------------------------------------------------------------------
    def engines(self) -> list:
        return []

    def memories(self) -> list[Memory]:
        return []

    def cycles(self) -> int:
        raise NotImplementedError

    def placed_memories(self) -> list[Memory]:
        """memories() as the tools place them: split per channel for hls4ml <= 0.6 streams."""
        from hw.ops.cost import per_channel_fifos

        mems = self.memories()
        return per_channel_fifos(mems, self.out_shape[2]) if self.fifo_per_channel else mems

    def logic_luts(self, opt: CostOptions) -> float:
        return sum(e.logic_luts(opt) for e in self.engines())

    def extra_dsp(self, opt: CostOptions) -> int:
        return 0

    def extra_bram18(self) -> int:
        return 0

    def estimate(self, opt: CostOptions, memories: list[Memory] | None = None) -> LayerEstimate:
        mems = self.placed_memories() if memories is None else memories
        engines = self.engines()
        mem_lut = sum(m.lut for m in mems)
        weights = {m.style for m in mems if m.role == "weights"}
        return LayerEstimate(
            name=self.name, kind=self.kind,
            dsp=sum(e.dsp(opt) for e in engines) + self.extra_dsp(opt),
            bram18=sum(m.bram18 for m in mems) + self.extra_bram18(),
            uram=sum(m.uram for m in mems),
            lut=int(round(self.logic_luts(opt) + mem_lut)),
            ii_cycles=int(self.cycles()), reuse=self.reuse_json(),
            macs=sum(e.macs for e in engines), lutram=mem_lut,
            weights_in=(weights.pop() if len(weights) == 1 else "mixed") if weights else "",
            fifo_bits=sum(m.bits for m in mems if "fifo" in m.role),
            fifos=sum("fifo" in m.role for m in mems),
            in_shape=self.in_shape, out_shape=self.out_shape)

    # -- validation and generation ------------------------------------------------------------
    def validate(self, params: dict) -> None:
        """Widths and formats the kernel supports; params: conv name -> (weight OIHW, bias) float."""

    def keras_layers(self) -> dict[str, str]:
        """Keras layer name -> class name that this op is generated from (checked before conversion)."""
        return {}

    def check_keras(self, layers: dict, model_name: str) -> None:
        """The Keras layers it is generated from (layers: name -> Keras layer) have the op's sizes."""

    def hls_config(self) -> dict:
        """hls4ml HLSConfig 'LayerName' entries of this op."""
        return {}

    def rewrite(self, graph: GraphRewrite) -> None:
        """Edit hls4ml's parsed layer list so this op's kernel takes the place of what it replaces."""

    def expected_types(self, node) -> list[tuple[str, object, FixedFormat]]:
        """(what, hls4ml precision, expected format) for every type of the generated graph this op sets;
        node(name) returns the hls4ml layer of that name."""
        return []

    def plan(self) -> LayerPlan:
        raise NotImplementedError

    # -- loadable weights ---------------------------------------------------------------------
    def load_candidate(self) -> bool:
        """Can this op, at its current folding, get runtime-written UltraRAM weights?"""
        return False

    def not_loadable_reason(self) -> str:
        return f"a {self.kind} op has no loadable-weights variant"

    def as_loadable(self) -> "HwOp":
        """The same op, folded the same, as its loadable variant (a subclass adding no state of its own)."""
        if self.loadable:
            return self
        if self.loadable_variant is None or not self.load_candidate():
            raise UnsupportedModelError(f"loadable weights for {self.name}: {self.not_loadable_reason()}")
        op = copy.copy(self)
        op.__class__ = self.loadable_variant
        op.reuse = dict(self.reuse)
        return op

    def load_arrays(self, params: dict) -> list[LoadArray]:
        """Every array it loads at start-up (params: conv name -> (weight OIHW, bias) float)."""
        return []


class SingleEngineOp(HwOp):
    """An op with one n_in x n_out product folded by one reuse factor, keyed by the op's own name
    (a stock or loadable conv, a dense layer): its folding in one place."""
    weighted = True
    n_in: int
    n_out: int

    @property
    def r(self) -> int:
        return self.reuse[self.name]

    def foldable(self):
        from hw.ops.cost import valid_reuse_factors

        return {self.name: valid_reuse_factors(self.n_in, self.n_out)}

    def default_reuse(self, key):
        from hw.ops.cost import default_reuse

        return default_reuse(self.n_in, self.n_out)

    def reuse_json(self):
        return self.r
