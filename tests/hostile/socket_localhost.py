"""Connects to 127.0.0.1:port and sends a message. Returns "sent" or the error's name."""

import socket


def run(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(b"hello from the sandbox")
        return "sent"
    except OSError as exc:
        return type(exc).__name__ + ": " + str(exc)
