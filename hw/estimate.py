"""Resource and throughput ESTIMATES before synthesis, the FINN way: each hardware op knows its cost.

The ops (hw/ops/) hold their own cost next to their code generation; this module adds them up, places
memories (UltraRAM), decides the loadable layers and folds the pipeline. The model they follow:

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
  one bit wider than the activation -- hw/ops/conv.py conv_result_format -- and the ReLU
  layer casts to the activation format).
* ``fire``   one fused kernel: squeeze 1x1 + ReLU -> 2-row line buffer (padding is
  virtual) -> expand 1x1 and expand 3x3 + ReLU side by side -> one concatenated stream.
  expand1x1 reads the centre tap of the 3x3 window, so both expands emit pixel (r, c)
  together and the concatenation needs no skew buffer. Each of its three convolutions
  has its own reuse factor. Its internal streams are 2 deep (sqz_fire.h): registers.
* ``conv_rw`` / ``fire_rw`` (loadable ops, hw/ops/conv.py LoadableConv, hw/ops/fire.py LoadableFire):
  the same engines reading their weights from runtime-written UltraRAM arrays; a loadable conv
  is sqz::conv1x1_rw (1x1) or sqz::conv_rw (K x K, its own (K-1)-row line buffer) with ReLU and
  cast inside, so no separate ReLU layer or conv -> ReLU FIFO.
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

Cost model (per op; constants in hw/ops/cost.py)
-----------------------------------------------
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
  UltraRAM has no bitstream initialisation (UG901: "the INIT for RAM does not exist, the
  UltraRAM powers up in a 0 condition"; FINN requires runtime-writeable weights for URAM), so
  a weight can live there only if the design writes it at start-up.
  LOADABLE ops (``loadable=``, no assumption): sqz generates that load path for 1x1 / stride 1
  convolutions (LoadableConv: sqz::conv1x1_rw) and for Fire modules (LoadableFire: sqz::fire
  reading every part with R > 1 from runtime-written arrays); the AXI top's load mode fills
  the arrays at start-up (hw/kernels/sqz_conv.h, sqz_fire.h, sqz_axi.h; hw/project.py).
  ``choose_loadable`` is the one function that decides which ops get it -- hw/convert.plan_design
  generates exactly those, and the estimate of the generated design places exactly their weights
  in URAM (R deep x n_mult*W wide, ceil(width/72)*ceil(depth/4096) blocks of 4K x 72; a loadable
  conv also loses hls4ml's separate ReLU layer and its FIFO: ReLU and cast are in the kernel).
  Policies: 'none'; 'auto' (boards with URAM, and only while the design's block RAM is over
  budget: candidates moved best block-RAM saving per URAM first); 'all' (every candidate); or
  op names. A candidate is an op whose weights are a memory (R > 1; R = 1 folds them into logic).
  ASSUMED load path (``uram="auto"``, CLI ``--assume-weight-load-path``): the remaining weight
  ROMs (conv1's; sqz generates no load path for a K x K stock conv) may move to URAM too, best
  saving first, while block RAM is over budget; ``uram="all"`` moves every one. The Estimate says
  so in ``assumptions`` (printed in its table and written to the JSON): such an estimate
  describes a design sqz does not generate.
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

Bit widths are the formats the ops carry: a QuantSpec's (weight, input = previous result, accum,
result per layer), or, for a uniform ``bits`` B, quant/formats.uniform_spec's -- the very formats
`sqz hls --bits B` generates (one accumulator rule for designs, estimates and the spec). A stock
conv's conv -> ReLU stream is charged at its result_t (hw/ops/conv.conv_result_format).
"""
from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass

from hw.boards import Board, get_board
from hw.ops import HwOp, UnsupportedModelError, build_ops
from hw.ops.cost import (DEFAULT_FIFO_DEPTH, FEATURE_MAP, CostOptions, LayerEstimate,  # noqa: F401  (re-exports)
                         Memory, Stage, bram18_blocks, dsp_per_multiplier, fifo_depth_for, uram_blocks,
                         valid_reuse_factors)
from model.architecture import Architecture, get_architecture

RESOURCES = ("dsp", "bram18", "uram", "lut", "lutram")
# FINN's recommended ceilings for timing closure (finn/util/platforms.py DEFAULT_RES_LIMITS)
FINN_RESOURCE_LIMITS = {"lut": 0.7, "lutram": 0.7, "bram18": 0.8, "uram": 0.8, "dsp": 0.8}
SCAN_RATIO = 1.05               # choose_reuse: step between cycle targets scanned before bisecting
URAM_POLICIES = ("none", "auto", "all")
LOADABLE_POLICIES = ("none", "auto", "all")
WEIGHT_LOAD_ASSUMPTION = ("ASSUMES A WEIGHT-LOAD PATH sqz does not generate: {n} weight ROM(s) in {u} UltraRAM "
                          "block(s); UltraRAM cannot be initialised from the bitstream and the generated project "
                          "has only bitstream-initialised ROMs (block RAM / LUTs) for them")


