"""Drive a real headless Chromium for tests, with no extra Python dependency.

How, and why this way:

- Chromium speaks the Chrome DevTools Protocol (CDP) over ``--remote-debugging-pipe``:
  JSON messages separated by NUL bytes on file descriptors 3 (commands in) and 4
  (replies and events out). Pipes need no websocket library and no free TCP port.
- Console errors come as protocol events (``Runtime.consoleAPICalled``,
  ``Runtime.exceptionThrown``, ``Log.entryAdded``), not by scraping a log file.
- Every request a page makes, whatever its host or scheme, is a ``Network.requestWillBeSent``
  event. ``--host-resolver-rules="MAP * ~NOTFOUND"`` also makes sure that no host name
  resolves, so a page that tries to reach the internet fails fast and offline.
- :class:`PageServer` serves pages on 127.0.0.1 (a real HTTP server) and records every
  request that reaches it, so a test can also check from the server's side what the page
  asked for.

Use::

    with PageServer({"/page.html": html_bytes}) as server, Browser(tmp_path) as browser:
        page = browser.open(server.url("/page.html"))
        page.evaluate("document.title")
        page.screenshot(tmp_path / "page.png")
        assert not page.console_errors()
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import http.server
import json
import os
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SKIP_REASON = "chromium not installed (apt-get install chromium)"


def chromium_path() -> str | None:
    """Debian's ``chromium`` (or ``CHROMIUM`` from the environment), if installed."""
    candidate = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if candidate and os.access(candidate, os.X_OK):
        return candidate
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


class BrowserError(RuntimeError):
    """Chromium failed to start, answered with an error, or did not answer in time."""


