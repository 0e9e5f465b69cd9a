"""Experiment (not part of the quantizer): input-aware GPTQ on one configuration of a search path.

    .venv/bin/python benchmarks/input_aware_gptq.py STEP [REPORT.json] [--json OUT.json]      # ~12 min

Plain GPTQ rounds each layer to reproduce W x on the *float* inputs x. Here the layers are rounded in
network order, each against the inputs x_q the already-rounded network really feeds it: the codes minimize
||W_q x_q - W x_f||^2 over the calibration images, i.e. GPTQ of W* = W C^T H_q^-1 with H_q = E[x_q x_q^T],
C = E[x_q x_f^T] (pruned weights stay zero). It needs the upstream codes, so every width configuration
gets its own codes -- too slow inside the search (one full pass per layer); measured here on one step of
a search path (REPORT.json["search"]["path"], default the committed benchmarks/results/q_margin01/report.json),
before and after, on the calibration images and on the held-out ones. Figures to OUT.json (default
benchmarks/results/input_aware_gptq.json).
"""
import argparse
import json
import time

import numpy as np
from common import (CALIB_STOP, MARGIN_REPORT, calibrate, fixed_point_scores, load_images, machine, real_model,
                    results_path, write_results)
import quant.emulator as E
from quant import arithmetic as A
from quant.calibrate import make_spec
from quant.emulator import FixedPointEmulator, FloatNetwork
from quant.rounding import gptq_codes

ap = argparse.ArgumentParser()
ap.add_argument("step", type=int)
ap.add_argument("report", nargs="?", default=str(MARGIN_REPORT))
ap.add_argument("--json", default=results_path(__file__), help="figures (default: %(default)s)")
args = ap.parse_args()
arch, params = real_model()
names = [c.name for c in arch.convs()]
convs = {c.name: c for c in arch.convs()}
cx, cy = load_images(stop=CALIB_STOP)
cal, cref = calibrate(arch, params, cx)
hx, hy = load_images(start=CALIB_STOP)
href = FloatNetwork(arch, params).logits(hx)
report = json.load(open(args.report))
step = args.step
wbits = report["search"]["path"][step]["weight_bits"]
refined = {}
orig_codes = cal.weight_codes
def patched(name, fmt, rounding):
    return refined[name] if name in refined else orig_codes(name, fmt, rounding)
cal.weight_codes = patched
def spec_now():
    # compared with plain GPTQ that keeps the pruned zeros, as the refinement below does
    return make_spec(cal, wbits, report["activation_bits"]["conv1"], weight_rule=report["rules"]["weights"],
                     weight_rounding="gptq")
def score(spec, x, y, ref):
    return fixed_point_scores(arch, params, spec, x, y, ref)
s0 = spec_now()
print(f"machine: {machine()}; path step {step}: {report['search']['path'][step]['weight_bytes'] / 1e6:.3f} MB; "
      "scores are (top-1 %, agreement with float %, KL)")
before = {"search": score(s0, cx, cy, cref), "held_out": score(s0, hx, hy, href)}
print("before: search", before["search"], "held-out", before["held_out"], flush=True)
fnet = FloatNetwork(arch, params)
for name in names:
    t = time.time()
    spec = spec_now()
    em = FixedPointEmulator(arch, params, spec)
    target = em.layers[name]["wmat"]
    conv = convs[name]
    fin = spec.input_format(name, arch)
    K = A.weight_matrix(params[name][0]).shape[0]
    Hq = np.zeros((K, K)); C = np.zeros((K, K))
    for i in range(0, len(cx), 50):
        xb = cx[i:i+50]
        got = {}
        real = A.conv2d
        def spy(inp, wmat, *a, **k):
            if wmat is target: got["q"] = np.asarray(inp, np.float32) * np.float32(2.0 ** -fin.frac)
            return real(inp, wmat, *a, **k)
        E.A.conv2d = spy
        try:
            em._forward(xb, True)
        finally:
            E.A.conv2d = real
        fl = []
        fnet.logits(xb, observer=lambda n, kind, a: fl.append(np.array(a)) if (n == name and kind == "input") else None)
        got["f"] = np.concatenate(fl)
        pq = A.patches(got["q"], conv.kernel, conv.stride, conv.pad).astype(np.float64)
        pf = A.patches(np.asarray(got["f"], np.float32), conv.kernel, conv.stride, conv.pad).astype(np.float64)
        Hq += pq.T @ pq; C += pq.T @ pf
    W = A.weight_matrix(np.asarray(params[name][0], np.float64)).T      # (O, K)
    mask = W != 0
    Hd = Hq + 0.01 * np.mean(np.diag(Hq)) * np.eye(K)
    Wstar = (W @ C.T) @ np.linalg.inv(Hd) * mask
    kh = params[name][0].shape[2]
    w_oihw = Wstar.reshape(W.shape[0], kh, kh, -1).transpose(0, 3, 1, 2)
    refined[name] = gptq_codes(w_oihw, Hq / len(cx), spec.layers[name].weight)
    print(name, f"{time.time()-t:.1f}s", flush=True)
s1 = spec_now()
after = {"search": score(s1, cx, cy, cref), "held_out": score(s1, hx, hy, href)}
print("after: search", after["search"], "held-out", after["held_out"], flush=True)
write_results(args.json, {"report": args.report, "step": step,
                          "weight_bytes": report["search"]["path"][step]["weight_bytes"],
                          "scores": "(top-1 %, agreement with float %, KL)", "before": before, "after": after})
