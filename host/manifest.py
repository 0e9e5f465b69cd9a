"""manifest.json: what a generated design is, in the terms the host driver needs (numpy and stdlib only).

Every HLS project folder (`sqz hls --out DIR`) holds one, and `bitstreams/<board>/` will hold a copy
beside the bitstream: the host reads shapes, fixed-point formats, the AXI packing, the weight-load
stream and the control registers from it instead of hard-coding the model (STYLE.md, "PYNQ").

    m = Manifest.load("DIR")                 # or DIR/manifest.json; raises ManifestError naming the field
    words = m.axi.pack_input(codes)          # host.axi.AxiPacking
    m.save("bitstreams/zcu104")              # -> bitstreams/zcu104/manifest.json

Format "sqz-manifest", version 2. (Version 1 was the untyped `sqz_manifest.json` of format
"sqz-hls-project"; hw/project.py regenerates such folders.) `from_json` checks every field's type,
the required ones' presence and the derived AXI figures, and raises `ManifestError` with the file and
the dotted field name: "manifest.json: field 'axi.in_lane': expected an int, got 'x'". Unknown
top-level fields are refused (a typo would otherwise be dropped silently); nested objects may carry
extra, informational keys (e.g. axi.tlast).

The QuantSpec is embedded as the plain dict quant/spec.py writes: the board does not import quant/
(only its "format" and "model" are checked here; `quant.spec.QuantSpec.from_json` reads it fully).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, fields
from pathlib import Path

from host.axi import INFER_MODE, LANE_CHOICES, LOAD_MODE, WEIGHT_MAGIC, WORD_BITS, AxiPacking, WeightArray, WeightStream
from sqz.errors import SqzError

MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = "sqz-manifest"
MANIFEST_VERSION = 2
SPEC_FORMAT = "sqz-quantspec"          # quant/spec.py SPEC_FORMAT (not imported: host/ does not import quant/)
ESTIMATE_SOURCE = "estimate"           # Resources.source until synthesis / implementation reports replace it
# The VLNV under which Vitis HLS exports sqz_top (hw/scripts.py writes it into export_design; the host driver
# finds the accelerator by it in the .hwh)
IP_VLNV = "sqz.local:hls:sqz_squeezenet:1.0"

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class ManifestError(SqzError):
    """A manifest that cannot be read or does not describe a design; the message names the file and field."""


# -- parts --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class InputInfo:
    """The accelerator's input: codes of `format` (value * 2**frac), `shape` = (H, W, C)."""
    shape: tuple
    format: str
    frac: int
    layout: str = "HWC, row-major"
    cpp_type: str | None = None          # hls4ml's C++ type name (project-specific)
    bridge_name: str | None = None       # hls4ml's input variable name (project-specific)
    # The preprocessing the model was trained with (Caffe's): BGR, the shorter side resized to `resize`, centre
    # crop to `shape`, minus `mean_bgr` per channel (images already of the input size pass untouched).
    mean_bgr: tuple = (104.0, 117.0, 123.0)
    resize: int = 256


@dataclass(frozen=True)
class OutputInfo:
    """The accelerator's output: `n` codes of `format` (value * 2**frac)."""
    n: int
    format: str
    frac: int
    meaning: str = "logits (no softmax)"
    cpp_type: str | None = None


@dataclass(frozen=True)
class ControlRegisters:
    """Byte offsets in the top's s_axilite bundle (designs with a `mode` argument; free-running
    ap_ctrl_none designs have none). Vitis HLS's register map (UG1399, "S_AXILITE Control Register Map",
    2022.2, and the xexample_hw.h listing under "Controlling Hardware"; also FIELD_NOTES.md "PYNQ driver
    facts"): 0x00 control (ap_start bit 0, ap_done 1, ap_idle 2, ap_ready 3, auto_restart 7), 0x04 global
    interrupt enable, 0x08 IP interrupt enable, 0x0C IP interrupt status, the first scalar argument at
    0x10 (0x00..0x18 are reserved only with counted auto-restart or a mailbox, which sqz does not use).
    Not yet checked against a synthesised design: the .hwh / xsqz_top_hw.h of the first synthesis is the
    authority."""
    bundle: str = "control"
    protocol: str = "ap_ctrl_hs"
    ap_ctrl: int = 0x00
    gier: int = 0x04
    ier: int = 0x08
    isr: int = 0x0C
    mode: int = 0x10                     # the scalar `mode` (0 inference, 1 weight load)
    ap_start_bit: int = 0
    ap_done_bit: int = 1
    ap_idle_bit: int = 2
    ap_ready_bit: int = 3
    auto_restart_bit: int = 7
    source: str = "Vitis HLS s_axilite register map (UG1399); not yet checked against a synthesised .hwh"


