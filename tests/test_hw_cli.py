"""`python -m sqz hls`: the JSON contract, user errors (exit 2), and C simulation of the real SqueezeNet v1.0."""
from __future__ import annotations

import json
import shutil

import pytest

import hls4ml  # noqa: E402,F401  (a requirement: missing, these tests fail, never skip)

from sqz.cli import main  # noqa: E402
from tests.conftest import SAMPLE_DIR  # noqa: E402


def test_hls_squeezenet1_1_uniform_bits_writes_project_estimate_and_json(tmp_path, capsys):
    out, js = tmp_path / "v11", tmp_path / "v11.json"
    args = ["hls", "--model", "squeezenet1_1", "--bits", "8", "--board", "pynq-z2", "--out", str(out), "--json", str(js)]
    assert main(args) == 0
    result = json.loads(js.read_text())
    assert result["board"] == "pynq-z2" and result["csim"] is None and isinstance(result["fits"], bool)
    assert set(result["estimate"]) == {"dsp", "bram18", "uram", "lut", "ii_cycles", "clock_mhz", "fps"}
    names = [l["name"] for l in result["layers"]]
    assert {"conv1", "pool1", "fire2", "fire9", "conv10", "pool10"} <= set(names)
    fire2 = next(l for l in result["layers"] if l["name"] == "fire2")
    assert fire2["kernel"] == "sqz::fire" and fire2["reuse"] == fire2["estimate"]["reuse"]
    for f in ("manifest.json", "sqz_hls.tcl", "sqz_vivado.tcl", "firmware/sqz_top.cpp", "build_csim.sh"):
        assert (out / f).exists(), f
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["axi"]["out_beats"] == 125 and manifest["weights"].startswith("random placeholders")
    assert manifest["resources"] == {"source": "estimate", **result["estimate"], "fits": result["fits"], "wns_ns": None}
    assert manifest["control"] is None and manifest["weight_load"] is None     # free-running: no s_axilite
    vivado = (out / "sqz_vivado.tcl").read_text()     # board data from hw/boards.py
    assert "set board_part {tul.com.tw:pynq-z2:part0:1.0}" in vivado and "xilinx.com:ip:processing_system7" in vivado
    if shutil.which("vivado") is None:
        assert "vitis_hls -f sqz_hls.tcl" in capsys.readouterr().out   # what to run where Vivado exists
    assert main(args) == 0 and json.loads(js.read_text())["cache_hit"]   # nothing changed: reused


