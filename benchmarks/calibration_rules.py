"""Which integer-length rule wins? Ristretto's max-abs against percentile clipping and minimum MSE.

    .venv/bin/python benchmarks/calibration_rules.py [--bits 8] [--json benchmarks/results/calibration_rules.json]

Calibration on lines 1-300 of imagenet_val1300/labels.txt, scores on the other 1,000 (held out):
top-1, top-1 agreement with float, and the RMS logit error relative to the float logits' RMS
(a smoother measure than top-1, whose noise on 1,000 images is about +-0.5 points), and the mean KL
divergence of the fixed-point softmax from the float one (what the bit-width search ranks by).
"""
import argparse
import time

import numpy as np

from common import CALIB_STOP, calibrate, load_images, machine, real_model, results_path, write_results

# (weight range, activation range, percentile, weight rounding); the first row is Ristretto's own rule
RULES = [("maxabs", "maxabs", None, "nearest"), ("minmse", "maxabs", None, "nearest"),
         ("minmse", "percentile", 99.99, "nearest"), ("minmse", "percentile", 99.999, "nearest"),
         ("minmse", "percentile", 99.9999, "nearest"), ("minmse", "minmse", None, "nearest"),
         ("minmse", "maxabs", None, "gptq"), ("minmse", "percentile", 99.999, "gptq-inorder"),
         ("minmse", "percentile", 99.999, "gptq"), ("minmse", "percentile", 99.9999, "gptq"),
         ("minmse", "minmse", None, "gptq"), ("output", "percentile", 99.999, "gptq"),
         ("minmse", "percentile", 99.999, "gptq-dense"), ("output", "percentile", 99.999, "gptq-dense")]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bits", type=int, default=8)
    ap.add_argument("--limit", type=int, help="evaluate on fewer held-out images")
    ap.add_argument("--json", default=results_path(__file__), help="figures (default: %(default)s)")
    args = ap.parse_args()
    from quant.calibrate import make_spec
    from quant.emulator import FixedPointEmulator, FloatNetwork
    from quant.search import kl_divergence

    arch, params = real_model()
    cal_x, _ = load_images(stop=CALIB_STOP)
    cal, _ = calibrate(arch, params, cal_x)
    x, y = load_images(start=CALIB_STOP, limit=args.limit)
    ref = FloatNetwork(arch, params).logits(x)
    print(f"machine: {machine()}")
    print(f"calibration: {len(cal_x)} images (lines 1-{CALIB_STOP}); evaluation: {len(x)} held-out images")
    float_top1 = 100 * float(np.mean(ref.argmax(1) == y))
    print(f"float: top-1 {float_top1:.2f} %")
    print(f"{'weights':8s} {'activations':18s} {'rounding':12s} {'top-1 %':>8s} {'agree %':>8s} {'logit err':>9s} "
          f"{'KL':>7s} {'saturated':>9s}")
    rows = []
    for wr, ar, pc, wround in RULES:
        t = time.perf_counter()
        spec = make_spec(cal, args.bits, args.bits, wr, ar, pc or 99.999, weight_rounding=wround)
        em = FixedPointEmulator(arch, params, spec)
        codes = em.logit_codes(x)
        logits = spec.logit_format.to_float(codes)
        row = {"weights": wr, "activations": ar, "percentile": pc, "weight_rounding": wround,
               "top1": 100 * float(np.mean(codes.argmax(1) == y)),
               "agree": 100 * float(np.mean(codes.argmax(1) == ref.argmax(1))),
               "logit_error": float(np.sqrt(np.mean((logits - ref) ** 2) / np.mean(ref ** 2))),
               "kl": kl_divergence(ref, logits), "saturated": int(sum(em.saturations.values()))}
        rows.append(row)
        name = ar + (f" {pc}" if pc else "")
        print(f"{wr:8s} {name:18s} {wround:12s} {row['top1']:8.2f} {row['agree']:8.2f} {row['logit_error']:9.4f} "
              f"{row['kl']:7.4f} {row['saturated']:9d}   ({time.perf_counter() - t:.0f} s)", flush=True)
    write_results(args.json, {"bits": args.bits, "calibration_images": len(cal_x), "evaluation_images": len(x),
                              "float_top1": float_top1, "rows": rows})


if __name__ == "__main__":
    main()
