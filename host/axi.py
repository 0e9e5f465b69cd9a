"""AXI4-Stream packing of the accelerator's interface, in numpy (the host's side of hw/kernels/sqz_axi.h).

Ships to the board (numpy only; see host/README.md). hw/ generates the design with it, host/ drives it.

The accelerator's top function `sqz_top` reads and writes 64-bit AXI4-Stream words that carry the
fixed-point codes of the QuantSpec, never floats:

  input   one beat per pixel, pixels row-major (y, then x); channel c in bits [c*L, (c+1)*L) with
          L = 8, 16 or 32 the smallest lane that holds the input format's width; each lane holds the
          pixel's code (value * 2**frac, rounded and saturated as the input format says) as two's
          complement, sign-extended to L bits. The kernel reads the low W bits of each lane.
  output  ceil(N / (64/L)) beats for N logits, L the lane of the logit format; logit k in beat
          k // (64/L), lane k % (64/L), its code sign-extended (signed format) or zero-extended
          (unsigned); unused lanes of the last beat are 0; TLAST marks the frame's last beat.

  weights (designs with loadable layers only; `WeightStream`): the top's s_axilite `mode` = 1 (LOAD_MODE)
          makes the input stream carry a header beat (WEIGHT_MAGIC in bits 63..32, payload beats in
          31..0) and the codes of every loadable weight array, 64/L to a beat (L = 8, 16 or 32 from
          the weight width), each array starting on a new beat, TLAST on the last beat; the output
          stream answers one beat (bit 0: accepted; bits 63..32: payload beats read). mode = 0
          (INFER_MODE) is inference as above. Until a load, loadable weights are 0 (UltraRAM's
          power-up state; C simulation's zero-initialised arrays).

Lanes are little-endian within the word (lane 0 in bits 0..L-1), so on a little-endian host a beat is
also a row of L-bit integers: `words.view(np.int16)` reads 16-bit lanes directly.
`AxiPacking` and `WeightStream` are fields of every project's manifest.json (host/manifest.py), the file the
board-side driver reads.
"""
from __future__ import annotations

import sys
from dataclasses import asdict, dataclass

import numpy as np

WORD_BITS = 64
LANE_CHOICES = (8, 16, 32)
_LANE_DTYPES = {8: np.uint8, 16: np.uint16, 32: np.uint32}


def lane_bits(width: int) -> int:
    for lane in LANE_CHOICES:
        if width <= lane:
            return lane
    raise ValueError(f"a {width}-bit code does not fit an AXI lane (at most {LANE_CHOICES[-1]} bits)")


WEIGHT_MAGIC = 0x53515A57      # "SQZW"
INFER_MODE, LOAD_MODE = 0, 1