@pytest.mark.parametrize("extra, message", [
    (["--model", "squeezenet1_1", "--bits", "8", "--csim", "1", "--data", str(SAMPLE_DIR)], "--csim needs"),
    (["--model", "squeezenet1_0", "--bits", "8", "--csim", "1", "--data", str(SAMPLE_DIR)], "calibrated --spec"),
    (["--model", "squeezenet1_0", "--bits", "8", "--board", "nexys"], "unknown board"),
    (["--model", "squeezenet1_0", "--spec", "/nonexistent/spec.json"], "cannot read QuantSpec"),
    (["--model", "squeezenet1_0", "--bits", "40"], "--bits must be in 2..16"),
    (["--model", "squeezenet1_1", "--bits", "8", "--max-dsp", "0"], "--max-dsp must be >= 1"),
    (["--model", "squeezenet1_1", "--bits", "8", "--max-dsp", "100", "--reuse", "r.json"], "give one or the other"),
    (["--model", "squeezenet1_1", "--bits", "8", "--weights-in-uram", "fire2_squeeze1x1"],
     "a convolution of Fire module fire2"),
    (["--model", "squeezenet1_1", "--bits", "8", "--weights-in-uram", "pool1"], "no such layer with weights"),
    (["--model", "squeezenet1_0", "--spec", "s.json", "--input-size", "224"], "only with --bits"),
    (["--model", "squeezenet1_1", "--bits", "8", "--board", "pynq-z2", "--weights-in-uram", "conv10"],
     "pynq-z2 has none"),
])
def test_hls_user_errors_exit_2_with_a_message(tmp_path, capsys, extra, message):
    assert main(["hls", "--out", str(tmp_path / "p"), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "p").exists()


def test_hls_max_utilisation_folds_within_the_ceiling_and_names_bad_values(tmp_path, capsys):
    from hw.estimate import choose_reuse, estimate

    js = tmp_path / "o.json"
    base = ["hls", "--model", "squeezenet_cifar", "--bits", "8", "--board", "ultra96-v2", "--json", str(js)]
    assert main([*base, "--out", str(tmp_path / "p0")]) == 0
    fastest = json.loads(js.read_text())
    assert fastest["estimate"]["lut"] > 0.8 * 70_560          # the fastest folding that fits uses > 80 % LUT
    assert main([*base, "--out", str(tmp_path / "p1"), "--max-utilisation", "lut=0.8,bram18=0.9"]) == 0
    held = json.loads(js.read_text())
    limits = {"lut": 0.8, "bram18": 0.9}
    assert held["reuse"] == choose_reuse("squeezenet_cifar", "ultra96-v2", 8, utilisation_limit=limits)
    assert held["estimate"]["lut"] <= 0.8 * 70_560 and held["budget"]["met"]
    assert held["budget"]["max_utilisation_percent"]["lut"] == 80.0
    assert held["estimate"]["fps"] < fastest["estimate"]["fps"]
    e = estimate("squeezenet_cifar", "ultra96-v2", 8, held["reuse"])
    assert e.fps == pytest.approx(held["estimate"]["fps"], abs=0.01)     # the JSON rounds
    assert "LUT <= 80 %" in capsys.readouterr().out
    for bad, message in (("lut=1.5", "fraction in (0, 1]"), ("luts=0.8", "RES=F"), ("x", "not a number")):
        assert main([*base, "--out", str(tmp_path / "bad"), "--max-utilisation", bad]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_hls_max_dsp_budget_folds_within_it_and_uram_only_for_generated_or_assumed_load_paths(tmp_path, capsys):
    from hw.estimate import choose_reuse

    js = tmp_path / "o.json"
    base = ["hls", "--model", "squeezenet1_1", "--bits", "8", "--board", "zcu104", "--json", str(js)]
    assert main([*base, "--out", str(tmp_path / "p1"), "--max-dsp", "200"]) == 0
    result = json.loads(js.read_text())
    assert result["estimate"]["dsp"] <= 200 and result["budget"]["met"]
    assert {k: result["budget"][k] for k in ("fps", "max_dsp")} == {"fps": None, "max_dsp": 200}
    assert result["estimate"]["uram"] == 0 and result["estimate_assumptions"] == []   # block RAM suffices: no URAM
    assert result["weights_in_uram"]["layers"] == [] and not (tmp_path / "p1" / "weights_stream.bin").exists()
    assert result["reuse"] == choose_reuse("squeezenet1_1", "zcu104", 8, max_dsp=200)
    assert "budget: DSP <= 200 -> met" in capsys.readouterr().out

    # default (--weights-in-uram auto), fastest folding: conv10's weights in URAM through the generated load path
    assert main([*base, "--out", str(tmp_path / "p2")]) == 0
    loaded = json.loads(js.read_text())
    assert loaded["weights_in_uram"]["layers"] == ["conv10"] and loaded["estimate_assumptions"] == []
    assert loaded["estimate"]["uram"] > 0 and loaded["fits"] and loaded["estimate"]["fps"] > 600
    conv10 = next(l for l in loaded["layers"] if l["name"] == "conv10")
    assert conv10["kernel"] == "sqz::conv1x1_rw" and conv10["estimate"]["weights_in"] == "uram"
    assert (tmp_path / "p2" / "weights_stream.bin").stat().st_size == 8 * json.loads(
        (tmp_path / "p2" / "manifest.json").read_text())["weight_load"]["total_beats"]
    assert "weights of conv10 in UltraRAM: send" in capsys.readouterr().out

    # no generated load path, and an ASSUMED one for every weight ROM: labelled
    assert main([*base, "--out", str(tmp_path / "p3"), "--weights-in-uram", "none", "--assume-weight-load-path"]) == 0
    assumed = json.loads(js.read_text())
    assert assumed["estimate"]["uram"] > 0 and "WEIGHT-LOAD PATH" in assumed["estimate_assumptions"][0]
    assert assumed["weights_in_uram"]["layers"] == []
    out = capsys.readouterr().out
    assert "ASSUMES A WEIGHT-LOAD PATH" in out and "assume a weight-load path for more weights" in out


@pytest.mark.usefixtures("gxx")
def test_hls_csim_squeezenet1_0_is_bit_exact_against_the_emulator(tmp_path):
    """The real network (Deep Compression weights), a spec calibrated on 8 sample images, 1 image simulated."""
    from model.architecture import get_architecture
    from model.deep_compression import decode, float_params
    from model.imagenet import ImageFolderDataset
    from quant.calibrate import Calibration, make_spec

    arch = get_architecture("squeezenet1_0")
    cal = Calibration(arch, float_params(decode(arch=arch)))
    for x, _, _ in ImageFolderDataset(SAMPLE_DIR, limit=8).batches(8):
        cal.add_batch(x)
    make_spec(cal, 8, 8).save(tmp_path / "spec.json")
    js = tmp_path / "out.json"
    assert main(["hls", "--model", "squeezenet1_0", "--spec", str(tmp_path / "spec.json"), "--board", "zcu104",
                 "--out", str(tmp_path / "prj"), "--csim", "1", "--start", "50", "--data", str(SAMPLE_DIR),
                 "--json", str(js)]) == 0
    csim = json.loads(js.read_text())["csim"]
    assert csim["n"] == 1 and csim["bit_exact"] == 1 and csim["mismatched_logits"] == 0
