"""The control channel with pytest's process: JSON lines on two fds, never stdout or stderr
(the code may print). :func:`connect` sets the fds once, before anything is sent."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from typing import Any

_out_fd = -1
_in_fd = -1
_in_buf = b""


def connect(out_fd: int, in_fd: int) -> None:
    """Use ``out_fd`` and ``in_fd`` (passed on the command line) as the channel; neither
    is inherited by a process we start."""
    global _out_fd, _in_fd
    _out_fd, _in_fd = out_fd, in_fd
    for fd in (out_fd, in_fd):
        os.set_inheritable(fd, False)


def send(msg: dict[str, Any]) -> None:
    data = (json.dumps(msg, default=repr) + "\n").encode()
    while data:
        n = os.write(_out_fd, data)
        data = data[n:]


def send_line(text: str) -> None:
    """``text``, already one JSON message, as a line."""
    data = (text + "\n").encode()
    while data:
        data = data[os.write(_out_fd, data) :]


def recv() -> dict[str, Any]:
    global _in_buf
    while b"\n" not in _in_buf:
        chunk = os.read(_in_fd, 65536)
        if not chunk:
            flush_and_exit(3)
        _in_buf += chunk
    line, _in_buf = _in_buf.split(b"\n", 1)
    msg: dict[str, Any] = json.loads(line)
    return msg


def flush_and_exit(status: int) -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(status)
