"""A listening socket served in a thread, for tests that check what sandboxed code can
reach: every connection's first bytes are recorded."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def accepting(server: socket.socket) -> Iterator[list[bytes]]:
    """Accept connections on ``server`` (listening, with a timeout) until the block ends;
    yields the list of what each connection sent first (at most 100 bytes)."""
    received: list[bytes] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                received.append(conn.recv(100))

    t = threading.Thread(target=accept)
    t.start()
    try:
        yield received
    finally:
        stop.set()
        t.join()
