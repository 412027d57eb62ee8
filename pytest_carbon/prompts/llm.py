"""The LLM client: OpenAI-compatible chat completions, explicit retries, and an answer cache.

* Endpoint: ``--carbon-base-url``, else ``$OPENAI_BASE_URL``, else OpenAI's own API. The key
  comes from ``$OPENAI_API_KEY``; a keyless local server (Ollama, vLLM, llama.cpp) gets the
  placeholder ``not-needed``, which such servers ignore.
* Retries are ours (the SDK runs with ``max_retries=0``): 429, 5xx and connection failures
  are retried with exponential backoff and full jitter, honouring ``Retry-After`` /
  ``retry-after-ms``, within a bounded number of attempts and a bounded total wait. A
  timeout is not retried (it already cost ``--carbon-llm-timeout``). Anything else (401,
  404, other 4xx, malformed JSON, an empty answer) fails at once with a clear message.
* Cache: one JSON file per answer, named by the SHA-256 of the canonical JSON of
  ``{endpoint, model, messages, temperature, sample}``, written atomically.
  Modes: ``auto`` (cache, then endpoint), ``replay`` (cache only), ``live`` (always call).
* Built-in models (``reference``, ``variant:NAME``) never reach this module's network or
  cache code: the caller answers them from the task.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

OPENAI_DEFAULT_URL = "https://api.openai.com/v1"
PLACEHOLDER_KEY = "not-needed"
CACHE_SCHEMA = "pytest-carbon/llm-cache/1"

SYSTEM_PROMPT = (
    "You are an expert Python programmer. Answer with exactly one fenced Python code block "
    "(```python ... ```) containing a complete, self-contained implementation: all imports "
    "and helper functions included, no example usage, no tests, no input() calls. Write "
    "code that is correct first, then fast and frugal with energy."
)
#: One sample is answered deterministically; several samples need diversity.
GREEDY_TEMPERATURE = 0.0
SAMPLING_TEMPERATURE = 0.8

REFERENCE = "reference"
VARIANT_PREFIX = "variant:"


def is_builtin(model: str) -> bool:
    return model == REFERENCE or model.startswith(VARIANT_PREFIX)


def temperature_for(samples: int) -> float:
    """0 for a single sample (reproducible); 0.8 for every sample when there are several."""
    return GREEDY_TEMPERATURE if samples <= 1 else SAMPLING_TEMPERATURE


def messages_for(prompt: str, system: str | None = None) -> list[dict[str, str]]:
    """The request's messages; ``system`` (a strategy's) replaces the default system prompt."""
    return [
        {"role": "system", "content": system or SYSTEM_PROMPT},
        {"role": "user", "content": prompt},
    ]


class GenerationError(Exception):
    """Generation failed: the endpoint's or the cache's reason, ready to show."""

    def __init__(self, message: str, *, kind: str = "endpoint") -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind  # config | endpoint | timeout | replay | answer


# -- endpoint ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """Where requests go. ``url`` is also the cache's notion of the endpoint."""

    url: str
    api_key: str | None
    explicit: bool  # a base URL was configured (not OpenAI's default)

    def require_key(self) -> str:
        if self.api_key:
            return self.api_key
        if self.explicit:
            return PLACEHOLDER_KEY
        raise GenerationError(
            "no LLM endpoint is configured: set OPENAI_API_KEY (for OpenAI), or "
            "--carbon-base-url / OPENAI_BASE_URL for another OpenAI-compatible server "
            "(e.g. http://127.0.0.1:11434/v1 for Ollama); or use --carbon-model=reference "
            "to run offline",
            kind="config",
        )


def resolve_endpoint(base_url: str | None, environ: Mapping[str, str] | None = None) -> Endpoint:
    env = os.environ if environ is None else environ
    url = base_url or env.get("OPENAI_BASE_URL") or None
    key = env.get("OPENAI_API_KEY") or None
    return Endpoint(
        url=(url or OPENAI_DEFAULT_URL).rstrip("/"), api_key=key, explicit=url is not None
    )


# -- the cache -----------------------------------------------------------------------------


