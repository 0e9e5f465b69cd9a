"""`sqz build` (hw/build.py) on a real generated project: the dry run where the tools are absent, and the
full flow with stand-in `vitis_hls` / `vivado` executables that behave as the tools do at their interface
(run the script they are given in the project folder, print a log, leave the outputs sqz_vivado.tcl names,
or fail with an ERROR line). They count their own runs, so resuming is checked too."""
from __future__ import annotations

import hashlib
import json
import os
import stat
import time

import pytest

import hls4ml  # noqa: E402,F401  (a requirement: missing, these tests fail, never skip)

from host.manifest import Manifest  # noqa: E402
from hw.build import BuildError, build  # noqa: E402
from tests.tiny_net import REUSE  # noqa: E402

BIT = b"not a real bitstream: written by the stand-in vivado"


@pytest.fixture(scope="module")
def project(tiny, tiny_keras, tmp_path_factory):
    from hw.convert import plan_design
    from hw.project import build_project

    design = plan_design(tiny_keras, tiny["spec"], tiny["arch"], reuse=REUSE, board="kv260", loadable=("conv10",))
    return build_project(design, tmp_path_factory.mktemp("build") / "tiny", compile=False)


def stand_in(folder, name, body):
    """An executable `name` in `folder`: a shell script that counts its runs in ./<name>.runs."""
    path = folder / name
    path.write_text("#!/bin/sh\n[ \"$1\" = \"-version\" ] && { echo \"%s v2022.2 (64-bit)\"; exit 0; }\n"
                    "echo run >> \"$PWD/%s.runs\"\n%s\n" % (name, name, body))
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def tools(folder, hls_ok=True):
    hls = ('[ "$1" = "-f" ] && [ -f "$2" ] || { echo "ERROR: [HLS 200-70] no script $2"; exit 1; }\n'
           'echo "INFO: [HLS 200-10] Running $2"\n'
           + ('mkdir -p sqz_hls_prj/solution1/impl/ip && echo "INFO: [HLS 200-111] Finished Command csynth_design"'
              if hls_ok else 'echo "ERROR: [HLS 207-3776] use of undeclared identifier \'sqz_w_conv10\'"; exit 1'))
    vivado = ('[ "$3" = "-source" ] && [ -f "$4" ] || { echo "ERROR: [Common 17-69] no script"; exit 1; }\n'
              '[ -d sqz_hls_prj/solution1/impl/ip ] || { echo "ERROR: [IP_Flow 19-3461] no IP repository"; exit 1; }\n'
              'echo "INFO: [Vivado 12-1817] write_bitstream"; mkdir -p bitstream\n'
              "printf '%s' > bitstream/sqz.bit\n"
              "echo '<EDKSYSTEM/>' > bitstream/sqz.hwh") % BIT.decode()
    return {"vitis_hls": stand_in(folder, "vitis_hls", hls), "vitis-run": None,
            "vivado": stand_in(folder, "vivado", vivado)}


def runs(project, name) -> int:
    f = project.path / f"{name}.runs"
    return len(f.read_text().splitlines()) if f.exists() else 0


def test_dry_run_writes_the_board_folder_and_says_what_to_run(project, tmp_path):
    out = tmp_path / "bitstreams" / "kv260"
    lines = []
    result = build(project.path, "kv260", out, log=lines.append, tools={"vitis_hls": None, "vitis-run": None,
                                                                       "vivado": None})
    assert not result.built and result.bitstream is None and result.steps == {"hls": "not run", "vivado": "not run"}
    assert "nothing was synthesised" in result.instructions and "python -m sqz build --project" in result.instructions
    m = Manifest.load(out)
    assert m.bit_sha256 is None and m.board == "kv260" and m.key == project.manifest.key
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "spec.json", "spec.weights.npz",
                                                     "weights_stream.bin"]
    assert (out / "weights_stream.bin").read_bytes() == (project.path / "weights_stream.bin").read_bytes()
    assert m.weight_load is not None and m.control is not None and m.control.mode == 0x10
    assert not list(out.glob("*.bit")) and (project.path / "build.sh").exists()


def test_full_build_with_stand_in_tools_copies_bit_and_hwh_and_resumes(project, tmp_path):
    out = tmp_path / "kv260"
    fake = tools(tmp_path)
    lines = []
    result = build(project.path, "kv260", out, log=lines.append, tools=fake)
    assert result.built and result.steps == {"hls": "done", "vivado": "done"}
    assert (out / "tiny_fire.bit").read_bytes() == BIT and (out / "tiny_fire.hwh").exists()   # same stem
    m = Manifest.load(out)
    assert m.bit_sha256 == hashlib.sha256(BIT).hexdigest()
    assert (m.tools.vitis_hls, m.tools.vivado) == ("vitis_hls v2022.2 (64-bit)", "vivado v2022.2 (64-bit)")
    assert any("[hls 0:00:0" in l and "Finished Command csynth_design" in l for l in lines)   # streamed, timed
    assert (project.path / "build" / "vivado.log").read_text().count("write_bitstream") == 1
    assert (runs(project, "vitis_hls"), runs(project, "vivado")) == (1, 1)
    again = build(project.path, "kv260", out, log=lines.append, tools=fake)     # resumes: nothing re-run
    assert again.built and again.steps == {"hls": "skipped (done before)", "vivado": "skipped (done before)"}
    assert (runs(project, "vitis_hls"), runs(project, "vivado")) == (1, 1)
    (project.path / "build" / "vivado.done").unlink()                           # only the second step again
    build(project.path, "kv260", out, log=lines.append, tools=fake)
    assert (runs(project, "vitis_hls"), runs(project, "vivado")) == (1, 2)


