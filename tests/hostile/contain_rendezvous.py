"""Looks for the host beyond its own root: connects to host UNIX sockets and opens host
FIFOs given by path (as a client of a database or an agent under /var/tmp, /var/lib,
/home, /root would), reads files given by path, and lists the directories `places`.
Returns what happened to each path and what each directory shows."""

import os
import socket


def run(sockets, fifos, secrets, places):
    out = {"socket": {}, "fifo": {}, "secret": {}, "listing": {}}
    for path in sockets:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(2)
                s.connect(path)
                s.sendall(b"hello from the sandbox")
            out["socket"][path] = "sent"
        except OSError as exc:
            out["socket"][path] = type(exc).__name__
    for path in fifos:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            os.write(fd, b"hello from the sandbox")
            os.close(fd)
            out["fifo"][path] = "written"
        except OSError as exc:
            out["fifo"][path] = type(exc).__name__
    for path in secrets:
        try:
            with open(path) as f:
                out["secret"][path] = f.read()
        except OSError as exc:
            out["secret"][path] = type(exc).__name__
    for place in places:
        try:
            out["listing"][place] = sorted(os.listdir(place))
        except OSError as exc:
            out["listing"][place] = type(exc).__name__
    return out
