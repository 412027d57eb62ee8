"""Programs (``kind: program``): compile in the sandbox, verify on stdin/stdout cases, and
measure one process per input from outside, interleaved with the reference.

One :class:`ProgramSide` is one sandboxed runner (:mod:`.child.program`) holding one
program: started once, it compiles the program (a window of its own: the compile is
measured and reported apart, never inside a ratio), runs the task's test cases, then
serves measured rounds. A round is ``n`` processes of the program, one per input, one
after the other inside one meter window opened and closed here; its CPU time is the run's
cgroup's ``cpu.stat`` (the kernel's figure, out of the program's reach; where the
machine has no cgroup, what the runner reaped with ``wait4``), charged by the meter's
``with_cpu_time``. A run's figure includes its process start (the interpreter's for
Python and JavaScript, the JVM's for Java), as its users pay it; an empty round (the
runner's round trip, no process) is taken off as for functions.

Every measured run's stdout is judged: its SHA-256 after normalisation compared with the
reference's for the same input, or, where the task has a ``checker``, the whole
normalised stdout judged by the checker in a sandboxed process of its own.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_carbon.sandbox.child.program import normalise
from pytest_carbon.sandbox.isolation import Child, Limits, SandboxError, isolation
from pytest_carbon.sandbox.languages import Toolchain, toolchain
from pytest_carbon.sandbox.measure import (
    Inputs,
    ProtocolViolation,
    Round,
    Side,
    SideResult,
    Truth,
    WorkloadCrashed,
    WorkloadIncorrect,
    WorkloadTimeout,
    _count,
    calibrate_baseline,
    calibrate_rounds,
    cgroup_cpu_s,
    duration_ratio,
    interleave_sides,
    pin_cpu,
    rounds_alone,
)

if TYPE_CHECKING:
    from pytest_carbon.measure.meter import Meter

#: Most processes in one measured round of a program.
MAX_RUNS = 64
#: Most processes in one round where whole outputs come back (a task with a checker):
#: their outputs, up to STDOUT_BYTES each, must fit one bounded message.
MAX_FULL_RUNS = 8
#: A program task's output to show, at most (characters).
SHOWN_CHARS = 2000


class ToolchainMissing(SandboxError):
    """The language's compiler or interpreter is not on this machine: the item skips."""


@dataclass
class CompileResult:
    """A compile, measured in its own window. ``method``: how its energy was obtained
    (per component: measured, estimated, attributed); None figures when no meter ran."""

    ok: bool
    status: str
    output: str
    duration_s: float
    cpu_s: float
    energy_j: float | None = None
    method: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "energy_j": self.energy_j,
            "duration_s": self.duration_s,
            "cpu_s": self.cpu_s,
            "method": dict(self.method) or None,
        }


def _need(language: str) -> Toolchain:
    tc = toolchain(language)
    if tc.missing:
        raise ToolchainMissing(f"{tc.language} toolchain unavailable: {tc.missing}")
    return tc


