"""Bit-exact numpy model of Xilinx ``ap_fixed<W,I,Q,O>`` / ``ap_ufixed<W,I,Q,O>``.

The reference is the header set shipped by hls4ml
(``hls4ml/templates/vivado/ap_types/ap_fixed_base.h``); tests/test_fixed_point.py
checks this module against those headers compiled with g++.

Values are carried as integer *codes*: a format with ``frac = W - I``
fractional bits represents ``code * 2**-frac``. All arithmetic on codes is
done in np.int64 (vectorized), so results are exact.

Semantics (as implemented by the headers):

* Rounding is applied first, on the exact source value; overflow handling is
  then applied to the *rounded* value (so e.g. ``max + lsb/2`` rounds up past
  max and then saturates or wraps).
* AP_WRAP keeps the low W bits (two's complement for signed, modulo 2**W for
  unsigned).  AP_SAT clamps, AP_SAT_ZERO maps any overflow to 0, AP_SAT_SYM
  clamps a signed target to [-max, max] (the code -2**(W-1) counts as an
  overflow too); for unsigned targets AP_SAT_SYM is plain AP_SAT.
* Signed W=1 with AP_SAT_SYM: the header's "min + 1" pattern is the single
  bit 1, so the range stays [-1, 0] (there is no symmetric range to clamp to).

Limits (documented, validated where possible):

* ``ap_ufixed<64, ...>`` is rejected: its codes do not fit np.int64.
* ``to_float`` / ``min_value`` / ``max_value`` are float64, so they are
  inexact for codes beyond 2**53 (W > 53); the codes themselves are exact.
* ``quantize`` takes float64 and is exact for every finite input and every
  W <= 64 (wide values are reduced with the exact ``np.fmod``, not by a lossy
  int conversion).  NaN maps to code 0 (ap_fixed does not support NaN either;
  it only warns).  +-inf behave like huge values (saturate, or wrap to 0), as
  in the header, which reads inf as 2**1024.  Subnormal inputs differ from the
  header only for formats with more than ~1000 fractional bits (the header
  treats subnormals as if they were normal numbers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from sqz.errors import SqzError

ROUNDING_MODES = (
    "AP_TRN",
    "AP_TRN_ZERO",
    "AP_RND",
    "AP_RND_ZERO",
    "AP_RND_MIN_INF",
    "AP_RND_INF",
    "AP_RND_CONV",
)
OVERFLOW_MODES = ("AP_WRAP", "AP_SAT", "AP_SAT_ZERO", "AP_SAT_SYM")

_TWO63 = 2.0**63
_TWO64 = 2.0**64


class FormatError(SqzError, ValueError):
    """An invalid fixed-point format (bad parameters or unparsable text): a user error where it comes from
    a spec file or an option (e.g. a width beyond 64 bits)."""


_NAME = r"\s*(AP_[A-Z_]+)\s*"
_FIXED_RE = re.compile(
    r"^\s*ap_(u?)fixed\s*<\s*([+-]?\d+)\s*,\s*([+-]?\d+)\s*"
    r"(?:," + _NAME + r"(?:," + _NAME + r"(?:,\s*([+-]?\d+)\s*)?)?)?>\s*$"
)
_INT_RE = re.compile(r"^\s*ap_(u?)int\s*<\s*([+-]?\d+)\s*>\s*$")


@dataclass(frozen=True)
class FixedFormat:
    width: int  # W, total bits, 1..64
    integer: int  # I, integer bits (incl. sign bit if signed); any int, as in ap_fixed
    signed: bool = True
    rounding: str = "AP_RND"
    overflow: str = "AP_SAT"

    def __post_init__(self):
        w, i = self.width, self.integer
        if not isinstance(w, (int, np.integer)) or isinstance(w, bool):
            raise FormatError(f"width must be an int, got {w!r}")
        if not isinstance(i, (int, np.integer)) or isinstance(i, bool):
            raise FormatError(f"integer bits must be an int, got {i!r}")
        if not 1 <= w <= 64:
            raise FormatError(f"width must be in 1..64, got {w}")
        if not self.signed and w == 64:
            # Unsigned 64-bit codes reach 2**64-1, which np.int64 cannot hold.
            raise FormatError("ap_ufixed<64,...> is not supported: codes must fit in int64")
        if self.rounding not in ROUNDING_MODES:
            raise FormatError(f"unknown rounding mode {self.rounding!r}; expected one of {ROUNDING_MODES}")
        if self.overflow not in OVERFLOW_MODES:
            raise FormatError(f"unknown overflow mode {self.overflow!r}; expected one of {OVERFLOW_MODES}")
        # Normalise numpy ints so equality/hash/str behave like plain ints.
        object.__setattr__(self, "width", int(w))
        object.__setattr__(self, "integer", int(i))
        object.__setattr__(self, "signed", bool(self.signed))

    # ----------------------------------------------------------- properties
    @property
    def frac(self) -> int:
        return self.width - self.integer

    @property
    def max_code(self) -> int:
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1

    @property
    def min_code(self) -> int:
        if not self.signed:
            return 0
        if self.overflow == "AP_SAT_SYM" and self.width > 1:
            return -self.max_code
        # W=1 AP_SAT_SYM: the header's min+1 pattern is still -1 (see module doc).
        return -(1 << (self.width - 1))

    @property
    def lsb(self) -> float:
        return float(np.ldexp(1.0, -self.frac))

    @property
    def min_value(self) -> float:
        return float(np.ldexp(float(self.min_code), -self.frac))

    @property
    def max_value(self) -> float:
        return float(np.ldexp(float(self.max_code), -self.frac))

    # ------------------------------------------------------------ text form
    @classmethod
    def parse(cls, text: str) -> "FixedFormat":
        """Parse a C++ type string. Omitted modes mean AP_TRN / AP_WRAP, as in C++."""
        if not isinstance(text, str):
            raise FormatError(f"cannot parse fixed-point type from {text!r}: not a string")
        m = _INT_RE.match(text)
        if m:
            w = int(m.group(2))
            return cls._checked(text, w, w, m.group(1) == "", "AP_TRN", "AP_WRAP")
        m = _FIXED_RE.match(text)
        if not m:
            raise FormatError(f"cannot parse fixed-point type {text!r}")
        unsigned, w, i, q, o, n = m.groups()
        if n is not None and int(n) != 0:
            raise FormatError(f"cannot parse fixed-point type {text!r}: saturation bits N != 0 not supported")
        return cls._checked(text, int(w), int(i), unsigned == "", q or "AP_TRN", o or "AP_WRAP")

    @classmethod
    def _checked(cls, text, *args) -> "FixedFormat":
        try:
            return cls(*args)
        except FormatError as e:
            raise FormatError(f"invalid fixed-point type {text!r}: {e}") from None

    def __str__(self) -> str:
        kind = "ap_fixed" if self.signed else "ap_ufixed"
        return f"{kind}<{self.width},{self.integer},{self.rounding},{self.overflow}>"

    # ------------------------------------------------------------ casting
    def quantize(self, x) -> np.ndarray:
        """float64 values -> codes, exactly as ``ap_fixed<...> v = (double)x;``."""
        c, hi, lo = self._quantize_raw(x)
        return self._apply_overflow(c, hi, lo)

    def requantize(self, codes, frac_in: int) -> np.ndarray:
        """Cast exact values ``codes * 2**-frac_in`` into this format (integer-only)."""
        c, hi, lo = self._requantize_raw(codes, frac_in)
        return self._apply_overflow(c, hi, lo)

    def overflow_mask(self, codes, frac_in: int) -> np.ndarray:
        """True where the rounded value falls outside [min_code, max_code].

        This is the condition before the overflow mode acts (for AP_WRAP it is
        the range the wrap folds into); use it to count saturations.
        """
        _, hi, lo = self._requantize_raw(codes, frac_in)
        return hi | lo

    def to_float(self, codes) -> np.ndarray:
        codes = np.asarray(codes)
        return np.ldexp(codes.astype(np.float64), -self.frac)

    # ------------------------------------------------------------ internals
    # Each *_raw returns (c, hi, lo): c is the rounded value modulo 2**64 as
    # int64 (exact whenever not hi/lo), hi/lo flag rounded values above
    # max_code / below min_code.  Keeping c exact mod 2**64 lets AP_WRAP take
    # the low W bits even for values far outside the int64 range.

    def _round_increment(self, f_odd, neg, qb, r):
        """ap_fixed's quantization_adjust(): +1 or 0 on top of floor.

        qb: the bit just below the new LSB (fraction >= 1/2); r: any lower bit
        set (fraction != 1/2 given qb); neg: source value < 0.
        """
        q = self.rounding
        if q == "AP_TRN":
            return np.zeros_like(qb)
        if q == "AP_TRN_ZERO":
            return neg & (qb | r)
        if q == "AP_RND":
            return qb
        if q == "AP_RND_ZERO":
            return qb & (r | neg)
        if q == "AP_RND_MIN_INF":
            return qb & r
        if q == "AP_RND_INF":
            return qb & (r | ~neg)
        return qb & (r | f_odd)  # AP_RND_CONV

    def _quantize_raw(self, x):
        x = np.asarray(x, dtype=np.float64)
        # Scaling by a power of two is exact unless it leaves the normal
        # range. Overflow gives inf (handled below); underflow can only lose
        # magnitude below 2**-1022, far from any rounding boundary, except
        # that it may reach 0 and lose the sign, so keep a nonzero tiny value.
        with np.errstate(over="ignore", invalid="ignore"):
            y = np.ldexp(x, self.frac)
            y = np.where((y == 0) & (x != 0), np.copysign(5e-324, x), y)
            f = np.floor(y)
            d = y - f  # exact fraction in [0, 1) (nan for inf/nan)
            qb = d >= 0.5
            r = (d != 0) & (d != 0.5)
            f_odd = np.fmod(f, 2.0) != 0
            neg = y < 0
            # f + 1 is exact: a nonzero fraction implies |y| < 2**52.
            rv = f + self._round_increment(f_odd, neg, qb, r)

            # Thresholds are powers of two (or 0), hence exact in float64.
            hi = rv >= float(self.max_code + 1)
            if self.signed:
                lo_edge = -float(1 << (self.width - 1))
                lo = (rv <= lo_edge) if self.min_code > lo_edge else (rv < lo_edge)
            else:
                lo = rv < 0.0

            # Exact residue mod 2**64 (fmod is exact), folded into int64 range.
            m = np.fmod(rv, _TWO64)
            m = np.where(m >= _TWO63, m - _TWO64, m)
            m = np.where(m < -_TWO63, m + _TWO64, m)
            m = np.where(np.isnan(m), 0.0, m)  # nan, and inf (== 2**1024 = 0 mod 2**64)
        return m.astype(np.int64), hi, lo

    def _requantize_raw(self, codes, frac_in):
        codes = np.asarray(codes)
        if not (np.issubdtype(codes.dtype, np.integer) or codes.dtype == np.bool_):
            raise TypeError(f"requantize needs integer codes, got dtype {codes.dtype}")
        codes = codes.astype(np.int64, casting="safe")
        frac_in = int(frac_in)
        shift = frac_in - self.frac  # source LSBs dropped (>0) or zeros appended (<0)

        if shift > 0:
            neg = codes < 0
            f = codes >> min(shift, 63)  # floor; shift >= 64 leaves the sign only
            if shift - 1 < 63:
                qb = ((codes >> (shift - 1)) & 1).astype(bool)
                r = (codes & ((1 << (shift - 1)) - 1)) != 0
            else:
                # The half bit lies at or above bit 63: it is the sign bit; any
                # sign-extension bits between it and bit 63 count as "rest".
                qb = neg
                r = (codes & np.int64(2**63 - 1)) != 0
                if shift - 1 > 63:
                    r = r | neg
            c = f + self._round_increment((f & 1).astype(bool), neg, qb, r)
            return c, c > self.max_code, c < self.min_code

        if shift == 0:
            return codes, codes > self.max_code, codes < self.min_code

        k = -shift  # exact left shift; may exceed int64, so bound-check first
        hi = codes > (self.max_code >> k)
        lo = codes < -((-self.min_code) >> k)  # ceil(min_code / 2**k)
        if k >= 64:
            c = np.zeros_like(codes)
        else:
            # Shift as uint64 so it wraps mod 2**64 (well-defined) instead of
            # overflowing a signed type.
            c = (codes.view(np.uint64) << np.uint64(k)).view(np.int64)
        return c, hi, lo

    def _apply_overflow(self, c, hi, lo):
        o = self.overflow
        if o == "AP_WRAP":
            if self.signed:
                s = np.uint64(64 - self.width)
                # Move bit W-1 to bit 63, then arithmetic-shift back: sign-extends.
                return (c.view(np.uint64) << s).view(np.int64) >> np.int64(64 - self.width)
            return c & np.int64((1 << self.width) - 1)
        if o == "AP_SAT_ZERO":
            return np.where(hi | lo, np.int64(0), c)
        # AP_SAT, and AP_SAT_SYM (min_code already symmetric where it applies).
        return np.where(hi, np.int64(self.max_code), np.where(lo, np.int64(self.min_code), c))
