"""The CIFAR-10 Fire network candidates (model/architecture.py CIFAR_CANDIDATES): size, estimated
frames/s and resources on the PYNQ-Z2 and the Ultra96-V2, and a short accuracy probe.

Estimates (hw/estimate.py, ESTIMATES before synthesis): uniform W-bit formats (W = 8, 6, 4) (quant/formats.uniform_spec,
what `sqz hls --bits W` generates), folded by hw.estimate.choose_reuse as the fastest pipeline within
issue 13's limits (LUT <= 80 %, BRAM18 <= 90 %, DSP and the rest <= 100 %), at the board's default clock
(PYNQ-Z2 100 MHz, Ultra96-V2 150 MHz).

Probe (--probe): `python -m sqz train --model squeezenet_cifar_<v> --limit 10000 --epochs 4` (the same
recipe as the full run, on a fixed random 10,000 of the training images, 4 epochs), top-1 on all 10,000
test images: a ranking of the candidates, not their final accuracy. Runs resume from runs/probe_<v>/.

    .venv/bin/python benchmarks/cifar_candidates.py [--probe] [--json benchmarks/results/cifar/candidates.json]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

from common import ROOT, run_sqz  # also puts the repository on sys.path

from hw.boards import SMALL_BOARD_LIMITS  # noqa: E402
from hw.estimate import choose_reuse, estimate, utilisation_ceilings  # noqa: E402
from model.architecture import CIFAR_CANDIDATES, CIFAR_DEFAULT, bypasses, get_architecture  # noqa: E402

LIMITS = {k: v / 100 for k, v in utilisation_ceilings(SMALL_BOARD_LIMITS).items()}   # every resource named
BOARDS = ("pynq-z2", "ultra96-v2")
PROBE = {"limit": 10_000, "epochs": 4}
WIDTHS = (8, 6, 4)     # uniform formats estimated per candidate
RESULTS = ROOT / "benchmarks" / "results" / "cifar" / "candidates.json"


def macs(arch) -> int:
    return sum(math.prod(t["weight"]) * t["out"][0] * t["out"][1] for t in arch.conv_shapes().values())


def estimates(arch, bits: int) -> dict:
    out = {}
    for board in BOARDS:
        e = estimate(arch, board, bits, choose_reuse(arch, board, bits, utilisation_limit=LIMITS))
        out[board] = {"fps": round(e.fps, 1), "clock_mhz": e.clock_mhz, "dsp": e.dsp, "bram18": e.bram18,
                      "lut": e.lut, "utilisation": {k: round(v, 1) for k, v in e.utilisation.items()},
                      "fits": e.fits, "bottleneck": e.bottleneck}
    return out


def probe(variant: str, threads: int) -> dict:
    name = f"squeezenet_cifar_{variant}"
    run = ROOT / "runs" / f"probe_{variant}"
    env = dict(os.environ, TF_NUM_INTRAOP_THREADS=str(threads), TF_NUM_INTEROP_THREADS="1")
    args = ["train", "--model", name, "--data", str(ROOT.parent / "shared/data/cifar10"),
            "--limit", str(PROBE["limit"]), "--epochs", str(PROBE["epochs"]), "--seed", "0", "--out", str(run),
            "--json", str(run / "probe.json")]
    wall_s = run_sqz(args, env=env)
    s = json.loads((run / "probe.json").read_text())
    return {"test_top1": s["test_acc"], "per_epoch": [h["test_acc"] for h in s["history"]],
            "train_seconds": s["train_seconds"], "wall_s": wall_s, "threads": threads,
            "command": " ".join(["-m", "sqz", *args])}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--probe", action="store_true", help="also run the 4-epoch accuracy probes (minutes each)")
    ap.add_argument("--threads", type=int, default=1, help="TensorFlow threads per probe")
    ap.add_argument("--only", help="comma-separated candidates")
    ap.add_argument("--json", default=str(RESULTS))
    args = ap.parse_args()
    previous = json.loads(Path(args.json).read_text()) if Path(args.json).is_file() else {}
    rows = previous.get("candidates", {})
    # a candidate with Fire bypasses (h) has no hardware yet (model.architecture.refuse_bypass): no estimate
    built = [v for v in CIFAR_CANDIDATES if not bypasses(get_architecture(f"squeezenet_cifar_{v}"))]
    variants = args.only.split(",") if args.only else built
    for v in set(variants) - set(CIFAR_CANDIDATES):
        ap.error(f"unknown candidate {v!r}; known: {', '.join(CIFAR_CANDIDATES)}")
    for v in set(variants) - set(built):
        ap.error(f"candidate {v!r} has Fire bypasses, which hw/ does not build yet: no estimate to make")
    print(f"{'cand':<5}{'params':>8}{'MMAC':>7}  {'bits':>4}  {'PYNQ-Z2 fps':>11} {'LUT%':>5} {'BRAM%':>6} {'DSP%':>5}"
          f"  {'U96 fps':>8} {'LUT%':>5}  {'probe top-1':>11}")
    for v in variants:
        arch = get_architecture(f"squeezenet_cifar_{v}")
        row = rows.get(v, {})
        row.update({"architecture": f"squeezenet_cifar_{v}", "stem": CIFAR_CANDIDATES[v][0],
                    "body": [x if x == "P" else list(x) for x in CIFAR_CANDIDATES[v][1]],
                    "params": arch.num_params(), "macs": macs(arch),
                    "estimates": {str(b): estimates(arch, b) for b in WIDTHS}})
        if args.probe and "probe" not in row:
            row["probe"] = probe(v, args.threads)
        rows[v] = row
        for b in WIDTHS:
            p, u = row["estimates"][str(b)]["pynq-z2"], row["estimates"][str(b)]["ultra96-v2"]
            pr = f"{100 * row['probe']['test_top1']:.2f} %" if "probe" in row else "-"
            print(f"{v:<5}{row['params']:>8}{row['macs'] / 1e6:>7.1f}  {b:>4}  {p['fps']:>11.0f} "
                  f"{p['utilisation']['lut']:>5.0f} {p['utilisation']['bram18']:>6.0f} {p['utilisation']['dsp']:>5.0f}"
                  f"  {u['fps']:>8.0f} {u['utilisation']['lut']:>5.0f}  {pr:>11}")
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"what": __doc__.splitlines()[0], "limits": LIMITS, "probe": PROBE,
                                               "chosen": CIFAR_DEFAULT, "candidates": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
