"""Knowledge distillation for squeezenet_cifar: the teachers, and the student against the same recipe without them.

    .venv/bin/python benchmarks/cifar_distill.py teachers   # benchmarks/results/cifar/distill/teachers.json
    .venv/bin/python benchmarks/cifar_distill.py student    # .../distill/distill.json, benchmarks/figures/cifar_distill.png

`teachers`: each teacher (folded weights written by `sqz train --weights`) on the 10,000 test images alone,
with its mirror image averaged in (what `sqz train --teacher` distils: two passes per image), and all of them
averaged (their softmax, as the distillation targets are). The teachers are the four earlier runs of the one
recipe (BENCHMARKS.md names their commands); their weights are in runs/, not shipped (give --teacher to use
others). `student`: the distilled run's committed summary against the shipped 80-epoch run's, per epoch.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cifar_budget import plot_runs, summarise
from common import ROOT, write_results

import numpy as np  # noqa: E402

CIFAR = ROOT / "benchmarks" / "results" / "cifar"
OUT = CIFAR / "distill"
DATA = ROOT.parent / "shared" / "data" / "cifar10"
TEACHERS = [ROOT / "runs" / f"squeezenet_cifar_{r}.npz" for r in ("80", "160", "cut8", "f")]
STUDENT = OUT / "train_summary.json"        # sqz train --json of the distilled run, copied here
BASELINE = CIFAR / "train_summary.json"     # the shipped weights' run: the same command without --teacher


def teachers(paths: list[Path], out: Path) -> None:
    from model.architecture import get_architecture
    from model.cifar_train import load_split, softmax, to_input
    from model.squeezenet import build_keras, keras_weights
    from model.trained import load_params
    from sqz.files import file_sha256

    arch = get_architecture("squeezenet_cifar")
    x, y = load_split(str(DATA), "test", arch)
    x = to_input(x, arch)
    rows, total_plain, total_both = {}, 0.0, 0.0
    for path in paths:
        params, meta = load_params(path, arch)
        net = build_keras(arch, softmax=False, weights=keras_weights(params))
        plain = softmax(net.predict(x, batch_size=500, verbose=0).astype(np.float64))
        mirror = softmax(net.predict(x[:, :, ::-1], batch_size=500, verbose=0).astype(np.float64))
        total_plain, total_both = total_plain + plain, total_both + plain + mirror
        rows[path.name] = {"top1": float(np.mean(plain.argmax(-1) == y)),
                           "top1_with_mirror": float(np.mean((plain + mirror).argmax(-1) == y)),
                           "command": meta.get("command", ""), "sha256": file_sha256(path)}
        print(f"{path.name:32s} {100 * rows[path.name]['top1']:.2f} %, with its mirror "
              f"{100 * rows[path.name]['top1_with_mirror']:.2f} %", flush=True)
    ensemble = {"top1": float(np.mean(total_plain.argmax(-1) == y)),
                "top1_with_mirror": float(np.mean(total_both.argmax(-1) == y))}
    print(f"{'all ' + str(len(paths)) + ' averaged':32s} {100 * ensemble['top1']:.2f} %, with the mirrors "
          f"{100 * ensemble['top1_with_mirror']:.2f} % (the distillation targets' network)")
    write_results(out, {"what": "the distillation teachers on the 10,000 CIFAR-10 test images (float, Keras)",
                        "n": int(len(y)), "teachers": rows, "ensemble": ensemble})


def student(out: Path, plot: Path) -> None:
    runs = {"without a teacher (shipped)": summarise(BASELINE), "distilled from the four": summarise(STUDENT)}
    s, b = runs["distilled from the four"], runs["without a teacher (shipped)"]
    for name, r in runs.items():
        print(f"{name:28s} top-1 {100 * r['test_top1']:.2f} %, last ten epochs {100 * r['last10_mean_top1']:.2f} % "
              f"[{100 * r['last10_range'][0]:.2f}, {100 * r['last10_range'][1]:.2f}], train {100 * r['final_train_acc']:.1f} %, "
              f"{r['train_minutes']:.1f} min")
    gain = {"final_points": 100 * (s["test_top1"] - b["test_top1"]),
            "last10_mean_points": 100 * (s["last10_mean_top1"] - b["last10_mean_top1"])}
    print(f"distillation: {gain['final_points']:+.2f} points at the end, {gain['last10_mean_points']:+.2f} over the last ten epochs")

    plot_runs(runs, plot, "squeezenet_cifar, 80 epochs: distillation", per_epoch=True)
    write_results(out, {"what": "squeezenet_cifar distilled against the same recipe without a teacher",
                        "plot": str(plot.resolve()), "gain": gain,
                        "runs": {k: {kk: vv for kk, vv in v.items() if kk != "curve"} for k, v in runs.items()}})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["teachers", "student"])
    ap.add_argument("--teacher", action="append", type=Path, help="teacher weights (default: the four runs)")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--plot", type=Path, default=ROOT / "benchmarks" / "figures" / "cifar_distill.png")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if args.what == "teachers":
        paths = args.teacher or TEACHERS
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise SystemExit(f"teacher weights not found: {', '.join(missing)} (train them with the commands in BENCHMARKS.md)")
        teachers(paths, args.out or OUT / "teachers.json")
    else:
        student(args.out or OUT / "distill.json", args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
