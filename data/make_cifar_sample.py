"""Rebuild data/cifar10_sample/ from ../shared/data/cifar10 (the CIFAR-10 test archive).

The first PER_CLASS test images of each class (test/<class>/0000.jpg ...), copied byte for byte (32x32
JPEGs, no re-encoding) to images/<class>_NNNN.jpg; labels.txt (`images/NAME <class 0..9>`),
synset_words.txt (the 10 class names in CIFAR-10's order) and SHA256SUMS. README.md is kept.
Deterministic: the same archive gives the same files.

    python data/make_cifar_sample.py [--src DIR] [--per-class 20]
"""
import argparse
import hashlib
import sys
import tarfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from model.cifar10 import ARCHIVES, CLASSES  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", default=str(HERE.parent.parent / "shared" / "data" / "cifar10"))
    ap.add_argument("--dst", default=str(HERE / "cifar10_sample"))
    ap.add_argument("--per-class", type=int, default=20)
    args = ap.parse_args(argv)
    dst = Path(args.dst)
    (dst / "images").mkdir(parents=True, exist_ok=True)
    wanted = {f"test/{c}/{i:04d}.jpg": (c, i) for c in CLASSES for i in range(args.per_class)}
    lines, sums = [], []
    with tarfile.open(Path(args.src) / ARCHIVES["test"], "r:gz") as tar:
        for m in tar.getmembers():
            if m.name in wanted:
                c, i = wanted.pop(m.name)
                data = tar.extractfile(m).read()
                name = f"images/{c}_{i:04d}.jpg"
                (dst / name).write_bytes(data)
                lines.append((CLASSES.index(c), i, f"{name} {CLASSES.index(c)}"))
                sums.append(f"{hashlib.sha256(data).hexdigest()}  {name}")
    if wanted:
        raise SystemExit(f"missing in the archive: {sorted(wanted)[:3]}")
    (dst / "labels.txt").write_text("".join(l + "\n" for _, _, l in sorted(lines)))
    (dst / "synset_words.txt").write_text("".join(c + "\n" for c in CLASSES))
    (dst / "SHA256SUMS").write_text("".join(s + "\n" for s in sorted(sums, key=lambda s: s.split()[1])))
    print(f"{len(lines)} images -> {dst}")


if __name__ == "__main__":
    main()
