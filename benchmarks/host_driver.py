"""Host driver and simulated board figures (issue 11): the driver under the real pynq 4.0.0 on the simulated board.

    .venv/bin/python benchmarks/host_driver.py setup            # project + dry-run bitstream folder (main venv)
    .venv-pynq/bin/python benchmarks/host_driver.py infer [--limit N]     # emulator behind the board, 1,300 images
    .venv/bin/python benchmarks/host_driver.py emulator         # the emulator alone (main venv, numpy 2): top-1
    .venv-pynq/bin/python benchmarks/host_driver.py csim [--limit 20]    # the C simulation behind the board
    .venv-pynq/bin/python benchmarks/host_driver.py cost        # driver host-side cost vs a numpy copy
    .venv-pynq/bin/python benchmarks/host_driver.py faults      # the fault-injection table

Design: SqueezeNet v1.0, the committed 8-bit QuantSpec benchmarks/results/q88/spec.json, KV260 with conv10's
weights in UltraRAM (so the weight load runs too), `sqz build` dry run (no Vivado: no .bit/.hwh; the simulated
board describes itself from the manifest). Data: ../shared/data/imagenet_val1300. Work files under
runs/host_bench/ (resumable: the infer CSVs are appended as batches finish); results in
benchmarks/results/host_*.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

from common import ROOT, machine, run_sqz  # also puts the repository on sys.path

warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "imagenet_val1300"
WORK = ROOT / "runs" / "host_bench"
SPEC = ROOT / "benchmarks" / "results" / "q88" / "spec.json"
PROJECT, BITDIR = WORK / "proj_kv260", WORK / "bit_kv260"
RESULTS = ROOT / "benchmarks" / "results"
MAIN_PYTHON = str(ROOT / ".venv" / "bin" / "python")   # sqz hls/build/eval need TF and hls4ml: not the pynq venv


def write(name: str, payload: dict) -> None:
    path = RESULTS / name
    path.write_text(json.dumps({**payload, "machine": machine(),
                                "command": " ".join([Path(sys.executable).parent.parent.name + "/bin/python",
                                                     *sys.argv])}, indent=1) + "\n")
    print(json.dumps(payload, indent=1)[:3000])
    print(f"-> {path}")


def setup(args) -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    run_sqz(["hls", "--spec", str(SPEC), "--board", "kv260", "--weights-in-uram", "conv10", "--out", str(PROJECT)],
            python=MAIN_PYTHON)
    run_sqz(["build", "--project", str(PROJECT), "--board", "kv260", "--out", str(BITDIR)], python=MAIN_PYTHON)


def infer(args) -> None:
    from host.infer import run_infer

    tag = f"host_infer_emulator{'' if args.limit is None else args.limit}"
    r = run_infer(BITDIR, DATA, sim="emulator", limit=args.limit, batch_size=args.batch_size,
                  json_out=WORK / f"{tag}.json", resume=True, log=print)
    write(f"{tag}.json", {"data": str(DATA.relative_to(ROOT.parent)), "bitstream": "runs/host_bench/bit_kv260 "
                          "(sqz build dry run of benchmarks/results/q88/spec.json, kv260, conv10 in UltraRAM)",
                          **{k: v for k, v in r.items() if k not in ("bitstream", "data", "results_csv", "machine")}})


def emulator(args) -> None:
    """The emulator's own top-1 on the same images, in the main venv (numpy 2, no pynq), via sqz eval."""
    out = WORK / "emulator_eval.json"
    cmd = ["eval", "--spec", str(BITDIR / "spec.json"), "--data", str(DATA), "--json", str(out), "--quiet",
           "--predictions", str(WORK / "emulator_eval.jsonl")]
    if args.limit is not None:
        cmd += ["--limit", str(args.limit)]
    run_sqz(cmd, python=MAIN_PYTHON)
    d = json.loads(out.read_text())
    write("host_emulator_eval.json", {k: d[k] for k in ("n", "top1", "top5", "precision", "spec", "images_per_s")})


def csim(args) -> None:
    from host.infer import run_infer

    r = run_infer(BITDIR, DATA, sim="csim", project=PROJECT, limit=args.limit, batch_size=args.batch_size,
                  json_out=WORK / "host_infer_csim.json", resume=True, timeout_s=3600.0, log=print)
    write("host_infer_csim.json", {"data": str(DATA.relative_to(ROOT.parent)), "limit": args.limit,
                                   **{k: v for k, v in r.items() if k not in ("bitstream", "data", "results_csv",
                                                                               "machine")}})


