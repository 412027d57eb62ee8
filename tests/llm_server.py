"""A small scriptable OpenAI-compatible HTTP server on 127.0.0.1, for the prompt-suite tests.

Serves ``POST /v1/chat/completions`` (and ``GET /v1/models``). Each request is matched
against rules added with ``add()``, in order; a rule's replies are consumed one per request,
and its last reply repeats. Every request is recorded in ``requests``.

A reply's ``cpu_s`` makes the server burn that much CPU time (measured on the handling
thread) before answering, like a model computing tokens. ``python tests/llm_server.py
--cpu-s 0.3 --text "..."`` runs one in its own process and prints its URL, as a local
model server would be: another process, whose work pytest-carbon must find and count.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """One scripted answer. ``text``: the message content (None: null content).
    ``body``: raw response body, sent as-is (overrides everything else, e.g. bad JSON)."""

    text: str | None = "```python\ndef f(x):\n    return x\n```"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    body: str | None = None
    usage: tuple[int, int] | None = (12, 34)
    error: str | None = None  # message of an error body, for status >= 400
    finish_reason: str = "stop"
    cpu_s: float = 0.0  # CPU time burnt per request before answering


@dataclass
class _Rule:
    match: Callable[[dict[str, Any]], bool]
    replies: list[Reply]
    served: int = 0

    def next(self) -> Reply:
        reply = self.replies[min(self.served, len(self.replies) - 1)]
        self.served += 1
        return reply


class LLMServer:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self._rules: list[_Rule] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:  # noqa: N802
                self._send(200, json.dumps({"object": "list", "data": []}), {})

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                try:
                    payload = json.loads(raw)
                except ValueError:
                    payload = {}
                record = {
                    "path": self.path,
                    "json": payload,
                    "time": time.time(),
                    "auth": self.headers.get("authorization"),
                }
                with server._lock:
                    server.requests.append(record)
                    reply = server._reply_for(payload)
                if reply.cpu_s:
                    burn_thread_cpu(reply.cpu_s)
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                self._send(reply.status, server._body(reply, payload), reply.headers)

            def _send(self, status: int, body: str, headers: dict[str, str]) -> None:
                data = body.encode("utf-8")
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def add(
        self, *replies: Reply, model: str | None = None, prompt_contains: str | None = None
    ) -> None:
        """Serve ``replies`` (in order, the last repeating) to matching requests."""

        def match(payload: dict[str, Any]) -> bool:
            if model is not None and payload.get("model") != model:
                return False
            if prompt_contains is not None:
                users = [
                    m.get("content", "")
                    for m in payload.get("messages", [])
                    if m.get("role") == "user"
                ]
                return any(prompt_contains in u for u in users)
            return True

        self._rules.append(_Rule(match, list(replies)))

    def completions(self, prompt_contains: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            reqs = [r for r in self.requests if r["path"].endswith("/chat/completions")]
        if prompt_contains is None:
            return reqs
        return [
            r
            for r in reqs
            if any(prompt_contains in m.get("content", "") for m in r["json"].get("messages", []))
        ]

    def _reply_for(self, payload: dict[str, Any]) -> Reply:
        for rule in self._rules:
            if rule.match(payload):
                return rule.next()
        return Reply(status=404, error=f"no scripted reply for model {payload.get('model')!r}")

    @staticmethod
    def _body(reply: Reply, payload: dict[str, Any]) -> str:
        if reply.body is not None:
            return reply.body
        if reply.status >= 400:
            return json.dumps(
                {
                    "error": {
                        "message": reply.error or f"error {reply.status}",
                        "type": "test",
                        "code": reply.status,
                    }
                }
            )
        out: dict[str, Any] = {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": payload.get("model", "m"),
            "choices": [
                {
                    "index": 0,
                    "finish_reason": reply.finish_reason,
                    "message": {"role": "assistant", "content": reply.text},
                }
            ],
        }
        if reply.usage is not None:
            out["usage"] = {
                "prompt_tokens": reply.usage[0],
                "completion_tokens": reply.usage[1],
                "total_tokens": sum(reply.usage),
            }
        return json.dumps(out)

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def burn_thread_cpu(seconds: float) -> None:
    """Use ``seconds`` of this thread's CPU time (other threads and processes do not count,
    so concurrent requests each burn their own amount)."""
    end = time.thread_time() + seconds
    x = 0
    while time.thread_time() < end:
        x += 1


def serve_forever(argv: list[str] | None = None) -> None:
    """Serve one reply to every request, in this process, until killed."""
    import argparse

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--cpu-s", type=float, default=0.0, help="CPU seconds burnt per request")
    p.add_argument("--delay-s", type=float, default=0.0, help="sleep per request")
    p.add_argument("--text", default=Reply.text, help="the answer's content")
    p.add_argument("--usage", type=int, nargs=2, default=(12, 34), metavar=("IN", "OUT"))
    args = p.parse_args(argv)
    s = LLMServer()
    s.add(Reply(text=args.text, cpu_s=args.cpu_s, delay_s=args.delay_s, usage=tuple(args.usage)))
    print(s.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:  # pragma: no cover
        s.close()


if __name__ == "__main__":
    serve_forever()
