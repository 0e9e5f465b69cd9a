"""Cross-layer equalization: per-channel rescaling that leaves the float network unchanged.

ReLU and max pooling commute with a positive scale, so multiplying output channel c of a convolution
(its weight row and bias) by s_c and dividing the matching input channel of every convolution that reads
it by s_c gives the same float network (Nagel et al. 2019, "Data-free quantization through weight
equalization and bias correction"; the CLE step of Vitis AI's and AIMET's quantizers). What changes is
how well a per-layer power-of-two format fits: dynamic fixed point gives every layer one format for all of
its channels, and a channel whose values are several times smaller than its neighbours' uses a few of
its layer's 16 levels (4 bits). Rescaled, the channels share the range, and the hardware is the same:
the scales are folded into the weights and biases, which the spec then carries as codes.

The graph is the architecture's (model/architecture.py): a convolution's outputs reach the next
convolution(s) through max pools and the Fire concat (expand1x1's channels first). The last convolution
feeds the global average pool, the logits: it is never rescaled (per-class scales would change the
classes), only its input channels are.

Rules for s_c (every scale a positive float, clipped to [1/MAX_SCALE, MAX_SCALE]):
  'weights'      Nagel's CLE: s_c = sqrt(r2_c / r1_c), r1_c = max |producer row c|, r2_c = max |consumer
                 column c| (over every consumer): both weight tensors' channel ranges meet at their
                 geometric mean (iterated over the graph, as CLE is, `iterations` times)
  'activations'  s_c = A / a_c with a_c the channel's activation range (its `percentile`-th percentile
                 over the calibration images) and A the geometric mean of the layer's a_c: every channel
                 of a layer's output then spans the same range
  'balanced'     the geometric mean of the two: sqrt(s_weights * s_activations)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model.architecture import Architecture, Conv, Fire, GlobalAvgPool, MaxPool
from quant.emulator import FloatNetwork, Params
from quant.spec import QuantSpec
from sqz.errors import SqzError

EQUALIZE_RULES = ("weights", "activations", "balanced")
MAX_SCALE = 16.0          # no channel is scaled by more than this (or less than its inverse)


class EqualizeError(SqzError, ValueError):
    """Scales that do not fit the architecture (unknown layer, wrong length, not positive)."""


@dataclass(frozen=True)
class Link:
    """Output channels of `producer` read by `consumer` as its input channels [offset, offset + n)."""
    producer: str
    consumer: str
    offset: int
    n: int


def links(arch: Architecture) -> list[Link]:
    """Every producer -> consumer channel link of the graph, in graph order."""
    out: list[Link] = []
    current: list[tuple[str, int, int]] = []    # the tensor's channels: (producer, offset in tensor, n)

    def feed(consumer: str) -> None:
        out.extend(Link(p, consumer, off, n) for p, off, n in current)

    for layer in arch.layers:
        if isinstance(layer, Conv):
            feed(layer.name)
            current = [(layer.name, 0, layer.filters)]
        elif isinstance(layer, Fire):
            squeeze, e1, e3 = layer.convs
            feed(squeeze.name)
            current = [(squeeze.name, 0, squeeze.filters)]
            feed(e1.name)
            feed(e3.name)
            current = [(e1.name, 0, e1.filters), (e3.name, e1.filters, e3.filters)]
        elif isinstance(layer, (MaxPool, GlobalAvgPool)):
            pass        # channels pass through (max commutes with a positive scale; the average pool ends it)
        else:
            raise TypeError(f"unknown layer {layer!r}")
    return out


def scalable(arch: Architecture) -> list[str]:
    """The convolutions whose output channels may be rescaled: those read by another convolution."""
    return list(dict.fromkeys(l.producer for l in links(arch)))


def rescale(arch: Architecture, params: Params, scales: dict[str, np.ndarray]) -> Params:
    """The same float network with output channel c of each layer in `scales` multiplied by s[c] (weights
    and bias) and the matching input channels of its consumers divided by it."""
    allowed = set(scalable(arch))
    out = {n: (np.array(w, np.float64), np.array(b, np.float64)) for n, (w, b) in params.items()}
    for name, s in scales.items():
        if name not in allowed:
            raise EqualizeError(f"equalization scales for layer {name!r}: not a layer whose outputs another "
                                f"convolution of {arch.name} reads ({', '.join(sorted(allowed))})")
        s = np.asarray(s, np.float64)
        w, b = out[name]
        if s.shape != (w.shape[0],) or not np.all(np.isfinite(s)) or not np.all(s > 0):
            raise EqualizeError(f"equalization scales for layer {name!r}: need {w.shape[0]} positive finite "
                                f"values, got shape {s.shape}")
        out[name] = (w * s[:, None, None, None], b * s)
    for link in links(arch):
        s = scales.get(link.producer)
        if s is not None:
            w, b = out[link.consumer]
            w = w.copy()
            w[:, link.offset:link.offset + link.n] /= np.asarray(s, np.float64)[None, :, None, None]
            out[link.consumer] = (w, b)
    return {n: (w.astype(np.float32), b.astype(np.float32)) for n, (w, b) in out.items()}


def activation_ranges(arch: Architecture, params: Params, batches, percentile: float = 99.99,
                      sample: int = 2048, seed: int = 0) -> dict[str, np.ndarray]:
    """Per scalable layer, each output channel's `percentile`-th percentile over the image batches (an
    iterable of NHWC arrays; float network; a random sample of `sample` positions per channel and batch)."""
    rng = np.random.default_rng(seed)
    names = set(scalable(arch))
    kept: dict[str, list[np.ndarray]] = {n: [] for n in names}

    def observe(name, kind, array):
        if kind == "output" and name in names:
            v = np.asarray(array).reshape(-1, array.shape[-1])
            kept[name].append(v[rng.integers(0, len(v), min(sample, len(v)))])

    net = FloatNetwork(arch, params)
    for x in batches:
        net.logits(np.asarray(x, np.float32), observer=observe)
    if not kept[next(iter(names))]:
        raise EqualizeError("equalization: no calibration images to measure activation ranges on")
    return {n: np.percentile(np.concatenate(kept[n]), percentile, axis=0) for n in names}


def _consumer_column_range(graph: list[Link], params: Params, producer: str) -> np.ndarray:
    cols = []
    for link in graph:
        if link.producer == producer:
            w = np.abs(params[link.consumer][0][:, link.offset:link.offset + link.n])
            cols.append(w.max(axis=(0, 2, 3)))
    return np.max(cols, axis=0)


def _clip(s: np.ndarray) -> np.ndarray:
    return np.clip(np.where(np.isfinite(s) & (s > 0), s, 1.0), 1.0 / MAX_SCALE, MAX_SCALE)


def weight_scales(arch: Architecture, params: Params) -> dict[str, np.ndarray]:
    """One pass of Nagel's CLE: s_c = sqrt(r2_c / r1_c)."""
    out = {}
    graph = links(arch)     # once: every producer's consumers are looked up in it
    for name in scalable(arch):
        r1 = np.abs(params[name][0]).max(axis=(1, 2, 3))
        r2 = _consumer_column_range(graph, params, name)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[name] = _clip(np.sqrt(r2 / r1))
    return out


