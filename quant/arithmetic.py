"""The fixed-point arithmetic of every SqueezeNet layer, defined once.

The emulator (quant/emulator.py) runs these functions; the HLS kernels in hw/ implement the same
steps in ap_fixed C++, and tests prove the two agree bit for bit. Values travel as integer *codes*
(value = code * 2**-frac of their FixedFormat) held in float32/float64 arrays: integers below 2**24
(float32) or 2**53 (float64) are exact, and BLAS matrix products of such integers are exact as long as
every partial sum stays below that bound, which `accumulator_bound` guarantees before any layer runs.

Per layer, as the hardware computes it:
  conv:      acc = bias_acc + sum(x_code * w_code)         exact, frac = frac(x) + frac(w)
             y   = cast<result>(max(acc, 0))               ReLU, then result's rounding and overflow
  max pool:  y   = max over the 3x3 window                 exact; Caffe's round-up size, missing
                                                           border cells count as 0 (inputs are >= 0)
  concat:    channels of expand1x1 then expand3x3          one result format for both
  avg pool:  s   = sum over HxW                            exact
             y   = cast<result>(s * multiplier >> shift)   multiplier / 2**shift ~ 1 / (H*W)
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from quant.fixed_point import FixedFormat

EXACT_LIMIT = {np.float32: 2 ** 23, np.float64: 2 ** 52}  # |integer| below which rounding steps stay exact


def exact_dtype(bound: float):
    """The cheaper float type in which integers up to `bound` (and the rounding steps) are exact."""
    if bound < EXACT_LIMIT[np.float32]:
        return np.float32
    if bound < EXACT_LIMIT[np.float64]:
        return np.float64
    raise OverflowError(f"integer bound {bound:.3g} exceeds 2**52: too wide to emulate exactly")


def weight_matrix(w_oihw: np.ndarray) -> np.ndarray:
    """OIHW -> (kh*kw*I, O), the column order of `conv2d`'s patches."""
    o = w_oihw.shape[0]
    return np.ascontiguousarray(w_oihw.transpose(2, 3, 1, 0).reshape(-1, o))


def patches(x: np.ndarray, kernel: int, stride: int = 1, pad: int = 0) -> np.ndarray:
    """(N*OH*OW, kh*kw*C) matrix of the conv's input windows, zero padded, Caffe's floor output size."""
    if pad:
        x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    n, h, w, c = x.shape
    if kernel == 1 and stride == 1:
        return x.reshape(-1, c)
    oh, ow = (h - kernel) // stride + 1, (w - kernel) // stride + 1
    # (dy, dx, channel) order: for each kernel row dy the kernel*c values of a window are contiguous
    # in x, so one strided block copy per row fills them (fast even for conv1's 3 channels)
    x = np.ascontiguousarray(x)
    sn, sh, sw, sc = x.strides
    cols = np.empty((n, oh, ow, kernel, kernel * c), x.dtype)
    for dy in range(kernel):
        cols[:, :, :, dy] = as_strided(x[:, dy:], (n, oh, ow, kernel * c), (sn, sh * stride, sw * stride, sc))
    return cols.reshape(n * oh * ow, -1)


def conv2d(x: np.ndarray, wmat: np.ndarray, bias: np.ndarray, kernel: int, stride: int = 1, pad: int = 0) -> np.ndarray:
    """NHWC convolution as one matrix product of `patches` and `weight_matrix`, plus bias."""
    n, h, w, _ = x.shape
    oh, ow = (h + 2 * pad - kernel) // stride + 1, (w + 2 * pad - kernel) // stride + 1
    acc = patches(x, kernel, stride, pad) @ wmat
    acc += bias
    return acc.reshape(n, oh, ow, -1)