@dataclass(frozen=True)
class ToolVersions:
    """Tools that made the design; None: not run (Vitis HLS / Vivado are not installed where sqz generates)."""
    hls4ml: str | None
    vitis_hls: str | None = None
    vivado: str | None = None


@dataclass(frozen=True)
class Resources:
    """Resources and speed of the design and where the figures come from: `source` is "estimate"
    (hw/estimate.py, before synthesis) until synthesis / implementation reports replace it."""
    source: str
    dsp: int
    bram18: int
    uram: int
    lut: int
    ii_cycles: int                       # cycles per frame of the slowest layer
    clock_mhz: float
    fps: float
    fits: bool
    wns_ns: float | None = None          # worst negative slack of a timing report; None for an estimate


# -- the manifest -------------------------------------------------------------------------------------

@dataclass
class Manifest:
    key: str                             # content key of the design (hw/convert.py Design.key())
    model: str                           # architecture name, e.g. squeezenet1_0
    weights: str                         # where the weights came from (e.g. "trained (Deep Compression)")
    weights_sha256: str                  # of the integer weight and bias codes (hw/project.py weights_digest)
    board: str
    part: str
    clock_mhz: float
    top: str                             # the HLS top function (the IP's s_axilite / AXI-Stream owner)
    input: InputInfo
    output: OutputInfo
    axi: AxiPacking
    spec: dict                           # the QuantSpec as quant/spec.py writes it
    tools: ToolVersions
    resources: Resources
    board_part: str | None = None        # Vivado board part (hw/boards.py)
    weight_load: WeightStream | None = None     # designs with loadable (UltraRAM) weights
    weight_load_file: str | None = None         # the load stream's file, beside the manifest
    control: ControlRegisters | None = None     # s_axilite registers (designs with a mode argument)
    spec_weights_file: str | None = None        # the spec's weight codes (.npz), beside the manifest
    bit_sha256: str | None = None               # of the bitstream; None until one exists
    class_names: list | None = None             # optional human-readable class names, index = logit
    # project-specific (hw/): how the HLS project was generated and how to C-simulate it
    hls4ml_top: str | None = None
    backend: str | None = None
    io_type: str | None = None
    fused_fire: bool | None = None
    fifo_depths: list = field(default_factory=list)
    csim: dict | None = None
    reuse: dict = field(default_factory=dict)
    trace: list = field(default_factory=list)
    layers: list = field(default_factory=list)

    # -- JSON ---------------------------------------------------------------------------------
    def to_json(self) -> dict:
        wl = None
        if self.weight_load is not None:
            wl = {**self.weight_load.to_json(), "file": self.weight_load_file,
                  "byte_order": "little-endian uint64 beats",
                  "control": "with the 'control' registers: write mode = 1 (load_mode), start, send the stream on "
                             "the DMA's MM2S channel and read the one reply beat on S2MM; then mode = 0 for frames"}
        return {
            "format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "key": self.key,
            "model": self.model, "weights": self.weights, "weights_sha256": self.weights_sha256,
            "board": self.board, "part": self.part, "board_part": self.board_part, "clock_mhz": self.clock_mhz,
            "top": self.top, "hls4ml_top": self.hls4ml_top, "hls4ml": self.tools.hls4ml,
            "tools": _asdict(self.tools), "backend": self.backend, "io_type": self.io_type,
            "fused_fire": self.fused_fire, "fifo_depths": list(self.fifo_depths),
            "input": {**_asdict(self.input), "shape": list(self.input.shape), "mean_bgr": list(self.input.mean_bgr)},
            "output": _asdict(self.output),
            "axi": self.axi.to_json(),
            "weight_load": wl,
            "control": None if self.control is None else _asdict(self.control),
            "csim": self.csim, "reuse": self.reuse, "trace": self.trace, "layers": self.layers,
            "spec": self.spec, "spec_weights_file": self.spec_weights_file,
            "resources": _asdict(self.resources), "bit_sha256": self.bit_sha256,
            "class_names": self.class_names,
        }

    @classmethod
    def from_json(cls, data, where: str = MANIFEST_FILE) -> "Manifest":
        top = _Fields(data, where)
        fmt = top.get("format", str)
        if fmt != MANIFEST_FORMAT:
            raise top.error("format", f"expected {MANIFEST_FORMAT!r}, got {fmt!r} (not an sqz manifest)")
        version = top.get("version", int)
        if version != MANIFEST_VERSION:
            raise top.error("version", f"version {version} is not supported (this code reads version "
                                       f"{MANIFEST_VERSION}; regenerate the project)")
        unknown = sorted(set(data) - _TOP_LEVEL)
        if unknown:
            raise top.error(unknown[0], "unknown field")

        tools_f = top.sub("tools")
        tools = ToolVersions(tools_f.get("hls4ml", str, nullable=True),
                             tools_f.get("vitis_hls", str, required=False, nullable=True),
                             tools_f.get("vivado", str, required=False, nullable=True))
        if "hls4ml" in data and top.get("hls4ml", str, nullable=True) != tools.hls4ml:
            raise top.error("hls4ml", f"{data['hls4ml']!r} differs from tools.hls4ml {tools.hls4ml!r}")

        axi = _axi(top.sub("axi"))
        inp_f = top.sub("input")
        shape = tuple(inp_f.get_list("shape", int))
        if shape != (axi.height, axi.width, axi.channels):
            raise inp_f.error("shape", f"{list(shape)} differs from the AXI packing's "
                                       f"{[axi.height, axi.width, axi.channels]}")
        inp = InputInfo(shape, inp_f.get("format", str), inp_f.get("frac", int),
                        inp_f.get("layout", str, required=False, default=InputInfo.layout),
                        inp_f.get("cpp_type", str, required=False, nullable=True),
                        inp_f.get("bridge_name", str, required=False, nullable=True),
                        tuple(inp_f.get_list("mean_bgr", float, required=False, default=list(InputInfo.mean_bgr))),
                        inp_f.get("resize", int, required=False, default=InputInfo.resize))
        if len(inp.mean_bgr) != 3:
            raise inp_f.error("mean_bgr", f"expected 3 values (B, G, R), got {list(inp.mean_bgr)}")
        out_f = top.sub("output")
        out = OutputInfo(out_f.get("n", int), out_f.get("format", str), out_f.get("frac", int),
                         out_f.get("meaning", str, required=False, default=OutputInfo.meaning),
                         out_f.get("cpp_type", str, required=False, nullable=True))
        if out.n != axi.n_out:
            raise out_f.error("n", f"{out.n} differs from the AXI packing's n_out {axi.n_out}")

        stream, stream_file = None, None
        if top.get("weight_load", dict, required=False, nullable=True) is not None:
            wl = top.sub("weight_load")
            stream, stream_file = _weight_stream(wl), wl.get("file", str)
        control = None
        if top.get("control", dict, required=False, nullable=True) is not None:
            control = ControlRegisters(**_read_fields(top.sub("control"), ControlRegisters))
        if stream is not None and control is None:
            raise top.error("control", "missing: a design with a weight-load stream has s_axilite control registers")

        spec_f = top.sub("spec")
        spec_format, spec_model, model = spec_f.get("format", str), spec_f.get("model", str), top.get("model", str)
        if spec_format != SPEC_FORMAT:
            raise spec_f.error("format", f"expected {SPEC_FORMAT!r}, got {spec_format!r} (not a QuantSpec)")
        if spec_model != model:
            raise spec_f.error("model", f"{spec_model!r} differs from the manifest's model {model!r}")
        spec_f.get("layers", dict)

        res_f = top.sub("resources")
        resources = Resources(**_read_fields(res_f, Resources))

        trace = top.get_list("trace", dict, required=False)
        for i in range(len(trace)):
            t = top.sub("trace", i)
            t.get("name", str), t.get_list("shape", int), t.get("format", str), t.get("frac", int)
        layers = top.get_list("layers", dict, required=False)
        for i in range(len(layers)):
            top.sub("layers", i).get("name", str)
        reuse = top.get("reuse", dict, required=False, default={})
        for name in reuse:
            top.sub("reuse").get(name, int)
        csim = top.get("csim", dict, required=False, nullable=True)
        if csim is not None:
            for name in csim:
                top.sub("csim").get(name, str)

        return cls(
            key=top.get("key", str), model=model, weights=top.get("weights", str),
            weights_sha256=top.get_sha256("weights_sha256"),
            board=top.get("board", str), part=top.get("part", str), clock_mhz=top.get("clock_mhz", float),
            top=top.get("top", str), input=inp, output=out, axi=axi, spec=data["spec"], tools=tools,
            resources=resources, board_part=top.get("board_part", str, required=False, nullable=True),
            weight_load=stream, weight_load_file=stream_file, control=control,
            spec_weights_file=top.get("spec_weights_file", str, required=False, nullable=True),
            bit_sha256=top.get_sha256("bit_sha256", nullable=True),
            class_names=top.get_list("class_names", str, required=False, nullable=True, default=None),
            hls4ml_top=top.get("hls4ml_top", str, required=False, nullable=True),
            backend=top.get("backend", str, required=False, nullable=True),
            io_type=top.get("io_type", str, required=False, nullable=True),
            fused_fire=top.get("fused_fire", bool, required=False, nullable=True),
            fifo_depths=top.get_list("fifo_depths", int, required=False),
            csim=csim, reuse=reuse, trace=trace, layers=layers)

    # -- files --------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path) -> "Manifest":
        """From a manifest file, or a folder holding manifest.json."""
        path = _file(path)
        try:
            text = path.read_text()
        except OSError as e:
            raise ManifestError(f"{path}: cannot read the manifest ({e.strerror})") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ManifestError(f"{path}: not valid JSON ({e})") from None
        return cls.from_json(data, where=str(path))

    def save(self, path: str | Path) -> Path:
        """To a file, or to manifest.json in a folder; returns the file written."""
        path = _file(path)
        path.write_text(json.dumps(self.to_json(), indent=1) + "\n")
        return path


