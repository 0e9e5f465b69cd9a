"""Resource and throughput ESTIMATES before synthesis, the FINN way: each hardware layer knows its cost.

Nothing here is measured. Every number is a model of what Vivado HLS / Vivado would build
for sqz's streaming dataflow design, written down so that it can be checked against the
synthesis reports of a later issue: those reports produce the same dataclasses with
``Estimate.source`` set to where they came from (e.g. "vivado_hls", "vivado_impl"), and
every consumer keys on ``source`` rather than assuming numbers are real.

The design being estimated
--------------------------
One hardware layer per network layer, all running concurrently (hls4ml ``io_stream``
dataflow), each stream carrying one pixel (all channels in parallel) per beat:

* ``conv``   (conv1, conv10): hls4ml's stock Conv2D, Resource strategy, line buffer of
  (K-1) rows of ``ap_shift_reg`` (SRL LUTs), one dense product per output pixel, followed
  by hls4ml's separate ``nnet::relu`` layer (its own stream: the conv writes result_t,
  one bit wider than the activation -- hw/convert.py conv_result_format -- and the ReLU
  layer casts to the activation format).
* ``fire``   one fused kernel: squeeze 1x1 + ReLU -> 2-row line buffer (padding is
  virtual) -> expand 1x1 and expand 3x3 + ReLU side by side -> one concatenated stream.
  expand1x1 reads the centre tap of the 3x3 window, so both expands emit pixel (r, c)
  together and the concatenation needs no skew buffer. Each of its three convolutions
  has its own reuse factor. Its internal streams are 2 deep (sqz_fire.h): registers.
* ``fire_generic`` (only with ``fuse_fire=False``): what hls4ml 1.3.0 generates for an
  unfused Fire module, layer for layer as it appears in the generated myproject.cpp:
  pointwise_conv_2d_cl (squeeze) -> relu -> clone_stream (two copies) -> [pointwise_conv_2d_cl
  (expand1x1) -> relu] and [zeropad2d_cl -> conv_2d_cl (expand3x3, ap_shift_reg line buffer
  over the padded width) -> relu] -> concatenate3d: three conv engines with the same reuse
  factors as the fused kernel, three ReLU layers, a clone, a zero-pad and a concatenate,
  and ten streams, each with hls4ml's default FIFO depth -- the whole feature map it
  carries (H*W pixels, (H+2)*(W+2) after the zero-pad). They cannot simply be made shallow:
  the expand3x3 branch lags the expand1x1 branch by a row, so a FIFO shorter than that on
  the 1x1 side stalls the clone and deadlocks the concatenate; only co-simulation-driven
  FIFO optimisation would size them. benchmarks/fire_vs_generic.py and tests/test_hw_csim.py
  check this list of streams against the generated hls4ml graph (depths and widths).
* ``maxpool`` overlapping 3x3 / stride 2 (sqz's own kernel: hls4ml's asserts pool ==
  stride): 2 row buffers + window; reuse R = cycles per input pixel (C/R channels
  compared per cycle; R = 1 is hls4ml's whole-pixel-per-cycle pooling).
* ``zeropad`` hls4ml's zeropad2d_cl before a padded stock conv (v1.0's conv10).
* ``gap``    global average pool: C/R accumulating adders (reuse R as for pools), then
  the reciprocal multiply done channel after channel on one multiplier.
* ``shell``  an allowance for the AXI DMA, interconnect and the input stream FIFO.

Cost model (per layer; constants are module-level and named below)
-------------------------------------------------------------------
Reuse factor R (hls4ml semantics): a convolution with n_in = C*K*K inputs and n_out
filters per output pixel uses ceil(n_in*n_out / R) multipliers and takes R cycles per
output pixel. Valid R follow hls4ml 1.3.0 ``FPGABackend._validate_reuse_factor``:
R divides n_in, or R = n_in*d with d dividing n_out (see ``valid_reuse_factors``).

* DSP: one DSP48 per multiplier whose operands fit the DSP's signed ports (DSP48E1
  25x18 on Zynq-7000, DSP48E2 27x18 on UltraScale+; an unsigned operand needs one extra
  bit); wider products take ceil(a/(pa-1)) * ceil(b/(pb-1)) DSPs. This is deliberately
  conservative: Vivado HLS may build products of narrow operands (about <= 10 bits)
  in LUTs instead, which would lower DSP and raise LUT -- ``lut_mult_bits=k`` models
  that (products with both operands <= k bits go to LUTs, FINN's LUT-multiplier cost).
  ``dsp_packing=True`` packs two <= 8-bit x 8-bit products that share an activation
  into one DSP48E2 (Xilinx WP486 INT8 packing); off by default, and never applied
  to DSP48E1 (7-series), whose 25-bit port leaves no guard bits for it.
* Weights: R == 1 -> constants folded into logic (hls4ml fully partitions them, no RAM).
  R > 1 -> one ROM R deep x ceil(n_in*n_out/R)*W wide in block RAM (hls4ml forces
  ``ROM_nP_BRAM`` for R > 1, nnet_dense_resource.h), packed as Vivado packs RAMB18:
  the cheapest of 16Kx1, 8Kx2, 4Kx4, 2Kx9, 1Kx18, 512x36 (UG473/UG573, simple dual port).
  UltraRAM: by default (``uram="none"``) no weight goes to URAM, because UltraScale+ URAM
  has no bitstream initialisation (UG901: "the INIT for RAM does not exist, the UltraRAM
  powers up in a 0 condition"; FINN requires runtime-writeable weights for URAM) and the
  hw/ generator emits plain initialised ROMs with no path to load weights at start-up:
  Vitis HLS can only build them in block RAM or LUTs. ``uram="auto"`` (CLI
  ``--assume-weight-load-path``) ASSUMES such a load path exists: it moves whole weight
  ROMs to URAM (4K x 72 = 288 Kb, ceil(width/72)*ceil(depth/4096) blocks) -- best
  block-RAM saving per URAM first -- while block RAM is over budget; ``uram="all"``
  moves every block-RAM weight ROM. Either way the Estimate says so in ``assumptions``
  (printed in its table and written to the JSON): such an estimate describes a design
  sqz does not generate.
  LOADABLE layers (``loadable=``, no assumption): sqz DOES generate a weight-load path for
  stand-alone 1x1 convolutions (conv10): the kernel sqz::conv1x1_rw reads its weights from a
  runtime-written array bound to UltraRAM, which the AXI top's load mode fills at start-up
  (hw/kernels/sqz_conv.h, sqz_axi.h). ``loadable_layers`` is the one function that decides
  which layers get it -- hw/convert.plan_design generates exactly those, and the estimate of
  the generated design places exactly their weights in URAM (``HwLoadableConv``: the weight
  memory R deep x n_mult*W wide in URAM, ReLU and cast inside the kernel, so no separate ReLU
  layer or conv->ReLU FIFO). Policies: 'none'; 'auto' (boards with URAM, and only while the
  design's block RAM is over budget: candidates moved best block-RAM saving per URAM first);
  'all' (every candidate); or explicit layer names. A candidate is a stand-alone 1x1 / stride 1
  convolution with R > 1 (R = 1 folds the weights into logic: no memory to load).
* Line buffers and FIFOs: a buffer of depth d x width w goes to LUTs (SRL32: ceil(d/32)
  LUTs per bit) when d < 128 -- FINN's threshold for HLS-embedded memories -- else to
  block RAM with the packing above. hls4ml's stock conv line buffer is ``ap_shift_reg``,
  always SRL. FIFOs of depth <= 2 are flip-flops (not counted). Each layer owns the FIFO
  on its output stream (a stock conv also the one between it and its ReLU layer),
  min(``fifo_depth``, pixels in the feature map) beats of a whole pixel deep -- exactly
  what hw/convert.py set_fifo_depths writes into the fused design (default 32). With
  ``fifo_depth="feature_map"`` every FIFO is as deep as its feature map: hls4ml's own
  default (the "FIFOs blowing up BRAM" issues), what the unfused design keeps and the
  default when ``fuse_fire=False``. Whether 32 beats suffice at full speed is an
  assumption until co-simulation.
* LUT (FINN-R's MVAU model: c0 + c1 * datapath, c0 = 300, c1 = 1.1): per convolution
  300 + 1.1 * (n_mult * (mult_luts + 2*(W+A)) + acc + n_out * out_bits): an adder-tree
  share per multiplier (FINN's (W+A)*(2Q-1)), a ReLU/cast per output channel, and
  acc = n_out * acc_bits when R <= n_in (every output accumulates every cycle; hls4ml
  keeps acc[n_out] fully partitioned) or 2 * n_mult * acc_bits when R > n_in (n_mult
  adders, each time-shared by R/n_in accumulators through a mux). Max pool: 4
  compare-selects per channel processed per cycle (separable 3x3) at 2 LUTs per bit,
  plus an R:1 channel-group mux. GAP: an adder per channel processed per cycle. hls4ml's
  streaming ReLU, clone, zero-pad and concatenate layers: SIMPLE_LAYER_LUT each for control,
  plus RELU_LUT_PER_BIT per bit of a ReLU's input pixel and one LUT per bit of a zero-pad's
  pixel (a mux with zero). Plus memories placed in LUTs, plus the shell allowance. Flip-flops are not estimated (FF
  budgets are twice the LUT budgets on these parts and hls4ml designs have run at
  FF ~ LUT, so LUTs bind first). Expect the LUT figure to be within a factor of ~2 of synthesis, not
  better: HLS LUT counts depend on scheduling, muxing and retiming this model ignores.
* Cycles per frame (initiation interval of a layer): conv: out_pixels * R +
  (in_pixels - out_pixels) (each input pixel costs >= 1 cycle; the ones that complete
  no window are line-buffer fill and stride skips). Fire: max(squeeze: H*W*R_s,
  expand: H*W*max(R_e1, R_e3) + W + 1). Generic Fire: max(H*W*R_s, H*W*R_e1, (H+2)*(W+2)
  zero-pad, H*W*R_e3 + (H+2)*(W+2) - H*W). ReLU, clone, concatenate: H*W (a pixel per
  cycle). Max pool: H*W*R (input pixels). Zero padding:
  one cycle per padded pixel. GAP: H*W*R + C. Pipeline: frames/s = clock / the largest
  of these (every layer runs concurrently; the input stream takes a pixel per cycle).

Bit widths come from a QuantSpec (weight, input = previous result, accum, result per
layer), or from a uniform ``bits`` B: weights and activations B bits (weights signed,
activations unsigned after ReLU, the network input signed), accumulators
2B + ceil(log2(n_in)) bits as FINN sizes them.
"""
from __future__ import annotations

