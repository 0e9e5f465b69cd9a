"""`python -m sqz demo` end to end on a small slice of the shipped sample, its reuse of finished steps,
the split's content check, and the report (its figures against the step outputs, and in a real browser)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from sqz.cli import main
from sqz.cli_common import SAMPLE_DIR
from sqz.demo import hash_paths
from sqz.report import wilson_interval
from sqz.split import split_dataset

N_IMAGES, N_CALIB = 16, 8


def _subset(folder: Path, n: int) -> Path:
    """The first n images of the shipped sample as a labels.txt folder (links, nothing copied)."""
    folder.mkdir(parents=True)
    lines = (SAMPLE_DIR / "labels.txt").read_text().splitlines()[:n]
    (folder / "images").mkdir()
    for line in lines:
        rel = line.rsplit(None, 1)[0]
        os.symlink(SAMPLE_DIR / rel, folder / rel)
    (folder / "labels.txt").write_text("\n".join(lines) + "\n")
    shutil.copyfile(SAMPLE_DIR / "synset_words.txt", folder / "synset_words.txt")
    return folder


def _demo_argv(data: Path, out: Path) -> list[str]:
    return ["demo", "--board", "zcu104", "--data", str(data), "--calib-lines", str(N_CALIB), "--out", str(out),
            "--csim", "1", "--sqnr-images", "2", "--sweep-bits", "6"]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("demo")
    data = _subset(base / "data", N_IMAGES)
    out = base / "out"
    assert main(_demo_argv(data, out)) == 0
    return data, out


def test_demo_runs_every_step_and_writes_the_report(demo_run):
    _, out = demo_run
    summary = json.loads((out / "demo.json").read_text())
    names = [s["step"] for s in summary["steps"]]
    assert names == ["split", "quantize", "sweep-w6", "sqnr", "hls", "build", "infer", "report"]
    assert not any(s["reused"] for s in summary["steps"])
    split = json.loads((out / "data" / "split.json").read_text())
    assert split["calib"]["n"] == N_CALIB and split["eval"]["n"] == N_IMAGES - N_CALIB
    q = json.loads((out / "quantize" / "report.json").read_text())
    assert q["n"] == N_IMAGES - N_CALIB and q["calibration"]["images"] == N_CALIB
    hls = json.loads((out / "hls.json").read_text())
    assert hls["csim"]["n"] == 1 and hls["csim"]["bit_exact"] == 1
    infer = json.loads((out / "infer.json").read_text())
    assert infer["n"] == N_IMAGES - N_CALIB and infer["bit_exact"] == infer["n"]
    manifest = json.loads((out / "bitstreams" / "zcu104" / "manifest.json").read_text())
    assert manifest["bit_sha256"] is None          # a dry run: no bitstream is claimed


def test_report_figures_are_the_step_outputs(demo_run):
    _, out = demo_run
    q = json.loads((out / "quantize" / "report.json").read_text())
    md = (out / "report.md").read_text()
    n = q["n"]
    k_float, k_fixed = round(q["float"]["top1"] * n), round(q["fixed"]["top1"] * n)
    lo, hi = wilson_interval(k_fixed, n)
    assert f"| fixed | {k_fixed}/{n} | {100 * k_fixed / n:.2f} % | {100 * lo:.1f}–{100 * hi:.1f} % |" in md
    assert f"| float | {k_float}/{n} |" in md
    sweep = json.loads((out / "sweep" / "w6a8" / "report.json").read_text())
    assert f"| 6/8 | {sweep['weight_bytes'] / 1e6:.3f} |" in md
    hls = json.loads((out / "hls.json").read_text())
    assert f"| total |  |  | {hls['estimate']['dsp']} | {hls['estimate']['bram18']} |" in md
    assert "| HLS C simulation vs emulator | 1/1 |" in md
    for section in ("Per-layer formats and saturations", "Weight and activation distributions",
                    "Per-layer error: fixed point vs float (SQNR)", "Images whose class changed", "What to run next"):
        assert section in md
    for name in ("width_curve.png", "sqnr.png", "resources.png", "dist_weights.png", "dist_activations.png"):
        assert (out / "report_files" / name).stat().st_size > 1000
    html = (out / "report.html").read_text()
    assert "http://" not in html and "https://" not in html     # self-contained: nothing fetched
    assert html.count("<img ") == html.count('src="data:image/')


def test_second_run_reuses_every_step(demo_run, capsys):
    data, out = demo_run
    assert main(_demo_argv(data, out)) == 0
    summary = json.loads((out / "demo.json").read_text())
    assert all(s["reused"] for s in summary["steps"]), [s["step"] for s in summary["steps"] if not s["reused"]]
    assert "reused: same inputs" in capsys.readouterr().out


def test_a_changed_input_reruns_its_step_and_those_after_it(demo_run, tmp_path):
    data, out = demo_run
    copy = tmp_path / "out"
    shutil.copytree(out, copy, symlinks=True)
    # a different evaluation half: one more calibration line
    argv = _demo_argv(data, copy)
    argv[argv.index("--calib-lines") + 1] = str(N_CALIB + 1)
    argv += ["--csim", "0"]
    assert main(argv) == 0
    steps = {s["step"]: s["reused"] for s in json.loads((copy / "demo.json").read_text())["steps"]}
    assert not steps["split"] and not steps["quantize"] and not steps["report"]


def test_report_renders_in_headless_chromium(demo_run, tmp_path):
    """The HTML opens in a real browser: every image decodes, no console error; a screenshot is taken."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    _, out = demo_run
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_bin = shutil.which("chromedriver")
    assert chromium and driver_bin, "Debian's chromium and chromium-driver are needed (.ci/run installs them)"
    opts = Options()
    opts.binary_location = chromium
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1100,1400"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_bin), options=opts)
    try:
        driver.set_page_load_timeout(60)
        driver.get((out / "report.html").resolve().as_uri())
        body = driver.find_element("tag name", "body")
        n = int(body.get_attribute("data-images"))
        assert n == (out / "report.html").read_text().count("<img ") and n >= 5
        assert int(body.get_attribute("data-images-decoded")) == n
        errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
        assert not errors, errors
        shot = tmp_path / "report.png"
        assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    finally:
        driver.quit()


