"""Forward passes of SqueezeNet in numpy that walk model/architecture.py.

- `FloatNetwork`: the float reference (equals Keras to float rounding); calibration observes it.
- `FixedPointEmulator`: the bit-exact fixed-point model of the hardware, following quant/arithmetic.py
  layer by layer, batched and vectorized. Its logits (codes of the avg pool's result format) are what the
  HLS C simulation must reproduce bit for bit. Overflows are counted per layer, never silent.
"""
from __future__ import annotations

import os
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import numpy as np

from model.architecture import Architecture, Conv, Fire, GlobalAvgPool, MaxPool, refuse_bypass
from quant import arithmetic as A
from quant.spec import ConvFormats, PoolFormats, QuantSpec, SpecError, input_formats
from quant.formats import check_accumulator, to_accumulator

Params = dict[str, tuple[np.ndarray, np.ndarray]]   # conv name -> (weight OIHW float, bias float)


def walk(arch: Architecture, x: np.ndarray, conv: Callable, maxpool: Callable, gap: Callable,
         concat: Callable | None = None) -> np.ndarray:
    """Run the graph with the given per-layer functions (the one place the graph is traversed);
    `concat` joins a Fire module's two expands on channels (numpy's by default; quant/finetune.py
    passes TensorFlow's)."""
    refuse_bypass(arch, "quant/ (the emulator)")
    concat = concat or (lambda parts: np.concatenate(parts, axis=-1))
    for layer in arch.layers:
        if isinstance(layer, Conv):
            x = conv(layer, x)
        elif isinstance(layer, MaxPool):
            x = maxpool(layer, x)
        elif isinstance(layer, Fire):
            squeeze, e1, e3 = layer.convs
            s = conv(squeeze, x)
            x = concat([conv(e1, s), conv(e3, s)])
        elif isinstance(layer, GlobalAvgPool):
            x = gap(layer, x)
    return x


