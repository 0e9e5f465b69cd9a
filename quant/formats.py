"""The format rules that more than one stage needs, each written once.

    accumulator_bound / to_accumulator / check_accumulator   exact accumulation of a convolution
    accumulator_format                                       the narrowest exact accumulator for a bound
    conv_format_rules                                        the static rules of a convolution's formats
    avgpool_accumulator / avgpool_formats / check_avgpool    the global average pool's sum and reciprocal
    uniform_spec                                             uniform B-bit formats without calibration (--bits)

Who calls them: quant/calibrate.py (formats from statistics), quant/spec.py (validation),
quant/emulator.py (the exactness proof before it runs), hw/ops (validation of a design, and the bit
widths its cost model charges) and hw/cli.py (`--bits`). The arithmetic itself is quant/arithmetic.py.
"""
from __future__ import annotations

import numpy as np

from quant.fixed_point import FixedFormat

ACCUM_MODES = ("AP_TRN", "AP_WRAP")   # an exact accumulator never rounds nor overflows: the cheapest modes


def _spec_error(msg: str) -> Exception:
    from quant.spec import SpecError   # quant/spec.py imports this module

    return SpecError(msg)


# -- convolutions ----------------------------------------------------------------------------------

def accumulator_bound(w_codes: np.ndarray, b_acc: np.ndarray, x_fmt: FixedFormat) -> int:
    """Largest |acc| (in product codes) any input in x_fmt can produce: sum|w| * max|x| + |b| per output."""
    xmax = max(abs(x_fmt.min_code), abs(x_fmt.max_code))
    per_out = np.abs(w_codes.reshape(w_codes.shape[0], -1)).sum(axis=1) * xmax + np.abs(b_acc)
    return int(per_out.max())


def accumulator_format(bound: int, frac: int) -> FixedFormat:
    """The narrowest signed accumulator holding every |acc| <= bound codes at `frac` fractional bits."""
    width = max(int(bound).bit_length() + 1, 2)
    return FixedFormat(width, width - frac, True, *ACCUM_MODES)