_TOP_LEVEL = frozenset((
    "format", "version", "key", "model", "weights", "weights_sha256", "board", "part", "board_part", "clock_mhz",
    "top", "hls4ml_top", "hls4ml", "tools", "backend", "io_type", "fused_fire", "fifo_depths", "input", "output",
    "axi", "weight_load", "control", "csim", "reuse", "trace", "layers", "spec", "spec_weights_file", "resources",
    "bit_sha256", "class_names"))      # what to_json writes (tests/test_host_manifest.py checks they agree)


def _file(path: str | Path) -> Path:
    path = Path(path)
    return path / MANIFEST_FILE if path.is_dir() else path


def _asdict(obj) -> dict:
    return {k: getattr(obj, k) for k in obj.__dataclass_fields__}


# -- validation -----------------------------------------------------------------------------------

_KINDS = {int: "an int", float: "a number", str: "a string", bool: "true or false", dict: "an object",
          list: "a list"}


def _is(value, kind) -> bool:
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, kind)


class _Fields:
    """Typed access to one JSON object, naming fields by their dotted path in errors."""

    def __init__(self, data, where: str, path: str = ""):
        self.where, self.path = where, path
        if not isinstance(data, dict):
            if path:
                raise ManifestError(f"{where}: field '{path}': expected an object, got {_show(data)}")
            raise ManifestError(f"{where}: expected a JSON object, got {_show(data)}")
        self.data = data

    def name(self, key) -> str:
        if isinstance(key, int):
            return f"{self.path}[{key}]"
        return f"{self.path}.{key}" if self.path else str(key)

    def error(self, key, message: str) -> ManifestError:
        return ManifestError(f"{self.where}: field '{self.name(key)}': {message}")

    def get(self, key: str, kind, required: bool = True, nullable: bool = False, default=None):
        if key not in self.data:
            if required:
                raise self.error(key, "missing")
            return default
        value = self.data[key]
        if value is None and nullable:
            return None
        if not _is(value, kind):
            raise self.error(key, f"expected {_KINDS[kind]}{' or null' if nullable else ''}, got {_show(value)}")
        return float(value) if kind is float else value

    def get_list(self, key: str, item_kind, required: bool = True, nullable: bool = False, default=()) -> list:
        items = self.get(key, list, required=required, nullable=nullable, default=default)
        if items is None:
            return None
        for i, v in enumerate(items):
            if not _is(v, item_kind):
                raise ManifestError(f"{self.where}: field '{self.name(key)}[{i}]': expected {_KINDS[item_kind]}, "
                                    f"got {_show(v)}")
        return [float(v) for v in items] if item_kind is float else list(items)

    def get_sha256(self, key: str, nullable: bool = False) -> str | None:
        value = self.get(key, str, nullable=nullable, required=not nullable)
        if value is not None and not _SHA256.match(value):
            raise self.error(key, f"expected 64 lowercase hex digits (sha256), got {_show(value)}")
        return value

    def sub(self, key, index: int | None = None) -> "_Fields":
        if key not in self.data:
            raise self.error(key, "missing")
        value, path = self.data[key], self.name(key)
        if index is not None:
            value, path = value[index], f"{path}[{index}]"
        return _Fields(value, self.where, path)


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _read_fields(f: _Fields, cls) -> dict:
    """The fields of a flat dataclass of ints / floats / strings / bools, each required unless it may be
    None (then an absent one is None)."""
    out = {}
    for fld in fields(cls):
        hint = str(fld.type)                 # a string: the modules use `from __future__ import annotations`
        nullable = "None" in hint
        kind = {"int": int, "float": float, "str": str, "bool": bool}[hint.split("|")[0].strip()]
        out[fld.name] = f.get(fld.name, kind, required=not nullable, nullable=nullable)
    return out