def cache_key(
    endpoint: str,
    model: str,
    messages: list[dict[str, str]],
    temperature: float,
    sample: int,
    strategy: str = "plain",
) -> str:
    """The answer's cache key. The strategy is in it beside the messages it shaped (two
    strategies with one template stay apart); ``plain`` is left out, so keys recorded
    before strategies existed still hit."""
    payload: dict[str, Any] = {
        "endpoint": endpoint.rstrip("/"),
        "model": model,
        "messages": messages,
        "temperature": temperature,
        "sample": sample,
    }
    if strategy != "plain":
        payload["strategy"] = strategy
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class AnswerCache:
    """Content-addressed answers: ``DIR/ab/abcdef....json``."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            entry = json.loads(self.path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # missing or unreadable (e.g. truncated by hand): treat as a miss
        if not isinstance(entry, dict) or not isinstance(entry.get("text"), str):
            return None
        return entry

    def put(self, key: str, entry: Mapping[str, Any]) -> Path:
        from pytest_carbon.results.atomic import write_text_atomic

        text = json.dumps(dict(entry), indent=1, sort_keys=True, ensure_ascii=False)
        return write_text_atomic(self.path(key), text + "\n")


# -- the client ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Completion:
    text: str
    input_tokens: int | None
    output_tokens: int | None
    model: str | None
    latency_s: float
    attempts: int


@dataclass
class RetryPolicy:
    max_attempts: int = 5
    backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    max_total_wait_s: float = 60.0


def parse_retry_after(headers: Mapping[str, str] | Any) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or HTTP date)."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(float(ms) / 1000.0, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def _server_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if isinstance(err, str):
            return err
    response = getattr(exc, "response", None)
    text = ""
    if response is not None:
        # A streamed body never read (httpx.ResponseNotRead, a RuntimeError) or one that
        # does not decode: the message falls back to the exception's own text.
        with contextlib.suppress(RuntimeError, ValueError):
            text = response.text
    return (text or str(getattr(exc, "message", "")) or repr(exc)).strip()[:300]


class LLMClient:
    """Chat completions against one endpoint through the ``openai`` SDK (thread-safe)."""

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        timeout_s: float = 120.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._client: Any = None
        self._lock = threading.Lock()
        #: Set when a request exhausted its retries without ever connecting: the endpoint
        #: is down, so later items fail at once instead of each retrying for a minute.
        self.unreachable: str | None = None

    def _sdk(self) -> Any:
        with self._lock:
            if self._client is None:
                import openai

                self._client = openai.OpenAI(
                    base_url=self.endpoint.url,
                    api_key=self.endpoint.require_key(),
                    timeout=self.timeout_s,
                    max_retries=0,
                )
            return self._client

    def open(self) -> None:
        """Import the SDK and build the client now (outside any measured window: importing
        ``openai`` costs far more CPU than a short local generation)."""
        self._sdk()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def complete(
        self, model: str, messages: list[dict[str, str]], temperature: float
    ) -> Completion:
        """One answer, retried on transient failures. Raises GenerationError."""
        import openai

        if self.unreachable is not None:
            raise GenerationError(
                f"{self.endpoint.url} is unreachable (not retried: {self.unreachable})",
                kind="unreachable",
            )
        client = self._sdk()
        waited_s = 0.0
        last = ""
        connected = False
        started = time.perf_counter()
        for attempt in range(1, self.retry.max_attempts + 1):
            t0 = time.perf_counter()
            retry_after: float | None = None
            try:
                raw = client.chat.completions.with_raw_response.create(
                    model=model,
                    messages=messages,
                    temperature=temperature,
                )
                body = raw.http_response.text
                latency_s = time.perf_counter() - t0
                self.unreachable = None
                return self._parse(body, raw.http_response.status_code, latency_s, attempt)
            except openai.APITimeoutError:
                raise GenerationError(
                    f"no answer from {self.endpoint.url} within {self.timeout_s:g} s "
                    "(--carbon-llm-timeout)",
                    kind="timeout",
                ) from None
            except openai.APIConnectionError as exc:
                last = f"cannot connect to {self.endpoint.url}: {exc.__cause__ or exc}"
            except openai.APIStatusError as exc:
                connected = True
                status = exc.status_code
                msg = _server_message(exc)
                if status == 429 or status >= 500:
                    last = f"HTTP {status}: {msg}"
                    retry_after = parse_retry_after(exc.response.headers)
                else:
                    raise GenerationError(self._status_message(status, model, msg)) from None
            if attempt == self.retry.max_attempts:
                break
            delay = self._delay(attempt, retry_after)
            if waited_s + delay > self.retry.max_total_wait_s:
                break
            self._sleep(delay)
            waited_s += delay
        elapsed = time.perf_counter() - started
        if not connected:
            self.unreachable = (
                f"an earlier request gave up after {attempt} attempt(s) in {elapsed:.1f} s; {last}"
            )
        raise GenerationError(
            f"{self.endpoint.url} kept failing: gave up after {attempt} attempt(s) in "
            f"{elapsed:.1f} s; last error: {last}"
        )

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.retry.max_backoff_s)
        cap = min(self.retry.backoff_s * 2 ** (attempt - 1), self.retry.max_backoff_s)
        return self._rng.uniform(0, cap)  # full jitter spreads concurrent retries apart

    def _status_message(self, status: int, model: str, msg: str) -> str:
        url = self.endpoint.url
        if status == 401:
            return f"{url} refused the API key (HTTP 401): {msg}; check OPENAI_API_KEY"
        if status == 403:
            return f"{url} denied access (HTTP 403): {msg}; check the key's permissions"
        if status == 404:
            return (
                f"model {model!r} or the API path was not found at {url} (HTTP 404): {msg}; "
                "check --carbon-model, and that --carbon-base-url ends in /v1"
            )
        return f"{url} rejected the request (HTTP {status}): {msg}"

    def _parse(self, body: str, status: int, latency_s: float, attempts: int) -> Completion:
        try:
            data = json.loads(body)
        except ValueError:
            raise GenerationError(
                f"{self.endpoint.url} answered HTTP {status} with malformed JSON "
                f"(first bytes: {body[:80]!r})"
            ) from None
        try:
            choice = data["choices"][0]
            message = choice["message"]
            text = message.get("content")
        except (KeyError, IndexError, TypeError, AttributeError):
            raise GenerationError(
                f"{self.endpoint.url} answered without choices[0].message "
                f"(body starts: {body[:120]!r})"
            ) from None
        if not isinstance(text, str) or not text.strip():
            reason = choice.get("finish_reason") if isinstance(choice, dict) else None
            raise GenerationError(
                f"the model returned an empty answer (finish_reason={reason!r})", kind="answer"
            )
        usage = data.get("usage") if isinstance(data, dict) else None
        usage = usage if isinstance(usage, dict) else {}
        return Completion(
            text=text,
            input_tokens=_int_or_none(usage.get("prompt_tokens")),
            output_tokens=_int_or_none(usage.get("completion_tokens")),
            model=data.get("model") if isinstance(data.get("model"), str) else None,
            latency_s=latency_s,
            attempts=attempts,
        )


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# -- the local server's process ---------------------------------------------------------------


_ANY_ADDRESS = {"0.0.0.0", "::", ""}


@dataclass(frozen=True)
class ServerProcess:
    """The process listening on a local endpoint's port, or why it cannot be seen."""

    pid: int | None
    name: str | None = None
    #: Why the process is unknown (None when ``pid`` is set).
    reason: str | None = None

    @property
    def visible(self) -> bool:
        return self.pid is not None

    @property
    def in_process(self) -> bool:
        """The server runs inside pytest (its CPU time is already pytest's own)."""
        return self.pid == os.getpid()

    def pids(self) -> tuple[int, ...]:
        """The server and its live descendants (e.g. Ollama's model runners), for a meter
        window; empty when unseen, or when it is pytest itself."""
        if self.pid is None or self.in_process:
            return ()
        import psutil

        try:
            children = psutil.Process(self.pid).children(recursive=True)
        except (psutil.Error, OSError):
            return (self.pid,)
        return (self.pid, *(c.pid for c in children))

    def cpu_s(self) -> float | None:
        """CPU seconds of the server, children included; None when it cannot be read."""
        if self.pid is None:
            return None
        from pytest_carbon.measure.proctime import process_tree_cpu_s

        return process_tree_cpu_s(self.pid)

    def describe(self) -> str:
        if self.pid is None:
            return f"server process not visible: {self.reason}"
        where = " (inside pytest)" if self.in_process else ""
        return f"pid {self.pid} ({self.name or '?'}){where}"


