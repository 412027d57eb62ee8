"""The head/base protocol of ``--carbon-compare-ref``: JSON lines over a socket pair.

The head (the user's pytest) drives; the base (a second pytest in a git worktree of REF,
started with ``-p pytest_carbon.compare.serve``) answers. Messages, in order:

* base -> head ``{"op": "collected", "nodeids": [...], "errors": [...], "fingerprint":
  {...}}``: the fingerprint is the base's sensors, attribution, components' methods and
  idle setting; the head refuses to go on when it differs from its own.
* head -> base ``{"op": "plan", "nodeids": [...], "idle": {...}}``: the tests both sides
  have, in order, and the head's idle calibration, which the base charges from.
* the screen (before any test runs): head -> base ``{"op": "probe", "nodeids": [...]}``
  -> base runs each test whole once, ``{"op": "probed", "seconds": {nodeid: s or
  null}}`` (null: it failed or skipped); head -> base ``{"op": "group", "nodeids":
  [...], "repeats": k}`` -> base ``{"op": "measured", ...}`` (one
  :func:`~pytest_carbon.compare.serve.group_round`) or ``{"op": "error"}``.
* for each examined test, head -> base ``{"op": "run", "nodeid": X, "nextid": Y}`` (Y:
  the next examined test, whose shared fixtures stay set up; null at the end); the base runs X's
  setup and one call, then answers ``{"op": "ready", "call_s": s}`` (or, when X was
  skipped or failed, ``{"op": "done", "ran": false, "outcome": ...}``);
  head -> base ``{"op": "round", "iterations": k}`` -> base ``{"op": "measured", ...}``
  with :func:`~pytest_carbon.compare.serve.timed_round`'s per-call figures (energy,
  dynamic energy, duration, CPU time, window length, start and end) (or ``{"op":
  "error"}``),
  as often as the head asks; head -> base ``{"op": "end"}`` -> base runs the teardown,
  then ``{"op": "done", "ran": true, "outcome": ...}``.
* head -> base ``{"op": "quit"}``.

The socket's number travels in :data:`FD_ENV`; the base inherits it (``pass_fds``).
"""

from __future__ import annotations

import json
import socket
from typing import Any

#: Environment variable naming the base's end of the socket pair (a file descriptor).
FD_ENV = "PYTEST_CARBON_COMPARE_FD"


class ChannelClosed(ConnectionError):
    """The other side went away (it exited, crashed or was interrupted)."""


class Channel:
    """One end of the socket pair, one JSON object per line."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._reader = sock.makefile("rb")

    def send(self, op: str, **fields: Any) -> None:
        data = json.dumps({"op": op, **fields}, allow_nan=False, default=str) + "\n"
        try:
            self.sock.sendall(data.encode("utf-8"))
        except OSError as exc:
            raise ChannelClosed(f"cannot send {op!r}: {exc}") from None

    def recv(self) -> dict[str, Any]:
        try:
            line = self._reader.readline()
        except OSError as exc:
            raise ChannelClosed(str(exc)) from None
        if not line:
            raise ChannelClosed("the other side closed the connection")
        msg = json.loads(line)
        if not isinstance(msg, dict) or "op" not in msg:
            raise ChannelClosed(f"malformed message {line[:200]!r}")
        return msg

    def close(self) -> None:
        self._reader.close()
        self.sock.close()
