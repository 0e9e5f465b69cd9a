"""Are min-MSE's per-layer 4-bit activation formats the best power-of-two choice for the *network*?

`--activation-rule minmse` picks each layer's integer length by that layer's own squared error on the float
network's outputs. The network-level alternative: start there and move one format at a time (a Fire module's
two expands as one) by -1 or +1, keeping a move when the mean KL divergence of the bit-exact emulator's softmax
from the float network's falls, until a sweep over all formats moves none (coordinate descent, the smooth
measure quant/search.py uses). Scored on the calibration images themselves (training images 0-2,000), as a
calibration rule would be; checked on held-out training images 2,000-6,000 and on the 10,000 test images,
before any fine-tuning. 4-bit weights (GPTQ codes), 4-bit activations. If the searched formats beat
min-MSE's clearly, they would be the start of the 4-bit fine-tuning.

    .venv/bin/python benchmarks/cifar_a4_formats.py     # benchmarks/results/cifar/a4_formats.json
"""
from __future__ import annotations

import sys
import time

import numpy as np

from cifar_a4_sensitivity import CALIB, CIFAR, HELD_OUT, load
from common import ROOT, write_results
from model.architecture import get_architecture
from model.cifar10 import unpack
from model.trained import trained_params
from quant.calibrate import Calibration, activation_groups, make_spec
from quant.emulator import FixedPointEmulator, FloatNetwork
from quant.search import kl_divergence

BITS = 4
MAX_SWEEPS = 4
OUT = ROOT / "benchmarks" / "results" / "cifar" / "a4_formats.json"


def main() -> int:
    arch = get_architecture("squeezenet_cifar")
    params = trained_params("squeezenet_cifar")
    cal = Calibration(arch, params)
    sets = {"calibration": load(unpack(CIFAR, "train"), arch, CALIB),
            "held_out": load(unpack(CIFAR, "train"), arch, HELD_OUT),
            "test": load(unpack(CIFAR, "test"), arch, (0, None))}
    xc = sets["calibration"][0]
    for i in range(0, len(xc), 100):
        cal.add_batch(xc[i:i + 100])
    floats = {k: FloatNetwork(arch, params).logits(x) for k, (x, _) in sets.items()}

    def spec_of(integers):
        return make_spec(cal, BITS, BITS, "minmse", "minmse", activation_integers=integers)

    def score(spec, which) -> dict:
        x, y = sets[which]
        codes = FixedPointEmulator(arch, params, spec).logit_codes(x)
        return {"kl": kl_divergence(floats[which], spec.logit_format.to_float(codes)),
                "top1": float(np.mean(codes.argmax(1) == y))}

    groups = activation_groups(arch)
    start = spec_of(None)
    integers = {n: start.layers[n].result.integer for g in groups for n in g}
    minmse = dict(integers)
    current = score(start, "calibration")
    moves, t0 = [], time.perf_counter()
    print(f"min-MSE formats: calibration KL {current['kl']:.4f}, top-1 {100 * current['top1']:.2f} %", flush=True)
    for sweep in range(1, MAX_SWEEPS + 1):
        moved = False
        for g in groups:
            for step in (-1, 1):
                trial = dict(integers, **{n: integers[n] + step for n in g})
                s = score(spec_of(trial), "calibration")
                if s["kl"] < current["kl"]:
                    integers, current, moved = trial, s, True
                    moves.append({"sweep": sweep, "format": g, "step": step, "calibration": s})
                    print(f"sweep {sweep}: {'+'.join(g)} {step:+d} -> calibration KL {s['kl']:.4f}", flush=True)
                    break
        if not moved:
            break
    searched = spec_of(integers)
    figures = {"what": __doc__.splitlines()[0], "bits": BITS, "calibration_training_lines": CALIB,
               "held_out_training_lines": HELD_OUT, "test_images": len(sets["test"][1]),
               "float_top1": {k: float(np.mean(f.argmax(1) == sets[k][1])) for k, f in floats.items()},
               "minmse": {"integers": minmse, **{k: score(start, k) for k in sets}},
               "searched": {"integers": integers, **{k: score(searched, k) for k in sets}},
               "moves": moves, "sweeps": sweep, "seconds": time.perf_counter() - t0}
    for k in sets:
        m, s = figures["minmse"][k], figures["searched"][k]
        print(f"{k:12s} min-MSE KL {m['kl']:.4f} top-1 {100 * m['top1']:.2f} %   searched KL {s['kl']:.4f} "
              f"top-1 {100 * s['top1']:.2f} %")
    write_results(OUT, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
