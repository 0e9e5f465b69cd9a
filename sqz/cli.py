"""Command line: python -m sqz <command>. Each command prints a readable table and can write JSON."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")   # keep TensorFlow's start-up chatter off the table

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = ROOT / "data" / "imagenet_sample"


class CliError(Exception):
    """A user error: printed as one line, exit status 2."""


def _write_json(path: str | None, payload: dict) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(payload, indent=1) + "\n")


def _print_table(title: str, rows: list[tuple[str, object]]) -> None:
    width = max(len(k) for k, _ in rows)
    print(title)
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")


def _dataset(args, **selection):
    from model.imagenet import ImageFolderDataset

    if not Path(args.data, "labels.txt").exists():
        raise CliError(f"--data {args.data}: no labels.txt there (expected lines 'relative/path <class index>')")
    return ImageFolderDataset(args.data, limit=args.limit, skip_bad=args.skip_bad, **selection)


def _params(model_name: str):
    """Float weights of the real model: conv name -> (weight OIHW, bias)."""
    from model.deep_compression import decode, float_params
    from model.architecture import get_architecture

    if model_name != "squeezenet1_0":
        raise CliError(f"--model {model_name}: no trained weights ship for it (only squeezenet1_0)")
    return float_params(decode(arch=get_architecture(model_name)))


# -- eval ------------------------------------------------------------------------------------

def cmd_eval(args) -> int:
    from model.architecture import get_architecture
    from sqz.evaluate import evaluate

    arch = get_architecture(args.model)
    selection = {"start": args.start, "stop": args.stop}
    dataset = _dataset(args, **selection)
    if args.spec:
        from quant.emulator import FixedPointEmulator
        from quant.spec import QuantSpec

        spec = QuantSpec.load(args.spec, arch)
        emulator = FixedPointEmulator(arch, _params(args.model), spec)
        predict, precision = emulator.logit_codes, "fixed"
    else:
        from model.squeezenet import load_pretrained

        if args.model != "squeezenet1_0":
            raise CliError(f"--model {args.model}: no trained weights ship for it (only squeezenet1_0)")
        keras_model = load_pretrained(args.model)
        predict = lambda x: keras_model.predict_on_batch(x)
        precision = "float"
    preds = Path(args.predictions) if args.predictions else None
    t0 = time.perf_counter()
    result = evaluate(predict, dataset, args.batch_size, preds, progress=not args.quiet)
    payload = {"model": args.model, "precision": precision, "n": result["n"], "top1": result["top1"],
               "top5": result["top5"], "images_per_s": result["images_per_s"],
               "data": str(Path(args.data).resolve()), "selection": _selection_summary(dataset),
               "skipped": [{"path": p, "reason": r} for p, r in dataset.skipped],
               "batch_size": args.batch_size, "wall_s": time.perf_counter() - t0,
               "resumed": result["resumed"], "machine": _machine()}
    if args.spec:
        payload["spec"] = str(Path(args.spec).resolve())
        payload["saturations"] = emulator.saturation_report()
    _print_table(f"{args.model} {precision} on {args.data}", [
        ("images", result["n"]), ("top-1", f"{100 * result['top1']:.2f} %"),
        ("top-5", f"{100 * result['top5']:.2f} %"),
        ("images/s", f"{result['images_per_s']:.1f} (batch {args.batch_size}, decoding excluded)"
         if result["images_per_s"] else "n/a (all resumed)"),
        ("skipped", len(dataset.skipped))])
    _write_json(args.json, payload)
    return 0


def _selection_summary(dataset) -> dict:
    """Which labels.txt lines were used, compactly (the full index list is in the predictions file)."""
    sel = dataset.selection()
    lines = sel.pop("line_numbers")
    sel.pop("indices")
    sel["labels_file"] = str(sel["labels_file"])
    sel["first_line"], sel["last_line"] = (lines[0], lines[-1]) if lines else (None, None)
    return sel


def _machine() -> str:
    import platform

    return f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}"


# -- parser ------------------------------------------------------------------------------------

def _add_data_args(p: argparse.ArgumentParser, default_data: bool = True) -> None:
    p.add_argument("--data", default=str(SAMPLE_DIR) if default_data else None, required=not default_data,
                   help="ImageNet-style folder with labels.txt (default: the shipped 100-image sample)")
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
    p.add_argument("--json", help="write the result here")
    p.add_argument("--predictions", help="JSON-lines file of per-image top-5, appended as batches finish; "
                                         "a rerun resumes from it")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_eval)

    # Later stages register their own commands (each module owns its options and JSON contract).
    for module in ("quant.cli", "hw.cli"):
        try:
            __import__(module, fromlist=["add_commands"]).add_commands(sub)
        except ModuleNotFoundError as e:
            if e.name != module:
                raise
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from model.deep_compression import WeightFileError
    from model.imagenet import BadImageError, LabelsFormatError

    try:
        return args.func(args)
    except (CliError, WeightFileError, BadImageError, LabelsFormatError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
