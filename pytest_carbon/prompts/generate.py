"""Generation for prompt items: the LLM runtime of a run, prefetching every selected item's
answer concurrently before anything is measured, and the footprint of generating it.

The generation phase on a local endpoint is one meter window shared among the answers
(by the server's CPU time per request where it can be seen, else by output tokens).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_carbon.prompts.hints import missing_variant, model_hint
from pytest_carbon.prompts.llm import REFERENCE, VARIANT_PREFIX, GenerationError, is_builtin

if TYPE_CHECKING:
    from pytest_carbon.options import Settings
    from pytest_carbon.prompts.collect import PromptItem
    from pytest_carbon.session import CarbonSession

#: The generation of one item (set by prefetch or lazily by setup).
GENERATION_KEY = pytest.StashKey["Generated"]()
_RUNTIME_KEY = pytest.StashKey["_Runtime"]()
#: Progress lines while prefetching: about this many per run on a non-terminal.
_PROGRESS_STEPS = 10


@dataclass
class Generated:
    code: str | None
    error: str | None = None
    answer: str | None = None
    generation: dict[str, Any] = field(default_factory=dict)
    cached: bool = False
    warnings: list[str] = field(default_factory=list)


# -- settings and the shared runtime ---------------------------------------------------------


def _settings(config: pytest.Config) -> Settings:
    # The plugin's pytest_configure made the session before any file is collected.
    from pytest_carbon.session import get_session

    return get_session(config).settings


def _carbon_session(config: pytest.Config) -> CarbonSession | None:
    from pytest_carbon.session import SESSION_KEY

    return config.stash.get(SESSION_KEY, None)


class _Runtime:
    """The LLM client, the cache and the model-size table of one pytest run."""

    def __init__(self, config: pytest.Config) -> None:
        from pytest_carbon.prompts.footprint import ini_params, is_local_endpoint
        from pytest_carbon.prompts.llm import AnswerCache, LLMClient, resolve_endpoint

        settings = _settings(config)
        self.config = config
        self.settings = settings
        self.endpoint = resolve_endpoint(settings.carbon_base_url)
        self.local = is_local_endpoint(self.endpoint.url)
        self.cache = AnswerCache(Path(config.rootpath, settings.carbon_llm_cache))
        self.mode = settings.carbon_llm_mode
        self.client = LLMClient(self.endpoint, timeout_s=settings.carbon_llm_timeout)
        self.params, problems = ini_params(config)
        cs = _carbon_session(config)
        for p in problems:
            if cs is not None:
                cs.warn(p)
        self._server_lock = threading.Lock()
        self._server: Any = None
        #: The measured generation phase while prefetch runs one (local endpoint).
        self.phase: _Phase | None = None

    def server(self) -> Any:
        """The local endpoint's server process (a ``ServerProcess``), looked up once."""
        with self._server_lock:
            if self._server is None:
                from pytest_carbon.prompts.llm import find_server

                self._server = find_server(self.endpoint.url)
            return self._server

    def close(self) -> None:
        self.client.close()


