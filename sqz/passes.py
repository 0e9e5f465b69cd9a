"""Forward passes per image: one, or two with `--mirror` (the image and its left-right mirror, outputs summed).

The one definition of `--mirror` for `sqz eval` (Keras, or the fixed-point emulator) and `sqz infer` (the board,
or the simulated board). Both passes go through `predict` as one batch of 2N images -- on the board one stream of
frames through the DMA, double-buffered as any batch -- and each image's two outputs are added: logit codes in
fixed point as integers, exactly what a host adds from the board's two results (the softmax, where wanted,
comes after, in float). numpy only: it ships to the board (host/__init__.py BOARD_MODULES).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from sqz.errors import SqzError


def passes_per_image(mirror: bool) -> int:
    """How many frames each image costs: 2 with the mirror, else 1."""
    return 2 if mirror else 1


def check_resumable(path, had: int, passes: int, what: str, option: str, error: type = SqzError) -> None:
    """A resumed file's records must have this run's passes per image (a mix scores neither kind): `what` names
    its records, `option` the flag that takes another file."""
    if had != passes:
        raise error(f"{path}: {what} of {had} pass(es) per image (this run: {passes}, "
                    f"{'with' if passes == 2 else 'without'} --mirror); give another {option} file")


def mirrored(images: np.ndarray) -> np.ndarray:
    """NHWC images flipped left-right (the width axis). The input cast is element by element, so flipping
    float images then casting equals casting then flipping the codes."""
    return np.asarray(images)[:, :, ::-1]


def mirror_sum(predict: Callable[[np.ndarray], np.ndarray], images: np.ndarray) -> np.ndarray:
    """predict(images) + predict(mirrored(images)), computed as one predict call on the 2N images."""
    x = np.asarray(images)
    n = len(x)
    out = np.asarray(predict(np.concatenate([x, mirrored(x)])))
    return out[:n] + out[n:]
