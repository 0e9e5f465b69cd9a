"""Child process of hw.csim: load the C-simulation library and run images through it.

Run as a script (`python hw/csim_worker.py MODE LIB IN.npy OUT.npy N_OUT`), importing nothing but numpy and
ctypes, so that whatever the C++ does -- abort, segfault, exit -- only this process dies and the caller
gets an error it can report. MODE 'double': hls4ml's bridge myproject_double (floats in, floats out);
'axi': sqz_axi_run (64-bit AXI words in, words and TLAST flags out);
'trace': myproject_double with hls4ml's trace storage (a 6th argument, JSON {layer: size}, names the
traced layers); the traced outputs go to OUT.npy.trace.npz, one (N, size) array per layer;
'load': sqz_axi_load (the AXI top's weight-load mode), one load stream per row, output rows as 'axi'.
`--weights=W.npy` (any position): first send that weight-load stream through sqz_axi_load, as a host
must before any frame of a design with loadable layers; a rejected load exits with status 3.
Writes OUT.npy and OUT.times.npy (seconds per image).
"""
import ctypes
import json
import sys
import time

import numpy as np
from numpy.ctypeslib import ndpointer


AXI_ARGTYPES = [ndpointer(np.uint64, flags="C_CONTIGUOUS"), ctypes.c_int, ndpointer(np.uint64, flags="C_CONTIGUOUS"),
                ndpointer(np.uint8, flags="C_CONTIGUOUS"), ctypes.c_int]


def axi_function(lib, name):
    fn = getattr(lib, name)
    fn.restype = ctypes.c_int
    fn.argtypes = AXI_ARGTYPES
    return fn


def load_weights(lib, path) -> None:
    words = np.ascontiguousarray(np.load(path), np.uint64)
    out, last = np.zeros(2, np.uint64), np.zeros(2, np.uint8)
    n = axi_function(lib, "sqz_axi_load")(words, len(words), out, last, 2)
    reply = int(out[0])
    if n != 1 or last[0] != 1 or not reply & 1:
        sys.stderr.write(f"weight load rejected by the AXI top: {n} reply beat(s), reply {reply:#018x} "
                         f"(bit 0 accepted, bits 63..32 payload beats read: {reply >> 32}), {len(words)} beats sent\n")
        raise SystemExit(3)


def main(argv):
    weights = [a.split("=", 1)[1] for a in argv if a.startswith("--weights=")]
    argv = [a for a in argv if not a.startswith("--weights=")]
    mode, lib_path, in_path, out_path, n_out = argv[1], argv[2], argv[3], argv[4], int(argv[5])
    lib = ctypes.CDLL(lib_path)
    if weights:
        load_weights(lib, weights[0])
    x = np.load(in_path)
    times = np.zeros(len(x))
    traces = None
    if mode == "trace":
        sizes = json.loads(argv[6])

        class TraceData(ctypes.Structure):
            _fields_ = [("name", ctypes.c_char_p), ("data", ctypes.c_void_p)]

        lib.allocate_trace_storage.argtypes = [ctypes.c_size_t]
        lib.allocate_trace_storage.restype = None
        lib.collect_trace_output.argtypes = [ctypes.POINTER(TraceData)]
        lib.collect_trace_output.restype = None
        lib.free_trace_storage.restype = None
        lib.allocate_trace_storage(ctypes.sizeof(ctypes.c_double))
        slots = (TraceData * len(sizes))()
        traces = {name: np.zeros((len(x), n), np.float64) for name, n in sizes.items()}
    if mode in ("double", "trace"):
        fn = lib.myproject_double
        fn.restype = None
        fn.argtypes = [ndpointer(np.float64, flags="C_CONTIGUOUS")] * 2
        y = np.zeros((len(x), n_out), np.float64)
        for i in range(len(x)):
            xi = np.ascontiguousarray(x[i].ravel(), np.float64)
            yi = np.zeros(n_out, np.float64)
            t0 = time.perf_counter()
            fn(xi, yi)
            times[i] = time.perf_counter() - t0
            y[i] = yi
            if traces is not None:
                lib.collect_trace_output(slots)
                for slot in slots:
                    name = slot.name.decode()
                    data = ctypes.cast(slot.data, ctypes.POINTER(ctypes.c_double))
                    traces[name][i] = np.ctypeslib.as_array(data, shape=(traces[name].shape[1],))
        if traces is not None:
            lib.free_trace_storage()
            np.savez(out_path + ".trace.npz", **traces)
    elif mode in ("axi", "load"):
        fn = axi_function(lib, "sqz_axi_run" if mode == "axi" else "sqz_axi_load")
        # one row per image: n_out beats of data, then n_out TLAST flags, then the beat count
        y = np.zeros((len(x), 2 * n_out + 1), np.int64)
        for i in range(len(x)):
            words = np.ascontiguousarray(x[i], np.uint64)
            out = np.zeros(n_out + 1, np.uint64)   # room for one beat too many: detects a long frame
            last = np.zeros(n_out + 1, np.uint8)
            t0 = time.perf_counter()
            n = fn(words, len(words), out, last, n_out + 1)
            times[i] = time.perf_counter() - t0
            y[i, :n_out] = out[:n_out].view(np.int64)
            y[i, n_out:2 * n_out] = last[:n_out]
            y[i, -1] = n
    else:
        raise SystemExit(f"unknown mode {mode}")
    np.save(out_path, y)
    np.save(out_path + ".times.npy", times)


if __name__ == "__main__":
    main(sys.argv)
