"""The ``carbon`` fixture: measure a function (calibrated and repeated) or named blocks.

Like pytest-benchmark's ``benchmark``, the fixture object is plain: its collaborators
(meter, accounting, settings, a callback to store the record) are passed in, so it can
be used and tested without pytest.

**Runs.** A test may be run more than once with the same fixture: ``--carbon-rounds=N``
runs its call phase N times, and ``--carbon-compare-ref`` runs it round after round on
both sides. Before each further run the runner calls :meth:`CarbonFixture.start_run`:
what the fixture measured so far is kept as a :class:`FixtureRun` and the fixture is
fresh again (single use, unique block names: per run). The metric is what the fixture
measured: in call mode the energy per call of its calibrated rounds, with blocks the sum
of the blocks of one run (:attr:`FixtureRun.calls` is 1).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import pytest

from pytest_carbon.measure.meter import Measurement, Meter, combine
from pytest_carbon.results.record import PerCall, make_record, per_call_stats

T = TypeVar("T")

#: Rounds the fixture aims for within ``min_time_s`` (each round is one meter window).
TARGET_ROUNDS = 10
#: A round must last this many counter update periods at least.
ROUND_PERIODS = 20
#: Safety cap on rounds when a call is very fast.
MAX_ROUNDS = 1000


class FixtureAlreadyUsed(RuntimeError):
    """The fixture's call mode can be used once per test run, like ``benchmark``."""


class FixtureRun:
    """What the fixture measured in one run of a test: its calibrated rounds (call mode,
    ``iterations`` calls each) or its blocks."""

    def __init__(
        self, rounds: Sequence[Measurement], phases: Mapping[str, Measurement], iterations: int
    ) -> None:
        self.rounds = list(rounds)
        self.phases = dict(phases)
        self.iterations = iterations

    @property
    def windows(self) -> list[Measurement]:
        return [*self.rounds, *self.phases.values()]

    @property
    def calls(self) -> int:
        """Calls the run's figure stands for: every call of call mode; 1 for blocks."""
        return self.iterations * len(self.rounds) if self.rounds else 1

    def per_call(self) -> tuple[float, float, float]:
        """(energy, dynamic energy, duration) per call of call mode, or of the run's blocks
        together; the metric of a run."""
        ws = self.rounds or list(self.phases.values())
        n = max(self.calls, 1)
        return (
            sum(m.total_energy_j for m in ws) / n,
            sum(m.total_dynamic_energy_j for m in ws) / n,
            sum(m.duration_s for m in ws) / n,
        )


