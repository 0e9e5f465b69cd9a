"""squeezenet_cifar in fixed point at 8, 6 and 4 bits, before and after Ristretto fine-tuning, on the
10,000 CIFAR-10 test images (the bit-exact emulator; float = Keras with the folded weights).

Per width W (weights and activations both W bits; input ap_fixed<9,9>, logits 16 bits, exact accumulators;
a width written wXaY, e.g. w4a6, means X-bit weights and Y-bit activations, in folders q_w4a6/, ft_w4a6/):
  1. python -m sqz quantize --model squeezenet_cifar --calib CIFAR --calib-limit 2000 --data CIFAR
         --weight-bits W --activation-bits W --out benchmarks/results/cifar/q{W}/spec.json --json .../report.json
     (calibration: the first 2,000 training images of the interleaved list, 200 per class; GPTQ rounding)
  2. python -m sqz finetune --model squeezenet_cifar --spec .../q{W}/spec.json --calib CIFAR
         --calib-limit N --epochs E --lr LR --data CIFAR --out .../ft{W}/spec.json --json .../report.json
     (Adam, cosine from LR; all 50,000 training images, 2 epochs, by default)
Each step is skipped when its report exists (rerun to resume). Prints the table, writes
benchmarks/results/cifar/finetune.json.

    .venv/bin/python benchmarks/cifar_finetune.py [--bits 8,6,4] [--ft-images 50000] [--epochs 2]
        [--model squeezenet_cifar] [--results benchmarks/results/cifar] [--lr 8:1e-5,w4a6:1e-4,...]
        [--activation-rule maxabs|percentile|minmse] [--equalize weights|activations|balanced]
        [--train-biases] [--teacher W.npz ...] [--seed S] [--init-from SPEC0] [--label-smoothing LS]
        [--lr-scale step]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from common import ROOT, run_sqz  # also puts the repository on sys.path

from quant.calibrate import ACTIVATION_RULES  # noqa: E402
from quant.equalize import EQUALIZE_RULES  # noqa: E402
from quant.finetune import LR_SCALES  # noqa: E402

CIFAR = str(ROOT.parent / "shared" / "data" / "cifar10")
OUT = ROOT / "benchmarks" / "results" / "cifar"


def rel(p: Path) -> str:
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p)


def parse_width(token: str) -> tuple[str, int, int]:
    """'6' -> ('6', 6, 6); 'w4a6' -> ('w4a6', 4, 6): (name, weight bits, activation bits)."""
    t = token.strip().lower()
    if t.isdigit():
        return t, int(t), int(t)
    if t.startswith("w") and "a" in t:
        w, a = t[1:].split("a", 1)
        if w.isdigit() and a.isdigit():
            return t, int(w), int(a)
    raise SystemExit(f"--bits: {token!r} is neither a width (6) nor weight/activation widths (w4a6)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bits", default="8,6,4")
    ap.add_argument("--calib-images", type=int, default=2000)
    ap.add_argument("--ft-images", type=int, default=50000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--model", default="squeezenet_cifar")
    ap.add_argument("--results", default=str(OUT), help="folder for q{W}/, ft{W}/ and finetune.json")
    ap.add_argument("--lr", default="8:0.00001,6:0.00001,4:0.0001", help="fine-tuning learning rate per width (Adam)")
    ap.add_argument("--activation-rule", choices=ACTIVATION_RULES,
                    help="sqz quantize --activation-rule (default: quantize's own, the percentile rule)")
    ap.add_argument("--equalize", choices=EQUALIZE_RULES,
                    help="sqz quantize --equalize (cross-layer equalization before calibration)")
    ap.add_argument("--train-biases", action="store_true", help="sqz finetune --train-biases (biases trained too)")
    ap.add_argument("--seed", type=int, default=0, help="sqz finetune --seed (the batches' order, the crops and flips)")
    ap.add_argument("--teacher", action="append", default=[], help="sqz finetune --teacher (distillation; repeatable)")
    ap.add_argument("--label-smoothing", type=float, default=0.0,
                    help="sqz finetune --label-smoothing (the training's smoothed cross-entropy)")
    ap.add_argument("--lr-scale", default="absolute", choices=LR_SCALES,
                    help="sqz finetune --lr-scale (step: --lr in units of each layer's weight step)")
    ap.add_argument("--init-from", metavar="SPEC0", help="sqz finetune --init-from (the shadow weights start at "
                                                         "SPEC0's weights: progressive quantization)")
    args = ap.parse_args()
    lrs = {k.strip().lower(): v for k, v in (kv.split(":") for kv in args.lr.split(","))}
    out = Path(args.results).resolve()
    rows = {}
    for name, w, a in (parse_width(b) for b in args.bits.split(",")):
        folder = name if name.isdigit() else f"_{name}"
        q, ft = out / f"q{folder}", out / f"ft{folder}"
        if name not in lrs:
            raise SystemExit(f"--lr names no learning rate for width {name!r} (give {name}:LR)")
        q.mkdir(parents=True, exist_ok=True)
        ft.mkdir(parents=True, exist_ok=True)
        rule = args.activation_rule
        tag = "".join("_" + t for t in (rule, args.equalize and "eq" + args.equalize) if t)
        work = ROOT / "runs" / f"{args.model}_q{folder}{tag}.work"   # per rule: its own logs
        qargs = ["quantize", "--model", args.model, "--calib", CIFAR, "--calib-limit", str(args.calib_images),
                 "--data", CIFAR, "--weight-bits", str(w), "--activation-bits", str(a), "--out", rel(q / "spec.json"),
                 "--json", rel(q / "report.json"), "--quiet", "--work", str(work)]
        qargs += ["--activation-rule", rule] if rule else []
        qargs += ["--equalize", args.equalize] if args.equalize else []
        fargs = ["finetune", "--model", args.model, "--spec", rel(q / "spec.json"), "--calib", CIFAR,
                 "--calib-limit", str(args.ft_images), "--epochs", str(args.epochs), "--lr", lrs[name], "--data", CIFAR,
                 "--out", rel(ft / "spec.json"), "--json", rel(ft / "report.json"), "--quiet"]
        fargs += ["--train-biases"] if args.train_biases else []
        fargs += ["--seed", str(args.seed)] if args.seed else []
        fargs += [a for t in args.teacher for a in ("--teacher", t)]
        fargs += ["--init-from", args.init_from] if args.init_from else []
        fargs += ["--label-smoothing", str(args.label_smoothing)] if args.label_smoothing else []
        fargs += ["--lr-scale", args.lr_scale] if args.lr_scale != "absolute" else []
        times = {}
        if not (q / "report.json").is_file():
            times["quantize_s"] = run_sqz(qargs, q / "log.txt")
        if not (ft / "report.json").is_file():
            times["finetune_s"] = run_sqz(fargs, ft / "log.txt")
        qr, fr = json.loads((q / "report.json").read_text()), json.loads((ft / "report.json").read_text())
        rows[name] = {"bits": w if w == a else name, "weight_bits": w, "activation_bits": a,
                      "activation_rule": qr["rules"]["activations"], "equalize": qr["rules"].get("equalize"),
                      "float_top1": qr["float"]["top1"], "before_top1": qr["fixed"]["top1"],
                      "after_top1": fr["fixed"]["top1"], "finetune_before_check": fr["before"]["top1"], "n": fr["n"],
                      "finetune": {k: fr["finetune"].get(k, False)
                                   for k in ("epochs", "lr", "optimizer", "images", "seconds", "batch_size", "seed",
                                             "train_biases", "distill", "init_from", "label_smoothing", "lr_scale")},
                      "commands": ["python -m sqz " + " ".join(qargs), "python -m sqz " + " ".join(fargs)], **times}
        r = rows[name]
        print(f"{name}-bit: float {100 * r['float_top1']:.2f} %  before {100 * r['before_top1']:.2f} %  "
              f"after {100 * r['after_top1']:.2f} %  (n = {r['n']})", flush=True)
        (out / "finetune.json").write_text(json.dumps({"what": __doc__.splitlines()[0], "model": args.model,
                                                       "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
