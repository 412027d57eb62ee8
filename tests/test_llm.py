"""The LLM client and its cache, against a real OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from llm_server import LLMServer, Reply

from pytest_carbon.prompts.llm import (
    AnswerCache,
    Endpoint,
    GenerationError,
    LLMClient,
    RetryPolicy,
    cache_key,
    find_server,
    generate,
    messages_for,
    parse_retry_after,
    resolve_endpoint,
    temperature_for,
)


@pytest.fixture
def server() -> Iterator[LLMServer]:
    s = LLMServer()
    yield s
    s.close()


def client_for(
    server: LLMServer,
    *,
    timeout_s: float = 2.0,
    attempts: int = 4,
    sleeps: list[float] | None = None,
) -> LLMClient:
    def sleep(s: float) -> None:
        if sleeps is not None:
            sleeps.append(s)
        time.sleep(s)

    return LLMClient(
        resolve_endpoint(server.url, {}),
        timeout_s=timeout_s,
        retry=RetryPolicy(
            max_attempts=attempts, backoff_s=0.01, max_backoff_s=0.5, max_total_wait_s=2.0
        ),
        sleep=sleep,
        rng=random.Random(1),
    )


MSG = messages_for("write f")


def test_an_answer_with_its_usage(server: LLMServer) -> None:
    server.add(Reply(text="hello", usage=(7, 9)))
    c = client_for(server).complete("m", MSG, 0.0)
    assert (c.text, c.input_tokens, c.output_tokens, c.model, c.attempts) == ("hello", 7, 9, "m", 1)
    (req,) = server.completions()
    assert req["json"]["model"] == "m"
    assert req["json"]["temperature"] == 0.0
    assert req["json"]["messages"][0]["role"] == "system"
    assert "one fenced Python code block" in req["json"]["messages"][0]["content"]
    # A keyless local server gets the documented placeholder.
    assert req["auth"] == "Bearer not-needed"


def test_429_then_success_honours_retry_after(server: LLMServer) -> None:
    server.add(Reply(status=429, headers={"retry-after": "0.2"}), Reply(text="ok"))
    sleeps: list[float] = []
    c = client_for(server, sleeps=sleeps).complete("m", MSG, 0.0)
    assert c.text == "ok" and c.attempts == 2
    assert sleeps == [0.2]
    t0, t1 = (r["time"] for r in server.completions())
    assert t1 - t0 >= 0.19


def test_retry_after_ms_and_http_dates_are_read() -> None:
    assert parse_retry_after({"retry-after-ms": "250"}) == 0.25
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None


def test_5xx_are_retried_with_backoff_then_fail_with_the_reason(server: LLMServer) -> None:
    server.add(Reply(status=503, error="overloaded"))
    sleeps: list[float] = []
    with pytest.raises(GenerationError) as info:
        client_for(server, attempts=3, sleeps=sleeps).complete("m", MSG, 0.0)
    assert len(server.completions()) == 3
    assert len(sleeps) == 2 and all(0 <= s <= 0.5 for s in sleeps)
    assert "gave up after 3 attempt(s)" in info.value.message
    assert "HTTP 503: overloaded" in info.value.message


def test_total_wait_is_bounded(server: LLMServer) -> None:
    server.add(Reply(status=429, headers={"retry-after": "0.4"}))
    sleeps: list[float] = []
    client = client_for(server, attempts=50, sleeps=sleeps)
    client.retry.max_total_wait_s = 1.0
    with pytest.raises(GenerationError, match="gave up"):
        client.complete("m", MSG, 0.0)
    # The waits the client asked for, not the wall time (a busy machine stretches that).
    assert sleeps == [0.4, 0.4]
    assert len(server.completions()) == 3  # 0.4 + 0.4 <= 1.0 < 0.4 * 3


@pytest.mark.parametrize(
    ("reply", "words", "kind"),
    [
        (
            Reply(status=401, error="invalid key"),
            "refused the API key (HTTP 401): invalid key",
            "endpoint",
        ),
        (
            Reply(status=404, error="model not found"),
            "model 'm' or the API path was not found",
            "endpoint",
        ),
        (Reply(status=400, error="bad request"), "rejected the request (HTTP 400)", "endpoint"),
        (Reply(body="{not json"), "malformed JSON", "endpoint"),
        (Reply(body='{"choices": []}'), "without choices[0].message", "endpoint"),
        (Reply(text=""), "empty answer", "answer"),
        (Reply(text=None, finish_reason="length"), "finish_reason='length'", "answer"),
    ],
)
def test_other_failures_are_not_retried_and_say_why(
    server: LLMServer, reply: Reply, words: str, kind: str
) -> None:
    server.add(reply)
    with pytest.raises(GenerationError) as info:
        client_for(server).complete("m", MSG, 0.0)
    assert words in info.value.message
    assert info.value.kind == kind
    assert len(server.completions()) == 1


def test_a_timeout_is_an_error_naming_the_option(server: LLMServer) -> None:
    server.add(Reply(delay_s=1.0))
    sleeps: list[float] = []
    with pytest.raises(GenerationError) as info:
        client_for(server, timeout_s=0.2, sleeps=sleeps).complete("m", MSG, 0.0)
    # The kind and the words say the 0.2 s timeout fired (the reply takes 1 s); not
    # retried, so no wait either. No wall-clock bound: a busy machine stretches it.
    assert info.value.kind == "timeout"
    assert sleeps == []
    assert "within 0.2 s (--carbon-llm-timeout)" in info.value.message


def test_an_unreachable_endpoint_is_retried_then_named() -> None:
    s = LLMServer()
    url = s.url
    s.close()  # nothing listens on that port any more
    sleeps: list[float] = []
    client = LLMClient(
        resolve_endpoint(url, {}),
        timeout_s=1.0,
        retry=RetryPolicy(max_attempts=2, backoff_s=0.01),
        sleep=sleeps.append,
    )
    with pytest.raises(GenerationError, match=r"cannot connect to http://127\.0\.0\.1"):
        client.complete("m", MSG, 0.0)
    assert len(sleeps) == 1  # one retry
    # The next item fails at once with the reason, instead of retrying all over again:
    # no wait (counted, not timed: a busy machine stretches wall time).
    with pytest.raises(GenerationError, match="is unreachable .not retried: an earlier request"):
        client.complete("m", MSG, 0.0)
    assert len(sleeps) == 1


def test_an_endpoint_that_answers_errors_is_not_marked_unreachable(server: LLMServer) -> None:
    server.add(Reply(status=500, error="boom"))
    client = client_for(server, attempts=2, sleeps=[])
    with pytest.raises(GenerationError, match="HTTP 500: boom"):
        client.complete("m", MSG, 0.0)
    assert client.unreachable is None
    # ... so the next request is still sent.
    with pytest.raises(GenerationError, match="HTTP 500: boom"):
        client.complete("m", MSG, 0.0)
    assert len(server.completions()) == 4


def test_endpoint_resolution_and_missing_configuration() -> None:
    env = {"OPENAI_BASE_URL": "http://h:1/v1/", "OPENAI_API_KEY": "sk-x"}
    assert resolve_endpoint(None, env) == Endpoint("http://h:1/v1", "sk-x", True)
    assert resolve_endpoint("http://cli/v1", env).url == "http://cli/v1"
    bare = resolve_endpoint(None, {})
    assert bare.url == "https://api.openai.com/v1" and not bare.explicit
    with pytest.raises(GenerationError) as info:
        bare.require_key()
    assert "OPENAI_API_KEY" in info.value.message and "--carbon-base-url" in info.value.message
    assert info.value.kind == "config"


def test_temperature_is_greedy_for_one_sample_only() -> None:
    assert temperature_for(1) == 0.0
    assert temperature_for(5) == 0.8


def test_cache_key_covers_every_input() -> None:
    base = cache_key("http://e/v1", "m", MSG, 0.0, 0)
    assert base == cache_key("http://e/v1/", "m", MSG, 0.0, 0)
    others = {
        cache_key("http://f/v1", "m", MSG, 0.0, 0),
        cache_key("http://e/v1", "n", MSG, 0.0, 0),
        cache_key("http://e/v1", "m", messages_for("other"), 0.0, 0),
        cache_key("http://e/v1", "m", MSG, 0.8, 0),
        cache_key("http://e/v1", "m", MSG, 0.0, 1),
    }
    assert base not in others and len(others) == 5


def run(server: LLMServer, cache: AnswerCache, mode: str, sample: int = 0) -> object:
    return generate(
        client=client_for(server),
        cache=cache,
        mode=mode,
        model="m",
        messages=MSG,
        temperature=0.0,
        sample=sample,
    )


def test_auto_mode_stores_then_serves_from_the_cache(server: LLMServer, tmp_path: Path) -> None:
    server.add(Reply(text="first", usage=(3, 4)), Reply(text="second"))
    cache = AnswerCache(tmp_path / "cache")
    a = run(server, cache, "auto")
    b = run(server, cache, "auto")
    assert (a.text, a.cached, b.text, b.cached) == ("first", False, "first", True)  # type: ignore[attr-defined]
    assert (b.input_tokens, b.output_tokens) == (3, 4)  # type: ignore[attr-defined]
    assert len(server.completions()) == 1
    entry = json.loads(cache.path(a.key).read_text())  # type: ignore[attr-defined]
    assert entry["text"] == "first" and entry["usage"] == {"input_tokens": 3, "output_tokens": 4}
    assert entry["request"]["model"] == "m" and entry["endpoint"] == server.url
    assert not list(cache.path(a.key).parent.glob(".tmp-*"))  # type: ignore[attr-defined]


def test_live_mode_always_calls_and_replaces_the_entry(server: LLMServer, tmp_path: Path) -> None:
    server.add(Reply(text="first"), Reply(text="second"))
    cache = AnswerCache(tmp_path)
    run(server, cache, "live")
    b = run(server, cache, "live")
    assert b.text == "second" and not b.cached  # type: ignore[attr-defined]
    assert len(server.completions()) == 2
    assert run(server, cache, "replay").text == "second"  # type: ignore[attr-defined]


def test_replay_mode_never_calls_and_a_miss_names_the_cache(
    server: LLMServer, tmp_path: Path
) -> None:
    server.add(Reply(text="x"))
    cache = AnswerCache(tmp_path / "c")
    with pytest.raises(GenerationError) as info:
        run(server, cache, "replay")
    key = cache_key(server.url, "m", MSG, 0.0, 0)
    assert str(tmp_path / "c") in info.value.message and key in info.value.message
    assert info.value.kind == "replay"
    assert server.completions() == []


def test_a_corrupt_cache_entry_is_a_miss(server: LLMServer, tmp_path: Path) -> None:
    server.add(Reply(text="fresh"))
    cache = AnswerCache(tmp_path)
    key = cache_key(server.url, "m", MSG, 0.0, 0)
    cache.path(key).parent.mkdir(parents=True)
    cache.path(key).write_text("{truncated")
    assert run(server, cache, "auto").text == "fresh"  # type: ignore[attr-defined]


def test_errors_are_not_cached(server: LLMServer, tmp_path: Path) -> None:
    server.add(Reply(text=""), Reply(text="later"))
    cache = AnswerCache(tmp_path)
    with pytest.raises(GenerationError):
        run(server, cache, "auto")
    assert run(server, cache, "auto").text == "later"  # type: ignore[attr-defined]


# -- a local server in its own process ----------------------------------------------------

HERE = Path(__file__).parent
DOUBLE = "```python\ndef double(x):\n    return x + x\n```"


@pytest.fixture
def server_process() -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``tests/llm_server.py`` in its own process, burning 0.5 s of CPU per request."""
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "llm_server.py"), "--cpu-s", "0.5", "--text", DOUBLE]
        + ["--usage", "10", "20"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    try:
        yield proc, url
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()


def test_the_server_is_the_listening_sockets_owner(
    server_process: tuple[subprocess.Popen[str], str],
) -> None:
    proc, url = server_process
    found = find_server(url)
    assert found.pid == proc.pid and found.visible and not found.in_process
    assert found.pids()[0] == proc.pid
    before = found.cpu_s()
    client = LLMClient(Endpoint(url, None, True), timeout_s=30)
    client.complete("m", messages_for("x"), 0.0)
    client.close()
    after = found.cpu_s()
    assert before is not None and after is not None
    assert after - before >= 0.45  # the 0.5 s the server burnt for the request
    assert f"pid {proc.pid}" in found.describe()


def test_a_server_inside_pytest_is_recognised(server: LLMServer) -> None:
    found = find_server(server.url)
    assert found.pid == os.getpid() and found.in_process
    assert found.pids() == ()  # its CPU time is already pytest's own
    assert "inside pytest" in found.describe()


def test_an_unseen_server_says_why() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: nobody serves this port
    found = find_server(f"http://127.0.0.1:{port}/v1")
    assert not found.visible and found.cpu_s() is None and found.pids() == ()
    assert "no process on this machine listens" in (found.reason or "")
    assert "not visible" in found.describe()


@pytest.mark.slow
def test_a_local_servers_generation_energy_is_counted(
    server_process: tuple[subprocess.Popen[str], str], tmp_path: Path
) -> None:
    """Three concurrent requests to a server process that burns 0.5 s of CPU for each:
    one window holds the phase, the server's CPU time is in it, and each answer gets the
    share of its request's server CPU time."""
    _, url = server_process
    (tmp_path / "prompts").mkdir()
    for name in ("a", "b", "c"):
        (tmp_path / "prompts" / f"{name}.yaml").write_text(
            textwrap.dedent(
                f"""\
                id: {name}
                prompt: "Write double(x). {name}"
                entry_point: double
                reference: |
                  def double(x):
                      return 2 * x
                tests:
                  - {{args: [2], expect: 4}}
                workload: {{args: [21], min_time_s: 0.01}}
                timeout_s: 10
                """
            )
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PYTEST_XDIST"))}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist", "-q"]
        + ["--carbon", "--carbon-sensors=estimate", "--carbon-json=out.json"]
        + [f"--carbon-base-url={url}", "--carbon-model=m", "--carbon-concurrency=3"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((tmp_path / "out.json").read_text())
    gens = [r["prompt"]["generation"] for r in report["tests"]]
    assert len(gens) == 3
    (estimate,) = [s for s in report["machine"]["sensors"] if s["name"] == "estimate"]
    watts_per_cpu = estimate["details"]["watts_per_core"]
    for g in gens:
        assert g["method"] == "estimated" and g["phase_answers"] == 3
        assert g["shared_by"] == "server CPU time per request"
        assert g["server"].startswith("pid ") and "inside pytest" not in g["server"]
        assert g["server_cpu_s"] >= 0.45
    # One window: the answers' shares add up to it.
    assert sum(g["share"] for g in gens) == pytest.approx(1.0)
    assert sum(g["energy_j"] for g in gens) == pytest.approx(gens[0]["phase_energy_j"])
    # The server's 1.5 s of CPU is in the phase's dynamic energy (pytest's own share of
    # it, HTTP clients and all, is a few hundredths of a second).
    dynamic = sum(g["dynamic_energy_j"] for g in gens)
    assert dynamic >= 0.9 * 1.5 * watts_per_cpu
    assert dynamic <= 1.5 * 1.5 * watts_per_cpu
