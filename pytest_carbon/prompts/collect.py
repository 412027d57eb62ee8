"""Prompt-suite collection: YAML files become PromptItems that generate, verify and measure code.

One item per (task, model, sample), named ``task[MODEL-SAMPLE]`` with samples counted from 0
and ``/`` or ``:`` in a model name replaced by ``_`` (``variant:naive`` -> ``variant_naive``).
Generation happens in ``prefetch`` (all selected items, concurrently, before any
measurement); each item then verifies its code in the sandbox and measures its workload.
An item *errors* when generation fails, *fails* when the code is incorrect, and *passes*
when the code is correct (and, with ``--carbon``, measured).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_carbon.prompts.hints import model_hint
from pytest_carbon.prompts.llm import REFERENCE, VARIANT_PREFIX, GenerationError, is_builtin
from pytest_carbon.prompts.spec import SpecError, Task

if TYPE_CHECKING:
    from pytest_carbon.options import Settings
    from pytest_carbon.session import CarbonSession

#: The generation of one item (set by prefetch or lazily by setup).
GENERATION_KEY = pytest.StashKey["Generated"]()
_RUNTIME_KEY = pytest.StashKey["_Runtime"]()
#: Progress lines while prefetching: about this many per run on a non-terminal.
_PROGRESS_STEPS = 10


# -- failures rendered by repr_failure ------------------------------------------------------


class IncorrectAnswer(Exception):
    """The generated code failed a test case (the item fails)."""

    def __init__(self, code: str, result: Any) -> None:
        super().__init__(getattr(result, "message", "incorrect"))
        self.code = code
        self.result = result


class WorkloadFailed(Exception):
    """Code whose workload could not be measured, or that failed while measured (the item
    fails). ``kind``: workload failed, workload timed out, incorrect answer (a measured
    call disagreed with the reference) or protocol violation."""

    def __init__(
        self, code: str, reason: str, kind: str = "workload failed", case: Any = None
    ) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.kind = kind
        self.case = case


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


# -- collection -------------------------------------------------------------------------------


def _glob_regex(pattern: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def is_prompt_path(file_path: Path, rootpath: Path, glob: str) -> bool:
    """The settings' glob (relative to the rootdir), or any YAML file under a ``prompts``
    directory."""
    if file_path.suffix not in (".yaml", ".yml"):
        return False
    try:
        rel = file_path.resolve().relative_to(rootpath.resolve()).as_posix()
    except ValueError:
        rel = None
    if rel is not None and _glob_regex(glob).match(rel):
        return True
    return "prompts" in file_path.parent.parts


def _named_explicitly(file_path: Path, config: pytest.Config) -> bool:
    """The file, or a ``prompts`` directory holding it, was named on the command line."""
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        return False
    target = file_path.resolve()
    for arg in config.args:
        p = Path(config.invocation_params.dir, arg.split("::")[0]).resolve()
        if p == target:
            return True
        if (
            p.is_dir()
            and p in target.parents
            and (
                p.name == "prompts"
                or "prompts" in target.relative_to(p).parts[:-1]
                or "prompts" in p.parts
            )
        ):
            return True
    return False


def collect_file(file_path: Path, parent: pytest.Collector) -> PromptFile | None:
    """A PromptFile for a prompt-suite YAML file, else None.

    Collected when the path matches ``carbon_prompts`` (default ``prompts/**/*.yaml``) or
    lies under a directory named ``prompts``, and either ``--carbon`` is on or the file (or
    its prompts directory) was named on the command line: ``pytest tests/`` never turns
    YAML data into tests, and a plain ``pytest`` never calls an LLM by surprise.
    """
    config = parent.config
    settings = _settings(config)
    explicit = parent.session.isinitpath(file_path)
    declared = False
    if not (explicit or is_prompt_path(file_path, config.rootpath, settings.carbon_prompts)):
        # A folder named on the command line (`pytest out/he`) holding files that say
        # they are prompt suites: what `pytest-carbon import` writes.
        from pytest_carbon.prompts.paths import declares_prompt_schema, inside_named_dir

        declared = inside_named_dir(file_path, config) and declares_prompt_schema(file_path)
        if not declared:
            return None
    if not (settings.enabled or explicit or declared or _named_explicitly(file_path, config)):
        return None
    return PromptFile.from_parent(parent, path=file_path)


def safe_model_id(model: str) -> str:
    return re.sub(r"[/:\s\[\]]", "_", model)


def models_for(task: Task, settings: Any) -> list[str]:
    """``--carbon-model`` overrides the task's ``models``; the default is ``reference``."""
    if settings.carbon_model:
        return list(dict.fromkeys(settings.carbon_model))
    if task.models:
        return list(task.models)
    return [REFERENCE]


