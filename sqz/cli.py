"""Command line: python -m sqz <command>. Each command prints a readable table and can write JSON."""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")   # keep TensorFlow's start-up chatter off the table

from sqz.cli_common import (default_data, image_dataset, machine, print_table, require_labels,
                            selection_summary, trained_params, write_json)
from sqz.errors import SqzError
from sqz.passes import mirror_sum, passes_per_image


def _dataset(args, arch, **selection):
    args.data = require_labels(args.data or default_data(arch.name))
    return image_dataset(args.data, arch, limit=args.limit, skip_bad=args.skip_bad, **selection)


# -- eval ------------------------------------------------------------------------------------

def cmd_eval(args) -> int:
    from model.architecture import get_architecture
    from sqz.evaluate import evaluate

    arch = get_architecture(args.model)
    selection = {"start": args.start, "stop": args.stop}
    dataset = _dataset(args, arch, **selection)
    if args.spec:
        from quant.emulator import FixedPointEmulator
        from quant.spec import QuantSpec

        spec = QuantSpec.load(args.spec, arch)
        emulator = FixedPointEmulator(arch, trained_params(args.model), spec)
        predict, precision = emulator.logit_codes, "fixed"
    else:
        from model.squeezenet import build_keras, keras_weights

        keras_model = build_keras(arch, weights=keras_weights(trained_params(args.model)))
        predict = lambda x: keras_model.predict_on_batch(x)
        precision = "float"
    if args.mirror:     # two passes per image, summed (sqz/passes.py: the one definition, `sqz infer --mirror` too)
        one_pass = predict
        predict = lambda x: mirror_sum(one_pass, x)
    preds = Path(args.predictions) if args.predictions else None
    t0 = time.perf_counter()
    result = evaluate(predict, dataset, args.batch_size, preds, progress=not args.quiet,
                      passes=passes_per_image(args.mirror))
    payload = {"model": args.model, "precision": precision, "n": result["n"], "top1": result["top1"],
               "top5": result["top5"], "images_per_s": result["images_per_s"],
               "data": str(Path(args.data).resolve()), "selection": selection_summary(dataset),
               "skipped": [{"path": p, "reason": r} for p, r in dataset.skipped],
               "batch_size": args.batch_size, "wall_s": time.perf_counter() - t0,
               "resumed": result["resumed"], "mirror": args.mirror, "machine": machine()}
    if args.spec:
        payload["spec"] = str(Path(args.spec).resolve())
        payload["saturations"] = emulator.saturation_report()
    print_table(f"{args.model} {precision}{' + mirror' if args.mirror else ''} on {args.data}", [
        ("images", result["n"]), ("top-1", f"{100 * result['top1']:.2f} %"),
        ("top-5", f"{100 * result['top5']:.2f} %"),
        ("images/s", f"{result['images_per_s']:.1f} (batch {args.batch_size}, decoding excluded)"
         if result["images_per_s"] else "n/a (all resumed)"),
        ("skipped", len(dataset.skipped))])
    write_json(args.json, payload)
    return 0


# -- parser ------------------------------------------------------------------------------------

def _add_data_args(p: argparse.ArgumentParser, has_default: bool = True) -> None:
    p.add_argument("--data", default=None, required=not has_default,
                   help="ImageNet-style folder with labels.txt, or the CIFAR-10 folder (its 10,000 test images) "
                        "(default: the model's shipped sample, data/imagenet_sample or data/cifar10_sample)")
    p.add_argument("--limit", type=int, help="use at most N images")
    p.add_argument("--start", type=int, help="first line of labels.txt to use (0-based)")
    p.add_argument("--stop", type=int, help="line of labels.txt to stop before")
    p.add_argument("--skip-bad", action="store_true", help="skip and count unreadable images instead of failing")
    p.add_argument("--batch-size", type=int, default=32)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sqz", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("eval", help="top-1/top-5 of the float model, or of the fixed-point emulator with --spec")
    p.add_argument("--model", default="squeezenet1_0")
    _add_data_args(p)
    p.add_argument("--spec", help="QuantSpec JSON: evaluate the bit-exact fixed-point emulator instead of float")
    p.add_argument("--mirror", action="store_true",
                   help="two passes per image, as is and mirrored left-right, their outputs summed (test-time "
                        "augmentation: half the frame rate on the hardware; the host would add the two results)")
    p.add_argument("--json", help="write the result here")
    p.add_argument("--predictions", help="JSON-lines file of per-image top-5, appended as batches finish; "
                                         "a rerun resumes from it (not across --mirror and one pass)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_eval)

    # Later stages register their own commands (each module owns its options and JSON contract).
    for module in ("sqz.split", "quant.cli", "hw.cli", "hw.reports_cli", "host.infer", "sqz.demo", "sqz.report",
                   "model.cli", "quant.finetune"):   # model.cli, quant.finetune: train, finetune (issue 13)
        try:
            __import__(module, fromlist=["add_commands"]).add_commands(sub)
        except ModuleNotFoundError as e:
            if e.name != module:
                raise
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a command. A user error (sqz.errors.SqzError) is one line on stderr and exit status 2; anything
    else is a bug and propagates (traceback, exit status 1 under `python -m sqz`)."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SqzError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
