"""Trained float weights of the models, by name: one place every command asks.

- squeezenet1_0: the Deep Compression ImageNet weights (model/deep_compression.py);
- any other model: model/weights/<name>.npz, written by `python -m sqz train` (model/cifar_train.py):
  per conv `<name>/weight` (OIHW, batch norm folded in) and `<name>/bias`, and `meta` (JSON: the
  command, the recipe, the measured accuracy).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sqz.errors import SqzError

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


class WeightsError(SqzError, ValueError):
    """No trained weights for a model, or a weights file that does not match its architecture."""


def weights_path(name: str) -> Path:
    return WEIGHTS_DIR / f"{name}.npz"


def has_trained_weights(name: str) -> bool:
    return name == "squeezenet1_0" or weights_path(name).is_file()


def trained_params(name: str, path=None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """conv name -> (weight OIHW float, bias float) of the model's trained weights."""
    from model.architecture import get_architecture

    arch = get_architecture(name)
    if name == "squeezenet1_0" and path is None:
        from model.deep_compression import decode, float_params

        return float_params(decode(arch=arch))
    path = Path(path) if path else weights_path(name)
    if not path.is_file():
        raise WeightsError(f"--model {name}: no trained weights ship for it ({path} not found; squeezenet1_0 "
                           f"ships Deep Compression's, the CIFAR-10 networks model/weights/<name>.npz)")
    return load_params(path, arch)[0]


def save_params(path, params: dict, meta: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for name, (w, b) in params.items():
        arrays[f"{name}/weight"], arrays[f"{name}/bias"] = w, b
    arrays["meta"] = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), np.uint8)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)


def load_params(path, arch=None) -> tuple[dict, dict]:
    """(conv name -> (weight OIHW, bias), meta) from a weights file written by save_params; with `arch`,
    every conv must be there with its architecture's shape."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found")
    with np.load(path) as z:
        meta = json.loads(bytes(z["meta"]).decode()) if "meta" in z else {}
        names = sorted({k.rsplit("/", 1)[0] for k in z.files if "/" in k})
        params = {n: (z[f"{n}/weight"], z[f"{n}/bias"]) for n in names}
    if arch is not None:
        shapes = arch.conv_shapes()
        missing, extra = set(shapes) - set(params), set(params) - set(shapes)
        if missing or extra:
            raise WeightsError(f"{path}: weights do not match {arch.name}: missing {sorted(missing)}, "
                           f"unknown {sorted(extra)}")
        for n, t in shapes.items():
            if tuple(params[n][0].shape) != tuple(t["weight"]):
                raise WeightsError(f"{path}: layer {n}: weight shape {params[n][0].shape}, {arch.name} has {t['weight']}")
    return params, meta
