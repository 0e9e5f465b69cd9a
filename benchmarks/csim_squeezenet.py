"""C simulation of the full SqueezeNet v1.0 HLS design against the bit-exact emulator.

    .venv/bin/python benchmarks/csim_squeezenet.py [--n 20] [--out runs/csim_squeezenet] [--spec SPEC.json]
                                                   [--board zcu104] [--weights-in-uram auto|none|all|NAMES]
                                                   [--summary benchmarks/results/csim_squeezenet_BOARD.json]

SqueezeNet v1.0 with the Deep Compression weights; an 8-bit QuantSpec calibrated on the first 300
lines of ../shared/data/imagenet_val1300/labels.txt (make_spec(cal, 8, 8)); reuse factors from
hw.estimate.fold for the board (what `sqz hls` would generate); C simulation (g++, hls4ml's
bridge, one child process per core) of the images from line 300 on. For every image every logit code is
compared with FixedPointEmulator.logit_codes. --spec uses an existing QuantSpec instead (e.g. the
quantizer's spec). --weights-in-uram (default auto, as `sqz hls`): the loadable ops (conv1, Fire
modules, conv10: weights in UltraRAM, sent through the AXI top's load mode by every C-simulation process
before its images). Results are appended to OUT/results.jsonl as images finish (a rerun resumes); the
summary goes to OUT/summary.json and to --summary (committed: benchmarks/results/), and is printed.
A full run takes minutes per image pair: start it with nohup and follow OUT/log.txt.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "imagenet_val1300"
CALIBRATION_LINES = 300


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def calibrated_spec(arch, params, data: Path, out: Path):
    from model.imagenet import ImageFolderDataset
    from quant.calibrate import Calibration, make_spec
    from quant.spec import QuantSpec

    path = out / "spec_w8_a8.json"
    if path.exists():
        log(f"spec: reusing {path}")
        return QuantSpec.load(path, arch), None
    t0 = time.perf_counter()
    cal = Calibration(arch, params)
    for x, _, _ in ImageFolderDataset(data, stop=CALIBRATION_LINES).batches(25):
        cal.add_batch(x)
    spec = make_spec(cal, 8, 8)
    spec.save(path)
    seconds = time.perf_counter() - t0
    log(f"spec: calibrated on {cal.images} images in {seconds:.0f} s -> {path}")
    return spec, seconds


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20, help="images to simulate (from line 300 on)")
    ap.add_argument("--out", default=str(ROOT / "runs" / "csim_squeezenet"))
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--board", default="zcu104")
    ap.add_argument("--workers", type=int, default=None, help="C-simulation processes (default: one per core)")
    ap.add_argument("--spec", help="an existing QuantSpec (default: calibrate make_spec(cal, 8, 8) into OUT)")
    ap.add_argument("--weights-in-uram", default="auto",
                    help="auto, none, all or comma-separated op names (hw.estimate.choose_loadable)")
    ap.add_argument("--summary", help="also write the summary here (default: benchmarks/results/"
                                      "csim_squeezenet_BOARD_POLICY.json)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    from hw.cli import parse_weights_in_uram
    from hw.convert import plan_design
    from hw.project import build_project
    from model.architecture import get_architecture
    from model.deep_compression import decode, float_params
    from model.imagenet import ImageFolderDataset
    from model.squeezenet import build_keras, keras_weights
    from quant.emulator import FixedPointEmulator

    arch = get_architecture("squeezenet1_0")
    layers = decode(arch=arch)
    params = float_params(layers)
    if args.spec:
        from quant.spec import QuantSpec

        spec, calibration_s = QuantSpec.load(args.spec, arch), None
    else:
        spec, calibration_s = calibrated_spec(arch, params, Path(args.data), out)
    emulator = FixedPointEmulator(arch, params, spec)

    t0 = time.perf_counter()
    loadable = parse_weights_in_uram(args.weights_in_uram)
    keras_model = build_keras(arch, softmax=False, weights=keras_weights(spec.effective_params(params)))
    design = plan_design(keras_model, spec, arch, board=args.board, loadable=loadable, fold={})
    plan_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    project = build_project(design, out / "project")
    build_s = time.perf_counter() - t0
    log(f"project {project.path} ({'cache hit' if project.cache_hit else 'built'} in {build_s:.1f} s: "
        f"{', '.join(f'{k} {v:.1f}' for k, v in project.times.items())})")
    log(f"loadable weights (UltraRAM, loaded through the AXI top first): {list(design.loadable) or 'none'}")
    sim = project.simulator(workers=args.workers)

    results_path = out / "results.jsonl"
    done = {}
    if results_path.exists():
        for line in results_path.read_text().splitlines():
            r = json.loads(line)
            if r.get("key") == project.key:
                done[r["path"]] = r
    dataset = ImageFolderDataset(args.data, start=CALIBRATION_LINES, limit=args.n)
    log(f"C simulation of {len(dataset)} images ({len(done)} already done) with {sim.workers} worker(s)")
    t_run = time.perf_counter()
    n_before = len(done)
    with results_path.open("a") as f:
        for x, labels, paths in dataset.batches(sim.workers, skip_paths=set(done)):
            t0 = time.perf_counter()
            hw = sim.logit_codes(x)
            wall = time.perf_counter() - t0
            ref = emulator.logit_codes(x)
            for i, path in enumerate(paths):
                r = {"key": project.key, "path": path, "label": int(labels[i]),
                     "bit_exact": bool(np.array_equal(hw[i], ref[i])),
                     "mismatched_logits": int(np.count_nonzero(hw[i] != ref[i])),
                     "top1_hw": int(np.argmax(hw[i])), "top1_emulator": int(np.argmax(ref[i])),
                     "seconds": float(sim.seconds_per_image[i]), "batch_wall_s": wall}
                done[path] = r
                f.write(json.dumps(r) + "\n")
                f.flush()
            log(f"{len(done)}/{len(dataset)}: bit-exact {sum(r['bit_exact'] for r in done.values())}, "
                f"{np.mean(sim.seconds_per_image):.1f} s/image in C simulation")
    run_s = time.perf_counter() - t_run

    rows = list(done.values())
    n = len(rows)
    exact = sum(r["bit_exact"] for r in rows)
    secs = np.array([r["seconds"] for r in rows])
    summary = {
        "model": arch.name, "board": args.board, "project": str(project.path), "key": project.key,
        "spec": args.spec or str(out / "spec_w8_a8.json"), "calibration_images": CALIBRATION_LINES,
        "calibration_s": calibration_s, "weights_in_uram": args.weights_in_uram, "loadable": list(design.loadable),
        "weight_stream_beats": len(project.weight_words()) if design.loadable else 0, "reuse": design.reuse,
        "n": n, "bit_exact": exact, "mismatched_logits": sum(r["mismatched_logits"] for r in rows),
        "top1_hw": float(np.mean([r["top1_hw"] == r["label"] for r in rows])) if n else None,
        "cache_hit": project.cache_hit, "build_s": build_s, "build_times": project.times, "plan_s": plan_s,
        "seconds_per_image": float(secs.mean()) if n else None,
        "seconds_per_image_min_max": [float(secs.min()), float(secs.max())] if n else None,
        "workers": sim.workers, "wall_s_this_run": run_s,
        "wall_s_per_image_this_run": run_s / max(1, n - n_before) if n > n_before else None,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "estimate": {k: v for k, v in design.estimate().to_json().items() if k != "layers"},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    policy = args.weights_in_uram.replace(",", "+")
    committed = Path(args.summary) if args.summary else \
        ROOT / "benchmarks" / "results" / f"csim_squeezenet_{args.board}_{policy}.json"
    committed.parent.mkdir(parents=True, exist_ok=True)
    committed.write_text(json.dumps({**summary, "project": Path(summary["project"]).name}, indent=1) + "\n")
    print(f"SqueezeNet v1.0, 8-bit spec, C simulation vs emulator on {n} images of {args.data} (lines 300+)")
    print(f"  bit-exact images      {exact} / {n} ({summary['mismatched_logits']} mismatched logits)")
    print(f"  top-1 (hardware)      {100 * summary['top1_hw']:.1f} %" if n else "  top-1 n/a")
    print(f"  build                 {build_s:.1f} s ({'cache hit' if project.cache_hit else 'convert+write+g++'}: "
          f"{', '.join(f'{k} {v:.1f}' for k, v in project.times.items())})")
    if n:
        print(f"  C simulation          {secs.mean():.2f} s/image per process ({secs.min():.2f}..{secs.max():.2f}), "
              f"{sim.workers} process(es) in parallel")
    if summary["wall_s_per_image_this_run"]:
        print(f"  throughput            {summary['wall_s_per_image_this_run']:.2f} s/image wall clock this run "
              f"(C simulation + emulator + image decoding)")
    return 0 if exact == n else 1


if __name__ == "__main__":
    sys.exit(main())
