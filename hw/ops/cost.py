"""The cost model's primitives, shared by every hardware op: memories, DSP and LUT formulas, folding.

Each op (hw/ops/*.py) composes these into its own cost, next to its own code generation; the
whole model -- what it assumes and where its constants come from -- is described in hw/estimate.py.
Nothing here is measured: every number is a model of what Vitis HLS / Vivado would build.
"""
from __future__ import annotations

import bisect
import math
from dataclasses import asdict, dataclass, field

import numpy as np

# -- named constants of the cost model --------------------------------------------------------
BRAM18_SHAPES = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))  # depth, width
URAM_DEPTH, URAM_WIDTH = 4096, 72
LUTRAM_MAX_DEPTH = 128          # FINN: HLS-embedded memories with depth <= 128 are built in LUTs
REGISTER_FIFO_DEPTH = 2         # HLS builds FIFOs this shallow from flip-flops (not estimated)
SRL_DEPTH = 32                  # SRLC32E: one LUT holds 32 bits of one shift-register bit
DSP_PORTS = {"DSP48E1": (25, 18), "DSP48E2": (27, 18)}
LAYER_LUT_BASE = 300            # FINN-R c0: control per layer (per convolution engine)
LUT_SCALE = 1.1                 # FINN-R c1
POOL_LUT_PER_BIT = 8            # 4 compare-selects per channel x 2 LUTs per bit
PAD_LUT_BASE = 100
SIMPLE_LAYER_LUT = 100          # control of an hls4ml relu / clone_stream / concatenate3d layer
RELU_LUT_PER_BIT = 1            # sign test + saturating cast, per bit of the ReLU's input pixel
DEFAULT_FIFO_DEPTH = 32
FEATURE_MAP = "feature_map"     # fifo_depth policy: hls4ml's default, a whole feature map per FIFO
SHELL_LUT = 5_000               # allowance: AXI DMA + AXI interconnect + reset (not measured here)
SHELL_BRAM18 = 4                # allowance: DMA stream buffers
RECIPROCAL_BITS = 18            # GAP multiplier constant (QuantSpec multiplier < 2**17, unsigned)
CSD_MULT_DIGITS = 3   # a constant with fewer nonzero canonical-signed digits is shifts and <= 1 add/sub
DSP_MIN_BITS = 10     # a multiplier whose operands are all <= 10 bits is built in fabric
LATENCY_LIMIT = 4096            # hls4ml issue #572: Latency strategy only for n_in * n_out < 4096


def _user_error(msg: str) -> Exception:
    from hw.ops.base import UnsupportedModelError   # hw/ops/base.py imports this module

    return UnsupportedModelError(msg)


# -- reuse factors and folding ----------------------------------------------------------------
def valid_reuse_factors(n_in: int, n_out: int) -> list[int]:
    """Reuse factors hls4ml 1.3.0 accepts for an n_in x n_out product (ascending).

    ``FPGABackend._validate_reuse_factor``: with multfactor = min(n_in, R) and
    multiplier_limit = ceil(n_in*n_out / multfactor), R is valid iff
    (multiplier_limit % n_out == 0 or R >= n_in) and (R % n_in == 0 or R < n_in)
    and (n_in*n_out) % R == 0. That reduces to: R divides n_in, or R = n_in*d with d | n_out.
    """
    small = [d for d in range(1, n_in + 1) if n_in % d == 0]
    large = [n_in * d for d in range(2, n_out + 1) if n_out % d == 0]
    return small + large


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def closest(valid: list[int], want: int) -> int:
    """hls4ml's choice for an invalid reuse factor: the closest valid one, the smaller on a tie."""
    return min(valid, key=lambda r: (abs(r - want), r))


def default_reuse(n_in: int, n_out: int) -> int:
    """1 where hls4ml's Latency strategy fits, else the smallest valid R under its multiplier limit."""
    if n_in * n_out < LATENCY_LIMIT:
        return 1
    return next(v for v in valid_reuse_factors(n_in, n_out) if n_in * n_out / v < LATENCY_LIMIT)


