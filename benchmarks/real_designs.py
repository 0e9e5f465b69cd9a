"""The estimator against real hls4ml designs (issue 10, item 5).

Each design of ../shared/data/hls_reports (and its README: network, precisions, reuse factors) is
described here as a list of hw/ops built by hand from shapes and FixedFormats; the estimator adds them
up (hw/estimate.configure + estimate_ops) and the result is compared with the figures of the real reports,
read with hw/reports.py:

  LUT, BRAM18  Vivado synthesis only (C synthesis over-states them 2-4x): SVHN 16-bit, SVHN 6-bit, KV260 MNIST
  DSP          Vivado where present, else C synthesis (which agrees with Vivado within ~4 % on these designs)
  interval     C synthesis (LeNet-5's held in co-simulation within 2 cycles)
  FF           real figure printed; the model does not estimate flip-flops

Fit set: SVHN 16-bit (LUT and BRAM; its DSP is estimated with no fitted parameter); interval fit set:
LeNet-5; the constant-product rule's source: pixel CNN's DSP (its bind-op table). Everything else is held
out. Models: `baseline` (the model before this comparison), `fitted_v1` (the first fitted options:
const_dsp_share, const_lut_bits), `fitted` (const_mult "csd", adder_tree_widths: BENCHMARKS.md "The
estimator against real designs (issue 10)").

    .venv/bin/python benchmarks/real_designs.py            # every model, writes benchmarks/results/real_designs.json
    .venv/bin/python benchmarks/real_designs.py --markdown benchmarks/results/real_designs_0810707.json   # the table
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hw.estimate import configure, estimate_ops                                   # noqa: E402
from hw.ops import StockConv, ZeroPad                                              # noqa: E402
from hw.ops.activation import StockActivation, StockNormalize, StockSoftmax       # noqa: E402
from hw.ops.cost import FEATURE_MAP, CostOptions                                               # noqa: E402
from hw.ops.dense import StockDense                                                # noqa: E402
from hw.ops.stock_pool import StockPool                                            # noqa: E402
from hw.reports import read_report                                                 # noqa: E402
from model.architecture import Conv                                                # noqa: E402
from quant.fixed_point import FixedFormat                                          # noqa: E402
from quant.spec import ConvFormats                                                 # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "hls_reports"
RESULTS = ROOT / "benchmarks" / "results" / "real_designs.json"
FIGURES = ("lut", "ff", "dsp", "bram18", "ii_cycles")
FIT_SET = ("svhn_16bit",)
# targets on held-out designs: relative error, or an absolute one where the true count is small
TARGETS = {"dsp": 0.25, "bram18": 0.25, "ii_cycles": 0.25, "lut": 0.50}
SMALL_COUNT, SMALL_SLACK = 8, 2


def fx(w, i, signed=True, rnd="AP_TRN", sat="AP_WRAP"):
    return FixedFormat(w, i, signed, rnd, sat)


@dataclass
class Design:
    name: str
    ops: list
    real: dict                   # figure -> (value, source, path)
    notes: list = field(default_factory=list)
    hls4ml_streams: str = "packed"   # "per_channel": hls4ml <= 0.6 streams (one FIFO per channel)
    line_buffer: bool = False        # hls4ml >= 0.7 line-buffer conv (Vitis HLS): a pixel costs its latency


def n_zeros(parameters_h: Path, config: str) -> int:
    """hls4ml's n_zeros of `struct <config> : nnet::...` in a generated parameters.h."""
    text = parameters_h.read_text()
    m = re.search(rf"struct {config}\s*:\s*nnet::\w+\s*\{{(.*?)\n\}};", text, re.S)
    z = re.search(r"n_zeros\s*=\s*(\d+)", m.group(1)) if m else None
    if z is None:
        raise ValueError(f"{parameters_h}: no n_zeros in struct {config}")
    return int(z.group(1))


