"""SysV shared memory: looks for a segment of pytest's by key, and leaves one of its own
(1 MiB, written) behind, as a cache for a later run or a hidden memory hog."""

import ctypes

IPC_CREAT, IPC_EXCL = 0o1000, 0o2000


def run(host_key, own_key):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.shmat.restype = ctypes.c_void_p
    found = libc.shmget(host_key, 0, 0o600)
    made = libc.shmget(own_key, 1 << 20, IPC_CREAT | IPC_EXCL | 0o600)
    if made >= 0:
        addr = libc.shmat(made, None, 0)
        if addr not in (None, ctypes.c_void_p(-1).value):
            ctypes.memset(addr, 0x41, 1 << 20)
    return {"host_visible": found >= 0, "left_one": made >= 0}
