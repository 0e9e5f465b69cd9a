"""`python -m sqz quantize`: calibrate, choose formats (uniform widths or a search within a margin),
measure float vs fixed point on held-out images, write the QuantSpec, a report and profile plots."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np


def add_image_args(p, what: str) -> None:
    """--calib* (the `what` images) and --data / --start / --stop / --limit (evaluation), as quantize and
    finetune (quant/finetune.py) share them."""
    p.add_argument("--calib", help=f"folder of {what} images (labels.txt), or the CIFAR-10 folder (its 50,000 "
                                   "training images); default: the model's shipped sample")
    p.add_argument("--calib-start", type=int, help="first labels.txt line of --calib to use (0-based)")
    p.add_argument("--calib-stop", type=int, help="labels.txt line of --calib to stop before")
    p.add_argument("--calib-limit", type=int, help=f"at most N {what} images")
    p.add_argument("--data", help="folder of evaluation images (labels.txt), or the CIFAR-10 folder (its 10,000 test "
                                  "images); default: the model's shipped sample")
    p.add_argument("--start", type=int, help="first labels.txt line of --data to evaluate (0-based)")
    p.add_argument("--stop", type=int)
    p.add_argument("--limit", type=int)
    p.add_argument("--skip-bad", action="store_true")


def image_sets(args, arch, what: str = "calibration"):
    """(the --calib images, the --data images) with the model's preprocessing; they must not overlap."""
    from sqz.cli_common import CliError, default_data, image_dataset, require_labels

    args.calib = require_labels(args.calib or default_data(args.model), "--calib")
    args.data = require_labels(args.data or default_data(args.model), "--data")
    calib = image_dataset(args.calib, arch, limit=args.calib_limit, start=args.calib_start, stop=args.calib_stop,
                          skip_bad=args.skip_bad)
    evalset = image_dataset(args.data, arch, limit=args.limit, start=args.start, stop=args.stop,
                            skip_bad=args.skip_bad)
    overlap = {str(Path(p).resolve()) for p in calib.paths} & {str(Path(p).resolve()) for p in evalset.paths}
    if overlap:
        raise CliError(f"{what} and evaluation images overlap ({len(overlap)} images, e.g. {sorted(overlap)[0]}): "
                       f"select disjoint lines with --calib-start/--calib-stop and --start/--stop")
    return calib, evalset


