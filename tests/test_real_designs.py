"""The estimator against real hls4ml designs (benchmarks/real_designs.py): the held-out errors measured with
the fitted model must not get worse. Real figures are read from the report files, not typed in."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks" / "real_designs.py"
DATA = ROOT.parent / "shared" / "data" / "hls_reports"

# CI has ../shared beside the checkout: without the real reports these tests fail, they never skip
assert DATA.is_dir(), f"the real hls4ml reports are not at {DATA}"

# held-out |relative error| measured (BENCHMARKS.md, issue 10), with a little slack; None: not estimated
HELD_OUT_LIMITS = {
    ("svhn_6bit", "lut"): 0.04, ("svhn_6bit", "dsp"): 0.63, ("svhn_6bit", "bram18"): 0.22,
    ("svhn_6bit", "ii_cycles"): 0.01,
    ("kv260_mnist", "lut"): 0.80, ("kv260_mnist", "bram18"): 0.08, ("kv260_mnist", "ii_cycles"): 0.01,
    ("lenet5", "dsp"): 0.02,
    ("pixel_cnn", "ii_cycles"): 0.02,
}


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("real_designs", BENCH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod        # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def rows(bench):
    return {(r["design"], r["figure"]): r for d in bench.all_designs() for r in bench.compare(d, "fitted")}


def test_held_out_errors_of_the_fitted_model_do_not_regress(rows):
    for key, limit in HELD_OUT_LIMITS.items():
        r = rows[key]
        assert r["set"] == "held-out"
        assert abs(r["rel_error"]) <= limit, f"{key}: estimate {r['estimate']} vs real {r['real']}"


def test_pixel_cnn_dsp_is_the_rule_source_not_held_out(bench, rows):
    assert bench.DSP_RULE_SET == ("pixel_cnn",)
    r = rows[("pixel_cnn", "dsp")]
    assert r["set"] == "rule source" and abs(r["rel_error"]) <= 0.05


def test_kv260_dsp_is_zero_like_vivado(rows):
    assert rows[("kv260_mnist", "dsp")]["real"] == 0 and rows[("kv260_mnist", "dsp")]["estimate"] == 0


def test_the_fit_uses_only_svhn_16bit_and_reproduces_it(bench, rows):
    assert bench.FIT_SET == ("svhn_16bit",)
    assert abs(rows[("svhn_16bit", "lut")]["rel_error"]) < 0.01          # const_adder_lut is fitted on it
    assert abs(rows[("svhn_16bit", "dsp")]["rel_error"]) < 0.10          # no DSP parameter fitted: the prior
    assert rows[("svhn_16bit", "lut")]["source"] == "vivado_synth_utilization"


def _module_dsp(report, fragment):
    from hw.reports import read_report

    return next(m.dsp for m in read_report(report).modules if fragment in m.name)


def test_csd_rule_gives_each_module_the_dsps_of_its_bind_op_table(bench):
    """Per module, from the real weights: pixel CNN's convs and dense (16-bit data: every constant with >= 3 CSD
    digits a DSP; 10-bit data: none) and LeNet-5's two normalize layers (scales from the real model)."""
    from hw.ops.cost import CostOptions

    opt = CostOptions(const_mult="csd", prune_zero_weights=True)
    pix = {op.name: op for op in bench.configured(bench.pixel_cnn(), "fitted")}
    rpt = DATA / "pixel-cnn-large" / "syn_report" / "csynth.rpt"
    assert pix["conv1"].engines()[0].dsp(opt) == _module_dsp(rpt, "config2_mult") == 39
    assert abs(pix["conv2"].engines()[0].dsp(opt) - _module_dsp(rpt, "config6_mult")) <= 0.05 * 401
    assert abs(pix["dense1"].engines()[0].dsp(opt) - _module_dsp(rpt, "config13_s")) <= 0.05 * 488
    assert pix["dense2"].engines()[0].dsp(opt) == _module_dsp(rpt, "config16_s") == 0
    lenet = {op.name: op for op in bench.configured(bench.lenet5(), "fitted")}
    rpt = DATA / "lenet5-hls4ml-zu9eg" / "syn_report" / "csynth.rpt"
    assert lenet["bn_dense1"].extra_dsp(opt) == _module_dsp(rpt, "normalize_array_ap_fixed_16u_array_ap_fixed_34") == 0
    assert lenet["bn_dense2"].extra_dsp(opt) == _module_dsp(rpt, "normalize_array_ap_fixed_16u_array_ap_fixed_30") == 8


def test_csd_digits_and_constant_widths():
    from hw.ops.cost import const_bits, csd_digits, csd_multipliers

    assert csd_digits([0, 1, 3, 7, 11, 21, -23, 255]).tolist() == [0, 1, 2, 2, 3, 3, 3, 2]
    assert const_bits([5, -5, 12, -1, -9, 1024]).tolist() == [3, 4, 2, 1, 5, 1]
    # 11 and 21 stay multipliers; with 8-bit data only a constant wider than 10 bits goes to a DSP
    assert csd_multipliers([11, 21, 4, 0, 1365], 8) == (3, 1)
    assert csd_multipliers([11, 21, 4, 0], 16) == (2, 2)


def test_an_unknown_constant_product_rule_is_an_error():
    from hw.ops.base import UnsupportedModelError
    from hw.ops.cost import CostOptions

    with pytest.raises(UnsupportedModelError, match="const_mult must be one of"):
        CostOptions(const_mult="CSD")


def test_real_figures_come_from_the_reports(bench):
    from hw.reports import read_report

    d = bench.svhn(6)
    util = read_report(DATA / "hls4ml-tutorial-svhn-cnn" / "quantized_pruned_cnn" / "vivado_synth.rpt")
    assert d.real["lut"][0] == util.totals["lut"] and d.real["bram18"][0] == util.totals["bram18"]


def test_the_fitted_options_leave_the_default_model_alone():
    from hw.ops.cost import CostOptions

    c = CostOptions()
    assert (c.prune_zero_weights, c.const_dsp_share, c.const_lut_bits, c.const_adder_lut, c.const_mult) == \
        (False, 1.0, 0, None, "share")


def test_adder_tree_widths_keep_accumulator_wide_sums_and_narrow_the_others():
    from hw.ops.cost import CostOptions, Engine
    from quant.fixed_point import FixedFormat

    def engine(bits, acc):
        f = FixedFormat(bits, 2, True, "AP_TRN", "AP_WRAP")
        return Engine("e", 64, 8, 1, 1, f, f, FixedFormat(acc, 8, True, "AP_TRN", "AP_WRAP"), acc)

    on = CostOptions(adder_tree_widths=True)
    wide = engine(16, 16)          # products cast to a 16-bit accumulator: every adder 16 bits, as before
    assert wide.adder_bits(on) == wide.adder_bits(CostOptions()) == 64 * 8 * 16
    narrow = engine(4, 16)         # 8 live bits per product: 32 adders at 9, 16 at 10, ... per output
    per_output = 32 * 9 + 16 * 10 + 8 * 11 + 4 * 12 + 2 * 13 + 1 * 14 + 16
    assert narrow.adder_bits(on) == 8 * per_output < narrow.adder_bits(CostOptions())
