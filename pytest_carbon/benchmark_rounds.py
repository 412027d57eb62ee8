"""pytest-benchmark interop: the energy of a benchmark's measured rounds, and only those.

pytest-benchmark calls its runner for calibration, warm-up and the measured rounds; only a
measured round is followed by ``stats.update(duration)``. We wrap the runner, so a meter
window opens before the round's start time is taken and closes after its end time (the
meter's cost stays outside the benchmark's own timing), and we keep a window only when
every round in it was confirmed by ``stats.update``: calibration and warm-up never count.

Rounds are often a few microseconds, far shorter than a meter window can measure well and
than the meter's own cost (~20 µs). So a window spans consecutive rounds until it has lasted
:data:`MIN_WINDOW_S` (or a few counter update periods), then closes at the end of a round.
Energy per call is the window's average power times the rounds' wall time per call: the
small gaps between rounds (pytest-benchmark's bookkeeping, ours) are in the window's time
but not in the calls'. Only running sums and one number per window stay in memory.
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Callable
from typing import Any

from pytest_carbon.measure.meter import Measurement, Meter
from pytest_carbon.measure.sensors.base import weakest_method
from pytest_carbon.results.record import PerCall, per_call_stats

#: A window over rounds lasts at least this long (the meter costs ~20 µs a window: <1%).
MIN_WINDOW_S = 0.005
#: ... and at least this many update periods of the slowest counter.
WINDOW_PERIODS = 5
#: The last window also covers what follows the last round (pytest-benchmark's one extra
#: call, the rest of the test): it is kept only when the rounds fill this much of it.
TAIL_FILL = 0.9


def benchmark_of(item: Any) -> Any:
    """The test's pytest-benchmark fixture, when it is a real, enabled one."""
    if "benchmark" not in getattr(item, "fixturenames", ()):
        return None
    bench = getattr(item, "funcargs", {}).get("benchmark")
    # Only a real BenchmarkFixture has the runner and stats factories we wrap.
    if bench is None or not hasattr(bench, "_make_runner") or not hasattr(bench, "_make_stats"):
        return None
    return bench