def to_accumulator(f, x: FixedFormat, w_codes: np.ndarray, b_codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weight and bias codes shifted to the accumulator's fractional bits (f: ConvFormats, x: the input)."""
    return (np.asarray(w_codes) << (f.accum.frac - x.frac - f.weight.frac),
            np.asarray(b_codes) << (f.accum.frac - f.bias.frac))


def check_accumulator(name: str, f, x: FixedFormat, w_acc: np.ndarray, b_acc: np.ndarray, where: str = "") -> int:
    """Prove accumulation of layer `name` exact with these weights; returns the bound (accumulator codes)."""
    bound = accumulator_bound(w_acc, b_acc, x)
    if bound > f.accum.max_code:
        need = int(np.ceil(np.log2(bound + 1))) + 1 - f.accum.frac
        raise _spec_error(f"{where}layer {name} field 'accum': {f.accum} can overflow with these weights "
                          f"(|acc| may reach {bound} codes); it needs at least {need} integer bits for exact "
                          f"accumulation")
    return bound


def conv_format_rules(name: str, f, x: FixedFormat, where: str = "QuantSpec") -> None:
    """What a convolution's formats must satisfy whatever its weights (f: ConvFormats, x: its input)."""
    product_frac = x.frac + f.weight.frac
    if f.accum.frac < product_frac:
        raise _spec_error(f"{where}: layer {name} field 'accum': {f.accum} keeps {f.accum.frac} fractional bits "
                          f"but products of input {x} and weight {f.weight} have {product_frac}; "
                          f"accumulation must be exact")
    if f.bias.frac > f.accum.frac:
        raise _spec_error(f"{where}: layer {name} field 'bias': {f.bias} has more fractional bits "
                          f"than the accumulator {f.accum}")
    if not f.accum.signed:
        raise _spec_error(f"{where}: layer {name} field 'accum': {f.accum} must be signed")


# -- the global average pool -----------------------------------------------------------------------

def avgpool_accumulator(x: FixedFormat, pixels: int) -> FixedFormat:
    """The exact sum of `pixels` values of x: x's width plus the bits the count adds, and a sign bit."""
    width = x.width + int(pixels - 1).bit_length() + 1
    return FixedFormat(width, width - x.frac, True, *ACCUM_MODES)


def avgpool_formats(x: FixedFormat, pixels: int, result: FixedFormat):
    """PoolFormats of a global average pool over `pixels` values of x: exact sum, 1/pixels as a reciprocal."""
    from quant.arithmetic import reciprocal
    from quant.spec import PoolFormats

    multiplier, shift = reciprocal(pixels)
    return PoolFormats(avgpool_accumulator(x, pixels), result, multiplier, shift)


def check_avgpool(name: str, p, x: FixedFormat, pixels: int | None = None, where: str = "QuantSpec") -> None:
    """The pool's rules (p: PoolFormats, x: its input); with `pixels`, also that the sum is exact."""
    if p.accum.frac < x.frac:
        raise _spec_error(f"{where}: layer {name} field 'accum': {p.accum} cannot hold the sum of {x} exactly")
    if p.multiplier <= 0 or not 0 <= p.shift <= 40:
        raise _spec_error(f"{where}: layer {name} field 'reciprocal': multiplier must be > 0 and shift in 0..40 "
                          f"(got {p.multiplier}, {p.shift})")
    if p.multiplier >= 1 << 63:
        raise _spec_error(f"{where}: layer {name} field 'reciprocal': multiplier {p.multiplier} wider than 63 bits")
    if pixels is not None:
        bound = pixels * max(abs(x.min_code), x.max_code) << (p.accum.frac - x.frac)
        if bound > p.accum.max_code:
            raise _spec_error(f"{where}: layer {name} field 'accum': {p.accum} cannot hold the sum of {pixels} "
                              f"values of {x} exactly")


# -- uniform formats (designs and estimates without a calibrated spec) -----------------------------

UNIFORM_BITS = (2, 16)


def uniform_spec(arch, bits: int, input_size: int | None = None):
    """Uniform `bits`-bit formats with no calibration -- enough to generate and estimate a design.

    input ap_fixed<B,9> (Caffe pixels), weights ap_fixed<B,1>, activations ap_ufixed<B,8>, logits
    ap_ufixed<B,8>; biases get the products' fractional bits and 8 integer bits, accumulators the
    narrowest exact format for ANY weights of the weight format (accumulator_format of the worst case).
    """
    from model.architecture import GlobalAvgPool
    from quant.spec import ConvFormats, QuantSpec, input_formats

    lo, hi = UNIFORM_BITS
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not lo <= bits <= hi:
        raise _spec_error(f"--bits must be in {lo}..{hi} for uniform formats, got {bits!r}")
    rnd = ("AP_RND", "AP_SAT")
    x_in = FixedFormat(bits, 9, True, *rnd)
    weight, act = FixedFormat(bits, 1, True, *rnd), FixedFormat(bits, 8, False, *rnd)
    shapes = arch.conv_shapes(input_size)
    # the graph's input formats follow from the result formats alone
    skeleton = QuantSpec(arch.name, x_in, {c.name: ConvFormats(weight, weight, weight, act) for c in arch.convs()})
    gap = next((l for l in arch.layers if isinstance(l, GlobalAvgPool)), None)   # None: a partial network
    if gap is not None:
        skeleton.layers[gap.name] = ConvFormats(act, act, act, act)
    ins = input_formats(arch, skeleton)
    layers: dict = {}
    for conv in arch.convs():
        src = ins[conv.name]
        frac = src.frac + weight.frac
        bias = FixedFormat(max(8 + frac, 2), 8, True, *rnd)
        _, i, kh, kw = shapes[conv.name]["weight"]
        bound = i * kh * kw * max(abs(src.min_code), src.max_code) * abs(weight.min_code) + bias.max_code
        layers[conv.name] = ConvFormats(weight, bias, accumulator_format(bound, frac), act)
    if gap is not None:
        h, w, _ = shapes[arch.convs()[-1].name]["out"]
        layers[gap.name] = avgpool_formats(act, h * w, FixedFormat(bits, 8, False, *rnd))
    spec = QuantSpec(arch.name, x_in, layers, {"uniform_bits": int(bits), "note": "no calibration: for estimates"})
    spec.validate(arch)
    return spec
