"""The C library through ctypes, and the mount table, for the other modules of the child."""

from __future__ import annotations

import ctypes
import os


def libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def check_rc(rc: int, what: str) -> None:
    """OSError with errno's text when a C call returned non-zero (``what`` names it)."""
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def unescape(path: str) -> str:
    # /proc/self/mountinfo escapes space, tab, newline and backslash as \ooo.
    out, i = [], 0
    while i < len(path):
        if path[i] == "\\" and path[i + 1 : i + 4].isdigit() and len(path[i + 1 : i + 4]) == 3:
            out.append(chr(int(path[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(path[i])
            i += 1
    return "".join(out)


def mounts() -> list[tuple[str, set[str]]]:
    result = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            result.append((unescape(fields[4]), set(fields[5].split(","))))
    return result
