"""Atomic file writes: a reader sees the old file or the new one, never half of one.

Text is written as UTF-8 with ``backslashreplace``: a lone surrogate that reached a
writer (reports are scrubbed of them where they are built and read, see
:mod:`pytest_carbon.sandbox.safe_text`) is written as its escape, ``\\udc80``, and never
stops a report from being written.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to a temporary file beside ``path``, fsync it, then rename it over."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        # mkstemp creates 0600; a report is an artifact others read: honour the umask.
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target


def append_text(path: str | os.PathLike[str], text: str) -> Path:
    """Append ``text`` (for files others append to as well, e.g. ``$GITHUB_STEP_SUMMARY``)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "a", encoding="utf-8", errors="backslashreplace") as f:
        f.write(text)
    return target
