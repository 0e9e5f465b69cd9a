"""Float vs fixed point, layer by layer: how much error each layer's output carries (SQNR).

Both networks run on the same images; the fixed-point one is the bit-exact emulator (its output codes
times the result format's LSB), the float one the reference it approximates. The error at a layer is
everything accumulated up to it (the fixed network is fed its own, already rounded, inputs), which is
what the hardware delivers: SQNR = 10 log10(sum f^2 / sum (f - q)^2) per layer, in dB.
"""
from __future__ import annotations

import math

import numpy as np

from quant.emulator import FixedPointEmulator, FloatNetwork


def layer_sqnr(arch, params, spec, images: np.ndarray, batch_size: int = 4) -> list[dict]:
    """[{"layer", "sqnr_db", "signal_rms", "error_rms", "max_abs_error", "values"}] for every conv (in
    network order) and the logits ("logits")."""
    float_net = FloatNetwork(arch, params)   # the trained float weights, not the spec's codes
    emulator = FixedPointEmulator(arch, params, spec)
    names = [c.name for c in arch.convs()]
    lsb = {n: spec.layers[n].result.lsb for n in names}
    sums = {n: [0.0, 0.0, 0.0, 0] for n in names + ["logits"]}   # sum f^2, sum e^2, max |e|, count

    def add(name, f, q):
        e = f.astype(np.float64) - q
        s = sums[name]
        s[0] += float(np.sum(np.square(f, dtype=np.float64)))
        s[1] += float(np.sum(np.square(e)))
        s[2] = max(s[2], float(np.max(np.abs(e))) if e.size else 0.0)
        s[3] += e.size

    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size]
        float_maps = {}

        def observe(name, kind, a):
            if kind == "output" and name in lsb:
                float_maps[name] = a.copy()

        float_logits = float_net.logits(x, observer=observe, batch_size=batch_size)
        codes, fixed_maps = emulator.trace(x)
        for n in names:
            add(n, float_maps[n], fixed_maps[n] * lsb[n])
        add("logits", float_logits, spec.logit_format.to_float(codes))
    rows = []
    for name, (sig, err, max_err, count) in sums.items():
        sqnr = math.inf if err == 0 else (10 * math.log10(sig / err) if sig > 0 else -math.inf)
        rows.append({"layer": name, "sqnr_db": sqnr, "signal_rms": math.sqrt(sig / count) if count else None,
                     "error_rms": math.sqrt(err / count) if count else None, "max_abs_error": max_err,
                     "values": count})
    return rows