def _resolve(arch, board):
    if isinstance(arch, str):
        arch = get_architecture(arch)
    return arch, get_board(board)


# -- configuring an op list: folding, FIFO depths, loadable variants ----------------------------------

def configure(ops: list[HwOp], reuse: dict, fifo_depth: int | str | None = None, loadable=(),
              fuse_fire: bool = True) -> list[HwOp]:
    """Copies of `ops` folded by `reuse` ({key: R}; every key of every op must be there), with the FIFO
    depth policy set and the ops named in `loadable` replaced by their loadable variants."""
    if fifo_depth is None:
        fifo_depth = DEFAULT_FIFO_DEPTH if fuse_fire else FEATURE_MAP
    fifo_depth_for(fifo_depth, 1)  # validates the policy
    keys = [k for op in ops for k in op.foldable()]
    unknown = [n for n in reuse if n not in keys]
    if unknown:
        raise UnsupportedModelError(f"reuse factor for unknown layer {unknown[0]!r}; foldable layers: "
                                    f"{', '.join(keys)}")
    needed = [k for op in ops if op.weighted for k in op.foldable()]     # pools default to R = 1
    missing = [n for n in needed if n not in reuse]
    if missing:
        raise UnsupportedModelError(f"no reuse factor for {missing[0]}" + (f" (and {len(missing) - 1} more)"
                                    if len(missing) > 1 else "") + "; use choose_reuse()")
    out = []
    for op in ops:
        op = copy.copy(op)
        op.set_reuse({k: reuse.get(k, 1) for k in op.foldable()})
        op.fifo_depth = fifo_depth
        op.engines()   # validates every reuse factor now (an Engine checks its own)
        out.append(op)
    return with_loadable(out, loadable)


def with_loadable(configured: list[HwOp], names) -> list[HwOp]:
    """Configured ops with those named replaced by their loadable variants (the others as they are)."""
    return [op.as_loadable() if op.name in names else op for op in configured]


# -- the estimate -----------------------------------------------------------------------------------

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
            return f"{name:<20}{kind:<13}{reuse:<18}{dsp:>6}{bram18:>8}{uram:>6}{lut:>9}{cycles:>10}"

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


def estimate_ops(ops: list[HwOp], board: Board | str, *, clock_mhz: float | None = None, dsp_packing: bool = False,
                 lut_mult_bits: int = 0, uram: str = "none", model: str = "", input_size: int = 0,
                 fuse_fire: bool = True, cost: CostOptions | None = None) -> Estimate:
    """ESTIMATE of configured ops (see configure): their costs added up, the pipeline as fast as its
    slowest op. uram 'auto'/'all' ASSUME a load path for the remaining block-RAM weight ROMs (labelled).
    cost: CostOptions to use instead of (dsp_packing, lut_mult_bits) -- the options fitted on real designs;
    its dsp_type is the board's."""
    board = get_board(board)
    clock = float(clock_mhz or board.clock_mhz)
    memories = [op.placed_memories() for op in ops]
    in_uram = _place_weights_in_uram(ops, memories, board, uram)
    assumptions = (WEIGHT_LOAD_ASSUMPTION.format(n=len(in_uram), u=sum(m.uram for m in in_uram)),) if in_uram else ()
    cost = CostOptions(board.dsp_type, dsp_packing, lut_mult_bits) if cost is None else \
        dataclasses.replace(cost, dsp_type=board.dsp_type)
    per_layer = [op.estimate(cost, mems) for op, mems in zip(ops, memories)]
    totals = {k: sum(getattr(l, k) for l in per_layer) for k in RESOURCES}
    slowest = max(per_layer, key=lambda l: l.ii_cycles)
    util = {k: _percent(totals[k], b) for k, b in board.budget().items()}
    over = tuple(k for k, b in board.budget().items() if totals[k] > b)
    return Estimate(board=board.name, clock_mhz=clock, layers=per_layer, dsp=totals["dsp"],
                    bram18=totals["bram18"], uram=totals["uram"], lut=totals["lut"],
                    ii_cycles=slowest.ii_cycles, fps=clock * 1e6 / slowest.ii_cycles, fits=not over,
                    utilisation=util, lutram=totals["lutram"], bottleneck=slowest.name, over_budget=over,
                    model=model, input_size=input_size, fuse_fire=fuse_fire, assumptions=assumptions,
                    loadable=tuple(op.name for op in ops if op.loadable))