class Browser:
    """One headless Chromium process, driven over the DevTools pipe."""

    def __init__(
        self, workdir: Path, *, width: int = 1280, height: int = 800, timeout_s: float = 30.0
    ) -> None:
        self.workdir = Path(workdir)
        self.width = width
        self.height = height
        self.timeout_s = timeout_s
        self.events: list[dict[str, Any]] = []
        self._next_id = 0
        self._inbox: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr_path = self.workdir / "chromium-stderr.log"

    # -- process -------------------------------------------------------------------------
    def __enter__(self) -> Browser:
        exe = chromium_path()
        if exe is None:
            raise BrowserError(SKIP_REASON)
        self.workdir.mkdir(parents=True, exist_ok=True)
        cmd_r, cmd_w = os.pipe()
        out_r, out_w = os.pipe()
        # Chromium insists on fds 3 and 4; bash moves our pipe ends there and execs it (dash
        # cannot name fds above 9). The ends are first copied to fds >= 10 so the
        # redirections cannot clash.
        child_in = fcntl.fcntl(cmd_r, fcntl.F_DUPFD, 10)
        child_out = fcntl.fcntl(out_w, fcntl.F_DUPFD, 10)
        os.close(cmd_r)
        os.close(out_w)
        args = [
            exe,
            "--headless",
            "--no-sandbox",  # root in a container has no user namespace sandbox
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--remote-debugging-pipe",
            f"--user-data-dir={self.workdir / 'profile'}",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--disable-extensions",
            "--mute-audio",
            "--hide-scrollbars",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "about:blank",
        ]
        script = f'exec "$@" 3<&{child_in} 4>&{child_out} {child_in}<&- {child_out}>&-'
        with open(self._stderr_path, "wb") as err:
            self._proc = subprocess.Popen(
                [shutil.which("bash") or "/bin/bash", "-c", script, "bash", *args],
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                pass_fds=(child_in, child_out),
            )
        os.close(child_in)
        os.close(child_out)
        self._write = os.fdopen(cmd_w, "wb", buffering=0)
        self._reader = threading.Thread(target=self._read_loop, args=(out_r,), daemon=True)
        self._reader.start()
        try:
            self.send("Browser.getVersion")
        except BrowserError:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError):
            self._write.write(json.dumps({"id": 10**9, "method": "Browser.close"}).encode() + b"\0")
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        with contextlib.suppress(OSError):
            self._write.close()

    def stderr_text(self) -> str:
        try:
            return self._stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def _read_loop(self, fd: int) -> None:
        buf = b""
        with os.fdopen(fd, "rb", buffering=0) as f:
            while True:
                chunk = f.read(65536)
                if not chunk:
                    break
                buf += chunk
                *messages, buf = buf.split(b"\0")
                for raw in messages:
                    if raw:
                        self._inbox.put(json.loads(raw))
        self._inbox.put(None)  # end of stream: the browser exited

    # -- protocol ------------------------------------------------------------------------
    def send(
        self, method: str, params: Mapping[str, Any] | None = None, session_id: str | None = None
    ) -> dict[str, Any]:
        """Send one command and wait for its reply; events seen meanwhile are kept."""
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": dict(params or {})}
        if session_id:
            msg["sessionId"] = session_id
        try:
            self._write.write(json.dumps(msg).encode() + b"\0")
        except OSError as exc:
            raise BrowserError(f"chromium is gone ({exc}); stderr:\n{self.stderr_text()}") from exc
        reply = self._wait(lambda m: m.get("id") == msg["id"], f"reply to {method}")
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    def wait_event(self, method: str, session_id: str | None = None) -> dict[str, Any]:
        """The first event ``method`` (already received, or the next one)."""
        for ev in self.events:
            if ev.get("method") == method and ev.get("sessionId") == session_id:
                return ev
        return self._wait(
            lambda m: m.get("method") == method and m.get("sessionId") == session_id, method
        )

    def _wait(self, match: Any, what: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError(f"no {what} within {self.timeout_s} s")
            try:
                msg = self._inbox.get(timeout=left)
            except queue.Empty:
                continue
            if msg is None:
                raise BrowserError(f"chromium exited before {what}; stderr:\n{self.stderr_text()}")
            if "id" not in msg:
                self.events.append(msg)
            if match(msg):
                return msg

    # -- pages ---------------------------------------------------------------------------
    def open(self, url: str) -> Page:
        """A new tab with console, network and page events on, loaded with ``url``."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        page = Page(self, session)
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable", session_id=session)
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False},
            session_id=session,
        )
        page.navigate(url)
        return page


class Page:
    """One tab: evaluate JavaScript, take screenshots, read what the page logged and fetched."""

    def __init__(self, browser: Browser, session_id: str) -> None:
        self.browser = browser
        self.session_id = session_id

    def _events(self, method: str) -> list[dict[str, Any]]:
        return [
            ev["params"]
            for ev in self.browser.events
            if ev.get("method") == method and ev.get("sessionId") == self.session_id
        ]

    def navigate(self, url: str) -> None:
        loads = len(self._events("Page.loadEventFired"))
        reply = self.browser.send("Page.navigate", {"url": url}, session_id=self.session_id)
        if reply.get("errorText"):
            raise BrowserError(f"navigating to {url}: {reply['errorText']}")
        while len(self._events("Page.loadEventFired")) <= loads:
            self.browser._wait(
                lambda m: (
                    m.get("method") == "Page.loadEventFired"
                    and m.get("sessionId") == self.session_id
                ),
                f"load of {url}",
            )

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression (promises awaited)."""
        reply = self.browser.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            session_id=self.session_id,
        )
        if "exceptionDetails" in reply:
            raise BrowserError(f"{expression!r} threw: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def screenshot(self, path: Path, *, full_page: bool = True) -> Path:
        """A PNG of the page (the whole scrollable height when ``full_page``)."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            size = self.browser.send("Page.getLayoutMetrics", session_id=self.session_id)
            content = size.get("cssContentSize") or size["contentSize"]
            params["captureBeyondViewport"] = True
            params["clip"] = {
                "x": 0,
                "y": 0,
                "width": max(1, int(content["width"])),
                "height": max(1, int(content["height"])),
                "scale": 1,
            }
        data = self.browser.send("Page.captureScreenshot", params, session_id=self.session_id)
        path.write_bytes(base64.b64decode(data["data"]))
        return path

    def console_errors(self) -> list[str]:
        """Errors the page reported: console.error/assert, uncaught exceptions, and the
        browser's own error entries (CSP violations, failed loads)."""
        out = []
        for p in self._events("Runtime.consoleAPICalled"):
            if p.get("type") in ("error", "assert"):
                args = " ".join(str(a.get("value", a.get("description", ""))) for a in p["args"])
                out.append(f"console.{p['type']}: {args}")
        for p in self._events("Runtime.exceptionThrown"):
            details = p.get("exceptionDetails", {})
            desc = details.get("exception", {}).get("description") or details.get("text")
            out.append(f"exception: {desc}")
        for p in self._events("Log.entryAdded"):
            entry = p.get("entry", {})
            if entry.get("level") == "error":
                out.append(f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}")
        return out

    def requests(self) -> list[str]:
        """Every URL the page asked for, in order (``data:`` URLs left out: not requests)."""
        urls = [p["request"]["url"] for p in self._events("Network.requestWillBeSent")]
        return [u for u in urls if not u.startswith("data:")]


class PageServer:
    """A real HTTP server on 127.0.0.1 that serves fixed pages and records every request."""

    def __init__(self, pages: Mapping[str, bytes]) -> None:
        self.pages = dict(pages)
        self.requests: list[tuple[str, str]] = []  # (method, path)
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 -- http.server's naming
                server.requests.append(("GET", self.path))
                body = server.pages.get(self.path.split("?")[0])
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:  # noqa: N802
                server.requests.append(("POST", self.path))
                self.send_error(405)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass  # recorded above; keep the test output clean

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}{path}"

    def __enter__(self) -> PageServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
