"""Calibration: per-layer statistics over real images, and the integer lengths chosen from them.

Rules for a layer's integer length I (fractional length = width - I):
  weights      'maxabs'  Ristretto: I = ceil(log2(max|w|)) + 1 (sign bit), never saturates
               'minmse'  the I (from maxabs down to maxabs-4) whose rounding+saturation error over the
                         layer's actual weights is smallest; computed exactly from the 256-entry codebook
                         and its counts, since Deep Compression weights take at most 256 distinct values
               'output'  the I (same candidates) whose rounded weights (with the chosen weight rounding)
                         give the smallest error of the layer's *output* on the calibration inputs,
                         tr(dW H dW^T): at 4-6 bits the range that best serves the output is often
                         narrower than the one that best fits the weights
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
from quant.emulator import FloatNetwork, Params
from quant.fixed_point import FixedFormat
from quant.formats import accumulator_bound, accumulator_format, avgpool_formats
from quant.rounding import WEIGHT_ROUNDINGS, gptq_codes, nearest_codes
from quant.spec import ConvFormats, PoolFormats, QuantSpec, input_formats

# --weight-rule / --activation-rule: every CLI that passes a rule through offers these ('output' needs a Calibration)
WEIGHT_RULES = ("maxabs", "minmse", "output")
ACTIVATION_RULES = ("maxabs", "percentile", "minmse")

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

    def add(self, values: np.ndarray, rng: np.random.Generator) -> None:
        v = values.reshape(-1, values.shape[-1])
        flat = v.ravel()
        self.max = max(self.max, float(flat.max(initial=0.0)))
        self.count += flat.size
        pos = flat[flat > 0]
        # octave of each value: ceil(log2 v) from frexp (v = m * 2**e, 0.5 <= m < 1), exact and fast
        m, e = np.frexp(pos)
        e = e - (m == 0.5)
        idx = np.clip(e - OCTAVES[0], 0, len(OCTAVES))
        self.octave_counts += np.bincount(idx, minlength=len(OCTAVES) + 1)
        self.sample.append(flat[rng.integers(0, flat.size, min(SAMPLE_PER_BATCH, flat.size))])

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
        self.input_absmax: dict[str, float] = {}    # per layer, max |input|
        self.acc_absmax: dict[str, float] = {}      # per conv, max |accumulator| before ReLU
        self.hessians: dict[str, np.ndarray] = {}   # per conv, E[p p^T] of its input patches (for GPTQ)
        self._hessian_rows: dict[str, int] = {}
        self._convs = {c.name: c for c in arch.convs()}
        self._code_cache: dict = {}                 # (layer, weight format, rounding) -> optimized codes
        self._output_il_cache: dict = {}            # (layer, width, rounding) -> rule 'output' integer length
        self.images = 0
        self._rng = np.random.default_rng(seed)

    def observe(self, name: str, kind: str, array: np.ndarray) -> None:
        if kind == "output":
            self.outputs.setdefault(name, ActivationStats()).add(array, self._rng)
        elif kind == "acc":
            self.acc_absmax[name] = max(self.acc_absmax.get(name, 0.0), float(np.abs(array).max()))
        elif kind == "input":
            self.input_absmax[name] = max(self.input_absmax.get(name, 0.0), float(np.abs(array).max()))
            if name in self._convs:
                conv = self._convs[name]
                # every input patch counts (no sampling: the result does not depend on the batch size)
                p = A.patches(np.asarray(array, np.float32), conv.kernel, conv.stride, conv.pad)
                self.hessians[name] = self.hessians.get(name, 0.0) + (p.T @ p).astype(np.float64)
                self._hessian_rows[name] = self._hessian_rows.get(name, 0) + len(p)

    def add_batch(self, images: np.ndarray) -> np.ndarray:
        self.images += len(images)
        return self.net.logits(images, observer=self.observe)


    def hessian(self, name: str) -> np.ndarray:
        return self.hessians[name] / self._hessian_rows[name]

    def weight_codes(self, name: str, fmt: FixedFormat, rounding: str) -> np.ndarray:
        """Codes of a layer's weights in fmt: 'nearest', 'gptq' (act-order, pruned zeros kept), 'gptq-dense'
        (act-order, every position free) or 'gptq-inorder' (columns in patch order, zeros kept); cached: the
        search asks repeatedly."""
        key = (name, str(fmt), rounding)
        if key not in self._code_cache:
            w = self.params[name][0]
            if rounding == "nearest":
                self._code_cache[key] = nearest_codes(w, fmt)
            elif rounding in WEIGHT_ROUNDINGS:     # the GPTQ variants
                self._code_cache[key] = gptq_codes(w, self.hessian(name), fmt, act_order=rounding != "gptq-inorder",
                                                   keep_zeros=rounding != "gptq-dense")
            else:
                raise ValueError(f"unknown weight rounding {rounding!r} ({', '.join(WEIGHT_ROUNDINGS)})")
        return self._code_cache[key]

    def output_error(self, name: str, codes: np.ndarray, fmt: FixedFormat) -> float:
        """Mean squared error of the layer's accumulators over the calibration patches: tr(dW H dW^T)."""
        dw = A.weight_matrix(fmt.to_float(codes) - np.asarray(self.params[name][0], np.float64))
        return float(np.einsum("ko,kl,lo->", dw, self.hessian(name), dw))

    def output_integer_bits(self, name: str, width: int, rounding: str) -> int:
        """Rule 'output': the weight integer length with the smallest output error (cached)."""
        key = (name, width, rounding)
        if key not in self._output_il_cache:
            errors = {}
            for fmt in weight_format_candidates(self.params[name][0], width):
                errors[fmt.integer] = self.output_error(name, self.weight_codes(name, fmt, rounding), fmt)
            self._output_il_cache[key] = min(errors, key=errors.get)
        return self._output_il_cache[key]

    def summary(self) -> dict[str, dict]:
        """Per layer: the measured ranges (float units) the formats are chosen from."""
        out = {}
        for name, st in self.outputs.items():
            entry = {"input_absmax": self.input_absmax.get(name), "output_max": st.max,
                     "output_p99.999_below": 2.0 ** activation_integer_bits(st, 16, "percentile", 99.999)}
            if name in self.params:
                w, b = self.params[name]
                entry.update(weight_absmax=float(np.abs(w).max()), bias_absmax=float(np.abs(b).max()),
                             acc_absmax=self.acc_absmax.get(name))
            out[name] = entry
        return out


