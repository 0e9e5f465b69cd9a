"""CIFAR-10 as shipped in ../shared/data/cifar10: two archives of 32x32 JPEG files.

    cifar10_train_jpg.tar.gz   train/<class>/NNNN.jpg   50,000 images
    cifar10_test_jpg.tar.gz    test/<class>/NNNN.jpg    10,000 images

`unpack(folder, split)` extracts one archive once into a cache (``$SQZ_CACHE``, default
``~/.cache/sqz``; never the repository), keyed by the archive's sha256, and writes there the
ImageNet-style ``labels.txt`` (``<split>/<class>/NNNN.jpg <class index>``) and ``synset_words.txt`` (the
class names) that `model.imagenet.ImageFolderDataset` reads. So every image goes through the same
loader and the same bad-input behaviour as ImageNet: a file that is not a JPEG, truncated or missing
stops the run with its name (or is skipped and counted with ``--skip-bad``).

Class indices are CIFAR-10's own order (airplane 0 ... truck 9), which is also the alphabetical order
of the folders. labels.txt lists the images interleaved over the classes (0000 of every class, then
0001, ...), so that any prefix (``--limit``, ``--stop``) holds every class equally. An archive member outside ``<split>/<class>/`` (an unknown class, an absolute path, a
link, ``..``) is refused with the archive and the member named, before anything is written.
"""
from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from sqz.errors import SqzError
from sqz.files import file_sha256

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
ARCHIVES = {"train": "cifar10_train_jpg.tar.gz", "test": "cifar10_test_jpg.tar.gz"}
SPLIT_SIZES = {"train": 50_000, "test": 10_000}
CACHE_ENV = "SQZ_CACHE"
LAYOUT = "interleaved1"       # the cache folder's layout version (labels.txt order below)


class Cifar10Error(SqzError, ValueError):
    """A CIFAR-10 archive that is missing, unreadable or holds something other than split/class/image."""


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "sqz")


def is_cifar10_folder(folder) -> bool:
    """True for a folder holding at least one of the two CIFAR-10 archives (and no labels.txt)."""
    folder = Path(folder)
    return (folder.is_dir() and not (folder / "labels.txt").exists()
            and any((folder / name).is_file() for name in ARCHIVES.values()))


def _interleaved(name: str) -> tuple:
    """labels.txt order: the first image of every class, then the second of every class, ... so that any
    prefix (--limit, --stop) is balanced over the classes (the archives are sorted by class)."""
    _, cls, fname = name.split("/")
    return (Path(fname).stem, CLASSES.index(cls), fname)


def _members(archive: Path, split: str, tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
    """The image members, checked: every member is split/, split/<class>/ or split/<class>/<file>."""
    files = []
    for m in tar.getmembers():
        parts = m.name.rstrip("/").split("/")
        bad = (m.name.startswith("/") or ".." in parts or parts[0] != split or len(parts) > 3
               or (len(parts) >= 2 and parts[1] not in CLASSES))
        if bad or not (m.isdir() or m.isfile()) or (m.isfile() and len(parts) != 3) or (m.isdir() and len(parts) == 3):
            raise Cifar10Error(f"{archive}: member {m.name!r} is not {split}/<class>/<image> "
                               f"(classes: {', '.join(CLASSES)})")
        if m.isfile():
            files.append(m)
    if not files:
        raise Cifar10Error(f"{archive}: no images under {split}/")
    return files


def unpack(folder, split: str) -> Path:
    """Extract `split` ('train' or 'test') of the CIFAR-10 folder into the cache once; the folder of the
    extracted split, holding labels.txt and synset_words.txt. Safe to interrupt (extraction goes to a
    temporary folder renamed at the end) and to run from several processes."""
    if split not in ARCHIVES:
        raise Cifar10Error(f"unknown CIFAR-10 split {split!r}; known: {', '.join(ARCHIVES)}")
    archive = Path(folder) / ARCHIVES[split]
    if not archive.is_file():
        raise Cifar10Error(f"{archive}: CIFAR-10 archive not found")
    digest = file_sha256(archive)
    dest = cache_root() / "cifar10" / f"{split}-{digest[:16]}-{LAYOUT}"
    if (dest / "labels.txt").is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{split}-", dir=dest.parent))
    try:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                members = _members(archive, split, tar)
                for m in members:
                    out = tmp / m.name
                    out.parent.mkdir(parents=True, exist_ok=True)
                    src = tar.extractfile(m)
                    with open(out, "wb") as f:
                        shutil.copyfileobj(src, f)
        except (tarfile.TarError, EOFError, OSError) as e:
            if isinstance(e, Cifar10Error):
                raise
            raise Cifar10Error(f"{archive}: not a readable .tar.gz ({type(e).__name__}: {e})") from None
        names = sorted((m.name for m in members), key=_interleaved)
        (tmp / "labels.txt").write_text("".join(f"{n} {CLASSES.index(n.split('/')[1])}\n" for n in names))
        (tmp / "synset_words.txt").write_text("".join(f"{c}\n" for c in CLASSES))
        (tmp / "SOURCE").write_text(f"{archive.resolve()}\nsha256 {digest}\n")
        try:
            tmp.rename(dest)
        except OSError:       # another process got there first
            if not (dest / "labels.txt").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest
