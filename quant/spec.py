"""QuantSpec: every layer's fixed-point formats, the one file quant/ hands to hw/ and host/.

A versioned, human-readable JSON:

    {"format": "sqz-quantspec", "version": 1, "model": "squeezenet1_0",
     "input":  "ap_fixed<9,9,AP_RND,AP_SAT>",
     "layers": {"conv1": {"weight": "ap_fixed<8,1,AP_RND,AP_SAT>", "bias": "ap_fixed<32,12,AP_RND,AP_SAT>",
                          "accum": "ap_fixed<32,20,AP_TRN,AP_WRAP>", "result": "ap_ufixed<8,7,AP_RND,AP_SAT>"},
                ...,
                "pool10": {"accum": ..., "result": ..., "reciprocal": {"multiplier": 74565, "shift": 24}}},
     "calibration": {...}}    # where the formats came from: images, rules (free-form, informational)

Conventions the emulator (quant/emulator.py) and the HLS kernels (hw/) both follow:
- every convolution is followed by ReLU, so its `result` is the post-ReLU activation (normally ap_ufixed);
- a Fire module's expand1x1 and expand3x3 share one result format (they are concatenated into one stream);
- a layer's input format is the previous layer's result (max pools pass values through unchanged);
- accumulation is exact: accum has at least the product's fractional bits and enough integer bits
  for the layer's weights (checked against the weights in quant.emulator), so accum never rounds or wraps;
- the global average pool sums exactly, multiplies by `multiplier`, shifts right by `shift`
  (multiplier / 2**shift ~ 1/(H*W)), and casts to its `result`: the logits, with no softmax.
"""
from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from model.architecture import Architecture, ArchitectureError, Conv, Fire, GlobalAvgPool, get_architecture
from quant.fixed_point import FixedFormat, FormatError
from quant.formats import check_avgpool, conv_format_rules
from sqz.errors import SqzError
from sqz.files import atomic_write

SPEC_FORMAT = "sqz-quantspec"
SPEC_VERSION = 1
BIAS_KEY = ":bias"        # key suffix of a layer's bias codes in <name>.weights.npz


class SpecError(SqzError, ValueError):
    """A QuantSpec that cannot describe this network; the message names the file, layer and field."""


@dataclass(frozen=True)
class ConvFormats:
    weight: FixedFormat
    bias: FixedFormat
    accum: FixedFormat
    result: FixedFormat

    def to_json(self) -> dict:
        return {k: str(getattr(self, k)) for k in ("weight", "bias", "accum", "result")}


@dataclass(frozen=True)
class PoolFormats:
    """Global average pool: exact sum in `accum`, times multiplier / 2**shift, cast to `result`."""
    accum: FixedFormat
    result: FixedFormat
    multiplier: int
    shift: int

    def to_json(self) -> dict:
        return {"accum": str(self.accum), "result": str(self.result),
                "reciprocal": {"multiplier": self.multiplier, "shift": self.shift}}


