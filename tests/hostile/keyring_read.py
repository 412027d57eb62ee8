"""Tries to read a key of pytest's keyrings: by its serial, and by searching the session,
user and user-session keyrings for its description. Returns what it could read."""

import ctypes
import os

KEYCTL = {"x86_64": 250, "aarch64": 219}[os.uname().machine]
KEYCTL_SEARCH, KEYCTL_READ = 10, 11
RINGS = {"session": -3, "user": -4, "user-session": -5}


def _keyctl(*args):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    r = libc.syscall(ctypes.c_long(KEYCTL), *args)
    return r, ctypes.get_errno()


def _read(serial):
    buf = ctypes.create_string_buffer(4096)
    n, err = _keyctl(KEYCTL_READ, ctypes.c_long(serial), buf, ctypes.c_long(4096))
    return buf.raw[: max(n, 0)].decode(errors="replace") if n >= 0 else os.strerror(err)


def run(serial, description):
    out = {"by-serial": _read(serial)}
    for name, ring in RINGS.items():
        found, err = _keyctl(KEYCTL_SEARCH, ring, b"user", description.encode(), 0)
        out[name] = _read(found) if found > 0 else os.strerror(err)
    return out