class BenchmarkRounds:
    """Meter windows over a benchmark's measured rounds. :meth:`install` on the fixture,
    run the test, then :meth:`finish` (always: it closes an open window)."""

    def __init__(self, meter: Meter, key: str, clock: Callable[[], float] = time.perf_counter):
        self.meter = meter
        self.key = key
        self.clock = clock
        self.window_s = max(MIN_WINDOW_S, WINDOW_PERIODS * meter.update_period_s)
        self.iterations = 1
        # The open (or just closed, not yet confirmed) window.
        self._open = False
        self._t0 = 0.0
        self._rounds = 0
        self._round_s = 0.0
        self._unconfirmed = False
        self._round_t0 = 0.0
        self._last_s = 0.0
        self._closed: Measurement | None = None
        # Running sums over kept windows.
        self.windows = 0
        self.rounds = 0
        self.round_s = 0.0
        self._start_unix_s: float | None = None
        self._duration_s = 0.0
        self._cpu_s = 0.0
        self._energy: dict[str, float] = {}
        self._dynamic: dict[str, float] = {}
        self._method: dict[str, str] = {}
        self._shares: list[float] = []
        self._sensors: tuple[str, ...] = ()
        self._warnings: dict[str, None] = {}
        self.per_call_energy_j = array("d")
        self.per_call_duration_s = array("d")
        self.bench: Any = None

    # -- wiring ------------------------------------------------------------------------
    def install(self, bench: Any) -> None:
        self.bench = bench
        make_runner = bench._make_runner
        make_stats = bench._make_stats

        def wrapped_make_runner(function: Any, args: Any, kwargs: Any) -> Any:
            inner = make_runner(function, args, kwargs)

            def runner(*a: Any, **kw: Any) -> Any:
                self.before_round()
                try:
                    return inner(*a, **kw)
                finally:
                    self.after_round()

            return runner

        def wrapped_make_stats(iterations: int) -> Any:
            metadata = make_stats(iterations)
            update = metadata.update

            def tracked(duration: float) -> None:
                update(duration)
                self.confirm(duration, iterations)

            metadata.update = tracked
            return metadata

        bench._make_runner = wrapped_make_runner
        bench._make_stats = wrapped_make_stats

    # -- the round protocol ------------------------------------------------------------
    def before_round(self) -> None:
        if self._unconfirmed:
            # The previous runner call was calibration or warm-up: its window goes.
            self._discard()
        if not self._open:
            self.meter.begin(self.key)
            self._open = True
            self._t0 = self.clock()
            self._rounds, self._round_s = 0, 0.0
        self._round_t0 = self.clock()

    def after_round(self) -> None:
        # Our own wall clock: the benchmark's timer may count something else (process
        # time, say), and the window's energy is spread over wall time.
        self._last_s = self.clock() - self._round_t0
        self._unconfirmed = True
        if self._open and self.clock() - self._t0 >= self.window_s:
            self._closed = self.meter.end(self.key)
            self._open = False

    def confirm(self, duration_s: float, iterations: int) -> None:
        """``stats.update``: the round just run is a measured one (``duration_s``, in the
        benchmark timer's units, is not used: see :meth:`after_round`)."""
        self._unconfirmed = False
        self.iterations = max(int(iterations), 1)
        self._rounds += 1
        self._round_s += self._last_s
        if self._closed is not None:
            self._keep(self._closed)
            self._closed = None

    def finish(self) -> None:
        """Close what is open. The last window is kept if its rounds fill it, or when it is
        all there is (then with a warning saying what else it covers)."""
        closed, self._closed = self._closed, None
        if self._open:
            closed = self.meter.end(self.key)
            self._open = False
        if closed is None or self._unconfirmed or not self._rounds:
            return
        fill = self._round_s / closed.duration_s if closed.duration_s > 0 else 0.0
        if fill >= TAIL_FILL:
            self._keep(closed)
        elif not self.windows:
            self._keep(closed)
            self._warnings[
                f"the benchmark's rounds filled {fill:.0%} of their meter window (the rest "
                "is the code after the last round): its energy per call is less precise"
            ] = None

    def _discard(self) -> None:
        if self._open:
            self.meter.end(self.key)
            self._open = False
        self._closed = None
        self._unconfirmed = False
        self._rounds, self._round_s = 0, 0.0

    def _keep(self, m: Measurement) -> None:
        calls = self._rounds * self.iterations
        power_w = m.power_w
        self.per_call_energy_j.append(power_w * self._round_s / calls)
        self.per_call_duration_s.append(self._round_s / calls)
        self.windows += 1
        self.rounds += self._rounds
        self.round_s += self._round_s
        if self._start_unix_s is None:
            self._start_unix_s = m.start_unix_s
        # Scaled to the rounds' own time, so the gaps between rounds are not charged.
        scale = self._round_s / m.duration_s if m.duration_s > 0 else 1.0
        for c, e in m.energy_j.items():
            self._energy[c] = self._energy.get(c, 0.0) + e * scale
        for c, e in m.dynamic_energy_j.items():
            self._dynamic[c] = self._dynamic.get(c, 0.0) + e * scale
        for c, meth in m.method.items():
            self._method[c] = weakest_method((self._method.get(c, meth), meth))
        self._duration_s += self._round_s
        self._cpu_s += m.cpu_time_s * scale
        if m.share is not None:
            self._shares.append(m.share)
        self._sensors = m.sensors
        self._warnings.update(dict.fromkeys(m.warnings))
        self._rounds, self._round_s = 0, 0.0

    # -- results -----------------------------------------------------------------------
    def measurement(self) -> Measurement | None:
        """The kept rounds as one Measurement (energies scaled to the rounds' time)."""
        if not self.windows:
            return None
        return Measurement(
            key=self.key,
            start_unix_s=self._start_unix_s or 0.0,
            duration_s=self._duration_s,
            energy_j=dict(self._energy),
            dynamic_energy_j=dict(self._dynamic),
            method=dict(self._method),
            cpu_time_s=self._cpu_s,
            share=sum(self._shares) / len(self._shares) if self._shares else None,
            sensors=self._sensors,
            warnings=tuple(self._warnings),
        )

    def info(self) -> dict[str, Any] | None:
        """``extra_info["benchmark"]`` of the record (also copied into the benchmark's own
        ``extra_info`` with a ``carbon_`` prefix)."""
        m = self.measurement()
        if m is None:
            return None
        calls = self.rounds * self.iterations
        per_call = m.total_energy_j / calls
        return {
            "energy_j_per_call": per_call,
            "energy_j_per_round": per_call * self.iterations,
            "cpu_time_s_per_call": m.cpu_time_s / calls,
            "energy_method": m.overall_method,
            "energy_rounds": self.rounds,
            "energy_windows": self.windows,
        }

    def per_call(self) -> PerCall | None:
        """The record's ``per_call``: one value per kept window."""
        if not self.windows:
            return None
        return per_call_stats(
            self.per_call_energy_j,
            self.per_call_duration_s,
            iterations_per_round=self.iterations,
            calls=self.rounds * self.iterations,
            source="pytest-benchmark rounds",
        )

    def publish(self, info: dict[str, Any] | None) -> None:
        """pytest-benchmark's own ``extra_info`` gets the figures, ``carbon_`` prefixed."""
        extra = getattr(self.bench, "extra_info", None)
        if info and isinstance(extra, dict):
            extra.update({f"carbon_{k}": v for k, v in info.items()})

    def warnings(self) -> list[str]:
        return list(self._warnings)
