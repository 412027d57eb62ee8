"""Verify generated code against its test cases, and measure its workload, in the sandbox.

The containment itself (limits, namespaces, the child process handle, the final sweep)
is :mod:`pytest_carbon.prompts.isolation`; the child side of the protocol is
``_runner.py``, which runs inside the sandbox and never imports this package.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_carbon.prompts.isolation import (
    Limits,
    SandboxError,
    _Child,
    isolation,
)
from pytest_carbon.prompts.judge import Judge

if TYPE_CHECKING:
    from pytest_carbon.measure.meter import Measurement, Meter


@dataclass(frozen=True)
class VerifyResult:
    """The verdict on generated code.

    ``failed_case``: for a test case ``{"index", "args", "kwargs", "expect", "got",
    "error"}`` (``got`` is the repr of the returned value, or None when it raised or was
    killed; ``error`` the traceback's tail or the reason it was stopped); for ``check``
    ``{"check": True, "error"}``; when the code could not even be defined
    ``{"define": True, "error"}``. ``message``: one human-readable paragraph ("" when
    passed). ``stdout`` / ``stderr``: capped at ``Limits.output_bytes`` each.
    ``isolation``: ``namespaces``, ``uid`` or ``none`` (see the module docstring);
    ``network_cut``: whether the code had no network at all. ``run_id``: the run's marker.
    ``protections``: the sandbox protections active for the run (``pytest-carbon
    sandbox`` lists them all, with the reasons for the missing ones).
    """

    passed: bool
    failed_case: dict[str, Any] | None
    message: str
    stdout: str
    stderr: str
    timed_out: bool
    duration_s: float
    isolation: str = "none"
    network_cut: bool = False
    run_id: str = ""
    protections: tuple[str, ...] = ()


@dataclass(frozen=True)
class WorkloadResult:
    """A measured workload.

    ``measurement``: the measured rounds' windows combined (the workers' start, input
    decoding and calibration are outside them). ``rounds``: calls made in the windows
    (results that came back). ``per_call_duration_s`` / ``per_call_energy_j``: one sample
    per round of ``batch_size`` calls, the round's window time and energy, less an empty
    round's per worker, divided by its calls (no sensor resolves single calls). Every call
    loads the code afresh: module-level work is part of each call's cost.
    """

    measurement: Measurement
    rounds: int
    per_call_duration_s: list[float]
    per_call_energy_j: list[float]
    batch_size: int = 1
    isolation: str = "none"
    network_cut: bool = False
    run_id: str = ""
    protections: tuple[str, ...] = ()


# -- verify ----------------------------------------------------------------------------
def _validate(code: str, entry_point: str, tests: list[dict[str, Any]]) -> None:
    if not isinstance(code, str):
        raise TypeError(f"code must be a str, not {type(code).__name__}")
    if not isinstance(entry_point, str) or not entry_point.isidentifier():
        raise ValueError(f"entry_point must be a Python identifier, not {entry_point!r}")
    for i, case in enumerate(tests):
        if not isinstance(case, dict):
            raise ValueError(f"test case {i} must be a mapping, not {type(case).__name__}")
        unknown = set(case) - {"args", "kwargs", "expect", "tol"}
        if unknown:
            raise ValueError(f"test case {i}: unknown keys {sorted(unknown)}")
        if "expect" not in case:
            raise ValueError(f"test case {i} has no 'expect'")
        if not isinstance(case.get("args", []), list):
            raise ValueError(f"test case {i}: 'args' must be a list")
        if not isinstance(case.get("kwargs", {}), dict):
            raise ValueError(f"test case {i}: 'kwargs' must be a mapping")


def _call_text(entry_point: str, case: dict[str, Any]) -> str:
    parts = [repr(a) for a in case.get("args", [])]
    parts += [f"{k}={v!r}" for k, v in case.get("kwargs", {}).items()]
    text = f"{entry_point}({', '.join(parts)})"
    return text if len(text) <= 300 else text[:300] + "...)"


def _last_line(error: str) -> str:
    lines = [ln for ln in error.strip().splitlines() if ln.strip()]
    return lines[-1].strip() if lines else error


def verify(
    code: str,
    entry_point: str,
    tests: list[dict[str, Any]],
    check: str | None,
    *,
    timeout_s: float = 20,
    limits: Limits = Limits(),
) -> VerifyResult:
    """Run ``code`` in the sandbox and check ``entry_point`` against ``tests`` then ``check``.

    A case is ``{"args": [...], "kwargs": {...}, "expect": value, "tol": x}`` (kwargs and
    tol optional). The returned value, with tuples turned into lists, must equal
    ``expect`` (``==``); floats, also inside lists and dicts, match when
    ``math.isclose(got, expect, rel_tol=1e-9, abs_tol=tol)`` (``tol`` defaults to 0; two
    NaNs match). Cases run in order and stop at the first failure. ``check`` is then run
    with ``candidate`` bound to the entry point: bare assertions, or a ``def
    check(candidate)`` that is then called. ``sys.exit`` in the code is a failure.
    Raises SandboxError only when the sandbox itself fails.
    """
    _validate(code, entry_point, tests)
    iso = isolation()
    job = {
        "mode": "verify",
        "code": code,
        "entry_point": entry_point,
        "tests": tests,
        "check": check,
    }
    child = _Child(job, iso, limits, timeout_s)
    current: int | str | None = None
    result: dict[str, Any] | None = None
    judge = Judge(tests)
    try:
        while True:
            msg = child.recv()
            if msg is None:
                break
            kind = msg.get("type")
            if kind == "setup_error":
                raise SandboxError(f"could not contain the code: {msg.get('error')}")
            if kind == "case":
                current = msg.get("index")
            elif kind == "got":  # judged here, on the JSON that crossed the pipe
                result = judge.got(msg)
                if result is not None:
                    with contextlib.suppress(SandboxError):
                        child.send({"type": "stop"})  # so it exits now, not after a grace
                    break
                with contextlib.suppress(SandboxError):  # gone: the next recv says why
                    child.send({"type": "next"})
            elif kind == "result":
                result = judge.result(msg)
                break
    finally:
        child.close()

    def make(passed: bool, failed: dict[str, Any] | None, message: str) -> VerifyResult:
        return VerifyResult(
            passed=passed,
            failed_case=failed,
            message=message,
            stdout=child.output("stdout"),
            stderr=child.output("stderr"),
            timed_out=child.timed_out,
            duration_s=child.duration_s,
            isolation=iso.mode,
            network_cut=iso.network_cut,
            run_id=child.run_id,
            protections=child.protections,
        )

    def case_dict(i: int, got: str | None, error: str | None) -> dict[str, Any]:
        case = tests[i]
        return {
            "index": i,
            "args": list(case.get("args", [])),
            "kwargs": dict(case.get("kwargs", {})),
            "expect": case["expect"],
            "got": got,
            "error": error,
        }

    if result is not None and result.get("passed") is True:
        return make(True, None, "")
    if result is None:
        reason = child.stop_reason()
        if isinstance(current, int):
            where = f"during case {current}, {_call_text(entry_point, tests[current])}"
            return make(False, case_dict(current, None, reason), f"{reason} {where}.")
        if current == "check":
            return make(False, {"check": True, "error": reason}, f"{reason} during the check.")
        return make(False, {"define": True, "error": reason}, f"{reason} while defining the code.")
    stage, error = result.get("stage"), result.get("error")
    exit_note = (
        " A candidate must return its answer; calling sys.exit is a failure."
        if result.get("exit")
        else ""
    )
    if stage == "protocol":
        return make(False, {"protocol": True, "error": error}, f"Protocol violation: {error}.")
    if stage == "define":
        return make(
            False,
            {"define": True, "error": error},
            f"The code could not be defined: {_last_line(error or '')}",
        )
    if stage == "check":
        return make(
            False,
            {"check": True, "error": error},
            f"The check failed: {_last_line(error or '')}.{exit_note}",
        )
    i = int(result["index"])
    call = _call_text(entry_point, tests[i])
    if error is not None:
        return make(
            False,
            case_dict(i, None, error),
            f"Case {i}: {call} raised {_last_line(error)}.{exit_note}",
        )
    got = result.get("got")
    return make(
        False,
        case_dict(i, got, None),
        f"Case {i}: {call} returned {got}, expected {tests[i]['expect']!r}.",
    )


# -- workload --------------------------------------------------------------------------
def workload_result(side: Any, iso_mode: str = "none", network_cut: bool = False) -> WorkloadResult:
    """A :class:`WorkloadResult` from the rounds of :mod:`pytest_carbon.prompts.measure`."""
    from pytest_carbon.measure.meter import combine

    rounds = side.rounds
    if not rounds:
        raise SandboxError("the workload was measured in no round")
    return WorkloadResult(
        measurement=combine([r.measurement for r in rounds]),
        rounds=sum(r.calls for r in rounds),
        per_call_duration_s=[r.duration_per_call_s for r in rounds],
        per_call_energy_j=[r.energy_per_call_j for r in rounds],
        batch_size=side.calls_per_round,
        isolation=iso_mode,
        network_cut=network_cut,
        run_id=getattr(side, "run_id", ""),
    )


def run_workload(
    code: str,
    entry_point: str,
    args: list[Any],
    kwargs: dict[str, Any],
    *,
    min_time_s: float,
    timeout_s: float,
    meter: Meter,
    key: str,
    limits: Limits = Limits(),
    calls: list[tuple[list[Any], dict[str, Any]]] | None = None,
    generate: Callable[[int], tuple[list[Any], dict[str, Any]]] | None = None,
) -> WorkloadResult:
    """Measure ``entry_point`` alone, in calibrated rounds, for at least ``min_time_s``.

    A round is one or more fresh worker processes, one after the other, each loading the
    code anew for every call and getting distinct inputs, never one twice (``calls``, else
    ``(args, kwargs)``; or fresh inputs from ``generate(seed)``, run here); the meter's
    window (opened and closed here) covers the round's calls, not the workers' start nor
    the decoding of their inputs, and an empty round's cost is taken off. ``per_call_*``
    has one value per round (the round's net figure divided by the results that came
    back). Raises SandboxError when the code raises, times out (then
    :class:`~pytest_carbon.prompts.measure.WorkloadTimeout`) or breaks the protocol.
    """
    from pytest_carbon.prompts.measure import measure_alone

    if min_time_s < 0:
        raise ValueError(f"min_time_s must be >= 0, not {min_time_s}")
    _validate(code, entry_point, [])
    iso = isolation()
    side = measure_alone(
        code,
        entry_point,
        calls or [(list(args), dict(kwargs))],
        generate=generate,
        meter=meter,
        key=key,
        min_time_s=min_time_s,
        timeout_s=timeout_s,
        limits=limits,
    )
    return workload_result(side, iso.mode, iso.network_cut)
