"""GPTQ keeping Deep Compression's pruned zeros ('gptq') against GPTQ over every position ('gptq-dense').

    .venv/bin/python benchmarks/dense_rounding.py STEP [STEP ...] [--report REPORT.json] [--json OUT.json]

For the weight widths of the given steps of a search path (REPORT.json["search"]["path"], default the
committed benchmarks/results/q_margin01/report.json), builds the spec with each rounding (the report's
weight rule and activation widths) and scores both on the held-out images: top-1, agreement with float,
KL; and how many weights are pruned. Calibration lines 1-300, evaluation the other 1,000 (benchmarks/common.py).
Figures to OUT.json (default benchmarks/results/dense_rounding.json).
"""
import argparse
import json

import numpy as np

from common import (CALIB_STOP, MARGIN_REPORT, calibrate, fixed_point_scores, load_images, machine, real_model,
                    results_path, write_results)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("steps", type=int, nargs="+")
    ap.add_argument("--report", default=str(MARGIN_REPORT))
    ap.add_argument("--json", default=results_path(__file__), help="figures (default: %(default)s)")
    args = ap.parse_args()
    from quant.calibrate import make_spec
    from quant.emulator import FloatNetwork

    report = json.loads(open(args.report).read())
    path, abits, rule = report["search"]["path"], report["activation_bits"], report["rules"]["weights"]
    arch, params = real_model()
    cal, _ = calibrate(arch, params, load_images(stop=CALIB_STOP)[0])
    hx, hy = load_images(start=CALIB_STOP)
    ref = FloatNetwork(arch, params).logits(hx)
    nonzero = sum(int(np.count_nonzero(w)) for w, _ in params.values())
    total = sum(w.size for w, _ in params.values())
    print(f"machine: {machine()}; {args.report}; held-out {len(hx)} images")
    print(f"weights: {nonzero:,} of {total:,} non-zero ({100 * nonzero / total:.1f} %): the rest are pruned "
          f"positions that only 'gptq-dense' may give codes")
    print(f"{'step':>4s} {'MB':>6s} {'rounding':11s} {'top-1 %':>8s} {'agree %':>8s} {'KL':>7s}")
    rows = []
    for step in args.steps:
        wbits = path[step]["weight_bits"]
        for rounding in ("gptq", "gptq-dense"):
            spec = make_spec(cal, wbits, {n: abits[n] for n in wbits}, rule, weight_rounding=rounding)
            t1, agree, kl = fixed_point_scores(arch, params, spec, hx, hy, ref)
            rows.append({"step": step, "weight_bytes": path[step]["weight_bytes"], "rounding": rounding,
                         "top1": t1, "agree": agree, "kl": kl})
            print(f"{step:4d} {path[step]['weight_bytes'] / 1e6:6.3f} {rounding:11s} {t1:8.2f} {agree:8.2f} {kl:7.4f}",
                  flush=True)
    write_results(args.json, {"report": args.report, "evaluation_images": len(hx), "nonzero_weights": nonzero,
                              "weights": total, "rows": rows})


if __name__ == "__main__":
    main()
