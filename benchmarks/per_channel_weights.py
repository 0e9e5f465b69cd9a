"""Experiment (not built in hw/): would per-output-channel power-of-two weight formats reach 0.9 MB?

    .venv/bin/python benchmarks/per_channel_weights.py STEP [STEP ...] [--report REPORT.json] [--json OUT.json]

For the widths of the given steps of a search path (REPORT.json["search"]["path"], default the committed
benchmarks/results/q_margin01/report.json), compares on the held-out images (figures to OUT.json,
default benchmarks/results/per_channel_weights.json):
  per-layer    what sqz builds: one weight format per layer (the report's rule), GPTQ codes;
  per-channel  each output channel o gets its own integer length I_o <= the layer's (min-MSE over that
               channel's weights), i.e. a left shift s_o = I - I_o that a kernel would apply per channel.
               GPTQ's objective is separable by output channel, so the channel's row is scaled by 2**s_o
               and rounded in the layer's format. Storage stays W bits per weight (+ a few bits per channel).
The per-channel codes are exact in a wider per-layer format (W + max s_o bits), so the existing bit-exact
emulator computes them unchanged: the accuracy measured is that of the per-channel scheme.
"""
import argparse
import json

import numpy as np

from common import (CALIB_STOP, MARGIN_REPORT, calibrate, fixed_point_scores, load_images, machine, real_model,
                    results_path, write_results)

MAX_SHIFT = 6      # per-channel shifts beyond this gain nothing measurable and widen the emulated format


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("steps", type=int, nargs="+")
    ap.add_argument("--report", default=str(MARGIN_REPORT))
    ap.add_argument("--json", default=results_path(__file__), help="figures (default: %(default)s)")
    args = ap.parse_args()
    from quant.calibrate import make_spec, weight_integer_bits
    from quant.emulator import FloatNetwork
    from quant.rounding import gptq_codes

    report = json.loads(open(args.report).read())
    rule, abits = report["rules"]["weights"], report["activation_bits"]["conv1"]
    rounding = report["rules"]["weight_rounding"]      # the report's own codes for the per-layer scheme
    arch, params = real_model()
    cx, _ = load_images(stop=CALIB_STOP)
    cal, _ = calibrate(arch, params, cx)
    hx, hy = load_images(start=CALIB_STOP)
    ref = FloatNetwork(arch, params).logits(hx)
    print(f"machine: {machine()}; held-out {len(hx)} images, float top-1 {100 * np.mean(ref.argmax(1) == hy):.2f} %")

    def score(spec):
        return fixed_point_scores(arch, params, spec, hx, hy, ref)

    def per_channel_spec(wbits):
        base = make_spec(cal, wbits, abits, weight_rule=rule, weight_rounding=rounding)
        wide_bits, integer, codes = {}, {}, {}
        for name, w_bits in wbits.items():
            fmt = base.layers[name].weight
            w = np.asarray(params[name][0], np.float64)
            shifts = np.array([min(max(fmt.integer - weight_integer_bits(row, w_bits, "minmse"), 0), MAX_SHIFT)
                               if np.any(row) else 0 for row in w])
            scaled = w * (2.0 ** shifts)[:, None, None, None]
            c = gptq_codes(scaled, cal.hessian(name), fmt,          # the layer's format, rows pre-shifted
                           keep_zeros=rounding != "gptq-dense")
            top = int(shifts.max())
            codes[name] = c * (2 ** (top - shifts))[:, None, None, None]   # exact in W + top bits
            wide_bits[name], integer[name] = w_bits + top, fmt.integer
        orig_codes, orig_il = cal.weight_codes, cal.output_integer_bits
        cal.weight_codes = lambda name, fmt, rounding: codes[name]
        cal.output_integer_bits = lambda name, width, rounding: integer[name]
        try:
            return make_spec(cal, wide_bits, abits, weight_rule="output"), wide_bits
        finally:
            cal.weight_codes, cal.output_integer_bits = orig_codes, orig_il

    print(f"{'step':>4s} {'MB':>6s} {'scheme':12s} {'top-1 %':>8s} {'agree %':>8s} {'KL':>7s}")
    rows = []
    for step in args.steps:
        entry = report["search"]["path"][step]
        wbits = entry["weight_bits"]
        for scheme in ("per-layer", "per-channel"):
            spec = make_spec(cal, wbits, abits, weight_rule=rule, weight_rounding=rounding) if scheme == "per-layer" else per_channel_spec(wbits)[0]
            t1, ag, kl = score(spec)
            rows.append({"step": step, "weight_bytes": entry["weight_bytes"], "scheme": scheme, "top1": t1,
                         "agree": ag, "kl": kl})
            print(f"{step:4d} {entry['weight_bytes'] / 1e6:6.3f} {scheme:12s} {t1:8.2f} {ag:8.2f} {kl:7.4f}", flush=True)
    write_results(args.json, {"report": args.report, "weight_rounding": rounding, "evaluation_images": len(hx),
                              "rows": rows})


if __name__ == "__main__":
    main()