@dataclass
class _Phase:
    """Live answers generated inside prefetch's one measured window."""

    key: str
    answers: list[tuple[PromptItem, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, item: PromptItem, answer: Any) -> None:
        with self.lock:
            self.answers.append((item, answer))


def _runtime(config: pytest.Config) -> _Runtime:
    rt = config.stash.get(_RUNTIME_KEY, None)
    if rt is None:
        rt = _Runtime(config)
        config.stash[_RUNTIME_KEY] = rt
        config.add_cleanup(rt.close)
    return rt


# -- generation ------------------------------------------------------------------------------


def _builtin_answer(item: PromptItem) -> Generated:
    from pytest_carbon.prompts.footprint import none_footprint

    if item.model == REFERENCE:
        code = item.task.reference
    else:
        code = item.task.variants[item.model[len(VARIANT_PREFIX) :]]
    return Generated(code=code, generation=none_footprint())


def _footprint(item: PromptItem, rt: _Runtime, answer: Any) -> tuple[dict[str, Any], list[str]]:
    from pytest_carbon.prompts.footprint import lookup_params, measured_footprint, remote_footprint

    warnings: list[str] = []
    cs = _carbon_session(item.config)
    m = answer.measured
    if rt.local and m.get("energy_j") is not None:
        fp = measured_footprint(
            answer.input_tokens,
            answer.output_tokens,
            m["energy_j"],
            m.get("method", "estimated"),
            m.get("gco2e_g") or 0.0,
        )
        # Our own statement replaces footprint.py's generic one: we know whether the
        # server's processes were in the window.
        fp.pop("warning", None)
        for k in (
            "server",
            "shared_by",
            "share",
            "dynamic_energy_j",
            "server_cpu_s",
            "phase_energy_j",
            "phase_answers",
        ):
            if k in m:
                fp[k] = m[k]
        if not m.get("server_visible", False):
            warnings.append(
                "generation energy of a local endpoint covers pytest's own process tree "
                f"only: {m.get('server', 'the server process was not looked up')}; the "
                "model server's work is missing (run pytest as the server's user, outside "
                "its container, or use a machine-wide counter: RAPL/NVML)"
            )
    else:
        intensity = cs.accounting.intensity_g_per_kwh if cs is not None else None
        params = lookup_params(item.model, rt.params, item.task.model_params)
        fp = remote_footprint(
            item.model,
            answer.input_tokens,
            answer.output_tokens,
            intensity if intensity is not None else 0.0,
            latency_s=answer.latency_s,
            params=params,
        )
        if intensity is None and fp.get("gco2e_g") is not None:
            fp["gco2e_g"] = None
        if fp.get("reason"):
            warnings.append(f"generation footprint unknown: {fp['reason']}")
    fp["cached"] = answer.cached
    return fp, warnings


def _measured(m: Any, cs: Any, server: Any, share: float, **extra: Any) -> dict[str, Any]:
    energy_j = m.total_energy_j * share
    return {
        "energy_j": energy_j,
        "dynamic_energy_j": m.total_dynamic_energy_j * share,
        "share": share,
        "method": m.overall_method,
        "gco2e_g": cs.accounting.gco2e_g(energy_j),
        "duration_s": m.duration_s,
        "server": server.describe(),
        "server_visible": server.visible,
        **extra,
    }


def _around_local(item: PromptItem, rt: _Runtime) -> Any:
    """Measure a live call to an endpoint on this machine with the session's meter.

    The server's process (the listening socket's owner) and its children are in the
    window; the SDK is imported and the client built before it opens. Inside prefetch's
    generation phase, one window covers all concurrent calls (:func:`_share_phase` splits
    it); alone (lazily, from setup), each call gets its own window."""
    cs = _carbon_session(item.config)
    if not rt.local or cs is None or not cs.settings.enabled:
        return None

    def around(call: Any) -> tuple[Any, dict[str, Any]]:
        rt.client.open()
        server = rt.server()
        if rt.phase is not None:
            cpu0 = server.cpu_s()
            completion = call()
            cpu1 = server.cpu_s()
            cpu = cpu1 - cpu0 if cpu0 is not None and cpu1 is not None else None
            return completion, {"pending": True, "server_cpu_s": cpu}
        meter = cs.meter
        key = f"{item.nodeid}::generation"
        meter.begin(key, pids=server.pids())
        try:
            completion = call()
        finally:
            m = meter.end(key)
        return completion, _measured(m, cs, server, 1.0, shared_by="one request per window")

    return around


def _share_phase(rt: _Runtime, cs: Any, m: Any) -> None:
    """Split the generation phase's energy among its live answers: by the server's CPU
    time during each request where the server is visible, else by output tokens, else
    equally; each answer says which, and its cache entry keeps the figure."""
    answers = list(rt.phase.answers) if rt.phase is not None else []
    if not answers:
        return
    server = rt.server()
    cpus = [a.measured.get("server_cpu_s") for _, a in answers]
    tokens = [a.output_tokens for _, a in answers]
    weights: list[float]
    if server.visible and all(c is not None for c in cpus) and sum(cpus) > 0:
        weights, basis = [float(c) for c in cpus], "server CPU time per request"
    elif all(t is not None for t in tokens) and sum(tokens) > 0:
        weights, basis = [float(t) for t in tokens], "output tokens"
    else:
        weights, basis = [1.0] * len(answers), "equal shares (no CPU time or token counts)"
    total_w = sum(weights)
    for (item, answer), w in zip(answers, weights, strict=True):
        share = w / total_w
        answer.measured = _measured(
            m,
            cs,
            server,
            share,
            shared_by=basis,
            phase_energy_j=m.total_energy_j,
            phase_answers=len(answers),
            server_cpu_s=answer.measured.get("server_cpu_s"),
        )
        entry = rt.cache.get(answer.key)
        if entry is not None:
            entry["measured"] = answer.measured
            rt.cache.put(answer.key, entry)
        gen = item.stash.get(GENERATION_KEY, None)
        if gen is not None:
            fp, warnings = _footprint(item, rt, answer)
            gen.generation = fp
            gen.warnings.extend(w for w in warnings if w not in gen.warnings)


def generate_for(item: PromptItem) -> Generated:
    """The item's code: from the task for built-in models, else cache or endpoint.

    Never raises for an endpoint problem: the reason is kept, and setup reports it."""
    if is_builtin(item.model):
        return _builtin_answer(item)
    from pytest_carbon.prompts.extract import ExtractError, extract_code, extract_program
    from pytest_carbon.prompts.llm import generate

    rt = _runtime(item.config)
    try:
        answer = generate(
            client=rt.client,
            cache=rt.cache,
            mode=rt.mode,
            model=item.model,
            messages=item.messages(),
            temperature=item.temperature,
            sample=item.sample,
            around=_around_local(item, rt),
            strategy=item.strategy.name,
        )
    except GenerationError as exc:
        return Generated(code=None, error=exc.message)
    except Exception as exc:  # a bug or an SDK surprise must not stop the session
        return Generated(code=None, error=f"{type(exc).__name__}: {exc}")
    if answer.measured.get("pending") and rt.phase is not None:
        # Its share of the phase's window is known when the phase ends (_share_phase).
        rt.phase.add(item, answer)
        fp: dict[str, Any] = {"cached": False}
        warnings: list[str] = []
    else:
        fp, warnings = _footprint(item, rt, answer)
    try:
        if getattr(item.task, "kind", "function") == "program":
            code = extract_program(answer.text, item.task.language_of(item.model))
        else:
            code = extract_code(answer.text, item.task.entry_point)
    except ExtractError as exc:
        return Generated(
            code=None,
            error=f"no usable code in the answer: {exc}",
            answer=answer.text,
            generation=fp,
            cached=answer.cached,
        )
    return Generated(
        code=code, answer=answer.text, generation=fp, cached=answer.cached, warnings=warnings
    )


def _needs_endpoint(item: PromptItem, rt: _Runtime) -> bool:
    from pytest_carbon.prompts.llm import cache_key

    if rt.mode == "live":
        return True
    if rt.mode == "replay":
        return False
    key = cache_key(
        rt.endpoint.url,
        item.model,
        item.messages(),
        item.temperature,
        item.sample,
        item.strategy.name,
    )
    return rt.cache.get(key) is None


def prefetch(session: pytest.Session) -> None:
    """Generate the code of every selected PromptItem, concurrently, before measuring.

    Built-in models are answered at once. Under xdist each worker generates lazily, item by
    item (every worker collects every item; prefetching there would ask for each answer
    once per worker)."""
    from concurrent.futures import ThreadPoolExecutor, as_completed

    config = session.config
    from pytest_carbon.prompts.collect import PromptItem

    items = [i for i in session.items if isinstance(i, PromptItem)]
    if not items or hasattr(config, "workerinput"):
        return
    remote: list[PromptItem] = []
    for item in items:
        if missing_variant(item.task, item.model) or model_hint(item.task, item.model):
            continue  # skipped by its marker, or failed with a hint
        if is_builtin(item.model):
            item.stash[GENERATION_KEY] = _builtin_answer(item)
        else:
            remote.append(item)
    if not remote:
        return
    rt = _runtime(config)
    live = [i for i in remote if _needs_endpoint(i, rt)]
    progress = _Progress(config, len(live), rt) if live else None
    concurrency = max(rt.settings.carbon_concurrency, 1)
    cs = _carbon_session(config)
    meter = None
    if live and rt.local and cs is not None and cs.settings.enabled:
        # One window for the whole concurrent phase (a batching server keeps its
        # throughput); the SDK import, the client, the meter's start-up and the server
        # lookup all happen before it opens.
        try:
            rt.client.open()
            meter = cs.meter
            phase = _Phase("prompts::generation")
            meter.begin(phase.key, pids=rt.server().pids())
            rt.phase = phase
        except Exception as exc:  # the calls then fail (or are measured) one by one
            meter = None
            cs.warn(f"the generation phase could not be measured as one window: {exc}")
    started = time.perf_counter()
    try:
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="carbon-llm") as pool:
            futures = {pool.submit(generate_for, item): item for item in remote}
            for future in as_completed(futures):
                item = futures[future]
                gen = future.result()  # generate_for never raises
                item.stash[GENERATION_KEY] = gen
                if progress is not None and not gen.cached:
                    progress.step(gen.error is not None)
    finally:
        if meter is not None and rt.phase is not None:
            _share_phase(rt, cs, meter.end(rt.phase.key))
            rt.phase = None
    if progress is not None:
        progress.done(time.perf_counter() - started)