def test_split_drops_evaluation_images_with_a_calibration_image_s_content(tmp_path):
    data = _subset(tmp_path / "d", 6)
    lines = (data / "labels.txt").read_text().splitlines()
    first = lines[0].rsplit(None, 1)[0]
    shutil.copyfile(SAMPLE_DIR / first, data / "images" / "copy_of_first.JPEG")   # same content, other path
    (data / "labels.txt").write_text("\n".join(lines + [f"images/copy_of_first.JPEG {lines[0].split()[-1]}"]) + "\n")
    s = split_dataset(data, tmp_path / "split", calib_lines=3)
    assert s["dropped"] == [{"path": "images/copy_of_first.JPEG", "same_as": first}]
    assert s["eval"]["n"] == 3
    eval_lines = (tmp_path / "split" / "eval" / "labels.txt").read_text().splitlines()
    assert len(eval_lines) == 3 and "copy_of_first" not in "".join(eval_lines)


def test_split_refuses_a_folder_of_other_files(tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    assert main(["split", "--out", str(tmp_path / "mine")]) == 2
    assert "not a split folder" in capsys.readouterr().err
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_hash_paths_follows_content_not_names(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        d.mkdir()
        (d / "x.txt").write_text("same")
    assert hash_paths([a]) == hash_paths([b])
    (b / "x.txt").write_text("other")
    assert hash_paths([a]) != hash_paths([b])


def test_wilson_interval_matches_published_values():
    # Wilson (1927) / Newcombe (1998) table: 81/263 -> 0.2553-0.3662; 0/10 -> 0-0.2775
    lo, hi = wilson_interval(81, 263)
    assert abs(lo - 0.2553) < 5e-4 and abs(hi - 0.3662) < 5e-4
    lo, hi = wilson_interval(0, 10)
    assert lo == 0 and abs(hi - 0.2775) < 5e-4


def _plan(argv: list[str]):
    import argparse

    from sqz.demo import add_commands, plan_steps, resolve_design_point

    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers())
    args = parser.parse_args(["demo", *argv])
    model = resolve_design_point(args)
    args.data = "data"
    return model, args.bits, {s.name: s.argv for s in plan_steps(args, model, True)}


def test_board_design_points_pick_model_width_and_folding(tmp_path):
    model, bits, steps = _plan(["--board", "pynq-z2", "--out", str(tmp_path)])
    assert (model, bits) == ("squeezenet_cifar", 6)
    q = steps["quantize"]
    assert q[q.index("--weight-bits") + 1] == q[q.index("--activation-bits") + 1] == "6"
    assert steps["hls"][-2:] == ["--fps", "900"] and "sweep-w8" in steps      # 8/8 is then a sweep point
    model, bits, steps = _plan(["--board", "pynq-z2", "--bits", "8", "--out", str(tmp_path)])
    assert bits == 8 and "sweep-w8" not in steps
    model, bits, steps = _plan(["--board", "pynq-z2", "--model", "squeezenet_cifar_b", "--out", str(tmp_path)])
    assert bits == 8 and "--fps" not in steps["hls"]      # another model: no design point of the board's
    model, bits, steps = _plan(["--board", "ultra96-v2", "--out", str(tmp_path)])
    assert (model, bits) == ("squeezenet_cifar", 6) and steps["hls"][-2:] == ["--max-utilisation", "lut=0.8,bram18=0.9"]
    model, bits, _ = _plan(["--board", "zcu104", "--out", str(tmp_path)])
    assert (model, bits) == ("squeezenet1_0", 8)


def test_python_m_sqz_demo_help_lists_the_boards():
    out = subprocess.run([os.sys.executable, "-m", "sqz", "demo", "--help"], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0 and "zcu104" in out.stdout and "--search" in out.stdout