def test_a_failing_step_stops_with_the_tools_error_line_and_claims_nothing(tiny, tiny_keras, tmp_path):
    from hw.convert import plan_design
    from hw.project import build_project

    design = plan_design(tiny_keras, tiny["spec"], tiny["arch"], reuse=REUSE, board="zcu104")
    proj = build_project(design, tmp_path / "p", compile=False)
    out = tmp_path / "zcu104"
    with pytest.raises(BuildError, match=r"step hls failed .*ERROR: \[HLS 207-3776\] use of undeclared identifier"):
        build(proj.path, "zcu104", out, log=lambda l: None, tools=tools(tmp_path, hls_ok=False))
    assert not out.exists() and not (proj.path / "build" / "hls.done").exists()


def test_a_hanging_tool_meets_its_deadline(project, tmp_path):
    slow = {"vitis_hls": stand_in(tmp_path, "vitis_hls", "sleep 30"), "vitis-run": None,
            "vivado": stand_in(tmp_path, "vivado", "true")}
    for stamp in (project.path / "build").glob("*.done"):      # an earlier test finished the steps
        stamp.unlink()
    t0 = time.monotonic()
    with pytest.raises(BuildError, match=r"step hls: no result within 1 s; the tool was stopped"):
        build(project.path, "kv260", tmp_path / "o", log=lambda l: None, tools=slow, step_timeout_s=1)
    assert time.monotonic() - t0 < 10             # stopped at the deadline, not when the tool would have ended


def test_bad_inputs_are_one_clear_error(project, tmp_path):
    with pytest.raises(BuildError, match="generated for kv260, not zcu104"):
        build(project.path, "zcu104", tmp_path / "a", tools={})
    with pytest.raises(BuildError, match="not a usable sqz HLS project"):
        build(tmp_path, "kv260", tmp_path / "b", tools={})
    other = tmp_path / "other"
    other.mkdir()
    (other / "manifest.json").write_text(json.dumps({**project.manifest.to_json(), "key": "0" * 64}))
    with pytest.raises(BuildError, match="holds the build of another design"):
        build(project.path, "kv260", other, tools={"vitis_hls": None, "vitis-run": None, "vivado": None})
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(BuildError, match="holds no manifest.json; refusing"):
        build(project.path, "kv260", foreign, tools={})


def test_cli_build_dry_run(project, tmp_path, capsys, monkeypatch):
    from sqz.cli import main

    monkeypatch.setenv("PATH", os.defpath if "vivado" not in os.defpath else "")
    assert main(["build", "--project", str(project.path), "--board", "kv260", "--out", str(tmp_path / "kv260"),
                 "--json", str(tmp_path / "b.json")]) == 0
    printed = capsys.readouterr().out
    assert "no bitstream exists" in printed and "bit_sha256 = null" in printed
    data = json.loads((tmp_path / "b.json").read_text())
    assert data["built"] is False and data["bitstream"] is None and data["board"] == "kv260"
    assert main(["build", "--project", str(project.path), "--board", "pynq-z2", "--out", str(tmp_path / "z")]) == 2


def test_a_build_reads_its_reports_back_into_the_manifest(tiny, tiny_keras, tmp_path):
    """The stand-in tools leave REAL reports where the scripts have the real tools write them (those of the
    PYNQ-Z2 hls4ml reference design in ../shared/data): the manifest's resources then come from them."""
    from hw.convert import plan_design
    from hw.project import build_project
    from hw.reports import read_report

    ref = __import__("pathlib").Path(__file__).resolve().parents[1].parent / "shared" / "data" / \
        "hls4ml_pynqz2_reference"
    design = plan_design(tiny_keras, tiny["spec"], tiny["arch"], reuse=REUSE, board="pynq-z2")
    proj = build_project(design, tmp_path / "p", compile=False)
    fake = tools(tmp_path)
    with open(fake["vitis_hls"], "a") as f:
        f.write(f"mkdir -p sqz_hls_prj/solution1/syn/report && cp {ref}/vivado_hls_myproject_axi_csynth.rpt "
                f"sqz_hls_prj/solution1/syn/report/sqz_top_csynth.rpt\n")
    with open(fake["vivado"], "a") as f:
        f.write(f"mkdir -p reports && cp {ref}/vivado_utilization_placed.rpt reports/utilization_placed.rpt && "
                f"cp {ref}/vivado_timing_summary_routed.rpt reports/timing_summary.rpt && "
                f"cp {ref}/vivado_power_routed.rpt reports/power.rpt\n")
    lines = []
    result = build(proj.path, "pynq-z2", tmp_path / "out", log=lines.append, tools=fake)
    placed = read_report(ref / "vivado_utilization_placed.rpt")
    timing = read_report(ref / "vivado_timing_summary_routed.rpt")
    csynth = read_report(ref / "vivado_hls_myproject_axi_csynth.rpt")
    r = Manifest.load(tmp_path / "out").resources
    assert r.source == "vivado_place_utilization + vivado_hls_csynth (interval)"
    assert (r.lut, r.dsp, r.bram18) == (placed.totals["lut"], placed.totals["dsp"], placed.totals["bram18"])
    assert r.ii_cycles == csynth.ii_cycles and r.wns_ns == timing.wns_ns
    assert r.clock_mhz == pytest.approx(1000.0 / timing.clock_ns)
    assert {row["figure"] for row in result.comparison} >= {"lut", "dsp", "bram18", "ii_cycles"}
    assert any(l.startswith("[reports] lut") for l in lines)