class ProgramSide(Side):
    """One sandboxed program runner (see the module docstring)."""

    def __init__(  # noqa: PLR0913
        self,
        name: str,
        code: str,
        language: str,
        *,
        meter: Meter | None,
        key: str,
        round_timeout_s: float,
        total_timeout_s: float,
        limits: Limits = Limits(),
    ) -> None:
        tc = _need(language)
        self.toolchain = tc
        self.name = name
        self.meter = meter  # type: ignore[assignment]
        self.key = key
        self.round_timeout_s = round_timeout_s
        self.iso = isolation()
        job = {
            "mode": "program",
            "code": code,
            "source": tc.source,
            "compile": list(tc.compile) if tc.compile else None,
            "run": list(tc.run),
            "mounts": list(tc.mounts),
        }
        self.child = Child(job, self.iso, limits, total_timeout_s)
        self.seq = 0
        self.result = SideResult()
        self.guard = None
        self.last_calibration = None
        self.batches = 0
        self.known: set[str] = set()
        self.zygotes = frozenset()
        self.compiled: CompileResult | None = None
        try:
            self._expect("ready", None)
        except BaseException:
            self.close()
            raise

    # -- compile -------------------------------------------------------------------
    def compile(self) -> CompileResult:
        """Compile the program (nothing to do for Python and JavaScript), in a window of
        its own where there is a meter. The result says whether it compiled."""
        tc = self.toolchain
        if tc.compile is None:
            self.compiled = CompileResult(True, "nothing to compile", "", 0.0, 0.0)
            return self.compiled
        key = f"{self.key}::{self.name}#compile"
        meter = self.meter
        cg0 = cgroup_cpu_s(self.child)
        if meter is not None:
            meter.begin(key, pids=(self.child.code_pid(),))
        t0 = time.perf_counter()
        try:
            self.seq += 1
            self.child.send({"type": "compile", "seq": self.seq})
            msg = self._expect("compiled", self.seq)
        except BaseException:
            if meter is not None:
                from pytest_carbon.measure.meter import WindowError

                with contextlib.suppress(WindowError):
                    meter.end(key)
            raise
        duration_s = time.perf_counter() - t0
        m = meter.end(key) if meter is not None else None
        cg1 = cgroup_cpu_s(self.child)
        cpu_s = cg1 - cg0 if cg0 is not None and cg1 is not None else float(msg.get("cpu_s") or 0)
        energy = None
        method: dict[str, str] = {}
        if m is not None and meter is not None:
            energy = meter.with_cpu_time(m, cpu_s).total_energy_j
            method = dict(m.method)
        self.compiled = CompileResult(
            ok=bool(msg.get("ok")),
            status=str(msg.get("status")),
            output=str(msg.get("output") or ""),
            duration_s=duration_s,
            cpu_s=cpu_s,
            energy_j=energy,
            method=method,
        )
        return self.compiled

    # -- runs ----------------------------------------------------------------------
    def runs(self, stdins: Sequence[str], digest: bool) -> list[dict[str, Any]]:
        """Unmeasured runs, one process per input (verification, truth): their reports."""
        keys = [f"v{self.seq}.{j}" for j in range(len(stdins))]
        self._ask(
            {
                "type": "prepare",
                "define": dict(zip(keys, stdins, strict=True)),
                "ids": keys,
                "forget": True,
            },  # fmt: skip
            "prepared",
        )
        done = self._ask({"type": "go", "digest": digest}, "done")
        return self._runs(done)

    def _runs(self, done: dict[str, Any]) -> list[dict[str, Any]]:
        runs = done.get("runs")
        if not isinstance(runs, list) or not all(isinstance(r, dict) for r in runs):
            raise self._fail(ProtocolViolation(f"the {self.name}'s runner sent no runs"))
        return runs

    def run_round(
        self,
        inputs: Sequence[dict[str, Any]],
        per_worker: int | None = None,
        ids: Sequence[int] | None = None,
    ) -> tuple[Round, list[str]]:
        """A measured round: one process per input (``inputs[j]["args"][0]``, the stdin
        text), in one window. Results: per run, the JSON text of its stdout's digest (or
        of its normalised stdout, for a task with a checker: :attr:`full_output`)."""
        n = len(inputs)
        msg: dict[str, Any] = {"type": "prepare", "forget": ids is None}
        if ids is None:
            keys = [f"r{self.seq}.{j}" for j in range(n)]
            msg["define"] = {k: v["args"][0] for k, v in zip(keys, inputs, strict=True)}
        else:
            keys = [str(i) for i in ids]
            new = {
                k: v["args"][0] for k, v in zip(keys, inputs, strict=True) if k not in self.known
            }
            if new:
                msg["define"] = new
                self.known.update(new)
        msg["ids"] = keys
        self._ask(msg, "prepared")
        runner = self.child.code_pid()
        cg0 = cgroup_cpu_s(self.child)
        key = f"{self.key}::{self.name}#{self.seq}"
        meter = self.meter
        meter.begin(key, pids=(runner,))
        t0 = time.perf_counter()
        try:
            done = self._ask({"type": "go", "digest": not self.full_output}, "done")
        except BaseException:
            from pytest_carbon.measure.meter import WindowError

            with contextlib.suppress(WindowError):
                meter.end(key)
            raise
        window_s = time.perf_counter() - t0
        m = meter.end(key)
        cg1 = cgroup_cpu_s(self.child)
        runs = self._runs(done)
        results: list[str] = []
        who = "the code" if self.name == "code" else f"the {self.name}'s program"
        for j, run in enumerate(runs):
            if not run.get("ok"):
                raise self._fail(
                    WorkloadCrashed(
                        f"{who} failed during the workload (run {j}): {run.get('status')}"
                        + _stderr(run)
                    )
                )
            value = run.get("stdout") if self.full_output else run.get("digest")
            if not isinstance(value, str):
                raise self._fail(ProtocolViolation(f"the {self.name}'s run {j} sent no output"))
            results.append(json.dumps(value))
        if len(results) != n:
            raise self._fail(
                ProtocolViolation(
                    f"protocol violation by the {self.name}: {len(results)} runs reported "
                    f"for {n} inputs"
                )
            )
        reported_s = float(done.get("cpu_s") or 0.0)
        cpu_s = cg1 - cg0 if cg0 is not None and cg1 is not None else reported_s
        energy_j = meter.with_cpu_time(m, cpu_s).total_energy_j
        killed = int(done.get("killed") or 0)
        self.result.killed += killed
        rnd = Round(n, m, 0.0, 0.0, reported_s, killed, energy_j, window_s, 1)
        self.net(rnd)
        return rnd, results

    #: Whether measured rounds send whole outputs (a task with a checker) or digests.
    full_output = False


