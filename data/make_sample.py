"""Rebuild data/imagenet_sample/ from the shared 1,300-image ILSVRC2012 validation subset.

Takes every STEP-th entry of the source labels.txt (entries 0, 13, 26, ... -> 100
images), copies the image files byte for byte (227x227 JPEGs, no re-encoding),
writes labels.txt in the same Caffe format (paths relative to the sample folder),
copies synset_words.txt, and writes SHA256SUMS.  README.md is kept as it is.

    python data/make_sample.py [--src DIR] [--dst DIR] [--step 13] [--count 100]

The default source is ../shared/data/imagenet_val1300 next to the project root.
Deterministic: the same source gives the same files.
"""

import argparse
import hashlib
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_SRC = os.path.normpath(os.path.join(ROOT, "..", "shared", "data", "imagenet_val1300"))
DEFAULT_DST = os.path.join(HERE, "imagenet_sample")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", default=DEFAULT_SRC)
    ap.add_argument("--dst", default=DEFAULT_DST)
    ap.add_argument("--step", type=int, default=13)
    ap.add_argument("--count", type=int, default=100)
    args = ap.parse_args(argv)

    sys.path.insert(0, ROOT)
    from model.imagenet import read_labels  # validates the source list

    entries = read_labels(os.path.join(args.src, "labels.txt"))
    chosen = entries[::args.step][:args.count]
    if len(chosen) != args.count:
        raise SystemExit(f"only {len(chosen)} entries with step {args.step}, wanted {args.count}")

    img_dir = os.path.join(args.dst, "images")
    os.makedirs(img_dir, exist_ok=True)
    wanted = set()
    lines, sums = [], []
    for e in chosen:
        name = os.path.basename(e.relpath)
        wanted.add(name)
        dst = os.path.join(img_dir, name)
        shutil.copyfile(os.path.join(args.src, e.relpath), dst)  # bytes only, not the r-x mode
        os.chmod(dst, 0o644)
        with open(dst, "rb") as f:
            sums.append(f"{hashlib.sha256(f.read()).hexdigest()}  images/{name}\n")
        lines.append(f"images/{name} {e.label}\n")
    for name in os.listdir(img_dir):  # remove images left over from another selection
        if name not in wanted:
            os.remove(os.path.join(img_dir, name))

    with open(os.path.join(args.dst, "labels.txt"), "w", newline="\n") as f:
        f.writelines(lines)
    with open(os.path.join(args.dst, "SHA256SUMS"), "w", newline="\n") as f:
        f.writelines(sums)
    syn = os.path.join(args.dst, "synset_words.txt")
    shutil.copyfile(os.path.join(args.src, "synset_words.txt"), syn)
    os.chmod(syn, 0o644)

    total = sum(os.path.getsize(os.path.join(dp, fn))
                for dp, _, fns in os.walk(args.dst) for fn in fns)
    print(f"{len(chosen)} images (source lines {chosen[0].lineno}, {chosen[1].lineno}, ..., "
          f"{chosen[-1].lineno}), {len({e.label for e in chosen})} classes, "
          f"{total / 1e6:.2f} MB in {args.dst}")


if __name__ == "__main__":
    main()
