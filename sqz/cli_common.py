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
CIFAR_SAMPLE_DIR = ROOT / "data" / "cifar10_sample"      # issue 13: 200 CIFAR-10 test images


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


def require_labels(folder: str, option: str = "--data") -> str:
    """A user-given dataset folder, checked before anything heavy starts; returns the folder to read.

    An ImageNet-style folder (labels.txt) is used as it is. The CIFAR-10 folder of ../shared/data
    (cifar10_*_jpg.tar.gz, no labels.txt) is unpacked once into the cache (model/cifar10.py): for --calib
    (and other --calib* options) its 50,000 training images, otherwise its 10,000 test images. Any other
    folder is an error."""
    if not Path(folder).is_dir():
        raise CliError(f"{option} {folder}: no such folder")
    labels = Path(folder, "labels.txt")
    if labels.exists():
        if not any(line.strip() for line in labels.read_text(errors="replace").splitlines()):
            raise CliError(f"{option} {folder}: {labels} lists no image (expected lines 'relative/path <class index>')")
        return str(folder)
    from model.cifar10 import ARCHIVES, is_cifar10_folder, unpack

    if is_cifar10_folder(folder):
        return str(unpack(folder, "train" if option.startswith("--calib") else "test"))
    raise CliError(f"{option} {folder}: no labels.txt there (expected lines 'relative/path <class index>'), "
                   f"and not a CIFAR-10 folder ({', '.join(ARCHIVES.values())})")


def default_data(model_name: str) -> str:
    """The shipped sample a model is evaluated on when no --data is given."""
    from model.architecture import get_architecture

    return str(CIFAR_SAMPLE_DIR if get_architecture(model_name).num_classes == 10 else SAMPLE_DIR)


def image_dataset(folder: str, arch, **options):
    """ImageFolderDataset of `folder` with the preprocessing `arch` was trained with (size, means)."""
    from model.imagenet import ImageFolderDataset

    return ImageFolderDataset(folder, size=arch.input_size, resize=arch.resize, mean_bgr=arch.mean_bgr, **options)


def trained_params(model_name: str):
    """Float weights of the real model: conv name -> (weight OIHW, bias) (model/trained.py)."""
    from model.trained import WeightsError, trained_params as load

    try:
        return load(model_name)
    except WeightsError as e:
        raise CliError(str(e)) from None


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
