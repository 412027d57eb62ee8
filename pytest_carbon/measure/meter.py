"""The meter: named measurement windows over a set of sensors, with idle baseline and attribution.

Pytest-free. ``begin(key)`` / ``end(key) -> Measurement``, or ``with meter.measure(key)``.
A sampler thread runs only while a window is open and some sensor needs polling (a
counter that could wrap, or a sensor that reads power, not energy).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from pytest_carbon.measure.proctime import machine_busy_cpu_s, tree_cpu_s
from pytest_carbon.measure.sensors.base import Reading, Sensor, weakest_method

#: When other work used more than this share of the machine's busy CPU time in a window,
#: machine-wide counters are attributed by CPU-time share.
BUSY_OTHER_SHARE = 0.10
#: Below this much machine CPU time (seconds) in a window, /proc/stat's 10 ms ticks are too
#: coarse to judge "busy"; attribution is then applied only when forced.
MIN_MACHINE_CPU_S = 0.05


@dataclass(frozen=True)
class Measurement:
    """The result of one window. Energies in joules, times in seconds, power in watts.

    ``energy_j``: energy per component in the window (after attribution, if any).
    ``dynamic_energy_j``: the same minus idle power x duration (floored at 0).
    ``method``: per component, ``measured``, ``estimated`` or ``attributed``.
    """

    key: str
    start_unix_s: float
    duration_s: float
    energy_j: Mapping[str, float]
    dynamic_energy_j: Mapping[str, float]
    method: Mapping[str, str]
    cpu_time_s: float
    #: Share of machine-wide counters given to this process tree (None: not attributed).
    share: float | None = None
    sensors: tuple[str, ...] = ()
    #: Power trace from the sampler: (seconds since window start, {component: watts}).
    samples: tuple[tuple[float, Mapping[str, float]], ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def total_energy_j(self) -> float:
        return sum(self.energy_j.values())

    @property
    def total_dynamic_energy_j(self) -> float:
        return sum(self.dynamic_energy_j.values())

    @property
    def overall_method(self) -> str:
        return weakest_method(tuple(self.method.values()))

    @property
    def power_w(self) -> float:
        return self.total_energy_j / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def edp_js(self) -> float:
        from pytest_carbon.carbon.accounting import edp_js

        return edp_js(self.total_energy_j, self.duration_s)

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "duration_s": self.duration_s,
            "energy_j": self.total_energy_j,
            "dynamic_energy_j": self.total_dynamic_energy_j,
            "components": dict(self.energy_j),
            "dynamic_components": dict(self.dynamic_energy_j),
            "component_methods": dict(self.method),
            "method": self.overall_method,
            "cpu_time_s": self.cpu_time_s,
            "share": self.share,
            "sensors": list(self.sensors),
            "warnings": list(self.warnings),
        }


@dataclass
class _Window:
    key: str
    pids: tuple[int, ...]
    t0: float
    unix0: float
    readings: list[Reading]
    cpu0: float
    machine0: float | None
    samples: list[tuple[float, dict[str, float]]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class WindowError(RuntimeError):
    """A window was ended without being begun, or begun twice."""


class Meter:
    """Measure energy in named windows over ``sensors``.

    Each component belongs to the first sensor that lists it, so a counter listed before
    the estimate wins. ``idle_power_w`` (per component) turns total into dynamic energy.
    ``attribution``: ``auto`` (when the machine is busy with other work), ``always``
    (e.g. under pytest-xdist) or ``never``.
    """

    def __init__(
        self,
        sensors: Sequence[Sensor] | None = None,
        *,
        idle_power_w: Mapping[str, float] | None = None,
        interval_s: float = 0.1,
        attribution: str = "auto",
        proc_stat: str = "/proc/stat",
    ) -> None:
        if sensors is None:
            from pytest_carbon.measure.sensors.estimate import EstimateSensor

            sensors = [EstimateSensor()]
        if attribution not in ("auto", "always", "never"):
            raise ValueError(f"attribution must be auto, always or never, not {attribution!r}")
        self.sensors: list[Sensor] = list(sensors)
        self.owner: dict[str, int] = {}
        for i, s in enumerate(self.sensors):
            for c in s.components:
                self.owner.setdefault(c, i)
        self.idle_power_w: dict[str, float] = dict(idle_power_w or {})
        self.interval_s = interval_s
        self.attribution = attribution
        self._proc_stat = proc_stat
        # /proc/stat is read only where a share may be attributed (it costs ~9 µs a read).
        self._machine_wide = attribution != "never" and any(s.machine_wide for s in self.sensors)
        self._polled = [i for i, s in enumerate(self.sensors) if s.poll_interval_s is not None]
        self._windows: dict[str, _Window] = {}
        # Fixed for the meter's life; computed once, read on every window.
        self._sensor_names = tuple(s.name for s in self.sensors)
        self._update_period_s = max((s.update_period_s for s in self.sensors), default=0.0)
        self._methods = [s.method for s in self.sensors]
        self._wide = [s.machine_wide for s in self.sensors]
        self._lock = threading.Lock()
        self._sampler: threading.Thread | None = None
        self._wake = threading.Event()
        self._closed = False
        self._polled_failed = False

    # -- windows ---------------------------------------------------------------------
    def begin(self, key: str, pids: tuple[int, ...] = ()) -> None:
        """Open window ``key``. ``pids``: live processes that belong to the measured tree."""
        if key in self._windows:
            raise WindowError(f"window {key!r} is already open")
        machine0 = machine_busy_cpu_s(self._proc_stat) if self._machine_wide else None
        cpu0 = tree_cpu_s(pids)
        readings = self._read_all(pids)
        t0 = readings[0].time_s if readings else time.perf_counter()
        self._windows[key] = _Window(key, pids, t0, time.time(), readings, cpu0, machine0)
        if self._polled and not self._polled_failed:
            self._ensure_sampler()

    def end(self, key: str) -> Measurement:
        """Close window ``key`` and return its Measurement."""
        try:
            win = self._windows.pop(key)
        except KeyError:
            raise WindowError(f"window {key!r} was not begun") from None
        readings = self._read_all(win.pids)
        cpu1 = tree_cpu_s(win.pids)
        machine1 = machine_busy_cpu_s(self._proc_stat) if win.machine0 is not None else None
        t1 = readings[0].time_s if readings else time.perf_counter()
        return self._compute(win, readings, t1, cpu1, machine1)

    @contextmanager
    def measure(self, key: str, pids: tuple[int, ...] = ()) -> Iterator[MeasureHandle]:
        """``with meter.measure("x") as m: ...`` then ``m.measurement``."""
        handle = MeasureHandle(key)
        self.begin(key, pids)
        try:
            yield handle
        finally:
            handle.measurement = self.end(key)

    def measure_idle(self, duration_s: float = 0.25) -> dict[str, float]:
        """Set and return the idle power per component.

        Model sensors give their idle power without waiting; counters are read over
        ``duration_s`` of sleep.
        """
        idle: dict[str, float] = {}
        counting = []
        for i, s in enumerate(self.sensors):
            model = getattr(s, "idle_power_w", None)
            if callable(model):
                for c, w in model().items():
                    if self.owner.get(c) == i:
                        idle[c] = float(w)
            else:
                counting.append(i)
        if counting and duration_s > 0:
            # Raw counter differences, never attributed: idle power is the machine's, not
            # this sleeping process's tiny CPU share of it.
            before = self._read_all(())
            time.sleep(duration_s)
            after = self._read_all(())
            for i in counting:
                dt = after[i].time_s - before[i].time_s
                for c in self.sensors[i].components:
                    if self.owner.get(c) == i and dt > 0:
                        e0 = before[i].energy_j.get(c, 0.0)
                        idle[c] = max(after[i].energy_j.get(c, e0) - e0, 0.0) / dt
        self.idle_power_w = idle
        return dict(idle)

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        if self._sampler is not None:
            self._sampler.join(timeout=1.0)
        for s in self.sensors:
            with suppress(Exception):
                s.close()

    def __enter__(self) -> Meter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def sensor_names(self) -> tuple[str, ...]:
        return self._sensor_names

    @property
    def update_period_s(self) -> float:
        return self._update_period_s

    # -- internals -------------------------------------------------------------------
    def _read_all(self, pids: tuple[int, ...]) -> list[Reading]:
        with self._lock:
            return [s.read(pids) for s in self.sensors]

    def _compute(
        self,
        win: _Window,
        readings: list[Reading],
        t1: float,
        cpu1: float,
        machine1: float | None,
    ) -> Measurement:
        duration = max(t1 - win.t0, 0.0)
        cpu_s = max(cpu1 - win.cpu0, 0.0)
        energy: dict[str, float] = {}
        method: dict[str, str] = {}
        machine_wide: list[str] = []
        for c, i in self.owner.items():
            before = win.readings[i].energy_j.get(c)
            after = readings[i].energy_j.get(c)
            if before is None or after is None:
                continue
            energy[c] = max(after - before, 0.0)
            method[c] = self._methods[i]
            if self._wide[i]:
                machine_wide.append(c)

        share: float | None = None
        warnings: list[str] = list(win.errors)
        if machine_wide:
            share = self._share(cpu_s, win.machine0, machine1)
            if share is not None:
                for c in machine_wide:
                    energy[c] *= share
                    method[c] = "attributed"
        idle = self.idle_power_w
        dynamic = {c: max(e - idle.get(c, 0.0) * duration, 0.0) for c, e in energy.items()}
        if share is not None:
            # A machine-wide counter's idle power is shared like its energy.
            for c in machine_wide:
                dynamic[c] = max(energy[c] - idle.get(c, 0.0) * share * duration, 0.0)
        period = self._update_period_s
        if duration < period:
            warnings.append(
                f"window {win.key!r} lasted {duration * 1e3:.3f} ms, shorter than the "
                f"counters' update period ({period * 1e3:g} ms): its energy is unreliable; "
                "repeat the work (the carbon fixture does) to measure it"
            )
        return Measurement(
            key=win.key,
            start_unix_s=win.unix0,
            duration_s=duration,
            energy_j=energy,
            dynamic_energy_j=dynamic,
            method=method,
            cpu_time_s=cpu_s,
            share=share,
            sensors=self._sensor_names,
            samples=tuple(win.samples),
            warnings=tuple(warnings),
        )

    def _share(self, cpu_s: float, machine0: float | None, machine1: float | None) -> float | None:
        if machine0 is None or machine1 is None:
            return None if self.attribution != "always" else 1.0
        machine_s = max(machine1 - machine0, 0.0)
        if self.attribution == "never":
            return None
        if self.attribution == "auto":
            if machine_s < MIN_MACHINE_CPU_S:
                return None
            other = machine_s - cpu_s
            if other <= BUSY_OTHER_SHARE * machine_s:
                return None
        # /proc/stat ticks are coarse: never give a tree more than all of the machine.
        return min(cpu_s / machine_s, 1.0) if machine_s > 0 else 1.0

    def _ensure_sampler(self) -> None:
        if self._sampler is not None and self._sampler.is_alive():
            self._wake.set()
            return
        self._sampler = threading.Thread(
            target=self._sample_loop, name="pytest-carbon-sampler", daemon=True
        )
        self._sampler.start()

    def _sample_loop(self) -> None:
        intervals = [self.sensors[i].poll_interval_s or self.interval_s for i in self._polled]
        # Each polled sensor says how often it must be read (wrap-safe period of a counter,
        # or the power-sampling interval); the loop runs at the shortest of those.
        period = max(min(intervals), 0.001)
        last: dict[int, Reading] = {}
        while not self._closed:
            if not self._windows:
                # Nothing open: sleep until a window opens (begin() sets the event).
                self._wake.wait()
                self._wake.clear()
                last.clear()
                continue
            try:
                with self._lock:
                    now = [(i, self.sensors[i].read()) for i in self._polled]
            except Exception as exc:
                # A vanished counter must not kill the thread silently: every open window
                # carries the reason, and polling stops (the end reads still run).
                note = f"sampler stopped: {type(exc).__name__}: {exc}"
                for win in list(self._windows.values()):
                    win.errors.append(note)
                self._polled_failed = True
                return
            power: dict[str, float] = {}
            for i, r in now:
                if r.power_w:
                    power.update(r.power_w)
                elif i in last and r.time_s > last[i].time_s:
                    dt = r.time_s - last[i].time_s
                    for c, e in r.energy_j.items():
                        power[c] = (e - last[i].energy_j.get(c, e)) / dt
                last[i] = r
            if power and now:
                t = now[0][1].time_s
                for win in list(self._windows.values()):
                    win.samples.append((t - win.t0, power))
            self._wake.wait(period)
            self._wake.clear()


class MeasureHandle:
    """Filled when the ``with meter.measure()`` block exits."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.measurement: Measurement | None = None


