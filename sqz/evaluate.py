"""Top-1/top-5 evaluation of the float model (Keras) or the fixed-point emulator, resumable.

Per-image predictions are appended to a JSON-lines file as batches finish; a rerun with the same
file skips the images already in it, so an interrupted evaluation of thousands of images resumes.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

import numpy as np


def topk_hits(scores: np.ndarray, labels: np.ndarray, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """(top-1 hit, top-k hit) per image; ties broken by the lower class index, as argmax does."""
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return order[:, 0] == labels, (order == labels[:, None]).any(axis=1)


def evaluate(predict: Callable[[np.ndarray], np.ndarray], dataset, batch_size: int = 32,
             predictions_path: Path | None = None, progress: bool = True, passes: int = 1) -> dict:
    """Run `predict` (NHWC batch -> scores) over the dataset; returns counts and timing. `passes`: how many
    forward passes `predict` sums per image (2: `eval --mirror`); recorded when not 1, and a predictions file
    of another count is refused rather than resumed into a mixed result."""
    from tqdm import tqdm

    from sqz.passes import check_resumable

    done: dict[str, dict] = {}
    if predictions_path and predictions_path.exists():
        for line in predictions_path.read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                check_resumable(predictions_path, rec.get("passes", 1), passes, "predictions", "--predictions")
                done[rec["path"]] = rec
    wanted = set(dataset.paths)
    done = {p: r for p, r in done.items() if p in wanted}
    seconds, n_new = 0.0, 0
    out = predictions_path.open("a") if predictions_path else None
    try:
        bar = tqdm(total=len(dataset), initial=len(done), unit="img", disable=not progress, leave=False)
        for images, labels, paths in dataset.batches(batch_size, skip_paths=set(done)):
            t0 = time.perf_counter()
            scores = np.asarray(predict(images))
            seconds += time.perf_counter() - t0
            n_new += len(images)
            top5 = np.argsort(-scores, axis=1, kind="stable")[:, :5]
            for path, label, t5 in zip(paths, labels.tolist(), top5.tolist()):
                rec = {"path": path, "label": label, "top5": t5}
                if passes != 1:
                    rec["passes"] = passes
                done[path] = rec
                if out:
                    out.write(json.dumps(rec) + "\n")
            if out:
                out.flush()
            bar.update(len(images))
        bar.close()
    finally:
        if out:
            out.close()
    recs = list(done.values())
    n = len(recs)
    top1 = sum(r["top5"][0] == r["label"] for r in recs)
    top5 = sum(r["label"] in r["top5"] for r in recs)
    return {"n": n, "top1": top1 / n if n else 0.0, "top5": top5 / n if n else 0.0,
            "images_per_s": n_new / seconds if seconds else None, "timed_images": n_new,
            "resumed": n - n_new}
