"""Measure a workload in the sandbox, round by round, from outside the candidate's process.

One side (the candidate, or the reference) is one sandboxed runner (:mod:`.child`,
bench mode), started up front and kept for the whole comparison. The runner never runs
the code: a **round** is a new interpreter (``python -c``, started by posix_spawn, so it
inherits none of the runner's memory), given only the round's inputs, which are distinct
(an input is never served twice in one process). Before each round the runner kills
what the last one left, wipes the writable tmpfs mounts and removes SysV IPC objects.
The worker starts and decodes its inputs before the window; inside one meter window
opened and closed by this process, it loads the code into a new namespace for every call,
calls it and encodes the result. The round ends when the worker and everything it started
have exited and been reaped, so their CPU time is in the run's counters when the window
closes. Per round:

* the number of calls is the number of results that came back, every one of which is
  compared, here, with the reference's result for the same input: nothing the child
  says about itself (how many calls, how long) is read;
* energy and duration come from this process's clock and the run's cgroup ``cpu.stat``
  (else what the runner reaped), less a calibrated empty round (a worker started the
  same way that makes no call), so that the round's fixed cost is not charged to calls;
* every reply must be the one asked for: anything else is a protocol violation.

The candidate and the reference are interleaved with
:func:`pytest_carbon.compare.paired.interleave` (AB, BA, ...), both pinned to one CPU
where the machine allows it, and a pair's two rounds get the same inputs; the ratio is
the median of the per-pair ratios of energy per call (see
``docs/how-numbers-are-computed.md``).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_carbon.sandbox.isolation import Child, Limits, SandboxError, isolation
from pytest_carbon.sandbox.safe_text import escape_controls
from pytest_carbon.sandbox.wire_limits import WireLimitError, decode_message

if TYPE_CHECKING:
    from pytest_carbon.compare.paired import Interleaved, PairedRatio
    from pytest_carbon.measure.meter import Measurement, Meter

#: A calibrated round lasts about this long, where the workload has inputs enough.
ROUND_S = 0.1
#: Most calls in one round.
MAX_CALLS = 100_000
#: Most worker processes in one round (run one after the other inside its window), where
#: the workload has too few distinct inputs for one worker to last ROUND_S.
MAX_WORKERS = 16
#: Largest total of one round's inputs, in JSON bytes.
ROUND_INPUT_BYTES = 32 * 1024**2
#: Empty rounds per side that calibrate the fixed cost of a round.
BASELINE_ROUNDS = 3
#: A round's energy net of the empty round is at least this share of its energy (so a
#: ratio never divides by zero or a negative figure when calls are lost in the noise).
NET_FLOOR = 0.02
#: CPU-time slack between the runner's figure and the meter's (clock ticks, rounding).
CPU_SLACK_S = 0.05
#: One clock tick of /proc's CPU times (USER_HZ = 100 on Linux).
TICK_S = 0.01
#: Inputs of a ``workload.generate`` task kept as its ``calls`` (seeds 0 to 5).
GENERATED_CALLS = 6


class WorkloadTimeout(SandboxError):
    """A round did not finish within the task's timeout."""


class ProtocolViolation(SandboxError):
    """The child said something it was not asked, or claimed what the parent did not see."""


class WorkloadCrashed(SandboxError):
    """The code raised, or its round ended without results, during the workload."""


class WorkloadIncorrect(SandboxError):
    """A measured call returned something other than the reference's result."""

    def __init__(self, message: str, case: dict[str, Any]) -> None:
        super().__init__(message)
        self.case = case


@dataclass
class Round:
    """One measured round of one side. ``calls``: the results that came back (all
    checked); ``energy_j`` / ``window_s``: the round's raw figures; the per-call figures
    are net of the side's empty round (see :meth:`Side.net`)."""

    calls: int
    measurement: Measurement
    energy_per_call_j: float
    duration_per_call_s: float
    runner_cpu_s: float
    killed: int = 0
    energy_j: float = 0.0
    window_s: float = 0.0
    workers: int = 1


@dataclass(frozen=True)
class Baseline:
    """An empty round's energy and window: what a round costs without any call."""

    energy_j: float = 0.0
    window_s: float = 0.0
    rounds: int = 0


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
    #: Results that came back and were compared (calibration rounds included).
    checked_calls: int = 0
    baseline: Baseline = field(default_factory=Baseline)

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


