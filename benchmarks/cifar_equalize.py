"""Cross-layer equalization (`sqz quantize --equalize`) on squeezenet_cifar at 4 bits, before fine-tuning,
on held-out *training* images: does rescaling channels help where 4-bit formats lose?

Per rule (none, weights, activations, balanced) and width (w4a4, w4a6: X-bit weights, Y-bit activations):

    python -m sqz quantize --model squeezenet_cifar --calib CIFAR --calib-limit 2000 \\
        --data <unpacked training split> --start 2000 --stop 6000 --weight-bits X --activation-bits Y \\
        --activation-rule minmse [--equalize RULE] --out .../equalize/<width>_<rule>/spec.json --json .../report.json

Calibration: training images 0-2,000 (as every CIFAR spec here); scored on training images 2,000-6,000
(400 per class, never calibrated on; the 10,000 test images are kept for the one rule chosen here, which
`benchmarks/cifar_finetune.py --equalize RULE` then fine-tunes and measures). Each step is skipped when its
report exists (rerun to resume; its time then comes from the previous equalize.json). Committed per step:
report.json, spec.json and log.txt (the spec's .weights.npz and plots are not: the command re-creates them). Prints the table, writes benchmarks/results/cifar/equalize/equalize.json.

    .venv/bin/python benchmarks/cifar_equalize.py [--widths w4a4,w4a6] [--rules none,weights,activations,balanced]
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from common import ROOT, run_sqz, write_results
from model.cifar10 import unpack
from model.trained import trained_params

CIFAR = ROOT.parent / "shared" / "data" / "cifar10"
OUT = ROOT / "benchmarks" / "results" / "cifar" / "equalize"
HELD_OUT = (2000, 6000)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--widths", default="w4a4,w4a6")
    ap.add_argument("--rules", default="none,weights,activations,balanced")
    args = ap.parse_args()
    train = unpack(CIFAR, "train")
    # what equalization could even out: per layer, the largest over the smallest channel weight range
    ranges = {n: np.abs(w).max(axis=(1, 2, 3)) for n, (w, _) in trained_params("squeezenet_cifar").items()}
    spread = {n: float(r.max() / r.min()) for n, r in ranges.items()}
    print("channel weight range, largest / smallest: " + ", ".join(f"{n} {v:.1f}" for n, v in spread.items()))
    rows = []
    previous = json.loads((OUT / "equalize.json").read_text())["rows"] if (OUT / "equalize.json").is_file() else []
    earlier = {(r["width"], r["rule"]): r.get("quantize_s") for r in previous}
    for width in args.widths.split(","):
        w, a = width[1:].split("a")
        for rule in args.rules.split(","):
            folder = OUT / f"{width}_{rule}"
            qargs = ["quantize", "--model", "squeezenet_cifar", "--calib", str(CIFAR), "--calib-limit", "2000",
                     "--data", str(train), "--start", str(HELD_OUT[0]), "--stop", str(HELD_OUT[1]),
                     "--weight-bits", w, "--activation-bits", a, "--activation-rule", "minmse",
                     "--out", str(folder / "spec.json"), "--json", str(folder / "report.json"), "--quiet",
                     "--work", str(ROOT / "runs" / f"equalize_{width}_{rule}.work")]
            qargs += ["--equalize", rule] if rule != "none" else []
            seconds = earlier.get((width, rule))
            if not (folder / "report.json").is_file():
                seconds = run_sqz(qargs, folder / "log.txt")
            r = json.loads((folder / "report.json").read_text())
            scales = json.loads((folder / "spec.json").read_text())["calibration"].get("equalize", {}).get("scales", {})
            row = {"width": width, "rule": rule, "float_top1": r["float"]["top1"], "fixed_top1": r["fixed"]["top1"],
                   "n": r["n"], "saturations": sum(r["saturations"].values()),
                   "scale_min": min((s["min"] for s in scales.values()), default=1.0),
                   "scale_max": max((s["max"] for s in scales.values()), default=1.0),
                   "quantize_s": seconds, "command": "python -m sqz " + " ".join(qargs)}
            rows.append(row)
            print(f"{width} {rule:12s} float {100 * row['float_top1']:.2f} %  fixed {100 * row['fixed_top1']:.2f} %  "
                  f"(n = {row['n']}, scales {row['scale_min']:.3g}..{row['scale_max']:.3g})", flush=True)
            write_results(OUT / "equalize.json", {"what": __doc__.splitlines()[0], "held_out_training_lines": HELD_OUT,
                                                  "channel_weight_range_ratio": spread, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