# -- integer-length rules -------------------------------------------------------------------------

def ceil_log2(x: float) -> int:
    return int(math.ceil(math.log2(x))) if x > 0 else 0


def weight_format_candidates(w: np.ndarray, width: int) -> list[FixedFormat]:
    """The formats the 'minmse' and 'output' rules choose among: integer lengths from max-abs's
    (never saturates) down by four, widest range first."""
    base = weight_integer_bits(w, width, "maxabs")
    return [FixedFormat(width, i, True, "AP_RND", "AP_SAT") for i in range(base, base - 5, -1)]


def weight_integer_bits(w: np.ndarray, width: int, rule: str = "minmse") -> int:
    if rule == "maxabs":
        return ceil_log2(float(np.abs(w).max())) + 1
    if rule != "minmse":
        raise ValueError(f"unknown weight rule {rule!r} (maxabs, minmse; 'output' needs a Calibration)")
    values, counts = np.unique(np.asarray(w, np.float64), return_counts=True)   # <= 256 values: exact and fast
    candidates = weight_format_candidates(w, width)
    best, best_err = candidates[0].integer, np.inf
    for fmt in candidates:
        err = float((counts * (fmt.to_float(fmt.quantize(values)) - values) ** 2).sum())
        if err < best_err:
            best, best_err = fmt.integer, err
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
    raise ValueError(f"unknown activation rule {rule!r} ({', '.join(ACTIVATION_RULES)})")


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
              rounding: str = "AP_RND", logit_bits: int = LOGIT_BITS, weight_rounding: str = "gptq-dense",
              activation_integers: dict[str, int] | None = None) -> QuantSpec:
    """Formats for every layer from calibration statistics and the requested widths (int or per layer).

    weight_rounding 'nearest' rounds each weight on its own; the GPTQ variants (quant/rounding.py;
    'gptq-dense', the default, lets pruned positions take codes) choose the codes that minimize each
    layer's output error on the calibration images; the spec carries them.

    A Fire module's two expands share one result format (one stream): the wider of their widths and
    statistics merged over both.

    activation_integers: conv name -> result integer length, taken instead of the activation rule's (a Fire
    module's two expands, sharing one format, must be given the same), e.g. benchmarks/cifar_a4_formats.py's
    network-level choice.
    """
    arch, params = cal.arch, cal.params
    names = [c.name for c in arch.convs()]
    wbits = _per_layer(weight_bits, names, "weight_bits")
    abits = _per_layer(activation_bits, names, "activation_bits")
    unknown = sorted(set(activation_integers or {}) - set(names))
    if unknown:
        raise ValueError(f"activation_integers: {arch.name} has no convolution {unknown[0]!r}")
    results = _activation_formats(cal, abits, activation_rule, percentile, rounding, activation_integers or {})
    def integer_bits(n):
        if weight_rule == "output":
            return cal.output_integer_bits(n, wbits[n], weight_rounding)
        return weight_integer_bits(params[n][0], wbits[n], weight_rule)
    weights = {n: FixedFormat(wbits[n], integer_bits(n), True, rounding, "AP_SAT") for n in names}
    gap = next(l for l in arch.layers if isinstance(l, GlobalAvgPool))
    last = names[-1]
    # input formats follow the graph from the result formats alone
    skeleton = QuantSpec(arch.name, INPUT_FORMAT, {n: ConvFormats(weights[n], weights[n], weights[n], results[n])
                                                   for n in names})
    skeleton.layers[gap.name] = PoolFormats(results[last], results[last], 1, 0)
    inputs = input_formats(arch, skeleton)
    codes = {n: cal.weight_codes(n, weights[n], weight_rounding) for n in names}
    layers: dict = {n: _conv_formats(codes[n], params[n][1], weights[n], inputs[n], results[n], rounding)
                    for n in names}

    # global average pool: exact sum, reciprocal multiply, logits in `logit_bits` unsigned bits
    x = results[last]
    h, w, _ = arch.conv_shapes()[last]["out"]
    logit_max = cal.outputs[gap.name].max if gap.name in cal.outputs else x.max_value
    layers[gap.name] = avgpool_formats(x, h * w, FixedFormat(logit_bits, ceil_log2(logit_max), False, rounding,
                                                             "AP_SAT"))
    spec = QuantSpec(arch.name, INPUT_FORMAT, layers, {
        "images": cal.images, "weight_rule": weight_rule, "activation_rule": activation_rule,
        "percentile": percentile if activation_rule == "percentile" else None, "weight_rounding": weight_rounding},
        weights=codes if weight_rounding != "nearest" else None)
    spec.validate(arch)
    return spec


