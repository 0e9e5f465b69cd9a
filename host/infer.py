"""`python -m sqz infer`: images through the board (or the simulated board), top-1/top-5, frames/s, bit-exactness.

    python -m sqz infer --bitstream bitstreams/zcu104 --data DIR [--sim [emulator|csim]] [--mirror] --json OUT.json
    from host.infer import run_infer
    result = run_infer("bitstreams/zcu104", "DIR", sim="emulator", limit=20, json_out="out.json")

The JSON (contract): n, top1, top5, frames_per_s, bit_exact, latency_ms {p50, p99}, estimated_board_fps, and
more: frames_per_s_source (measured end to end on the board, or "simulator (...)" under --sim),
bit_exact_of (images compared), emulator_top1, timing (preprocess / pack / DMA + compute / unpack),
described_by (the .hwh, or the manifest for a dry-run folder), skipped, resumed, machine; passes (frames per image:
2 with --mirror, each image and its left-right mirror, their logit codes summed as `sqz eval --mirror` does,
sqz/passes.py) and images_per_s (frames_per_s / passes).

Where it runs: on the board with pynq (the real device); with --sim, the simulated board (host/sim.py) under
the real pynq: in this process when pynq imports here, otherwise `sqz infer` re-runs itself under the
second venv's Python (.venv-pynq, host/requirements-sim.txt; SQZ_PYNQ_PYTHON overrides the path), where the
emulator and the C simulation behind the board also run (numpy < 2 there; both are numpy-only).
bit_exact compares every image's logit codes with quant/'s emulator of the folder's spec (spec.json,
spec.weights.npz); where quant/ is not importable (a board with only host/) it is null.
Per-image rows are appended to a CSV (--results, default OUT.csv beside the JSON) as batches finish; an
interrupted run loses nothing and --resume continues it (the JSON then counts every row of the CSV).
"""
from __future__ import annotations

import csv
import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np

from sqz.errors import SqzError

ROOT = Path(__file__).resolve().parents[1]
PYNQ_VENV = ROOT / ".venv-pynq"
CSV_FIELDS = ["index", "path", "label", "top1", "top5", "bit_exact", "emulator_top1", "batch", "batch_ms", "passes"]


class InferError(SqzError):
    """A user error of `sqz infer` (exit status 2)."""


def _reference(folder: Path, manifest, board):
    """The emulator the logits are compared with (None where quant/ is not there: a bare board)."""
    be = getattr(board, "backend", None)
    if be is not None and hasattr(be, "emulator"):
        return be.emulator
    try:
        from model.architecture import get_architecture
        from quant.emulator import FixedPointEmulator
        from quant.spec import QuantSpec
        from sqz.cli_common import trained_params
    except ImportError:
        return None
    arch = get_architecture(manifest.model)
    return FixedPointEmulator(arch, trained_params(manifest.model), QuantSpec.load(folder / "spec.json", arch))


def _read_done(path: Path, passes: int) -> tuple[dict, list[str] | None]:
    """The rows of an earlier run, to resume, and the file's columns (None: no file); refused when they were made
    with another number of passes per image. A CSV from before the passes column holds one-pass rows."""
    from sqz.passes import check_resumable

    if not path.exists():
        return {}, None
    done = {}
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        for line, row in enumerate(reader, start=2):
            try:
                had = int(row.get("passes") or 1)
            except ValueError:
                raise InferError(f"{path}, line {line}: passes {row['passes']!r} is not a number") from None
            check_resumable(path, had, passes, "rows", "--results", error=InferError)
            done[row["path"]] = row
    return done, reader.fieldnames