def cgroup_cpu_s(child: Child) -> float | None:
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
        from pytest_carbon.sandbox.isolation import child_of

        found = child_of(pid)
        return [found] if found else []


def _schedstat_s(pid: int) -> float:
    """CPU time of a (single-threaded) process, ns-precise, from /proc/PID/schedstat."""
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        return 0.0


def same(got: Any, expect: Any, tol: float = 0.0) -> bool:
    """Equal under the one rule (:func:`pytest_carbon.sandbox.equality.equal`); ``tol``:
    the largest of the task's test tolerances, absolute, for floats only."""
    from pytest_carbon.sandbox.equality import equal

    return equal(got, expect, tol=tol or None)


class Inputs:
    """The workload's inputs, by id, and which ones a round's workers get.

    ``calls``: the task's distinct calls (ids 0..m-1); a worker gets at most m of them,
    all different, so no process sees an input twice (a workload with one input runs one
    call per process), and a round of more calls has several workers, one after the
    other (at most :data:`MAX_WORKERS`). ``generate``: where the task gives one,
    ``seed -> (args, kwargs)``, run here (trusted suite code, in pytest's process): then
    one worker gets as many fresh inputs as the round's size asks (ids are seeds)."""

    def __init__(
        self,
        calls: Sequence[tuple[Sequence[Any], dict[str, Any]]],
        generate: Callable[[int], tuple[Sequence[Any], dict[str, Any]]] | None = None,
    ) -> None:
        self._calls = [(list(a), dict(k)) for a, k in calls]
        if not self._calls and generate is None:
            raise ValueError("a workload without inputs")
        self.generate = generate
        self._made: dict[int, tuple[list[Any], dict[str, Any]]] = {}
        self._largest = max((len(json.dumps([a, k])) for a, k in self._calls), default=1)

    @property
    def distinct(self) -> int:
        """Most inputs one worker can get."""
        return MAX_CALLS if self.generate is not None else len(self._calls)

    @property
    def most(self) -> int:
        """Most calls one round can make."""
        if self.generate is not None:
            return MAX_CALLS
        by_size = max(1, ROUND_INPUT_BYTES // self._largest)
        return max(1, min(self.distinct * MAX_WORKERS, by_size, MAX_CALLS))

    def call(self, i: int) -> tuple[list[Any], dict[str, Any]]:
        if self.generate is None:
            return self._calls[i]
        if i not in self._made:
            try:
                args, kwargs = self.generate(i)
            except Exception as exc:
                raise SandboxError(f"the workload's generate({i}) failed: {exc}") from None
            self._made[i] = (list(args), dict(kwargs))
        return self._made[i]

    def all_fixed(self) -> list[int]:
        return list(range(len(self._calls))) if self.generate is None else []

    def batch(self, k: int, n: int) -> list[int]:
        """The ids of the k-th round of ``n`` calls (both rounds of a pair ask the same k
        and n, and so get the same inputs)."""
        n = max(1, min(n, self.most))
        if self.generate is None:
            m = len(self._calls)
            return [(k * n + j) % m for j in range(n)]
        return [k * n + j for j in range(n)]

    def split(self, ids: list[int]) -> list[list[int]]:
        """``ids`` in consecutive runs of at most :attr:`distinct`, one per worker: the
        ids of one run are all different."""
        m = self.distinct
        return [ids[i : i + m] for i in range(0, len(ids), m)] or [[]]

    def keep(self, ids: list[int]) -> list[int] | None:
        """``ids`` where the runner may keep the inputs (fixed calls); None for generated
        inputs, which are sent for one round only."""
        return ids if self.generate is None else None

    def payload(self, ids: Sequence[int]) -> list[dict[str, Any]]:
        out = []
        for i in ids:
            args, kwargs = self.call(i)
            out.append({"args": args, "kwargs": kwargs})
        return out

    def forget(self) -> None:
        """Drop generated inputs (they can be made again from their seed)."""
        self._made.clear()


class Side:
    """One sandboxed runner serving rounds (see the module docstring)."""

    def __init__(
        self,
        name: str,
        code: str,
        entry_point: str,
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
        self.round_timeout_s = round_timeout_s
        self.iso = isolation()
        job = {"mode": "bench", "code": code, "entry_point": entry_point}
        self.child = Child(job, self.iso, limits, total_timeout_s)
        self.seq = 0
        self.result = SideResult()
        self.guard: str | None = None
        self.last_calibration: Round | None = None
        self.batches = 0
        self.known: set[str] = set()  # ids of the inputs the runner keeps
        try:
            self._expect("ready", None)
        except BaseException:
            self.close()
            raise
        # The runner's only child so far: the zygote, idle during every window.
        self.zygotes = frozenset(_children_of(self.child.code_pid()))

    @property
    def run_id(self) -> str:
        return self.child.run_id

    @property
    def baseline(self) -> Baseline:
        return self.result.baseline

    def pin(self, cpu: int) -> bool:
        """Pin the runner and its zygote (the workers inherit the zygote's) to ``cpu``."""
        try:
            for pid in (self.child.code_pid(), *self.zygotes):
                os.sched_setaffinity(pid, {cpu})
            return True
        except (OSError, AttributeError):
            return False

    # -- protocol ------------------------------------------------------------------
    def _fail(self, exc: SandboxError) -> SandboxError:
        """Close the side and return ``exc``, marked with the side it comes from."""
        self.close()
        exc.side = self.name  # type: ignore[attr-defined]
        exc.run_id = exc.run_id or self.run_id
        return exc

    def _expect(self, kind: str, seq: int | None) -> dict[str, Any]:
        """The one reply asked for. A reply of another kind or sequence number, or one more
        message already waiting behind it, is a protocol violation."""
        child = self.child
        msg = child.recv(within=self.round_timeout_s)
        if msg is None:
            child.close()
            reason = child.stop_reason()
            if child.timed_out:
                raise self._fail(
                    WorkloadTimeout(
                        f"the {self.name}'s workload timed out after "
                        f"{self.round_timeout_s:g} s (one round; the run's processes were "
                        "killed)"
                    )
                )
            raise self._fail(
                WorkloadCrashed(
                    f"the {self.name}'s sandbox stopped: {reason}" + child.output_hint()
                )
            )
        if msg.get("type") == "error" and kind != "done":
            raise self._fail(
                WorkloadCrashed(
                    f"the {self.name}'s code failed ({msg.get('stage')}):\n{msg.get('error')}"
                )
            )
        if msg.get("type") != kind or msg.get("seq") != seq or child.message_waiting():
            raise self._fail(
                ProtocolViolation(
                    f"protocol violation by the {self.name}: expected {kind!r} (round {seq}), "
                    f"got {_clip(msg)}"
                    + (" followed by more unasked messages" if child.message_waiting() else "")
                )
            )
        return msg

    def _ask(self, msg: dict[str, Any], reply: str) -> dict[str, Any]:
        self.seq += 1
        self.child.send({**msg, "seq": self.seq})
        return self._expect(reply, self.seq)

    # -- rounds --------------------------------------------------------------------
    def run_round(
        self,
        inputs: Sequence[dict[str, Any]],
        per_worker: int | None = None,
        ids: Sequence[int] | None = None,
    ) -> tuple[Round, list[str]]:
        """Fresh workers for ``inputs`` (``per_worker`` each, distinct; one worker when
        None; no input: an empty round), run one after the other in a window of our own.
        ``ids``: the inputs' ids, where the runner may keep an input it was given once
        (the workload's fixed calls). Returns the round and its results (plain JSON text,
        one per input, in order): the round's calls are the results that came back."""
        n = len(inputs)
        step = per_worker or max(n, 1)
        msg: dict[str, Any] = {"type": "prepare"}
        if ids is None:  # one-off inputs: defined for this round only
            keys = [f"r{self.seq}.{j}" for j in range(n)]
            msg["define"] = dict(zip(keys, inputs, strict=True))
            msg["forget"] = True
        else:
            keys = [str(i) for i in ids]
            new = {k: v for k, v in zip(keys, inputs, strict=True) if k not in self.known}
            if new:
                msg["define"] = new
                self.known.update(new)
        msg["batches"] = [keys[i : i + step] for i in range(0, n, step)] or [[]]
        prepared = self._ask(msg, "prepared")
        self.guard = prepared.get("guard")
        runner = self.child.code_pid()
        workers = tuple(p for p in _children_of(runner) if p not in self.zygotes)
        pids = (runner, *workers)
        cg0 = cgroup_cpu_s(self.child)
        # The worker is idle, waiting for go: what it used starting and decoding its
        # inputs is before the window, and is taken off the runner's total below.
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
        cg1 = cgroup_cpu_s(self.child)
        results = self._results(done, len(msg["batches"]))
        if len(results) != n:
            raise self._fail(
                ProtocolViolation(
                    f"protocol violation by the {self.name}: {len(results)} results came "
                    f"back for {n} inputs"
                )
            )
        runner_cpu_s = max(float(done.get("cpu_s") or 0.0) - before_s, 0.0)
        tree_cpu_s = max(m.cpu_time_s - self_cpu_s, 0.0)  # clock ticks: ±10 ms per field
        cgroup_s = cg1 - cg0 if cg0 is not None and cg1 is not None else None
        # The kernel's µs-precise figure: the cgroup's where there is one, else what the
        # runner got from wait4() for the worker and everything it reaped.
        precise_s = cgroup_s if cgroup_s is not None else runner_cpu_s
        # The cross-check only where the precise figure is the runner's (no cgroup): the
        # cgroup's is the kernel's own and out of the code's reach, while /proc's is in
        # clock ticks, sampled per process (each of the round's short-lived processes,
        # workers and their intermediates, can be charged up to a tick it did not use: an
        # honest round on a busy machine read 0.020 s by the cgroup and 0.082 s by /proc).
        ticks_s = TICK_S * (2 * len(msg["batches"]) + 2)
        if cgroup_s is None and precise_s + CPU_SLACK_S + ticks_s < tree_cpu_s * 0.9:
            raise self._fail(
                ProtocolViolation(
                    f"protocol violation by the {self.name}: its round used {precise_s:.3f} "
                    f"CPU s by the runner's account but {tree_cpu_s:.3f} s by /proc"
                )
            )
        if precise_s > tree_cpu_s + CPU_SLACK_S:
            self.result.unseen_cpu_s += precise_s - tree_cpu_s
        energy_j = self._energy_j(m, precise_s)
        killed = int(done.get("killed") or 0)
        self.result.killed += killed
        rnd = Round(n, m, 0.0, 0.0, runner_cpu_s, killed, energy_j, window_s, len(msg["batches"]))
        self.net(rnd)
        return rnd, results

    def _results(self, done: dict[str, Any], workers: int) -> list[str]:
        """Every result of the round, read here from the workers' own report lines (as the
        runner relayed them, unparsed): a worker's report is ``ran`` with a list of JSON
        texts, or ``error``; anything else is a protocol violation."""
        reports, statuses = done.get("reports"), done.get("statuses")
        if not isinstance(reports, list) or not isinstance(statuses, list):
            raise self._fail(ProtocolViolation(f"the {self.name}'s runner sent no reports"))
        who = "the code" if self.name == "code" else f"the {self.name}'s code"
        results: list[str] = []
        for k in range(workers):
            line = reports[k] if k < len(reports) else ""
            status = statuses[k] if k < len(statuses) else None
            if not line:
                raise self._fail(
                    WorkloadCrashed(
                        f"{who} failed during the workload: a worker ended without "
                        f"reporting ({_wait_status(status)})" + self.child.output_hint()
                    )
                )
            try:  # bounded in size and depth: the line is the worker's own text
                report = decode_message(line.encode("utf-8", "surrogatepass"))
            except (ValueError, UnicodeError):
                report = None
            got = report.get("results") if isinstance(report, dict) else None
            if isinstance(report, dict) and report.get("type") == "error":
                where = report.get("index")
                raise self._fail(
                    WorkloadCrashed(
                        f"{who} failed during the workload"
                        + (f" (call {len(results) + where})" if isinstance(where, int) else "")
                        + f":\n{escape_controls(str(report.get('error')))}"
                    )
                )
            if (
                not isinstance(report, dict)
                or report.get("type") != "ran"
                or set(report) != {"type", "results"}
                or not isinstance(got, list)
                or not all(type(r) is str for r in got)
            ):
                raise self._fail(
                    ProtocolViolation(
                        f"protocol violation by the {self.name}: a worker reported "
                        f"{_clip(line)}, not its results"
                    )
                )
            results += got
        return results

    def net(self, rnd: Round) -> None:
        """Set the round's per-call figures, net of one empty round per worker."""
        if rnd.calls == 0:
            return
        b = self.result.baseline
        energy = max(rnd.energy_j - b.energy_j * rnd.workers, rnd.energy_j * NET_FLOOR)
        window = max(rnd.window_s - b.window_s * rnd.workers, rnd.window_s * NET_FLOOR)
        rnd.energy_per_call_j = energy / rnd.calls
        rnd.duration_per_call_s = window / rnd.calls

    def _energy_j(self, m: Measurement, cpu_s: float) -> float:
        """The round's energy with the estimate's CPU part recomputed from ``cpu_s`` (the
        tree's precise CPU time, this process's own waiting left out). Measured counters
        are kept as the meter read them."""
        # The meter's one charge function, with the precise CPU time (meter.with_cpu_time).
        return self.meter.with_cpu_time(m, cpu_s).total_energy_j

    def empty_round(self) -> Round:
        rnd, _ = self.run_round([])
        return rnd

    def measured_round(
        self, inputs: Inputs, n: int, check: Callable[[Side, list[int], list[str]], None]
    ) -> Round:
        """The side's next round of ``n`` calls on its next batch of inputs, its results
        checked by ``check`` (which raises on a wrong one)."""
        ids = inputs.batch(self.batches, n)
        self.batches += 1
        rnd, results = self.run_round(inputs.payload(ids), inputs.distinct, inputs.keep(ids))
        check(self, ids, results)
        self.result.checked_calls += len(results)
        return rnd

    def calibrate(
        self,
        inputs: Inputs,
        check: Callable[[Side, list[int], list[str]], None],
        first_n: int = 1,
    ) -> int:
        """Rounds of growing size until one lasts about ROUND_S (or the workload has no
        more distinct inputs for a round); returns the size. Every result is checked."""
        return calibrate_rounds(self, inputs, check, first_n, inputs.most)

    def close(self) -> None:
        if not self.child.closed:
            with contextlib.suppress(OSError, SandboxError):
                self.child.send({"type": "quit"})
            self.child.close()


def calibrate_baseline(sides: Sequence[Side], rounds: int = BASELINE_ROUNDS) -> Baseline:
    """Empty rounds (a worker started like any other that makes no call), interleaved
    over ``sides``; their median energy and window become every side's baseline."""
    energies: list[float] = []
    windows: list[float] = []
    for _ in range(rounds):
        for side in sides:
            rnd = side.empty_round()
            energies.append(rnd.energy_j)
            windows.append(rnd.window_s)
    base = Baseline(statistics.median(energies), statistics.median(windows), len(energies))
    for side in sides:
        side.result.baseline = base
    return base


def _wait_status(status: Any) -> str:
    if not isinstance(status, int):
        return "wait status unknown"
    if os.WIFSIGNALED(status):
        import signal

        try:
            name = signal.Signals(os.WTERMSIG(status)).name
        except ValueError:
            name = f"signal {os.WTERMSIG(status)}"
        return f"killed by {name}"
    return f"exit status {os.WEXITSTATUS(status)}" if os.WIFEXITED(status) else str(status)


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


class Truth:
    """The reference's result for each input id, and the candidate's results waiting for
    theirs (generated inputs: the reference computes them in its round of the same pair,
    or in an unmeasured round at the end). Every candidate result is compared, here."""

    def __init__(self, inputs: Inputs, tol: float) -> None:
        self.inputs = inputs
        self.tol = tol
        self.known: dict[int, str] = {}
        self.pending: list[tuple[int, str]] = []
        self.candidate: Side | None = None

    def learn(self, side: Side, ids: list[int], results: list[str]) -> None:
        """A reference round's results: the expected values of its inputs."""
        for i, text in zip(ids, results, strict=True):
            self.known.setdefault(i, text)
        self.resolve()

    def check(self, side: Side, ids: list[int], results: list[str]) -> None:
        """A candidate round's results: each compared with the reference's, now or once
        the reference has answered that input."""
        self.candidate = side
        self.pending.extend(zip(ids, results, strict=True))
        self.resolve()

    def resolve(self) -> None:
        left = []
        for i, got in self.pending:
            want = self.known.get(i)
            if want is None:
                left.append((i, got))
            elif got != want:
                self._compare(i, got, want)
        self.pending = left

    def _compare(self, i: int, got_text: str, want_text: str) -> None:
        try:  # a result text is the worker's: bounded in size and depth before decoding
            got = decode_message(got_text.encode("utf-8", "surrogatepass"))
        except (WireLimitError, ValueError, UnicodeError) as bad:
            violation = ProtocolViolation(f"a measured call (input {i}) sent a bad result: {bad}")
            if self.candidate is not None:
                raise self.candidate._fail(violation) from None
            raise violation from None
        want = json.loads(want_text)
        if same(got, want, self.tol):
            return
        args, kwargs = self.inputs.call(i)
        case = {"input": i, "args": list(args), "kwargs": dict(kwargs), "expect": want, "got": got}
        exc = WorkloadIncorrect(
            f"a measured call (input {i}) returned {_clip(got)}, the reference returned "
            f"{_clip(want)}",
            case,
        )
        if self.candidate is not None:
            raise self.candidate._fail(exc)
        raise exc

    def settle(self, ref: Side) -> None:
        """Answer the inputs still waiting, in unmeasured reference rounds, and compare."""
        waiting = sorted({i for i, _ in self.pending})
        step = max(1, ref.result.calls_per_round)
        for k in range(0, len(waiting), step):
            ids = waiting[k : k + step]
            _, results = ref.run_round(
                self.inputs.payload(ids), self.inputs.distinct, self.inputs.keep(ids)
            )
            self.learn(ref, ids, results)


def calibrate_rounds(side: Any, inputs: Inputs, check: Any, first_n: int, most: int) -> int:
    """Rounds of ``side`` (a :class:`Side`, or a program's side: anything with
    ``measured_round``, ``last_calibration``, ``result`` and ``batches``) of growing size
    until one lasts about ROUND_S or holds ``most`` calls; sets and returns the size."""
    n = max(1, min(first_n, most))
    side.last_calibration = None
    for _ in range(4):
        rnd = side.measured_round(inputs, n, check)
        # Sized on the whole window (fixed cost included): a net figure of a short round
        # is mostly noise.
        per_call_s = max(rnd.window_s / rnd.calls, 1e-7)
        want = max(1, min(int(ROUND_S / per_call_s), most))
        if rnd.window_s >= ROUND_S / 3 or rnd.calls >= most:
            side.last_calibration = rnd
            n = want
            break
        n = max(want, min(n * 2, most))
    side.result.calls_per_round = n
    side.batches = 0
    return n


def _count(side: Side, ids: list[int], results: list[str]) -> None:
    """A reference round's results need no judge: they are counted (by the caller)."""


def interleave_sides(
    cand: Any,
    ref: Any,
    inputs: Inputs,
    sizes: tuple[int, int],
    checks: tuple[Any, Any],
    *,
    precision: float,
    max_time_s: float,
    clock: Callable[[], float],
) -> Interleaved:
    """Calibrated sides (function or program) measured in AB/BA pairs until the energy
    ratio is within ±``precision`` or ``max_time_s`` has passed; each round appended to
    its side's result. ``sizes``: (candidate, reference) calls per round, made equal when
    within 4x of each other so that a pair's two rounds get the same inputs; ``checks``:
    what judges each side's results. Returns :func:`interleave`'s run."""
    from pytest_carbon.compare.paired import interleave

    n_cand, n_ref = sizes
    check_cand, check_ref = checks
    if max(n_ref, n_cand) <= 4 * min(n_ref, n_cand):
        n_ref = n_cand = max(1, int(math.sqrt(n_ref * n_cand)))
        ref.result.calls_per_round = cand.result.calls_per_round = n_ref

    def measure_cand() -> float:
        rnd = cand.measured_round(inputs, n_cand, check_cand)
        cand.result.rounds.append(rnd)
        return float(rnd.energy_per_call_j)

    def measure_ref() -> float:
        rnd = ref.measured_round(inputs, n_ref, check_ref)
        ref.result.rounds.append(rnd)
        return float(rnd.energy_per_call_j)

    return interleave(
        measure_cand, measure_ref, precision=precision, max_time_s=max_time_s, clock=clock
    )


def duration_ratio(cand: SideResult, ref: SideResult) -> PairedRatio | None:
    """The paired ratio of the two sides' durations per call (None: too few rounds)."""
    from pytest_carbon.compare.paired import paired_ratio

    with contextlib.suppress(ValueError):
        return paired_ratio(
            [r.duration_per_call_s for r in cand.rounds],
            [r.duration_per_call_s for r in ref.rounds],
        )
    return None


def rounds_alone(
    side: Any,
    inputs: Inputs,
    calibrate: Callable[[], int],
    *,
    min_time_s: float,
    min_rounds: int,
) -> None:
    """One side (function or program) measured alone: pinned, its start-up baseline
    taken, calibrated by ``calibrate``, then rounds until ``min_time_s`` of windows and
    ``min_rounds`` (a long enough calibration round counts as one)."""
    cpu = pin_cpu()
    if cpu is not None:
        side.pin(cpu)
    calibrate_baseline([side])
    n = calibrate()
    total_s = 0.0
    if side.last_calibration is not None:  # long enough to count as a measured round
        side.result.rounds.append(side.last_calibration)
        total_s += side.last_calibration.window_s
    while len(side.result.rounds) < min_rounds or total_s < min_time_s:
        rnd = side.measured_round(inputs, n, _count)
        side.result.rounds.append(rnd)
        total_s += rnd.window_s


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
    generate: Callable[[int], tuple[Sequence[Any], dict[str, Any]]] | None = None,
) -> Comparison:
    """Measure candidate and reference interleaved until the energy ratio's interval is
    within ±``precision`` or ``max_time_s`` (calibration included) has passed. Every
    result of every candidate round is compared with the reference's; a mismatch raises
    :class:`WorkloadIncorrect`."""
    start = clock()
    inputs = Inputs(calls, generate)
    truth = Truth(inputs, tol)
    total_timeout_s = max_time_s + 6 * timeout_s + 10

    def make(name: str, code: str) -> Side:
        return Side(
            name,
            code,
            entry_point,
            meter=meter,
            key=key,
            round_timeout_s=timeout_s,
            total_timeout_s=total_timeout_s,
            limits=limits,
        )

    ref = make("reference", reference_code)
    try:
        cand = make("candidate", candidate_code)
    except BaseException:
        ref.close()
        raise
    cand.result.run_id, ref.result.run_id = cand.run_id, ref.run_id
    try:
        cpu = pin_cpu()
        pinned = cpu is not None and ref.pin(cpu) and cand.pin(cpu)
        calibrate_baseline([cand, ref])
        # The reference's answer for every distinct input: one call each, fresh.
        first_ref = 1
        fixed = inputs.all_fixed()
        if fixed:
            truth_round, results = ref.run_round(inputs.payload(fixed), None, fixed)
            truth.learn(ref, fixed, results)
            per_call_s = truth_round.window_s / max(truth_round.calls, 1)
            first_ref = max(1, int(ROUND_S / max(per_call_s, 1e-7)))
        n_ref = ref.calibrate(inputs, truth.learn, first_ref)
        n_cand = cand.calibrate(inputs, truth.check, 1)
        truth.settle(ref)  # calibration's generated inputs
        run = interleave_sides(
            cand,
            ref,
            inputs,
            (n_cand, n_ref),
            (truth.check, truth.learn),
            precision=precision,
            max_time_s=max(max_time_s - (clock() - start), 0.0),
            clock=clock,
        )
        truth.settle(ref)
    except SandboxError as exc:
        exc.run_id = exc.run_id or cand.run_id
        raise
    finally:
        cand.close()
        ref.close()
        inputs.forget()
    cand.result.finish("candidate", cand.guard)
    ref.result.finish("reference", ref.guard)
    durations = duration_ratio(cand.result, ref.result)
    return Comparison(
        candidate=cand.result,
        reference=ref.result,
        energy=run.result,
        duration=durations,
        stopped=run.stopped,
        precision_target=precision,
        orders=list(run.orders),
        pinned=bool(pinned),
        checked_calls=cand.result.checked_calls,
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
    generate: Callable[[int], tuple[Sequence[Any], dict[str, Any]]] | None = None,
) -> SideResult:
    """Measure one side alone (the reference as its own candidate: its ratio is 1 by
    definition): calibrated rounds until ``min_time_s`` of windows and ``min_rounds``.
    Its results are counted; there is nothing to compare them with."""
    inputs = Inputs(calls, generate)
    side = Side(
        "code",
        code,
        entry_point,
        meter=meter,
        key=key,
        round_timeout_s=timeout_s,
        total_timeout_s=6 * timeout_s + 4 * min_time_s + 10,
        limits=limits,
    )
    side.result.run_id = side.run_id
    try:
        rounds_alone(
            side,
            inputs,
            lambda: side.calibrate(inputs, _count, 1),
            min_time_s=min_time_s,
            min_rounds=min_rounds,
        )
    except SandboxError as exc:
        exc.run_id = exc.run_id or side.run_id
        raise
    finally:
        side.close()
        inputs.forget()
    side.result.finish("workload", side.guard)
    return side.result


def failure(exc: SandboxError) -> tuple[bool | None, dict[str, Any] | None, str]:
    """``(correct, failed_case, kind)`` of a measurement that failed with ``exc``: an
    incorrect answer (with its case); a timeout, a crash or a protocol violation of the
    candidate's workload, which make the answer not correct (it must be right on every
    measured call); a failure of the reference's side or of the sandbox itself, which
    says nothing of the answer (correctness unknown)."""
    if isinstance(exc, WorkloadIncorrect):
        return False, json.loads(json.dumps(exc.case, default=repr)), "incorrect answer"
    blame = getattr(exc, "side", None)
    if blame == "reference":
        return None, None, "workload failed"
    if isinstance(exc, ProtocolViolation):
        return False, None, "protocol violation"
    if isinstance(exc, WorkloadTimeout):
        return False, None, "workload timed out"
    if isinstance(exc, WorkloadCrashed) or blame is not None:
        return False, None, "workload failed"
    return None, None, "workload failed"


def generator(source: str) -> Callable[[int], tuple[list[Any], dict[str, Any]]]:
    """``seed -> (args, kwargs)`` from a task's ``workload.generate``: Python source
    defining ``generate(seed)``, which returns ``{"args": [...], "kwargs": {...}}`` (or
    the list of args). Suite code, trusted like the reference: it runs here, in pytest's
    process, never in the candidate's sandbox. Raises ValueError (a clear message) when
    the source or a value it returns is not usable."""
    try:
        code = compile(source, "<workload.generate>", "exec")
    except SyntaxError as exc:
        raise ValueError(f"does not compile: {exc.msg} (line {exc.lineno})") from None
    namespace: dict[str, Any] = {"__name__": "__workload_generate__"}
    try:
        exec(code, namespace)
    except Exception as exc:
        raise ValueError(f"raised while defined: {type(exc).__name__}: {exc}") from None
    fn = namespace.get("generate")
    if not callable(fn):
        raise ValueError("defines no function generate(seed)")

    def make(seed: int) -> tuple[list[Any], dict[str, Any]]:
        try:
            value = fn(seed)
        except Exception as exc:
            raise ValueError(f"generate({seed}) raised {type(exc).__name__}: {exc}") from None
        if isinstance(value, list):
            value = {"args": value}
        if not isinstance(value, dict) or set(value) - {"args", "kwargs"}:
            raise ValueError(
                f"generate({seed}) must return {{'args': [...], 'kwargs': {{...}}}} or a "
                f"list of args, not {_clip(value)}"
            )
        args, kwargs = value.get("args", []), value.get("kwargs", {})
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise ValueError(f"generate({seed}): args must be a list and kwargs a mapping")
        try:  # plain data only: it crosses into the sandbox as JSON
            args, kwargs = json.loads(json.dumps([args, kwargs], allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"generate({seed}) returned data that is not JSON: {exc}") from None
        return args, kwargs

    return make


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
