"""A ``kind: program`` item: compile in the sandbox, judge the stdin/stdout cases, measure
one process per input interleaved with the reference (sandbox/programs.py).

The compile of each side is measured in a window of its own and reported in the record's
``prompt.program.compile`` (never inside the ratio); a language whose toolchain is not on
this machine skips the item with the reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from pytest_carbon.prompts.llm import REFERENCE

if TYPE_CHECKING:
    from pytest_carbon.prompts.collect import PromptItem
    from pytest_carbon.prompts.generate import Generated


class _Verdict:
    """What collect's renderer of an incorrect answer reads (like VerifyResult)."""

    def __init__(self, message: str, failed_case: dict[str, Any]) -> None:
        self.passed = False
        self.message = message
        self.failed_case = failed_case
        self.timed_out = False
        self.stdout = ""
        self.stderr = ""


def skip_reason(item: PromptItem) -> str | None:
    """Why this item cannot run here: its code's or the reference's toolchain is missing."""
    from pytest_carbon.sandbox.languages import toolchain

    for lang in dict.fromkeys(
        (item.task.language_of(item.model), item.task.language_of(REFERENCE))
    ):
        tc = toolchain(lang)
        if tc.missing:
            return f"{tc.language} toolchain unavailable: {tc.missing}"
    return None


def run_program_item(item: PromptItem, gen: Generated, code: str) -> None:
    """Verify, then (with --carbon) measure, ``code``; stores the item's record."""
    from pytest_carbon.prompts.collect import IncorrectAnswer, WorkloadFailed, _store_record
    from pytest_carbon.prompts.generate import _carbon_session
    from pytest_carbon.results.record import unmeasured_record
    from pytest_carbon.sandbox.isolation import SandboxError
    from pytest_carbon.sandbox.measure import failure
    from pytest_carbon.sandbox.programs import (
        ProgramSide,
        ToolchainMissing,
        check_cases,
        compare_programs,
        measure_program_alone,
    )
    from pytest_carbon.sandbox.verify import workload_result

    task = item.task
    cs: Any = _carbon_session(item.config)
    worker = cs.worker_id if cs is not None else None
    enabled = cs is not None and cs.settings.enabled
    meter = cs.meter if enabled else None
    language = task.language_of(item.model)
    stdins = [c.args[0] for c in task.workload.calls]
    max_time_s = float(getattr(cs.settings, "carbon_max_time", 10.0)) if enabled else 0.0
    total_s = max_time_s + 8 * task.timeout_s + 30
    program: dict[str, Any] = {"language": language, "compile": {}}

    def fail(reason: str, correct: bool | None, case: Any, kind: str) -> None:
        fields = item._prompt_fields(gen, correct=correct, failed_case=case)
        fields["program"] = program
        _store_record(
            item,
            unmeasured_record(
                item.nodeid, outcome="failed", prompt=fields, worker=worker, reason=reason
            ),
        )

    def side(name: str, source: str, lang: str) -> ProgramSide:
        return ProgramSide(
            name,
            source,
            lang,
            meter=meter,
            key=item.nodeid,
            round_timeout_s=task.timeout_s,
            total_timeout_s=total_s,
        )

    try:
        cand = side("candidate" if item.model != REFERENCE else "code", code, language)
    except ToolchainMissing as exc:
        pytest.skip(str(exc))
    ref = None
    try:
        built = cand.compile()
        program["compile"]["candidate"] = built.to_json()
        if not built.ok:
            case = {"compile": True, "error": f"{built.status}\n{built.output}".strip()}
            verdict = _Verdict(f"the {language} program does not compile ({built.status})", case)
            fail(f"incorrect answer: {verdict.message}", False, case, "incorrect")
            raise IncorrectAnswer(code, verdict)
        bad = check_cases(cand, [dict(t) for t in task.tests], task.checker, task.timeout_s)
        if bad is not None:
            verdict = _Verdict(f"test case {bad['index']}: {bad['error']}", bad)
            fail(f"incorrect answer: {verdict.message}", False, bad, "incorrect")
            raise IncorrectAnswer(code, verdict)
        if not enabled:
            return
        warnings = list(gen.warnings)
        if item.model == REFERENCE:
            result = measure_program_alone(cand, stdins, min_time_s=task.workload.min_time_s)
            ratio: dict[str, float | None] = {"energy": 1.0, "duration": 1.0}
            comparison = None
        else:
            ref_lang = task.language_of(REFERENCE)
            ref = side("reference", task.reference, ref_lang)
            ref_built = ref.compile()
            program["compile"]["reference"] = ref_built.to_json()
            program["reference_language"] = ref_lang
            if not ref_built.ok:
                raise SandboxError(f"the reference does not compile: {ref_built.output}")
            (energy, duration, stopped), pinned, checked = compare_programs(
                cand,
                ref,
                stdins,
                precision=float(getattr(cs.settings, "carbon_precision", 0.05)),
                max_time_s=max_time_s,
                checker=task.checker,
                timeout_s=task.timeout_s,
            )
            from pytest_carbon.sandbox.programs import ProgramComparison

            comparison = ProgramComparison(
                cand.result,
                ref.result,
                energy,
                duration,
                stopped,
                float(getattr(cs.settings, "carbon_precision", 0.05)),
                pinned,
                checked,
                program["compile"],
            )
            result = cand.result
            warnings += cand.result.notes + ref.result.notes
            ratio = {
                "energy": energy.ratio if energy else None,
                "duration": duration.ratio if duration else None,
            }
    except SandboxError as exc:
        correct, failed, kind = failure(exc)
        fail(f"{kind}: {exc}", correct, failed, kind)
        raise WorkloadFailed(code, str(exc), kind=kind, case=failed) from None
    finally:
        cand.close()
        if ref is not None:
            ref.close()
    workload = workload_result(result, cand.iso.mode, cand.iso.network_cut)
    record = item._record(cs, workload, gen, ratio, warnings, comparison)
    if record.get("prompt") is not None:
        record["prompt"]["program"] = program
    _store_record(item, record)
