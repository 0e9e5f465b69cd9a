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
from numpy.lib.stride_tricks import sliding_window_view

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
    """OIHW -> (I*kh*kw, O), the row order of `im2col` below."""
    o = w_oihw.shape[0]
    return np.ascontiguousarray(w_oihw.transpose(1, 2, 3, 0).reshape(-1, o))


def conv2d(x: np.ndarray, wmat: np.ndarray, bias: np.ndarray, kernel: int, stride: int = 1, pad: int = 0) -> np.ndarray:
    """NHWC convolution as one matrix product; zero padding, Caffe's floor output size."""
    if pad:
        x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    n, h, w, c = x.shape
    if kernel == 1 and stride == 1:
        cols = x.reshape(-1, c)
        oh, ow = h, w
    else:
        win = sliding_window_view(x, (kernel, kernel), axis=(1, 2))[:, ::stride, ::stride]  # N,OH,OW,C,kh,kw
        oh, ow = win.shape[1], win.shape[2]
        cols = win.reshape(n * oh * ow, c * kernel * kernel)
    acc = cols @ wmat
    acc += bias
    return acc.reshape(n, oh, ow, -1)


def maxpool(x: np.ndarray, kernel: int, stride: int) -> np.ndarray:
    """Caffe max pooling (round-up size); inputs are post-ReLU, so padding with 0 is padding with -inf."""
    n, h, w, c = x.shape
    oh, ow = -(-(h - kernel) // stride) + 1, -(-(w - kernel) // stride) + 1
    ph, pw = (oh - 1) * stride + kernel - h, (ow - 1) * stride + kernel - w
    if ph > 0 or pw > 0:
        x = np.pad(x, ((0, 0), (0, max(ph, 0)), (0, max(pw, 0)), (0, 0)))
    out = None
    for dy in range(kernel):
        for dx in range(kernel):
            tap = x[:, dy:dy + stride * (oh - 1) + 1:stride, dx:dx + stride * (ow - 1) + 1:stride]
            out = tap.copy() if out is None else np.maximum(out, tap, out=out)
    return out


def requantize(fmt: FixedFormat, acc: np.ndarray, frac_in: int, relu: bool = False) -> tuple[np.ndarray, int]:
    """cast<fmt>(acc * 2**-frac_in) (after ReLU if asked) on integer codes held in a float array.

    Same result as fmt.requantize (quant/fixed_point.py, the definition, tested against the
    ap_fixed headers) but fast in float32; returns (codes in acc's dtype, number of overflows).
    """
    x = np.maximum(acc, 0, out=acc) if relu else acc
    shift = frac_in - fmt.frac
    dtype = x.dtype.type
    one = dtype(1)
    if shift > 0:
        x = x * dtype(2.0 ** -shift)
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
    elif shift < 0:
        x = x * dtype(2.0 ** -shift)
    lo, hi = dtype(fmt.min_code), dtype(fmt.max_code)
    over = (x > hi) | (x < lo)
    n_over = int(np.count_nonzero(over))
    if n_over:
        mode = fmt.overflow
        if mode == "AP_SAT" or mode == "AP_SAT_SYM":
            np.clip(x, lo, hi, out=x)
        elif mode == "AP_SAT_ZERO":
            x[over] = 0
        elif mode == "AP_WRAP":
            span = dtype(2.0 ** fmt.width)
            x = np.mod(x - lo, span) + lo
        else:
            raise ValueError(f"unknown overflow mode {mode}")
    del one
    return x, n_over


def global_avgpool(x: np.ndarray, multiplier: int, shift: int, frac_in: int, fmt: FixedFormat) -> tuple[np.ndarray, int]:
    """Exact sum over H, W; times multiplier; shift right with fmt's rounding; cast to fmt."""
    s = x.astype(np.float64).sum(axis=(1, 2))  # exact: inputs are small integers
    return requantize(fmt, s * float(multiplier), frac_in + shift)


def reciprocal(n: int, bits: int = 16) -> tuple[int, int]:
    """(multiplier, shift) with multiplier / 2**shift ~ 1/n and `bits` significant bits in the multiplier."""
    shift = bits + int(np.ceil(np.log2(n)))
    return int(round(2 ** shift / n)), shift
