"""Prompt-suite collection: YAML files become PromptItems that generate, verify and measure code.

One item per (task, model, strategy, sample), named ``task[MODEL-STRATEGY-SAMPLE]`` with
samples counted from 0 and ``/`` or ``:`` in a model name replaced by ``_``
(``variant:naive`` -> ``variant_naive``); the strategy is ``plain`` unless
``--carbon-strategy`` names others (prompts/strategies.py).
Generation happens in ``prefetch`` (all selected items, concurrently, before any
measurement); each item then verifies its code in the sandbox and measures its workload.
An item *errors* when generation fails, *fails* when the code is incorrect, and *passes*
when the code is correct (and, with ``--carbon``, measured).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_carbon.prompts.hints import missing_variant, model_hint
from pytest_carbon.prompts.llm import REFERENCE, is_builtin
from pytest_carbon.prompts.spec import SpecError, Task

if TYPE_CHECKING:
    pass

from pytest_carbon.prompts.generate import (
    GENERATION_KEY,
    Generated,
    _carbon_session,
    _settings,
    generate_for,
)

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


#: WorkloadFailed.kind of an item on which pytest-carbon itself raised; its record's
#: ``failed_case`` holds ``PLUGIN_ERROR_KEY``, which makes the report ``complete: false``.
PLUGIN_ERROR = "plugin error"


def _exc_text(exc: BaseException) -> str:
    from pytest_carbon.sandbox.safe_text import escape_controls

    text = f"{type(exc).__name__}: {exc}"
    return escape_controls(text if len(text) <= 2000 else text[:2000] + "...")


# -- collection -------------------------------------------------------------------------------


#: The variant names of every task collected: ``--carbon-model`` is checked against them.
_VARIANTS_SEEN = pytest.StashKey[set[str]]()


#: Under xdist, a worker's usage error travels to the controller in its workeroutput.
USAGE_ERROR_KEY = "pytest_carbon_usage_error"


def check_model_selection(config: pytest.Config, items: list[pytest.Item]) -> None:
    """After collection: a ``--carbon-model`` that matches nothing stops the run
    (``variant:naiv``, ``naive`` for ``variant:naive``, ``refrence``), with the closest
    valid name. Checked only when a prompt file was collected."""
    variants = config.stash.get(_VARIANTS_SEEN, None)
    if variants is None:
        return
    problem = _model_problem(config, variants)
    if problem is None:
        return
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:
        # An xdist worker: raising would crash it (an INTERNALERROR without the message).
        # It runs nothing, and the controller reports the usage error (exit status 4).
        workeroutput[USAGE_ERROR_KEY] = problem
        config.hook.pytest_deselected(items=list(items))
        items[:] = []
        return
    raise pytest.UsageError(problem)


def _model_problem(config: pytest.Config, variants: set[str]) -> str | None:
    import difflib

    from pytest_carbon.prompts.llm import VARIANT_PREFIX

    valid = [REFERENCE, *(VARIANT_PREFIX + v for v in sorted(variants))]
    for model in _settings(config).carbon_model:
        if model in valid:
            continue
        close = difflib.get_close_matches(model, valid, n=1, cutoff=0.6)
        hint = f"; did you mean --carbon-model={close[0]}?" if close else ""
        shown = ", ".join(valid[:8]) + (", …" if len(valid) > 8 else "")
        if model.startswith(VARIANT_PREFIX):
            return (
                f"--carbon-model={model}: no collected task has a variant "
                f"{model[len(VARIANT_PREFIX) :]!r} (built-in models: {shown}){hint}"
            )
        if model in variants:
            return (
                f"--carbon-model={model}: no built-in model has that name, and it is a task's "
                f"variant: did you mean --carbon-model={VARIANT_PREFIX}{model}?"
            )
        # Any other name is an LLM's, asked from the endpoint: only a near miss of a
        # built-in name (``refrence``, ``variant-naive``) is taken for a typo.
        near = difflib.get_close_matches(model, valid, n=1, cutoff=0.85)
        if near:
            return (
                f"--carbon-model={model}: not a built-in model (built-in: {shown}), and "
                f"too close to one to be an LLM's name: did you mean --carbon-model={near[0]}?"
            )
    return None


def safe_model_id(model: str) -> str:
    return re.sub(r"[/:\s\[\]]", "_", model)


def models_for(task: Task, settings: Any) -> list[str]:
    """``--carbon-model`` overrides the task's ``models``; the default is ``reference``."""
    if settings.carbon_model:
        return list(dict.fromkeys(settings.carbon_model))
    if task.models:
        return list(task.models)
    return [REFERENCE]


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
        except Exception as exc:  # a loader bug: still this file's failure only
            error = SpecError(self.path, None, None, f"cannot be loaded: {_exc_text(exc)}")
            yield SpecErrorItem.from_parent(self, name="spec", error=error)
            return
        settings = _settings(self.config)
        from pytest_carbon.prompts.strategies import StrategyError, factors_for

        try:
            factors = factors_for(self.path, self.config.rootpath, _strategy_files(self.config))
        except SpecError as exc:
            yield SpecErrorItem.from_parent(self, name="strategies", error=exc)
            return
        try:
            strategies = factors.select(getattr(settings, "carbon_strategy", ()))
        except StrategyError as exc:
            # One collection error stops the run; the other files of the suite stay quiet.
            reported = _strategy_files(self.config)
            if str(exc) in reported:
                return
            reported[str(exc)] = True
            raise self.CollectError(str(exc)) from None
        seen = self.config.stash.setdefault(_VARIANTS_SEEN, set())
        for task in tasks:
            seen.update(task.variants)
            marks, bad_mark = _marks(task)
            if bad_mark is not None:  # this task's item, not a session-wide CollectError
                yield SpecErrorItem.from_parent(self, name=f"{task.id}[spec]", error=bad_mark)
                continue
            for model, strategy, sample, n, temperature in _factors(
                task, settings, factors, strategies
            ):
                item = PromptItem.from_parent(
                    self,
                    name=f"{task.id}[{safe_model_id(model)}-{strategy.name}-{sample}]",
                    task=task,
                    model=model,
                    sample=sample,
                    samples=n,
                    strategy=strategy,
                    temperature=temperature,
                )
                missing = missing_variant(task, model)
                if missing:
                    item.add_marker(pytest.mark.skip(reason=missing))
                for mark in marks:
                    item.add_marker(mark)
                yield item