def strategy(n_in: int, n_out: int) -> str:
    return "Resource" if n_in * n_out >= LATENCY_LIMIT else "Latency"


def fold_factors(n_in: int, n_out: int, reuse: int) -> tuple[int, int]:
    """(fold_in, fold_out) with fold_in * fold_out == reuse, fold_in | n_in, fold_out | n_out.

    Every reuse factor hls4ml accepts (R | n_in, or R = n_in * d with d | n_out) has one; among the
    candidates the largest fold_in is taken (R | n_in -> (R, 1); R = n_in * d -> (n_in, d)), which is
    hls4ml's dense_resource structure: inputs are folded first, outputs only beyond n_in.
    """
    for fold_in in sorted(divisors(n_in), reverse=True):
        if reuse % fold_in == 0 and n_out % (reuse // fold_in) == 0:
            return fold_in, reuse // fold_in
    raise _user_error(f"reuse factor {reuse} cannot fold a {n_in} x {n_out} product "
                     f"(needs fold_in | {n_in} and fold_out | {n_out} with fold_in * fold_out = {reuse})")


def fold_matrix(matrix: np.ndarray, fold_in: int, fold_out: int) -> np.ndarray:
    """(n_in, n_out) weights -> the flat [fo][fi][po][pi] order sqz::matvec reads (one block per cycle)."""
    n_in, n_out = matrix.shape
    pi, po = n_in // fold_in, n_out // fold_out
    return np.ascontiguousarray(matrix.reshape(fold_in, pi, fold_out, po).transpose(2, 0, 3, 1)).ravel()


@dataclass
class Stage:
    """Foldable entries whose cycles are pixels * max(R) + fill (one pipeline stage; FINN's SetFolding
    folds each stage as far as a cycle target allows)."""
    entries: list[tuple[str, list[int]]]   # (reuse key, valid reuse factors ascending)
    pixels: int
    fill: int

    def fold(self, target: int) -> dict[str, int]:
        r_max = (target - self.fill) // self.pixels
        out = {}
        for name, valid in self.entries:
            i = bisect.bisect_right(valid, r_max)
            out[name] = valid[i - 1] if i else valid[0]
        return out

    def cycle_points(self) -> set[int]:
        return {self.pixels * r + self.fill for _, valid in self.entries for r in valid}


# -- memories ---------------------------------------------------------------------------------
def bram18_blocks(depth: int, width: int) -> int:
    """RAMB18s for a depth x width memory: the cheapest aspect ratio, as Vivado packs it."""
    if depth <= 0 or width <= 0:
        return 0
    return min(math.ceil(depth / d) * math.ceil(width / w) for d, w in BRAM18_SHAPES)


def uram_blocks(depth: int, width: int) -> int:
    if depth <= 0 or width <= 0:
        return 0
    return math.ceil(width / URAM_WIDTH) * math.ceil(depth / URAM_DEPTH)


def srl_luts(depth: int, width: int) -> int:
    return math.ceil(depth / SRL_DEPTH) * width if depth > 0 and width > 0 else 0


@dataclass
class Memory:
    """One memory of an op. style: 'const' (folded into logic), 'ff', 'lut', 'bram' or 'uram'.
    loadable: weights written at start-up through the generated load path (the Loadable* ops)."""
    role: str
    depth: int
    width: int
    style: str
    loadable: bool = False

    @property
    def bits(self) -> int:
        return self.depth * self.width

    @property
    def bram18(self) -> int:
        return bram18_blocks(self.depth, self.width) if self.style == "bram" else 0

    @property
    def uram(self) -> int:
        return uram_blocks(self.depth, self.width) if self.style == "uram" else 0

    @property
    def lut(self) -> int:
        return srl_luts(self.depth, self.width) if self.style == "lut" else 0


def buffer(role: str, depth: int, width: int) -> Memory:
    """A buffer as HLS builds it: registers when very shallow, SRL LUTs below FINN's threshold, else BRAM."""
    if depth <= REGISTER_FIFO_DEPTH:
        return Memory(role, depth, width, "ff")
    return Memory(role, depth, width, "lut" if depth < LUTRAM_MAX_DEPTH else "bram")


def fifo_depth_for(policy: int | str, pixels: int) -> int:
    """Depth of a stream's FIFO carrying a feature map of `pixels` pixels under a fifo_depth policy:
    FEATURE_MAP -> hls4ml's default (the whole map); an int d -> min(d, pixels), as set_fifo_depths."""
    if policy == FEATURE_MAP:
        return pixels
    if isinstance(policy, bool) or not isinstance(policy, int) or policy < 1:
        raise _user_error(f"fifo_depth must be a positive integer or {FEATURE_MAP!r}, got {policy!r}")
    return min(policy, pixels)


def fifo(policy: int | str, pixels: int, width: int, role: str = "fifo") -> Memory:
    return buffer(role, fifo_depth_for(policy, pixels), width)


def per_channel_fifos(mems: list[Memory], channels: int) -> list[Memory]:
    """hls4ml <= 0.6 streams: a stream of C channels is C FIFOs (layerN_out_V_data_k_V), each placed alone."""
    out = []
    for m in mems:
        if "fifo" in m.role and channels > 1 and m.width % channels == 0:
            out += [buffer(m.role, m.depth, m.width // channels) for _ in range(channels)]
        else:
            out.append(m)
    return out


# -- DSPs and LUTs ------------------------------------------------------------------------------
@dataclass(frozen=True)
class CostOptions:
    dsp_type: str = "DSP48E2"
    dsp_packing: bool = False
    lut_mult_bits: int = 0
    # options fitted on real hls4ml designs (benchmarks/real_designs.py, BENCHMARKS.md issue 10); defaults = off.
    # They apply to CONSTANT products only (R == 1: hls4ml folds the weights into logic), the only kind the
    # real reports cover.
    prune_zero_weights: bool = False   # a zero weight costs no multiplier and no adder (hls4ml's n_zeros)
    const_dsp_share: float = 1.0       # share of the nonzero constant products HLS puts on DSPs (the rest: shifts)
    const_lut_bits: int = 0            # constant products whose narrower operand has <= k bits are built in LUTs
    const_adder_lut: float | None = None   # LUTs per accumulator bit per nonzero constant product (adder tree),
    #                                        replacing FINN's MVAU datapath term for R == 1
    # const_mult="csd": which constant products are multipliers and which of those are DSPs, by the rule the
    # Vitis HLS bind-op tables show (csd_multipliers below); replaces const_dsp_share and const_lut_bits.
    const_mult: str = "share"
    dsp_min_bits: int = DSP_MIN_BITS
    # with const_adder_lut: each adder of the tree as wide as the partial sums it carries (Engine.adder_bits)
    adder_tree_widths: bool = False

    def __post_init__(self):
        if self.const_mult not in CONST_MULT_RULES:
            raise _user_error(f"CostOptions.const_mult must be one of {CONST_MULT_RULES}, got {self.const_mult!r}")


CONST_MULT_RULES = ("share", "csd")


# -- constant products: shift-add or multiplier, fabric or DSP (Vitis HLS bind-op tables) -----------------


def csd_digits(codes) -> np.ndarray:
    """Nonzero digits of each integer's canonical signed-digit (non-adjacent) form: 7 = 8 - 1 -> 2."""
    q = np.abs(np.asarray(codes, dtype=np.int64)).copy()
    k = np.zeros_like(q)
    while (q > 0).any():
        odd = (q & 1) == 1
        k += odd
        q = np.where(odd & ((q & 3) == 3), q + 1, np.where(odd, q - 1, q)) >> 1
    return k


def const_bits(codes) -> np.ndarray:
    """Width HLS gives a constant operand: its odd part (trailing zeros are a shift), signed if negative."""
    q = np.asarray(codes, dtype=np.int64)
    a = np.abs(q)
    odd = a // (a & -a).clip(min=1)
    return np.where(q < 0, np.ceil(np.log2(odd.clip(min=1))).astype(np.int64) + 1,
                    np.floor(np.log2(odd.clip(min=1))).astype(np.int64) + 1)


def csd_multipliers(codes, data_bits: int, dsp_min_bits: int = DSP_MIN_BITS) -> tuple[int, int]:
    """(multipliers, of them on DSPs) for products of a data operand with each nonzero constant code.

    Read from the Vitis HLS 2023 bind-op tables of ../shared/data/hls_reports: every constant with >= 3
    nonzero CSD digits stays a `mul` (pixel CNN conv1: 39 of 72 weights, 39 DSPs), the others become
    shifts and add/sub ops; a `mul` is bound to a DSP only when an operand is wider than 10 bits
    (LeNet-5: 8s x 5/6-bit and 9s x 5s in fabric; pixel CNN: 16s x 5..10-bit on DSPs, 10ns x 10-bit in fabric)."""
    q = np.asarray(codes, dtype=np.int64)
    mult, dsp = _multiplier_and_dsp(q[q != 0], data_bits, dsp_min_bits)
    return int(mult.sum()), int(dsp.sum())


def _multiplier_and_dsp(q: np.ndarray, data_bits: int, dsp_min_bits: int) -> tuple[np.ndarray, np.ndarray]:
    mult = csd_digits(q) >= CSD_MULT_DIGITS
    return mult, mult & ((data_bits > dsp_min_bits) | (const_bits(q) > dsp_min_bits))


_PRIOR_CACHE: dict = {}


def prior_dsp_share(fmt, fan_in: int, kept: float, data_bits: int, dsp_min_bits: int = DSP_MIN_BITS) -> float:
    """Share of the nonzero constant products on DSPs when the weight codes are not known: the weights taken
    as N(0, 1/fan_in) (the LeCun / He initialisation variance, which training roughly keeps), magnitude-pruned
    to the `kept` largest share, quantized to `fmt` (its rounding, saturated), then csd_multipliers' rule."""
    key = (fmt.width, fmt.integer, fmt.signed, fmt.rounding, fan_in, round(kept, 6), data_bits, dsp_min_bits)
    if key in _PRIOR_CACHE:
        return _PRIOR_CACHE[key]
    lsb = 2.0 ** (fmt.integer - fmt.width)
    lo, hi = (-(2 ** (fmt.width - 1)), 2 ** (fmt.width - 1) - 1) if fmt.signed else (0, 2 ** fmt.width - 1)
    codes = np.arange(lo, hi + 1, dtype=np.int64)
    sigma = 1.0 / math.sqrt(fan_in)
    cdf = np.vectorize(lambda x: 0.5 * (1 + math.erf(x / (sigma * math.sqrt(2)))))
    # magnitude pruning: keep |w| > t with P(|w| <= t) = 1 - kept
    t = sigma * math.sqrt(2) * _erfinv(1 - kept) if kept < 1 else 0.0
    off = 0.5 if fmt.rounding != "AP_TRN" else 0.0
    a, b = (codes - off) * lsb, (codes + 1 - off) * lsb          # w in [a, b) gives this code
    a[0], b[-1] = -np.inf, np.inf                                   # saturation
    mass = (cdf(np.minimum(b, -t)) - cdf(np.minimum(a, -t))).clip(min=0) + \
        (cdf(np.maximum(b, t)) - cdf(np.maximum(a, t))).clip(min=0)
    mass[codes == 0] = 0
    q = codes[mass > 0]
    w = mass[mass > 0]
    dsp = _multiplier_and_dsp(q, data_bits, dsp_min_bits)[1]
    share = float((w * dsp).sum() / w.sum()) if w.sum() > 0 else 0.0
    _PRIOR_CACHE[key] = share
    return share


def _erfinv(y: float) -> float:
    """Inverse of math.erf on [0, 1) by bisection (no scipy here; the prior needs one value per layer)."""
    lo, hi = 0.0, 10.0
    for _ in range(80):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if math.erf(mid) < y else (lo, mid)
    return (lo + hi) / 2


def dsp_per_multiplier(a_bits: int, a_signed: bool, b_bits: int, b_signed: bool, dsp_type: str) -> int:
    """DSP48 slices for one a x b product (signed ports; an unsigned operand needs one more bit)."""
    pa, pb = DSP_PORTS[dsp_type]
    x, y = sorted((a_bits + (not a_signed), b_bits + (not b_signed)), reverse=True)
    if x <= pa and y <= pb:
        return 1
    return math.ceil(x / (pa - 1)) * math.ceil(y / (pb - 1))


def lut_multiplier_luts(a_bits: int, b_bits: int) -> int:
    """FINN's LUT cost of one a x b multiplier built in fabric."""
    s = a_bits + b_bits
    return (2 * math.ceil(s / 6) - 1) * s


def relu_luts(channels: int, in_bits: int) -> float:
    """hls4ml's streaming nnet::relu layer: control + a sign test and saturating cast per bit."""
    return SIMPLE_LAYER_LUT + RELU_LUT_PER_BIT * channels * in_bits


def channel_mux_luts(parallel: int, bits: int, reuse: int) -> int:
    """LUTs to pick `parallel` channels out of a buffered beat, `reuse` groups (4:1 per LUT6)."""
    return parallel * bits * math.ceil((reuse - 1) / 3) if reuse > 1 else 0


@dataclass
class Engine:
    """One dense product engine (hls4ml's dense / sqz::matvec): n_in x n_out per output pixel, reuse R.
    Bit widths come from the formats it multiplies: weight, input (act), accumulator, result (out)."""
    name: str
    n_in: int
    n_out: int
    reuse: int
    pixels: int
    weight: object            # FixedFormat of the weights
    act: object               # FixedFormat of the input
    accum: object
    out_bits: int
    zeros: int = 0            # weights pruned to zero (hls4ml's n_zeros); costed only with CostOptions.prune_zero_weights
    codes: object = field(default=None, compare=False, repr=False)   # the weights' integer codes, where known

    def __post_init__(self):
        valid = valid_reuse_factors(self.n_in, self.n_out)
        if self.reuse not in valid:
            near = valid[max(0, bisect.bisect_left(valid, self.reuse) - 3):][:7]
            raise _user_error(f"{self.name}: reuse factor {self.reuse} is not valid for n_in={self.n_in}, "
                             f"n_out={self.n_out} (hls4ml needs R | n_in or R = n_in*d with d | n_out); "
                             f"nearby valid: {near}")

    def weight_memory(self) -> Memory:
        """R == 1: constants in logic; R > 1: one ROM R deep x n_mult * W wide (hls4ml's ROM_nP_BRAM)."""
        return Memory("weights", self.reuse, self.n_mult * self.weight.width, "const" if self.reuse == 1 else "bram")

    @property
    def n_mult(self) -> int:
        return math.ceil(self.n_in * self.n_out / self.reuse)

    @property
    def macs(self) -> int:
        return self.n_in * self.n_out * self.pixels

    def products(self, opt: CostOptions) -> int:
        """Multipliers built: hls4ml's multiplier_limit, less the pruned zeros with prune_zero_weights."""
        if opt.prune_zero_weights and self.zeros:
            return math.ceil(self.n_in * self.n_out / self.reuse) - self.zeros // self.reuse
        return self.n_mult

    def in_lut(self, opt: CostOptions) -> bool:
        if self.reuse == 1 and min(self.weight.width, self.act.width) <= opt.const_lut_bits:
            return True
        return max(self.weight.width, self.act.width) <= opt.lut_mult_bits

    def dsp(self, opt: CostOptions) -> int:
        w, a = self.weight, self.act
        per = dsp_per_multiplier(w.width, w.signed, a.width, a.signed, opt.dsp_type)
        n = self.products(opt)
        if self.reuse == 1 and opt.const_mult == "csd":
            if self.codes is not None:
                return csd_multipliers(self.codes, a.width, opt.dsp_min_bits)[1] * per
            kept = n / (self.n_in * self.n_out)
            return int(round(n * per * prior_dsp_share(w, self.n_in, kept, a.width, opt.dsp_min_bits)))
        if self.in_lut(opt):
            return 0
        if self.reuse == 1 and opt.const_dsp_share != 1.0:
            return int(round(n * per * opt.const_dsp_share))
        if opt.dsp_packing and opt.dsp_type == "DSP48E2" and per == 1 and w.width <= 8 and a.width <= 8:
            return math.ceil(n / 2)
        return n * per

    def adder_bits(self, opt: CostOptions) -> float:
        """Adder bits summing the nonzero products into the n_out accumulators, one adder per product (the
        tree's t - 1 per output and the bias add). Without adder_tree_widths every adder is accumulator-wide;
        with it a tree adder at level l is min(accum, p + l) bits, p the live bits of a product (data bits +
        the constant's odd-part bits where the codes are known, + the weight width where not): synthesis
        drops the constant LSBs and sign-extension bits of the narrow partial sums. hls4ml <= 0.6 casts each
        product to accum_t first (p = accum then), so the fit on SVHN 16-bit does not move."""
        n, acc = self.products(opt), self.accum.width
        if not opt.adder_tree_widths:
            return n * acc
        q = None if self.codes is None else np.asarray(self.codes)[np.asarray(self.codes) != 0]
        p = self.act.width + (float(np.mean(const_bits(q))) if q is not None and q.size else self.weight.width)
        p = min(acc, p)
        count, level, bits = n / self.n_out, 1, 0.0
        while count >= 2:
            adders = math.floor(count / 2)
            bits += adders * min(acc, p + level)
            count, level = count - adders, level + 1
        return self.n_out * (bits + acc)

    def logic_luts(self, opt: CostOptions) -> float:
        w, a = self.weight.width, self.act.width
        if self.reuse == 1 and opt.const_adder_lut is not None:
            # hls4ml's dense_latency with constant weights: one adder of the accumulator's width per nonzero
            # product (the adder tree; constant products not on DSPs are shifts merged into it), plus the cast
            return LAYER_LUT_BASE + opt.const_adder_lut * self.adder_bits(opt) + LUT_SCALE * self.n_out * self.out_bits
        mult = lut_multiplier_luts(w, a) if self.in_lut(opt) else 0
        if self.reuse <= self.n_in:   # every output accumulates every cycle: one adder per output
            acc = self.n_out * self.accum.width
        else:                         # n_mult adders, each time-shared by R/n_in accumulators (+ mux)
            acc = 2 * self.n_mult * self.accum.width
        return LAYER_LUT_BASE + LUT_SCALE * (self.products(opt) * (mult + 2 * (w + a)) + acc + self.n_out * self.out_bits)


# -- what an op's estimate reports ----------------------------------------------------------------
@dataclass
class LayerEstimate:
    """ESTIMATE for one hardware op (hw/estimate.py); ii_cycles = cycles per frame."""
    name: str
    kind: str
    dsp: int
    bram18: int
    uram: int
    lut: int
    ii_cycles: int
    reuse: int | dict | None
    macs: int
    lutram: int = 0
    weights_in: str = ""          # 'bram', 'uram', 'const', 'mixed' or '' (no weights)
    fifo_bits: int = 0            # bits of the stream FIFOs (depth x width), wherever they are built
    fifos: int = 0                # how many stream FIFOs: between layers (Memory.role 'fifo...', the
    #                               streams of the hls4ml graph) and inside a kernel ('kernel fifo ...')
    in_shape: tuple = ()
    out_shape: tuple = ()

    def to_json(self) -> dict:
        d = asdict(self)
        d["in_shape"], d["out_shape"] = list(self.in_shape), list(self.out_shape)
        return d