def estimate(arch: Architecture | str, board: Board | str, bits_or_spec=8, reuse: dict[str, int] | None = None, *,
             input_size: int | None = None, clock_mhz: float | None = None, fifo_depth: int | str | None = None,
             dsp_packing: bool = False, lut_mult_bits: int = 0, uram: str = "none",
             include_shell: bool = True, fuse_fire: bool = True, loadable=(), ops: list[HwOp] | None = None) -> Estimate:
    """ESTIMATE resources and frames/s of ``arch`` on ``board`` before synthesis.

    bits_or_spec: a QuantSpec, or a uniform bit width (quant/formats.uniform_spec: the same formats
    `sqz hls --bits` generates). reuse: {key: R} for every convolution (Fire convolutions by their own
    names; pools default to 1); None -> choose_reuse() with the same options (fit the board).
    uram: 'none' (default: the generated design) or 'auto' / 'all', which ASSUME a weight-load path
    for the other weight ROMs (module docstring; recorded in Estimate.assumptions). fuse_fire=False:
    hls4ml's unfused Fire modules with hls4ml's feature-map-deep FIFOs unless fifo_depth is given.
    loadable: the ops generated with a weight-load path (weights in URAM, no assumption): a policy
    'none' / 'auto' / 'all' resolved by choose_loadable() for this folding, or op names.
    ops: the op list to estimate (default: built from arch and bits_or_spec; plan_design passes its own).
    """
    arch, board = _resolve(arch, board)
    clock = float(clock_mhz or board.clock_mhz)
    if ops is None:
        ops = build_ops(arch, bits_or_spec, input_size, fuse_fire, include_shell)
    opts = dict(fifo_depth=fifo_depth, dsp_packing=dsp_packing, lut_mult_bits=lut_mult_bits, uram=uram,
                fuse_fire=fuse_fire, loadable=loadable)
    if reuse is None:
        reuse = fold(ops, board, clock_mhz=clock, **opts)
    base = configure(ops, reuse, fifo_depth, (), fuse_fire)
    return estimate_ops(with_loadable(base, loadable_names(base, board, loadable)), board, clock_mhz=clock,
                        dsp_packing=dsp_packing, lut_mult_bits=lut_mult_bits, uram=uram, model=arch.name,
                        input_size=input_size or arch.input_size, fuse_fire=fuse_fire)


def hardware_layers(arch: Architecture | str, bits_or_spec=8, reuse: dict[str, int] | None = None,
                    input_size: int | None = None, fifo_depth: int | str | None = None,
                    include_shell: bool = True, fuse_fire: bool = True, loadable=()) -> list[HwOp]:
    """The dataflow pipeline as configured ops, in stream order (reuse: every convolution's factor)."""
    arch = get_architecture(arch) if isinstance(arch, str) else arch
    ops = build_ops(arch, bits_or_spec, input_size, fuse_fire, include_shell)
    return configure(ops, dict(reuse or {}), fifo_depth, tuple(loadable), fuse_fire)


# -- UltraRAM: the loadable layers, and the assumed load path -----------------------------------------

def _uram_moves(groups: list[tuple[object, int, int]], bram: int, bram_budget: int, uram_left: int) -> list:
    """Which groups (key, block RAM it frees, UltraRAM it takes) to move, in order, while block RAM
    (`bram` BRAM18 in use) is over budget: each time the one with the best block-RAM saving per URAM
    (ties: the larger saving) that still fits the UltraRAM left. Shared by the loadable-layer decision
    and the assumed load path (uram='auto')."""
    moved: list = []
    left = list(groups)
    while bram > bram_budget:
        fits = [g for g in left if 0 < g[2] <= uram_left]
        if not fits:
            break
        best = max(fits, key=lambda g: (g[1] / g[2], g[1]))
        left.remove(best)
        moved.append(best[0])
        bram -= best[1]
        uram_left -= best[2]
    return moved


def _bram_in_use(ops, memories) -> int:
    return sum(m.bram18 for mems in memories for m in mems) + sum(op.extra_bram18() for op in ops)


