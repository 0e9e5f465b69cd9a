"""SqueezeNet's simple bypass on the CIFAR-10 Fire network: candidate h (= f, the shipped squeezenet_cifar,
with its input added to the output of fire3 and fire6, the two Fire modules whose widths match) against the
two runs of f's recipe (the shipped one and its rerun), per epoch.

    .venv/bin/python -m sqz train --model squeezenet_cifar_h --data ../shared/data/cifar10 --epochs 80 --seed 0 \\
        --out runs/squeezenet_cifar_h --weights runs/squeezenet_cifar_h.npz --plot runs/squeezenet_cifar_h.png \\
        --json runs/squeezenet_cifar_h_summary.json     # then copy its summary, history and log to bypass/
    .venv/bin/python benchmarks/cifar_bypass.py       # benchmarks/results/cifar/bypass/bypass.json,
                                                      # benchmarks/figures/cifar_bypass.png

The bypass has no weights and no multiplies (the same parameters and MACs: checked here), so what it is worth
is read against the spread of f's own two runs, not a single one.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cifar_budget import plot_runs, summarise
from cifar_candidates import macs
from common import ROOT, write_results

from model.architecture import get_architecture  # noqa: E402

CIFAR = ROOT / "benchmarks" / "results" / "cifar"
OUT = CIFAR / "bypass"
RUNS = {"f (shipped)": CIFAR / "train_summary.json", "f (rerun)": CIFAR / "rerun" / "train_summary.json",
        "h: f with bypasses": OUT / "train_summary.json"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT / "bypass.json")
    ap.add_argument("--plot", type=Path, default=ROOT / "benchmarks" / "figures" / "cifar_bypass.png")
    args = ap.parse_args()
    f, h = get_architecture("squeezenet_cifar_f"), get_architecture("squeezenet_cifar_h")
    size = {"params": [f.num_params(), h.num_params()], "macs": [macs(f), macs(h)]}
    if size["params"][0] != size["params"][1] or size["macs"][0] != size["macs"][1]:
        raise SystemExit(f"h is not f's size: {size}")
    runs = {name: summarise(path) for name, path in RUNS.items()}
    for name, r in runs.items():
        print(f"{name:22s} top-1 {100 * r['test_top1']:.2f} % (folded {100 * r['folded_test_top1']:.2f} %), "
              f"last ten epochs {100 * r['last10_mean_top1']:.2f} % [{100 * r['last10_range'][0]:.2f}, "
              f"{100 * r['last10_range'][1]:.2f}], train {100 * r['final_train_acc']:.1f} %, {r['train_minutes']:.1f} min")
    plain = [runs["f (shipped)"], runs["f (rerun)"]]
    bypass = runs["h: f with bypasses"]
    mean = lambda key: sum(r[key] for r in plain) / len(plain)      # noqa: E731
    gain = {"final_points_vs_f_mean": 100 * (bypass["test_top1"] - mean("test_top1")),
            "last10_points_vs_f_mean": 100 * (bypass["last10_mean_top1"] - mean("last10_mean_top1")),
            "f_runs_final_spread_points": 100 * abs(plain[0]["test_top1"] - plain[1]["test_top1"])}
    print(f"bypass: {gain['final_points_vs_f_mean']:+.2f} points at the end against f's two runs' mean, "
          f"{gain['last10_points_vs_f_mean']:+.2f} over the last ten epochs (f's two runs differ by "
          f"{gain['f_runs_final_spread_points']:.2f} at the end)")
    plot_runs(runs, args.plot, "squeezenet_cifar (f) with and without Fire bypasses, 80 epochs", per_epoch=True)
    write_results(args.out, {"what": "squeezenet_cifar_h (f with simple bypasses) against f's two runs",
                             "size": size, "plot": str(args.plot.resolve()), "gain": gain,
                             "runs": {k: {kk: vv for kk, vv in v.items() if kk != "curve"} for k, v in runs.items()}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