class _Progress:
    """A progress display on the terminal: one line rewritten in place on a terminal, else
    about ten lines per run."""

    def __init__(self, config: pytest.Config, total: int, rt: _Runtime) -> None:
        self.tr = config.pluginmanager.get_plugin("terminalreporter")
        self.total = total
        self.n = 0
        self.failed = 0
        self.every = max(total // _PROGRESS_STEPS, 1)
        self.tty = bool(getattr(self.tr, "isatty", False)) if self.tr is not None else False
        if self.tr is not None:
            self.tr.ensure_newline()
            self.tr.write_line(
                f"pytest-carbon: generating {total} answer(s) from {rt.endpoint.url} "
                f"({rt.settings.carbon_concurrency} at a time, mode {rt.mode}, "
                f"cache {rt.cache.directory})"
            )

    def step(self, failed: bool) -> None:
        self.n += 1
        self.failed += failed
        if self.tr is None:
            return
        line = f"pytest-carbon: generated {self.n}/{self.total}" + (
            f" ({self.failed} failed)" if self.failed else ""
        )
        if self.tty:
            self.tr.rewrite(line, erase=True)
        elif self.n % self.every == 0 or self.n == self.total:
            self.tr.write_line(line)

    def done(self, elapsed_s: float) -> None:
        if self.tr is None:
            return
        if self.tty:
            self.tr.rewrite(
                f"pytest-carbon: generated {self.n}/{self.total} in "
                f"{elapsed_s:.1f} s" + (f" ({self.failed} failed)" if self.failed else ""),
                erase=True,
            )
            self.tr.write_line("")
        else:
            self.tr.write_line(f"pytest-carbon: generation done in {elapsed_s:.1f} s")
