"""Shared set-up for the benchmarks: the real model, the full image set, the calibration/evaluation split."""
from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

VAL1300 = ROOT.parent / "shared" / "data" / "imagenet_val1300"
CALIB_STOP = 300          # calibration: lines 1-300 of labels.txt; evaluation: lines 301-1300
# committed: every figure BENCHMARKS.md cites, and the small reports the figures come from
RESULTS = ROOT / "benchmarks" / "results"
MARGIN_REPORT = RESULTS / "q_margin01" / "report.json"     # `sqz quantize --margin 0.01 --weight-rule output`


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, numpy {np.__version__}"


def write_results(path, figures: dict) -> None:
    """The figures a benchmark printed, as JSON (with the machine they were measured on)."""
    import json

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figures = {k: (Path(v).relative_to(ROOT).as_posix() if isinstance(v, str) and v.startswith(f"{ROOT}/") else v)
               for k, v in figures.items()}           # file names as a reader of the repository sees them
    script = Path(sys.argv[0]).resolve()     # outside the repository when run by a tool of a venv kept elsewhere
    command = " ".join([script.relative_to(ROOT).as_posix() if script.is_relative_to(ROOT) else str(script)]
                       + sys.argv[1:])
    path.write_text(json.dumps({"command": command, "machine": machine(), **figures}, indent=1) + "\n")
    print(f"figures: {path}")


def run_sqz(args: list[str], log=None, python: str = sys.executable, env: dict | None = None) -> float:
    """`python -m sqz ARGS` in the repository, as a user would type it; returns its wall time in seconds.

    Its output goes to `log` (the command on the first line, so the file says what produced it) or is
    kept in memory; a failure stops the benchmark (SystemExit) with the command and the end of that output.
    `python`: another interpreter (the pynq venv's scripts run the main venv's sqz)."""
    cmd = [python, "-m", "sqz", *args]
    shown = "python -m sqz " + " ".join(args)
    t0 = time.perf_counter()
    if log is None:
        res = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        tail = res.stdout[-3000:]
    else:
        log = Path(log)
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "w") as f:
            f.write(shown + "\n")
            f.flush()
            res = subprocess.run(cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT)
        tail = f"(log: {log})\n" + log.read_text(errors="replace")[-3000:]
    if res.returncode != 0:
        raise SystemExit(f"{shown} failed (exit {res.returncode}):\n{tail}")
    return time.perf_counter() - t0


def results_path(script: str) -> str:
    """Default of a benchmark's --json: benchmarks/results/<script>.json."""
    return str(RESULTS / f"{Path(script).stem}.json")


def real_model():
    from model.architecture import squeezenet1_0
    from model.deep_compression import decode, float_params
    return squeezenet1_0(), float_params(decode())


def load_images(start=None, stop=None, limit=None):
    from model.imagenet import ImageFolderDataset
    ds = ImageFolderDataset(VAL1300, start=start, stop=stop, limit=limit)
    xs, ys = [], []
    for x, y, _ in ds.batches(100):
        xs.append(x.copy())
        ys.append(y)
    return np.concatenate(xs), np.concatenate(ys)


def calibrate(arch, params, images):
    from quant.calibrate import Calibration
    cal = Calibration(arch, params)
    float_logits = np.concatenate([cal.add_batch(images[i:i + 32]) for i in range(0, len(images), 32)])
    return cal, float_logits


def fixed_point_scores(arch, params, spec, images, labels, float_logits) -> tuple[float, float, float]:
    """(top-1 %, agreement with float %, KL from float) of a spec through the bit-exact emulator."""
    from quant.emulator import FixedPointEmulator
    from quant.search import kl_divergence

    codes = FixedPointEmulator(arch, params, spec).logit_codes(images)
    top = codes.argmax(1)
    return (100 * float(np.mean(top == labels)), 100 * float(np.mean(top == float_logits.argmax(1))),
            kl_divergence(float_logits, spec.logit_format.to_float(codes)))