def combine(measurements: Sequence[Measurement], key: str | None = None) -> Measurement:
    """One Measurement covering several windows: energies, durations and CPU times add up."""
    if not measurements:
        raise ValueError("nothing to combine")
    first = measurements[0]
    if len(measurements) == 1 and key is None:
        return first
    energy: dict[str, float] = {}
    dynamic: dict[str, float] = {}
    method: dict[str, str] = {}
    # A dict keeps the first-seen order and de-duplicates in O(1) a warning: combining N
    # windows stays linear (a list's `not in` made 16k benchmark rounds take seconds).
    warnings: dict[str, None] = {}
    for m in measurements:
        for c, e in m.energy_j.items():
            energy[c] = energy.get(c, 0.0) + e
        for c, e in m.dynamic_energy_j.items():
            dynamic[c] = dynamic.get(c, 0.0) + e
        for c, meth in m.method.items():
            method[c] = weakest_method((method.get(c, meth), meth))
        warnings.update(dict.fromkeys(m.warnings))
    shares = [m.share for m in measurements if m.share is not None]
    return Measurement(
        key=key or first.key,
        start_unix_s=first.start_unix_s,
        duration_s=sum(m.duration_s for m in measurements),
        energy_j=energy,
        dynamic_energy_j=dynamic,
        method=method,
        cpu_time_s=sum(m.cpu_time_s for m in measurements),
        share=sum(shares) / len(shares) if shares else None,
        sensors=first.sensors,
        samples=tuple(s for m in measurements for s in m.samples),
        warnings=tuple(warnings),
    )