def _place_weights_in_uram(ops, memories, board: Board, policy: str) -> list[Memory]:
    """Move weight ROMs from block RAM to UltraRAM (mutates Memory.style) for uram='auto' or 'all',
    which ASSUME a start-up weight-load path the generator does not emit for them. Returns them."""
    if policy not in URAM_POLICIES:
        raise UnsupportedModelError(f"uram must be 'none', 'auto' or 'all', got {policy!r}")
    if policy == "none" or board.uram == 0:
        return []
    roms = [m for mems in memories for m in mems if m.role == "weights" and m.style == "bram"]
    if policy == "all":
        moved = roms
    else:
        uram_left = board.uram - sum(m.uram for mems in memories for m in mems)   # loadable weights are there
        groups = [(m, m.bram18, uram_blocks(m.depth, m.width)) for m in roms]
        moved = _uram_moves(groups, _bram_in_use(ops, memories), board.bram18, uram_left)
    for m in moved:
        m.style = "uram"
    return moved


def choose_loadable(ops: list[HwOp], board: Board | str, reuse: dict, policy="auto", *,
                    fifo_depth: int | str | None = None, fuse_fire: bool = True) -> tuple[str, ...]:
    """THE decision which ops get loadable (UltraRAM, written at start-up) weights: hw/convert.plan_design
    generates exactly these and the estimate places exactly their weights in UltraRAM.
    policy: 'none'; 'auto' (boards with UltraRAM, and only while the design's block RAM is over budget:
    candidates moved best block-RAM saving per URAM first); 'all' (every candidate); or op names (each
    checked). A candidate is an op whose weights are a memory its kernel can read from UltraRAM
    (HwOp.load_candidate: convs and Fire modules with R > 1)."""
    return loadable_names(configure(ops, reuse, fifo_depth, (), fuse_fire), board, policy)


def loadable_names(base: list[HwOp], board: Board | str, policy="auto") -> tuple[str, ...]:
    """choose_loadable on ops already configured (folded, no loadable variants yet)."""
    board = get_board(board)
    by_name = {op.name: op for op in base}
    candidates = [op.name for op in base if op.load_candidate()]
    if not isinstance(policy, str):
        names = _check_loadable_names(base, policy, board)
        for n in names:
            by_name[n].as_loadable()      # raises, naming why, where it is not a candidate at this folding
        return tuple(op.name for op in base if op.name in names)
    if policy not in LOADABLE_POLICIES:
        raise UnsupportedModelError(f"weights in URAM must be one of {', '.join(LOADABLE_POLICIES)} or layer "
                                    f"names, got {policy!r}")
    if policy == "none" or board.uram == 0 or not candidates:
        return ()
    if policy == "all":
        return tuple(candidates)
    memories = [op.memories() for op in base]
    groups = []
    for name in candidates:
        loaded = [m for m in by_name[name].as_loadable().memories() if m.loadable]
        groups.append((name, sum(bram18_blocks(m.depth, m.width) for m in loaded), sum(m.uram for m in loaded)))
    moved = set(_uram_moves(groups, _bram_in_use(base, memories), board.bram18, board.uram))
    return tuple(n for n in candidates if n in moved)


def _check_loadable_names(ops: list[HwOp], names, board: Board) -> tuple[str, ...]:
    """Explicit loadable names must name ops with weights (a Fire module as a whole), on a board with URAM."""
    names = tuple(str(n) for n in names)
    by_name = {op.name: op for op in ops}
    for n in names:
        owner = next((o.name for o in ops if n in o.foldable() and n != o.name), None)
        if owner is not None:
            raise UnsupportedModelError(f"loadable weights for {n!r}: a convolution of Fire module {owner}, "
                                        f"whose weights load as a whole: name {owner}")
        if n not in by_name or not by_name[n].weighted:
            raise UnsupportedModelError(f"loadable weights for {n!r}: no such layer with weights (layers: "
                                        f"{', '.join(o.name for o in ops if o.weighted)})")
    if names and board.uram == 0:
        raise UnsupportedModelError(f"loadable weights ({', '.join(names)}) are bound to UltraRAM; "
                                    f"{board.name} has none")
    return names


def loadable_layers(arch: Architecture | str, board: Board | str, bits_or_spec=8, reuse: dict | None = None,
                    policy="auto", *, input_size: int | None = None, fifo_depth: int | str | None = None,
                    include_shell: bool = True, fuse_fire: bool = True) -> tuple[str, ...]:
    """choose_loadable for an architecture (builds its ops)."""
    arch, board = _resolve(arch, board)
    ops = build_ops(arch, bits_or_spec, input_size, fuse_fire, include_shell)
    return choose_loadable(ops, board, dict(reuse or {}), policy, fifo_depth=fifo_depth, fuse_fire=fuse_fire)


# -- folding ----------------------------------------------------------------------------------

