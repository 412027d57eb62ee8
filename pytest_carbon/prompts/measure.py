"""Measure a workload in the sandbox, round by round, the parent owning clock and protocol.

One side (the candidate, or the reference) is one sandboxed runner (``_runner.py``,
bench mode), started up front and kept for the whole comparison. A **round** is one
fresh worker process, forked by the runner, that decodes fresh arguments for its ``n``
calls (before the window), then, inside one meter window opened and closed by this
process, loads the code into a new namespace for every call and calls it. The round ends
when the worker and everything it started have exited and been reaped by the runner, so
their CPU time is in the runner's counters when the window closes. Per round:

* energy per call = the window's energy / ``n``; duration per call = the window / ``n``
  (this process's clock, never the child's);
* the child's claims (calls made, seconds it timed) are checked against the window and
  against the CPU time the runner measured for the round;
* a sample of the round's results, chosen after the window closed, is compared with the
  reference's results for the same inputs, as plain JSON, here;
* every reply must be the one asked for: anything else is a protocol violation.

The candidate and the reference are interleaved with
:func:`pytest_carbon.compare.paired.interleave` (AB, BA, ...), both pinned to one CPU
where the machine allows it; the ratio is the median of the per-pair ratios of energy
per call (see ``docs/how-numbers-are-computed.md``).
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_carbon.prompts.isolation import Limits, SandboxError, _Child, isolation

if TYPE_CHECKING:
    from pytest_carbon.compare.paired import PairedRatio
    from pytest_carbon.measure.meter import Measurement, Meter

#: A calibrated round lasts about this long. The estimate sensor reads CPU time in clock
#: ticks (10 ms), so shorter rounds would be mostly quantisation noise.
ROUND_S = 0.1
#: Most calls in one round.
MAX_CALLS = 1_000_000
#: Calls of each round whose results are checked against the reference's.
SAMPLE_CALLS = 3
#: CPU-time slack between the runner's figure and the meter's (clock ticks, rounding).
CPU_SLACK_S = 0.05
#: Window-time slack for the child's claimed seconds.
CLAIM_SLACK_S = 0.005
#: Least CPU one measured call can take: it loads a module, calls a function and encodes
#: the result (about 3 µs for ``def f(x): return x`` on a 2-core VM; this is 6x less). A
#: round that claims its calls for less skipped them.
MIN_CALL_CPU_S = 0.5e-6


class WorkloadTimeout(SandboxError):
    """A round did not finish within the task's timeout."""


class ProtocolViolation(SandboxError):
    """The child said something it was not asked, or claimed what the parent did not see."""


class WorkloadIncorrect(SandboxError):
    """A measured call returned something other than the reference's result."""

    def __init__(self, message: str, case: dict[str, Any]) -> None:
        super().__init__(message)
        self.case = case


@dataclass
class Round:
    """One measured round of one side."""

    calls: int
    measurement: Measurement
    energy_per_call_j: float
    duration_per_call_s: float
    runner_cpu_s: float
    killed: int = 0


@dataclass
class SideResult:
    rounds: list[Round] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    calls_per_round: int = 1
    run_id: str = ""
    #: Processes that outlived their round (killed before the window closed, counted).
    killed: int = 0
    #: CPU seconds the process tree did not show but the precise accounting did.
    unseen_cpu_s: float = 0.0

    def finish(self, name: str, guard: str | None) -> None:
        """Turn what the rounds saw into one note each."""
        if self.killed:
            self.notes.append(
                f"{name}: {self.killed} process(es) outlived their round; they were killed "
                "before the window closed and their CPU time counted"
            )
        if self.unseen_cpu_s > CPU_SLACK_S:
            self.notes.append(
                f"{name}: {self.unseen_cpu_s:.3f} CPU s that the process tree did not show "
                "were counted from the kernel's accounting"
            )
        if guard and guard != "active":
            self.notes.append(
                f"{name}: the SIGCHLD guard is {guard}: children the kernel reaps itself may "
                "be uncounted where the sandbox has no cgroup"
            )