def figures(util=None, csynth=None, dsp_from_csynth=False) -> dict:
    """Real figures: LUT/FF/DSP/BRAM18 from a Vivado utilization report, the interval from C synthesis."""
    out = {}
    if util is not None:
        r = read_report(util)
        for k in ("lut", "ff", "dsp", "bram18"):
            out[k] = (r.totals[k], r.source, str(util.relative_to(DATA)))
    if csynth is not None:
        c = read_report(csynth)
        out["ii_cycles"] = (c.ii_cycles, c.source, str(csynth.relative_to(DATA)))
        if dsp_from_csynth:
            out["dsp"] = (c.totals["dsp"], c.source, str(csynth.relative_to(DATA)))
    return out


# -- the designs -------------------------------------------------------------------------------------

def conv_block(name, in_shape, filters, x, f, *, zeros=0, pad=0, relu=True, codes=None):
    """[ZeroPad] + hls4ml Conv2D (3x3 or 5x5 as given by f) + its ReLU layer; returns (ops, out shape)."""
    k = f["kernel"]
    conv = Conv(name, filters, k, 1, pad, relu)
    ops = []
    if pad:
        ops.append(ZeroPad(conv, in_shape, x))
        in_shape = ops[-1].out_shape
    out = (in_shape[0] - k + 1, in_shape[1] - k + 1, filters)
    ops.append(StockConv(conv, in_shape, out, x, f["formats"], zeros=zeros, codes=codes))
    return ops, out


