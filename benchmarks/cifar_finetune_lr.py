"""Which optimiser and learning rate `sqz finetune` should use: one epoch of fine-tuning squeezenet_cifar's
fixed-point network (the specs of benchmarks/cifar_finetune.py's step 1, q{W}/spec.json) on the first 3,000
training images, scored by the emulator on the first 2,000 test images (interleaved lists: balanced).

    .venv/bin/python benchmarks/cifar_finetune_lr.py [--model squeezenet_cifar_b] [--json benchmarks/results/cifar/b/finetune_lr.json]

(Run on squeezenet_cifar_b, the network chosen first: the committed result is its.)
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CASES = {8: [("sgd", 1e-3), ("sgd", 1e-5), ("adam", 1e-5), ("adam", 1e-4)],
         6: [("adam", 1e-5), ("adam", 1e-4), ("adam", 1e-3)],
         4: [("adam", 1e-5), ("adam", 1e-4), ("adam", 3e-4)]}


def main() -> int:
    from model.architecture import get_architecture
    from model.trained import trained_params
    from quant.emulator import FixedPointEmulator
    from quant.finetune import finetune
    from quant.spec import QuantSpec
    from sqz.cli_common import image_dataset, require_labels

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="squeezenet_cifar_b")
    ap.add_argument("--json", default=str(ROOT / "benchmarks/results/cifar/b/finetune_lr.json"))
    args = ap.parse_args()
    arch = get_architecture(args.model)
    params = trained_params(args.model)
    cifar = str(ROOT.parent / "shared/data/cifar10")
    x, y, _ = next(image_dataset(require_labels(cifar, "--calib"), arch, limit=3000).batches(3000))
    xt, yt, _ = next(image_dataset(require_labels(cifar, "--data"), arch, limit=2000).batches(2000))
    rows = []
    for bits, cases in CASES.items():
        spec = QuantSpec.load(ROOT / f"benchmarks/results/cifar/q{bits}/spec.json", arch)
        before = float(np.mean(FixedPointEmulator(arch, params, spec).logit_codes(xt).argmax(1) == yt))
        for opt, lr in cases:
            t0 = time.perf_counter()
            _, new, log = finetune(arch, params, spec, x, y, epochs=1, lr=lr, say=lambda m: None, optimizer=opt)
            after = float(np.mean(FixedPointEmulator(arch, params, new).logit_codes(xt).argmax(1) == yt))
            rows.append({"bits": bits, "optimizer": opt, "lr": lr, "before_top1": before, "after_top1": after,
                         "train_top1_fixed": log["history"][0]["train_acc_fixed"], "seconds": time.perf_counter() - t0})
            print(f"{bits}-bit {opt:<4} lr {lr:g}: before {100 * before:.2f} %  after {100 * after:.2f} %  "
                  f"(fixed-point train top-1 during the epoch {100 * rows[-1]['train_top1_fixed']:.1f} %)", flush=True)
    Path(args.json).write_text(json.dumps({"what": __doc__.splitlines()[0], "train_images": 3000,
                                           "test_images": 2000, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
