"""One change to the CIFAR-10 Fire network's training, against the two runs of f's recipe (the shipped
squeezenet_cifar and its rerun), per epoch. Each variant is f's 80-epoch command with one thing changed,
and the script checks that: the run's recorded config differs from f's in exactly that key.

- bypass: candidate h, f with SqueezeNet's simple bypass (its input added to the output of fire3 and fire6,
  the two Fire modules whose widths match); no weights and no multiplies (the same parameters and MACs,
  checked here);
- wd: f with weight decay 5e-3 instead of 5e-4 (Keras' decoupled decay: 5e-3 is PyTorch's usual 5e-4; why,
  in BENCHMARKS "Weight decay").

    .venv/bin/python -m sqz train --model squeezenet_cifar_h --data ../shared/data/cifar10 --epochs 80 --seed 0 \\
        --out runs/squeezenet_cifar_h --weights runs/squeezenet_cifar_h.npz --plot runs/squeezenet_cifar_h.png \\
        --json runs/squeezenet_cifar_h_summary.json     # then copy its summary, history and log to bypass/
    .venv/bin/python -m sqz train --model squeezenet_cifar --data ../shared/data/cifar10 --epochs 80 --seed 0 \\
        --weight-decay 5e-3 --out runs/squeezenet_cifar_wd5e3 --weights runs/squeezenet_cifar_wd5e3.npz \\
        --plot runs/squeezenet_cifar_wd5e3.png --json runs/squeezenet_cifar_wd5e3_summary.json   # ... to wd/
    .venv/bin/python benchmarks/cifar_variants.py bypass   # results/cifar/bypass/bypass.json, figures/cifar_bypass.png
    .venv/bin/python benchmarks/cifar_variants.py wd       # results/cifar/wd/wd.json, figures/cifar_wd.png

What a change is worth is read against the spread of f's own two runs, not a single one.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cifar_budget import plot_runs, summarise
from cifar_candidates import macs
from common import ROOT, write_results

from model.architecture import get_architecture  # noqa: E402

CIFAR = ROOT / "benchmarks" / "results" / "cifar"
F_RUNS = {"f (shipped)": CIFAR / "train_summary.json", "f (rerun)": CIFAR / "rerun" / "train_summary.json"}
# variant -> (its folder under results/cifar, its label, the one config key it changes and to what, the plot's title, "what")
VARIANTS = {
    "bypass": ("bypass", "h: f with bypasses", {"model": "squeezenet_cifar_h"},
               "squeezenet_cifar (f) with and without Fire bypasses, 80 epochs",
               "squeezenet_cifar_h (f with simple bypasses) against f's two runs"),
    "wd": ("wd", "f, weight decay 5e-3", {"weight_decay": 5e-3},
           "squeezenet_cifar (f), weight decay 5e-4 and 5e-3",
           "squeezenet_cifar (f) trained with decoupled weight decay 5e-3 (PyTorch's coupled 5e-4 at momentum 0.9) "
           "against f's two runs at 5e-4"),
}


def recipe_change(variant_summary: Path, f_summary: Path) -> dict:
    """The config keys where the variant's run differs from f's: {key: [f's, the variant's]}."""
    a, b = (json.loads(p.read_text())["config"] for p in (f_summary, variant_summary))
    return {k: [a.get(k), b.get(k)] for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("variant", choices=VARIANTS)
    ap.add_argument("--out", type=Path, help="default: results/cifar/<folder>/<variant>.json")
    ap.add_argument("--plot", type=Path, help="default: benchmarks/figures/cifar_<variant>.png")
    args = ap.parse_args()
    folder, label, change, title, what = VARIANTS[args.variant]
    out = args.out or CIFAR / folder / f"{args.variant}.json"
    plot = args.plot or ROOT / "benchmarks" / "figures" / f"cifar_{args.variant}.png"
    summary = CIFAR / folder / "train_summary.json"
    f, v = get_architecture("squeezenet_cifar_f"), get_architecture(change.get("model", "squeezenet_cifar"))
    size = {"params": [f.num_params(), v.num_params()], "macs": [macs(f), macs(v)]}
    if size["params"][0] != size["params"][1] or size["macs"][0] != size["macs"][1]:
        raise SystemExit(f"{v.name} is not f's size: {size}")
    runs = {name: summarise(path) for name, path in {**F_RUNS, label: summary}.items()}
    if recipe_change(F_RUNS["f (rerun)"], F_RUNS["f (shipped)"]):
        raise SystemExit(f"{F_RUNS['f (rerun)']}: not f's recipe")
    differs = recipe_change(summary, F_RUNS["f (shipped)"])
    if set(differs) != set(change) or any(differs[k][1] != val for k, val in change.items()):
        raise SystemExit(f"{summary}: its recipe differs from f's in {differs}, not just in {change}")
    for name, r in runs.items():
        print(f"{name:22s} top-1 {100 * r['test_top1']:.2f} % (folded {100 * r['folded_test_top1']:.2f} %), "
              f"last ten epochs {100 * r['last10_mean_top1']:.2f} % [{100 * r['last10_range'][0]:.2f}, "
              f"{100 * r['last10_range'][1]:.2f}], train {100 * r['final_train_acc']:.1f} %, {r['train_minutes']:.1f} min")
    plain = [runs[k] for k in F_RUNS]
    changed = runs[label]
    mean = lambda key: sum(r[key] for r in plain) / len(plain)      # noqa: E731
    gain = {"final_points_vs_f_mean": 100 * (changed["test_top1"] - mean("test_top1")),
            "last10_points_vs_f_mean": 100 * (changed["last10_mean_top1"] - mean("last10_mean_top1")),
            "f_runs_final_spread_points": 100 * abs(plain[0]["test_top1"] - plain[1]["test_top1"])}
    print(f"{args.variant}: {gain['final_points_vs_f_mean']:+.2f} points at the end against f's two runs' mean, "
          f"{gain['last10_points_vs_f_mean']:+.2f} over the last ten epochs (f's two runs differ by "
          f"{gain['f_runs_final_spread_points']:.2f} at the end)")
    plot_runs(runs, plot, title, per_epoch=True)
    write_results(out, {"what": what, "size": size, "recipe_change": differs, "plot": str(plot.resolve()),
                        "gain": gain,
                        "runs": {k: {kk: vv for kk, vv in v.items() if kk != "curve"} for k, v in runs.items()}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