def _axi(f: _Fields) -> AxiPacking:
    values = _read_fields(f, AxiPacking)
    for name in ("height", "width", "channels", "n_out", "in_bits", "out_bits"):
        if values[name] < 1:
            raise f.error(name, f"must be >= 1, got {values[name]}")
    for lane, bits in (("in_lane", "in_bits"), ("out_lane", "out_bits")):
        if values[lane] not in LANE_CHOICES:
            raise f.error(lane, f"must be one of {list(LANE_CHOICES)}, got {values[lane]}")
        if values[bits] > values[lane]:
            raise f.error(bits, f"{values[bits]} bits do not fit the {values[lane]}-bit {lane}")
    if values["channels"] * values["in_lane"] > WORD_BITS:
        raise f.error("channels", f"{values['channels']} lanes of {values['in_lane']} bits do not fit a "
                                  f"{WORD_BITS}-bit beat")
    packing = AxiPacking(**values)
    for name, want in (("word_bits", WORD_BITS), ("in_beats", packing.in_beats), ("out_beats", packing.out_beats)):
        if name in f.data and f.get(name, int) != want:
            raise f.error(name, f"{f.data[name]} differs from {want}, computed from the other fields")
    return packing


def _weight_stream(f: _Fields) -> WeightStream:
    arrays, beat = [], 0
    for i in range(len(f.get_list("arrays", dict))):
        a = f.sub("arrays", i)
        values = _read_fields(a, WeightArray)
        if values["n"] < 1:
            raise a.error("n", f"must be >= 1, got {values['n']}")
        if values["lane"] not in LANE_CHOICES:
            raise a.error("lane", f"must be one of {list(LANE_CHOICES)}, got {values['lane']}")
        if not 1 <= values["bits"] <= values["lane"]:
            raise a.error("bits", f"{values['bits']} bits do not fit the {values['lane']}-bit lane")
        if values["first_beat"] != beat:
            raise a.error("first_beat", f"{values['first_beat']}, but the arrays before it end at payload beat {beat}")
        array = WeightArray(**values)
        if "beats" in a.data and a.get("beats", int) != array.beats:
            raise a.error("beats", f"{a.data['beats']} differs from {array.beats}, computed from n and lane")
        arrays.append(array)
        beat += array.beats
    stream = WeightStream(tuple(arrays))
    for name, want in (("word_bits", WORD_BITS), ("magic", WEIGHT_MAGIC), ("payload_beats", stream.payload_beats),
                       ("total_beats", stream.total_beats), ("load_mode", LOAD_MODE), ("infer_mode", INFER_MODE)):
        if name in f.data and f.get(name, int) != want:
            raise f.error(name, f"{f.data[name]} differs from {want}" +
                          (", computed from the arrays" if name.endswith("beats") else " (this code's protocol)"))
    return stream