def _stderr(run: dict[str, Any]) -> str:
    from pytest_carbon.sandbox.safe_text import escape_controls

    tail = escape_controls(str(run.get("stderr") or "")).strip()[-1500:]
    return f"\nstderr (tail):\n{tail}" if tail else ""


def _shown(text: str) -> str:
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "..."


class Checker:
    """The task's ``checker`` in a sandboxed process of its own (Python, trusted suite
    code, but never in pytest's process nor in the candidate's)."""

    def __init__(self, source: str, timeout_s: float) -> None:
        self.child = Child({"mode": "checker", "checker": source}, isolation(), Limits(), timeout_s)
        self.seq = 0
        try:
            self.child.expect("ready")
        except SandboxError as exc:
            self.child.close()
            raise SandboxError(f"the task's checker could not be defined: {exc}") from None

    def judge(self, stdin: str, stdout: str) -> str | None:
        """None when the output is accepted, else why not."""
        self.seq += 1
        self.child.send({"type": "judge", "seq": self.seq, "stdin": stdin, "stdout": stdout})
        msg = self.child.expect("verdict")
        return None if msg.get("ok") is True else str(msg.get("error") or "rejected")

    def close(self) -> None:
        with contextlib.suppress(OSError, SandboxError):
            self.child.send({"type": "quit"})
        self.child.close()

    def __enter__(self) -> Checker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_cases(
    side: ProgramSide, tests: Sequence[dict[str, Any]], checker: str | None, timeout_s: float
) -> dict[str, Any] | None:
    """Run the test cases; None when all pass, else the first failing case:
    ``{index, stdin, expect_stdout, got_stdout, error}``."""
    stdins = [str(t["stdin"]) for t in tests]
    runs = side.runs(stdins, digest=False)
    judge = Checker(checker, timeout_s) if checker else None
    try:
        for i, test in enumerate(tests):
            case = {"index": i, "stdin": _shown(stdins[i])}
            if "expect_stdout" in test:
                case["expect_stdout"] = _shown(normalise(str(test["expect_stdout"])))
            if i >= len(runs):
                return {**case, "error": "not run (an earlier case failed)"}
            run = runs[i]
            got = str(run.get("stdout") or "")
            case["got_stdout"] = _shown(got)
            if not run.get("ok"):
                return {**case, "error": f"{run.get('status')}{_stderr(run)}"}
            if "expect_stdout" in test and got != normalise(str(test["expect_stdout"])):
                return {**case, "error": "stdout differs from the expected output"}
            if judge is not None:
                why = judge.judge(stdins[i], got)
                if why is not None:
                    return {**case, "error": f"the checker rejected the output: {why}"}
    finally:
        if judge is not None:
            judge.close()
    return None


class ProgramTruth(Truth):
    """The reference's output digest per input; a candidate run whose digest differs
    printed another output (after normalisation) than the reference for that input."""

    def _compare(self, i: int, got_text: str, want_text: str) -> None:
        stdin = self.inputs.call(i)[0][0]
        case = {"input": i, "stdin": _shown(stdin), "got_sha256": json.loads(got_text),
                "expect_sha256": json.loads(want_text)}  # fmt: skip
        exc = WorkloadIncorrect(
            f"a measured run (input {i}) printed another output than the reference's for the "
            "same stdin (SHA-256 of the normalised stdout differs)",
            case,
        )
        if self.candidate is not None:
            raise self.candidate._fail(exc)
        raise exc


def inputs_of(stdins: Sequence[str]) -> Inputs:
    """The workload's stdin texts as measure's :class:`Inputs` (one text per call)."""
    return Inputs([([text], {}) for text in stdins])


def _capped(inputs: Inputs) -> int:
    return max(1, min(inputs.most, MAX_RUNS))


