"""Writing result files so that nothing half-written is ever left looking complete.

Every file is written under a temporary name in the same folder and renamed over the target when it is
complete (os.replace is atomic on one file system): an interrupted run or a full disk leaves the previous
file, or none, never a truncated one. A write that fails is a user error naming the file.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from sqz.errors import SqzError


class WriteError(SqzError, OSError):
    """A result file could not be written (disk full, no permission, ...)."""


def atomic_write(path: str | Path, data: bytes | str) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise WriteError(f"{path}: cannot write ({e.strerror or e}); nothing was written there -- free some "
                         f"space or choose another folder, then rerun (finished steps are kept)") from None
    except BaseException:
        tmp.unlink(missing_ok=True)      # interrupted (Ctrl-C) or a bug: no half-written file stays behind
        raise


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes, hex (read in 1 MiB blocks: images, archives and weight files alike)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
