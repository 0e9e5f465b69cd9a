"""C simulation of a generated project, bit for bit against quant/'s emulator.

    sim = project.simulator()            # hw.project.Project
    codes = sim.logit_codes(images)      # int64 codes of the logit format, (N, classes)
    codes, traced = sim.trace(images)    # and the codes of every traced layer's output (plan_design(trace=))

Images go through hls4ml's own bridge (`myproject_double`: the float -> input_t cast of the input
format, the network, result_t -> double), exactly what hls4ml's `predict` calls, or, with
`axi_logit_codes`, through the AXI4-Stream top the FPGA will run (codes packed by host/axi.py).
The library runs in child processes (hw/csim_worker.py), one per CPU core by default: a crash in C++
becomes a CSimError here instead of killing the caller, and images are simulated in parallel.
Inputs are checked (shape, finite values) before any C++ runs.

Designs with loadable layers (weights in runtime-written UltraRAM arrays): every child process first
sends the project's weights_stream.bin through the AXI top's load mode (mode 1) and checks the reply,
exactly as the board's host must, and only then runs images -- whichever entry point they use.
`CSimulator(project, load_weights=False)` skips that (the weights stay 0, the power-up state), and
`load_reply(words)` sends any load stream and returns the top's answer (for checks of the protocol).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from quant.fixed_point import FixedFormat

WORKER = Path(__file__).resolve().parent / "csim_worker.py"


class CSimError(RuntimeError):
    """The C simulation failed (crashed, returned malformed output); the caller is unharmed."""


class CSimulator:
    def __init__(self, project, workers: int | None = None, timeout: float | None = None, load_weights: bool = True):
        self.project = project
        self.weight_words = project.weight_words()     # None: no loadable layers; checked against the manifest
        self.load_weights = load_weights
        m = project.manifest                            # host.manifest.Manifest
        self.input_shape = tuple(m.input.shape)
        self.n_out = m.output.n
        self.input_format = FixedFormat.parse(m.input.format)
        self.logit_format = FixedFormat.parse(m.output.format)
        self.packing = m.axi
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.timeout = timeout
        self.seconds_per_image: np.ndarray = np.zeros(0)

    # -- public ----------------------------------------------------------------------------------
    def predict(self, x: np.ndarray) -> np.ndarray:
        """Logits as float64 (N, classes), from float NHWC images (one image: HWC)."""
        x = self._check_images(x)
        return self._run("double", x.astype(np.float64), self.n_out)

    def logit_codes(self, x: np.ndarray) -> np.ndarray:
        """Integer codes of the logits: predict() * 2**frac, which must be integers (checked)."""
        return self._codes(self.predict(x))

    def _codes(self, y: np.ndarray) -> np.ndarray:
        scaled = np.ldexp(y, self.logit_format.frac)
        codes = np.rint(scaled)
        if not np.array_equal(codes, scaled):
            raise CSimError("C simulation returned logits that are not codes of " + str(self.logit_format))
        return codes.astype(np.int64)

    def trace(self, x: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Logit codes and, per traced layer (the project's plan_design(trace=...)), the integer codes of
        its output (N, *shape) in that layer's output format -- checked to be codes, as the logits are."""
        entries = self.project.manifest.trace
        if not entries:
            raise ValueError(f"{self.project.path}: no layer is traced in this project (plan_design(trace=...))")
        x = self._check_images(x)
        sizes = {e["name"]: int(np.prod(e["shape"])) for e in entries}
        y, traces = self._run("trace", x.astype(np.float64), self.n_out, sizes)
        out = {}
        for e in entries:
            scaled = np.ldexp(traces[e["name"]], int(e["frac"]))
            codes = np.rint(scaled)
            if not np.array_equal(codes, scaled):
                raise CSimError(f"traced layer {e['name']}: values that are not codes of {e['format']}")
            out[e["name"]] = codes.astype(np.int64).reshape((len(x), *e["shape"]))
        return self._codes(y), out

    def axi_logit_codes(self, x: np.ndarray) -> np.ndarray:
        """The same through the AXI4-Stream top: input codes packed into beats, beats unpacked (TLAST checked)."""
        x = self._check_images(x)
        codes = self.input_format.quantize(np.asarray(x, np.float64))
        words = self.packing.pack_input(codes).reshape(len(x), -1)
        beats = self.packing.out_beats
        out = self._run("axi", words, beats)
        n = out[:, -1]
        if np.any(n != beats):
            raise CSimError(f"AXI top wrote {sorted(set(n.tolist()))} beats per frame, expected {beats} "
                            f"(-1: it left input beats unread)")
        last = out[:, beats:2 * beats]
        want = np.zeros(beats, np.int64)
        want[-1] = 1
        if np.any(last != want):
            raise CSimError("AXI top: TLAST is not set on exactly the last output beat")
        return self.packing.unpack_output(out[:, :beats].view(np.uint64))

    def axi_words(self, words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Input beats (N, in_beats) uint64 straight into the AXI top -> (its output beats (N, out_beats) uint64,
        their TLAST flags (N, out_beats) bool), unchecked: the simulated board (host/sim.py) hands them to
        its DMA model, which judges the framing. A frame that wrote more or fewer beats raises CSimError."""
        words = np.ascontiguousarray(words, np.uint64)
        beats = self.packing.out_beats
        out = self._run("axi", words, beats)
        if np.any(out[:, -1] != beats):
            raise CSimError(f"AXI top wrote {sorted(set(out[:, -1].tolist()))} beats per frame, expected {beats}")
        return out[:, :beats].view(np.uint64), out[:, beats:2 * beats].astype(bool)

    def load_reply(self, words: np.ndarray) -> tuple[int, int, int]:
        """Send one weight-load stream (uint64 beats, TLAST on the last) through the top's mode 1 in a fresh
        process: (reply beats written, the first reply word, its TLAST). -1 beats: input left unread."""
        if self.weight_words is None:
            raise ValueError(f"{self.project.path}: this design has no loadable layers (no load mode)")
        words = np.asarray(words, np.uint64).ravel()
        if len(words) == 0:
            raise ValueError("an empty weight-load stream (the top needs at least the header beat)")
        out = self._run("load", words[None], 1, preload=False)[0]
        return int(out[-1]), int(np.int64(out[0]).view(np.uint64)), int(out[1])

    # -- internals ---------------------------------------------------------------------------------
    def _check_images(self, x) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim == 3:
            x = x[None]
        if x.ndim != 4 or tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"images of shape {tuple(x.shape)}; this project takes (N, "
                             f"{', '.join(map(str, self.input_shape))}) NHWC")
        if not np.issubdtype(x.dtype, np.floating) and not np.issubdtype(x.dtype, np.integer):
            raise ValueError(f"images must be numbers, got dtype {x.dtype}")
        if not np.all(np.isfinite(x)):
            raise ValueError("images contain NaN or infinite values")
        return x

    def _run(self, mode: str, x: np.ndarray, n_out: int, trace_sizes: dict | None = None, preload: bool = True):
        if len(x) == 0:
            empty = np.zeros((0, 2 * n_out + 1 if mode in ("axi", "load") else n_out))
            return (empty, {k: np.zeros((0, n)) for k, n in trace_sizes.items()}) if mode == "trace" else empty
        library = str(self.project.library.resolve())
        chunks = [c for c in np.array_split(np.arange(len(x)), min(self.workers, len(x))) if len(c)]
        with tempfile.TemporaryDirectory(prefix="sqz-csim-") as tmp:
            procs = []
            weights = []
            if preload and self.load_weights and self.weight_words is not None:
                np.save(Path(tmp, "weights.npy"), self.weight_words)
                weights = [f"--weights={Path(tmp, 'weights.npy')}"]
            for k, idx in enumerate(chunks):
                src, dst = Path(tmp, f"in{k}.npy"), Path(tmp, f"out{k}.npy")
                np.save(src, np.ascontiguousarray(x[idx]))
                err = open(Path(tmp, f"err{k}.txt"), "w+")
                extra = ([json.dumps(trace_sizes)] if mode == "trace" else []) + weights
                p = subprocess.Popen([sys.executable, str(WORKER), mode, library, str(src), str(dst), str(n_out),
                                      *extra], stdout=subprocess.DEVNULL, stderr=err)
                procs.append((p, dst, err))
            t_end = None if self.timeout is None else time.monotonic() + self.timeout
            outs, times, traced, failure = [], [], [], None
            for p, dst, err in procs:
                try:
                    p.wait(None if t_end is None else max(0.0, t_end - time.monotonic()))
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
                    failure = failure or f"timed out after {self.timeout} s"
                err.seek(0)
                tail = "\n".join(err.read().splitlines()[-15:])
                err.close()
                if p.returncode != 0 and failure is None:
                    how = (f"was killed by signal {signal.Signals(-p.returncode).name}" if p.returncode < 0
                           else f"exited with status {p.returncode}")
                    failure = f"the C simulation process {how}" + (f":\n{tail}" if tail else "")
                if failure is None:
                    outs.append(np.load(dst))
                    times.append(np.load(str(dst) + ".times.npy"))
                    if mode == "trace":
                        with np.load(str(dst) + ".trace.npz") as z:
                            traced.append({k: z[k] for k in z.files})
            if failure:
                raise CSimError(f"{self.project.path}: {failure}")
        self.seconds_per_image = np.concatenate(times)
        if mode == "trace":
            return np.concatenate(outs), {k: np.concatenate([t[k] for t in traced]) for k in trace_sizes}
        return np.concatenate(outs)
