"""Connects to a host UNIX socket by path and opens a host FIFO for writing (as a client
of docker, systemd or D-Bus would). Returns what happened to each."""

import os
import socket


def run(socket_path, fifo_path):
    out = {}
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            s.connect(socket_path)
            s.sendall(b"hello from the sandbox")
        out["socket"] = "sent"
    except OSError as exc:
        out["socket"] = type(exc).__name__
    try:
        fd = os.open(fifo_path, os.O_WRONLY | os.O_NONBLOCK)
        os.write(fd, b"hello from the sandbox")
        os.close(fd)
        out["fifo"] = "written"
    except OSError as exc:
        out["fifo"] = type(exc).__name__
    return out