def maxpool(x: np.ndarray, kernel: int, stride: int) -> np.ndarray:
    """Caffe max pooling (round-up size); inputs are post-ReLU, so padding with 0 is padding with -inf."""
    n, h, w, c = x.shape
    oh, ow = -(-(h - kernel) // stride) + 1, -(-(w - kernel) // stride) + 1
    ph, pw = (oh - 1) * stride + kernel - h, (ow - 1) * stride + kernel - w
    if ph > 0 or pw > 0:
        x = np.pad(x, ((0, 0), (0, max(ph, 0)), (0, max(pw, 0)), (0, 0)))
    # separable: max over the window's rows, then over its columns
    rows = x[:, 0:stride * (oh - 1) + 1:stride].copy()
    for dy in range(1, kernel):
        np.maximum(rows, x[:, dy:dy + stride * (oh - 1) + 1:stride], out=rows)
    out = rows[:, :, 0:stride * (ow - 1) + 1:stride].copy()
    for dx in range(1, kernel):
        np.maximum(out, rows[:, :, dx:dx + stride * (ow - 1) + 1:stride], out=out)
    return out


def requantize(fmt: FixedFormat, acc: np.ndarray, frac_in: int, relu: bool = False) -> tuple[np.ndarray, int]:
    """cast<fmt>(acc * 2**-frac_in) (after ReLU if asked) on integer codes held in a float array.

    Same result as fmt.requantize (quant/fixed_point.py, the definition, tested against the
    ap_fixed headers) but fast in float32; works in place on `acc`; returns (codes, overflow count).
    """
    x = np.maximum(acc, 0, out=acc) if relu else acc
    shift = frac_in - fmt.frac
    if shift != 0:
        x *= x.dtype.type(2.0 ** -shift)   # exact: a power of two
    return _round_and_overflow(fmt, x, rounding=shift > 0, relu=relu)


def floor_rounding_offset(fmt: FixedFormat, frac_in: int) -> int | None:
    """The integer that, added to the accumulator, turns fmt's rounding into a floor (and ReLU + overflow into
    one clip): 2**(shift-1) for AP_RND, 0 for AP_TRN, with a saturating overflow mode; None otherwise."""
    shift = frac_in - fmt.frac
    if fmt.overflow not in ("AP_SAT", "AP_SAT_SYM") or fmt.min_code > 0 or shift < 0:
        return None
    if fmt.rounding == "AP_TRN" or shift == 0:
        return 0
    if fmt.rounding == "AP_RND":
        return 1 << (shift - 1)
    return None


def requantize_floor_relu(fmt: FixedFormat, acc: np.ndarray, frac_in: int) -> tuple[np.ndarray, int]:
    """requantize(fmt, acc - offset, frac_in, relu=True) for an accumulator that already holds
    floor_rounding_offset: floor(acc / 2**shift), then ReLU and saturation as one clip (rounding is
    monotone with round(0) = 0, so ReLU before or after it gives the same integers). In place."""
    shift = frac_in - fmt.frac
    if shift:
        acc *= acc.dtype.type(2.0 ** -shift)
        np.floor(acc, out=acc)
    hi = acc.dtype.type(fmt.max_code)
    n_over = int(np.count_nonzero(acc > hi))
    np.clip(acc, 0, hi, out=acc)
    return acc, n_over


def quantize(fmt: FixedFormat, values: np.ndarray) -> tuple[np.ndarray, int]:
    """cast<fmt>(value) for float32 values, as float64 codes (exact: float64 holds every float32 scaled
    by a power of two, and the +-0.5 of rounding, without loss); returns (codes, overflow count)."""
    x = np.asarray(values, np.float32).astype(np.float64)
    x *= 2.0 ** fmt.frac
    return _round_and_overflow(fmt, x, rounding=True, relu=False)


def _round_and_overflow(fmt: FixedFormat, x: np.ndarray, rounding: bool, relu: bool) -> tuple[np.ndarray, int]:
    dtype = x.dtype.type
    if rounding:
        mode = fmt.rounding
        if mode == "AP_TRN":
            np.floor(x, out=x)
        elif mode == "AP_TRN_ZERO":
            np.trunc(x, out=x)
        elif mode == "AP_RND":
            x += dtype(0.5); np.floor(x, out=x)
        elif mode == "AP_RND_MIN_INF":
            x -= dtype(0.5); np.ceil(x, out=x)
        elif mode == "AP_RND_CONV":
            np.rint(x, out=x)
        elif mode == "AP_RND_ZERO":
            x = np.where(x >= 0, np.ceil(x - dtype(0.5)), np.floor(x + dtype(0.5)))
        elif mode == "AP_RND_INF":
            x = np.where(x >= 0, np.floor(x + dtype(0.5)), np.ceil(x - dtype(0.5)))
        else:
            raise ValueError(f"unknown rounding mode {mode}")
    lo, hi = dtype(fmt.min_code), dtype(fmt.max_code)
    n_over = int(np.count_nonzero(x > hi))
    if not (relu and lo <= 0):      # after ReLU nothing can fall below a range that includes 0
        n_over += int(np.count_nonzero(x < lo))
    if n_over:
        mode = fmt.overflow
        if mode == "AP_SAT" or mode == "AP_SAT_SYM":
            np.clip(x, lo, hi, out=x)
        elif mode == "AP_SAT_ZERO":
            x[(x > hi) | (x < lo)] = 0
        elif mode == "AP_WRAP":
            x = np.mod(x - lo, dtype(2.0 ** fmt.width)) + lo
        else:
            raise ValueError(f"unknown overflow mode {mode}")
    return x, n_over


def global_avgpool(x: np.ndarray, multiplier: int, shift: int, frac_in: int, fmt: FixedFormat) -> tuple[np.ndarray, int]:
    """Exact sum over H, W; times multiplier; shift right with fmt's rounding; cast to fmt."""
    s = x.astype(np.float64).sum(axis=(1, 2))  # exact: inputs are small integers
    return requantize(fmt, s * float(multiplier), frac_in + shift)


def reciprocal(n: int, bits: int = 16) -> tuple[int, int]:
    """(multiplier, shift) with multiplier / 2**shift ~ 1/n and `bits` significant bits in the multiplier."""
    shift = bits + int(np.ceil(np.log2(n)))
    return int(round(2 ** shift / n)), shift