def _cgroup_cpu_s(child: _Child) -> float | None:
    """The run's cgroup CPU time, µs-precise, where the sandbox has a cgroup."""
    path = getattr(child, "cgroup", None)
    if not path:
        return None
    try:
        with open(os.path.join(str(path), "cpu.stat")) as f:
            for line in f:
                name, _, value = line.partition(" ")
                if name == "usage_usec":
                    return int(value) / 1e6
    except (OSError, ValueError):
        return None
    return None


def _self_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _children_of(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        from pytest_carbon.prompts.isolation import _child_of

        found = _child_of(pid)
        return [found] if found else []


def _schedstat_s(pid: int) -> float:
    """CPU time of a (single-threaded) process, ns-precise, from /proc/PID/schedstat."""
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        return 0.0


def same(got: Any, expect: Any, tol: float = 0.0) -> bool:
    """Plain JSON values equal; numbers within rel 1e-9 or the absolute ``tol`` (the
    largest of the task's test tolerances); an int matches its float."""
    if isinstance(expect, bool) or isinstance(got, bool):
        return type(got) is type(expect) and got == expect
    if isinstance(expect, (int, float)) and isinstance(got, (int, float)):
        if isinstance(expect, int) and isinstance(got, int):
            return got == expect
        return math.isclose(got, expect, rel_tol=1e-9, abs_tol=max(tol, 1e-12))
    if isinstance(expect, list) and isinstance(got, list):
        return len(got) == len(expect) and all(
            same(g, e, tol) for g, e in zip(got, expect, strict=True)
        )
    if isinstance(expect, dict) and isinstance(got, dict):
        return got.keys() == expect.keys() and all(same(got[k], expect[k], tol) for k in expect)
    return type(got) is type(expect) and bool(got == expect)


class Side:
    """One sandboxed runner serving rounds (see the module docstring)."""

    def __init__(
        self,
        name: str,
        code: str,
        entry_point: str,
        calls: Sequence[tuple[Sequence[Any], dict[str, Any]]],
        *,
        meter: Meter,
        key: str,
        round_timeout_s: float,
        total_timeout_s: float,
        limits: Limits = Limits(),
    ) -> None:
        self.name = name
        self.meter = meter
        self.key = key
        self.calls = [(list(a), dict(k)) for a, k in calls]
        self.round_timeout_s = round_timeout_s
        self.iso = isolation()
        job = {
            "mode": "bench",
            "code": code,
            "entry_point": entry_point,
            "calls": [{"args": a, "kwargs": k} for a, k in self.calls],
        }
        self.child = _Child(job, self.iso, limits, total_timeout_s)
        self.seq = 0
        self.result = SideResult()
        self.guard: str | None = None
        self.last_calibration: Round | None = None
        try:
            ready = self._expect("ready", None)
        except BaseException:
            self.close()
            raise
        self.max_calls = max(1, min(int(ready.get("max_calls", MAX_CALLS)), MAX_CALLS))

    @property
    def run_id(self) -> str:
        return self.child.run_id

    def pin(self, cpu: int) -> bool:
        """Pin the runner (its workers inherit it) to ``cpu``."""
        try:
            os.sched_setaffinity(self.child.code_pid(), {cpu})
            return True
        except (OSError, AttributeError):
            return False

    # -- protocol ------------------------------------------------------------------
    def _expect(self, kind: str, seq: int | None) -> dict[str, Any]:
        """The one reply asked for. A reply of another kind or sequence number, or one more
        message already waiting behind it, is a protocol violation."""
        child = self.child
        deadline = child.deadline
        child.deadline = min(deadline, time.monotonic() + self.round_timeout_s)
        try:
            msg = child.recv()
        finally:
            child.deadline = deadline
        if msg is None:
            child.close()
            reason = child.stop_reason()
            if child.timed_out:
                raise WorkloadTimeout(
                    f"the {self.name}'s workload timed out after "
                    f"{self.round_timeout_s:g} s (one round; the run's processes were killed)"
                )
            raise SandboxError(f"the {self.name}'s sandbox stopped: {reason}" + child.output_hint())
        if msg.get("type") == "error" and kind != "done":
            child.close()
            raise SandboxError(
                f"the {self.name}'s code failed ({msg.get('stage')}):\n{msg.get('error')}"
            )
        if msg.get("type") != kind or msg.get("seq") != seq or b"\n" in child._ctl_buf:
            child.close()
            raise ProtocolViolation(
                f"protocol violation by the {self.name}: expected {kind!r} (round {seq}), "
                f"got {_clip(msg)}"
                + (" followed by more unasked messages" if b"\n" in child._ctl_buf else "")
            )
        return msg

    def _ask(self, msg: dict[str, Any], reply: str) -> dict[str, Any]:
        self.seq += 1
        self.child.send({**msg, "seq": self.seq})
        return self._expect(reply, self.seq)

    # -- rounds --------------------------------------------------------------------
    def run_round(self, n: int) -> tuple[Round, list[int]]:
        """Prepare a worker for ``n`` calls, then measure it in a window of our own."""
        n = max(1, min(n, self.max_calls))
        prepared = self._ask({"type": "prepare", "n": n}, "prepared")
        self.guard = prepared.get("guard")
        runner = self.child.code_pid()
        workers = tuple(_children_of(runner))
        pids = (runner, *workers)
        cg0 = _cgroup_cpu_s(self.child)
        # The worker is idle, waiting for go: what it used decoding its arguments is
        # before the window, and is taken off the runner's total below.
        before_s = sum(_schedstat_s(p) for p in workers)
        key = f"{self.key}::{self.name}#{self.seq}"
        self.meter.begin(key, pids=pids)
        self_cpu0 = _self_cpu_s()
        t0 = time.perf_counter()
        try:
            done = self._ask({"type": "go"}, "done")
        except BaseException:
            from pytest_carbon.measure.meter import WindowError

            with contextlib.suppress(WindowError):
                self.meter.end(key)
            raise
        window_s = time.perf_counter() - t0
        self_cpu_s = _self_cpu_s() - self_cpu0
        m = self.meter.end(key)
        cg1 = _cgroup_cpu_s(self.child)
        if done.get("protocol") is not None:
            self.close()
            raise ProtocolViolation(
                f"protocol violation by the {self.name}: its round reported "
                f"{done['protocol']!r}, not the runner's report"
            )
        if done.get("error") is not None:
            self.close()
            raise SandboxError(
                f"the {self.name}'s code raised during the workload (call {done.get('index')}):"
                f"\n{done['error']}"
            )
        calls = done.get("calls")
        if calls != n:
            self.close()
            raise ProtocolViolation(
                f"protocol violation by the {self.name}: it claims {calls!r} calls, {n} were asked"
            )
        claimed = done.get("claimed_s")
        if not isinstance(claimed, (int, float)) or claimed > window_s + CLAIM_SLACK_S:
            self.close()
            raise ProtocolViolation(
                f"protocol violation by the {self.name}: it claims {claimed!r} s of calls in a "
                f"window of {window_s:.4f} s (its clock is not to be trusted)"
            )
        runner_cpu_s = max(float(done.get("cpu_s") or 0.0) - before_s, 0.0)
        tree_cpu_s = max(m.cpu_time_s - self_cpu_s, 0.0)  # clock ticks: ±10 ms per field
        cgroup_s = cg1 - cg0 if cg0 is not None and cg1 is not None else None
        # The kernel's µs-precise figure: the cgroup's where there is one, else what the
        # runner got from wait4() for the worker and everything it reaped.
        precise_s = cgroup_s if cgroup_s is not None else runner_cpu_s
        if precise_s + CPU_SLACK_S < tree_cpu_s * 0.9:
            self.close()
            raise ProtocolViolation(
                f"protocol violation by the {self.name}: its round used {precise_s:.3f} CPU s "
                f"by its own account but {tree_cpu_s:.3f} s by /proc"
            )
        if precise_s < n * MIN_CALL_CPU_S:
            self.close()
            raise ProtocolViolation(
                f"protocol violation by the {self.name}: it claims {n} calls in "
                f"{precise_s * 1e6:.0f} µs of CPU, under the {MIN_CALL_CPU_S * 1e6:g} µs that "
                "loading and calling the code takes at least: calls were skipped"
            )
        if precise_s > tree_cpu_s + CPU_SLACK_S:
            self.result.unseen_cpu_s += precise_s - tree_cpu_s
        energy_j = self._energy_j(m, precise_s)
        killed = int(done.get("killed") or 0)
        self.result.killed += killed
        rnd = Round(n, m, energy_j / n, window_s / n, runner_cpu_s, killed)
        picks = random.SystemRandom().sample(range(n), min(SAMPLE_CALLS, n))
        return rnd, picks

    def _energy_j(self, m: Measurement, cpu_s: float) -> float:
        """The round's energy with the estimate's CPU part recomputed from ``cpu_s`` (the
        tree's precise CPU time, this process's own waiting left out). Measured counters
        are kept as the meter read them."""
        # The meter's one charge function, with the precise CPU time (meter.with_cpu_time).
        return self.meter.with_cpu_time(m, cpu_s).total_energy_j

    def sample(self, indices: Sequence[int]) -> dict[int, Any]:
        import json

        reply = self._ask({"type": "sample", "indices": list(indices)}, "sample")
        out: dict[int, Any] = {}
        for k, text in (reply.get("results") or {}).items():
            try:
                out[int(k)] = json.loads(text)
            except (ValueError, TypeError):
                out[int(k)] = {"<unreadable>": str(text)[:200]}
        return out

    def calibrate(self, first_n: int = 1) -> int:
        """Rounds of growing size until one lasts about ROUND_S; returns the size."""
        n = max(1, first_n)
        self.last_calibration = None
        for _ in range(4):
            rnd, _ = self.run_round(n)
            window_s = rnd.duration_per_call_s * n
            per_call_s = max(rnd.duration_per_call_s, 1e-7)
            want = max(1, min(int(ROUND_S / per_call_s), self.max_calls))
            if window_s >= ROUND_S / 3 or n >= self.max_calls:
                self.last_calibration = rnd
                n = want
                break
            n = max(want, n * 2)
        self.result.calls_per_round = n
        return n

    def close(self) -> None:
        if not self.child.closed:
            with contextlib.suppress(OSError, SandboxError):
                self.child.send({"type": "quit"})
            self.child.close()


def _watts_per_core(meter: Meter) -> float | None:
    """The estimate's power per busy core, when the estimate owns the ``cpu`` component."""
    i = meter.owner.get("cpu")
    if i is None:
        return None
    w = getattr(meter.sensors[i], "watts_per_core", None)
    return float(w) if isinstance(w, (int, float)) else None


def _clip(msg: Any) -> str:
    text = repr(msg)
    return text if len(text) <= 200 else text[:200] + "..."


def pin_cpu() -> int | None:
    """The CPU both sides are pinned to: the last one this process may use, or under
    pytest-xdist one per worker (``gwN`` takes the N-th from the end), so that two
    workers' comparisons do not share a CPU."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except (OSError, AttributeError):
        return None
    if not cpus:
        return None
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    index = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0
    return cpus[-1 - index % len(cpus)]


@dataclass
class Comparison:
    """An interleaved candidate/reference measurement."""

    candidate: SideResult
    reference: SideResult
    energy: PairedRatio | None
    duration: PairedRatio | None
    stopped: str
    precision_target: float
    orders: list[str]
    pinned: bool
    checked_calls: int
    elapsed_s: float

    def record_json(self) -> dict[str, Any]:
        """The record's ``prompt.reference_comparison``."""
        return {
            **(self.reference_comparison() or {}),
            "pinned": self.pinned,
            "checked_calls": self.checked_calls,
            "duration": self.duration.to_json() if self.duration else None,
        }

    def reference_comparison(self) -> dict[str, Any] | None:
        if self.energy is None:
            return None
        return {
            **self.energy.to_json(),
            "stopped": self.stopped,
            "precision_target": self.precision_target,
        }


def _check(
    cand: Side,
    picks: list[int],
    truth: dict[int, Any],
    calls: Sequence[tuple[Sequence[Any], dict[str, Any]]],
    tol: float,
) -> int:
    got = cand.sample(picks)
    for j in picks:
        i = j % len(calls)
        if j not in got or not same(got[j], truth[i], tol):
            args, kwargs = calls[i]
            case = {
                "call": j,
                "input": i,
                "args": list(args),
                "kwargs": dict(kwargs),
                "expect": truth[i],
                "got": got.get(j, "<no result>"),
            }
            cand.close()
            raise WorkloadIncorrect(
                f"measured call {j} (input {i}) returned {_clip(case['got'])}, the reference "
                f"returned {_clip(truth[i])}",
                case,
            )
    return len(picks)


def compare(
    candidate_code: str,
    reference_code: str,
    entry_point: str,
    calls: Sequence[tuple[Sequence[Any], dict[str, Any]]],
    *,
    meter: Meter,
    key: str,
    precision: float,
    max_time_s: float,
    timeout_s: float,
    tol: float = 0.0,
    limits: Limits = Limits(),
    clock: Callable[[], float] = time.monotonic,
) -> Comparison:
    """Measure candidate and reference interleaved until the energy ratio's interval is
    within ±``precision`` or ``max_time_s`` (calibration included) has passed."""
    from pytest_carbon.compare.paired import interleave, paired_ratio

    start = clock()
    total_timeout_s = max_time_s + 4 * timeout_s + 10
    ref = Side(
        "reference",
        reference_code,
        entry_point,
        calls,
        meter=meter,
        key=key,
        round_timeout_s=timeout_s,
        total_timeout_s=total_timeout_s,
        limits=limits,
    )
    try:
        cand = Side(
            "candidate",
            candidate_code,
            entry_point,
            calls,
            meter=meter,
            key=key,
            round_timeout_s=timeout_s,
            total_timeout_s=total_timeout_s,
            limits=limits,
        )
    except BaseException:
        ref.close()
        raise
    cand.result.run_id, ref.result.run_id = cand.run_id, ref.run_id
    try:
        cpu = pin_cpu()
        pinned = cpu is not None and ref.pin(cpu) and cand.pin(cpu)
        # The reference's answer for every distinct input: one call each, fresh.
        truth_round, _ = ref.run_round(len(calls))
        truth = ref.sample(range(len(calls)))
        if len(truth) != len(calls):
            raise SandboxError("the reference returned no result for some inputs")
        n_ref = ref.calibrate(max(1, truth_round.calls))
        n_cand = cand.calibrate(1)
        if max(n_ref, n_cand) <= 4 * min(n_ref, n_cand):
            # Equal rounds on both sides: each round's fixed cost (fork, reaping) is then
            # spread over as many calls on both sides and cancels in the ratio.
            n_ref = n_cand = max(1, int(math.sqrt(n_ref * n_cand)))
            ref.result.calls_per_round = cand.result.calls_per_round = n_ref
        checked = 0

        def measure_cand() -> float:
            nonlocal checked
            rnd, picks = cand.run_round(n_cand)
            checked += _check(cand, picks, truth, calls, tol)
            cand.result.rounds.append(rnd)
            return rnd.energy_per_call_j

        def measure_ref() -> float:
            rnd, _ = ref.run_round(n_ref)
            ref.result.rounds.append(rnd)
            return rnd.energy_per_call_j

        left_s = max(max_time_s - (clock() - start), 0.0)
        run = interleave(
            measure_cand, measure_ref, precision=precision, max_time_s=left_s, clock=clock
        )
    except SandboxError as exc:
        exc.run_id = exc.run_id or cand.run_id
        raise
    finally:
        cand.close()
        ref.close()
    cand.result.finish("candidate", cand.guard)
    ref.result.finish("reference", ref.guard)
    durations = None
    with contextlib.suppress(ValueError):
        durations = paired_ratio(
            [r.duration_per_call_s for r in cand.result.rounds],
            [r.duration_per_call_s for r in ref.result.rounds],
        )
    return Comparison(
        candidate=cand.result,
        reference=ref.result,
        energy=run.result,
        duration=durations,
        stopped=run.stopped,
        precision_target=precision,
        orders=list(run.orders),
        pinned=bool(pinned),
        checked_calls=checked,
        elapsed_s=clock() - start,
    )


def measure_alone(
    code: str,
    entry_point: str,
    calls: Sequence[tuple[Sequence[Any], dict[str, Any]]],
    *,
    meter: Meter,
    key: str,
    min_time_s: float,
    timeout_s: float,
    min_rounds: int = 2,
    limits: Limits = Limits(),
) -> SideResult:
    """Measure one side alone (the reference as its own candidate: its ratio is 1 by
    definition): calibrated rounds until ``min_time_s`` of windows and ``min_rounds``."""
    side = Side(
        "code",
        code,
        entry_point,
        calls,
        meter=meter,
        key=key,
        round_timeout_s=timeout_s,
        total_timeout_s=4 * timeout_s + 4 * min_time_s + 10,
        limits=limits,
    )
    side.result.run_id = side.run_id
    try:
        cpu = pin_cpu()
        if cpu is not None:
            side.pin(cpu)
        n = side.calibrate(1)
        total_s = 0.0
        if side.last_calibration is not None:  # long enough to count as a measured round
            side.result.rounds.append(side.last_calibration)
            total_s += side.last_calibration.duration_per_call_s * side.last_calibration.calls
        while len(side.result.rounds) < min_rounds or total_s < min_time_s:
            rnd, _ = side.run_round(n)
            side.result.rounds.append(rnd)
            total_s += rnd.duration_per_call_s * rnd.calls
    except SandboxError as exc:
        exc.run_id = exc.run_id or side.run_id
        raise
    finally:
        side.close()
    side.result.finish("workload", side.guard)
    return side.result


def failure(exc: SandboxError) -> tuple[bool | None, dict[str, Any] | None, str]:
    """``(correct, failed_case, kind)`` of a measurement that failed with ``exc``: an
    incorrect answer (with its case), a protocol violation (correctness unknown), a
    timeout or another failure of code whose tests passed."""
    import json

    if isinstance(exc, WorkloadIncorrect):
        return False, json.loads(json.dumps(exc.case, default=repr)), "incorrect answer"
    if isinstance(exc, ProtocolViolation):
        return None, None, "protocol violation"
    if isinstance(exc, WorkloadTimeout):
        return True, None, "workload timed out"
    return True, None, "workload failed"


def workload_calls(workload: Any) -> list[tuple[list[Any], dict[str, Any]]]:
    """The workload's distinct calls: ``workload.calls`` (objects with ``.args`` and
    ``.kwargs``, or mappings); the spec always gives at least one."""
    calls = workload.calls
    if not calls:
        raise ValueError("a workload without calls")
    out = []
    for c in calls:
        if isinstance(c, dict):
            out.append((list(c.get("args", [])), dict(c.get("kwargs", {}))))
        else:
            out.append((list(c.args), dict(c.kwargs)))
    return out