def run_infer(bitstream_dir, data_dir, sim: str | None = "emulator", project=None, limit: int | None = None,
              start: int | None = None, stop: int | None = None, batch_size: int = 8, json_out=None,
              results_csv=None, resume: bool = False, skip_bad: bool = False, timeout_s: float | None = None,
              workers: int | None = None, mirror: bool = False, log=print) -> dict:
    """Run the images of data_dir through the design in bitstream_dir; returns the JSON dict (also written
    to json_out). sim: None (the board's pynq device), "emulator" or "csim" (project: the HLS project folder).
    Where pynq does not import (the main venv) and sim is set, the same run goes to the second venv's Python
    (`sqz infer` there) and its JSON comes back as the dict: callers need not care which venv they are in.
    mirror: two frames per image (as is and mirrored), their logit codes summed (sqz/passes.py)."""
    from sqz.cli_common import require_labels
    from sqz.passes import mirror_sum, passes_per_image

    # an ImageNet-style folder (labels.txt), or the CIFAR-10 archives' folder: its test split, unpacked once
    data_dir = require_labels(str(data_dir))
    try:
        import pynq  # noqa: F401
    except ImportError:
        if not sim:
            raise InferError("pynq is not importable here: run on the board (PYNQ image), or set sim") from None
        return _in_pynq_venv(dict(bitstream=bitstream_dir, data=data_dir, sim=sim, project=project, limit=limit,
                                  start=start, stop=stop, batch_size=batch_size, json=json_out, results=results_csv,
                                  resume=resume, skip_bad=skip_bad, timeout=timeout_s, workers=workers,
                                  mirror=mirror), log)
    from host.driver import SqzOverlay
    from host.manifest import Manifest, ManifestError
    from model.imagenet import ImageFolderDataset

    folder = Path(bitstream_dir)
    try:
        manifest = Manifest.load(folder)
    except ManifestError as e:
        raise InferError(f"--bitstream {folder}: {e}") from None
    if json_out is None and results_csv is None:
        raise InferError("give --json OUT.json or --results OUT.csv (per-image rows go to the CSV as they come)")
    csv_path = Path(results_csv) if results_csv else Path(json_out).with_suffix(".csv")
    if csv_path.exists() and not resume:
        raise InferError(f"{csv_path}: exists; pass --resume to continue that run, or remove it")
    passes = passes_per_image(mirror)
    done, columns = _read_done(csv_path, passes) if resume else ({}, None)

    def frames(predict, images):    # one frame per image, or (--mirror) the image and its mirror, summed
        return mirror_sum(predict, images) if mirror else predict(images)

    board = None
    if sim:
        from host.sim import SimBoard

        try:
            board = SimBoard.for_folder(folder, backend=sim, project=project, workers=workers)
        except ValueError as e:
            raise InferError(str(e)) from None
    t_setup = time.perf_counter()
    ov = SqzOverlay(folder, device=board, batch_size=batch_size, timeout_s=timeout_s)
    try:   # the buffers are freed whatever happens (a DMA timeout, a bad image)
        setup_s = time.perf_counter() - t_setup
        reference = _reference(folder, manifest, board)
        size = manifest.input.shape[0]
        dataset = ImageFolderDataset(data_dir, limit=limit, start=start, stop=stop, skip_bad=skip_bad, size=size,
                                     resize=manifest.input.resize, mean_bgr=manifest.input.mean_bgr)  # as trained
        wanted = set(dataset.paths)
        done = {p: r for p, r in done.items() if p in wanted}
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        n_new, t_run = 0, time.perf_counter()
        batch_ms = []
        with csv_path.open("a", newline="") as f:
            # a resumed CSV keeps its own columns (one from before the passes column gets none)
            writer = csv.DictWriter(f, columns or CSV_FIELDS, extrasaction="ignore")
            if columns is None:
                writer.writeheader()
            index = {p: i for i, p in enumerate(dataset.paths)}
            for k, (images, labels, paths) in enumerate(dataset.batches(ov.batch_size, skip_paths=set(done))):
                t0 = time.perf_counter()
                codes = frames(ov.classify, images)
                ms = 1e3 * (time.perf_counter() - t0)
                ref = frames(reference.logit_codes, images) if reference is not None else None
                exact = np.all(codes == ref, axis=1) if ref is not None else [None] * len(images)
                emu_top1 = np.argmax(ref, axis=1).tolist() if ref is not None else [""] * len(images)
                top5 = np.argsort(-codes, axis=1, kind="stable")[:, :5]
                for p, lab, t5, ex, et in zip(paths, labels.tolist(), top5.tolist(), exact, emu_top1):
                    row = {"index": index[p], "path": p, "label": lab, "top1": t5[0], "top5": " ".join(map(str, t5)),
                           "bit_exact": "" if ex is None else int(bool(ex)), "emulator_top1": et, "batch": k,
                           "batch_ms": f"{ms:.3f}", "passes": passes}
                    writer.writerow(row)
                    done[p] = {k2: str(v) for k2, v in row.items()}
                f.flush()
                n_new += len(images)
                batch_ms += [ms] * len(images)
                if log and (k + 1) % 20 == 0:
                    log(f"[infer] {len(done)} / {len(dataset)} images")
        wall = time.perf_counter() - t_run
        rows = list(done.values())
        n = len(rows)
        hits1 = sum(int(r["top1"]) == int(r["label"]) for r in rows)
        hits5 = sum(str(r["label"]) in r["top5"].split() for r in rows)
        compared = [r for r in rows if r["bit_exact"] != ""]
        timing = ov.timing.summary()
        source = ("measured end to end on the board" if board is None else
                  f"simulator ({sim} backend on {platform.machine()}, {os.cpu_count()} cores): the simulator's rate, "
                  f"not the board's")
        result = {
            "n": n, "top1": hits1 / n if n else 0.0, "top5": hits5 / n if n else 0.0,
            "frames_per_s": timing["frames_per_s"], "frames_per_s_source": source, "passes": passes,
            "images_per_s": timing["frames_per_s"] / passes if timing["frames_per_s"] else None,
            "bit_exact": sum(int(r["bit_exact"]) for r in compared) if compared else None,
            "bit_exact_of": len(compared),
            "emulator_top1": (sum(int(r["emulator_top1"]) == int(r["label"]) for r in compared) / len(compared)
                              if compared else None),
            "bit_exact_reference": "quant/ FixedPointEmulator of the folder's spec.json" if reference is not None
            else None,
            "latency_ms": {"p50": float(np.percentile(batch_ms, 50)), "p99": float(np.percentile(batch_ms, 99))}
            if batch_ms else None,
            "latency_definition": "wall time of the batch that holds the image (preprocessing, packing, DMA + compute, "
                                  "unpacking), per image of this run",
            "estimated_board_fps": manifest.resources.fps, "estimated_board_fps_source": manifest.resources.source,
            "estimated_board_images_per_s": manifest.resources.fps / passes if manifest.resources.fps else None,
            "board": manifest.board, "model": manifest.model, "sim": sim, "described_by": ov.described_by,
            "batch_size": ov.batch_size, "timing": timing, "setup_s": setup_s, "wall_s_this_run": wall,
            "images_this_run": n_new, "resumed": n - n_new,
            "skipped": [{"path": p, "reason": r} for p, r in dataset.skipped],
            "recoveries": ov.recoveries, "bitstream": str(folder.resolve()), "data": str(Path(data_dir).resolve()),
            "results_csv": str(csv_path.resolve()),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        }
    finally:
        ov.close()
    if json_out:
        import json

        Path(json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(json_out).write_text(json.dumps(result, indent=1) + "\n")
    return result


# -- CLI ---------------------------------------------------------------------------------------------

def add_commands(sub) -> None:
    p = sub.add_parser("infer", help="images through the board's accelerator (or the simulated board with --sim): "
                                     "top-1/top-5, frames/s, bit-exactness against the emulator")
    p.add_argument("--bitstream", required=True, help="bitstreams/<board> (manifest.json; .bit/.hwh on a board)")
    p.add_argument("--data", required=True, help="ImageNet-style folder with labels.txt, or the CIFAR-10 folder "
                                                 "(cifar10_*_jpg.tar.gz: its 10,000 test images)")
    p.add_argument("--sim", nargs="?", const="emulator", choices=("emulator", "csim"),
                   help="the simulated board under the real pynq, with the emulator (default) or the C simulation "
                        "behind it")
    p.add_argument("--project", help="--sim csim: the HLS project folder (sqz hls --out) of this bitstream")
    p.add_argument("--json", help="write the result here")
    p.add_argument("--results", help="per-image CSV, appended as batches finish (default: beside --json)")
    p.add_argument("--resume", action="store_true", help="continue the run in --results")
    p.add_argument("--limit", type=int)
    p.add_argument("--start", type=int)
    p.add_argument("--stop", type=int)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--skip-bad", action="store_true", help="skip (and list) unreadable images instead of failing")
    p.add_argument("--timeout", type=float, help="deadline of one batch in seconds (default: from the manifest)")
    p.add_argument("--workers", type=int, help="--sim csim: C-simulation processes")
    p.add_argument("--mirror", action="store_true",
                   help="two frames per image, as is and mirrored left-right, their logit codes summed (as `sqz eval "
                        "--mirror`): half the images per second; a --results file resumes only a run of the same kind")
    p.set_defaults(func=cmd_infer)


def _pynq_python() -> str | None:
    exe = os.environ.get("SQZ_PYNQ_PYTHON") or str(PYNQ_VENV / "bin" / "python")   # SQZ_PYNQ_PYTHON: tests, other layouts
    return exe if Path(exe).exists() else None


def _in_pynq_venv(opts: dict, log) -> dict:
    """run_infer under the second venv: `python -m sqz infer` there, its JSON read back."""
    import json
    import tempfile
    from argparse import Namespace

    exe = _pynq_python()
    if exe is None:
        raise InferError(_NO_VENV)
    with tempfile.TemporaryDirectory(prefix="sqz-infer-") as tmp:
        json_out = opts["json"] or str(Path(tmp, "infer.json"))
        if opts["results"] is None and opts["json"] is None:
            raise InferError("give json_out or results_csv (per-image rows go to the CSV as they come)")
        argv = _argv(Namespace(**{**opts, "json": json_out}))
        run = subprocess.run([exe, "-W", "ignore", "-m", "sqz", *argv], env={**os.environ, "PYTHONPATH": str(ROOT)},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if log and run.stdout:
            log(run.stdout.rstrip())
        if run.returncode != 0:
            raise InferError(f"sqz infer under {exe} failed (exit {run.returncode}): "
                             f"{run.stderr.strip().splitlines()[-1] if run.stderr.strip() else 'no message'}")
        return json.loads(Path(json_out).read_text())


_NO_VENV = (f"--sim runs the simulated board under the real pynq 4.0.0, in a second venv ({PYNQ_VENV}; pynq pins "
            f"numpy<2): create it with `python3 -m venv .venv-pynq && .venv-pynq/bin/pip install -r "
            f"host/requirements-sim.txt` (bash .ci/run does)")


def _argv(args) -> list[str]:
    out = ["infer", "--bitstream", args.bitstream, "--data", args.data]
    if args.sim:
        out += ["--sim", args.sim]
    for flag in ("project", "json", "results", "limit", "start", "stop", "batch_size", "timeout", "workers"):
        v = getattr(args, flag)
        if v is not None:
            out += [f"--{flag.replace('_', '-')}", str(v)]
    out += ["--resume"] * args.resume + ["--skip-bad"] * args.skip_bad + ["--mirror"] * args.mirror
    return out


def cmd_infer(args) -> int:
    try:
        import pynq  # noqa: F401
    except ImportError:
        if not args.sim:
            raise InferError("pynq is not importable here: run `sqz infer` on the board (PYNQ image), or add --sim "
                             "for the simulated board") from None
        exe = _pynq_python()
        if exe is None:
            raise InferError(_NO_VENV) from None
        from sqz.cli_common import require_labels

        # checked (and CIFAR-10 unpacked) here, before the second venv starts; where pynq imports, run_infer does it
        args.data = require_labels(args.data)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        return subprocess.run([exe, "-W", "ignore", "-m", "sqz", *_argv(args)], env=env).returncode
    import warnings

    warnings.filterwarnings("ignore", message="No devices found")
    r = run_infer(args.bitstream, args.data, sim=args.sim, project=args.project, limit=args.limit, start=args.start,
                  stop=args.stop, batch_size=args.batch_size, json_out=args.json, results_csv=args.results,
                  resume=args.resume, skip_bad=args.skip_bad, timeout_s=args.timeout, workers=args.workers,
                  mirror=args.mirror)
    print(f"{r['model']} on {r['board']}{' (simulated: ' + r['sim'] + ')' if r['sim'] else ''}: {r['n']} images"
          + (f", {r['passes']} frames each (--mirror)" if r["passes"] != 1 else ""))
    print(f"  top-1 {100 * r['top1']:.2f} %  top-5 {100 * r['top5']:.2f} %")
    print(f"  bit-exact vs emulator: {r['bit_exact']} / {r['bit_exact_of']}")
    fps = r["frames_per_s"]
    print(f"  frames/s {fps:.1f}" + (f", images/s {r['images_per_s']:.1f}" if r["passes"] != 1 else "")
          + f" ({r['frames_per_s_source']})" if fps else "  frames/s n/a (all resumed)")
    print(f"  estimated board fps {r['estimated_board_fps']:.1f}"
          + (f", images/s {r['estimated_board_images_per_s']:.1f}" if r["passes"] != 1 else "")
          + f" ({r['estimated_board_fps_source']})")
    print(f"  metadata: {r['described_by']}; per-image rows: {r['results_csv']}")
    return 0
