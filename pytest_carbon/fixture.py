"""The ``carbon`` fixture: measure a function (calibrated and repeated) or named blocks.

Like pytest-benchmark's ``benchmark``, the fixture object is plain: its collaborators
(meter, accounting, settings, a callback to store the record) are passed in, so it can
be used and tested without pytest.
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
    """The fixture's call mode can be used once per test, like ``benchmark``."""


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
        self._used = False
        self._open_phase: str | None = None

    # -- call mode ------------------------------------------------------------------
    def __call__(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call ``func(*args, **kwargs)`` repeatedly until the measured time reaches
        ``min_time_s``; record per-call energy and time statistics; return its result."""
        if self._used:
            raise FixtureAlreadyUsed(
                "the carbon fixture measures one function per test; use "
                "`with carbon.measure(name):` for more blocks"
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
        return self._used or bool(self.phases)

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
        if not self.used:
            return None
        if self.rounds:
            total = combine(self.rounds, key=self.nodeid)
            n = self.iterations
            per_e = [m.total_energy_j / n for m in self.rounds]
            per_d = [m.duration_s / n for m in self.rounds]
            per_call = per_call_stats(per_e, per_d, iterations_per_round=n)
            rounds = len(self.rounds)
        else:
            # Blocks only: the test's numbers are the sum of its blocks.
            total = combine(list(self.phases.values()), key=self.nodeid)
            rounds = 1
            per_e, per_d = [total.total_energy_j], [total.duration_s]
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
            phases={**self.phases, **(extra_phases or {})},
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
    fx = CarbonFixture(
        lambda: cs.meter,
        lambda: cs.accounting,
        item.nodeid,
        min_time_s=cs.settings.carbon_min_time,
        worker=cs.worker_id,
    )
    item.stash[FIXTURE_KEY] = fx
    return fx