def add_commands(sub) -> None:
    from quant.calibrate import ACTIVATION_RULES, WEIGHT_RULES
    from quant.equalize import EQUALIZE_RULES
    from quant.rounding import WEIGHT_ROUNDINGS
    p = sub.add_parser("quantize", help="Ristretto-style dynamic fixed point: calibrate, search widths, write a QuantSpec")
    p.add_argument("--model", default="squeezenet1_0")
    add_image_args(p, "calibration")
    p.add_argument("--margin", type=float, help="search: allowed top-1 loss vs float, absolute (0.01 = 1 point); "
                   "the README's 0.895 MB at 0.01 needs --weight-rule output (with the default min-MSE rule: "
                   "1.005 MB)")
    p.add_argument("--weight-bits", type=int, help="no search: every layer's weights get this width")
    p.add_argument("--activation-bits", type=int, help="no search: every layer's activations get this width")
    p.add_argument("--weight-rule", default="minmse", choices=WEIGHT_RULES,
                   help="weight integer lengths: max-abs (Ristretto), min-MSE of the weights, or min error of the layer output")
    p.add_argument("--activation-rule", default="percentile", choices=ACTIVATION_RULES)
    p.add_argument("--percentile", type=float, default=99.999,
                   help="activation percentile kept unclipped (default: the winner of benchmarks/calibration_rules.py)")
    p.add_argument("--weight-rounding", default="gptq-dense", choices=WEIGHT_ROUNDINGS,
                   help="weights rounded one by one, or GPTQ: rounded to minimize each layer's output error, "
                        "largest inputs first (gptq-dense, default: pruned positions may take codes too, as dense "
                        "storage holds them anyway; gptq: pruned zeros kept; gptq-inorder: zeros kept, patch order)")
    p.add_argument("--equalize", choices=EQUALIZE_RULES,
                   help="cross-layer equalization before calibration (quant/equalize.py; the float network is "
                        "unchanged, its channels rescaled): 'weights' (Nagel et al.'s CLE), 'activations' or "
                        "'balanced'; the spec then carries every weight and bias code")
    p.add_argument("--rounding", default="AP_RND", help="rounding mode of weights and results (AP_RND, AP_RND_CONV, ...)")
    p.add_argument("--no-per-layer", action="store_true", help="search: Ristretto's sweeps only")
    p.add_argument("--out", required=True, help="QuantSpec JSON to write")
    p.add_argument("--json", help="report JSON to write")
    p.add_argument("--plots", help="folder for profile plots (default: next to --out)")
    p.add_argument("--work", help="folder for resumable logs (default: OUT.work/)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_quantize)

    q = sub.add_parser("sqnr", help="per-layer error of the fixed-point emulator against float (SQNR in dB)")
    q.add_argument("--model", default="squeezenet1_0")
    q.add_argument("--spec", required=True, help="QuantSpec JSON")
    q.add_argument("--data", help="images (labels.txt folder, or the CIFAR-10 folder); default: the model's sample")
    q.add_argument("--start", type=int)
    q.add_argument("--limit", type=int, default=16, help="images to compare (default 16)")
    q.add_argument("--json", help="write {\"model\", \"spec\", \"n\", \"layers\": [{\"layer\", \"sqnr_db\", ...}]} here")
    q.set_defaults(func=cmd_sqnr)


def cmd_quantize(args) -> int:
    from tqdm import tqdm

    from model.architecture import get_architecture
    from quant.calibrate import Calibration, make_spec
    from quant.emulator import FixedPointEmulator
    from quant import plots
    from quant.search import SearchSet, search, weight_bytes
    from sqz.cli_common import CliError, machine, print_table, selection_summary, trained_params, write_json
    from sqz.evaluate import evaluate

    uniform = args.weight_bits is not None or args.activation_bits is not None
    if uniform and (args.weight_bits is None or args.activation_bits is None):
        raise CliError("--weight-bits and --activation-bits go together")
    if uniform == (args.margin is not None):
        raise CliError("give either --margin (search) or --weight-bits/--activation-bits (no search)")
    if args.margin is not None and not args.margin >= 0:
        raise CliError(f"--margin must be >= 0 (an absolute top-1 loss, 0.01 = 1 point), got {args.margin}")
    if not 0 < args.percentile <= 100:
        raise CliError(f"--percentile must be in (0, 100], got {args.percentile}")
    arch = get_architecture(args.model)
    params = trained_params(args.model)
    calib, evalset = image_sets(args, arch)
    out = Path(args.out)
    work = Path(args.work) if args.work else out.with_suffix(".work")
    work.mkdir(parents=True, exist_ok=True)
    say = (lambda msg: None) if args.quiet else (lambda msg: print(msg, flush=True))

    # 0. optional cross-layer equalization: the same float network, channels rescaled (Keras keeps the
    #    shipped weights for the float figure; everything fixed-point reads the rescaled ones' codes)
    t0 = time.perf_counter()
    quant_params, scales = params, None
    if args.equalize:
        from quant.equalize import equalize
        quant_params, scales = equalize(arch, params, args.equalize,
                                        (x for x, _, _ in calib.batches(args.batch_size)))
        say(f"equalized ({args.equalize}): channel scales {min(s.min() for s in scales.values()):.3g} .. "
            f"{max(s.max() for s in scales.values()):.3g}")

    # 1. calibration: float pass over the calibration images, statistics per layer
    cal = Calibration(arch, quant_params)
    images, labels, float_logits = [], [], []
    bar = tqdm(total=len(calib), desc="calibrate", unit="img", disable=args.quiet, leave=False)
    for x, y, _ in calib.batches(args.batch_size):
        float_logits.append(cal.add_batch(x))
        images.append(x.astype(np.int16) if np.array_equal(x, np.round(x)) else x.copy())
        labels.append(y)
        bar.update(len(x))
    bar.close()
    if not images:
        raise CliError(f"{args.calib}: no calibration images")
    calib_s = time.perf_counter() - t0

    def make(w, a):
        return make_spec(cal, w, a, args.weight_rule, args.activation_rule, args.percentile, args.rounding,
                         weight_rounding=args.weight_rounding)

    # 2. formats: uniform widths, or the search on the calibration images
    result = None
    if uniform:
        spec = make(args.weight_bits, args.activation_bits)
    else:
        sset = SearchSet(np.concatenate(images).astype(np.float32), np.concatenate(labels),
                         np.concatenate(float_logits), work / "search_scores.jsonl")
        result = search(cal, sset, args.margin, make, per_layer=not args.no_per_layer, progress=say)
        spec = result.spec
    if args.equalize:
        from quant.equalize import carry_codes
        spec = carry_codes(spec, arch, quant_params, args.equalize, scales)
    spec.calibration.update({"data": str(Path(args.calib).resolve()), "selection": selection_summary(calib),
                             "skipped": len(calib.skipped)})
    spec.save(out)

    # 3. held-out evaluation: float (Keras) and fixed point (emulator), resumable
    from model.squeezenet import build_keras, keras_weights
    keras_model = build_keras(arch, weights=keras_weights(params))
    fl = evaluate(keras_model.predict_on_batch, evalset, args.batch_size, work / "eval_float.jsonl",
                  progress=not args.quiet)
    emulator = FixedPointEmulator(arch, quant_params, spec)
    (work / "eval_fixed.jsonl").unlink(missing_ok=True)   # the spec may have changed since a previous run
    fx = evaluate(emulator.logit_codes, evalset, args.batch_size, work / "eval_fixed.jsonl", progress=not args.quiet)

    wbits, abits = spec.weight_bits(), spec.activation_bits()
    report = {
        "model": args.model, "spec": str(out.resolve()),
        "float": {"top1": fl["top1"], "top5": fl["top5"]},
        "fixed": {"top1": fx["top1"], "top5": fx["top5"], "images_per_s": fx["images_per_s"]},
        "n": fx["n"], "weight_bits": wbits, "activation_bits": abits,
        "weight_bytes": weight_bytes(arch, wbits),
        "pareto": result.pareto if result else [],
        "saturations": emulator.saturation_report(),
        "weight_saturations": emulator.weight_saturations,   # weights beyond their format's range (clipped)
        "margin": args.margin,
        "rules": {"weights": args.weight_rule, "activations": args.activation_rule, "percentile": args.percentile,
                  "rounding": args.rounding, "weight_rounding": args.weight_rounding, "equalize": args.equalize},
        "calibration": {"data": str(Path(args.calib).resolve()), "selection": selection_summary(calib),
                        "images": cal.images, "seconds": calib_s, "layers": cal.summary()},
        "evaluation": {"data": str(Path(args.data).resolve()), "selection": selection_summary(evalset),
                       "skipped": [{"path": p, "reason": r} for p, r in evalset.skipped]},
        "machine": machine(),
    }
    if result:
        report["search"] = {"sweeps": result.sweeps, "search_top1": result.search_top1, "search_kl": result.search_kl,
                            "kl_slope": result.kl_slope, "kl_slope_probes": result.kl_slope_probes,
                            "predicted_loss": result.predicted_loss,
                            "float_search_top1": sset.float_top1, "points": result.points,
                            "path": [{"weight_bytes": weight_bytes(arch, w), "weight_bits": w} for w in result.path]}
    plot_dir = Path(args.plots) if args.plots else out.parent / (out.stem + "_plots")
    paths = plots.profile_plots(cal, spec, plot_dir)
    if result:
        paths.append(plots.pareto_plot(result.pareto, result.points, sset.float_top1, args.margin,
                                       plot_dir / "pareto.png"))
    report["plots"] = [str(p) for p in paths]
    write_json(args.json, report)
    print_table(f"{args.model}: float vs fixed point on {fx['n']} held-out images ({args.data})", [
        ("calibration", f"{cal.images} images of {args.calib}"),
        ("float  top-1 / top-5", f"{100 * fl['top1']:.2f} % / {100 * fl['top5']:.2f} %"),
        ("fixed  top-1 / top-5", f"{100 * fx['top1']:.2f} % / {100 * fx['top5']:.2f} %"),
        ("top-1 change", f"{100 * (fx['top1'] - fl['top1']):+.2f} points"),
        ("weight bits", _summary(wbits)), ("activation bits", _summary(abits)),
        ("weight storage (dense)", f"{weight_bytes(arch, wbits) / 1e6:.3f} MB"),
        ("saturated values", sum(emulator.saturations.values())),
        ("spec", str(out)), ("plots", str(plot_dir))])
    return 0


def _summary(bits: dict[str, int]) -> str:
    values = sorted(set(bits.values()))
    if len(values) == 1:
        return f"{values[0]} in every layer"
    return ", ".join(f"{b}: {sum(1 for v in bits.values() if v == b)} layers" for b in values)


def cmd_sqnr(args) -> int:
    from model.architecture import get_architecture
    from quant.compare import layer_sqnr
    from quant.spec import QuantSpec
    from sqz.cli_common import CliError, default_data, image_dataset, machine, require_labels, trained_params, write_json

    if args.limit is not None and args.limit < 1:
        raise CliError(f"--limit must be >= 1, got {args.limit}")
    arch = get_architecture(args.model)
    spec = QuantSpec.load(args.spec, arch)
    args.data = require_labels(args.data or default_data(args.model))
    dataset = image_dataset(args.data, arch, limit=args.limit, start=args.start)
    if not len(dataset):
        raise CliError(f"--data {args.data}: no images selected")
    images = np.concatenate([x for x, _, _ in dataset.batches(16)])
    t0 = time.perf_counter()
    rows = layer_sqnr(arch, trained_params(args.model), spec, images)
    print(f"{args.model}: fixed point ({args.spec}) vs float on {len(images)} images of {args.data}")
    print(f"  {'layer':<18}{'SQNR dB':>9}{'signal rms':>12}{'error rms':>11}")
    for r in rows:
        print(f"  {r['layer']:<18}{r['sqnr_db']:>9.1f}{r['signal_rms']:>12.4g}{r['error_rms']:>11.4g}")
    write_json(args.json, {"model": args.model, "spec": str(Path(args.spec).resolve()), "n": len(images),
                           "data": str(Path(args.data).resolve()), "layers": rows,
                           "seconds": time.perf_counter() - t0, "machine": machine()})
    return 0
