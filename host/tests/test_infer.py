"""run_infer / `sqz infer --sim` on the simulated board: the JSON contract, the CSV, --resume, bad images."""
import csv
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from host.infer import InferError, run_infer
from host.tests.conftest import ROOT, SAMPLE

KEYS = {"n", "top1", "top5", "frames_per_s", "bit_exact", "latency_ms", "estimated_board_fps"}


def test_run_infer_contract_csv_and_resume(folders, tmp_path):
    out = tmp_path / "r.json"
    r1 = run_infer(folders["kv260"], SAMPLE, sim="emulator", limit=3, batch_size=2, json_out=out, log=None)
    assert KEYS <= set(r1) and set(r1["latency_ms"]) == {"p50", "p99"}
    assert r1["n"] == 3 and r1["bit_exact"] == 3 and "simulator" in r1["frames_per_s_source"]
    with pytest.raises(InferError, match="--resume"):
        run_infer(folders["kv260"], SAMPLE, sim="emulator", limit=6, json_out=out, log=None)
    r2 = run_infer(folders["kv260"], SAMPLE, sim="emulator", limit=6, batch_size=4, json_out=out, resume=True,
                   log=None)
    assert r2["n"] == 6 and r2["resumed"] == 3 and r2["images_this_run"] == 3 and r2["bit_exact"] == 6
    assert r2["top1"] == r2["emulator_top1"]
    rows = list(csv.DictReader(out.with_suffix(".csv").open()))
    assert len(rows) == 6 and len({r["path"] for r in rows}) == 6
    assert json.loads(out.read_text())["n"] == 6
    assert r2["estimated_board_fps"] == pytest.approx(json.loads((folders["kv260"] / "manifest.json").read_text())
                                                      ["resources"]["fps"])


def test_bad_and_other_size_images(folders, tmp_path):
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    names = sorted((SAMPLE / "images").iterdir())[:2]
    for p in names:
        shutil.copy(p, data / "images" / p.name)
    Image.open(names[0]).resize((300, 200)).save(data / "images" / "wide.jpg")    # resized as the manifest says
    (data / "images" / "bad.JPEG").write_bytes(b"\xff\xd8 not a jpeg")
    (data / "labels.txt").write_text("".join(f"images/{n} 1\n" for n in [names[0].name, "bad.JPEG", names[1].name,
                                                                         "wide.jpg"]))
    from model.imagenet import BadImageError

    with pytest.raises(BadImageError, match="bad.JPEG"):
        run_infer(folders["zcu104"], data, sim="emulator", json_out=tmp_path / "a.json", log=None)
    r = run_infer(folders["zcu104"], data, sim="emulator", json_out=tmp_path / "b.json", skip_bad=True, log=None)
    assert r["n"] == 3 and r["bit_exact"] == 3 and [s["path"].endswith("bad.JPEG") for s in r["skipped"]] == [True]


def test_sqz_infer_cli_here(folders, tmp_path):
    """`python -m sqz infer --sim` where pynq imports (this venv): in-process, exit 0, the JSON written."""
    out = tmp_path / "c.json"
    run = subprocess.run([sys.executable, "-m", "sqz", "infer", "--bitstream", str(folders["zcu104"]), "--data",
                          str(SAMPLE), "--sim", "--limit", "2", "--json", str(out)], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert KEYS <= set(json.loads(out.read_text())) and "bit-exact vs emulator: 2 / 2" in run.stdout
    bad = subprocess.run([sys.executable, "-m", "sqz", "infer", "--bitstream", str(tmp_path), "--data", str(SAMPLE),
                          "--sim", "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "manifest.json" in bad.stderr