def _batched(fn, x: np.ndarray, batch_size: int) -> np.ndarray:
    return np.concatenate([fn(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]) if len(x) else fn(x)


class FloatNetwork:
    """Float32 forward pass; `observer(name, kind, array)` sees every conv's 'input', 'acc', 'output'."""

    def __init__(self, arch: Architecture, params: Params):
        self.arch = arch
        self.params = params
        self.mats = {n: (A.weight_matrix(w.astype(np.float32)), b.astype(np.float32)) for n, (w, b) in params.items()}

    def logits(self, x: np.ndarray, observer: Callable | None = None, batch_size: int = 16) -> np.ndarray:
        def conv(c: Conv, inp):
            if observer:
                observer(c.name, "input", inp)
            wmat, b = self.mats[c.name]
            acc = A.conv2d(inp, wmat, b, c.kernel, c.stride, c.pad)
            if observer:
                observer(c.name, "acc", acc)
            out = np.maximum(acc, 0, out=acc) if c.relu else acc
            if observer:
                observer(c.name, "output", out)
            return out

        def gap(layer, inp):
            out = inp.mean(axis=(1, 2))
            if observer:
                observer(layer.name, "input", inp)
                observer(layer.name, "output", out)
            return out

        pool = lambda p, inp: A.maxpool(inp, p.kernel, p.stride)
        return _batched(lambda xb: walk(self.arch, xb.astype(np.float32), conv, pool, gap), x, batch_size)


class FixedPointEmulator:
    """Bit-exact integer model of the accelerator for one QuantSpec."""

    def __init__(self, arch: Architecture, params: Params, spec: QuantSpec):
        spec.validate(arch)
        self.arch, self.spec = arch, spec
        self.in_fmt = input_formats(arch, spec)
        self.layers: dict[str, dict] = {}
        self.saturations: dict[str, int] = defaultdict(int)
        self.weight_saturations: dict[str, int] = {}
        for conv in arch.convs():
            f: ConvFormats = spec.layers[conv.name]
            w, b = (np.asarray(a, np.float64) for a in params[conv.name])
            w_codes = spec.weight_codes(conv.name, w)
            b_codes = spec.bias_codes(conv.name, b)
            self.weight_saturations[conv.name] = count_out_of_range(f.weight, w)
            # Work at the accumulator's fractional bits (>= the products', validated): exact integers.
            acc_frac = f.accum.frac
            w_acc, b_acc = to_accumulator(f, self.in_fmt[conv.name], w_codes, b_codes)
            bound = check_accumulator(conv.name, f, self.in_fmt[conv.name], w_acc, b_acc)
            # Fast path for the usual ReLU + AP_RND/AP_TRN + saturating result: the rounding offset rides in
            # the bias, so rounding is a single floor (same integers as arithmetic.requantize; tested).
            offset = A.floor_rounding_offset(f.result, acc_frac) if conv.relu else None
            bias_run = b_acc + (offset or 0)
            dtype = A.exact_dtype(bound + (offset or 0))
            L = {"conv": conv, "fmt": f, "wmat": A.weight_matrix(w_acc.astype(dtype)), "bias": bias_run.astype(dtype),
                 "acc_frac": acc_frac, "dtype": dtype, "floor": offset is not None}
            if conv.kernel == 1 and conv.pad:
                # a 1x1 conv over zero padding: the border is just cast(ReLU(bias)), computed once
                L["border"], L["border_over"] = self._cast(L, bias_run.astype(dtype)[None].copy())
            self.layers[conv.name] = L
        # the average pool's sum times its multiplier is computed in float64: prove it stays exact
        for layer, in_shape, _ in arch.shapes():
            if isinstance(layer, GlobalAvgPool):
                p: PoolFormats = spec.layers[layer.name]
                x = self.in_fmt[layer.name]
                peak = max(abs(x.min_code), x.max_code) * in_shape[0] * in_shape[1] * p.multiplier
                if peak >= A.EXACT_LIMIT[np.float64]:
                    raise SpecError(f"layer {layer.name}: sum x multiplier may reach {peak:.3g}, beyond the 2**52 "
                                    f"the emulator computes exactly; use a narrower input or multiplier")

    def _cast(self, L: dict, acc: np.ndarray) -> tuple[np.ndarray, int]:
        """ReLU and the cast to the result format, in place on the accumulator."""
        if L["floor"]:
            return A.requantize_floor_relu(L["fmt"].result, acc, L["acc_frac"])
        return A.requantize(L["fmt"].result, acc, L["acc_frac"], relu=L["conv"].relu)

    # -- forward -------------------------------------------------------------------------------
    def logit_codes(self, x: np.ndarray, batch_size: int = 16, quantize_input: bool = True,
                    threads: int | None = None) -> np.ndarray:
        """int64 codes of the logits (the avg pool's result format) for NHWC float images.

        With several cores, chunks of the batch run in parallel threads with single-threaded BLAS:
        numpy releases the GIL in its copies, ufuncs and matrix products, so the elementwise work
        (patches, rounding, pooling) uses every core too, not only the matrix products.
        """
        x = np.asarray(x)
        threads = min(threads or os.cpu_count() or 1, max(len(x) // 4, 1))
        if threads <= 1:
            return _batched(lambda xb: self._forward(xb, quantize_input), x, batch_size).astype(np.int64)
        from threadpoolctl import threadpool_limits

        chunk = -(-len(x) // threads)
        parts = [x[i:i + chunk] for i in range(0, len(x), chunk)]
        counts = [defaultdict(int) for _ in parts]
        with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(len(parts)) as pool:
            outs = list(pool.map(lambda p, c: _batched(lambda xb: self._forward(xb, quantize_input, counts=c),
                                                       p, batch_size), parts, counts))
        for c in counts:
            for k, v in c.items():
                self.saturations[k] += v
        return np.concatenate(outs).astype(np.int64)

    def trace(self, x: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(logit codes, {conv name: its output codes, NHWC int64}) for one batch: every intermediate
        feature map, to compare with the hardware's layer by layer."""
        maps: dict[str, np.ndarray] = {}
        logits = self._forward(np.asarray(x), True, lambda name, kind, a: maps.__setitem__(name, a.astype(np.int64)))
        return logits.astype(np.int64), maps

    def logits(self, x: np.ndarray, batch_size: int = 16) -> np.ndarray:
        return self.spec.logit_format.to_float(self.logit_codes(x, batch_size))

    def _forward(self, x: np.ndarray, quantize_input: bool, observer: Callable | None = None,
                 counts: dict | None = None) -> np.ndarray:
        counts = self.saturations if counts is None else counts
        if quantize_input:
            codes, n_over = A.quantize(self.spec.input, x)
            counts["input"] += n_over
            x = codes.astype(np.float32)
        else:
            x = np.asarray(x, np.float32)

        def conv(c: Conv, inp):
            L = self.layers[c.name]
            inp = inp.astype(L["dtype"], copy=False)
            if "border" in L:
                inner, n_over = self._cast(L, A.conv2d(inp, L["wmat"], L["bias"], 1))
                n, h, w, o = inner.shape
                p = c.pad
                out = np.empty((n, h + 2 * p, w + 2 * p, o), inner.dtype)
                out[:] = L["border"]
                out[:, p:p + h, p:p + w] = inner
                n_over += L["border_over"] * (out[:, :, :, 0].size - n * h * w)
            else:
                out, n_over = self._cast(L, A.conv2d(inp, L["wmat"], L["bias"], c.kernel, c.stride, c.pad))
            counts[c.name] += n_over
            if observer:
                observer(c.name, "output", out)
            return out.astype(np.float32, copy=False)

        def gap(layer, inp):
            p: PoolFormats = self.spec.layers[layer.name]
            out, n_over = A.global_avgpool(inp, p.multiplier, p.shift, self.in_fmt[layer.name].frac, p.result)
            counts[layer.name] += n_over
            return out

        pool = lambda p, inp: A.maxpool(inp, p.kernel, p.stride)
        return walk(self.arch, x, conv, pool, gap)

    def saturation_report(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.saturations.items()}


def count_out_of_range(fmt, values: np.ndarray) -> int:
    """How many float values lie beyond the format's range by more than half a step (they saturate/wrap)."""
    half = fmt.lsb / 2
    return int(np.count_nonzero((values >= fmt.max_value + half) | (values < fmt.min_value - half)))
