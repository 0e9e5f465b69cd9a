"""AXI4-Stream packing of the accelerator's interface, in numpy (the host's side of hw/kernels/sqz_axi.h).

The accelerator's top function `sqz_top` reads and writes 64-bit AXI4-Stream words that carry the
fixed-point codes of the QuantSpec, never floats:

  input   one beat per pixel, pixels row-major (y, then x); channel c in bits [c*L, (c+1)*L) with
          L = 8, 16 or 32 the smallest lane that holds the input format's width; each lane holds the
          pixel's code (value * 2**frac, rounded and saturated as the input format says) as two's
          complement, sign-extended to L bits. The kernel reads the low W bits of each lane.
  output  ceil(N / (64/L)) beats for N logits, L the lane of the logit format; logit k in beat
          k // (64/L), lane k % (64/L), its code sign-extended (signed format) or zero-extended
          (unsigned); unused lanes of the last beat are 0; TLAST marks the frame's last beat.

Lanes are little-endian within the word (lane 0 in bits 0..L-1), so on a little-endian host a beat is
also a row of L-bit integers: `words.view(np.int16)` reads 16-bit lanes directly.
`AxiPacking` is also written into every project's sqz_manifest.json for the board-side driver.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

WORD_BITS = 64
LANE_CHOICES = (8, 16, 32)


def lane_bits(width: int) -> int:
    for lane in LANE_CHOICES:
        if width <= lane:
            return lane
    raise ValueError(f"a {width}-bit code does not fit an AXI lane (at most {LANE_CHOICES[-1]} bits)")


@dataclass(frozen=True)
class AxiPacking:
    height: int
    width: int
    channels: int
    in_bits: int          # width of the input format
    in_lane: int
    n_out: int
    out_bits: int         # width of the logit format
    out_signed: bool
    out_lane: int

    @classmethod
    def for_formats(cls, height: int, width: int, channels: int, in_fmt, n_out: int, out_fmt) -> "AxiPacking":
        in_lane, out_lane = lane_bits(in_fmt.width), lane_bits(out_fmt.width)
        if channels * in_lane > WORD_BITS:
            raise ValueError(f"{channels} input channels of {in_lane}-bit lanes do not fit one "
                             f"{WORD_BITS}-bit beat (input format {in_fmt})")
        return cls(height, width, channels, in_fmt.width, in_lane, n_out, out_fmt.width, out_fmt.signed, out_lane)

    @property
    def in_beats(self) -> int:
        return self.height * self.width

    @property
    def out_lanes(self) -> int:
        return WORD_BITS // self.out_lane

    @property
    def out_beats(self) -> int:
        return -(-self.n_out // self.out_lanes)

    def to_json(self) -> dict:
        return {**asdict(self), "word_bits": WORD_BITS, "in_beats": self.in_beats, "out_beats": self.out_beats,
                "tlast": "output: last beat of each frame; input: not needed"}

    # -- numpy packing ------------------------------------------------------------------------
    def pack_input(self, codes: np.ndarray) -> np.ndarray:
        """Input codes (H, W, C) or (N, H, W, C), integers -> uint64 beats (H*W,) or (N, H*W)."""
        codes = np.asarray(codes)
        if not np.issubdtype(codes.dtype, np.integer):
            raise TypeError(f"pack_input needs integer codes, got {codes.dtype}")
        shape = (self.height, self.width, self.channels)
        if codes.shape[-3:] != shape:
            raise ValueError(f"input codes of shape {codes.shape}, expected (..., {', '.join(map(str, shape))})")
        lo, hi = -(1 << (self.in_bits - 1)), (1 << self.in_bits) - 1
        if codes.size and (codes.min() < lo or codes.max() > hi):
            raise ValueError(f"input codes outside a {self.in_bits}-bit format")
        lanes = (codes.astype(np.int64) & ((1 << self.in_lane) - 1)).astype(np.uint64)
        lanes = lanes.reshape(codes.shape[:-3] + (self.height * self.width, self.channels))
        words = np.zeros(lanes.shape[:-1], np.uint64)
        for c in range(self.channels):
            words |= lanes[..., c] << np.uint64(c * self.in_lane)
        return words

    def unpack_output(self, words: np.ndarray) -> np.ndarray:
        """uint64 beats (out_beats,) or (N, out_beats) -> int64 logit codes (n_out,) or (N, n_out)."""
        words = np.asarray(words, np.uint64)
        if words.shape[-1] != self.out_beats:
            raise ValueError(f"{words.shape[-1]} output beats, expected {self.out_beats}")
        mask = np.uint64((1 << self.out_lane) - 1)
        lanes = np.stack([(words >> np.uint64(l * self.out_lane)) & mask for l in range(self.out_lanes)], axis=-1)
        codes = lanes.reshape(words.shape[:-1] + (-1,)).astype(np.int64)[..., :self.n_out]
        if self.out_signed:
            codes = np.where(codes >= (1 << (self.out_lane - 1)), codes - (1 << self.out_lane), codes)
        return codes