def test_cli_bad_inputs_are_one_line_exit_2_and_leave_nothing_half_written(project, tmp_path, capsys, monkeypatch):
    """The issue's bad inputs through `python -m sqz`: not an sqz project, another design's build folder, an
    unknown board, a report of a kind it does not know; each is one `error:` line, exit 2, and no output."""
    from sqz.cli import main

    monkeypatch.setenv("PATH", os.defpath if "vivado" not in os.defpath else "")

    def one_line():
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and "Traceback" not in err[0], err
        return err[0]

    not_sqz = tmp_path / "not_sqz"
    not_sqz.mkdir()
    (not_sqz / "myproject.cpp").write_text("// someone else's HLS project\n")
    assert main(["build", "--project", str(not_sqz), "--board", "kv260", "--out", str(tmp_path / "o1")]) == 2
    assert "not a usable sqz HLS project" in one_line() and not (tmp_path / "o1").exists()

    other = tmp_path / "other"
    other.mkdir()
    foreign = json.dumps({**project.manifest.to_json(), "key": "0" * 64})
    (other / "manifest.json").write_text(foreign)
    assert main(["build", "--project", str(project.path), "--board", "kv260", "--out", str(other)]) == 2
    assert "holds the build of another design" in one_line()
    assert [p.name for p in other.iterdir()] == ["manifest.json"] and (other / "manifest.json").read_text() == foreign

    assert main(["build", "--project", str(project.path), "--board", "nexys", "--out", str(tmp_path / "o2")]) == 2
    assert "nexys" in one_line() and not (tmp_path / "o2").exists()

    bad = tmp_path / "notes.rpt"
    bad.write_text("Copyright 1986-2022 Xilinx, Inc.\n| Command : report_something_else\n")
    assert main(["reports", str(bad), "--json", str(tmp_path / "r.json")]) == 2
    assert str(bad) in one_line() and not (tmp_path / "r.json").exists()


def test_the_per_layer_table_pairs_each_layer_with_its_csynth_module(tmp_path):
    """hw/build.py's per-layer estimate-vs-C-synthesis table on a REAL hls4ml project: the pixel CNN's generated
    myproject.cpp and its csynth.rpt (../shared/data/hls_reports/pixel-cnn-large), its estimate from
    benchmarks/real_designs.py; each layer's module is found by its config<N>, the figures are the module's."""
    import importlib.util
    import shutil
    import sys
    from pathlib import Path

    from hw.build import _layers_vs_csynth
    from hw.project import ESTIMATE_FILE
    from hw.reports import read_report

    root = Path(__file__).resolve().parents[1]
    data = root.parent / "shared" / "data" / "hls_reports" / "pixel-cnn-large"
    spec = importlib.util.spec_from_file_location("real_designs", root / "benchmarks" / "real_designs.py")
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench
    spec.loader.exec_module(bench)
    est = bench.estimate_design(bench.pixel_cnn(), "fitted")
    (tmp_path / "firmware").mkdir()
    shutil.copy(data / "config" / "myproject.cpp", tmp_path / "firmware" / "myproject.cpp")
    (tmp_path / ESTIMATE_FILE).write_text(json.dumps(est.to_json()))
    lines = []
    rows = {r["layer"]: r for r in _layers_vs_csynth(tmp_path, read_report(data / "syn_report" / "csynth.rpt"),
                                                      lines.append)}
    by_name = {l.name: l for l in est.layers}
    for layer, dsp in (("conv1", 39), ("conv2", 401), ("dense1", 488), ("dense2", 0)):
        assert rows[layer]["csynth_dsp"] == dsp and rows[layer]["estimate_dsp"] == by_name[layer].dsp
    assert rows["conv1"]["modules"] == ["conv_2d_cl_array_ap_fixed_1u_array_ap_fixed_16_6_5_3_0_8u_config2_s"]
    assert rows["conv2"]["csynth_lut"] == 33786 and rows["conv2"]["csynth_ii_cycles"] == 146
    assert rows["maxpool1"]["estimate_dsp"] is None and rows["maxpool1"]["csynth_lut"] == 1541   # named pool1 here
    assert any("conv2" in l and "401" in l for l in lines)
