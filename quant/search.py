"""Bit-width search: Ristretto's sweeps, then a finer per-layer weight search within an error margin.

Every candidate is a QuantSpec scored by the bit-exact emulator on a *search set* (calibration images,
disjoint from the evaluation images the final figures are measured on). The margin is in absolute
top-1 points (0.01 = one point) below the float model on the same images. Scores are appended to a
JSON-lines log as they are computed, so an interrupted search resumes without recomputing them.

Per-layer search (sensitivity table, then one path, then a binary search along it): top-1 on a few hundred
images moves in steps of a third of a point, and one configuration's top-1 difference from float has a
noise of about a point (the images on which they disagree decide it). A greedy that accepted every step
top-1 did not punish walked into that noise (measured: "within 1 point" on the search set, 3 points lost on
held-out images). So the per-layer stage works with a smooth measure:
  1. sensitivity: each layer's weights alone at every narrower width, scored by the mean KL divergence
     of the network's softmax from the float model's (every logit of every image counts, not only the
     top class); the increase over the starting spec is that layer's cost at that width;
  2. top-1 loss predicted from KL: loss ~ kappa * KL, kappa the least-squares slope over the sensitivity
     configurations (a hundred-odd of them: their noise averages out where one configuration's cannot);
  3. path: from the starting widths, repeatedly take the one step (a layer to a narrower width) with the
     least predicted cost (sum of the layers' costs) per byte saved -- one configuration per step;
  4. the narrowest configuration on the path whose predicted loss is within the margin, by binary search
     (if no probe lost any top-1 -- a tiny search set -- KL predicts nothing and measured top-1 decides);
  5. the slope re-fitted on the path configurations the binary search scored near the margin (the
     population being predicted: several layers narrowed at once lose more top-1 per unit of KL than one
     alone), and the binary search repeated until its choice holds; a re-fit only ever steepens the slope.
Ristretto's own stages (sweeps, combined) keep its rule: measured top-1 within the margin.
Every scored configuration is a point of the Pareto curve (dense weight bytes vs top-1).
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
SENSITIVITY_STOP = 0.25      # stop narrowing a layer alone once top-1 agreement with float fell this much
SLOPE_AGREE_RANGE = 0.10     # the KL slope is fitted on probes whose agreement is within this of the start
REFIT_ROUNDS = 5             # steps 4-5: at most this many binary searches (the first with the probes' slope)
REFIT_WINDOW = 3.0           # step 5: path configurations predicted within this many margins enter the re-fit
REFIT_MIN_POINTS = 4         # step 5: fewer scored path configurations near the margin: keep the probes' slope


def weight_counts(arch) -> dict[str, int]:
    """Number of weights (zeros included) of every convolution."""
    return {n: math.prod(t["weight"]) for n, t in arch.conv_shapes().items()}


def weight_bytes(arch, weight_bits: dict[str, int]) -> float:
    """Dense storage of all weights (zeros included) at the given widths, in bytes."""
    return sum(count * weight_bits[n] for n, count in weight_counts(arch).items()) / 8


def kl_divergence(float_logits: np.ndarray, logits: np.ndarray) -> float:
    """Mean KL(softmax(float) || softmax(fixed)) over images, in nats."""
    def log_softmax(z):
        z = np.asarray(z, np.float64)
        z = z - z.max(1, keepdims=True)
        return z - np.log(np.exp(z).sum(1, keepdims=True))
    lp, lq = log_softmax(float_logits), log_softmax(logits)
    return float(np.mean(np.sum(np.exp(lp) * (lp - lq), axis=1)))


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
        if "kl" not in self._cache.get(key, {}):      # logs of older versions lack the KL divergence
            em = FixedPointEmulator(cal.arch, cal.params, spec)
            codes = em.logit_codes(self.images)
            logits = spec.logit_format.to_float(codes)
            score = {"top1": float(np.mean(codes.argmax(1) == self.labels)),
                     "agree": float(np.mean(codes.argmax(1) == self.float_logits.argmax(1))),
                     "kl": kl_divergence(self.float_logits, logits),
                     "saturations": int(sum(em.saturations.values()))}
            self._cache[key] = score
            if self.log_path:
                with self.log_path.open("a") as f:
                    f.write(json.dumps({"key": key, "score": score}) + "\n")
        return self._cache[key]

    def kl_slope(self, scores: list[dict]) -> float:
        """Least-squares slope through the origin of top-1 loss (float - fixed) on KL over `scores`."""
        kl = np.array([s["kl"] for s in scores])
        loss = self.float_top1 - np.array([s["top1"] for s in scores])
        denom = float((kl * kl).sum())
        if denom == 0.0:
            raise RuntimeError("no configuration differs from float on the search set: cannot relate KL to top-1")
        return max(float((kl * loss).sum()) / denom, 0.0)

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
    search_kl: float
    kl_slope: float | None      # fitted top-1 loss per unit of KL (None: no per-layer stage, or no probe lost top-1)
    path: list[dict] = field(default_factory=list)   # the per-layer stage's configurations, widest first
    kl_slope_probes: float | None = None             # the slope from the one-layer probes alone (step 2)

    @property
    def predicted_loss(self) -> float | None:
        return None if self.kl_slope is None else self.kl_slope * self.search_kl


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

    kappa, kappa_probes, path = None, None, []
    if per_layer:
        sizes = weight_counts(arch)
        # 1. sensitivity: KL cost of each layer alone at each narrower width
        cost = {n: {wbits[n]: 0.0} for n in names}
        probes = [current]
        for n in names:
            for b in range(wbits[n] - 1, min_bits - 1, -1):
                s = sset.score(cal, make(dict(wbits, **{n: b}), abits))
                cost[n][b] = s["kl"] - current["kl"]
                probes.append(s)
                progress(f"sensitivity {n} {b:2d} bit: KL +{cost[n][b]:.4f}, top-1 {100 * s['top1']:.2f} %")
                if s["agree"] < current["agree"] - SENSITIVITY_STOP:    # far beyond any margin: stop narrowing
                    break
        # 2. top-1 loss per unit of KL, from the probes near the start (the relation bends for large errors)
        kappa = sset.kl_slope([p for p in probes if p["agree"] >= current["agree"] - SLOPE_AGREE_RANGE])
        if kappa == 0.0:     # no top-1 lost near the start: take the slope from every probe, never assume 0
            kappa = sset.kl_slope(probes)
        if kappa == 0.0:     # no probe lost any top-1 (a tiny search set): KL predicts nothing, use top-1
            kappa = None
            progress("no probe lost top-1 on the search set: the path is checked on measured top-1")
        else:
            progress(f"top-1 loss ~ {100 * kappa:.1f} points x KL (fitted on the search set); start: KL "
                     f"{current['kl']:.4f}, predicted loss {100 * kappa * current['kl']:.2f} points")

        def ok(score):
            return sset.within(score, margin) if kappa is None else kappa * score["kl"] <= margin
        # 3. the path, cheapest predicted cost per byte first
        path = allocation_path(cost, sizes, wbits)
        progress(f"path: {len(path)} configurations from {weight_bytes(arch, path[0]) / 1e6:.3f} MB "
                 f"to {weight_bytes(arch, path[-1]) / 1e6:.3f} MB")

        # 4. binary search for the narrowest configuration predicted within the margin
        path_scores: dict[int, dict] = {}

        def scored(i):
            if i not in path_scores:
                s = path_scores[i] = sset.score(cal, make(path[i], abits))
                point(f"path {i}", path[i], abits, s)
                progress(f"path {i}/{len(path) - 1}: {weight_bytes(arch, path[i]) / 1e6:.3f} MB, top-1 "
                         f"{100 * s['top1']:.2f} %, KL {s['kl']:.4f}"
                         + (f", predicted loss {100 * kappa * s['kl']:.2f} points" if kappa else ""))
            return path_scores[i]

        def narrowest_ok():
            lo, hi, best = 0, len(path) - 1, start
            if not ok(start):
                hi = 0      # the start already spends the margin (by prediction): keep it
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if ok(scored(mid)):
                    lo, best = mid, path_scores[mid]
                else:
                    hi = mid - 1
            return lo, best

        # 5. re-fit the slope on the path's own scored configurations, search again, until the choice holds:
        # they are the population being predicted, and several layers narrowed together lose more top-1 per
        # unit of KL than one layer alone (measured on SqueezeNet, gptq-dense: ~30 vs ~20 points per KL)
        start, kappa_probes = current, kappa
        chosen, current = narrowest_ok()
        for _ in range(REFIT_ROUNDS - 1):
            if kappa is None:
                break
            near = [s for s in path_scores.values() if kappa * s["kl"] <= REFIT_WINDOW * margin]
            if len(near) < REFIT_MIN_POINTS:
                break
            refit = sset.kl_slope(near)
            if refit <= kappa:
                break       # the path may make the search more careful than the probes, never bolder
            progress(f"top-1 loss ~ {100 * refit:.1f} points x KL, re-fitted on the {len(near)} scored path "
                     f"configurations near the margin (probes alone: {100 * kappa:.1f})")
            kappa = refit
            previous, (chosen, current) = chosen, narrowest_ok()
            if chosen == previous:
                break
        wbits = path[chosen]
    return SearchResult(make(wbits, abits), wbits, abits, sweeps, pareto_front(pareto), pareto, current["top1"],
                        current["kl"], kappa, path, kappa_probes)


def allocation_path(cost: dict[str, dict[int, float]], sizes: dict[str, int], start: dict[str, int]) -> list[dict]:
    """Configurations from `start` down, one step each: the layer and narrower width (any measured one, so a
    cheap jump over a costly intermediate width is seen) with the least added cost per byte saved."""
    current, path = dict(start), [dict(start)]
    while True:
        best = None
        for n, widths in cost.items():
            for b, c in widths.items():
                if b < current[n]:
                    ratio = (c - widths[current[n]]) / (sizes[n] * (current[n] - b) / 8)
                    if best is None or ratio < best[0]:
                        best = (ratio, n, b)
        if best is None:
            return path
        current[best[1]] = best[2]
        path.append(dict(current))


def pareto_front(points: list[dict]) -> list[dict]:
    """Points not beaten by another with fewer (or equal) bytes and higher (or equal) top-1, by size."""
    front = []
    for p in sorted(points, key=lambda p: (p["weight_bytes"], -p["top1"])):
        if not front or p["top1"] > front[-1]["top1"]:
            front.append(p)
    return front
