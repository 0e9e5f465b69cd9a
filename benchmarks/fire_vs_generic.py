"""sqz's fused Fire kernel against hls4ml's stock Clone/Conv/Concatenate, for fire2 of SqueezeNet v1.0.

    .venv/bin/python benchmarks/fire_vs_generic.py [--n 10] [--out runs/fire_vs_generic]

Identical outputs (C simulation, bit for bit)
  The network simulated is the front of SqueezeNet v1.0 -- conv1 -> pool1 -> fire2 -> global average
  pool -- with the Deep Compression weights and the 8-bit QuantSpec of benchmarks/csim_squeezenet.py
  (make_spec(cal, 8, 8) on lines 1-300 of ../shared/data/imagenet_val1300; reused from
  runs/csim_squeezenet/spec_w8_a8.json, or calibrated again). conv1, pool1 and fire2 keep that spec's
  formats exactly; the average pool, which only closes the network here, averages fire2's 128 channels
  exactly into fire2's own format. fire2 runs at its real size (55x55x96 -> 55x55x128) on the real
  activations of real images (lines 301 on), so no smaller spatial size was needed.
  Two hls4ml projects are generated that differ only in fire2: sqz::fire (fused) and hls4ml's
  pointwise conv / relu / clone / zero-pad / conv / relu / concatenate (plan_design(fuse_fire=False)),
  with the same reuse factors -- those choose_reuse picks for the whole network on the zcu104. Both
  record fire2's output map in C simulation (hls4ml's trace), and every value of every map is compared:
  fused against generic, and both against quant/'s bit-exact emulator. pool1's map (fire2's input) and
  the logits are compared too.

Estimated resources side by side (hw/estimate.py, before synthesis -- nothing is synthesised)
  fire2 as the FusedFire and GenericFire ops (what hls4ml generates: ten streams whose FIFOs are a whole
  feature map deep, three conv engines with their ReLU layers, clone, zero-pad, concatenate). The
  generic estimate's FIFO list is held against the stream variables of the generated hls4ml graph
  (depth and word width of each), so the estimate models the structure that was simulated. Then every
  Fire module of v1.0 and the whole network at the same folding, fused vs generic.

Results: printed, OUT/summary.json and benchmarks/results/fire_vs_generic.json (committed).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402

from csim_squeezenet import CALIBRATION_LINES, DATA, calibrated_spec, log  # noqa: E402

BOARD = "zcu104"
FIRE = "fire2"


def front_of_squeezenet(full):
    """conv1 -> pool1 -> fire2 -> global average pool, as an Architecture."""
    from model.architecture import Architecture, Fire, GlobalAvgPool

    layers = []
    for layer in full.layers:
        layers.append(layer)
        if layer.name == FIRE:
            break
    fire = layers[-1]
    assert isinstance(fire, Fire)
    return Architecture(f"squeezenet1_0_front_{FIRE}", full.input_size, (*layers, GlobalAvgPool("pool10")),
                        num_classes=fire.filters)


def front_spec(front, full_spec):
    """The full network's formats for conv1 / fire2; an exact average of fire2's map in fire2's format.
    (No weight codes: the caller passes full_spec.effective_params, whose rounding gives the spec's codes.)"""
    from quant.arithmetic import reciprocal
    from quant.fixed_point import FixedFormat
    from quant.spec import PoolFormats, QuantSpec

    layers = {c.name: full_spec.layers[c.name] for c in front.convs()}
    act = full_spec.layers[f"{FIRE}_expand1x1"].result
    h, w, _ = front.shapes()[-1][1]
    mult, shift = reciprocal(h * w)
    sum_w = act.width + int(h * w - 1).bit_length() + 1
    layers["pool10"] = PoolFormats(FixedFormat(sum_w, sum_w - act.frac, True, "AP_TRN", "AP_WRAP"), act, mult, shift)
    spec = QuantSpec(front.name, full_spec.input, layers, {"note": f"{full_spec.model} spec, conv1..{FIRE} only"})
    spec.validate(front)
    return spec


def fifo_list(layer) -> list[tuple[int, int]]:
    """(depth, width) of the estimate's FIFOs between layers (the hls4ml graph's streams)."""
    return sorted((m.depth, m.width) for m in layer.memories() if m.role.startswith("fifo"))


def row(cells, widths) -> str:
    return "".join(f"{c:>{w}}" if i else f"{c:<{w}}" for i, (c, w) in enumerate(zip(cells, widths)))


RESULTS = ROOT / "benchmarks" / "results" / "fire_vs_generic.json"

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10, help="images to simulate (from line 300 on)")
    ap.add_argument("--out", default=str(ROOT / "runs" / "fire_vs_generic"))
    ap.add_argument("--spec-dir", default=str(ROOT / "runs" / "csim_squeezenet"),
                    help="where benchmarks/csim_squeezenet.py keeps (or this run writes) spec_w8_a8.json")
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--workers", type=int, default=None)
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    Path(args.spec_dir).mkdir(parents=True, exist_ok=True)

    from hw.boards import get_board
    from hw.convert import plan_design, stream_fifos, to_hls4ml
    from hw.estimate import choose_reuse, estimate, hardware_layers
    from hw.project import build_project
    from model.architecture import get_architecture
    from model.deep_compression import decode, float_params
    from model.imagenet import ImageFolderDataset
    from model.squeezenet import build_keras, keras_weights
    from quant.emulator import FixedPointEmulator

    full = get_architecture("squeezenet1_0")
    decoded = decode(arch=full)
    params_full = float_params(decoded)
    full_spec, _ = calibrated_spec(full, params_full, Path(args.data), Path(args.spec_dir))
    front = front_of_squeezenet(full)
    spec = front_spec(front, full_spec)
    # the spec's own weight codes (e.g. GPTQ), as float values that round back to exactly those codes
    effective = full_spec.effective_params(params_full)
    params = {c.name: effective[c.name] for c in front.convs()}
    full_reuse = choose_reuse(full, BOARD, full_spec)
    reuse = {n: r for n, r in full_reuse.items() if n in params or n == "pool1"}
    reuse["pool10"] = 1
    keras_model = build_keras(front, softmax=False, weights=keras_weights(params))
    fire_convs = [c.name for c in next(l for l in front.layers if l.name == FIRE).convs]
    log(f"{front.name}: reuse (zcu104 folding of the whole network) "
        + ", ".join(f"{n} {reuse[n]}" for n in ("conv1", "pool1", *fire_convs)))

    variants = {"fused": dict(fuse_fire=True, trace=("pool1", FIRE), out_name=FIRE),
                "generic": dict(fuse_fire=False, trace=("pool1", f"{FIRE}_concat"), out_name=f"{FIRE}_concat")}
    projects, graphs_fifos = {}, {}
    for name, v in variants.items():
        design = plan_design(keras_model, spec, front, reuse=reuse, board=BOARD, fuse_fire=v["fuse_fire"],
                             trace=v["trace"], weights_note="trained (Deep Compression), conv1..fire2")
        t0 = time.perf_counter()
        project = build_project(design, out / f"project_{name}")
        build_s = time.perf_counter() - t0
        with tempfile.TemporaryDirectory() as tmp:
            model = to_hls4ml(design, Path(tmp) / "graph")
        graphs_fifos[name] = stream_fifos(model, lambda n: n == FIRE or n.startswith(FIRE + "_")
                                          or f"_{FIRE}_" in n)
        cpp = (project.path / "firmware" / "myproject.cpp").read_text()
        kernels = [k for k in ("sqz::fire", "nnet::clone_stream", "nnet::zeropad2d_cl", "nnet::pointwise_conv_2d_cl",
                               "nnet::conv_2d_cl", "nnet::relu", "nnet::concatenate3d") if k in cpp]
        projects[name] = {"project": project, "build_s": build_s, "times": dict(project.times),
                          "cache_hit": project.cache_hit, "kernels": kernels}
        log(f"{name}: {project.path} ({'cache hit' if project.cache_hit else 'built'} in {build_s:.1f} s); "
            f"kernels in myproject.cpp: {', '.join(kernels)}")

    # -- C simulation: whole fire2 maps, bit for bit ------------------------------------------------
    emulator = FixedPointEmulator(front, params, spec)
    dataset = ImageFolderDataset(args.data, start=CALIBRATION_LINES, limit=args.n)
    n = 0
    values = 0
    mismatches = {"fused_vs_generic": 0, "fused_vs_emulator": 0, "generic_vs_emulator": 0,
                  "pool1_fused_vs_generic": 0, "logits_fused_vs_generic": 0, "logits_fused_vs_emulator": 0}
    exact_images = 0
    seconds = {k: [] for k in variants}
    sims = {k: p["project"].simulator(workers=args.workers) for k, p in projects.items()}
    t_run = time.perf_counter()
    for x, _, _ in dataset.batches(max(s.workers for s in sims.values())):
        res = {}
        for k, v in variants.items():
            logits, maps = sims[k].trace(x)
            res[k] = (logits, maps[v["out_name"]], maps["pool1"])
            seconds[k] += sims[k].seconds_per_image.tolist()
        logits_em, seen = emulator.trace(x)
        ref = np.concatenate([seen[f"{FIRE}_expand1x1"], seen[f"{FIRE}_expand3x3"]], axis=-1).astype(np.int64)
        (lf, mf, pf), (lg, mg, pg) = res["fused"], res["generic"]
        assert mf.shape == ref.shape == mg.shape, (mf.shape, ref.shape, mg.shape)
        mismatches["fused_vs_generic"] += int(np.count_nonzero(mf != mg))
        mismatches["fused_vs_emulator"] += int(np.count_nonzero(mf != ref))
        mismatches["generic_vs_emulator"] += int(np.count_nonzero(mg != ref))
        mismatches["pool1_fused_vs_generic"] += int(np.count_nonzero(pf != pg))
        mismatches["logits_fused_vs_generic"] += int(np.count_nonzero(lf != lg))
        mismatches["logits_fused_vs_emulator"] += int(np.count_nonzero(lf != logits_em))
        exact_images += int(np.sum(np.all((mf == mg) & (mf == ref), axis=(1, 2, 3))))
        n += len(x)
        values += int(mf.size)
        nonzero = float(np.count_nonzero(ref)) / ref.size
        log(f"{n}/{len(dataset)} images: fire2 maps identical in {exact_images} "
            f"({nonzero:.0%} of this batch's values non-zero)")
    run_s = time.perf_counter() - t_run

    # -- estimates ----------------------------------------------------------------------------------
    est_layers = {}
    for name, fuse in (("fused", True), ("generic", False)):
        layer = next(l for l in hardware_layers(front, spec, reuse, fuse_fire=fuse) if l.name == FIRE)
        est_layers[name] = layer
    structure_ok = {k: fifo_list(est_layers[k]) == sorted((f["depth"], f["width"]) for f in graphs_fifos[k])
                    for k in variants}
    board_est = {k: estimate(front, BOARD, spec, reuse, fuse_fire=(k == "fused")) for k in variants}
    per = {k: next(l for l in board_est[k].layers if l.name == FIRE) for k in variants}
    full_est = {k: estimate(full, BOARD, full_spec, full_reuse, fuse_fire=(k == "fused")) for k in variants}

    print()
    print(f"fire2 of SqueezeNet v1.0 (55x55x96 -> 55x55x128), 8-bit spec, reuse squeeze/e1/e3 "
          f"{'/'.join(str(reuse[c]) for c in fire_convs)}, {BOARD} @ 300 MHz")
    print(f"C simulation on {n} images of {args.data} (lines {CALIBRATION_LINES + 1}+), {values:,} fire2 output "
          f"values compared:")
    print(f"  fused (sqz::fire) vs generic (hls4ml Clone/Conv/Concatenate): {mismatches['fused_vs_generic']} "
          f"differing values; vs the emulator: fused {mismatches['fused_vs_emulator']}, generic "
          f"{mismatches['generic_vs_emulator']}; maps identical in {exact_images} / {n} images")
    print(f"  pool1 maps fused vs generic: {mismatches['pool1_fused_vs_generic']} differing values; logits: "
          f"{mismatches['logits_fused_vs_generic']} (vs emulator {mismatches['logits_fused_vs_emulator']})")
    for k in variants:
        s = np.array(seconds[k])
        print(f"  {k:<8} build {projects[k]['build_s']:.1f} s "
              f"({'cache hit' if projects[k]['cache_hit'] else 'convert+write+g++'}), C simulation "
              f"{s.mean():.2f} s/image per process (conv1..fire2 + GAP, tracing on)")
    print()
    print("ESTIMATES (hw/estimate.py, before synthesis; nothing here is synthesised) for fire2:")
    widths = (26, 12, 14, 16)
    print(row(("", "fused", "generic", "generic/fused"), widths))

    def ratio(a, b):
        return f"{b / a:.1f}x" if a else "-"

    for label, key in (("DSP", "dsp"), ("BRAM18", "bram18"), ("LUT (incl. LUTRAM)", "lut"), ("LUTRAM", "lutram"),
                       ("FIFO bits", "fifo_bits"), ("FIFOs (streams)", "fifos"), ("II (cycles per frame)", "ii_cycles")):
        a, b = getattr(per["fused"], key), getattr(per["generic"], key)
        print(row((label, f"{a:,}", f"{b:,}", ratio(a, b)), widths))
    print(f"  generic FIFO list == streams of the generated hls4ml graph (depth, width): {structure_ok['generic']} "
          f"({len(graphs_fifos['generic'])} streams, depths {sorted({f['depth'] for f in graphs_fifos['generic']})})")
    print(f"  fused FIFO list == streams of the generated hls4ml graph: {structure_ok['fused']} "
          f"({len(graphs_fifos['fused'])} stream, depth {[f['depth'] for f in graphs_fifos['fused']]}; plus 5 "
          f"2-deep streams inside sqz::fire)")
    print()
    print(f"Every Fire module of SqueezeNet v1.0 at the same folding (ESTIMATES; the {BOARD} has "
          f"{get_board(BOARD).bram18} BRAM18, {get_board(BOARD).lut:,} LUT):")
    w2 = (8, 16, 9, 9, 10, 10, 12, 12, 11, 11)
    print(row(("module", "reuse sq/e1/e3", "DSP", "", "BRAM18", "", "LUT", "", "II", ""), w2))
    print(row(("", "", "fused", "generic", "fused", "generic", "fused", "generic", "fused", "generic"), w2))
    fires = {}
    for lf in full_est["fused"].layers:
        if lf.kind != "fire":
            continue
        lg = next(l for l in full_est["generic"].layers if l.name == lf.name)
        fires[lf.name] = {"fused": lf.to_json(), "generic": lg.to_json()}
        print(row((lf.name, "/".join(map(str, lf.reuse.values())), lf.dsp, lg.dsp, lf.bram18, lg.bram18,
                   f"{lf.lut:,}", f"{lg.lut:,}", f"{lf.ii_cycles:,}", f"{lg.ii_cycles:,}"), w2))
    for k in variants:
        e = full_est[k]
        print(f"  whole network, {k:<7}: DSP {e.dsp}, BRAM18 {e.bram18} ({e.utilisation['bram18']:.0f}%), "
              f"LUT {e.lut:,} ({e.utilisation['lut']:.0f}%), FIFO bits {e.fifo_bits:,}, {e.fps:.1f} fps, "
              f"fits {e.fits}" + (f" (over: {', '.join(e.over_budget)})" if e.over_budget else ""))

    summary = {
        "what": "fire2 of squeezenet1_0: sqz::fire vs hls4ml Clone/Conv/Concatenate",
        "network_simulated": [l.name for l in front.layers], "spec": str(Path(args.spec_dir) / "spec_w8_a8.json"),
        "board": BOARD, "reuse": reuse, "n_images": n, "values_compared": values, "mismatches": mismatches,
        "images_identical": exact_images,
        "csim_seconds_per_image": {k: float(np.mean(v)) if v else None for k, v in seconds.items()},
        "build": {k: {"seconds": p["build_s"], "cache_hit": p["cache_hit"], **p["times"], "kernels": p["kernels"]}
                  for k, p in projects.items()},
        "wall_s": run_s,
        "estimate_fire2": {k: per[k].to_json() for k in variants},
        "estimate_structure_matches_generated_graph": structure_ok,
        "generated_streams": graphs_fifos,
        "estimate_every_fire": fires,
        "estimate_network": {k: {**e.to_json()["estimate"], "fits": e.fits, "over_budget": list(e.over_budget),
                                 "fifo_bits": e.fifo_bits} for k, e in full_est.items()},
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=1, default=str) + "\n")   # committed: BENCHMARKS.md cites it
    ok = all(v == 0 for v in mismatches.values()) and n > 0 and all(structure_ok.values())
    print("\nOK: outputs identical, and the estimate's FIFOs are the generated streams" if ok
          else "\nFAILED: see the mismatches / structure checks above")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