def _calibrate(side: ProgramSide, inputs: Inputs, check: Any) -> int:
    """Rounds of growing size until one lasts about ROUND_S (at most MAX_RUNS runs)."""
    most = min(_capped(inputs), MAX_FULL_RUNS) if side.full_output else _capped(inputs)
    return calibrate_rounds(side, inputs, check, 1, most)


def checker_check(checker: Checker, inputs: Inputs, name: str) -> Any:
    """A candidate round's judge where the task has a checker: every output judged."""

    def check(side: Side, ids: list[int], results: list[str]) -> None:
        for i, text in zip(ids, results, strict=True):
            stdin = inputs.call(i)[0][0]
            got = json.loads(text)
            why = checker.judge(stdin, got)
            if why is not None:
                case = {"input": i, "stdin": _shown(stdin), "got_stdout": _shown(got)}
                raise side._fail(
                    WorkloadIncorrect(f"a measured run (input {i}) was rejected: {why}", case)
                )

    return check


@dataclass
class ProgramComparison:
    """What collect.py needs of a program's measurement (like measure.Comparison)."""

    candidate: SideResult
    reference: SideResult
    energy: Any
    duration: Any
    stopped: str
    precision_target: float
    pinned: bool
    checked_calls: int
    compile: dict[str, Any]

    def record_json(self) -> dict[str, Any]:
        base = {} if self.energy is None else {
            **self.energy.to_json(), "stopped": self.stopped,
            "precision_target": self.precision_target,
        }  # fmt: skip
        return {
            **base,
            "pinned": self.pinned,
            "checked_calls": self.checked_calls,
            "duration": self.duration.to_json() if self.duration else None,
        }


#: (energy ratio, duration ratio, why measuring stopped) of :func:`compare_programs`.
PairedRatioPair = tuple[Any, Any, str]


def compare_programs(
    cand: ProgramSide,
    ref: ProgramSide,
    stdins: Sequence[str],
    *,
    precision: float,
    max_time_s: float,
    checker: str | None = None,
    timeout_s: float = 30.0,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[PairedRatioPair, bool, int]:
    """Measure two compiled program sides interleaved (AB, BA, ...) until the energy
    ratio's interval is within ±``precision`` or ``max_time_s`` has passed. Every
    candidate run's output is judged (by the reference's digest, or the checker).
    Returns ((energy, duration, stopped), pinned, checked runs)."""
    start = clock()
    inputs = inputs_of(stdins)
    truth = ProgramTruth(inputs, 0.0)
    judge = Checker(checker, timeout_s) if checker else None
    cand.full_output = ref.full_output = judge is not None
    try:
        cpu = pin_cpu()
        pinned = cpu is not None and ref.pin(cpu) and cand.pin(cpu)
        calibrate_baseline([cand, ref])
        check_cand = checker_check(judge, inputs, "candidate") if judge else truth.check
        learn = _count if judge else truth.learn
        n_ref = _calibrate(ref, inputs, learn)
        n_cand = _calibrate(cand, inputs, check_cand)
        if judge is None:
            truth.settle(ref)
        run = interleave_sides(
            cand,
            ref,
            inputs,
            (n_cand, n_ref),
            (check_cand, learn),
            precision=precision,
            max_time_s=max(max_time_s - (clock() - start), 0.0),
            clock=clock,
        )
        if judge is None:
            truth.settle(ref)
    finally:
        if judge is not None:
            judge.close()
    cand.result.finish("candidate", None)
    ref.result.finish("reference", None)
    duration = duration_ratio(cand.result, ref.result)
    return (run.result, duration, run.stopped), bool(pinned), cand.result.checked_calls


def measure_program_alone(
    side: ProgramSide, stdins: Sequence[str], *, min_time_s: float, min_rounds: int = 2
) -> SideResult:
    """The reference as its own candidate (ratio 1 by definition): calibrated rounds until
    ``min_time_s`` of windows and ``min_rounds``."""
    inputs = inputs_of(stdins)
    rounds_alone(
        side,
        inputs,
        lambda: _calibrate(side, inputs, _count),
        min_time_s=min_time_s,
        min_rounds=min_rounds,
    )
    side.result.finish("workload", None)
    return side.result


__all__ = [
    "Checker",
    "CompileResult",
    "ProgramComparison",
    "ProgramSide",
    "ToolchainMissing",
    "WorkloadTimeout",
    "check_cases",
    "compare_programs",
    "measure_program_alone",
]