import bisect
import math
from dataclasses import asdict, dataclass

from hw.boards import Board, get_board
from model.architecture import (Architecture, Conv, Fire, GlobalAvgPool, MaxPool,
                                get_architecture)

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
RESOURCES = ("dsp", "bram18", "uram", "lut", "lutram")
# FINN's recommended ceilings for timing closure (finn/util/platforms.py DEFAULT_RES_LIMITS)
FINN_RESOURCE_LIMITS = {"lut": 0.7, "lutram": 0.7, "bram18": 0.8, "uram": 0.8, "dsp": 0.8}
SCAN_RATIO = 1.05               # choose_reuse: step between cycle targets scanned before bisecting
RECIPROCAL_BITS = 18            # GAP multiplier constant (QuantSpec multiplier < 2**17, unsigned)


# -- reuse factors ----------------------------------------------------------------------------
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
    """One memory of a layer. style: 'const' (folded into logic), 'ff', 'lut', 'bram' or 'uram'.
    loadable: weights written at start-up through the generated load path (HwLoadableConv)."""
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


def _buffer(role: str, depth: int, width: int) -> Memory:
    if depth <= REGISTER_FIFO_DEPTH:
        return Memory(role, depth, width, "ff")
    return Memory(role, depth, width, "lut" if depth < LUTRAM_MAX_DEPTH else "bram")


def fifo_depth_for(policy: int | str, pixels: int) -> int:
    """Depth of a stream's FIFO carrying a feature map of `pixels` pixels under a fifo_depth policy:
    FEATURE_MAP -> hls4ml's default (the whole map); an int d -> min(d, pixels), as set_fifo_depths."""
    if policy == FEATURE_MAP:
        return pixels
    if isinstance(policy, bool) or not isinstance(policy, int) or policy < 1:
        raise ValueError(f"fifo_depth must be a positive integer or {FEATURE_MAP!r}, got {policy!r}")
    return min(policy, pixels)


def _fifo(policy: int | str, pixels: int, width: int, role: str = "fifo") -> Memory:
    return _buffer(role, fifo_depth_for(policy, pixels), width)


# -- bit widths -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConvBits:
    weight: int
    weight_signed: bool
    act: int
    act_signed: bool
    accum: int
    out: int


@dataclass(frozen=True)
class PoolBits:
    act: int
    accum: int
    out: int


def _bits_table(arch: Architecture, bits_or_spec, input_size: int | None) -> dict:
    """conv name -> ConvBits; GAP name -> PoolBits, from a QuantSpec or a uniform width."""
    convs = arch.conv_shapes(input_size)
    table: dict = {}
    if isinstance(bits_or_spec, int):
        b = bits_or_spec
        if not 1 <= b <= 32:
            raise ValueError(f"bits must be in 1..32, got {b}")
        first = arch.convs()[0].name
        for name, t in convs.items():
            n_in = t["weight"][1] * t["weight"][2] * t["weight"][3]
            table[name] = ConvBits(b, True, b, name == first, 2 * b + math.ceil(math.log2(n_in)), b)
        for layer, shape_in, _ in arch.shapes(input_size):
            if isinstance(layer, GlobalAvgPool):
                table[layer.name] = PoolBits(b, b + math.ceil(math.log2(shape_in[0] * shape_in[1])), b)
        return table
    # a QuantSpec (imported here: estimates from a plain bit width need nothing from quant/)
    from quant.spec import ConvFormats, input_formats
    spec = bits_or_spec
    if getattr(spec, "model", arch.name) != arch.name:
        raise ValueError(f"QuantSpec is for {spec.model}, not {arch.name}")
    inputs = input_formats(arch, spec)
    for name, f in spec.layers.items():
        x = inputs[name]
        if isinstance(f, ConvFormats):
            table[name] = ConvBits(f.weight.width, f.weight.signed, x.width, x.signed, f.accum.width, f.result.width)
        else:
            table[name] = PoolBits(x.width, f.accum.width, f.result.width)
    return table


