"""Atomic file writes: a reader (a user, a resumed run) sees the old file or the new one, never half of one.

The text goes to a uniquely named temporary file in the same folder, is flushed to disk, and then replaces
the target with ``os.replace`` (atomic on POSIX). A process killed at any moment leaves at worst a stray
``.<name>.*.tmp`` file beside an intact target. Unique temporary names also keep two writers of the same
file from clobbering each other's half-written temporary file.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, Literal

#: A name that becomes one folder (run ids, task names): no separator, not starting with '.'.
SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")


def _replace_with(path: str | os.PathLike[str], fill: Callable[[BinaryIO], object]) -> Path:
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
    """Copy the regular file ``source`` (never through a symlink) to ``target`` atomically; returns the target."""
    with open_regular(source) as src:
        return _replace_with(target, lambda f: shutil.copyfileobj(src, f))


class NotRegularFile(OSError):
    """A file that generated code wrote is a symlink, a FIFO or another special file."""


def open_regular(path: str | os.PathLike[str], mode: Literal["rb", "ab"] = "rb") -> BinaryIO:
    """Open a file that generated code may have tampered with: refuse a symlink (O_NOFOLLOW), and refuse
    a FIFO, device or socket without blocking on it (O_NONBLOCK, then fstat). `mode` is "rb" or "ab"."""
    flags = {"rb": os.O_RDONLY, "ab": os.O_WRONLY | os.O_APPEND}[mode] | os.O_NOFOLLOW | os.O_NONBLOCK
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise NotRegularFile(errno.ELOOP, "is a symbolic link, not a regular file", str(path)) from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise NotRegularFile(errno.EINVAL, "is not a regular file", str(path))
    os.set_blocking(fd, True)
    return os.fdopen(fd, mode)
