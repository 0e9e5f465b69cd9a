"""The bit-width search's path scored on held-out images: the Pareto curve a user can trust.

    .venv/bin/python benchmarks/pareto_heldout.py [--report REPORT.json] [--points 12] [--steps I ...]

`sqz quantize --margin M` writes its allocation path (one configuration per step, widest first) into
REPORT.json["search"]["path"] (default: the committed benchmarks/results/q_margin01/report.json). This
script rebuilds the same calibration (the report's calibration lines and rules), takes about `--points`
configurations spread evenly over the path's weight storage (always the chosen one, and the path steps
`--steps`), and scores each with the bit-exact emulator on the report's evaluation images: top-1,
agreement with float, KL divergence. Results are appended to LOG.jsonl as they come (a re-run resumes);
the figures go to benchmarks/results/pareto_heldout.json (`--json`); a PNG shows held-out top-1 against
dense weight storage with the float line and the margin.
"""
import argparse
import json
import time
from pathlib import Path

import numpy as np

from common import MARGIN_REPORT, ROOT, calibrate, load_images, machine, real_model, results_path, write_results


def spread(path: list[dict], n: int, chosen: dict, steps=()) -> list[int]:
    """Indices of about n path entries evenly spaced in weight bytes, plus the chosen configuration's and
    `steps`."""
    sizes = np.array([p["weight_bytes"] for p in path])
    want = np.linspace(sizes[0], sizes[-1], n)
    picks = {int(np.argmin(np.abs(sizes - w))) for w in want} | set(steps)
    picks |= {i for i, p in enumerate(path) if p["weight_bits"] == chosen}
    return sorted(picks)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--report", default=str(MARGIN_REPORT), help="REPORT.json of `sqz quantize --margin ...` "
                    "(default: %(default)s)")
    ap.add_argument("--points", type=int, default=12)
    ap.add_argument("--steps", type=int, nargs="*", default=(), help="path steps scored as well")
    ap.add_argument("--log", help="scores as they come, resumed from (JSON lines; default: "
                    "runs/pareto_heldout/<the report's folder>.jsonl)")
    ap.add_argument("--json", default=results_path(__file__), help="figures (default: %(default)s)")
    ap.add_argument("--plot", default=str(ROOT / "benchmarks" / "figures" / "pareto_heldout.png"))
    args = ap.parse_args()
    from quant.calibrate import make_spec
    from quant.emulator import FixedPointEmulator, FloatNetwork
    from quant.search import kl_divergence

    report = json.loads(Path(args.report).read_text())
    if not report.get("search", {}).get("path"):
        raise SystemExit(f"{args.report}: no search path in it (run `sqz quantize --margin ...` first)")
    out = Path(args.log) if args.log else ROOT / "runs" / "pareto_heldout" / f"{Path(args.report).parent.name}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {}
    if out.exists():
        for line in out.read_text().splitlines():
            rec = json.loads(line)
            done[rec["index"]] = rec
    rules, csel, esel = report["rules"], report["calibration"]["selection"], report["evaluation"]["selection"]
    arch, params = real_model()
    cal_x, _ = load_images(start=csel["start"], stop=csel["stop"], limit=csel["limit"])
    cal, _ = calibrate(arch, params, cal_x)
    x, y = load_images(start=esel["start"], stop=esel["stop"], limit=esel["limit"])
    ref = FloatNetwork(arch, params).logits(x)
    float_top1 = float(np.mean(ref.argmax(1) == y))
    path, chosen = report["search"]["path"], report["weight_bits"]
    abits = report["activation_bits"]
    print(f"machine: {machine()}")
    print(f"{args.report}: path of {len(path)} configurations; held-out: {len(x)} images "
          f"(lines {esel['first_line']}-{esel['last_line']}), float top-1 {100 * float_top1:.2f} %")
    print(f"{'path':>5s} {'MB':>7s} {'top-1 %':>8s} {'change':>7s} {'agree %':>8s} {'KL':>7s}")
    rows = []
    for i in spread(path, args.points, chosen, args.steps):
        if i not in done or done[i]["weight_bytes"] != path[i]["weight_bytes"]:   # (not from another path)
            t = time.perf_counter()
            spec = make_spec(cal, path[i]["weight_bits"], {n: abits[n] for n in path[i]["weight_bits"]},
                             rules["weights"], rules["activations"], rules["percentile"], rules["rounding"],
                             weight_rounding=rules["weight_rounding"])
            codes = FixedPointEmulator(arch, params, spec).logit_codes(x)
            logits = spec.logit_format.to_float(codes)
            done[i] = {"index": i, "weight_bytes": path[i]["weight_bytes"], "chosen": path[i]["weight_bits"] == chosen,
                       "top1": float(np.mean(codes.argmax(1) == y)), "float_top1": float_top1,
                       "agree": float(np.mean(codes.argmax(1) == ref.argmax(1))), "kl": kl_divergence(ref, logits),
                       "seconds": time.perf_counter() - t}
            with out.open("a") as f:
                f.write(json.dumps(done[i]) + "\n")
        r = done[i]
        r["chosen"] = path[i]["weight_bits"] == chosen     # (a resumed log may come from an earlier search's choice)
        print(f"{i:5d} {r['weight_bytes'] / 1e6:7.3f} {100 * r['top1']:8.2f} {100 * (r['top1'] - float_top1):+7.2f} "
              f"{100 * r['agree']:8.2f} {r['kl']:7.4f}{'  <- chosen by the search' if r['chosen'] else ''}", flush=True)
        rows.append({k: r[k] for k in ("index", "weight_bytes", "chosen", "top1", "agree", "kl")})
    plot(sorted(done.values(), key=lambda r: r["weight_bytes"]), float_top1, report.get("margin"), args.plot)
    print(f"plot: {args.plot}")
    write_results(args.json, {"report": args.report, "evaluation_images": len(x), "float_top1": float_top1,
                              "path_steps": len(path), "rows": rows})


def plot(rows, float_top1, margin, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from quant.plots import finish_top1_plot

    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot([r["weight_bytes"] / 1e6 for r in rows], [100 * r["top1"] for r in rows], "o-", ms=4,
            label="held-out top-1 along the search path")
    for r in rows:
        if r["chosen"]:
            ax.plot(r["weight_bytes"] / 1e6, 100 * r["top1"], "*", ms=14, color="tab:orange", label="chosen")
    ax.axvline(0.9, color="0.5", ls=":", lw=1, label="0.9 MB")
    # the region where the margin is decided; configurations far below it are in the printed table
    ax.set_ylim(100 * float_top1 - 12, 100 * float_top1 + 2)
    ax.set_xlim(min(r["weight_bytes"] for r in rows if r["top1"] >= float_top1 - 0.12) / 1e6 - 0.05, None)
    finish_top1_plot(fig, ax, float_top1, margin, "top-1 on held-out images (%)", path)


if __name__ == "__main__":
    main()