# -- layer estimates --------------------------------------------------------------------------
@dataclass
class LayerEstimate:
    """ESTIMATE for one hardware layer (see module docstring); ii_cycles = cycles per frame."""
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


@dataclass(frozen=True)
class CostOptions:
    dsp_type: str = "DSP48E2"
    dsp_packing: bool = False
    lut_mult_bits: int = 0


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


@dataclass
class _Engine:
    """One hls4ml dense product engine: n_in x n_out per output pixel, reuse factor R."""
    name: str
    n_in: int
    n_out: int
    reuse: int
    pixels: int
    bits: ConvBits

    def __post_init__(self):
        valid = valid_reuse_factors(self.n_in, self.n_out)
        if self.reuse not in valid:
            near = valid[max(0, bisect.bisect_left(valid, self.reuse) - 3):][:7]
            raise ValueError(f"{self.name}: reuse factor {self.reuse} is not valid for n_in={self.n_in}, "
                             f"n_out={self.n_out} (hls4ml needs R | n_in or R = n_in*d with d | n_out); "
                             f"nearby valid: {near}")
        self.weights = Memory("weights", self.reuse, self.n_mult * self.bits.weight,
                              "const" if self.reuse == 1 else "bram")

    @property
    def n_mult(self) -> int:
        return math.ceil(self.n_in * self.n_out / self.reuse)

    @property
    def macs(self) -> int:
        return self.n_in * self.n_out * self.pixels

    def in_lut(self, opt: CostOptions) -> bool:
        return max(self.bits.weight, self.bits.act) <= opt.lut_mult_bits

    def dsp(self, opt: CostOptions) -> int:
        if self.in_lut(opt):
            return 0
        per = dsp_per_multiplier(self.bits.weight, self.bits.weight_signed, self.bits.act, self.bits.act_signed,
                                 opt.dsp_type)
        if (opt.dsp_packing and opt.dsp_type == "DSP48E2" and per == 1
                and self.bits.weight <= 8 and self.bits.act <= 8):
            return math.ceil(self.n_mult / 2)
        return self.n_mult * per

    def logic_luts(self, opt: CostOptions) -> float:
        w, a = self.bits.weight, self.bits.act
        mult = lut_multiplier_luts(w, a) if self.in_lut(opt) else 0
        if self.reuse <= self.n_in:   # every output accumulates every cycle: one adder per output
            acc = self.n_out * self.bits.accum
        else:                         # n_mult adders, each time-shared by R/n_in accumulators (+ mux)
            acc = 2 * self.n_mult * self.bits.accum
        return LAYER_LUT_BASE + LUT_SCALE * (self.n_mult * (mult + 2 * (w + a)) + acc
                                             + self.n_out * self.bits.out)


class HwLayer:
    """A hardware layer of the dataflow pipeline; subclasses know their own costs."""
    kind = "layer"

    def __init__(self, name: str, in_shape: tuple, out_shape: tuple):
        self.name, self.in_shape, self.out_shape = name, tuple(in_shape), tuple(out_shape)
        self.memories: list[Memory] = []
        self.engines: list[_Engine] = []

    def cycles(self) -> int:
        raise NotImplementedError

    def logic_luts(self, opt: CostOptions) -> float:
        return sum(e.logic_luts(opt) for e in self.engines)

    def extra_dsp(self, opt: CostOptions) -> int:
        return 0

    def reuse(self):
        return None

    def estimate(self, opt: CostOptions) -> LayerEstimate:
        mem_lut = sum(m.lut for m in self.memories)
        weights = {m.style for m in self.memories if m.role == "weights"}
        return LayerEstimate(
            name=self.name, kind=self.kind,
            dsp=sum(e.dsp(opt) for e in self.engines) + self.extra_dsp(opt),
            bram18=sum(m.bram18 for m in self.memories),
            uram=sum(m.uram for m in self.memories),
            lut=int(round(self.logic_luts(opt) + mem_lut)),
            ii_cycles=int(self.cycles()), reuse=self.reuse(),
            macs=sum(e.macs for e in self.engines), lutram=mem_lut,
            weights_in=(weights.pop() if len(weights) == 1 else "mixed") if weights else "",
            fifo_bits=sum(m.bits for m in self.memories if "fifo" in m.role),
            fifos=sum("fifo" in m.role for m in self.memories),
            in_shape=self.in_shape, out_shape=self.out_shape)


def _pixels(shape) -> int:
    return shape[0] * shape[1]


def _relu_luts(channels: int, in_bits: int) -> float:
    """hls4ml's streaming nnet::relu layer: control + a sign test and saturating cast per bit."""
    return SIMPLE_LAYER_LUT + RELU_LUT_PER_BIT * channels * in_bits


def conv_result_bits(bits: ConvBits, relu: bool) -> int:
    """Width of a stock conv's result_t: one bit more than the activation when a ReLU layer follows
    (hw/convert.py conv_result_format: ap_fixed<W+1, I+1> for an unsigned ap_ufixed<W, I>)."""
    return bits.out + 1 if relu else bits.out


def _stock_conv_memories(conv: Conv, in_shape, out_shape, bits: ConvBits, fifo_depth) -> list[Memory]:
    """Line buffer and stream FIFOs of hls4ml's conv_2d_cl / pointwise_conv_2d_cl (+ its ReLU layer)."""
    w, c = in_shape[1], in_shape[2]
    px, n = _pixels(out_shape), out_shape[2]
    mems = []
    if conv.kernel > 1:  # ap_shift_reg<T, in_width> line_buffer[K-1][n_chan]: SRLs whatever the depth
        mems.append(Memory("line buffer", w, (conv.kernel - 1) * c * bits.act, "lut"))
    mems.append(_fifo(fifo_depth, px, n * conv_result_bits(bits, conv.relu), "fifo (conv -> relu)" if conv.relu
                      else "fifo"))
    if conv.relu:
        mems.append(_fifo(fifo_depth, px, n * bits.out, "fifo (relu)"))
    return mems


