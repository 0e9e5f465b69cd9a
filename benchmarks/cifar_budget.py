"""squeezenet_cifar's accuracy against its training budget: the same recipe (seed 0) run for 60, 80 and 160 epochs.

Reads the committed `sqz train --json` summaries (their per-epoch history and final top-1 on the 10,000 test
images), prints final top-1, the mean of the last ten epochs (the noise of one run's end point), the training
time, and plots the test top-1 of each run against the fraction of its schedule done (one-cycle schedules of
different lengths compared at the same point of their learning-rate curve).

    .venv/bin/python benchmarks/cifar_budget.py    # benchmarks/results/cifar/budget.json, benchmarks/figures/cifar_budget.png
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from common import ROOT, write_results

CIFAR = ROOT / "benchmarks" / "results" / "cifar"
RUNS = {"60 epochs": CIFAR / "f60" / "train_summary.json", "80 epochs (shipped)": CIFAR / "train_summary.json",
        "160 epochs": CIFAR / "e160" / "train_summary.json"}


def summarise(path: Path) -> dict:
    if not path.is_file():
        raise SystemExit(f"{path}: no such training summary (BENCHMARKS.md names the sqz train command that writes it)")
    d = json.loads(path.read_text())
    hist = d["history"]
    if len(hist) != d["config"]["epochs"]:
        raise SystemExit(f"{path}: {len(hist)} epochs of {d['config']['epochs']}: the run is not finished")
    last = [h["test_acc"] for h in hist[-10:]]
    shown = path.resolve().relative_to(ROOT).as_posix() if path.resolve().is_relative_to(ROOT) else str(path)
    return {"summary": shown, "epochs": d["config"]["epochs"], "test_top1": d["test_acc"],
            "folded_test_top1": d["folded_test_acc"], "last10_mean_top1": sum(last) / len(last),
            "last10_range": [min(last), max(last)], "final_train_acc": hist[-1]["train_acc"],
            "train_minutes": d["train_seconds"] / 60, "command": d["command"],
            "curve": [[h["epoch"] / len(hist), h["test_acc"]] for h in hist]}


def plot_runs(runs: dict[str, dict], path: Path, title: str, per_epoch: bool) -> None:
    """Test top-1 of summarised runs against the epoch, or (per_epoch False) the fraction of the schedule."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, r in runs.items():
        ax.plot([c[0] * (r["epochs"] if per_epoch else 1) for c in r["curve"]], [100 * c[1] for c in r["curve"]],
                label=f"{name}: {100 * r['test_top1']:.2f} %")
    ax.axhline(89.0, color="grey", ls="--", lw=1, label="target 89 % (FINN CNV-W2A2)")
    ax.set_xlabel("epoch" if per_epoch else "fraction of the schedule")
    ax.set_ylabel("test top-1, 10,000 images (%)")
    ax.set_ylim(70, 90)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"plot: {path}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(CIFAR / "budget.json"))
    ap.add_argument("--plot", default=str(ROOT / "benchmarks" / "figures" / "cifar_budget.png"))
    args = ap.parse_args()
    runs = {name: summarise(path) for name, path in RUNS.items()}
    for name, r in runs.items():
        print(f"{name:20s} top-1 {100 * r['test_top1']:.2f} % (folded {100 * r['folded_test_top1']:.2f} %), "
              f"last ten epochs {100 * r['last10_mean_top1']:.2f} % [{100 * r['last10_range'][0]:.2f}, "
              f"{100 * r['last10_range'][1]:.2f}], train {100 * r['final_train_acc']:.1f} %, {r['train_minutes']:.1f} min")

    plot_runs(runs, Path(args.plot), "squeezenet_cifar: one recipe, three budgets", per_epoch=False)
    write_results(args.out, {"what": __doc__.splitlines()[0], "plot": str(Path(args.plot).resolve()),
                             "runs": {k: {kk: vv for kk, vv in v.items() if kk != "curve"} for k, v in runs.items()}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