@dataclass
class QuantSpec:
    model: str
    input: FixedFormat
    layers: dict[str, ConvFormats | PoolFormats]
    calibration: dict = field(default_factory=dict)
    # Optimized weight codes (OIHW integers of each layer's weight format), e.g. from GPTQ; None: the
    # float weights rounded to nearest. Saved beside the JSON as <name>.weights.npz with its sha256.
    weights: dict[str, np.ndarray] | None = None
    # Trained bias codes (integers of each layer's bias format), e.g. from fine-tuning with --train-biases;
    # None: the float biases rounded. Saved in the same <name>.weights.npz, as "<layer>:bias".
    biases: dict[str, np.ndarray] | None = None

    def weight_codes(self, name: str, w_float: np.ndarray) -> np.ndarray:
        """The integer weight codes of a layer: the spec's own, or the float weights rounded."""
        if self.weights is not None and name in self.weights:
            return self.weights[name]
        return self.layers[name].weight.quantize(np.asarray(w_float, np.float64))

    def bias_codes(self, name: str, b_float: np.ndarray) -> np.ndarray:
        """The integer bias codes of a layer: the spec's own, or the float biases rounded."""
        if self.biases is not None and name in self.biases:
            return self.biases[name]
        return self.layers[name].bias.quantize(np.asarray(b_float, np.float64))

    def effective_params(self, params: dict) -> dict:
        """Float parameters whose weights and biases are exactly the spec's codes (so any consumer that
        rounds them to the spec's formats gets the spec's codes back, bit for bit)."""
        out = {}
        for name, (w, b) in params.items():
            f: ConvFormats = self.layers[name]
            if self.biases is not None and name in self.biases:
                codes = self.biases[name]
                if codes.size and np.abs(codes).max() >= 2 ** 24:   # float32 (Keras) holds 24 bits exactly
                    raise SpecError(f"layer {name}: bias codes of {f.bias} reach {np.abs(codes).max()}, more than "
                                    f"a float32 Keras weight holds exactly (2**24)")
                b = f.bias.to_float(codes).astype(np.float32)
            out[name] = (f.weight.to_float(self.weight_codes(name, w)).astype(np.float32), b)
        return out

    # -- derived views -------------------------------------------------------------------------
    def input_format(self, name: str, arch: Architecture | None = None) -> FixedFormat:
        """The format a layer reads: the result of whatever feeds it."""
        return input_formats(arch or get_architecture(self.model), self)[name]

    def weight_bits(self) -> dict[str, int]:
        return {n: f.weight.width for n, f in self.layers.items() if isinstance(f, ConvFormats)}

    def activation_bits(self) -> dict[str, int]:
        return {n: f.result.width for n, f in self.layers.items()}

    @property
    def logit_format(self) -> FixedFormat:
        """The global average pool's result: the format of the logits the accelerator returns."""
        return next(f.result for f in self.layers.values() if isinstance(f, PoolFormats))

    # -- JSON --------------------------------------------------------------------------------
    def to_json(self) -> dict:
        return {"format": SPEC_FORMAT, "version": SPEC_VERSION, "model": self.model, "input": str(self.input),
                "layers": {n: f.to_json() for n, f in self.layers.items()}, "calibration": self.calibration}

    def save(self, path: str | Path) -> None:
        path = Path(path)
        data = self.to_json()
        if self.weights is not None or self.biases is not None:
            codes = {n: c.astype(np.int32) for n, c in (self.weights or {}).items()}
            codes.update({n + BIAS_KEY: c.astype(np.int32) for n, c in (self.biases or {}).items()})
            buf = io.BytesIO()
            np.savez_compressed(buf, **codes)
            blob = buf.getvalue()
            weights_path = path.with_name(path.stem + ".weights.npz")
            atomic_write(weights_path, blob)
            data["weights"] = {"file": weights_path.name, "sha256": hashlib.sha256(blob).hexdigest(),
                               "rounding": self.calibration.get("weight_rounding", "optimized")}
        atomic_write(path, json.dumps(data, indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path, arch: Architecture | None = None) -> "QuantSpec":
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except OSError as e:
            raise SpecError(f"{path}: cannot read QuantSpec ({e.strerror})") from None
        except json.JSONDecodeError as e:
            raise SpecError(f"{path}: not valid JSON ({e})") from None
        return cls.from_json(data, arch, where=str(path), base_dir=path.parent)

    @classmethod
    def from_json(cls, data: dict, arch: Architecture | None = None, where: str = "QuantSpec",
                  base_dir: Path | None = None) -> "QuantSpec":
        if not isinstance(data, dict) or data.get("format") != SPEC_FORMAT:
            raise SpecError(f"{where}: not a QuantSpec (field 'format' must be {SPEC_FORMAT!r})")
        if data.get("version") != SPEC_VERSION:
            raise SpecError(f"{where}: QuantSpec version {data.get('version')!r} is not supported "
                            f"(this code reads version {SPEC_VERSION})")
        for key in ("model", "input", "layers"):
            if key not in data:
                raise SpecError(f"{where}: missing field {key!r}")
        if arch is not None and data["model"] != arch.name:
            raise SpecError(f"{where}: a QuantSpec for {data['model']!r}, not for {arch.name!r} (give the --model "
                            f"it was made for, or make a spec for {arch.name} with python -m sqz quantize)")
        try:
            arch = arch or get_architecture(data["model"])
        except ArchitectureError as e:
            raise SpecError(f"{where}: field 'model': {e}") from None

        def fmt(text, field_name):
            try:
                return FixedFormat.parse(text)
            except (FormatError, TypeError) as e:
                raise SpecError(f"{where}: {field_name}: {e}") from None

        layers: dict[str, ConvFormats | PoolFormats] = {}
        if not isinstance(data["layers"], dict):
            raise SpecError(f"{where}: field 'layers' must be an object of layer name -> formats")
        for name, entry in data["layers"].items():
            if not isinstance(entry, dict):
                raise SpecError(f"{where}: layer {name}: must be an object of formats")
            if "reciprocal" in entry:
                rec = entry["reciprocal"]
                try:
                    mult, shift = int(rec["multiplier"]), int(rec["shift"])
                except (KeyError, TypeError, ValueError):
                    raise SpecError(f"{where}: layer {name}: field 'reciprocal' needs integer "
                                    f"'multiplier' and 'shift'") from None
                keys = ("accum", "result")
                missing = [k for k in keys if k not in entry]
                if missing:
                    raise SpecError(f"{where}: layer {name}: missing field {missing[0]!r}")
                layers[name] = PoolFormats(fmt(entry["accum"], f"layer {name} field 'accum'"),
                                           fmt(entry["result"], f"layer {name} field 'result'"), mult, shift)
            else:
                keys = ("weight", "bias", "accum", "result")
                missing = [k for k in keys if k not in entry]
                if missing:
                    raise SpecError(f"{where}: layer {name}: missing field {missing[0]!r}")
                layers[name] = ConvFormats(*(fmt(entry[k], f"layer {name} field {k!r}") for k in keys))
        spec = cls(data["model"], fmt(data["input"], "field 'input'"), layers, data.get("calibration", {}))
        if data.get("weights") is not None:
            codes = _load_weight_codes(data["weights"], base_dir or Path("."), where)
            spec.weights = {n: c for n, c in codes.items() if not n.endswith(BIAS_KEY)} or None
            spec.biases = {n[:-len(BIAS_KEY)]: c for n, c in codes.items() if n.endswith(BIAS_KEY)} or None
        spec.validate(arch, where)
        return spec

    # -- validation ----------------------------------------------------------------------------
    def validate(self, arch: Architecture | None = None, where: str = "QuantSpec") -> None:
        """Names, kinds and format rules; the weight-dependent accumulator range is checked by the emulator."""
        arch = arch or get_architecture(self.model)
        expected = {c.name: ConvFormats for c in arch.convs()}
        expected.update({l.name: PoolFormats for l in arch.layers if isinstance(l, GlobalAvgPool)})
        missing = [n for n in expected if n not in self.layers]
        if missing:
            raise SpecError(f"{where}: layer {missing[0]} of {arch.name} has no formats"
                            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
        unknown = [n for n in self.layers if n not in expected]
        if unknown:
            raise SpecError(f"{where}: layer {unknown[0]} is not a quantized layer of {arch.name} "
                            f"(known: {', '.join(expected)})")
        for name, kind in expected.items():
            if not isinstance(self.layers[name], kind):
                raise SpecError(f"{where}: layer {name}: expected "
                                f"{'weight/bias/accum/result' if kind is ConvFormats else 'accum/result/reciprocal'} formats")
        ins = input_formats(arch, self)
        for name, f in self.layers.items():
            if isinstance(f, ConvFormats):
                conv_format_rules(name, f, ins[name], where)
            else:
                check_avgpool(name, f, ins[name], where=where)
        if self.weights is not None:
            shapes = arch.conv_shapes()
            for name, codes in self.weights.items():
                if name not in shapes:
                    raise SpecError(f"{where}: weights file holds layer {name}, which {arch.name} does not have")
                if tuple(codes.shape) != tuple(shapes[name]["weight"]):
                    raise SpecError(f"{where}: layer {name}: weight codes have shape {tuple(codes.shape)}, "
                                    f"the layer needs {tuple(shapes[name]['weight'])}")
                f = self.layers[name].weight
                if codes.size and (codes.min() < f.min_code or codes.max() > f.max_code):
                    raise SpecError(f"{where}: layer {name}: weight codes outside {f} "
                                    f"({codes.min()}..{codes.max()})")
        if self.biases is not None:
            shapes = arch.conv_shapes()
            for name, codes in self.biases.items():
                if name not in shapes:
                    raise SpecError(f"{where}: weights file holds biases of layer {name}, which {arch.name} does not have")
                if tuple(codes.shape) != (shapes[name]["weight"][0],):
                    raise SpecError(f"{where}: layer {name}: bias codes have shape {tuple(codes.shape)}, "
                                    f"the layer needs ({shapes[name]['weight'][0]},)")
                f = self.layers[name].bias
                if codes.size and (codes.min() < f.min_code or codes.max() > f.max_code):
                    raise SpecError(f"{where}: layer {name}: bias codes outside {f} ({codes.min()}..{codes.max()})")
        for layer in arch.layers:
            if isinstance(layer, Fire):
                _, e1, e3 = layer.convs
                if self.layers[e1.name].result != self.layers[e3.name].result:
                    raise SpecError(f"{where}: layers {e1.name} and {e3.name}: field 'result' must be equal "
                                    f"(they are concatenated into one stream): {self.layers[e1.name].result} "
                                    f"vs {self.layers[e3.name].result}")


def input_formats(arch: Architecture, spec: QuantSpec) -> dict[str, FixedFormat]:
    """Format each quantized layer reads, following the graph."""
    out: dict[str, FixedFormat] = {}
    current = spec.input
    for layer in arch.layers:
        if isinstance(layer, Conv):
            out[layer.name] = current
            current = spec.layers[layer.name].result
        elif isinstance(layer, Fire):
            squeeze, e1, e3 = layer.convs
            out[squeeze.name] = current
            out[e1.name] = out[e3.name] = spec.layers[squeeze.name].result
            current = spec.layers[e1.name].result
        elif isinstance(layer, GlobalAvgPool):
            out[layer.name] = current
            current = spec.layers[layer.name].result
    return out


def _load_weight_codes(entry: dict, base_dir: Path, where: str) -> dict[str, np.ndarray]:
    try:
        path = base_dir / entry["file"]
        want = entry["sha256"]
    except (KeyError, TypeError):
        raise SpecError(f"{where}: field 'weights' needs 'file' and 'sha256'") from None
    try:
        blob = path.read_bytes()
    except OSError as e:
        raise SpecError(f"{where}: field 'weights': cannot read {path} ({e.strerror})") from None
    if hashlib.sha256(blob).hexdigest() != want:
        raise SpecError(f"{where}: field 'weights': {path} does not match its sha256 (altered or from another spec)")
    with np.load(io.BytesIO(blob)) as npz:
        return {n: npz[n].astype(np.int64) for n in npz.files}