class HwConv(HwLayer):
    """hls4ml stock Conv2D (io_stream, Resource): (K-1)-row ap_shift_reg line buffer + one engine,
    then hls4ml's separate ReLU layer (its own stream and FIFO).

    in_shape is the stream it reads, already zero-padded by a preceding HwZeroPad.
    """
    kind = "conv"

    def __init__(self, conv: Conv, in_shape, out_shape, bits: ConvBits, reuse: int, fifo_depth):
        super().__init__(conv.name, in_shape, out_shape)
        h, w, c = in_shape
        k = conv.kernel
        self.conv, self.bits = conv, bits
        self.engines = [_Engine(conv.name, c * k * k, conv.filters, reuse, _pixels(out_shape), bits)]
        self.memories = [self.engines[0].weights] + _stock_conv_memories(conv, in_shape, out_shape,
                                                                         bits, fifo_depth)

    def cycles(self) -> int:
        e = self.engines[0]
        return e.pixels * e.reuse + (_pixels(self.in_shape) - e.pixels)

    def logic_luts(self, opt):
        relu = _relu_luts(self.conv.filters, conv_result_bits(self.bits, True)) if self.conv.relu else 0
        return super().logic_luts(opt) + relu

    def reuse(self):
        return self.engines[0].reuse


class HwLoadableConv(HwConv):
    """sqz::conv1x1_rw (hw/kernels/sqz_conv.h): a stand-alone 1x1 convolution whose weights live in a
    runtime-written UltraRAM array filled by the AXI top's load mode; ReLU and the cast to the result
    format happen inside the kernel (no hls4ml ReLU layer, one output FIFO)."""
    kind = "conv_rw"

    def __init__(self, conv: Conv, in_shape, out_shape, bits: ConvBits, reuse: int, fifo_depth):
        HwLayer.__init__(self, conv.name, in_shape, out_shape)
        if not is_loadable_candidate(conv, reuse):
            raise ValueError(f"{conv.name}: only a 1x1 / stride 1 convolution with reuse factor > 1 can have "
                             f"loadable weights (kernel {conv.kernel}, stride {conv.stride}, reuse {reuse})")
        self.conv, self.bits = conv, bits
        engine = _Engine(conv.name, in_shape[2], conv.filters, reuse, _pixels(out_shape), bits)
        self.engines = [engine]
        engine.weights.style, engine.weights.loadable = "uram", True
        self.memories = [engine.weights, _fifo(fifo_depth, _pixels(out_shape), conv.filters * bits.out)]

    def logic_luts(self, opt):
        # the engines only: ReLU and cast are inside the kernel, not HwConv's separate hls4ml ReLU layer
        return HwLayer.logic_luts(self, opt)


class HwFire(HwLayer):
    """sqz's fused Fire kernel: squeeze engine -> 2-row buffer -> expand1x1 | expand3x3 engines."""
    kind = "fire"

    def __init__(self, fire: Fire, in_shape, out_shape, bits: dict, reuse: dict, fifo_depth):
        super().__init__(fire.name, in_shape, out_shape)
        h, w, c = in_shape
        sq, e1, e3 = fire.convs
        px = h * w
        self.engines = [_Engine(sq.name, c, fire.squeeze, reuse[sq.name], px, bits[sq.name]),
                        _Engine(e1.name, fire.squeeze, fire.expand1x1, reuse[e1.name], px, bits[e1.name]),
                        _Engine(e3.name, 9 * fire.squeeze, fire.expand3x3, reuse[e3.name], px, bits[e3.name])]
        s_bits = bits[e1.name].act  # the squeeze result, read by both expands
        e_bits = bits[e1.name].out
        internal = REGISTER_FIFO_DEPTH  # sqz_fire.h: #pragma HLS STREAM depth=2 on its five internal streams
        self.memories = [e.weights for e in self.engines] + [
            _buffer("line buffer", w, 2 * fire.squeeze * s_bits),
            _buffer("kernel fifo (squeeze -> window)", internal, fire.squeeze * s_bits),
            _buffer("kernel fifo (centre tap)", internal, fire.squeeze * s_bits),
            _buffer("kernel fifo (3x3 window)", internal, 9 * fire.squeeze * s_bits),
            _buffer("kernel fifo (expand1x1)", internal, fire.expand1x1 * e_bits),
            _buffer("kernel fifo (expand3x3)", internal, fire.expand3x3 * e_bits),
            _fifo(fifo_depth, px, out_shape[2] * e_bits)]  # concatenated output, between layers

    def cycles(self) -> int:
        sq, e1, e3 = self.engines
        px, w = sq.pixels, self.in_shape[1]
        return max(px * sq.reuse, px * max(e1.reuse, e3.reuse) + w + 1)

    def reuse(self):
        return {e.name.rsplit("_", 1)[1]: e.reuse for e in self.engines}


class HwGenericFire(HwLayer):
    """A Fire module as hls4ml 1.3.0 generates it unfused (see the module docstring): squeeze conv ->
    relu -> clone -> (expand1x1 conv -> relu) | (zero-pad -> expand3x3 conv -> relu) -> concatenate,
    every stream with its FIFO (hls4ml's default depth: the whole feature map)."""
    kind = "fire_generic"

    def __init__(self, fire: Fire, in_shape, out_shape, bits: dict, reuse: dict, fifo_depth):
        super().__init__(fire.name, in_shape, out_shape)
        h, w, c = in_shape
        sq, e1, e3 = fire.convs
        px, padded = h * w, (h + 2) * (w + 2)
        self.fire, self.bits, self.padded = fire, bits, padded
        self.engines = [_Engine(sq.name, c, fire.squeeze, reuse[sq.name], px, bits[sq.name]),
                        _Engine(e1.name, fire.squeeze, fire.expand1x1, reuse[e1.name], px, bits[e1.name]),
                        _Engine(e3.name, 9 * fire.squeeze, fire.expand3x3, reuse[e3.name], px, bits[e3.name])]
        s = fire.squeeze * bits[sq.name].out          # one squeezed pixel after its ReLU
        f = fifo_depth
        self.memories = [e.weights for e in self.engines]
        self.memories += _stock_conv_memories(sq, in_shape, (h, w, fire.squeeze), bits[sq.name], f)
        self.memories += [_fifo(f, px, s, "fifo (clone -> expand1x1)"), _fifo(f, px, s, "fifo (clone -> zero-pad)"),
                          _fifo(f, padded, s, "fifo (zero-pad -> expand3x3)")]
        self.memories += _stock_conv_memories(e1, (h, w, fire.squeeze), (h, w, fire.expand1x1),
                                              bits[e1.name], f)
        self.memories += _stock_conv_memories(e3, (h + 2, w + 2, fire.squeeze), (h, w, fire.expand3x3),
                                              bits[e3.name], f)
        self.memories.append(_fifo(f, px, out_shape[2] * bits[e1.name].out, "fifo (concatenate)"))

    def cycles(self) -> int:
        sq, e1, e3 = self.engines
        px = sq.pixels
        return max(px * sq.reuse, px * e1.reuse, self.padded, px * e3.reuse + self.padded - px)

    def logic_luts(self, opt):
        relus = sum(_relu_luts(c.filters, conv_result_bits(self.bits[c.name], True)) for c in self.fire.convs)
        s = self.fire.squeeze * self.bits[self.fire.convs[0].name].out
        clone_pad_concat = SIMPLE_LAYER_LUT + (PAD_LUT_BASE + s) + SIMPLE_LAYER_LUT
        return super().logic_luts(opt) + relus + clone_pad_concat

    def reuse(self):
        return {e.name.rsplit("_", 1)[1]: e.reuse for e in self.engines}