_STRATEGY_FILES = pytest.StashKey[dict[Any, Any]]()


def _strategy_files(config: pytest.Config) -> dict[Any, Any]:
    """Strategies files read in this run (each once), and the strategy errors reported."""
    return config.stash.setdefault(_STRATEGY_FILES, {})


def _factors(task: Task, settings: Any, factors: Any, strategies: list[Any]) -> Iterator[Any]:
    """``(model, strategy, sample, samples, temperature)`` of each item of a task.

    A built-in model's answer is fixed: one sample says all there is, and the reference
    (its own ratio, 1 by definition) needs one strategy only. Samples: ``--carbon-samples``,
    else the model's in strategies.yaml, else the task's; temperature: the model's, else 0
    for one sample and 0.8 for several."""
    for model in models_for(task, settings):
        ms = factors.models.get(model)
        for s_index, strategy in enumerate(strategies):
            if model == REFERENCE and s_index:
                continue
            if is_builtin(model):
                n = 1
            else:
                n = settings.carbon_samples or (ms.samples if ms else None) or task.samples
            temperature = ms.temperature if ms is not None else None
            for sample in range(n):
                yield model, strategy, sample, n, temperature


def _marks(task: Task) -> tuple[list[Any], SpecError | None]:
    """The task's marks as pytest marks, or the error of the first that cannot be used
    (unknown under ``--strict-markers``)."""
    out = []
    for mark in task.marks:
        try:
            out.append(getattr(pytest.mark, mark))
        except (AttributeError, pytest.fail.Exception) as exc:
            return [], SpecError(
                task.path, task.line, "marks", f"mark {mark!r} cannot be used: {exc}"
            )
    return out, None


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
    """Hand the item's record to the session, which puts it on the item's report. Lone
    surrogates (from a traceback, a returned string, a suite file) are escaped here, once:
    no writer, and no xdist channel, can encode them."""
    from pytest_carbon.sandbox.safe_text import scrub_surrogates

    cs = _carbon_session(item.config)
    if cs is not None:
        cs.set_record(item, scrub_surrogates(record))


