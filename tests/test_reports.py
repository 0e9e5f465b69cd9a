"""hw/reports.py on every real tool report in ../shared/data: each figure checked against the file."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from hw.reports import RESOURCES, ReportError, find_reports, read_report
from sqz.cli import main

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
HLS = DATA / "hls_reports"
PYNQ = DATA / "hls4ml_pynqz2_reference"
ROOTS = [HLS, PYNQ]

# CI has ../shared beside the checkout: without the real reports these tests fail, they never skip
assert HLS.is_dir() and PYNQ.is_dir(), f"the shared report data is not at {DATA}"

ALL = find_reports(ROOTS)
REPORT_KEYS = {"path", "source", "part", "tool_version", "clock_ns", "estimated_clock_ns", "latency_cycles",
               "ii_cycles", "totals", "modules", "wns_ns", "power_w", "power_components"}
MODULE_KEYS = {"name", "lut", "ff", "dsp", "bram18", "uram", "latency_cycles", "ii_cycles"}


def rel(p: Path) -> str:
    return str(Path(p).resolve().relative_to(DATA.resolve()))


# The figures each top-level report holds, read off the file (most are quoted in the folder READMEs).
EXPECTED = {
    "hls4ml_pynqz2_reference/vivado_hls_myproject_axi_csynth.rpt": dict(
        source="vivado_hls_csynth", part="xc7z020-clg400-1", tool_version="2019.2", clock_ns=5.0,
        estimated_clock_ns=4.367, latency_cycles=95, ii_cycles=95,
        totals=dict(lut=41606, ff=24483, dsp=9, bram18=4, uram=0), wns_ns=None, power_w=None),
    "hls4ml_pynqz2_reference/vivado_utilization_placed.rpt": dict(
        source="vivado_place_utilization", part="7z020clg400-1", tool_version="2019.2", clock_ns=None,
        latency_cycles=None, ii_cycles=None,
        # 4 RAMB36 + 6 RAMB18 = 14 RAMB18 halves (7 tiles); Zynq-7000 has no URAM row: None, not 0
        totals=dict(lut=20668, ff=23097, dsp=9, bram18=14, uram=None), wns_ns=None, power_w=None),
    "hls4ml_pynqz2_reference/vivado_timing_summary_routed.rpt": dict(
        source="vivado_timing", clock_ns=10.0, wns_ns=0.213, power_w=None, latency_cycles=None,
        totals=dict.fromkeys(RESOURCES)),
    "hls4ml_pynqz2_reference/vivado_power_routed.rpt": dict(
        source="vivado_power", part="xc7z020clg400-1", power_w=1.492, wns_ns=None, clock_ns=None,
        totals=dict.fromkeys(RESOURCES)),
    "hls_reports/hls4ml-tutorial-svhn-cnn/pruned_cnn/myproject_csynth.rpt": dict(
        source="vivado_hls_csynth", part="xcu250-figd2104-2L-e", tool_version="2020.1", clock_ns=5.0,
        estimated_clock_ns=4.363, latency_cycles=1044, ii_cycles=1028,
        totals=dict(lut=245466, ff=52549, dsp=5414, bram18=100, uram=0)),
    "hls_reports/hls4ml-tutorial-svhn-cnn/quantized_pruned_cnn/myproject_csynth.rpt": dict(
        source="vivado_hls_csynth", latency_cycles=1044, ii_cycles=1028,
        totals=dict(lut=263280, ff=43847, dsp=340, bram18=100, uram=0)),
    "hls_reports/hls4ml-tutorial-svhn-cnn/pruned_cnn/vivado_synth.rpt": dict(
        source="vivado_synth_utilization", part="xcu250figd2104-2L", tool_version="2020.1",
        totals=dict(lut=123948, ff=43435, dsp=5386, bram18=84, uram=0)),
    "hls_reports/hls4ml-tutorial-svhn-cnn/quantized_pruned_cnn/vivado_synth.rpt": dict(
        source="vivado_synth_utilization", totals=dict(lut=118931, ff=30702, dsp=353, bram18=68, uram=0)),
    "hls_reports/kv260-hls4ml-mnist-cnn/syn_report/myproject_csynth.rpt": dict(
        source="vitis_hls_csynth", part="xck26-sfvc784-2LV-c", tool_version="2025.2", clock_ns=5.0,
        estimated_clock_ns=4.29, latency_cycles=1580, ii_cycles=1569,
        totals=dict(lut=31379, ff=5981, dsp=0, bram18=35, uram=0)),
    "hls_reports/kv260-hls4ml-mnist-cnn/final_reports/impl_1_kernel_util_synthed.rpt": dict(
        source="vivado_synth_utilization", part="xck26", tool_version="2025.2",
        totals=dict(lut=9613, ff=5344, dsp=0, bram18=14, uram=0)),      # 7 tiles (36K) = 14 RAMB18
    "hls_reports/kv260-hls4ml-mnist-cnn/final_reports/impl_1_full_util_placed.rpt": dict(
        source="vivado_place_utilization", part="xck26-sfvc784-2LV-c", tool_version="2025.2",
        totals=dict(lut=13321, ff=11914, dsp=0, bram18=2 * 8 + 3, uram=0)),
    "hls_reports/lenet5-hls4ml-zu9eg/syn_report/myproject_csynth.rpt": dict(
        source="vitis_hls_csynth", part="xczu9eg-ffvb1156-2-e", tool_version="2023.2", clock_ns=5.0,
        estimated_clock_ns=3.647, latency_cycles=2374, ii_cycles=2356,
        totals=dict(lut=145061, ff=36198, dsp=18, bram18=58, uram=0)),
    "hls_reports/lenet5-hls4ml-zu9eg/syn_report/myproject_csynth.xml": dict(
        source="vitis_hls_csynth", part="xczu9eg-ffvb1156-2-e", tool_version="2023.2", clock_ns=5.0,
        estimated_clock_ns=3.647, latency_cycles=2374, ii_cycles=2356,
        totals=dict(lut=145061, ff=36198, dsp=18, bram18=58, uram=0)),
    "hls_reports/lenet5-hls4ml-zu9eg/syn_report/csynth.rpt": dict(
        source="vitis_hls_csynth", part="xczu9eg-ffvb1156-2-e", tool_version="2023.2",
        clock_ns=None, estimated_clock_ns=None,          # the summary report prints no clock
        latency_cycles=2374, ii_cycles=2356, totals=dict(lut=145061, ff=36198, dsp=18, bram18=58, uram=0)),
    "hls_reports/lenet5-hls4ml-zu9eg/syn_report/csynth.xml": dict(
        source="vitis_hls_csynth", clock_ns=5.0, estimated_clock_ns=3.647, latency_cycles=2374, ii_cycles=2356,
        totals=dict(lut=145061, ff=36198, dsp=18, bram18=58, uram=0)),
    "hls_reports/pixel-cnn-large/syn_report/myproject_csynth.rpt": dict(
        source="vitis_hls_csynth", part="xcvu13p-flga2577-2-e", tool_version="2023.1", clock_ns=5.0,
        estimated_clock_ns=4.316, latency_cycles=313, ii_cycles=304,
        totals=dict(lut=74382, ff=19488, dsp=928, bram18=10, uram=0)),
    "hls_reports/pixel-cnn-large/syn_report/csynth.rpt": dict(
        source="vitis_hls_csynth", latency_cycles=313, ii_cycles=304,
        totals=dict(lut=74382, ff=19488, dsp=928, bram18=10, uram=0)),
    "hls_reports/pixel-cnn-large/syn_report/csynth.xml": dict(
        source="vitis_hls_csynth", clock_ns=5.0, estimated_clock_ns=4.316, latency_cycles=313, ii_cycles=304,
        totals=dict(lut=74382, ff=19488, dsp=928, bram18=10, uram=0)),
}

# Files in the folders that are not reports of a kind read here (co-simulation, design size, handoffs).
NOT_REPORTS = {
    "hls_reports/aup-zu3-hls4ml-cifar10-hwh/xsa_extracted/sysdef.xml",
    "hls_reports/aup-zu3-hls4ml-cifar10-hwh/xsa_extracted/xsa.xml",
    "hls_reports/lenet5-hls4ml-zu9eg/sim_report/cosim_options.xml",
    "hls_reports/lenet5-hls4ml-zu9eg/sim_report/lat.rpt",
    "hls_reports/lenet5-hls4ml-zu9eg/sim_report/myproject_cosim.rpt",
    "hls_reports/lenet5-hls4ml-zu9eg/sim_report/result.transaction.rpt",
    "hls_reports/lenet5-hls4ml-zu9eg/syn_report/csynth_design_size.rpt",
    "hls_reports/lenet5-hls4ml-zu9eg/syn_report/csynth_design_size.xml",
    "hls_reports/mlperftiny-rn07-pynqz2/hdf_extracted/sysdef.xml",
    "hls_reports/pixel-cnn-large/syn_report/csynth_design_size.rpt",
    "hls_reports/pixel-cnn-large/syn_report/csynth_design_size.xml",
}


def test_folders_expand_to_every_report_and_only_reports():
    candidates = {rel(f) for root in ROOTS for f in root.rglob("*") if f.suffix in (".rpt", ".xml")}
    found = {rel(f) for f in ALL}
    assert found == candidates - NOT_REPORTS
    assert len(found) == 125
    assert set(EXPECTED) <= found


@pytest.mark.parametrize("path", ALL, ids=rel)
def test_every_real_report_parses_with_its_figures(path):
    r = read_report(path)
    assert set(r.to_json()) == REPORT_KEYS
    assert set(r.to_json()["totals"]) == set(RESOURCES)
    assert r.part and r.tool_version
    if "csynth" in r.source:
        assert all(isinstance(r.totals[k], int) for k in RESOURCES)
        assert isinstance(r.latency_cycles, int) and isinstance(r.ii_cycles, int)
        assert r.wns_ns is None and r.power_w is None
    for key, value in EXPECTED.get(rel(path), {}).items():
        assert getattr(r, key) == value, key


def test_power_report_components_read_off_the_file():
    c = read_report(PYNQ / "vivado_power_routed.rpt").power_components
    assert list(c) == ["clocks", "slice_logic", "lut_as_logic", "carry4", "register", "lut_as_shift_register",
                       "f7_f8_muxes", "others", "lut_as_distributed_ram", "signals", "block_ram", "dsps", "ps7",
                       "static_power"]
    assert c["ps7"] == {"w": 1.256, "used": 1} and c["static_power"] == {"w": 0.137, "used": None}
    assert c["dsps"] == {"w": 0.006, "used": 9} and c["block_ram"] == {"w": 0.001, "used": 7}
    assert c["lut_as_logic"] == {"w": 0.016, "used": 20365}
    assert c["lut_as_shift_register"]["w"] == 0.001          # "<0.001": its bound
    top = ("clocks", "slice_logic", "signals", "block_ram", "dsps", "ps7", "static_power")
    assert abs(sum(c[k]["w"] for k in top) - 1.492) < 0.0015  # the rows add up to the total (rounding)
    for p in ALL:
        if read_report(p).source != "vivado_power":
            assert read_report(p).power_components is None


def test_power_report_without_its_components_table_is_an_error(tmp_path):
    text = (PYNQ / "vivado_power_routed.rpt").read_text()
    cut = tmp_path / "power.rpt"
    # the section renamed, in the Table of Contents too (so only the components reader can notice)
    cut.write_text(text.replace("1.1 On-Chip Components", "1.1 Other things"))
    with pytest.raises(ReportError, match=r"power\.rpt: no 'On-Chip Components' section"):
        read_report(cut)


def _pairs():
    """Every per-module csynth .rpt with the .xml the same run wrote beside it."""
    return [p for p in ALL if p.name.endswith("_csynth.rpt") and p.with_suffix(".xml").exists()]


@pytest.mark.parametrize("rpt", _pairs(), ids=rel)
def test_csynth_rpt_and_xml_of_one_run_agree(rpt):
    a, b = read_report(rpt), read_report(rpt.with_suffix(".xml"))
    for key in ("source", "part", "tool_version", "clock_ns", "estimated_clock_ns", "latency_cycles",
                "ii_cycles", "totals"):
        assert getattr(a, key) == getattr(b, key), key


def test_pairs_cover_both_vitis_designs():
    assert len(_pairs()) == 55          # 28 + 27 per-module reports, each with its .xml
    assert {p.parents[1].name for p in _pairs()} == {"lenet5-hls4ml-zu9eg", "pixel-cnn-large"}


@pytest.mark.parametrize("design", ["lenet5-hls4ml-zu9eg", "pixel-cnn-large"])
def test_hierarchical_csynth_rpt_modules_match_their_own_reports(design):
    folder = HLS / design / "syn_report"
    summary = read_report(folder / "csynth.rpt")
    checked = 0
    for m in summary.modules:
        own = folder / f"{m.name}_csynth.rpt"
        if not own.exists():
            continue
        r = read_report(own)
        assert (m.lut, m.ff, m.dsp, m.bram18, m.uram) == tuple(r.totals[k] for k in ("lut", "ff", "dsp", "bram18", "uram"))
        assert (m.latency_cycles, m.ii_cycles) == (r.latency_cycles, r.ii_cycles)
        checked += 1
    assert checked >= 20


def test_module_rows_read_off_the_files():
    r = read_report(PYNQ / "vivado_hls_myproject_axi_csynth.rpt")
    mods = {m.name: m for m in r.modules}
    core = mods["myproject"]        # grp_myproject_fu_234: its latency row and its utilization row merged
    assert (core.bram18, core.dsp, core.ff, core.lut, core.uram) == (4, 9, 21312, 34823, 0)
    assert (core.latency_cycles, core.ii_cycles) == (55, 15)
    assert mods["myproject_axi_fpext_32ns_64_3_1"].lut == 138
    assert mods["myproject_axi_fpext_32ns_64_3_1"].latency_cycles is None   # no latency row: None, not 0

    r = read_report(HLS / "kv260-hls4ml-mnist-cnn/syn_report/myproject_csynth.rpt")
    dense = next(m for m in r.modules if m.name.startswith("dense_array"))
    assert (dense.lut, dense.ff, dense.latency_cycles, dense.ii_cycles) == (23265, 2322, 32, 32)
    conv0 = next(m for m in r.modules if "config3" in m.name)
    assert (conv0.latency_cycles, conv0.ii_cycles) == (1570, 1569)

    r = read_report(HLS / "lenet5-hls4ml-zu9eg/syn_report/csynth.rpt")
    pool = next(m for m in r.modules if m.name == "pooling2d_cl_array_ap_fixed_6u_array_ap_fixed_8_1_4_0_0_6u_config5_s")
    assert (pool.latency_cycles, pool.ii_cycles, pool.ff, pool.lut) == (1155, 1155, 808, 1363)
    assert not any(m.name.startswith("ReadInput") for m in r.modules)       # loops are not modules

    r = read_report(HLS / "pixel-cnn-large/syn_report/csynth.xml")
    conv2 = next(m for m in r.modules if m.name == "conv_2d_cl_array_ap_fixed_8u_array_ap_fixed_16_6_5_3_0_13u_config6_s")
    assert (conv2.dsp, conv2.lut) == (401, 33786)

    r = read_report(HLS / "kv260-hls4ml-mnist-cnn/final_reports/impl_1_kernel_util_synthed.rpt")
    assert {m.name: m.lut for m in r.modules} == {"Platform": 4727, "myproject_axi_stream": 9613,
                                                  "myproject_axi_stream_1": 9613}


TRUNCATE = [next(p for p in ALL if rel(p) == k) for k in (
    "hls4ml_pynqz2_reference/vivado_hls_myproject_axi_csynth.rpt",
    "hls4ml_pynqz2_reference/vivado_utilization_placed.rpt",
    "hls4ml_pynqz2_reference/vivado_timing_summary_routed.rpt",
    "hls4ml_pynqz2_reference/vivado_power_routed.rpt",
    "hls_reports/hls4ml-tutorial-svhn-cnn/pruned_cnn/myproject_csynth.rpt",
    "hls_reports/hls4ml-tutorial-svhn-cnn/pruned_cnn/vivado_synth.rpt",
    "hls_reports/kv260-hls4ml-mnist-cnn/syn_report/myproject_csynth.rpt",
    "hls_reports/kv260-hls4ml-mnist-cnn/final_reports/impl_1_kernel_util_synthed.rpt",
    "hls_reports/kv260-hls4ml-mnist-cnn/final_reports/impl_1_full_util_placed.rpt",
    "hls_reports/lenet5-hls4ml-zu9eg/syn_report/csynth.rpt",
    "hls_reports/lenet5-hls4ml-zu9eg/syn_report/csynth.xml",
    "hls_reports/lenet5-hls4ml-zu9eg/syn_report/myproject_csynth.xml",
    "hls_reports/pixel-cnn-large/syn_report/pooling2d_cl_array_ap_ufixed_8u_array_ap_fixed_16_6_5_3_0_8u_config5_s_csynth.rpt",
)]


@pytest.mark.parametrize("path", TRUNCATE, ids=rel)
def test_first_half_of_a_real_report_is_an_error_naming_the_file(path, tmp_path):
    text = path.read_text()
    cut = tmp_path / path.name
    cut.write_text(text[:len(text) // 2])
    with pytest.raises(ReportError, match=str(cut).replace(".", r"\.")):
        read_report(cut)


def test_a_csynth_report_without_its_utilization_section_is_an_error(tmp_path):
    text = (PYNQ / "vivado_hls_myproject_axi_csynth.rpt").read_text()
    cut = tmp_path / "myproject_csynth.rpt"
    cut.write_text(text[:text.index("== Utilization Estimates")])
    with pytest.raises(ReportError, match=r"myproject_csynth\.rpt: no 'Utilization Estimates' section"):
        read_report(cut)


@pytest.mark.parametrize("name", ["notes.rpt", "README.md"])
def test_an_unrelated_file_is_an_error_naming_it(name, tmp_path):
    f = tmp_path / name
    f.write_text("Timing closure notes\nLUT 1234, FF 5678\n")
    with pytest.raises(ReportError, match=f"{name}: not a report"):
        read_report(f)


def test_a_real_non_report_file_named_explicitly_is_an_error():
    f = HLS / "lenet5-hls4ml-zu9eg/sim_report/myproject_cosim.rpt"
    with pytest.raises(ReportError, match="myproject_cosim.rpt: not a report"):
        read_report(f)


def test_a_folder_without_reports_is_an_error(tmp_path):
    (tmp_path / "notes.rpt").write_text("nothing here\n")
    with pytest.raises(ReportError, match="no synthesis, utilization, timing or power report"):
        find_reports([tmp_path])


def test_cli_writes_one_entry_per_report_with_the_contract_keys(tmp_path, capsys):
    out = tmp_path / "reports.json"
    single = HLS / "kv260-hls4ml-mnist-cnn/syn_report/myproject_csynth.rpt"
    assert main(["reports", str(PYNQ), str(single), "--json", str(out)]) == 0
    payload = json.loads(out.read_text())
    assert set(payload) == {"reports"}
    entries = payload["reports"]
    assert [Path(e["path"]).name for e in entries] == [
        "vivado_hls_myproject_axi_csynth.rpt", "vivado_power_routed.rpt", "vivado_timing_summary_routed.rpt",
        "vivado_utilization_placed.rpt", "myproject_csynth.rpt"]
    for e in entries:
        assert set(e) == REPORT_KEYS
        assert set(e["totals"]) == set(RESOURCES)
        assert all(set(m) == MODULE_KEYS for m in e["modules"])
    by_name = {Path(e["path"]).name: e for e in entries}
    assert by_name["vivado_utilization_placed.rpt"]["totals"]["uram"] is None
    assert by_name["vivado_timing_summary_routed.rpt"]["wns_ns"] == 0.213
    assert by_name["vivado_power_routed.rpt"]["power_w"] == 1.492
    assert by_name["vivado_power_routed.rpt"]["totals"]["lut"] is None
    printed = capsys.readouterr().out
    assert "vivado_place_utilization" in printed and "5 report(s) read" in printed


def test_cli_folder_expands_recursively(tmp_path):
    out = tmp_path / "all.json"
    assert main(["reports", str(HLS), "--json", str(out)]) == 0
    assert len(json.loads(out.read_text())["reports"]) == len([p for p in ALL if HLS.resolve() in p.resolve().parents])


def test_cli_error_names_the_file(tmp_path, capsys):
    bad = tmp_path / "x.rpt"
    bad.write_text("hello\n")
    assert main(["reports", str(bad)]) == 2
    assert f"{bad}: not a report" in capsys.readouterr().err