class CarbonFixture:
    """Measures energy inside a test. Use it once as ``carbon(func, *args, **kwargs)``,
    and/or as ``with carbon.measure("phase"):`` for any number of named blocks."""

    def __init__(
        self,
        meter_factory: Callable[[], Meter],
        accounting_factory: Callable[[], Any],
        nodeid: str,
        *,
        min_time_s: float = 0.2,
        worker: str | None = None,
    ) -> None:
        self._meter_factory = meter_factory
        self._accounting_factory = accounting_factory
        self.nodeid = nodeid
        self.min_time_s = min_time_s
        self._worker = worker
        self.extra_info: dict[str, Any] = {}
        self.phases: dict[str, Measurement] = {}
        self.rounds: list[Measurement] = []
        self.iterations = 0
        #: Earlier runs of the test (see the module docstring), oldest first.
        self.runs: list[FixtureRun] = []
        self._used = False
        self._open_phase: str | None = None

    # -- runs -----------------------------------------------------------------------
    def start_run(self) -> None:
        """Another run of the test begins: keep what was measured, be fresh again."""
        if self.used:
            self.runs.append(self.current_run())
        self.rounds, self.phases, self.iterations, self._used = [], {}, 0, False

    def current_run(self) -> FixtureRun:
        return FixtureRun(self.rounds, self.phases, self.iterations)

    def all_runs(self) -> list[FixtureRun]:
        """Every run that used the fixture, this one included."""
        return [*self.runs, *([self.current_run()] if self._used or self.phases else [])]

    # -- call mode ------------------------------------------------------------------
    def __call__(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call ``func(*args, **kwargs)`` repeatedly until the measured time reaches
        ``min_time_s``; record per-call energy and time statistics; return its result."""
        if self._used:
            raise FixtureAlreadyUsed(
                "the carbon fixture measures one function per test (per run under "
                "--carbon-rounds); use `with carbon.measure(name):` for more blocks"
            )
        if not callable(func):
            raise TypeError(f"carbon(func, ...) needs a callable, got {type(func).__name__}")
        self._used = True
        meter = self._meter_factory()
        # Warm-up call, outside any window: imports, caches, first-call costs.
        t0 = time.perf_counter()
        result = func(*args, **kwargs)
        first_s = time.perf_counter() - t0
        round_target_s = max(self.min_time_s / TARGET_ROUNDS, ROUND_PERIODS * meter.update_period_s)
        iterations = max(1, math.ceil(round_target_s / max(first_s, 1e-7)))
        self.iterations = iterations
        total_s = 0.0
        key = f"{self.nodeid}::carbon"
        while (total_s < self.min_time_s or not self.rounds) and len(self.rounds) < MAX_ROUNDS:
            meter.begin(key)
            try:
                for _ in range(iterations):
                    result = func(*args, **kwargs)
            finally:
                m = meter.end(key)
            self.rounds.append(m)
            total_s += m.duration_s
        return result

    # -- block mode -----------------------------------------------------------------
    @contextmanager
    def measure(self, name: str = "block") -> Iterator[None]:
        """Measure the block as phase ``name`` (names must be unique within a test)."""
        if name in self.phases or name == self._open_phase:
            raise ValueError(f"carbon.measure({name!r}) was already used in this test")
        if self._open_phase is not None:
            raise RuntimeError(
                f"carbon.measure({name!r}) inside carbon.measure({self._open_phase!r}): "
                "blocks cannot nest"
            )
        meter = self._meter_factory()
        key = f"{self.nodeid}::{name}"
        self._open_phase = name
        meter.begin(key)
        try:
            yield
        finally:
            self._open_phase = None
            self.phases[name] = meter.end(key)

    # -- results --------------------------------------------------------------------
    @property
    def used(self) -> bool:
        """Whether this run used the fixture."""
        return self._used or bool(self.phases)

    @property
    def ever_used(self) -> bool:
        return self.used or bool(self.runs)

    def build_record(
        self,
        *,
        accounting_for: Callable[[float], Any] | None = None,
        extra_phases: Mapping[str, Measurement] | None = None,
        warnings: Sequence[str] = (),
        per_call: PerCall | None = None,
        extra_info: Mapping[str, Any] | None = None,
        own_intensity: bool = False,
    ) -> dict[str, Any] | None:
        """The test's record: the fixture's rounds (or blocks) are the test's numbers.
        ``extra_phases`` (the whole call phase, under ``--carbon``), ``per_call`` and
        ``extra_info`` (pytest-benchmark's rounds) come from the plugin's runner, so the
        record is built once. ``accounting_for(start_unix_s)``: the accounting at the
        record's start (the intensity hook); default: the fixture's own."""
        runs = self.all_runs()
        if not runs:
            return None
        call_runs = [r for r in runs if r.rounds]
        block_runs = [r for r in runs if not r.rounds]
        phases: dict[str, Measurement] = {}
        for name in dict.fromkeys(n for r in runs for n in r.phases):
            phases[name] = combine([r.phases[name] for r in runs if name in r.phases], key=name)
        if call_runs:
            # Call mode: every calibrated round of every run is a sample of energy per call.
            windows = [m for r in call_runs for m in r.rounds]
            total = combine(windows, key=self.nodeid)
            per_e = [m.total_energy_j / r.iterations for r in call_runs for m in r.rounds]
            per_d = [m.duration_s / r.iterations for r in call_runs for m in r.rounds]
            n = call_runs[-1].iterations
            per_call = per_call_stats(
                per_e, per_d, iterations_per_round=n, calls=sum(r.calls for r in call_runs)
            )
            rounds = len(windows)
        else:
            # Blocks only: a run's figure is the sum of its blocks; one sample per run.
            total = combine([m for r in block_runs for m in r.phases.values()], key=self.nodeid)
            rounds = len(block_runs)
            per_e = [sum(m.total_energy_j for m in r.phases.values()) for r in block_runs]
            per_d = [sum(m.duration_s for m in r.phases.values()) for r in block_runs]
        accounting = (
            accounting_for(total.start_unix_s) if accounting_for else self._accounting_factory()
        )
        return make_record(
            self.nodeid,
            total,
            accounting,
            rounds=rounds,
            per_round_energy_j=per_e,
            per_round_duration_s=per_d,
            per_call=per_call,
            phases={**phases, **(extra_phases or {})},
            extra_info={**self.extra_info, **(extra_info or {})},
            worker=self._worker,
            warnings=warnings,
            own_intensity=own_intensity,
        )


def fixture_for(request: pytest.FixtureRequest) -> CarbonFixture:
    """Build the fixture for ``request.node`` from the session's meter and settings."""
    from pytest_carbon.session import FIXTURE_KEY, get_session

    cs = get_session(request.config)
    item = request.node
    if not cs.per_test_hooks:
        # No collected test could leave a record: the per-test hooks start here. This
        # test's call may be running already, without the wrapper (plugin.py builds its
        # record from its call report), and the tests before it were not seen.
        from pytest_carbon.plugin import register_per_test_hooks

        register_per_test_hooks(request.config, cs)
        cs.late_fixture[item.nodeid] = item
        cs.ran_partial = True
    fx = CarbonFixture(
        lambda: cs.meter,
        lambda: cs.accounting,
        item.nodeid,
        min_time_s=cs.settings.carbon_min_time,
        worker=cs.worker_id,
    )
    item.stash[FIXTURE_KEY] = fx
    return fx