class NullBackend:
    """Answers every frame at once with zero logits: what is left of run() is the driver's own work (plus the
    register model's, so an upper bound)."""
    name = "null"

    def __init__(self, n_out):
        self.n_out = n_out

    def frames(self, codes):
        return np.zeros((len(codes), self.n_out), np.int64)

    def load(self, words):
        return True, len(words) - 1


def cost(args) -> None:
    import pynq

    from host.driver import SqzOverlay
    from host.manifest import Manifest
    from host.sim import SimBoard

    m = Manifest.load(BITDIR)
    board = SimBoard(m, NullBackend(m.output.n), BITDIR)
    ov = SqzOverlay(BITDIR, device=board, batch_size=args.batch_size)
    b, axi = ov.batch_size, ov.axi
    rng = np.random.default_rng(0)
    lo, hi = ov.in_fmt.min_code, ov.in_fmt.max_code
    codes = rng.integers(lo, hi + 1, size=(b, *m.input.shape))
    src_in = np.ascontiguousarray(axi.pack_input(codes))
    out_words = pynq.allocate((b, axi.out_beats), np.uint64, target=board)
    out_words[:] = rng.integers(0, 2 ** 63, size=out_words.shape, dtype=np.uint64)
    dst_in = np.empty_like(src_in)
    src_out, dst_out = np.asarray(out_words).copy(), np.empty((b, axi.out_beats), np.uint64)
    reps = args.reps

    medians = {}

    def per_image(name, fn):
        """Minimum over the repetitions (the least-disturbed run on a shared machine); the median is kept too."""
        fn()
        t = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            t.append(time.perf_counter() - t0)
        medians[name] = 1e6 * float(np.median(t)) / b
        return 1e6 * float(np.min(t)) / b

    pack = per_image("pack", lambda: ov.in_bufs[0].__setitem__(slice(0, b), axi.pack_input(codes)))
    unpack = per_image("unpack", lambda: axi.unpack_output(out_words))
    copy = per_image("numpy_copy_same_bytes", lambda: (np.copyto(dst_in, src_in), np.copyto(dst_out, src_out)))
    ov.timing = type(ov.timing)()
    whole = per_image("run_total_null_accelerator", lambda: ov.run(codes))
    before = board.register_accesses
    ov.run(codes)
    accesses = (board.register_accesses - before) / b
    write("host_driver_cost.json", {
        "batch_size": b, "frame_bytes_in": ov.in_bytes, "frame_bytes_out": ov.out_bytes, "reps": reps,
        "us_per_image": {"pack": pack, "unpack": unpack, "run_total_null_accelerator": whole,
                         "bookkeeping_and_register_model": whole - pack - unpack,
                         "numpy_copy_same_bytes": copy},
        "us_per_image_median": medians, "statistic": "us_per_image: minimum over reps; us_per_image_median: median",
        "pack_plus_unpack_over_copy": (pack + unpack) / copy,
        "register_accesses_per_image": accesses,
        "note": "one run, side by side; run() on the simulated board with an accelerator that answers at once: "
                "its time less pack and unpack is the driver's bookkeeping plus the register model's (an upper "
                "bound of the bookkeeping); the copy moves the same input and output bytes with np.copyto"})


def faults(args) -> None:
    from host.driver import DmaError, SqzOverlay
    from host.sim import FAULTS, SimBoard

    board = SimBoard.for_folder(BITDIR, backend="emulator")
    ov = SqzOverlay(BITDIR, device=board, batch_size=2, timeout_s=2.0)
    from model.imagenet import ImageFolderDataset

    ds = ImageFolderDataset(DATA, limit=4)
    x = np.stack([ds[i][0] for i in range(4)])
    ref = board.backend.emulator.logit_codes(x)
    rows = []
    for fault in FAULTS:
        board.faults.arm(fault)
        t0 = time.perf_counter()
        try:
            ov.classify(x[:2])
            said, state = "no error (fault not detected)", None
        except DmaError as e:
            said, state = str(e), e.state
        seconds = time.perf_counter() - t0
        nxt = ov.classify(x[2:])
        rows.append({"fault": fault, "driver_said": said, "state": state, "seconds_to_error": seconds,
                     "next_batch_bit_exact": bool(np.array_equal(nxt, ref[2:]))})
    write("host_faults.json", {"timeout_s": 2.0, "batch_size": 2, "rows": rows})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=("setup", "infer", "emulator", "csim", "cost", "faults"))
    ap.add_argument("--limit", type=int)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--reps", type=int, default=20)
    args = ap.parse_args(argv)
    if args.what == "csim" and args.limit is None:
        args.limit = 20
    {"setup": setup, "infer": infer, "emulator": emulator, "csim": csim, "cost": cost, "faults": faults}[args.what](args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