def _stages(ops: list[HwOp]) -> tuple[list[Stage], int]:
    """The foldable stages, and the fewest cycles the pipeline can take (floor: the input stream
    takes a pixel per cycle, and no op can beat its own minimum)."""
    first = next(op for op in ops if op.kind != "shell")
    floor = max([first.in_shape[0] * first.in_shape[1]] + [op.min_cycles() for op in ops])
    return [s for op in ops for s in op.stages()], floor


def _fold(stages: list[Stage], target: int) -> dict[str, int]:
    out: dict[str, int] = {}
    for s in stages:
        out.update(s.fold(target))
    return out


def utilisation_ceilings(utilisation_limit: float | dict[str, float]) -> dict[str, float]:
    """Per resource, the utilisation in percent a folding may reach: one fraction for all, or a dict of
    fractions per resource (the others 1.0)."""
    if isinstance(utilisation_limit, dict):
        return {k: 100.0 * utilisation_limit.get(k, 1.0) for k in RESOURCES}
    return {k: 100.0 * utilisation_limit for k in RESOURCES}


def fold(ops: list[HwOp], board: Board | str, fps: float | None = None,
         max_dsp: int | None = None, *, clock_mhz: float | None = None,
         utilisation_limit: float | dict[str, float] = 1.0, **estimate_options) -> dict[str, int]:
    """Reuse factor of every foldable key of `ops`, balancing the pipeline like FINN's SetFolding.

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
    Pools are folded too (their reuse R: C/R channels per cycle).
    The search scans targets in steps of 5 % and bisects the last step: DSP and LUT fall as
    T grows, but block RAM does not (very deep, narrow ROMs pack badly), so fitting targets
    need not be one interval; the scan finds the first one to within 5 %.
    """
    board = get_board(board)
    clock = float(clock_mhz or board.clock_mhz)
    stages, floor = _stages(ops)
    points = sorted({p for s in stages for p in s.cycle_points() if p > floor} | {floor})
    loadable = estimate_options.pop("loadable", ())
    fifo_depth = estimate_options.pop("fifo_depth", None)
    fuse_fire = estimate_options.pop("fuse_fire", True)
    cost = {k: estimate_options.pop(k) for k in ("dsp_packing", "lut_mult_bits", "uram") if k in estimate_options}
    if estimate_options:
        raise TypeError(f"unknown estimate options {sorted(estimate_options)}")

    if not isinstance(loadable, str):     # explicit names: checked once here (names, board), then per target
        _check_loadable_names(ops, loadable, board)

    def est(t):
        """The estimate at target t, or None where explicitly named loadable ops cannot be loadable there
        (they fold to R = 1: no weight memory to load, so such a target is not a candidate)."""
        base = configure(ops, _fold(stages, t), fifo_depth, (), fuse_fire)    # once per target
        if isinstance(loadable, str):
            names = loadable_names(base, board, loadable)
        elif all(op.load_candidate() for op in base if op.name in loadable):
            names = tuple(loadable)
        else:
            return None
        return estimate_ops(with_loadable(base, names), board, clock_mhz=clock, **cost)

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
            raise UnsupportedModelError(f"fps must be > 0, got {fps}")
        targets.append(max(floor, int(clock * 1e6 // fps)))
    if max_dsp is not None:
        t = smallest(lambda t: (e := est(t)) is not None and e.dsp <= max_dsp)
        targets.append(t if t is not None else points[-1])
    if not targets:
        limits = utilisation_ceilings(utilisation_limit)

        def within(keys):
            def ok(t):
                e = est(t)
                if e is None:
                    return False
                return all(e.utilisation[k] <= limits[k] for k in keys)
            return ok

        t = None
        for keys in (RESOURCES, ("dsp", "lut", "lutram"), ("dsp",)):  # the board; its logic; its DSPs
            t = smallest(within(keys))
            if t is not None:
                break
        targets.append(t if t is not None else points[-1])
    return _fold(stages, max(targets))


def choose_reuse(arch: Architecture | str, board: Board | str, bits_or_spec=8, fps: float | None = None,
                 max_dsp: int | None = None, input_size: int | None = None, *, clock_mhz: float | None = None,
                 utilisation_limit: float | dict[str, float] = 1.0, ops: list[HwOp] | None = None,
                 include_shell: bool = True, **estimate_options) -> dict[str, int]:
    """fold() for an architecture: builds its ops from bits_or_spec (or takes `ops`), then folds them."""
    arch, board = _resolve(arch, board)
    if ops is None:
        ops = build_ops(arch, bits_or_spec, input_size, estimate_options.get("fuse_fire", True), include_shell)
    return fold(ops, board, fps=fps, max_dsp=max_dsp, clock_mhz=clock_mhz, utilisation_limit=utilisation_limit,
                **estimate_options)
