"""`python -m sqz split`: a calibration and an evaluation folder that share no image, by content.

Two labels.txt lines can name the same picture under different paths (the shipped sample is a subset of
../shared/data/imagenet_val1300, and a set can hold a file twice), so disjointness by path proves nothing.
Every image file is hashed (sha256 of its bytes); an evaluation image whose content is also in the
calibration part is dropped from the evaluation and listed in split.json.

    python -m sqz split --data DIR [--calib-lines N] --out OUT

writes OUT/calib/ and OUT/eval/ as ImageNet-style folders (labels.txt, synset_words.txt, and the
images as symbolic links to the originals, so nothing is copied) and OUT/split.json
{"source", "calib": {"n", "lines"}, "eval": {"n", "lines"}, "dropped": [{"path", "same_as"}], "sha256"}.
Default N: the first half of a shipped sample (data/imagenet_sample, data/cifar10_sample), else the first
300 lines. The CIFAR-10 folder of ../shared/data stands for its 10,000 test images (sqz.cli_common.require_labels).
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from sqz.cli_common import SAMPLE_DIR, CliError, print_table, require_labels
from sqz.files import file_sha256

DATA_CALIB_LINES = 300       # a --data folder other than a shipped sample: its first 300 lines calibrate


def default_calib_lines(data: str | Path, n_lines: int) -> int:
    """Half of a shipped sample (first half calibrates), else the first 300 lines."""
    from sqz.cli_common import CIFAR_SAMPLE_DIR

    shipped = Path(data).resolve() in (SAMPLE_DIR.resolve(), CIFAR_SAMPLE_DIR.resolve())
    return n_lines // 2 if shipped else DATA_CALIB_LINES


def split_dataset(data: str | Path, out: str | Path, calib_lines: int | None = None) -> dict:
    """Write out/calib, out/eval and out/split.json (see the module docstring); returns split.json's content."""
    from model.imagenet import LABELS_FILE, SYNSET_FILE, read_labels

    out = Path(out)
    data = Path(require_labels(str(data)))      # a CIFAR-10 archive folder resolves to its unpacked test images
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "split.json").exists())):
        raise CliError(f"--out {out}: exists and is not a split folder (no split.json); give a new or empty folder")
    entries = read_labels(data / LABELS_FILE)
    if not entries:
        raise CliError(f"--data {data}: {LABELS_FILE} lists no image")
    n_calib = default_calib_lines(data, len(entries)) if calib_lines is None else int(calib_lines)
    if not 0 < n_calib < len(entries):
        raise CliError(f"--calib-lines {n_calib}: {data / LABELS_FILE} has {len(entries)} images; the calibration "
                       f"part needs at least one and the evaluation part too")
    hashes = {}
    for e in entries:
        path = data / e.relpath
        try:
            hashes[e.relpath] = file_sha256(path)
        except OSError as err:
            raise CliError(f"{path} (line {e.lineno} of {data / LABELS_FILE}): cannot read ({err.strerror})") from None
    calib, rest = entries[:n_calib], entries[n_calib:]
    seen = {}
    for e in calib:
        seen.setdefault(hashes[e.relpath], e.relpath)
    evaluation, dropped = [], []
    for e in rest:
        h = hashes[e.relpath]
        if h in seen:
            dropped.append({"path": e.relpath, "same_as": seen[h]})
        else:
            evaluation.append(e)
    if not evaluation:
        raise CliError(f"--data {data}: every evaluation image is also a calibration image (by content)")
    # Written under a temporary name and renamed: a half-written split never looks complete.
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for part, chosen in (("calib", calib), ("eval", evaluation)):
        folder = tmp / part
        folder.mkdir(parents=True)
        for e in chosen:
            link = folder / e.relpath
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink((data / e.relpath).resolve(), link)
        (folder / LABELS_FILE).write_text("".join(f"{e.relpath} {e.label}\n" for e in chosen))
        if (data / SYNSET_FILE).exists():
            shutil.copyfile(data / SYNSET_FILE, folder / SYNSET_FILE)
    summary = {"source": str(data.resolve()),
               "calib": {"n": len(calib), "lines": [calib[0].lineno, calib[-1].lineno]},
               "eval": {"n": len(evaluation), "lines": [rest[0].lineno, rest[-1].lineno]},
               "rule": f"calibration: the first {n_calib} lines of labels.txt; evaluation: the rest, less any image "
                       f"whose content (sha256) is also in the calibration part",
               "dropped": dropped,
               "sha256": {e.relpath: hashes[e.relpath] for e in calib + evaluation}}
    (tmp / "split.json").write_text(json.dumps(summary, indent=1) + "\n")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return summary


def add_commands(sub) -> None:
    p = sub.add_parser("split", help="calibration / evaluation folders disjoint by image content (sha256)")
    p.add_argument("--data", default=str(SAMPLE_DIR), help="ImageNet-style folder (default: the shipped sample)")
    p.add_argument("--calib-lines", type=int, help="first N lines calibrate (default: half of a shipped sample, "
                                                    "else 300)")
    p.add_argument("--out", required=True, help="folder to write calib/, eval/ and split.json into")
    p.set_defaults(func=cmd_split)


def cmd_split(args) -> int:
    s = split_dataset(args.data, args.out, args.calib_lines)
    print_table(f"split of {args.data}", [
        ("calibration", f"{s['calib']['n']} images (lines {s['calib']['lines'][0]}-{s['calib']['lines'][1]}) "
                        f"-> {Path(args.out) / 'calib'}"),
        ("evaluation", f"{s['eval']['n']} images (lines {s['eval']['lines'][0]}-{s['eval']['lines'][1]}) "
                       f"-> {Path(args.out) / 'eval'}"),
        ("dropped", f"{len(s['dropped'])} evaluation images with the content of a calibration image")])
    return 0
