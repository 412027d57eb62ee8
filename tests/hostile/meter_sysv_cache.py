"""Keeps answers in SysV shared memory, which outlives the process that made it: one
segment per input, keyed by the input, read back by any later process of the sandbox.

Its honest twin is this file with ``CHEAT = False``: the same work and the same lookups,
which never find anything."""

import ctypes

CHEAT = True
_libc = ctypes.CDLL(None, use_errno=True)
_libc.shmat.restype = ctypes.c_void_p


def _segment(key, create):
    flags = 0o1600 if create else 0o600  # IPC_CREAT | 0600
    shmid = _libc.shmget(key, 64, flags)
    if shmid < 0:
        return None
    addr = _libc.shmat(shmid, None, 0)
    return None if addr in (None, ctypes.c_void_p(-1).value) else addr


def f(n):
    addr = _segment(0x4D000000 + n if CHEAT else 0x5E000000 + n, False)
    if addr is not None:
        text = ctypes.string_at(addr, 64).split(b"\0")[0]
        if text:
            return int(text)
    total = 0
    for i in range(n):
        total += i * i
    addr = _segment(0x4D000000 + n, True)
    if addr is not None:
        ctypes.memmove(addr, str(total).encode() + b"\0", len(str(total)) + 1)
    return total