def activation_groups(arch: Architecture) -> list[list[str]]:
    """The convolutions that share one result format, in graph order: each conv alone, but a Fire module's
    two expands together (one concatenated stream)."""
    groups: list[list[str]] = []
    for layer in arch.layers:
        if isinstance(layer, Conv):
            groups.append([layer.name])
        elif isinstance(layer, Fire):
            s, e1, e3 = layer.convs
            groups += [[s.name], [e1.name, e3.name]]
    return groups


def _activation_formats(cal: Calibration, abits: dict, rule: str, percentile: float, rounding: str,
                        given: dict) -> dict:
    out = {}
    for group in activation_groups(cal.arch):
        width = max(abits[n] for n in group)
        chosen = {given[n] for n in group if n in given}
        if len(chosen) > 1:
            raise ValueError(f"activation_integers: layers {' and '.join(group)} share one result format; "
                             f"given integer lengths {sorted(chosen)}")
        if chosen:
            integer = chosen.pop()
            out.update({n: FixedFormat(width, integer, False, rounding, "AP_SAT") for n in group})
            continue
        stats = ActivationStats()
        for n in group:
            st = cal.outputs[n]
            stats.max = max(stats.max, st.max)
            stats.count += st.count
            stats.octave_counts = stats.octave_counts + st.octave_counts
            stats.sample += st.sample
        fmt = FixedFormat(width, activation_integer_bits(stats, width, rule, percentile), False, rounding, "AP_SAT")
        out.update({n: fmt for n in group})
    return out


def _conv_formats(w_codes: np.ndarray, b, weight: FixedFormat, x: FixedFormat, result: FixedFormat,
                  rounding: str) -> ConvFormats:
    """Bias at the products' fractional bits; accumulator exactly as wide as these weights can reach."""
    b = np.asarray(b, np.float64)
    frac = x.frac + weight.frac
    b_int = ceil_log2(float(np.abs(b).max()) + 2.0 ** -frac) + 1
    bias = FixedFormat(max(b_int + frac, 2), b_int, True, rounding, "AP_SAT")
    bound = accumulator_bound(w_codes, bias.quantize(b), x)
    return ConvFormats(weight, bias, accumulator_format(bound, frac), result)