def pack_lanes(lanes: np.ndarray, lane: int) -> np.ndarray:
    """Integer codes (..., k) with k * lane <= 64 -> uint64 words (...,): code j in bits [j*lane, (j+1)*lane),
    two's complement truncated to the lane."""
    lanes = np.asarray(lanes)
    if lanes.shape[-1] * lane > WORD_BITS:
        raise ValueError(f"{lanes.shape[-1]} lanes of {lane} bits do not fit a {WORD_BITS}-bit word")
    if sys.byteorder == "little":
        # a beat is a row of 64/lane little-endian lane integers: the cast to the lane's unsigned type is the
        # two's complement truncation, the view makes the words (the loop below, ~100x faster on a frame)
        rows = np.zeros(lanes.shape[:-1] + (WORD_BITS // lane,), _LANE_DTYPES[lane])
        rows[..., :lanes.shape[-1]] = lanes.astype(_LANE_DTYPES[lane])   # integer casts wrap: the truncation
        return rows.view(np.uint64)[..., 0]
    masked = (lanes.astype(np.int64) & ((1 << lane) - 1)).astype(np.uint64)
    words = np.zeros(lanes.shape[:-1], np.uint64)
    for j in range(lanes.shape[-1]):
        words |= masked[..., j] << np.uint64(j * lane)
    return words


def unpack_lanes(words: np.ndarray, lane: int, signed: bool) -> np.ndarray:
    """uint64 words (...,) -> int64 codes (..., 64 // lane), sign-extended from the lane if signed."""
    words = np.asarray(words, np.uint64)
    mask = np.uint64((1 << lane) - 1)
    codes = np.stack([(words >> np.uint64(j * lane)) & mask for j in range(WORD_BITS // lane)], axis=-1)
    codes = codes.astype(np.int64)
    if signed:
        codes = np.where(codes >= (1 << (lane - 1)), codes - (1 << lane), codes)
    return codes


@dataclass(frozen=True)
class WeightArray:
    """One loadable weight array in the load stream: `n` codes of a `bits`-bit format in `lane`-bit lanes,
    starting at payload beat `first_beat` (0 = the beat after the header)."""
    layer: str
    array: str            # the C++ name of the runtime-written array (hw/ops/conv.py loadable_array)
    n: int
    bits: int
    signed: bool
    lane: int
    first_beat: int

    @property
    def beats(self) -> int:
        return -(-self.n // (WORD_BITS // self.lane))


@dataclass(frozen=True)
class WeightStream:
    """Layout of the weight-load stream (module docstring; hw/kernels/sqz_axi.h is the device side)."""
    arrays: tuple

    @classmethod
    def for_arrays(cls, arrays) -> "WeightStream":
        """arrays: (layer, C++ array name, number of codes, FixedFormat of the weights), in load order."""
        out, beat = [], 0
        for layer, array, n, fmt in arrays:
            a = WeightArray(layer, array, int(n), fmt.width, fmt.signed, lane_bits(fmt.width), beat)
            out.append(a)
            beat += a.beats
        return cls(tuple(out))

    @classmethod
    def from_json(cls, data: dict) -> "WeightStream":
        return cls(tuple(WeightArray(**{k: a[k] for k in WeightArray.__dataclass_fields__}) for a in data["arrays"]))

    @property
    def payload_beats(self) -> int:
        return sum(a.beats for a in self.arrays)

    @property
    def total_beats(self) -> int:
        return 1 + self.payload_beats

    def header(self) -> np.uint64:
        return np.uint64((WEIGHT_MAGIC << 32) | self.payload_beats)

    def to_json(self) -> dict:
        return {"arrays": [{**asdict(a), "beats": a.beats} for a in self.arrays], "word_bits": WORD_BITS,
                "magic": WEIGHT_MAGIC, "payload_beats": self.payload_beats, "total_beats": self.total_beats,
                "load_mode": LOAD_MODE, "infer_mode": INFER_MODE,
                "header": "bits 63..32 magic, bits 31..0 payload beats",
                "reply": "one beat, TLAST: bit 0 accepted, bits 63..32 payload beats read",
                "tlast": "input: last payload beat; output: the reply beat"}

    def pack(self, codes: dict) -> np.ndarray:
        """{layer: integer codes in the kernel's order} -> uint64 beats, header first (total_beats,)."""
        missing = [a.layer for a in self.arrays if a.layer not in codes]
        extra = sorted(set(codes) - {a.layer for a in self.arrays})
        if missing or extra:
            raise ValueError(f"weight stream: codes missing for {missing}, not loadable: {extra}")
        words = [np.array([self.header()], np.uint64)]
        for a in self.arrays:
            c = np.asarray(codes[a.layer])
            if not np.issubdtype(c.dtype, np.integer):
                raise TypeError(f"weight stream {a.layer}: integer codes needed, got {c.dtype}")
            if c.size != a.n:
                raise ValueError(f"weight stream {a.layer}: {c.size} codes, expected {a.n}")
            lo, hi = (-(1 << (a.bits - 1)), (1 << (a.bits - 1)) - 1) if a.signed else (0, (1 << a.bits) - 1)
            if c.size and (c.min() < lo or c.max() > hi):
                raise ValueError(f"weight stream {a.layer}: codes outside a {a.bits}-bit "
                                 f"{'signed' if a.signed else 'unsigned'} format")
            lanes = WORD_BITS // a.lane
            padded = np.zeros(a.beats * lanes, np.int64)
            padded[:a.n] = c.ravel()
            words.append(pack_lanes(padded.reshape(a.beats, lanes), a.lane))
        return np.concatenate(words)

    def unpack(self, words: np.ndarray) -> dict:
        """The inverse of pack (header checked): {layer: int64 codes}."""
        words = np.asarray(words, np.uint64)
        if words.shape != (self.total_beats,) or words[0] != self.header():
            raise ValueError(f"not this design's weight stream ({words.shape[0]} beats, expected "
                             f"{self.total_beats} with header {int(self.header()):#018x})")
        out = {}
        for a in self.arrays:
            beats = words[1 + a.first_beat:1 + a.first_beat + a.beats]
            out[a.layer] = unpack_lanes(beats, a.lane, a.signed).ravel()[:a.n]
        return out

    @staticmethod
    def reply(word) -> tuple[bool, int]:
        """The device's answer beat -> (accepted, payload beats it read)."""
        w = int(np.uint64(word))
        return bool(w & 1), w >> 32


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

    @classmethod
    def from_json(cls, data: dict) -> "AxiPacking":
        """The fields of to_json (derived ones ignored; host/manifest.py validates them first)."""
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})

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
        return pack_lanes(codes.reshape(codes.shape[:-3] + (self.height * self.width, self.channels)), self.in_lane)

    def unpack_output(self, words: np.ndarray) -> np.ndarray:
        """uint64 beats (out_beats,) or (N, out_beats) -> int64 logit codes (n_out,) or (N, n_out)."""
        words = np.asarray(words, np.uint64)
        if words.shape[-1] != self.out_beats:
            raise ValueError(f"{words.shape[-1]} output beats, expected {self.out_beats}")
        codes = unpack_lanes(words, self.out_lane, self.out_signed)
        return codes.reshape(words.shape[:-1] + (-1,))[..., :self.n_out]
