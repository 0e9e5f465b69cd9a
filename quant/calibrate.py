"""Calibration: per-layer statistics over real images, and the integer lengths chosen from them.

Rules for a layer's integer length I (fractional length = width - I):
  weights      'maxabs'  Ristretto: I = ceil(log2(max|w|)) + 1 (sign bit), never saturates
               'minmse'  the I (from maxabs down to maxabs-4) whose rounding+saturation error over the
                         layer's actual weights is smallest; computed exactly from the 256-entry codebook
                         and its counts, since Deep Compression weights take at most 256 distinct values
  activations  'maxabs'  Ristretto: I = ceil(log2(max)), post-ReLU values in an unsigned format
               'percentile'  I = ceil(log2(the p-th percentile)), saturating the largest 1-p of values
               'minmse'  the I with the smallest squared error over a random sample of the layer's outputs
Accumulators get the products' fractional bits and the integer bits the weights can reach (exact).
Biases get the accumulator's fractional bits (as int32 biases do in integer inference).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from model.architecture import Architecture, Conv, Fire, GlobalAvgPool
from quant import arithmetic as A
from quant.emulator import FloatNetwork, Params, accumulator_bound
from quant.fixed_point import FixedFormat
from quant.spec import ConvFormats, PoolFormats, QuantSpec, input_formats

OCTAVES = np.arange(-40, 41)           # histogram bin edges at powers of two: 2**-40 .. 2**40
SAMPLE_PER_BATCH = 4096                # random output values kept per layer and batch (for min-MSE)
INPUT_FORMAT = FixedFormat(9, 9, True, "AP_RND", "AP_SAT")   # Caffe pixels minus integer means: -123..152, exact
LOGIT_BITS = 16


@dataclass
class ActivationStats:
    max: float = 0.0
    count: int = 0
    octave_counts: np.ndarray = field(default_factory=lambda: np.zeros(len(OCTAVES) + 1, np.int64))
    sample: list = field(default_factory=list)
    channel_sum: np.ndarray | None = None   # per-channel sums (for means)

    def add(self, values: np.ndarray, rng: np.random.Generator) -> None:
        v = values.reshape(-1, values.shape[-1])
        flat = v.ravel()
        self.max = max(self.max, float(flat.max(initial=0.0)))
        self.count += flat.size
        pos = flat[flat > 0]
        # bin k counts values in (2**OCTAVES[k-1], 2**OCTAVES[k]]; zeros are counted separately by `count`
        idx = np.searchsorted(OCTAVES, np.ceil(np.log2(pos)).astype(np.int64), side="left")
        self.octave_counts += np.bincount(idx, minlength=len(OCTAVES) + 1)
        self.sample.append(rng.choice(flat, min(SAMPLE_PER_BATCH, flat.size), replace=False))
        s = v.sum(axis=0, dtype=np.float64)
        self.channel_sum = s if self.channel_sum is None else self.channel_sum + s

    def values(self) -> np.ndarray:
        return np.concatenate(self.sample) if self.sample else np.zeros(1)

    def fraction_above(self, limit_log2: int) -> float:
        """Fraction of all values > 2**limit_log2 (exact: bins are octaves)."""
        k = np.searchsorted(OCTAVES, limit_log2, side="left")
        return float(self.octave_counts[k + 1:].sum()) / max(self.count, 1)


class Calibration:
    """Statistics of a float network over calibration batches."""

    def __init__(self, arch: Architecture, params: Params, seed: int = 0):
        self.arch, self.params = arch, params
        self.net = FloatNetwork(arch, params)
        self.outputs: dict[str, ActivationStats] = {}
        self.inputs: dict[str, ActivationStats] = {}
        self.input_absmax = 0.0
        self.images = 0
        self._rng = np.random.default_rng(seed)

    def observe(self, name: str, kind: str, array: np.ndarray) -> None:
        if kind == "output":
            self.outputs.setdefault(name, ActivationStats()).add(array, self._rng)

    def add_batch(self, images: np.ndarray) -> np.ndarray:
        self.input_absmax = max(self.input_absmax, float(np.abs(images).max()))
        self.images += len(images)
        return self.net.logits(images, observer=self.observe)


# -- integer-length rules -------------------------------------------------------------------------

def ceil_log2(x: float) -> int:
    return int(math.ceil(math.log2(x))) if x > 0 else 0


def weight_integer_bits(w: np.ndarray, width: int, rule: str = "minmse") -> int:
    base = ceil_log2(float(np.abs(w).max())) + 1
    if rule == "maxabs":
        return base
    if rule != "minmse":
        raise ValueError(f"unknown weight rule {rule!r} (maxabs, minmse)")
    values, counts = np.unique(np.asarray(w, np.float64), return_counts=True)   # <= 256 values: exact and fast
    best, best_err = base, np.inf
    for i in range(base, base - 5, -1):
        fmt = FixedFormat(width, i, True, "AP_RND", "AP_SAT")
        err = float((counts * (fmt.to_float(fmt.quantize(values)) - values) ** 2).sum())
        if err < best_err:
            best, best_err = i, err
    return best


def activation_integer_bits(stats: ActivationStats, width: int, rule: str = "percentile",
                            percentile: float = 99.999) -> int:
    base = ceil_log2(stats.max)
    if rule == "maxabs":
        return base
    if rule == "percentile":
        allowed = 1.0 - percentile / 100.0
        i = base
        while i > base - 6 and stats.fraction_above(i - 1) <= allowed:
            i -= 1
        return i
    if rule == "minmse":
        v = stats.values().astype(np.float64)
        best, best_err = base, np.inf
        for i in range(base, base - 6, -1):
            fmt = FixedFormat(width, i, False, "AP_RND", "AP_SAT")
            err = float(((fmt.to_float(fmt.quantize(v)) - v) ** 2).sum())
            if err < best_err:
                best, best_err = i, err
        return best
    raise ValueError(f"unknown activation rule {rule!r} (maxabs, percentile, minmse)")


# -- spec from statistics ---------------------------------------------------------------------

def _per_layer(value, names, what):
    if isinstance(value, dict):
        missing = [n for n in names if n not in value]
        if missing:
            raise ValueError(f"{what}: no width for layer {missing[0]}")
        return value
    return {n: int(value) for n in names}


def make_spec(cal: Calibration, weight_bits: int | dict, activation_bits: int | dict,
              weight_rule: str = "minmse", activation_rule: str = "percentile", percentile: float = 99.999,
              rounding: str = "AP_RND", logit_bits: int = LOGIT_BITS) -> QuantSpec:
    """Formats for every layer from calibration statistics and the requested widths.

    activation_bits maps conv names to widths; a Fire module's two expands take the larger of theirs.
    """
    arch, params = cal.arch, cal.params
    convs = arch.convs()
    wbits = _per_layer(weight_bits, [c.name for c in convs], "weight_bits")
    abits = dict(_per_layer(activation_bits, [c.name for c in convs], "activation_bits"))
    result: dict[str, FixedFormat] = {}
    for layer in arch.layers:
        groups = []
        if isinstance(layer, Conv):
            groups = [[layer.name]]
        elif isinstance(layer, Fire):
            s, e1, e3 = layer.convs
            groups = [[s.name], [e1.name, e3.name]]
        for group in groups:
            width = max(abits[n] for n in group)
            merged = ActivationStats()
            for n in group:
                st = cal.outputs[n]
                merged.max = max(merged.max, st.max)
                merged.count += st.count
                merged.octave_counts = merged.octave_counts + st.octave_counts
                merged.sample += st.sample
            i = activation_integer_bits(merged, width, activation_rule, percentile)
            for n in group:
                abits[n] = width
                result[n] = FixedFormat(width, i, False, rounding, "AP_SAT")
    layers: dict = {}
    spec = QuantSpec(arch.name, INPUT_FORMAT, {}, {})
    # input formats follow the graph: build conv entries in order so each knows its input
    for conv in convs:
        w, b = params[conv.name]
        wfmt = FixedFormat(wbits[conv.name], weight_integer_bits(w, wbits[conv.name], weight_rule),
                           True, rounding, "AP_SAT")
        layers[conv.name] = (wfmt, b)
    gap = next(l for l in arch.layers if isinstance(l, GlobalAvgPool))
    # provisional entries so input_formats can walk the graph
    spec.layers = {n: ConvFormats(wf, wf, wf, result[n]) for n, (wf, _) in layers.items()}
    spec.layers[gap.name] = PoolFormats(result[convs[-1].name], result[convs[-1].name], 1, 0)
    ins = input_formats(arch, spec)
    final: dict = {}
    for conv in convs:
        wfmt, b = layers[conv.name]
        x = ins[conv.name]
        frac = x.frac + wfmt.frac
        b_int = ceil_log2(float(np.abs(b).max()) + 2.0 ** -frac) + 1
        bfmt = FixedFormat(max(b_int + frac, 2), b_int, True, rounding, "AP_SAT")
        w_codes = wfmt.quantize(np.asarray(params[conv.name][0], np.float64))
        b_codes = bfmt.quantize(np.asarray(b, np.float64))
        bound = accumulator_bound(w_codes, b_codes, x)
        acc_w = max(int(bound).bit_length() + 1, 2)
        final[conv.name] = ConvFormats(wfmt, bfmt, FixedFormat(acc_w, acc_w - frac, True, "AP_TRN", "AP_WRAP"),
                                       result[conv.name])
    # global average pool: exact sum, reciprocal multiply, logits in `logit_bits` unsigned bits
    x = result[convs[-1].name]
    h, w_, _ = arch.conv_shapes()[convs[-1].name]["out"]
    n = h * w_
    mult, shift = A.reciprocal(n)
    sum_w = x.width + int(n - 1).bit_length() + 1
    accum = FixedFormat(sum_w, sum_w - x.frac, True, "AP_TRN", "AP_WRAP")
    logit_max = float(cal.outputs[gap.name].max) if gap.name in cal.outputs else x.max_value
    logits = FixedFormat(logit_bits, ceil_log2(logit_max), False, rounding, "AP_SAT")
    final[gap.name] = PoolFormats(accum, logits, mult, shift)
    spec = QuantSpec(arch.name, INPUT_FORMAT, final, {
        "images": cal.images, "weight_rule": weight_rule, "activation_rule": activation_rule,
        "percentile": percentile if activation_rule == "percentile" else None})
    spec.validate(arch)
    return spec
