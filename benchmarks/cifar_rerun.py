"""Does the committed training command reproduce the shipped squeezenet_cifar? The shipped 80-epoch run against
a second run of the same command (seed 0, same machine, the machine otherwise idle).

TensorFlow's CPU kernels are not bit-deterministic (oneDNN's reductions change order with threads and
blocking), so a rerun cannot give the same digits; what this measures is how far it lands: the final top-1 on
the 10,000 test images, the per-epoch curves against each other, the first epoch's loss (where the runs start
apart), and the folded weights' relative difference layer by layer.

    .venv/bin/python -m sqz train --model squeezenet_cifar --data ../shared/data/cifar10 --epochs 80 --seed 0 \\
        --out runs/squeezenet_cifar_rerun --weights runs/squeezenet_cifar_rerun.npz \\
        --plot runs/squeezenet_cifar_rerun.png --json runs/squeezenet_cifar_rerun_summary.json \\
        > runs/squeezenet_cifar_rerun.log 2>&1
    .venv/bin/python benchmarks/cifar_rerun.py --copy   # copies the summary, log and history to
                                                        # benchmarks/results/cifar/rerun/; rerun.json there,
                                                        # benchmarks/figures/cifar_rerun.png
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
from cifar_budget import CIFAR, plot_runs, summarise
from common import ROOT, write_results

RUN = ROOT / "runs" / "squeezenet_cifar_rerun"
SHIPPED = ROOT / "model" / "weights" / "squeezenet_cifar.npz"


def copy_run(dest: Path) -> None:
    """The rerun's summary, log and per-epoch history into the committed results (its weights stay in runs/)."""
    dest.mkdir(parents=True, exist_ok=True)
    for src, name in ((RUN.with_name(RUN.name + "_summary.json"), "train_summary.json"),
                      (RUN.with_name(RUN.name + ".log"), "train_log.txt"),
                      (RUN / "history.jsonl", "train_history.jsonl")):
        if not src.is_file():
            raise SystemExit(f"{src}: missing (run the sqz train command in this script's docstring first)")
        shutil.copyfile(src, dest / name)


def weight_differences(a: Path, b: Path) -> dict[str, float]:
    """Per conv: ||W_a - W_b|| / ||W_a|| of the folded weights (model/trained.py's files)."""
    from model.architecture import get_architecture
    from model.trained import load_params

    arch = get_architecture("squeezenet_cifar")
    pa, pb = load_params(a, arch)[0], load_params(b, arch)[0]
    return {n: float(np.linalg.norm(pa[n][0] - pb[n][0]) / np.linalg.norm(pa[n][0])) for n in pa}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copy", action="store_true", help="copy the finished rerun's files from runs/ first")
    ap.add_argument("--weights", default=str(RUN.with_suffix(".npz")), help="the rerun's folded weights")
    ap.add_argument("--out", default=str(CIFAR / "rerun" / "rerun.json"))
    ap.add_argument("--plot", default=str(ROOT / "benchmarks" / "figures" / "cifar_rerun.png"))
    args = ap.parse_args()
    if args.copy:
        copy_run(CIFAR / "rerun")
    summaries = {"shipped run": CIFAR / "train_summary.json", "rerun": CIFAR / "rerun" / "train_summary.json"}
    runs = {k: summarise(p) for k, p in summaries.items()}
    a, b = runs["shipped run"], runs["rerun"]
    if a["command"].split("--out")[0] != b["command"].split("--out")[0]:
        raise SystemExit(f"the two runs' commands differ before their output paths:\n  {a['command']}\n  {b['command']}")
    gaps = [abs(x[1] - y[1]) for x, y in zip(a["curve"], b["curve"])]
    first = [json.loads(p.read_text())["history"][0]["loss"] for p in summaries.values()]   # where they part
    figures = {"what": __doc__.splitlines()[0],
               "test_top1": {k: r["test_top1"] for k, r in runs.items()},
               "difference_points": 100 * (b["test_top1"] - a["test_top1"]),
               "last10_mean_top1": {k: r["last10_mean_top1"] for k, r in runs.items()},
               "per_epoch_abs_gap_points": {"mean": 100 * float(np.mean(gaps)), "max": 100 * float(np.max(gaps)),
                                            "last10_mean": 100 * float(np.mean(gaps[-10:]))},
               "first_epoch_loss": dict(zip(runs, first)),
               "train_minutes": {k: r["train_minutes"] for k, r in runs.items()},
               "plot": str(Path(args.plot).resolve())}
    if Path(args.weights).is_file():
        diffs = weight_differences(SHIPPED, Path(args.weights))
        figures["weight_relative_difference"] = {"min": min(diffs.values()), "max": max(diffs.values()),
                                                 "per_layer": diffs}
    print(f"shipped {100 * a['test_top1']:.2f} %, rerun {100 * b['test_top1']:.2f} % "
          f"({figures['difference_points']:+.2f} points); last ten epochs {100 * a['last10_mean_top1']:.2f} % and "
          f"{100 * b['last10_mean_top1']:.2f} %; per-epoch gap mean {figures['per_epoch_abs_gap_points']['mean']:.2f}, "
          f"max {figures['per_epoch_abs_gap_points']['max']:.2f} points; first-epoch loss {first[0]:.5f} and {first[1]:.5f}")
    if "weight_relative_difference" in figures:
        w = figures["weight_relative_difference"]
        print(f"folded weights, |dW| / |W| per layer: {w['min']:.3f} to {w['max']:.3f}")
    plot_runs(runs, Path(args.plot), "squeezenet_cifar: the committed command, run twice", per_epoch=True)
    write_results(args.out, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
