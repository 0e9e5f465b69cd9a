"""What the commands of `python -m sqz` share: the user-error class, JSON output, tables, the machine line.

sqz/cli.py (eval, the parser and main), quant/cli.py (quantize) and hw/cli.py (hls) import this module;
it imports none of them, so the imports run one way: sqz/cli.py -> quant.cli, hw.cli -> sqz.cli_common.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from sqz.errors import SqzError

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = ROOT / "data" / "imagenet_sample"


class CliError(SqzError):
    """A user error in the options: printed as one line, exit status 2."""


def write_json(path: str | None, payload: dict) -> None:
    """Write a result JSON atomically (sqz.files.atomic_write: never half-written)."""
    if path:
        from sqz.files import atomic_write

        atomic_write(path, json.dumps(payload, indent=1) + "\n")


def print_table(title: str, rows: list[tuple[str, object]]) -> None:
    width = max(len(k) for k, _ in rows)
    print(title)
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")


def require_labels(folder: str, option: str = "--data") -> None:
    """A user-given dataset folder must exist and hold a labels.txt listing at least one image (checked before
    anything heavy starts)."""
    if not Path(folder).is_dir():
        raise CliError(f"{option} {folder}: no such folder")
    labels = Path(folder, "labels.txt")
    if not labels.exists():
        raise CliError(f"{option} {folder}: no labels.txt there (expected lines 'relative/path <class index>')")
    if not any(line.strip() for line in labels.read_text(errors="replace").splitlines()):
        raise CliError(f"{option} {folder}: {labels} lists no image (expected lines 'relative/path <class index>')")


def trained_params(model_name: str):
    """Float weights of the real model: conv name -> (weight OIHW, bias)."""
    from model.architecture import get_architecture
    from model.deep_compression import decode, float_params

    if model_name != "squeezenet1_0":
        raise CliError(f"--model {model_name}: no trained weights ship for it (only squeezenet1_0)")
    return float_params(decode(arch=get_architecture(model_name)))


def selection_summary(dataset) -> dict:
    """Which labels.txt lines were used, compactly (the full index list is in the predictions file)."""
    sel = dataset.selection()
    lines = sel.pop("line_numbers")
    sel.pop("indices")
    sel["labels_file"] = str(sel["labels_file"])
    sel["first_line"], sel["last_line"] = (lines[0], lines[-1]) if lines else (None, None)
    return sel


def machine() -> str:
    import platform

    return f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}"