def _missing_variant(task: Task, model: str) -> str | None:
    """The skip reason of a ``variant:NAME`` model the task does not have, else None."""
    if not model.startswith(VARIANT_PREFIX):
        return None
    name = model[len(VARIANT_PREFIX) :]
    if name in task.variants:
        return None
    have = ", ".join(sorted(task.variants)) or "none"
    return f"task {task.id!r} has no variant {name!r} (its variants: {have})"


class PromptFile(pytest.File):
    """One prompt-suite YAML file."""

    def collect(self) -> Iterator[pytest.Item]:
        from pytest_carbon.prompts.spec import load

        try:
            tasks = load(self.path)
        except SpecError as exc:
            # An item, not a CollectError: pytest interrupts the whole session on a
            # collection error, and one bad file must not stop the other files.
            yield SpecErrorItem.from_parent(self, name="spec", error=exc)
            return
        settings = _settings(self.config)
        for task in tasks:
            for model in models_for(task, settings):
                # A built-in model's answer is fixed: one sample says all there is.
                n = 1 if is_builtin(model) else (settings.carbon_samples or task.samples)
                for sample in range(n):
                    item = PromptItem.from_parent(
                        self,
                        name=f"{task.id}[{safe_model_id(model)}-{sample}]",
                        task=task,
                        model=model,
                        sample=sample,
                        samples=n,
                    )
                    missing = _missing_variant(task, model)
                    if missing:
                        item.add_marker(pytest.mark.skip(reason=missing))
                    for mark in task.marks:
                        try:
                            item.add_marker(getattr(pytest.mark, mark))
                        except (AttributeError, pytest.fail.Exception) as exc:
                            raise self.CollectError(
                                f"{task.path}:{task.line}: key 'marks': mark {mark!r} cannot "
                                f"be used: {exc}"
                            ) from None
                    yield item


