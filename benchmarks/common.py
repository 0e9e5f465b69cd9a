"""Shared set-up for the benchmarks: the real model, the full image set, the calibration/evaluation split."""
from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

VAL1300 = ROOT.parent / "shared" / "data" / "imagenet_val1300"
CALIB_STOP = 300          # calibration: lines 1-300 of labels.txt; evaluation: lines 301-1300


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, numpy {np.__version__}"


def real_model():
    from model.architecture import squeezenet1_0
    from model.deep_compression import decode, float_params
    return squeezenet1_0(), float_params(decode())


def load_images(start=None, stop=None, limit=None):
    from model.imagenet import ImageFolderDataset
    ds = ImageFolderDataset(VAL1300, start=start, stop=stop, limit=limit)
    xs, ys = [], []
    for x, y, _ in ds.batches(100):
        xs.append(x.copy())
        ys.append(y)
    return np.concatenate(xs), np.concatenate(ys)


def calibrate(arch, params, images):
    from quant.calibrate import Calibration
    cal = Calibration(arch, params)
    float_logits = np.concatenate([cal.add_batch(images[i:i + 32]) for i in range(0, len(images), 32)])
    return cal, float_logits


def fixed_point_scores(arch, params, spec, images, labels, float_logits) -> tuple[float, float, float]:
    """(top-1 %, agreement with float %, KL from float) of a spec through the bit-exact emulator."""
    from quant.emulator import FixedPointEmulator
    from quant.search import kl_divergence

    codes = FixedPointEmulator(arch, params, spec).logit_codes(images)
    top = codes.argmax(1)
    return (100 * float(np.mean(top == labels)), 100 * float(np.mean(top == float_logits.argmax(1))),
            kl_divergence(float_logits, spec.logit_format.to_float(codes)))