def activation_scales(ranges: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """s_c = A / a_c, A the geometric mean of the layer's positive a_c (channels that never fire: 1)."""
    out = {}
    for name, a in ranges.items():
        live = a[a > 0]
        target = float(np.exp(np.mean(np.log(live)))) if live.size else 1.0
        with np.errstate(divide="ignore", invalid="ignore"):
            out[name] = _clip(np.where(a > 0, target / a, 1.0))
    return out


def equalize(arch: Architecture, params: Params, rule: str, batches=None,
             percentile: float = 99.99, iterations: int = 4) -> tuple[Params, dict[str, np.ndarray]]:
    """(the rescaled params, the total scale of every scalable layer's output channels) under `rule`;
    `batches`: an iterable of calibration image batches (the rules that read activation ranges)."""
    if rule not in EQUALIZE_RULES:
        raise EqualizeError(f"unknown equalization rule {rule!r}; known: {', '.join(EQUALIZE_RULES)}")
    if rule != "weights" and batches is None:
        raise EqualizeError(f"equalization rule {rule!r} needs calibration images (activation ranges)")
    total = {n: np.ones(params[n][0].shape[0]) for n in scalable(arch)}
    current = params

    def apply(scales):
        nonlocal current
        current = rescale(arch, current, scales)
        for n, s in scales.items():
            total[n] = total[n] * s

    if rule == "weights":
        for _ in range(iterations):
            apply(weight_scales(arch, current))
    elif rule == "activations":
        apply(activation_scales(activation_ranges(arch, current, batches, percentile)))
    else:
        sw = weight_scales(arch, current)
        sa = activation_scales(activation_ranges(arch, current, batches, percentile))
        apply({n: np.sqrt(sw[n] * sa[n]) for n in sw})
    return current, total


def carry_codes(spec: QuantSpec, arch: Architecture, params: Params, rule: str,
                scales: dict[str, np.ndarray]) -> QuantSpec:
    """The spec of an equalized network, made to stand on its own: the rescaled weights and biases are not
    the shipped ones, so the spec carries every layer's weight and bias codes (its .weights.npz), which
    every consumer (emulator, fine-tuning, HLS ROMs, host) reads through QuantSpec.weight_codes/bias_codes;
    the scales are recorded (per layer: min, max) under calibration.equalize."""
    names = [c.name for c in arch.convs()]
    spec.weights = {n: spec.weight_codes(n, params[n][0]) for n in names}
    spec.biases = {n: spec.bias_codes(n, params[n][1]) for n in names}
    spec.calibration["equalize"] = {
        "rule": rule, "max_scale": MAX_SCALE,
        "scales": {n: {"min": float(s.min()), "max": float(s.max())} for n, s in scales.items()}}
    spec.validate(arch)
    return spec
