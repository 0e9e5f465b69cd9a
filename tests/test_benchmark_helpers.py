"""Helpers of benchmark scripts whose figures BENCHMARKS.md cites: the energy scaling, the width names, the
training-budget and distillation comparisons."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import cifar_energy  # noqa: E402
import cifar_finetune  # noqa: E402

from hw.reports import read_report  # noqa: E402


@pytest.fixture(scope="module")
def components():
    return read_report(cifar_energy.POWER_REPORT).power_components


def test_scaling_the_reference_by_its_own_resources_gives_its_total(components):
    # the jet tagger's own LUTs (logic + shift registers + distributed RAM), DSPs and RAMB18 halves
    p = cifar_energy.scaled_power(components, lut=20668, dsp=9, bram18=14)
    assert p["reference_resources"] == {"lut": 20668, "dsp": 9, "bram36_tiles": 7}
    assert abs(p["total_w"] - 1.492) < 0.0015


def test_scaled_power_grows_with_each_resource_and_keeps_the_processor(components):
    base = cifar_energy.scaled_power(components, lut=20668, dsp=9, bram18=14)
    for kw, part in (({"lut": 41336, "dsp": 9, "bram18": 14}, "signals"),
                     ({"lut": 20668, "dsp": 18, "bram18": 14}, "dsps"),
                     ({"lut": 20668, "dsp": 9, "bram18": 28}, "block_ram")):
        p = cifar_energy.scaled_power(components, **kw)
        assert p["components_w"][part] == pytest.approx(2 * base["components_w"][part])
        assert p["components_w"]["ps7"] == 1.256 and p["components_w"]["static_power"] == 0.137
        assert p["total_w"] > base["total_w"]


def test_the_rn07_board_measurement_is_read_off_its_log():
    m = cifar_energy.rn07_measurement(cifar_energy.RN07_POWER)
    assert m["energy_mj"] == pytest.approx(44.19054)
    assert 1.6 < m["power_w_median"] < 1.63 and 36 < m["inferences_per_s_median"] < 37


def test_a_log_without_energy_lines_is_an_error_naming_it(tmp_path):
    f = tmp_path / "power.txt"
    f.write_text("ulp-ml: nothing measured\n")
    with pytest.raises(SystemExit, match="power.txt: no median energy"):
        cifar_energy.rn07_measurement(f)


@pytest.mark.parametrize("token, parsed", [("6", ("6", 6, 6)), ("w4a6", ("w4a6", 4, 6)), ("W6A4", ("w6a4", 6, 4))])
def test_finetune_widths(token, parsed):
    assert cifar_finetune.parse_width(token) == parsed


@pytest.mark.parametrize("token", ["w4", "a6", "4/6", "w4a"])
def test_a_bad_width_is_an_error_naming_it(token):
    with pytest.raises(SystemExit, match=repr(token).replace("/", "/")):
        cifar_finetune.parse_width(token)


def test_budget_summary_of_the_shipped_run_and_an_unfinished_one_refused(tmp_path):
    import json

    import cifar_budget

    r = cifar_budget.summarise(cifar_budget.RUNS["80 epochs (shipped)"])
    assert (r["epochs"], r["test_top1"], len(r["curve"])) == (80, 0.8603, 80)
    assert r["last10_range"][0] <= r["last10_mean_top1"] <= r["last10_range"][1]
    assert r["curve"][-1][0] == 1.0
    assert r["summary"] == "benchmarks/results/cifar/train_summary.json"     # as a reader of the repository sees it
    d = json.loads(cifar_budget.RUNS["80 epochs (shipped)"].read_text())
    d["history"] = d["history"][:40]
    cut = tmp_path / "summary.json"
    cut.write_text(json.dumps(d))
    with pytest.raises(SystemExit, match="summary.json: 40 epochs of 80: the run is not finished"):
        cifar_budget.summarise(cut)


def test_distillation_comparison_of_the_committed_runs(tmp_path):
    import json

    import cifar_distill

    out = tmp_path / "distill.json"
    cifar_distill.student(out, tmp_path / "distill.png")
    d = json.loads(out.read_text())
    runs = {k: json.loads((ROOT / v["summary"]).read_text()) for k, v in d["runs"].items()}
    student, base = runs["distilled from the four"], runs["without a teacher (shipped)"]
    assert len(student["config"]["distill"]["teachers"]) == 4 and "distill" not in base["config"]
    assert {k: v for k, v in student["config"].items() if k != "distill"} == base["config"]     # only the teachers differ
    assert d["gain"]["final_points"] == pytest.approx(100 * (student["test_acc"] - base["test_acc"]))
    assert (tmp_path / "distill.png").stat().st_size > 10000