class SpecErrorItem(pytest.Item):
    """Stands for an invalid prompt file: errors with the file, line and key."""

    carbon_self_measured = True

    def __init__(self, *, error: SpecError, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.error = error

    def reportinfo(self) -> tuple[Path, int | None, str]:
        line = self.error.line - 1 if self.error.line else None
        return self.path, line, f"invalid prompt file {self.path.name}"

    def setup(self) -> None:
        # pytest.fail in setup: reported as an error, shown as the bare message.
        pytest.fail(f"invalid prompt file: {self.error}", pytrace=False)

    def runtest(self) -> None:  # pragma: no cover - setup always fails
        pytest.fail(f"invalid prompt file: {self.error}", pytrace=False)


def _store_record(item: pytest.Item, record: dict[str, Any]) -> None:
    """Hand the item's record to the session, which puts it on the item's report."""
    cs = _carbon_session(item.config)
    if cs is not None:
        cs.set_record(item, record)


class PromptItem(pytest.Item):
    """One (task, model, sample): generate, verify in the sandbox, then measure."""

    #: The plugin's generic call-phase measurement must leave this item alone: it measures
    #: its workload itself (inside the sandbox, start-up excluded).
    carbon_self_measured = True

    def __init__(self, *, task: Task, model: str, sample: int, samples: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.task = task
        self.model = model
        self.sample = sample
        self.samples = samples

    @property
    def temperature(self) -> float:
        from pytest_carbon.prompts.llm import temperature_for

        return temperature_for(self.samples)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, self.task.line - 1, f"{self.task.id} [{self.model} #{self.sample}]"

    # -- phases -------------------------------------------------------------------------
    def setup(self) -> None:
        missing = _missing_variant(self.task, self.model)
        if missing:  # normally skipped by its marker already
            pytest.skip(missing)
        if hint := model_hint(self.task, self.model):
            pytest.fail(hint, pytrace=False)
        gen = self.stash.get(GENERATION_KEY, None)
        if gen is None:
            gen = generate_for(self)
            self.stash[GENERATION_KEY] = gen
        if gen.error is not None:
            from pytest_carbon.results.record import unmeasured_record

            # The record keeps the failed generation in pass rates and footprints.
            cs = _carbon_session(self.config)
            _store_record(
                self,
                unmeasured_record(
                    self.nodeid,
                    outcome="error",
                    prompt=self._prompt_fields(gen, correct=None, failed_case=None),
                    worker=cs.worker_id if cs is not None else None,
                    reason=f"generation failed: {gen.error}",
                ),
            )
            # pytest.fail in setup: the item *errors*, and shows the reason, not a traceback.
            pytest.fail(self._render_generation_error(gen), pytrace=False)

    def _render_generation_error(self, gen: Generated) -> str:
        lines = [
            f"generation failed (model {self.model!r}, task {self.task.id!r}, "
            f"sample {self.sample}):",
            f"  {gen.error}",
        ]
        if gen.answer:
            from pytest_carbon.prompts.safe_text import escape_controls

            lines += ["the answer was:", _indent(_clip(escape_controls(gen.answer), 2000))]
        return "\n".join(lines)

    def runtest(self) -> None:
        from pytest_carbon.prompts.sandbox import verify
        from pytest_carbon.results.record import unmeasured_record

        gen = self.stash[GENERATION_KEY]
        code = gen.code or ""
        task = self.task
        result = verify(
            code,
            task.entry_point,
            [dict(t) for t in task.tests],
            task.check,
            timeout_s=task.timeout_s,
        )
        cs = _carbon_session(self.config)
        worker = cs.worker_id if cs is not None else None
        if not result.passed:
            prompt = self._prompt_fields(
                gen, correct=False, failed_case=_jsonable(result.failed_case)
            )
            _store_record(
                self,
                unmeasured_record(
                    self.nodeid,
                    outcome="failed",
                    prompt=prompt,
                    worker=worker,
                    reason=f"incorrect answer: {result.message}",
                ),
            )
            raise IncorrectAnswer(code, result)
        if cs is None or not cs.settings.enabled:
            return  # verified; nothing to measure without --carbon
        self._measure(cs, gen, code, worker)

    def _measure(self, cs: Any, gen: Generated, code: str, worker: str | None) -> None:
        """Measure the workload: the reference alone (its ratio is 1 by definition), any
        other answer interleaved with the reference (see prompts/measure.py)."""
        from pytest_carbon.prompts.isolation import SandboxError
        from pytest_carbon.prompts.measure import compare, failure, workload_calls
        from pytest_carbon.prompts.sandbox import run_workload, workload_result
        from pytest_carbon.results.record import unmeasured_record

        task = self.task
        calls = workload_calls(task.workload)
        warnings = list(gen.warnings)
        comparison = None
        try:
            if self.model == REFERENCE:
                workload = run_workload(
                    code,
                    task.entry_point,
                    [],
                    {},
                    calls=calls,
                    min_time_s=task.workload.min_time_s,
                    timeout_s=task.timeout_s,
                    meter=cs.meter,
                    key=self.nodeid,
                )
                ratio: dict[str, float | None] | None = {"energy": 1.0, "duration": 1.0}
            else:
                comparison = compare(
                    code,
                    task.reference,
                    task.entry_point,
                    calls,
                    meter=cs.meter,
                    key=self.nodeid,
                    precision=getattr(cs.settings, "carbon_precision", 0.05),
                    max_time_s=getattr(cs.settings, "carbon_max_time", 10.0),
                    timeout_s=task.timeout_s,
                    tol=max((float(t.get("tol") or 0.0) for t in task.tests), default=0.0),
                )
                workload = workload_result(comparison.candidate)
                warnings += comparison.candidate.notes + comparison.reference.notes
                ratio = {
                    "energy": comparison.energy.ratio if comparison.energy else None,
                    "duration": comparison.duration.ratio if comparison.duration else None,
                }
        except SandboxError as exc:
            correct, failed, kind = failure(exc)
            _store_record(
                self,
                unmeasured_record(
                    self.nodeid,
                    outcome="failed",
                    prompt=self._prompt_fields(gen, correct=correct, failed_case=failed),
                    worker=worker,
                    reason=f"{kind}: {exc}",
                ),
            )
            raise WorkloadFailed(code, str(exc), kind=kind, case=failed) from None
        _store_record(self, self._record(cs, workload, gen, ratio, warnings, comparison))

    # -- helpers ------------------------------------------------------------------------
    def _prompt_fields(
        self,
        gen: Generated,
        *,
        correct: bool | None,
        failed_case: Any,
        ratio: dict[str, float | None] | None = None,
        comparison: Any = None,
    ) -> dict[str, Any]:
        return {
            "task": self.task.id,
            "model": self.model,
            "sample": self.sample,
            "samples": self.samples,
            "temperature": None if is_builtin(self.model) else self.temperature,
            "correct": correct,
            "failed_case": failed_case,
            "generation": dict(gen.generation),
            "reference_ratio": ratio,
            "reference_comparison": None if comparison is None else comparison.record_json(),
        }

    def _record(
        self,
        cs: Any,
        workload: Any,
        gen: Generated,
        ratio: Any,
        warnings: list[str],
        comparison: Any = None,
    ) -> dict[str, Any]:
        from pytest_carbon.results.record import make_record, per_call_stats

        # One sample per timed batch: calls = samples x batch = the workload's rounds.
        per_call = per_call_stats(
            workload.per_call_energy_j,
            workload.per_call_duration_s,
            iterations_per_round=getattr(workload, "batch_size", 1),
        )
        return make_record(
            self.nodeid,
            workload.measurement,
            cs.accounting,
            # As for the carbon fixture: rounds = samples, per_call.calls = every call.
            rounds=len(workload.per_call_energy_j),
            per_call=per_call,
            per_round_energy_j=workload.per_call_energy_j,
            per_round_duration_s=workload.per_call_duration_s,
            prompt=self._prompt_fields(
                gen, correct=True, failed_case=None, ratio=ratio, comparison=comparison
            ),
            worker=cs.worker_id,
            warnings=warnings,
        )

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> str | Any:
        exc = excinfo.value
        if isinstance(exc, IncorrectAnswer):
            return _render_incorrect(self, exc)
        if isinstance(exc, WorkloadFailed):
            head = {
                "workload failed": "passed its tests but its workload failed",
                "workload timed out": "passed its tests but its workload timed out",
                "incorrect answer": "passed its tests but gave a wrong result while measured",
                "protocol violation": "broke the measurement protocol",
            }.get(exc.kind, exc.kind)
            lines = [f"{exc.kind}: the answer of {self.model!r} {head}:", f"  {exc.reason}"]
            if isinstance(exc.case, dict):
                lines.append("failing case:")
                lines += [f"  {k}: {_clip(repr(v), 500)}" for k, v in exc.case.items()]
            return "\n".join([*lines, "code:", numbered(exc.code)])
        return super().repr_failure(excinfo, style=style)


def _jsonable(value: Any) -> Any:
    if value is None:
        return None
    return json.loads(json.dumps(value, default=repr))


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n... ({len(text) - limit} more chars)"


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def numbered(code: str) -> str:
    from pytest_carbon.prompts.safe_text import escape_controls

    # Generated code is shown on the terminal: its control characters, escaped.
    lines = escape_controls(code).splitlines() or [""]
    width = len(str(len(lines)))
    return "\n".join(f"  {i:>{width}} | {line}" for i, line in enumerate(lines, 1))


def _render_incorrect(item: PromptItem, exc: IncorrectAnswer) -> str:
    r = exc.result
    out = [
        f"incorrect answer from {item.model!r} for task {item.task.id!r} (sample {item.sample}):"
    ]
    if getattr(r, "timed_out", False):
        out.append(f"  timed out after {item.task.timeout_s:g} s")
    if getattr(r, "message", None):
        out.append(f"  {r.message}")
    case = getattr(r, "failed_case", None)
    if case:
        out.append("first failing case:")
        if isinstance(case, dict):
            out += [f"  {k}: {_clip(repr(v), 500)}" for k, v in case.items()]
        else:
            out.append(f"  {_clip(repr(case), 500)}")
    out += ["code:", numbered(exc.code)]
    for name in ("stdout", "stderr"):
        text = getattr(r, name, None)
        if text and text.strip():
            out += [f"{name} (last lines):", _indent(_clip(text[-1500:], 1500))]
    return "\n".join(out)


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
    from pytest_carbon.prompts.extract import ExtractError, extract_code
    from pytest_carbon.prompts.llm import generate, messages_for

    rt = _runtime(item.config)
    try:
        answer = generate(
            client=rt.client,
            cache=rt.cache,
            mode=rt.mode,
            model=item.model,
            messages=messages_for(item.task.prompt),
            temperature=item.temperature,
            sample=item.sample,
            around=_around_local(item, rt),
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
    from pytest_carbon.prompts.llm import cache_key, messages_for

    if rt.mode == "live":
        return True
    if rt.mode == "replay":
        return False
    key = cache_key(
        rt.endpoint.url, item.model, messages_for(item.task.prompt), item.temperature, item.sample
    )
    return rt.cache.get(key) is None


def prefetch(session: pytest.Session) -> None:
    """Generate the code of every selected PromptItem, concurrently, before measuring.

    Built-in models are answered at once. Under xdist each worker generates lazily, item by
    item (every worker collects every item; prefetching there would ask for each answer
    once per worker)."""
    from concurrent.futures import ThreadPoolExecutor, as_completed

    config = session.config
    items = [i for i in session.items if isinstance(i, PromptItem)]
    if not items or hasattr(config, "workerinput"):
        return
    remote: list[PromptItem] = []
    for item in items:
        if _missing_variant(item.task, item.model) or model_hint(item.task, item.model):
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