def _channel_mux_luts(parallel: int, bits: int, reuse: int) -> int:
    """LUTs to pick `parallel` channels out of a buffered beat, `reuse` groups (4:1 per LUT6)."""
    return parallel * bits * math.ceil((reuse - 1) / 3) if reuse > 1 else 0


def _check_channel_reuse(name: str, channels: int, reuse: int) -> None:
    if reuse < 1 or channels % reuse:
        raise ValueError(f"{name}: reuse factor {reuse} must divide its {channels} channels "
                         f"(it processes {channels}/R channels per cycle)")


class HwMaxPool(HwLayer):
    """Overlapping max pool (sqz kernel): 2 row buffers + 3x3 window.

    Reuse R: C/R channels compared per cycle, R cycles per input pixel (R = 1: whole pixel
    per cycle, as hls4ml's pooling streams); 4 compare-selects per channel (separable 3x3).
    """
    kind = "maxpool"

    def __init__(self, pool: MaxPool, in_shape, out_shape, act_bits: int, fifo_depth, reuse: int = 1):
        super().__init__(pool.name, in_shape, out_shape)
        h, w, c = in_shape
        _check_channel_reuse(pool.name, c, reuse)
        self.c, self.act, self.r = c, act_bits, reuse
        # row buffers addressed by (column, channel group): W*R deep, 2 rows x C/R channels wide
        self.memories = [_buffer("line buffer", w * reuse, (pool.kernel - 1) * (c // reuse) * act_bits),
                         _fifo(fifo_depth, _pixels(out_shape), c * act_bits)]

    def cycles(self) -> int:
        return _pixels(self.in_shape) * self.r

    def reuse(self):
        return self.r

    def logic_luts(self, opt):
        p = self.c // self.r
        return LAYER_LUT_BASE + LUT_SCALE * (POOL_LUT_PER_BIT * p * self.act + _channel_mux_luts(p, self.act, self.r))


class HwZeroPad(HwLayer):
    kind = "zeropad"

    def __init__(self, name: str, in_shape, pad: int, act_bits: int, fifo_depth):
        h, w, c = in_shape
        super().__init__(name, in_shape, (h + 2 * pad, w + 2 * pad, c))
        self.c, self.act = c, act_bits
        self.memories = [_fifo(fifo_depth, _pixels(self.out_shape), c * act_bits)]

    def cycles(self) -> int:
        return _pixels(self.out_shape)

    def logic_luts(self, opt):
        return PAD_LUT_BASE + self.c * self.act


class HwGlobalAvgPool(HwLayer):
    """Global average pool: C/R accumulating adders, R cycles per pixel, then C reciprocal products."""
    kind = "gap"

    def __init__(self, pool: GlobalAvgPool, in_shape, out_shape, bits: PoolBits, fifo_depth, reuse: int = 1):
        super().__init__(pool.name, in_shape, out_shape)
        _check_channel_reuse(pool.name, in_shape[2], reuse)
        self.c, self.bits, self.r = in_shape[2], bits, reuse
        self.memories = [_fifo(fifo_depth, 1, self.c * bits.out)]  # one word of logits
        if reuse > 1:  # C accumulators as an R-deep memory of C/R-wide words (R = 1: registers)
            self.memories.append(_buffer("accumulators", reuse, (self.c // reuse) * bits.accum))

    def cycles(self) -> int:
        return _pixels(self.in_shape) * self.r + self.c  # sum every pixel, then scale channel by channel

    def reuse(self):
        return self.r

    def logic_luts(self, opt):
        p = self.c // self.r
        return LAYER_LUT_BASE + LUT_SCALE * (p * self.bits.accum + _channel_mux_luts(p, self.bits.act, self.r)
                                             + self.bits.out)  # one reciprocal product and cast at a time

    def extra_dsp(self, opt):
        return dsp_per_multiplier(self.bits.accum, True, RECIPROCAL_BITS, False, opt.dsp_type)


class HwShell(HwLayer):
    """Allowance for what surrounds the network: AXI DMA, interconnect, input stream FIFO."""
    kind = "shell"

    def __init__(self, in_shape, act_bits: int, fifo_depth):
        super().__init__("shell", in_shape, in_shape)
        # sqz_top's input stream (#pragma HLS STREAM depth=2, hw/project.py): registers
        self.memories = [_buffer("fifo", REGISTER_FIFO_DEPTH, in_shape[2] * act_bits)]

    def cycles(self) -> int:
        return _pixels(self.in_shape)  # the DMA delivers one pixel per cycle

    def logic_luts(self, opt):
        return SHELL_LUT

    def estimate(self, opt):
        est = super().estimate(opt)
        est.bram18 += SHELL_BRAM18
        return est


# -- the pipeline -----------------------------------------------------------------------------
def _resolve(arch, board):
    if isinstance(arch, str):
        arch = get_architecture(arch)
    return arch, get_board(board)


def hardware_layers(arch: Architecture | str, bits_or_spec=8, reuse: dict[str, int] | None = None,
                    input_size: int | None = None, fifo_depth: int | str | None = None,
                    include_shell: bool = True, fuse_fire: bool = True, loadable=()) -> list[HwLayer]:
    """The dataflow pipeline as hardware layers, in stream order. reuse: conv name -> R (all convs).
    loadable: names of the convolutions generated with loadable weights (HwLoadableConv).

    fuse_fire=False: Fire modules as hls4ml generates them unfused (HwGenericFire). fifo_depth None:
    DEFAULT_FIFO_DEPTH for the fused design (what set_fifo_depths writes), FEATURE_MAP for the
    unfused one (hls4ml's depths, which the unfused project keeps).
    """
    arch = get_architecture(arch) if isinstance(arch, str) else arch
    if fifo_depth is None:
        fifo_depth = DEFAULT_FIFO_DEPTH if fuse_fire else FEATURE_MAP
    fifo_depth_for(fifo_depth, 1)  # validates the policy
    names = [c.name for c in arch.convs()]
    pools = [l.name for l in arch.layers if isinstance(l, (MaxPool, GlobalAvgPool))]
    reuse = dict(reuse or {})
    unknown = [n for n in reuse if n not in names + pools]
    if unknown:
        raise ValueError(f"reuse factor for unknown layer {unknown[0]!r}; foldable layers of {arch.name}: "
                         f"{', '.join(names + pools)}")
    missing = [n for n in names if n not in reuse]
    if missing:
        raise ValueError(f"no reuse factor for {missing[0]}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1
                                                              else "") + "; use choose_reuse()")
    bits = _bits_table(arch, bits_or_spec, input_size)
    shapes = arch.shapes(input_size)
    layers: list[HwLayer] = []
    if include_shell:
        first = arch.convs()[0].name
        layers.append(HwShell(shapes[0][1], bits[first].act, fifo_depth))
    act = bits[arch.convs()[0].name].act
    for layer, in_shape, out_shape in shapes:
        if isinstance(layer, Conv):
            b = bits[layer.name]
            if layer.pad:
                pad = HwZeroPad(f"{layer.name}_pad", in_shape, layer.pad, b.act, fifo_depth)
                layers.append(pad)
                in_shape = pad.out_shape
            cls = HwLoadableConv if layer.name in loadable else HwConv
            layers.append(cls(layer, in_shape, out_shape, b, reuse[layer.name], fifo_depth))
            act = b.out
        elif isinstance(layer, Fire):
            layers.append((HwFire if fuse_fire else HwGenericFire)(layer, in_shape, out_shape, bits, reuse,
                                                                    fifo_depth))
            act = bits[layer.convs[1].name].out
        elif isinstance(layer, MaxPool):
            layers.append(HwMaxPool(layer, in_shape, out_shape, act, fifo_depth, reuse.get(layer.name, 1)))
        elif isinstance(layer, GlobalAvgPool):
            layers.append(HwGlobalAvgPool(layer, in_shape, out_shape, bits[layer.name], fifo_depth,
                                          reuse.get(layer.name, 1)))
            act = bits[layer.name].out
        else:  # pragma: no cover - architecture.py has no other kinds
            raise TypeError(f"no hardware layer for {layer!r}")
    return layers


URAM_POLICIES = ("none", "auto", "all")
WEIGHT_LOAD_ASSUMPTION = ("ASSUMES A WEIGHT-LOAD PATH sqz does not generate: {n} weight ROM(s) in {u} UltraRAM "
                          "block(s); UltraRAM cannot be initialised from the bitstream and the generated project "
                          "has only bitstream-initialised ROMs (block RAM / LUTs)")


LOADABLE_POLICIES = ("none", "auto", "all")


def is_loadable_candidate(conv: Conv, reuse: int) -> bool:
    """Can sqz generate conv with loadable (UltraRAM) weights? A stand-alone 1x1 / stride 1 convolution
    (hw/kernels/sqz_conv.h) whose weights are a memory (R > 1; R = 1 folds them into logic)."""
    return conv.kernel == 1 and conv.stride == 1 and int(reuse) > 1


def loadable_layers(arch: Architecture | str, board: Board | str, bits_or_spec=8, reuse: dict | None = None,
                    policy="auto", *, input_size: int | None = None, fifo_depth: int | str | None = None,
                    include_shell: bool = True, fuse_fire: bool = True) -> tuple[str, ...]:
    """THE decision which convolutions get loadable weights (hw/convert.plan_design generates them,
    estimate() places their weights in URAM). policy: 'none', 'auto', 'all' (module docstring) or
    explicit names (each checked). Raises ValueError for an unknown policy, a name that is not a
    candidate, or explicit names on a board without UltraRAM."""
    arch, board = _resolve(arch, board)
    reuse = dict(reuse or {})
    convs = {c.name: c for c in arch.layers if isinstance(c, Conv)}   # stand-alone convolutions only
    candidates = [n for n, c in convs.items() if n in reuse and is_loadable_candidate(c, reuse[n])]
    if not isinstance(policy, str):
        names = tuple(str(n) for n in policy)
        for n in names:
            if n not in convs:
                raise ValueError(f"loadable weights for {n!r}: not a stand-alone convolution of {arch.name} "
                                 f"(those are {', '.join(convs)})")
            if n not in candidates:
                c = convs[n]
                raise ValueError(f"loadable weights for {n}: needs a 1x1 / stride 1 convolution with reuse factor "
                                 f"> 1 (it is {c.kernel}x{c.kernel} / stride {c.stride}, reuse {reuse.get(n)})")
        if names and board.uram == 0:
            raise ValueError(f"loadable weights ({', '.join(names)}) are bound to UltraRAM; {board.name} has none")
        return tuple(n for n in convs if n in names)
    if policy not in LOADABLE_POLICIES:
        raise ValueError(f"weights in URAM must be one of {', '.join(LOADABLE_POLICIES)} or layer names, "
                         f"got {policy!r}")
    if policy == "none" or board.uram == 0 or not candidates:
        return ()
    if policy == "all":
        return tuple(candidates)
    layers = hardware_layers(arch, bits_or_spec, reuse, input_size, fifo_depth, include_shell, fuse_fire)
    bram = sum(m.bram18 for l in layers for m in l.memories) + SHELL_BRAM18 * include_shell
    rom_of = {l.name: l.engines[0].weights for l in layers if l.name in candidates}
    moved = {id(m) for m in _uram_moves(list(rom_of.values()), bram, board.bram18, board.uram)}
    return tuple(n for n in candidates if id(rom_of[n]) in moved)


def _uram_moves(roms: list[Memory], bram: int, bram_budget: int, uram_left: int) -> list[Memory]:
    """The block-RAM ROMs to move to UltraRAM, in order, while block RAM (`bram` BRAM18 in use) is over
    budget: each time the one with the best block-RAM saving per URAM (ties: the larger saving) that
    still fits the UltraRAM left. Shared by loadable_layers and the assumed load path (uram='auto')."""
    moved: list[Memory] = []
    while bram > bram_budget:
        fits = [m for m in roms if all(m is not x for x in moved) and 0 < uram_blocks(m.depth, m.width) <= uram_left]
        if not fits:
            break
        best = max(fits, key=lambda m: (m.bram18 / uram_blocks(m.depth, m.width), m.bram18))
        moved.append(best)
        bram -= best.bram18
        uram_left -= uram_blocks(best.depth, best.width)
    return moved


def _place_weights_in_uram(layers: list[HwLayer], board: Board, policy: str) -> None:
    """Move weight ROMs from block RAM to UltraRAM (mutates Memory.style). Only with uram='auto' or
    'all', which ASSUME a start-up weight-load path the generator does not emit (module docstring)."""
    if policy not in URAM_POLICIES:
        raise ValueError(f"uram must be 'none', 'auto' or 'all', got {policy!r}")
    if policy == "none" or board.uram == 0:
        return
    roms = [m for l in layers for m in l.memories if m.role == "weights" and m.style == "bram"]
    if policy == "all":
        for m in roms:
            m.style = "uram"
        return
    bram = sum(m.bram18 for l in layers for m in l.memories)
    bram += SHELL_BRAM18 * sum(isinstance(l, HwShell) for l in layers)
    uram_left = board.uram - sum(m.uram for l in layers for m in l.memories)   # loadable weights are there
    for m in _uram_moves(roms, bram, board.bram18, uram_left):
        m.style = "uram"


@dataclass
class Estimate:
    """Pipeline ESTIMATE (source == 'estimate'); synthesis reports will fill the same fields."""
    board: str
    clock_mhz: float
    layers: list[LayerEstimate]
    dsp: int
    bram18: int
    uram: int
    lut: int
    ii_cycles: int
    fps: float
    fits: bool
    utilisation: dict[str, float]
    source: str = "estimate"
    lutram: int = 0
    bottleneck: str = ""
    over_budget: tuple[str, ...] = ()
    model: str = ""
    input_size: int = 0
    fuse_fire: bool = True
    assumptions: tuple[str, ...] = ()   # what the estimate assumes beyond the generated design
    loadable: tuple[str, ...] = ()      # layers whose weights the generated load path puts in URAM

    @property
    def fifo_bits(self) -> int:
        return sum(l.fifo_bits for l in self.layers)

    def to_json(self) -> dict:
        """The CLI's contract: {"board", "estimate": {...}, "fits", "layers": [...]}, plus
        "estimate_assumptions" (empty when the estimate describes exactly the generated design)."""
        return {"board": self.board,
                "estimate": {"dsp": self.dsp, "bram18": self.bram18, "uram": self.uram, "lut": self.lut,
                             "ii_cycles": self.ii_cycles, "clock_mhz": self.clock_mhz,
                             "fps": round(self.fps, 2)},
                "fits": self.fits,
                "estimate_assumptions": list(self.assumptions),
                "layers": [l.to_json() for l in self.layers]}

    def table(self) -> str:
        """Per-layer table, labelled as an estimate."""
        head = (f"ESTIMATE (before synthesis, source={self.source}): {self.model} "
                f"{self.input_size}x{self.input_size} on {self.board} @ {self.clock_mhz:g} MHz"
                + ("" if self.fuse_fire else ", Fire modules UNFUSED (hls4ml's Clone/Conv/Concatenate)")
                + "".join(f"\n  {a}" for a in self.assumptions)
                + (f"\n  weights of {', '.join(self.loadable)} in UltraRAM, written at start-up by the generated "
                   f"load path (AXI top, mode 1)" if self.loadable else ""))
        def row(name, kind, reuse, dsp, bram18, uram, lut, cycles):
            return f"{name:<20}{kind:<9}{reuse:<18}{dsp:>6}{bram18:>8}{uram:>6}{lut:>9}{cycles:>10}"

        cols = row("layer", "kind", "reuse (sq/e1/e3)", "DSP", "BRAM18", "URAM", "LUT", "cycles")
        rows = [head, cols, "-" * len(cols)]
        for l in self.layers:
            r = "/".join(map(str, l.reuse.values())) if isinstance(l.reuse, dict) else str(l.reuse or "")
            rows.append(row(l.name, l.kind, r, l.dsp, l.bram18, l.uram, l.lut, l.ii_cycles)
                        + (" <- slowest" if l.name == self.bottleneck else ""))
        rows.append("-" * len(cols))
        u = self.utilisation
        rows.append(row("total (estimate)", "", "", self.dsp, self.bram18, self.uram, self.lut, self.ii_cycles))
        rows.append(f"utilisation: DSP {u['dsp']:.0f}%  BRAM18 {u['bram18']:.0f}%  URAM {u['uram']:.0f}%  "
                    f"LUT {u['lut']:.0f}%  LUTRAM {u['lutram']:.0f}%   fps {self.fps:.1f}   fits {self.fits}"
                    + (f" (over: {', '.join(self.over_budget)})" if self.over_budget else ""))
        return "\n".join(rows)


def _percent(used: int, budget: int) -> float:
    if budget == 0:
        return 0.0 if used == 0 else math.inf
    return 100.0 * used / budget


def estimate(arch: Architecture | str, board: Board | str, bits_or_spec=8, reuse: dict[str, int] | None = None, *,
             input_size: int | None = None, clock_mhz: float | None = None, fifo_depth: int | str | None = None,
             dsp_packing: bool = False, lut_mult_bits: int = 0, uram: str = "none",
             include_shell: bool = True, fuse_fire: bool = True, loadable=()) -> Estimate:
    """ESTIMATE resources and frames/s of ``arch`` on ``board`` before synthesis.

    bits_or_spec: a uniform bit width (int) or a QuantSpec. reuse: conv name -> reuse factor
    (every convolution, Fire convolutions by their own names); None -> choose_reuse() with the
    same options (fit the board). uram: 'none' (default: the generated design, weights in
    bitstream-initialised ROMs) or 'auto' / 'all', which ASSUME a weight-load path (see the
    module docstring; recorded in Estimate.assumptions). fuse_fire=False: hls4ml's unfused Fire
    modules (HwGenericFire) with hls4ml's feature-map-deep FIFOs unless fifo_depth is given.
    loadable: the layers generated with a weight-load path (weights in URAM, no assumption): a
    policy 'none' / 'auto' / 'all' resolved by loadable_layers() for this folding, or layer names.
    """
    arch, board = _resolve(arch, board)
    clock = float(clock_mhz or board.clock_mhz)
    opts = dict(fifo_depth=fifo_depth, dsp_packing=dsp_packing, lut_mult_bits=lut_mult_bits, uram=uram,
                include_shell=include_shell, fuse_fire=fuse_fire, loadable=loadable)
    if reuse is None:
        reuse = choose_reuse(arch, board, bits_or_spec, input_size=input_size, clock_mhz=clock, **opts)
    names = loadable_layers(arch, board, bits_or_spec, reuse, loadable, input_size=input_size,
                            fifo_depth=fifo_depth, include_shell=include_shell, fuse_fire=fuse_fire)
    layers = hardware_layers(arch, bits_or_spec, reuse, input_size, fifo_depth, include_shell, fuse_fire, names)
    _place_weights_in_uram(layers, board, uram)
    in_uram = [m for l in layers for m in l.memories if m.role == "weights" and m.style == "uram" and not m.loadable]
    assumptions = (WEIGHT_LOAD_ASSUMPTION.format(n=len(in_uram), u=sum(m.uram for m in in_uram)),) if in_uram else ()
    cost = CostOptions(board.dsp_type, dsp_packing, lut_mult_bits)
    per_layer = [l.estimate(cost) for l in layers]
    totals = {k: sum(getattr(l, k) for l in per_layer) for k in ("dsp", "bram18", "uram", "lut", "lutram")}
    slowest = max(per_layer, key=lambda l: l.ii_cycles)
    util = {k: _percent(totals[k], b) for k, b in board.budget().items()}
    over = tuple(k for k, b in board.budget().items() if totals[k] > b)
    return Estimate(board=board.name, clock_mhz=clock, layers=per_layer, dsp=totals["dsp"],
                    bram18=totals["bram18"], uram=totals["uram"], lut=totals["lut"],
                    ii_cycles=slowest.ii_cycles, fps=clock * 1e6 / slowest.ii_cycles, fits=not over,
                    utilisation=util, lutram=totals["lutram"], bottleneck=slowest.name, over_budget=over,
                    model=arch.name, input_size=input_size or arch.input_size, fuse_fire=fuse_fire,
                    assumptions=assumptions, loadable=names)


# -- folding ----------------------------------------------------------------------------------
@dataclass
class _Stage:
    """A set of convolutions whose cycles are pixels * max(R) + fill (one pipeline stage)."""
    convs: list[tuple[str, list[int]]]   # (conv name, valid reuse factors ascending)
    pixels: int
    fill: int

    def fold(self, target: int) -> dict[str, int]:
        r_max = (target - self.fill) // self.pixels
        out = {}
        for name, valid in self.convs:
            i = bisect.bisect_right(valid, r_max)
            out[name] = valid[i - 1] if i else valid[0]
        return out

    def cycle_points(self) -> set[int]:
        return {self.pixels * r + self.fill for _, valid in self.convs for r in valid}


def _stages(arch: Architecture, input_size: int | None, fuse_fire: bool = True) -> tuple[list[_Stage], int]:
    """The foldable stages, and the fewest cycles the pipeline can take (floor)."""
    stages, floor = [], _pixels(arch.shapes(input_size)[0][1])  # the input stream: a pixel per cycle
    for layer, in_shape, out_shape in arch.shapes(input_size):
        h, w, c = in_shape
        if isinstance(layer, Conv):
            k = layer.kernel
            hp, wp = h + 2 * layer.pad, w + 2 * layer.pad
            px = _pixels(out_shape)
            stages.append(_Stage([(layer.name, valid_reuse_factors(c * k * k, layer.filters))], px, hp * wp - px))
            floor = max(floor, hp * wp)
        elif isinstance(layer, Fire):
            sq, e1, e3 = layer.convs
            px = h * w
            stages.append(_Stage([(sq.name, valid_reuse_factors(c, layer.squeeze))], px, 0))
            e1_r = valid_reuse_factors(layer.squeeze, layer.expand1x1)
            e3_r = valid_reuse_factors(9 * layer.squeeze, layer.expand3x3)
            if fuse_fire:
                stages.append(_Stage([(e1.name, e1_r), (e3.name, e3_r)], px, w + 1))
                floor = max(floor, px)
            else:  # hls4ml: expand1x1 alone; expand3x3 behind a zero-pad reads (H+2)*(W+2) pixels
                padded = (h + 2) * (w + 2)
                stages += [_Stage([(e1.name, e1_r)], px, 0), _Stage([(e3.name, e3_r)], px, padded - px)]
                floor = max(floor, padded)
        elif isinstance(layer, MaxPool):
            stages.append(_Stage([(layer.name, _divisors(c))], h * w, 0))
            floor = max(floor, h * w)
        elif isinstance(layer, GlobalAvgPool):
            stages.append(_Stage([(layer.name, _divisors(c))], h * w, c))
            floor = max(floor, h * w + c)
    return stages, floor


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _fold(stages: list[_Stage], target: int) -> dict[str, int]:
    out: dict[str, int] = {}
    for s in stages:
        out.update(s.fold(target))
    return out


def choose_reuse(arch: Architecture | str, board: Board | str, bits_or_spec=8, fps: float | None = None,
                 max_dsp: int | None = None, input_size: int | None = None, *, clock_mhz: float | None = None,
                 utilisation_limit: float | dict[str, float] = 1.0, **estimate_options) -> dict[str, int]:
    """Reuse factor per convolution, balancing the pipeline like FINN's SetFolding.

    A target T (cycles per frame) folds every convolution as far as it can while staying at
    or under T (the largest valid R); a layer that cannot reach T even at R = 1 gets R = 1.
    * fps given: T = clock / fps (raised to the floor set by the pools and stream widths).
    * max_dsp given: the smallest T (highest fps) whose total DSP estimate <= max_dsp,
      by binary search over the cycle counts the layers can take (DSP falls as T grows).
      With fps too: the slower of the two targets.
    * neither: the smallest T whose estimate fits the board (every resource <=
      utilisation_limit of its budget: one fraction, or a dict per resource such as
      FINN_RESOURCE_LIMITS); if no T fits (e.g. the weights exceed the board's memories
      at any folding), the smallest T whose DSP and LUT fit, else whose DSP fits -- the
      estimate then reports fits=False and what is over budget.
    Pools are folded too (their reuse R: C/R channels per cycle); the returned dict has
    every convolution (Fire convolutions by their own names) and every pool.
    The search scans targets in steps of 5 % and bisects the last step: DSP and LUT fall as
    T grows, but block RAM does not (very deep, narrow ROMs pack badly), so fitting targets
    need not be one interval; the scan finds the first one to within 5 %.
    """
    arch, board = _resolve(arch, board)
    clock = float(clock_mhz or board.clock_mhz)
    stages, floor = _stages(arch, input_size, estimate_options.get("fuse_fire", True))
    points = sorted({p for s in stages for p in s.cycle_points() if p > floor} | {floor})

    def est(t):
        """The estimate at target t, or None where explicitly named loadable layers fold to R = 1 there
        (no weight memory to load: such a target is not a candidate)."""
        try:
            return estimate(arch, board, bits_or_spec, _fold(stages, t), input_size=input_size, clock_mhz=clock,
                            **estimate_options)
        except ValueError:
            if isinstance(estimate_options.get("loadable", ()), str):
                raise
            return None

    def smallest(ok) -> int | None:
        """Smallest candidate T with ok(T): a geometric scan (ratio SCAN_RATIO), then a
        binary search between the last failing and the first passing scan point."""
        scan, last = [], None
        for i, p in enumerate(points):
            if last is None or p >= last * SCAN_RATIO or i == len(points) - 1:
                scan.append(i)
                last = p
        prev = -1
        for i in scan:
            if ok(points[i]):
                lo, hi = prev + 1, i
                while lo < hi:
                    mid = (lo + hi) // 2
                    if ok(points[mid]):
                        hi = mid
                    else:
                        lo = mid + 1
                return points[lo]
            prev = i
        return None

    targets = []
    if fps is not None:
        if fps <= 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        targets.append(max(floor, int(clock * 1e6 // fps)))
    if max_dsp is not None:
        t = smallest(lambda t: (e := est(t)) is not None and e.dsp <= max_dsp)
        targets.append(t if t is not None else points[-1])
    if not targets:
        if isinstance(utilisation_limit, dict):
            limits = {k: 100.0 * utilisation_limit.get(k, 1.0) for k in RESOURCES}
        else:
            limits = {k: 100.0 * utilisation_limit for k in RESOURCES}

        def within(keys):
            def ok(t):
                e = est(t)
                if e is None:
                    return False
                u = e.utilisation
                return all(u[k] <= limits[k] for k in keys)
            return ok

        t = None
        for keys in (RESOURCES, ("dsp", "lut", "lutram"), ("dsp",)):  # the board; its logic; its DSPs
            t = smallest(within(keys))
            if t is not None:
                break
        targets.append(t if t is not None else points[-1])
    return _fold(stages, max(targets))
