"""Opens a vsock socket (to the hypervisor, CID 2): no network namespace stops it."""

import socket


def run():
    try:
        with socket.socket(40, socket.SOCK_STREAM) as s:  # AF_VSOCK
            s.settimeout(1)
            try:
                s.connect((2, 1024))
                return "connected"
            except OSError as exc:
                return "socket opened, connect: " + type(exc).__name__
    except OSError as exc:
        return type(exc).__name__ + ": " + str(exc)
