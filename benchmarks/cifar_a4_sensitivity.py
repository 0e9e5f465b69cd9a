"""Where squeezenet_cifar's 4-bit activations lose: each activation format alone at 4 bits (the rest at 6),
and each alone at 6 bits (the rest at 4), 4-bit weights throughout, before fine-tuning, on held-out
*training* images.

Formats as `sqz quantize --weight-bits 4 --activation-bits A --activation-rule minmse` makes them (GPTQ
weight codes; calibration: training images 0-2,000), a Fire module's two expands being one format; scored
by the bit-exact emulator on training images 2,000-6,000 (400 per class, never calibrated on): top-1 and the
mean KL divergence of the softmax from the float network's (the smooth measure quant/search.py uses).
If one or two layers held most of the loss, keeping them at 6 bits would be the cheap way to 4 bits within
0.5 point; the table says whether they do.

    .venv/bin/python benchmarks/cifar_a4_sensitivity.py     # benchmarks/results/cifar/a4_sensitivity.json
"""
from __future__ import annotations

import sys

import numpy as np

from common import ROOT, write_results
from model.architecture import get_architecture
from model.cifar10 import unpack
from model.trained import trained_params
from quant.calibrate import Calibration, activation_groups, make_spec
from quant.emulator import FixedPointEmulator, FloatNetwork
from quant.search import kl_divergence
from sqz.cli_common import image_dataset

CIFAR = ROOT.parent / "shared" / "data" / "cifar10"
CALIB, HELD_OUT = (0, 2000), (2000, 6000)


def load(folder, arch, lines):
    xs, ys = [], []
    for x, y, _ in image_dataset(str(folder), arch, start=lines[0], stop=lines[1]).batches(500):
        xs.append(x.astype(np.float32))
        ys.append(y)
    return np.concatenate(xs), np.concatenate(ys)


def main() -> int:
    arch = get_architecture("squeezenet_cifar")
    params = trained_params("squeezenet_cifar")
    train = unpack(CIFAR, "train")
    cal = Calibration(arch, params)
    x, _ = load(train, arch, CALIB)
    for i in range(0, len(x), 100):
        cal.add_batch(x[i:i + 100])
    xh, yh = load(train, arch, HELD_OUT)
    float_logits = FloatNetwork(arch, params).logits(xh)
    names = [c.name for c in arch.convs()]

    def score(abits) -> dict:
        spec = make_spec(cal, 4, abits, "minmse", "minmse")
        codes = FixedPointEmulator(arch, params, spec).logit_codes(xh)
        return {"top1": float(np.mean(codes.argmax(1) == yh)),
                "kl": kl_divergence(float_logits, spec.logit_format.to_float(codes))}

    figures = {"what": __doc__.splitlines()[0], "calibration_training_lines": CALIB,
               "held_out_training_lines": HELD_OUT, "float_top1": float(np.mean(float_logits.argmax(1) == yh)),
               "w4a4": score(4), "w4a6": score(6), "layers": []}
    print(f"float {100 * figures['float_top1']:.2f} %   w4a4 {figures['w4a4']}   w4a6 {figures['w4a6']}", flush=True)
    shapes = arch.conv_shapes()
    for g in activation_groups(arch):   # the formats make_spec gives, a Fire module's expands as one
        row = {"format": g, "activations": int(sum(np.prod(shapes[n]["out"]) for n in g)),
               "alone_at_4": score({n: 4 if n in g else 6 for n in names}),
               "alone_at_6": score({n: 6 if n in g else 4 for n in names})}
        figures["layers"].append(row)
        print(f"{'+'.join(g):40s} alone at 4: top-1 {100 * row['alone_at_4']['top1']:.2f} % KL {row['alone_at_4']['kl']:.4f}"
              f"   alone at 6: top-1 {100 * row['alone_at_6']['top1']:.2f} % KL {row['alone_at_6']['kl']:.4f}", flush=True)
        write_results(ROOT / "benchmarks" / "results" / "cifar" / "a4_sensitivity.json", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