def find_server(url: str) -> ServerProcess:
    """The owner of the socket listening on ``url``'s port on this machine (via psutil)."""
    from urllib.parse import urlsplit

    import psutil

    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return ServerProcess(None, reason=f"no port in {url!r}")
    try:
        conns = psutil.net_connections(kind="tcp")
    except (psutil.Error, OSError) as exc:
        return ServerProcess(
            None, reason=f"the system refused to list sockets ({type(exc).__name__})"
        )
    owners = {
        c.pid
        for c in conns
        if c.status == psutil.CONN_LISTEN
        and c.laddr
        and c.laddr.port == port
        and (c.laddr.ip in _ANY_ADDRESS or c.laddr.ip.startswith("127.") or c.laddr.ip == "::1")
    }
    pids = {p for p in owners if p is not None}
    if not owners:
        return ServerProcess(
            None,
            reason=f"no process on this machine listens on port {port} (a container or a "
            "forwarded port?)",
        )
    if not pids:
        return ServerProcess(
            None, reason=f"the process listening on port {port} belongs to another user"
        )
    pid = min(pids)
    try:
        name = psutil.Process(pid).name()
    except (psutil.Error, OSError):
        name = None
    return ServerProcess(pid, name)


# -- one generation: cache, then endpoint ----------------------------------------------------