def svhn(bits: int) -> Design:
    """hls4ml tutorial part 6: 32x32x3 -> 3 x [conv 3x3 (16, 16, 24) -> ReLU -> max pool 2x2] -> dense 42 ->
    ReLU -> dense 64 -> ReLU -> dense 10 -> softmax; 50 % magnitude pruning of every conv and dense but the
    output (tfmot PolynomialDecay to final_sparsity 0.50); RF 1, Latency, io_stream, hls4ml ~0.5."""
    folder = DATA / "hls4ml-tutorial-svhn-cnn" / ("pruned_cnn" if bits == 16 else "quantized_pruned_cnn")
    d16 = fx(16, 6)
    if bits == 16:          # ap_fixed<16,6> everywhere; BatchNorm fused into conv and dense (no normalize layers)
        w, act = d16, d16
    else:                   # QKeras quantized_bits(6,0) weights, quantized_relu(6) activations
        w, act = fx(6, 1), fx(6, 0, False, "AP_RND", "AP_SAT")
    ops, shape, x = [], (32, 32, 3), d16
    for i, filters in enumerate((16, 16, 24)):
        n = shape[2] * 9 * filters
        f = {"kernel": 3, "formats": ConvFormats(w, w, d16, act)}
        block, shape = conv_block(f"conv{i}", shape, filters, x, f, zeros=n // 2)
        ops += block
        # the pool's output stream is ap_fixed<16,6> in both designs (csynth FIFO table: layer5/9/13_out 16 bits)
        ops.append(StockPool(f"pool{i}", shape, 2, d16))
        shape, x = ops[-1].out_shape, d16
    n_in, beats = shape[0] * shape[1] * shape[2], shape[0] * shape[1]
    for i, n_out in enumerate((42, 64)):
        if bits == 16:
            ops.append(StockDense(f"dense{i}", n_in, n_out, x, ConvFormats(w, w, d16, d16), relu=True,
                                  in_beats=beats, zeros=n_in * n_out // 2))
        else:               # QDense -> BatchNormalization (nnet::normalize, 16-bit scale) -> quantized_relu(6)
            ops.append(StockDense(f"dense{i}", n_in, n_out, x, ConvFormats(w, w, d16, d16), in_beats=beats,
                                  zeros=n_in * n_out // 2))
            ops.append(StockNormalize(f"bn{i}", (1, 1, n_out), d16, d16, 16))
            ops.append(StockActivation(f"relu_dense{i}", (1, 1, n_out), 16, act.width))
        n_in, beats, x = n_out, 1, act
    ops.append(StockDense("output", n_in, 10, x, ConvFormats(d16, d16, d16, d16), in_beats=1))   # not pruned
    ops.append(StockSoftmax("softmax", 10, 16))
    return Design(f"svhn_{bits}bit", ops, figures(folder / "vivado_synth.rpt", folder / "myproject_csynth.rpt"),
                  ["Vivado 2020.1 synth_design (out of context) on xcu250; C synthesis Vivado HLS 2020.1",
                   "pruned weights: 50 % of each conv / hidden dense (the notebook's final_sparsity; the weights "
                   "themselves are not in the repository)"], hls4ml_streams="per_channel")


def kv260_mnist() -> Design:
    """HGQ MNIST CNN: 28x28x1 -> conv0 3x3 16 -> ReLU -> pool 2 -> conv1 3x3 16 -> ReLU -> pool 2 -> dense 400->10;
    VitisUnified (hls4ml >= 1.2), io_stream, LineBuffer, Latency, RF 1. Stream widths from the csynth FIFO table
    (conv0 5 bits, pool 4 bits, conv1 10 bits, ReLU 9 bits); weight widths are not in the copied files (HGQ
    'auto'): conv1 4 bits and dense0 8 bits from the public headers' ranges (below), conv0 8 bits assumed;
    accumulators as the conv result width + 4."""
    folder = DATA / "kv260-hls4ml-mnist-cnn"
    params = folder / "config" / "parameters.h"
    x = fx(8, 0, False)
    # weight ranges from the generated headers of the same build (github.com/lolbraa/HLS4ML_testbench_KV260 @ bc5de20,
    # .../hls4ml_prj_VU_EXPO_DEMO_axi_stream/firmware/weights/): w7.h min -1, max 0.5, step 1/8 -> 4 bits;
    # w13.h min -8, max 4, step 1/16 -> 8 bits. conv0's (2 nonzero weights) are not there: taken as 8 bits.
    w = fx(8, 2)
    w_conv1, w_dense0 = fx(4, 1), fx(8, 4)
    c0 = {"kernel": 3, "formats": ConvFormats(w, w, fx(9, 5), fx(5, 3, False, "AP_RND", "AP_SAT"))}
    ops, shape = conv_block("conv0", (28, 28, 1), 16, x, c0, zeros=n_zeros(params, "config3"))
    ops.append(StockPool("pool0", shape, 2, fx(4, 2, False)))
    c1 = {"kernel": 3, "formats": ConvFormats(w_conv1, w_conv1, fx(14, 7), fx(9, 4, False, "AP_RND", "AP_SAT"))}
    block, shape = conv_block("conv1", ops[-1].out_shape, 16, fx(4, 2, False), c1, zeros=n_zeros(params, "config7"))
    ops += block
    ops.append(StockPool("pool1", shape, 2, fx(4, 2, False)))
    p = ops[-1].out_shape
    ops.append(StockDense("dense0", p[0] * p[1] * p[2], 10, fx(4, 2, False), ConvFormats(w_dense0, w_dense0, fx(15, 9), fx(15, 9)),
                          in_beats=p[0] * p[1], zeros=n_zeros(params, "config13")))
    return Design("kv260_mnist", ops, figures(folder / "final_reports" / "impl_1_kernel_util_synthed.rpt",
                                              folder / "syn_report" / "myproject_csynth.rpt"),
                  ["Vivado 2025.2 synthesis of the kernel (report_accelerator_utilization, its AXI-stream wrapper "
                   "included); C synthesis Vitis HLS 2025.2", "weight widths: conv1 4 bits, dense0 8 bits (ranges in the public w7.h / w13.h headers, not in "
                   "../shared), conv0 assumed 8 bits; the weight codes themselves are not in ../shared"],
                  line_buffer=True)


def lenet5_bn_scale_codes(keras_file: Path, scale_t) -> dict:
    """The integer codes of hls4ml's normalize scales (gamma / sqrt(moving_variance + epsilon)) of LeNet-5's two
    BatchNormalization layers, read from the real model file, cast to scale_t (bn*_scale_t ap_fixed<8,4>,
    AP_TRN: floor) as the C++ does. Keras 3 .keras: a zip of config.json and model.weights.h5."""
    import io
    import zipfile

    import h5py
    import numpy as np

    with zipfile.ZipFile(keras_file) as z:
        config = json.loads(z.read("config.json"))
        weights = h5py.File(io.BytesIO(z.read("model.weights.h5")), "r")
        eps = {l["config"]["name"]: l["config"]["epsilon"] for l in config["config"]["layers"]
               if l["class_name"] == "BatchNormalization"}
        out = {}
        for name, key in (("bn1", "batch_normalization"), ("bn2", "batch_normalization_1")):
            gamma, _, _, var = (weights[f"_layer_checkpoint_dependencies/{key}/vars/{i}"][()] for i in range(4))
            out[name] = scale_t.quantize(gamma / np.sqrt(var + eps[name]))
    return out


def pixel_cnn_codes(folder: Path, name: str, fmt) -> "np.ndarray":
    """Integer codes of one weight file of config/weights/ (hls4ml's w<N>.txt, comma-separated floats)."""
    import numpy as np

    text = (folder / "config" / "weights" / f"{name}.txt").read_text()
    return fmt.quantize(np.array([float(v) for v in text.replace("\n", " ").split(",") if v.strip()]))


def lenet5() -> Design:
    """LeNet-5: 28x28x1 -> conv 5x5 6 -> hard_tanh -> pool 2 -> conv 5x5 16 -> hard_tanh -> pool 2 -> dense 256->16
    -> BN -> hard_tanh -> dense 16->16 -> BN -> hard_tanh -> dense 16->10 -> softmax; formats from defines.h
    (weights/biases ap_fixed<8,4>, activations ap_fixed<8,1>), RF 1, Latency, io_stream, Vitis HLS 2023.2."""
    folder = DATA / "lenet5-hls4ml-zu9eg"
    params = folder / "config" / "parameters.h"
    w, act = fx(8, 4), fx(8, 1, True, "AP_RND_CONV", "AP_SAT")
    ops, shape = conv_block("conv1", (28, 28, 1), 6, fx(8, 4),
                            {"kernel": 5, "formats": ConvFormats(w, w, fx(22, 14), fx(22, 14))},
                            zeros=n_zeros(params, "config2"), relu=False)
    ops.append(StockActivation("tanh1", shape, 22, 8, "hard_tanh"))
    ops.append(StockPool("pool1", shape, 2, act))
    block, shape = conv_block("conv2", ops[-1].out_shape, 16, act,
                              {"kernel": 5, "formats": ConvFormats(w, w, fx(25, 14), fx(25, 14))},
                              zeros=n_zeros(params, "config6"), relu=False)
    ops += block
    ops.append(StockActivation("tanh2", shape, 25, 8, "hard_tanh"))
    ops.append(StockPool("pool2", shape, 2, act))
    p = ops[-1].out_shape
    n_in, beats = p[0] * p[1] * p[2], p[0] * p[1]
    scales = lenet5_bn_scale_codes(folder / "config" / "keras_model.keras", w)
    for name, cfg, n_out, acc, bn in (("dense1", "config11", 16, fx(25, 14), "bn1"),
                                      ("dense2", "config15", 16, fx(21, 10), "bn2")):
        ops.append(StockDense(name, n_in, n_out, act, ConvFormats(w, w, acc, acc), in_beats=beats,
                              zeros=n_zeros(params, cfg)))
        ops.append(StockNormalize(f"bn_{name}", (1, 1, n_out), acc, w, 34, scale_codes=scales[bn]))
        ops.append(StockActivation(f"tanh_{name}", (1, 1, n_out), 34, 8, "hard_tanh"))
        n_in, beats = n_out, 1
    ops.append(StockDense("dense3", n_in, 10, act, ConvFormats(w, w, fx(21, 10), fx(8, 4)), zeros=n_zeros(params, "config19")))
    ops.append(StockSoftmax("softmax", 10, 8))
    syn = folder / "syn_report"
    return Design("lenet5", ops, figures(None, syn / "csynth.rpt", dsp_from_csynth=True),
                  ["C synthesis only (Vitis HLS 2023.2, xczu9eg): interval and DSP"], line_buffer=True)


def pixel_cnn() -> Design:
    """Smart-pixel cnn_large: y_profile 8x13x1 -> ZeroPad 1 -> conv 3x3 8 -> ReLU -> pool 2 -> ZeroPad 1 -> conv 3x3
    13 -> ReLU -> pool 2 -> flatten 78 + y0 -> dense 79->13 -> ReLU -> dense 13->1 -> sigmoid; data ap_fixed<16,6>,
    weights ap_fixed<10,3>, activations ap_ufixed<10,0> (defines.h); Resource, RF 1, Vitis HLS 2023.1."""
    folder = DATA / "pixel-cnn-large"
    params = folder / "config" / "parameters.h"
    d, w, act = fx(16, 6), fx(10, 3), fx(10, 0, False, "AP_RND_CONV", "AP_SAT")
    codes = {n: pixel_cnn_codes(folder, n, w) for n in ("w2", "w6", "w13", "w16")}
    ops, shape = conv_block("conv1", (8, 13, 1), 8, d, {"kernel": 3, "formats": ConvFormats(w, w, d, act)},
                            zeros=n_zeros(params, "config2"), pad=1, codes=codes["w2"])
    ops.append(StockPool("pool1", shape, 2, d))
    block, shape = conv_block("conv2", ops[-1].out_shape, 13, d, {"kernel": 3, "formats": ConvFormats(w, w, d, act)},
                              zeros=n_zeros(params, "config6"), pad=1, codes=codes["w6"])
    ops += block
    ops.append(StockPool("pool2", shape, 2, d))
    ops.append(StockDense("dense1", 79, 13, d, ConvFormats(w, w, d, act), relu=True, in_beats=6,
                          zeros=n_zeros(params, "config13"), codes=codes["w13"]))
    ops.append(StockDense("dense2", 13, 1, act, ConvFormats(w, w, d, d), zeros=n_zeros(params, "config16"),
                          codes=codes["w16"]))
    ops.append(StockActivation("sigmoid", (1, 1, 1), 16, 16, "sigmoid"))
    syn = folder / "syn_report"
    return Design("pixel_cnn", ops, figures(None, syn / "csynth.rpt", dsp_from_csynth=True),
                  ["C synthesis only (Vitis HLS 2023.1, xcvu13p): interval and DSP",
                   "the concatenation with the scalar input y0 is not modelled (a 79-wide register)"], line_buffer=True)


DESIGNS = (svhn, kv260_mnist, lenet5, pixel_cnn)
NOT_REPRESENTED = {
    "mlperftiny-rn07-pynqz2": "no resource or interval report (only the .hwh latency estimate and a board "
                              "throughput that includes the bare-metal harness)",
    "aup-zu3-hls4ml-cifar10-hwh": "no synthesis figures at all (a hardware handoff only)",
}


def all_designs() -> list[Design]:
    return [svhn(16), svhn(6), kv260_mnist(), lenet5(), pixel_cnn()]


# -- the comparison ------------------------------------------------------------------------------------

CONST_LUT_BITS = 8        # prior, not fitted (SVHN 16-bit has no narrow product): hw/estimate.py's "about <= 10 bits"
ADDER_LEVELS = 4          # adder-tree levels per 5 ns cycle: fitted on LeNet-5's interval (the interval fit set)
INTERVAL_FIT_SET = ("lenet5",)
# the constant-product rule of the fitted model (hw/ops/cost.py csd_multipliers) was read off pixel CNN's bind-op
# table (>= 3 CSD digits: 39 of conv1's 72 weights = its 39 DSPs; 10ns x 10-bit muls in fabric, 16s x 5-bit on
# DSPs): pixel CNN's DSP figure is therefore not held out. LeNet-5's DSPs are predicted by that rule.
DSP_RULE_SET = ("pixel_cnn",)
# baseline: the model before this comparison; fitted_v1: the first fitted model (const_dsp_share fitted on SVHN
# 16-bit, const_lut_bits); fitted: the bind-op rule for constant products (CostOptions.const_mult "csd"),
# const_adder_lut fitted on SVHN 16-bit. Both fitted models: fit(model) from SVHN 16-bit's reports.
MODELS = ("baseline", "fitted_v1", "fitted")


def configured(design: Design, model: str):
    ops = design.ops
    reuse = {k: 1 for op in ops for k in op.foldable()}
    out = configure(ops, reuse, FEATURE_MAP)
    if model != "baseline":
        for op in out:
            op.fifo_per_channel = design.hls4ml_streams == "per_channel"
            if isinstance(op, StockConv) and design.line_buffer:
                op.adder_levels_per_cycle = ADDER_LEVELS
    return out


def estimate_design(design: Design, model: str = "baseline", cost: CostOptions | None = None):
    if cost is None and model != "baseline":
        cost = fit(model)
    return estimate_ops(configured(design, model), "zcu104", cost=cost)


_FITTED = {}


def fit(model: str = "fitted") -> CostOptions:
    """The fitted options from SVHN 16-bit's Vivado figures: const_adder_lut (LUT, enters linearly) and, for
    fitted_v1 only, const_dsp_share (DSP, linear). `fitted` fits no DSP parameter: the bind-op rule and, where
    the weights are unknown (SVHN), the N(0, 1/fan_in) prior (hw/ops/cost.py prior_dsp_share)."""
    if model in _FITTED:
        return _FITTED[model]
    d = svhn(16)
    if model == "fitted_v1":
        base = CostOptions(prune_zero_weights=True, const_lut_bits=CONST_LUT_BITS, const_adder_lut=0.0)
        e_share0 = estimate_design(d, model, dataclasses.replace(base, const_dsp_share=0.0))
        e_share1 = estimate_design(d, model, dataclasses.replace(base, const_dsp_share=1.0))
        base = dataclasses.replace(base, const_dsp_share=round(
            (d.real["dsp"][0] - e_share0.dsp) / (e_share1.dsp - e_share0.dsp), 4))
    else:
        base = CostOptions(prune_zero_weights=True, const_mult="csd", adder_tree_widths=True, const_adder_lut=0.0)
    e0 = estimate_design(d, model, base)
    e1 = estimate_design(d, model, dataclasses.replace(base, const_adder_lut=1.0))
    a = (d.real["lut"][0] - e0.lut) / (e1.lut - e0.lut)
    _FITTED[model] = dataclasses.replace(base, const_adder_lut=round(a, 4))
    return _FITTED[model]


def within_target(figure: str, est, real) -> bool | None:
    if figure not in TARGETS or est is None or real is None:
        return None
    if real < SMALL_COUNT and figure != "ii_cycles":
        return abs(est - real) <= SMALL_SLACK
    return abs(est - real) <= TARGETS[figure] * real


def compare(design: Design, model: str = "baseline") -> list[dict]:
    e = estimate_design(design, model)
    est = {"lut": e.lut, "ff": None, "dsp": e.dsp, "bram18": e.bram18, "ii_cycles": e.ii_cycles}
    rows = []
    for fig in FIGURES:
        if fig not in design.real:
            continue
        real, source, path = design.real[fig]
        rel = None if est[fig] is None or not real else (est[fig] - real) / real
        fitted = design.name in FIT_SET or (fig == "ii_cycles" and design.name in INTERVAL_FIT_SET)
        rule = fig == "dsp" and design.name in DSP_RULE_SET and model == "fitted"
        rows.append({"design": design.name, "set": "rule source" if rule else "fit" if fitted else "held-out",
                     "figure": fig,
                     "estimate": est[fig], "real": real, "source": source, "report": path,
                     "rel_error": None if rel is None else round(rel, 4),
                     "within_target": within_target(fig, est[fig], real)})
    return rows


def table(rows: list[dict]) -> str:
    head = f"{'design':<13}{'set':<12}{'figure':<11}{'estimate':>10}{'real':>10}{'error':>9}  {'target':<7}source"
    out = [head, "-" * len(head)]
    for r in rows:
        err = "-" if r["rel_error"] is None else f"{100 * r['rel_error']:+.0f}%"
        est = "not est." if r["estimate"] is None else str(r["estimate"])
        ok = {True: "met", False: "MISSED", None: ""}[r["within_target"]]
        out.append(f"{r['design']:<13}{r['set']:<12}{r['figure']:<11}{est:>10}{r['real']:>10}{err:>9}  {ok:<7}"
                   f"{r['source']}")
    return "\n".join(out)


NAMES = {"svhn_16bit": "SVHN 16-bit", "svhn_6bit": "SVHN 6-bit", "kv260_mnist": "KV260 MNIST", "lenet5": "LeNet-5",
         "pixel_cnn": "pixel CNN"}
FIGURE_NAMES = {"lut": "LUT", "ff": "FF", "dsp": "DSP", "bram18": "BRAM18", "ii_cycles": "interval"}


def markdown(results: Path, before: Path) -> str:
    """BENCHMARKS.md's table, from the JSON files (this run's and an earlier commit's), never typed by hand."""
    now, old = json.loads(results.read_text()), json.loads(before.read_text())

    def cell(r):
        return "not estimated" if r["estimate"] is None else f"{r['estimate']:,} ({pct(r)})"

    def pct(r):
        if r["rel_error"] is None:
            return "exact" if r["estimate"] == r["real"] else "—"
        return f"{100 * r['rel_error']:+.0f} %".replace("-", "−")

    def index(rows):
        return {(r["design"], r["figure"]): r for r in rows}

    base, v1, fit = index(now["models"]["baseline"]), index(old["models"]["fitted"]), index(now["models"]["fitted"])
    out = ["| design | set | figure | real (source) | baseline | before (" + before.stem.split("_")[-1] +
           ") | now | target |", "|---|---|---|---|---|---|---|---|"]
    for key, r in fit.items():
        b, o = base[key], v1.get(key)
        target = "" if r["estimate"] is None else "(rule source)" if r["set"] == "rule source" else \
            "(fit)" if r["set"] == "fit" else \
            {True: "met", False: "**missed**", None: ""}[r["within_target"]]
        out.append(f"| {NAMES[key[0]]} | {r['set']} | {FIGURE_NAMES[key[1]]} | {r['real']:,} ({r['source']}) | "
                   f"{cell(b)} | " + (cell(o) if o else "—") + f" | {cell(r)} | {target} |")
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=list(MODELS) + ["all"], default="all")
    ap.add_argument("--markdown", metavar="BEFORE_JSON", help="print BENCHMARKS.md's table from the written JSON and "
                                                              "an earlier one (e.g. benchmarks/results/real_designs_0810707.json)")
    args = ap.parse_args(argv)
    if args.markdown:
        print(markdown(RESULTS, Path(args.markdown)))
        return
    designs = all_designs()
    out = {"fit_set": list(FIT_SET), "interval_fit_set": list(INTERVAL_FIT_SET), "dsp_rule_set": list(DSP_RULE_SET),
           "fitted_options": dataclasses.asdict(fit()), "fitted_v1_options": dataclasses.asdict(fit("fitted_v1")),
           "adder_levels_per_cycle": ADDER_LEVELS, "targets": TARGETS, "small_count_rule": f"true count < {SMALL_COUNT}: within "
           f"{SMALL_SLACK} units", "not_represented": NOT_REPRESENTED, "models": {},
           "designs": {d.name: d.notes for d in designs}}
    for model in (MODELS if args.model == "all" else [args.model]):
        rows = [r for d in designs for r in compare(d, model)]
        print(f"\n== model: {model}\n{table(rows)}")
        out["models"][model] = rows
    RESULTS.write_text(json.dumps(out, indent=1) + "\n")
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
