"""Verify generated code against its test cases, and measure its workload, in the sandbox.

The containment itself (limits, namespaces, the child process handle, the final sweep)
is :mod:`pytest_carbon.sandbox.isolation`; the child side of the protocol is
:mod:`pytest_carbon.sandbox.child`, which runs inside the sandbox and never imports the
rest of pytest_carbon.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_carbon.sandbox.child.plain import NotPlain, encode_plain
from pytest_carbon.sandbox.child.worker import entry_point_ok
from pytest_carbon.sandbox.isolation import (
    Child,
    Limits,
    SandboxError,
    isolation,
)
from pytest_carbon.sandbox.judge import Judge, Outcome

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
    if not entry_point_ok(entry_point):
        raise ValueError(
            f"entry_point must be a Python identifier or Class.method, not {entry_point!r}"
        )
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
        try:
            encode_plain([case.get("args", []), case.get("kwargs", {}), case["expect"]])
        except NotPlain as exc:
            raise ValueError(f"test data must be JSON/YAML values: test case {i}: {exc}") from None


def verify(
    code: str,
    entry_point: str,
    tests: list[dict[str, Any]],
    check: str | None,
    *,
    reference: str | None = None,
    timeout_s: float = 20,
    limits: Limits = Limits(),
) -> VerifyResult:
    """Run ``code`` in the sandbox and judge ``entry_point`` on ``tests`` then ``check``.

    A case is ``{"args": [...], "kwargs": {...}, "expect": value, "tol": x}`` (kwargs and
    tol optional). The candidate's process gets the arguments of one call at a time,
    never an expected value; the value it returns comes back as plain data and must
    equal ``expect`` under the one rule (:mod:`pytest_carbon.sandbox.equality`; ``tol``
    is absolute, for floats only). Cases run in order and stop at the first failure.

    ``check`` is then run in a separate sandboxed process with the globals of
    ``reference`` (the task's trusted reference solution, for helper functions the check
    uses) and ``candidate`` (and the entry point's name) bound to a proxy: every call it
    makes is run by the candidate's process and answered with the plain value returned.
    Bare assertions, or a ``def check(candidate)`` that is then called. A failed
    assertion is reported with its line and the values it compared. ``sys.exit`` in the
    code is a failure. Raises SandboxError only when the sandbox itself fails.
    """
    return _verify(code, entry_point, tests, check, reference, timeout_s, limits)[0]


def record_check(
    reference: str,
    entry_point: str,
    check: str,
    *,
    tests: list[dict[str, Any]] | None = None,
    timeout_s: float = 60,
    limits: Limits = Limits(),
) -> tuple[VerifyResult, list[tuple[list[Any], dict[str, Any], Any]]]:
    """Verify ``reference`` against its own ``tests`` and ``check`` in the sandbox, and
    return, besides the verdict, every call the check made with the value the reference
    returned: ``(args, kwargs, value)``, values as plain data (importers record test
    cases from them; nothing of the suite runs on the host)."""
    result, outcome = _verify(
        reference, entry_point, tests or [], check, reference, timeout_s, limits
    )
    return result, outcome.recorded


def _verify(
    code: str,
    entry_point: str,
    tests: list[dict[str, Any]],
    check: str | None,
    reference: str | None,
    timeout_s: float,
    limits: Limits,
) -> tuple[VerifyResult, Outcome]:
    _validate(code, entry_point, tests)
    iso = isolation()
    child = Child(
        {"mode": "verify", "code": code, "entry_point": entry_point}, iso, limits, timeout_s
    )
    checker: Child | None = None
    try:
        if check:
            job = {
                "mode": "check",
                "check": check,
                "context": reference or "",
                "entry_point": entry_point,
            }
            checker = Child(job, iso, limits, timeout_s)
        judge = Judge(
            child,
            entry_point,
            tests,
            checker,
            on_setup_error=lambda e: SandboxError(f"could not contain the code: {e}"),
        )
        outcome = judge.run()
    finally:
        for process in (child, checker):
            if process is not None:
                # Both wait for a message when the verdict is given early: let them exit.
                with contextlib.suppress(SandboxError):
                    process.send({"type": "quit"})
                process.close()
    result = VerifyResult(
        passed=outcome.passed,
        failed_case=outcome.failed_case,
        message=outcome.message,
        stdout=child.output("stdout"),
        stderr=child.output("stderr"),
        timed_out=child.timed_out or (checker is not None and checker.timed_out),
        duration_s=child.duration_s,
        isolation=iso.mode,
        network_cut=iso.network_cut,
        run_id=child.run_id,
        protections=child.protections,
    )
    return result, outcome


# -- workload --------------------------------------------------------------------------
def workload_result(side: Any, iso_mode: str = "none", network_cut: bool = False) -> WorkloadResult:
    """A :class:`WorkloadResult` from the rounds of :mod:`pytest_carbon.sandbox.measure`."""
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
    :class:`~pytest_carbon.sandbox.measure.WorkloadTimeout`) or breaks the protocol.
    """
    from pytest_carbon.sandbox.measure import measure_alone

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
