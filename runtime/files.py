"""Atomic file writes: a reader (a user, a resumed run) sees the old file or the new one, never half of one.

The text goes to a uniquely named temporary file in the same folder, is flushed to disk, and then replaces
the target with ``os.replace`` (atomic on POSIX). A process killed at any moment leaves at worst a stray
``.<name>.*.tmp`` file beside an intact target. Unique temporary names also keep two writers of the same
file from clobbering each other's half-written temporary file.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def _replace_with(path: str | os.PathLike[str], fill: Callable[[BinaryIO], None]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            fill(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; these are ordinary outputs
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (creating parent folders); returns the path."""
    return _replace_with(path, lambda f: f.write(data))


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (creating parent folders); returns the path."""
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_copy(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> Path:
    """Copy the file ``source`` to ``target`` atomically; returns the target path."""
    with open(source, "rb") as src:
        return _replace_with(target, lambda f: shutil.copyfileobj(src, f))