class PromptItem(pytest.Item):
    """One (task, model, sample): generate, verify in the sandbox, then measure."""

    #: The plugin's generic call-phase measurement must leave this item alone: it measures
    #: its workload itself (inside the sandbox, start-up excluded).
    carbon_self_measured = True

    def __init__(
        self,
        *,
        task: Task,
        model: str,
        sample: int,
        samples: int,
        strategy: Any = None,
        temperature: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        from pytest_carbon.prompts.strategies import BUILTIN, DEFAULT

        self.task = task
        self.model = model
        self.sample = sample
        self.samples = samples
        self.strategy = strategy if strategy is not None else BUILTIN[DEFAULT]
        self._temperature = temperature

    @property
    def temperature(self) -> float:
        from pytest_carbon.prompts.llm import temperature_for

        if self._temperature is not None:
            return self._temperature
        return temperature_for(self.samples)

    def messages(self) -> list[dict[str, str]]:
        """The request: the task's prompt wrapped by the item's strategy."""
        from pytest_carbon.prompts.llm import messages_for

        return messages_for(self.strategy.wrap(self.task.prompt), self.strategy.system)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        where = f"{self.model} {self.strategy.name} #{self.sample}"
        return self.path, self.task.line - 1, f"{self.task.id} [{where}]"

    # -- phases -------------------------------------------------------------------------
    def setup(self) -> None:
        missing = missing_variant(self.task, self.model)
        if missing:  # normally skipped by its marker already
            pytest.skip(missing)
        if hint := model_hint(self.task, self.model):
            pytest.fail(hint, pytrace=False)
        if self.task.kind == "program":  # a language whose toolchain is not here: skip
            from pytest_carbon.prompts.program_item import skip_reason

            if reason := skip_reason(self):
                pytest.skip(reason)
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
            from pytest_carbon.sandbox.safe_text import escape_controls

            lines += ["the answer was:", _indent(_clip(escape_controls(gen.answer), 2000))]
        return "\n".join(lines)

    def runtest(self) -> None:
        gen = self.stash[GENERATION_KEY]
        code = gen.code or ""
        try:
            self._judge_and_measure(gen, code)
        except (IncorrectAnswer, WorkloadFailed):
            raise
        except Exception as exc:
            # A broken answer fails its own item, never the session, and keeps its record
            # (pass@k counts it as a failure). A SandboxError is the sandbox's verdict on
            # the answer (a bound of wire_limits, a sandbox that stopped); anything else is
            # a bug of pytest-carbon met on this answer: the report is then incomplete.
            self._broken(gen, code, exc)

    def _broken(self, gen: Generated, code: str, exc: Exception) -> None:
        from pytest_carbon.results.io import PLUGIN_ERROR_KEY
        from pytest_carbon.results.record import unmeasured_record
        from pytest_carbon.sandbox.isolation import SandboxError
        from pytest_carbon.sandbox.safe_text import escape_controls

        cs = _carbon_session(self.config)
        if isinstance(exc, SandboxError):
            kind, reason = "sandbox failure", str(exc)
            failed: dict[str, Any] = {"sandbox": True, "error": reason}
        else:
            kind, reason = PLUGIN_ERROR, f"pytest-carbon failed on this answer: {_exc_text(exc)}"
            failed = {PLUGIN_ERROR_KEY: True, "error": reason}
        _store_record(
            self,
            unmeasured_record(
                self.nodeid,
                outcome="failed",
                prompt=self._prompt_fields(gen, correct=False, failed_case=failed),
                worker=cs.worker_id if cs is not None else None,
                reason=f"{kind}: {reason}",
            ),
        )
        if kind == PLUGIN_ERROR:  # for whoever fixes the bug: where it was raised
            import traceback

            tail = "".join(traceback.format_exception(exc)[-8:])
            reason += "\n" + _clip(escape_controls(tail), 4000)
        raise WorkloadFailed(code, reason, kind=kind) from exc

    def _judge_and_measure(self, gen: Generated, code: str) -> None:
        from pytest_carbon.results.record import unmeasured_record
        from pytest_carbon.sandbox.verify import verify

        task = self.task
        if task.kind == "program":  # stdin/stdout, any language: prompts/program_item.py
            from pytest_carbon.prompts.program_item import run_program_item

            run_program_item(self, gen, code)
            return
        result = verify(
            code,
            task.entry_point,
            [dict(t) for t in task.tests],
            task.check,
            reference=task.reference,  # the check's globals: never the candidate's
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
        if task.references and (self.model == REFERENCE or (cs and cs.settings.enabled)):
            # Graded references are vetted like the reference: by the reference's item,
            # and before any answer is placed on them.
            self._vet_graded(gen, code, worker)
        if cs is None or not cs.settings.enabled:
            return  # verified; nothing to measure without --carbon
        self._measure(cs, gen, code, worker)

    def _vet_graded(self, gen: Generated, code: str, worker: str | None) -> None:
        from pytest_carbon.results.record import unmeasured_record

        problem = _vet_graded(self.config, self.task)
        if problem is None:
            return
        _store_record(
            self,
            unmeasured_record(
                self.nodeid,
                outcome="failed",
                prompt=self._prompt_fields(gen, correct=None, failed_case=None),
                worker=worker,
                reason=f"{GRADED_FAILED}: {problem}",
            ),
        )
        raise WorkloadFailed(code, problem, kind=GRADED_FAILED)

    def _measure(self, cs: Any, gen: Generated, code: str, worker: str | None) -> None:
        """Measure the workload: the reference alone (its ratio is 1 by definition), any
        other answer interleaved with the reference (see sandbox/measure.py)."""
        from pytest_carbon.results.record import unmeasured_record
        from pytest_carbon.sandbox.isolation import SandboxError
        from pytest_carbon.sandbox.measure import compare, failure, generator, workload_calls
        from pytest_carbon.sandbox.verify import run_workload, workload_result

        task = self.task
        calls = workload_calls(task.workload)
        source = getattr(task.workload, "generate", None)
        generate = generator(source) if source else None
        warnings = list(gen.warnings)
        comparison = None
        graded: dict[str, Any] | None = None
        try:
            if self.model == REFERENCE:
                workload = run_workload(
                    code,
                    task.entry_point,
                    [],
                    {},
                    calls=calls,
                    generate=generate,
                    min_time_s=task.workload.min_time_s,
                    timeout_s=task.timeout_s,
                    meter=cs.meter,
                    key=self.nodeid,
                )
                ratio: dict[str, float | None] | None = {"energy": 1.0, "duration": 1.0}
            else:
                max_time_s = getattr(cs.settings, "carbon_max_time", 10.0)

                def against(reference: str) -> Any:
                    return compare(
                        code,
                        reference,
                        task.entry_point,
                        calls,
                        meter=cs.meter,
                        key=self.nodeid,
                        precision=getattr(cs.settings, "carbon_precision", 0.05),
                        max_time_s=max_time_s,
                        timeout_s=task.timeout_s,
                        tol=max((float(t.get("tol") or 0.0) for t in task.tests), default=0.0),
                        generate=generate,
                    )

                graded_refs = tuple(getattr(task, "references", ()) or ())
                if graded_refs:
                    comparison, graded = self._graded(cs, against, graded_refs)
                else:
                    comparison = against(task.reference)
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
        _store_record(self, self._record(cs, workload, gen, ratio, warnings, comparison, graded))

    # -- graded references ------------------------------------------------------------
    def _graded(
        self, cs: Any, against: Callable[..., Any], refs: tuple[Any, ...]
    ) -> tuple[Any, dict[str, Any]]:
        """Measure the answer interleaved against every graded reference (the full
        ``--carbon-max-time`` each; they were vetted by ``_vet_graded``); the comparison
        with the task's reference is the one with the graded reference of the same code,
        else its own.
        Returns that comparison and the record's graded fields."""
        from pytest_carbon.compare.graded import energy_percentile

        results = [against(r.code) for r in refs]
        main = next(
            (c for r, c in zip(refs, results, strict=True) if r.code == self.task.reference),
            None,
        )
        if main is None:
            main = against(self.task.reference)
        per_ref = [
            {"index": i, "score": r.score, **(c.reference_comparison() or {})}
            for i, (r, c) in enumerate(zip(refs, results, strict=True))
        ]
        percentile = energy_percentile(
            [r.score for r in refs], [c.reference_comparison() for c in results]
        )
        return main, {"energy_percentile": percentile, "graded_references": per_ref}

    # -- helpers ------------------------------------------------------------------------
    def _prompt_fields(
        self,
        gen: Generated,
        *,
        correct: bool | None,
        failed_case: Any,
        ratio: dict[str, float | None] | None = None,
        comparison: Any = None,
        graded: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        fields = {
            "task": self.task.id,
            "model": self.model,
            "strategy": self.strategy.name,
            "sample": self.sample,
            "samples": self.samples,
            "temperature": None if is_builtin(self.model) else self.temperature,
            "correct": correct,
            "failed_case": failed_case,
            "generation": dict(gen.generation),
            "reference_ratio": ratio,
            "reference_comparison": None if comparison is None else comparison.record_json(),
        }
        if graded is not None:  # graded references: the percentile and the paired ratios
            fields.update(graded)
        return fields

    def _record(
        self,
        cs: Any,
        workload: Any,
        gen: Generated,
        ratio: Any,
        warnings: list[str],
        comparison: Any = None,
        graded: dict[str, Any] | None = None,
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
                gen,
                correct=True,
                failed_case=None,
                ratio=ratio,
                comparison=comparison,
                graded=graded,
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
                "sandbox failure": "could not be judged: the sandbox stopped",
                GRADED_FAILED: "cannot be placed on the task's graded references (their "
                "fault, not the answer's: correctness unknown)",
                PLUGIN_ERROR: "met a bug of pytest-carbon (the item fails; the report is "
                "marked incomplete)",
            }.get(exc.kind, exc.kind)
            lines = [f"{exc.kind}: the answer of {self.model!r} {head}:", f"  {exc.reason}"]
            if isinstance(exc.case, dict):
                lines.append("failing case:")
                lines += [f"  {k}: {_clip(repr(v), 500)}" for k, v in exc.case.items()]
            return "\n".join([*lines, "code:", numbered(exc.code)])
        return super().repr_failure(excinfo, style=style)


#: The kind of a WorkloadFailed when a graded reference fails the task's tests.
GRADED_FAILED = "graded reference failed"
_GRADED_VETTED = pytest.StashKey[dict[tuple[str, str], str | None]]()


def _vet_graded(config: pytest.Config, task: Task) -> str | None:
    """Why the task's graded references cannot be used (one fails the task's tests or
    check in the sandbox, judged as an answer would be), or None; once per task and run."""
    from pytest_carbon.sandbox.verify import verify

    cache = config.stash.setdefault(_GRADED_VETTED, {})
    key = (task.path, task.id)
    if key not in cache:
        cache[key] = None
        for i, ref in enumerate(task.references):
            result = verify(
                ref.code,
                task.entry_point,
                [dict(t) for t in task.tests],
                task.check,
                reference=task.reference,
                timeout_s=task.timeout_s,
            )
            if not result.passed:
                cache[key] = (
                    f"graded reference {i} (score {ref.score:g}) of task {task.id!r} fails "
                    f"the task's tests: {result.message}"
                )
                break
    return cache[key]


def _jsonable(value: Any) -> Any:
    if value is None:
        return None
    return json.loads(json.dumps(value, default=repr))


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n... ({len(text) - limit} more chars)"


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def numbered(code: str) -> str:
    from pytest_carbon.sandbox.safe_text import escape_controls

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
