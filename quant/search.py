"""Bit-width search: Ristretto's sweeps, then a finer per-layer weight search within an error margin.

Every candidate is a QuantSpec scored by the bit-exact emulator on a *search set* (calibration images,
disjoint from the evaluation images the final figures are measured on). The margin is in absolute
top-1 points (0.01 = one point) below the float model on the same images. Scores are appended to a
JSON-lines log as they are computed, so an interrupted search resumes without recomputing them.

Per-layer search (sensitivity ordered, greedy): starting from the combined Ristretto widths, each layer's
weights are tried alone at a low width to measure how much accuracy they cost per bit saved; then, the
cheapest layers first, each layer's width is lowered one bit at a time while the whole network stays
within the margin. Every accepted step is a point of the Pareto curve (dense weight bytes vs top-1).
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from quant.calibrate import Calibration, make_spec
from quant.emulator import FixedPointEmulator
from quant.spec import QuantSpec

RISTRETTO_WIDTHS = (16, 8, 4, 2, 1)


def weight_bytes(arch, weight_bits: dict[str, int]) -> float:
    """Dense storage of all weights (zeros included) at the given widths, in bytes."""
    return sum(math.prod(t["weight"]) * weight_bits[n] for n, t in arch.conv_shapes().items()) / 8


@dataclass
class SearchSet:
    """Images the search scores candidates on, with the float model's results on them."""
    images: np.ndarray
    labels: np.ndarray
    float_logits: np.ndarray
    log_path: Path | None = None
    _cache: dict = field(default_factory=dict)

    def __post_init__(self):
        self.float_top1 = float(np.mean(self.float_logits.argmax(1) == self.labels))
        if self.log_path and self.log_path.exists():
            for line in self.log_path.read_text().splitlines():
                if line.strip():
                    rec = json.loads(line)
                    self._cache[rec["key"]] = rec["score"]

    def score(self, cal: Calibration, spec: QuantSpec) -> dict:
        """top-1 and agreement with float on the search set (cached by the spec's content)."""
        key = hashlib.sha256(json.dumps(spec.to_json()["layers"], sort_keys=True).encode()).hexdigest()[:20]
        if key not in self._cache:
            em = FixedPointEmulator(cal.arch, cal.params, spec)
            codes = em.logit_codes(self.images)
            score = {"top1": float(np.mean(codes.argmax(1) == self.labels)), "agree": float(np.mean(codes.argmax(1) == self.float_logits.argmax(1))),
                     "saturations": int(sum(em.saturations.values()))}
            self._cache[key] = score
            if self.log_path:
                with self.log_path.open("a") as f:
                    f.write(json.dumps({"key": key, "score": score}) + "\n")
        return self._cache[key]

    def within(self, score: dict, margin: float) -> bool:
        return score["top1"] >= self.float_top1 - margin - 1e-12


@dataclass
class SearchResult:
    spec: QuantSpec
    weight_bits: dict[str, int]
    activation_bits: dict[str, int]
    sweeps: dict
    pareto: list[dict]          # the front: fewest bytes for each top-1
    points: list[dict]          # every configuration the search accepted or swept
    search_top1: float


def search(cal: Calibration, sset: SearchSet, margin: float, make: Callable[..., QuantSpec] | None = None,
           per_layer: bool = True, min_bits: int = 2, progress: Callable[[str], None] = print) -> SearchResult:
    make = make or (lambda w, a: make_spec(cal, w, a))
    names = [c.name for c in cal.arch.convs()]
    arch = cal.arch
    pareto: list[dict] = []

    def point(stage: str, wbits: dict, abits: dict, score: dict) -> None:
        pareto.append({"stage": stage, "weight_bytes": weight_bytes(arch, wbits), "top1": score["top1"],
                       "agree": score["agree"], "weight_bits": dict(wbits), "activation_bits": dict(abits)})

    def sweep(kind: str) -> int:
        best = 32
        for width in RISTRETTO_WIDTHS:
            wb, ab = (width, 16) if kind == "weights" else (16, width)
            s = sset.score(cal, make(wb, ab))
            progress(f"sweep {kind} {width:2d} bit: top-1 {100 * s['top1']:.2f} % "
                     f"(float {100 * sset.float_top1:.2f} %)")
            if kind == "weights":
                point(f"sweep weights {width}", dict.fromkeys(names, width), dict.fromkeys(names, 16), s)
            if not sset.within(s, margin):
                break
            best = width
        return best

    w_sweep, a_sweep = sweep("weights"), sweep("activations")
    if w_sweep > 16 or a_sweep > 16:
        raise RuntimeError(f"even 16-bit {'weights' if w_sweep > 16 else 'activations'} lose more than the "
                           f"margin ({margin}) on the search set")
    wbits, abits = dict.fromkeys(names, w_sweep), dict.fromkeys(names, a_sweep)
    combined = sset.score(cal, make(wbits, abits))
    progress(f"combined {w_sweep}-bit weights, {a_sweep}-bit activations: top-1 {100 * combined['top1']:.2f} %")
    # Ristretto scores the combination once; if it misses the margin, widen activations then weights
    while not sset.within(combined, margin) and (min(abits.values()) < 16 or min(wbits.values()) < 16):
        if min(abits.values()) <= min(wbits.values()) and min(abits.values()) < 16:
            abits = {n: min(16, b + 1) for n, b in abits.items()}
        else:
            wbits = {n: min(16, b + 1) for n, b in wbits.items()}
        combined = sset.score(cal, make(wbits, abits))
        progress(f"widened to {max(wbits.values())}/{max(abits.values())} bit: top-1 {100 * combined['top1']:.2f} %")
    sweeps = {"weights": w_sweep, "activations": a_sweep, "combined_top1": combined["top1"]}
    point("combined", wbits, abits, combined)
    current = combined

    if per_layer:
        # sensitivity: each layer alone two bits narrower; cost = accuracy lost per kilobyte saved
        sens = {}
        for n in names:
            if wbits[n] - 2 < min_bits:
                continue
            trial = dict(wbits, **{n: wbits[n] - 2})
            s = sset.score(cal, make(trial, abits))
            saved = (weight_bytes(arch, wbits) - weight_bytes(arch, trial)) / 1024
            sens[n] = max(current["top1"] - s["top1"], 0.0) / saved
            progress(f"sensitivity {n}: top-1 {100 * s['top1']:.2f} % at {trial[n]} bit")
        size = {n: math.prod(t["weight"]) for n, t in arch.conv_shapes().items()}
        for n in sorted(sens, key=lambda k: (sens[k], -size[k])):   # cheapest first; big layers break ties
            while wbits[n] > min_bits:
                trial = dict(wbits, **{n: wbits[n] - 1})
                s = sset.score(cal, make(trial, abits))
                if not sset.within(s, margin):
                    break
                wbits, current = trial, s
                point(f"{n} {wbits[n]}", wbits, abits, s)
                progress(f"{n} -> {wbits[n]} bit: {weight_bytes(arch, wbits) / 1e6:.3f} MB, "
                         f"top-1 {100 * s['top1']:.2f} %")
    return SearchResult(make(wbits, abits), wbits, abits, sweeps, pareto_front(pareto), pareto, current["top1"])


def pareto_front(points: list[dict]) -> list[dict]:
    """Points not beaten by another with fewer (or equal) bytes and higher (or equal) top-1, by size."""
    front = []
    for p in sorted(points, key=lambda p: (p["weight_bytes"], -p["top1"])):
        if not front or p["top1"] > front[-1]["top1"]:
            front.append(p)
    return front