@dataclass
class Answer:
    """A model's answer, from the cache or the endpoint."""

    text: str
    key: str
    cached: bool
    input_tokens: int | None = None
    output_tokens: int | None = None
    model: str | None = None
    latency_s: float | None = None
    endpoint: str | None = None
    #: What the caller measured around a live call (stored with the answer), e.g. the
    #: generation energy of a local endpoint.
    measured: dict[str, Any] = field(default_factory=dict)


def generate(
    *,
    client: LLMClient,
    cache: AnswerCache,
    mode: str,
    model: str,
    messages: list[dict[str, str]],
    temperature: float,
    sample: int,
    around: Callable[[Callable[[], Completion]], tuple[Completion, dict[str, Any]]] | None = None,
    strategy: str = "plain",
) -> Answer:
    """Answer one request according to ``mode``. Raises GenerationError."""
    endpoint = client.endpoint.url
    key = cache_key(endpoint, model, messages, temperature, sample, strategy)
    if mode in ("auto", "replay"):
        entry = cache.get(key)
        if entry is not None:
            usage = entry.get("usage") or {}
            return Answer(
                text=entry["text"],
                key=key,
                cached=True,
                input_tokens=_int_or_none(usage.get("input_tokens")),
                output_tokens=_int_or_none(usage.get("output_tokens")),
                model=entry.get("model"),
                latency_s=entry.get("latency_s"),
                endpoint=entry.get("endpoint"),
                measured=dict(entry.get("measured") or {}),
            )
        if mode == "replay":
            raise GenerationError(
                f"replay mode: no cached answer for model {model!r}, strategy {strategy!r}, "
                f"sample {sample} at "
                f"{endpoint} in {cache.directory} (key {key}); run once with "
                "--carbon-llm-mode=auto to record it",
                kind="replay",
            )

    def call() -> Completion:
        return client.complete(model, messages, temperature)

    measured: dict[str, Any] = {}
    if around is not None:
        completion, measured = around(call)
    else:
        completion = call()
    from pytest_carbon.results.record import iso_utc

    entry = {
        "schema": CACHE_SCHEMA,
        "key": key,
        "request": {
            "endpoint": endpoint,
            "model": model,
            "messages": messages,
            "temperature": temperature,
            "sample": sample,
            "strategy": strategy,
        },
        "text": completion.text,
        "usage": {
            "input_tokens": completion.input_tokens,
            "output_tokens": completion.output_tokens,
        },
        "model": completion.model,
        "created": iso_utc(),
        "latency_s": completion.latency_s,
        "endpoint": endpoint,
        "measured": measured,
    }
    cache.put(key, entry)
    return Answer(
        text=completion.text,
        key=key,
        cached=False,
        input_tokens=completion.input_tokens,
        output_tokens=completion.output_tokens,
        model=completion.model,
        latency_s=completion.latency_s,
        endpoint=endpoint,
        measured=measured,
    )
