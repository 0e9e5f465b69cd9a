"""The host tests (host/tests/) run under the second venv, .venv-pynq, with the REAL pynq 4.0.0 (pynq pins
numpy<2; this suite's venv has numpy 2 and TensorFlow). This test generates the design folders they use
(`sqz hls` + `sqz build` dry runs: SqueezeNet v1.0 with the committed 8-bit spec, zcu104 without and kv260 with
conv10's weights in UltraRAM), runs them there, and fails -- never skips -- if that venv or pynq is missing.
It also checks `sqz infer --sim` from this venv (it re-runs itself under .venv-pynq)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.usefixtures("gxx")     # the C-simulation part needs g++

ROOT = Path(__file__).resolve().parents[1]
PYNQ_PY = ROOT / ".venv-pynq" / "bin" / "python"
SPEC = ROOT / "benchmarks" / "results" / "q88" / "spec.json"


def sqz(*args, env=None):
    run = subprocess.run([sys.executable, "-m", "sqz", *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                         timeout=600, env=env)
    return run


@pytest.fixture(scope="module")
def designs(tmp_path_factory, tiny, tiny_keras, cache_root, gxx):
    assert PYNQ_PY.exists(), (f"{PYNQ_PY} is missing: the host tests run under the real pynq in a second venv; "
                              f"`python3 -m venv .venv-pynq && .venv-pynq/bin/pip install -r host/requirements-sim.txt`"
                              f" (bash .ci/run does it)")
    check = subprocess.run([str(PYNQ_PY), "-W", "ignore", "-c", "import pynq; print(pynq.__version__)"],
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 0 and check.stdout.strip() == "4.0.0", f"pynq 4.0.0 not importable there: {check.stderr}"
    base = tmp_path_factory.mktemp("host")
    boards = (("zcu104", "none"), ("kv260", "conv10"))
    procs = [subprocess.Popen([sys.executable, "-m", "sqz", "hls", "--spec", str(SPEC), "--board", b, "--weights-in-uram",
                               u, "--out", str(base / f"proj_{b}")], cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for b, u in boards]     # both at once
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-2000:]
    for b, _ in boards:
        r = sqz("build", "--project", base / f"proj_{b}", "--board", b, "--out", base / f"bit_{b}")
        assert r.returncode == 0, r.stderr[-2000:]
    # the tiny network with conv10 loadable, compiled (shared with tests/test_hw_loadable.py through the cache):
    # the C simulation behind the simulated board, the emulator's codes to compare with
    import numpy as np

    from hw.convert import plan_design
    from hw.project import build_project, project_dir_for
    from tests.tiny_net import REUSE

    design = plan_design(tiny_keras, tiny["spec"], tiny["arch"], reuse=REUSE, board="zcu104", loadable=("conv10",))
    project = build_project(design, project_dir_for(design, cache_root))
    np.savez(base / "tiny_ref.npz", x=tiny["x"], codes=tiny["emulator"].logit_codes(tiny["x"]))
    (base / "tiny_project.txt").write_text(str(project.path))
    return base


def test_host_tests_pass_under_the_real_pynq(designs):
    env = {**os.environ, "SQZ_HOST_FIXTURES": str(designs), "PYTHONPATH": str(ROOT)}
    run = subprocess.run([str(PYNQ_PY), "-m", "pytest", "-q", "-p", "no:cacheprovider", "host/tests"], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=900)
    tail = run.stdout[-4000:] + run.stderr[-2000:]
    assert run.returncode == 0, tail
    import re

    passed = re.search(r"(\d+) passed", run.stdout)
    assert passed and int(passed.group(1)) >= 18, tail        # every host test ran (18 when this was written)
    assert "skipped" not in run.stdout and "error" not in run.stdout.lower(), tail


def test_sqz_infer_sim_from_the_main_venv_runs_under_the_second_venv(designs, tmp_path):
    out = tmp_path / "r.json"
    r = sqz("infer", "--bitstream", designs / "bit_kv260", "--data", ROOT / "data" / "imagenet_sample", "--sim",
            "--limit", "2", "--json", out)
    assert r.returncode == 0, r.stderr[-2000:]
    d = json.loads(out.read_text())
    assert d["n"] == 2 and d["bit_exact"] == 2 and {"p50", "p99"} == set(d["latency_ms"])
    assert (tmp_path / "r.csv").exists()


def test_sqz_infer_without_the_second_venv_or_pynq_is_a_clear_error(designs, tmp_path):
    env = {**os.environ, "SQZ_PYNQ_PYTHON": str(tmp_path / "no-such-python")}
    r = sqz("infer", "--bitstream", designs / "bit_kv260", "--data", ROOT / "data" / "imagenet_sample", "--sim",
            "--json", tmp_path / "x.json", env=env)
    assert r.returncode == 2 and "second venv" in r.stderr
    r = sqz("infer", "--bitstream", designs / "bit_kv260", "--data", ROOT / "data" / "imagenet_sample",
            "--json", tmp_path / "x.json")
    assert r.returncode == 2 and "pynq is not importable here" in r.stderr


def test_run_infer_from_the_main_venv_returns_the_json_dict(designs, tmp_path):
    """The entry point `sqz demo` calls (host.infer.run_infer) works from this venv: it runs under .venv-pynq."""
    from host.infer import run_infer

    r = run_infer(designs / "bit_zcu104", ROOT / "data" / "imagenet_sample", sim="emulator", limit=2,
                  json_out=tmp_path / "d.json", log=None)
    assert r["n"] == 2 and r["bit_exact"] == 2 and r == json.loads((tmp_path / "d.json").read_text())
    assert "manifest" in r["described_by"]
