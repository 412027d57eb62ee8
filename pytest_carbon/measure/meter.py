"""The meter: named measurement windows over a set of sensors, with idle baseline and attribution.

Pytest-free. ``begin(key)`` / ``end(key) -> Measurement``, or ``with meter.measure(key)``.
A sampler thread runs only while a window is open and some sensor needs polling (a
counter that could wrap, or a sensor that reads power, not energy).

**One definition of a window's energy** (``docs/how-numbers-are-computed.md``, "What a
test is charged"): :func:`charge` is the only place a window's raw counter deltas become
its energy, and every path (plain tests, rounds, the ``carbon`` fixture,
pytest-benchmark rounds, both sides of ``--carbon-compare-ref``, prompt items through
:meth:`Meter.with_cpu_time`) goes through it. A test's ``energy`` is its dynamic energy
plus the machine's idle power *per CPU* times the test's own CPU time (the way Cloud
Carbon Footprint charges a vCPU-hour), so a neighbour that stretches the test's wall
time does not change it. The idle power of the wall-clock time the machine was kept on
(``idle_wall_energy_j``) is reported beside it, never added to it. A machine-wide
counter's dynamic energy is the test's CPU time x the machine's marginal power per busy
CPU in the window. ``--carbon-attribution=machine`` is the exception, by request: the
raw counter, neighbours and all.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from pytest_carbon.measure.idle import CALIBRATION_S, Calibration, IdleEstimate, calibrate
from pytest_carbon.measure.proctime import cpu_reader, logical_cpus, machine_busy_cpu_s
from pytest_carbon.measure.sensors.base import Reading, Sensor, weakest_method

ATTRIBUTIONS = ("auto", "machine", "process")
#: Former names, still accepted: ``never`` is the raw counter, ``always`` the CPU share.
_ALIASES = {"never": "machine", "always": "process"}
#: Weight, in busy CPU-seconds, of the calibrated marginal power when a window's own
#: power/busy ratio is estimated: /proc/stat counts 10 ms ticks, so a window in which the
#: machine did little work says little about watts per busy CPU. The blend is smooth:
#: a long busy window speaks for itself, an idle one leans on the calibration.
PRIOR_CPU_S = 0.2
#: A calibrated slope below this (W per busy CPU) is not used as a prior.
MIN_PRIOR_W_PER_CPU = 0.05


@dataclass(frozen=True)
class Measurement:
    """The result of one window. Energies in joules, times in seconds, power in watts.

    ``energy_j``: energy per component in the window (after attribution, if any): the
    dynamic energy plus the idle share.
    ``dynamic_energy_j``: energy above idle power; attributed, it is the tree's CPU time x
    the machine's watts per busy CPU.
    ``method``: per component, ``measured``, ``estimated`` or ``attributed``.
    """

    key: str
    start_unix_s: float
    duration_s: float
    energy_j: Mapping[str, float]
    dynamic_energy_j: Mapping[str, float]
    method: Mapping[str, str]
    cpu_time_s: float
    #: Part of the machine's idle power (and embodied footprint) charged to this window:
    #: 1/workers (auto), the test's share of the machine's CPU capacity (process); None
    #: with ``machine`` attribution (the whole machine is charged).
    share: float | None = None
    sensors: tuple[str, ...] = ()
    #: Power trace from the sampler: (seconds since window start, {component: watts}).
    samples: tuple[tuple[float, Mapping[str, float]], ...] = ()
    warnings: tuple[str, ...] = ()
    #: The machine-wide counters' whole delta in the window (None without such a counter).
    machine_energy_j: float | None = None
    #: Attribution rule used: auto, machine or process.
    attribution: str = "auto"
    #: This tree's part of the machine's busy CPU time in the window (None: not read).
    cpu_share: float | None = None
    #: Idle power x the window's wall time x ``share``: what keeping the machine on while
    #: the test ran cost. Reported beside ``energy_j``, never part of it.
    idle_wall_energy_j: float = 0.0
    #: The window's raw inputs, so :meth:`Meter.with_cpu_time` can charge it again through
    #: :func:`charge` (None for combined or hand-made measurements).
    inputs: WindowInputs | None = field(default=None, compare=False, repr=False)

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
            "cpu_share": self.cpu_share,
            "idle_wall_energy_j": self.idle_wall_energy_j,
            "machine_energy_j": self.machine_energy_j,
            "attribution": self.attribution,
            "sensors": list(self.sensors),
            "warnings": list(self.warnings),
        }


#: How a component's reading relates to the test (see :func:`charge`).
WIDE = "wide"  # a machine-wide counter: everything the machine drew
DYNAMIC = "dynamic"  # a per-process model without idle (the estimate's CPU)
OWN = "own"  # a per-process or per-device reading that includes its own idle


@dataclass(slots=True)
class WindowInputs:
    """What one window read: per component its raw energy delta, the sensor's method and
    kind (:data:`WIDE`, :data:`DYNAMIC`, :data:`OWN`), and the times. The input of
    :func:`charge`; kept on the Measurement so a window can be charged again. Read-only
    by convention (not ``frozen``: a frozen dataclass costs several µs to build, and
    one is built per test)."""

    deltas: Mapping[str, float]
    methods: Mapping[str, str]
    kinds: Mapping[str, str]
    duration_s: float
    cpu_s: float
    #: The machine's busy CPU-seconds in the window (None: not read).
    machine_s: float | None


@dataclass(slots=True)
class Charge:
    """What :func:`charge` decided for one window (read-only by convention, as
    :class:`WindowInputs`)."""

    energy_j: dict[str, float]
    dynamic_energy_j: dict[str, float]
    method: dict[str, str]
    share: float | None
    cpu_share: float | None
    machine_energy_j: float | None
    idle_wall_energy_j: float


def idle_share(
    attribution: str, sharers: int, cpus: int, cpu_s: float, duration_s: float
) -> float | None:
    """The part of the machine's idle power *for the wall time* given to a window: 1 /
    workers (``auto``), the window's share of the machine's CPU capacity (``process``),
    None (the whole machine) with ``machine``. Used for ``idle_wall_energy_j`` and the
    embodied share; ``energy`` charges idle by CPU time, whatever the rule."""
    if attribution == "machine":
        return None
    if attribution == "auto":
        return 1.0 / max(sharers, 1)
    capacity_s = cpus * duration_s
    return min(cpu_s / capacity_s, 1.0) if capacity_s > 0 else 0.0


def charge(
    inputs: WindowInputs,
    idle: IdleEstimate,
    *,
    cpus: int,
    attribution: str = "auto",
    sharers: int = 1,
) -> Charge:
    """A window's energy, the one definition (module docstring).

    Per component, with ``P`` its idle power and ``t`` the test's CPU time:

    * ``dynamic``: a machine-wide counter's is ``t`` x the machine's watts per busy CPU
      in the window (:func:`per_cpu_watts`); a per-process model's is its reading; a
      reading that includes idle loses ``P`` x wall time.
    * ``energy = dynamic + P / cpus x t`` (the vCPU-hour charge), except a reading that is
      the test's own total (``OWN``: kept as read) and ``machine`` attribution (the raw
      machine-wide counter; a model's dynamic energy plus ``P`` x wall time).
    * ``idle_wall_energy_j = sum(P) x wall time x share`` (:func:`idle_share`), beside.
    """
    if attribution not in ATTRIBUTIONS:
        raise ValueError(f"attribution must be one of {', '.join(ATTRIBUTIONS)}")
    duration, cpu_s = inputs.duration_s, inputs.cpu_s
    share = idle_share(attribution, sharers, cpus, cpu_s, duration)
    wall_weight = share if share is not None else 1.0
    per_cpu = max(cpus, 1)
    idle_w = idle.power_w
    kinds, methods = inputs.kinds, inputs.methods
    energy: dict[str, float] = {}
    dynamic: dict[str, float] = {}
    method: dict[str, str] = {}
    machine_energy: float | None = None
    cpu_share: float | None = None
    wall_j = 0.0
    for c, e in inputs.deltas.items():
        kind = kinds.get(c, OWN)
        p = idle_w.get(c, 0.0)
        wall_idle_j = p * duration
        cpu_idle_j = p / per_cpu * cpu_s
        wall_j += wall_idle_j * wall_weight
        method[c] = methods.get(c, "estimated")
        if kind == WIDE:
            machine_energy = (machine_energy or 0.0) + e
            if attribution == "machine":
                dynamic[c] = max(e - wall_idle_j, 0.0)
                energy[c] = e
                continue
            w = per_cpu_watts(e - wall_idle_j, cpu_s, inputs.machine_s, idle.per_cpu_w.get(c))
            dynamic[c] = cpu_s * w
            energy[c] = dynamic[c] + cpu_idle_j
            method[c] = "attributed"
            if inputs.machine_s:
                cpu_share = min(cpu_s / max(inputs.machine_s, cpu_s), 1.0)
        elif kind == DYNAMIC:
            dynamic[c] = e
            energy[c] = e + (wall_idle_j if attribution == "machine" else cpu_idle_j)
        else:
            dynamic[c] = max(e - wall_idle_j, 0.0)
            energy[c] = e
    return Charge(energy, dynamic, method, share, cpu_share, machine_energy, wall_j)


def per_cpu_watts(
    dynamic_j: float, cpu_s: float, machine_s: float | None, prior: float | None
) -> float:
    """Watts per busy CPU in a window: the machine's dynamic energy over its busy
    CPU-seconds, blended with the calibrated figure (``prior``) in proportion to how much
    busy time the window saw (no threshold: the weight moves smoothly)."""
    if prior is not None and prior < MIN_PRIOR_W_PER_CPU:
        # A component that does not follow CPU load (a GPU's counter) has no useful
        # slope: its window speaks for itself.
        prior = None
    if machine_s is None:
        # Machine busy time unreadable: assume this tree was all of the machine's work.
        machine_s = cpu_s
    # The tree's time is part of the machine's; 10 ms ticks may count less of it.
    machine_s = max(machine_s, cpu_s)
    if prior is None:
        return max(dynamic_j / machine_s, 0.0) if machine_s > 0 else 0.0
    return max((dynamic_j + prior * PRIOR_CPU_S) / (machine_s + PRIOR_CPU_S), 0.0)


class _Window:
    """An open window: what was read at its start. A plain class with slots: one is
    made per test, and a dataclass with default factories costs more to build."""

    __slots__ = ("key", "pids", "t0", "unix0", "readings", "cpu0", "machine0", "samples", "errors")

    def __init__(
        self,
        key: str,
        pids: tuple[int, ...],
        t0: float,
        unix0: float,
        readings: list[Reading],
        cpu0: float,
        machine0: float | None,
    ) -> None:
        self.key = key
        self.pids = pids
        self.t0 = t0
        self.unix0 = unix0
        self.readings = readings
        self.cpu0 = cpu0
        self.machine0 = machine0
        self.samples: list[tuple[float, dict[str, float]]] = []
        self.errors: list[str] = []


#: A window closed but not yet charged (:meth:`Meter.end_raw`): the open window, what
#: was read at its end (readings, perf clock, CPU time, machine busy time) and the idle
#: estimate in force when it closed. :meth:`Meter.measurement_of` makes it a Measurement.
ClosedWindow = tuple[_Window, list[Reading], float, float, float | None, IdleEstimate]

#: One edge of a window on the per-test edge path (:meth:`Meter.edge_reader`): the
#: perf clock, the tree's CPU seconds and its resident bytes.
Edge = tuple[float, float, int]


class WindowError(RuntimeError):
    """A window was ended without being begun, or begun twice."""


class Meter:
    """Measure energy in named windows over ``sensors``.

    Each component belongs to the first sensor that lists it, so a counter listed before
    the estimate wins. ``idle_power_w`` (per component) splits total from dynamic energy.
    ``attribution``: ``auto``, ``machine`` or ``process`` (module docstring);
    ``sharers``: how many measured windows run at once on this machine (pytest-xdist
    workers), among whom ``auto`` shares the idle power.
    """

    def __init__(
        self,
        sensors: Sequence[Sensor] | None = None,
        *,
        idle_power_w: Mapping[str, float] | None = None,
        interval_s: float = 0.1,
        attribution: str = "auto",
        proc_stat: str = "/proc/stat",
        sharers: int = 1,
        idle_store: str | None = None,
        cpu_time: Callable[[tuple[int, ...]], float] | None = None,
        machine_busy: Callable[[], float | None] | None = None,
    ) -> None:
        if sensors is None:
            from pytest_carbon.measure.sensors.estimate import EstimateSensor

            sensors = [EstimateSensor()]
        attribution = _ALIASES.get(attribution, attribution)
        if attribution not in ATTRIBUTIONS:
            raise ValueError(
                f"attribution must be one of {', '.join(ATTRIBUTIONS)}, not {attribution!r}"
            )
        self.sensors: list[Sensor] = list(sensors)
        self.owner: dict[str, int] = {}
        for i, s in enumerate(self.sensors):
            for c in s.components:
                self.owner.setdefault(c, i)
        self.idle = IdleEstimate(dict(idle_power_w or {}), method="given")
        self.interval_s = interval_s
        self.attribution = attribution
        self.sharers = max(int(sharers), 1)
        self.cpus = logical_cpus()
        #: Where trusted idle calibrations are kept and read back (None: neither).
        self.idle_store = idle_store
        self._proc_stat = proc_stat
        # The tree's CPU time and the machine's busy CPU-seconds: /proc, or scripted.
        self._cpu_time = cpu_time or cpu_reader()
        self._machine_busy = machine_busy or (lambda: machine_busy_cpu_s(self._proc_stat))
        # /proc/stat is read only where a machine-wide counter is split (~9 µs a read).
        self._machine_wide = attribution != "machine" and any(s.machine_wide for s in self.sensors)
        self._polled = [i for i, s in enumerate(self.sensors) if s.poll_interval_s is not None]
        self._windows: dict[str, _Window] = {}
        # Fixed for the meter's life; computed once, read on every window.
        self._sensor_names = tuple(s.name for s in self.sensors)
        self._update_period_s = max((s.update_period_s for s in self.sensors), default=0.0)
        self._methods = [s.method for s in self.sensors]
        self._wide = [s.machine_wide for s in self.sensors]
        # Per-process sensors whose readings exclude idle power (the estimate's CPU):
        # the idle share is added to them, not subtracted.
        self._dynamic_only = [frozenset(getattr(s, "dynamic_components", ())) for s in self.sensors]
        # Per component, once: (component, owning sensor, its method, its kind).
        self._plan = [
            (
                c,
                i,
                self._methods[i],
                WIDE if self._wide[i] else DYNAMIC if c in self._dynamic_only[i] else OWN,
            )
            for c, i in self.owner.items()
        ]
        # A sensor that reads the window's CPU clock as its own input (the estimate, with
        # the same reader as this meter) gives the window's CPU time in its readings: one
        # read of the clock per window edge instead of two.
        self._cpu_from: int | None = next(
            (
                i
                for i, s in enumerate(self.sensors)
                if getattr(s, "cpu_time_reader", None) is self._cpu_time
            ),
            None,
        )
        self._edge_plan: tuple[tuple[str, ...], dict[str, str], dict[str, str]] | None = None
        self._lock = threading.Lock()
        self._sampler: threading.Thread | None = None
        self._wake = threading.Event()
        self._closed = False
        self._polled_failed = False

    @property
    def idle_power_w(self) -> dict[str, float]:
        """The idle power per component (the live mapping: item assignment updates it)."""
        power = self.idle.power_w
        if not isinstance(power, dict):
            power = dict(power)
            self.idle = IdleEstimate(power, self.idle.uncertainty_w, self.idle.method)
        return power

    @idle_power_w.setter
    def idle_power_w(self, value: Mapping[str, float]) -> None:
        self.idle = IdleEstimate(dict(value), method="given")

    # -- windows ---------------------------------------------------------------------
    def begin(self, key: str, pids: tuple[int, ...] = ()) -> None:
        """Open window ``key``. ``pids``: live processes that belong to the measured tree."""
        if key in self._windows:
            raise WindowError(f"window {key!r} is already open")
        machine0 = self._machine_busy() if self._machine_wide else None
        shared = self._cpu_from
        cpu0 = self._cpu_time(pids) if shared is None else None
        readings = self._read_all(pids)
        if cpu0 is None:
            cpu0 = readings[shared].cpu_s  # type: ignore[index]
            if cpu0 is None:
                cpu0 = self._cpu_time(pids)
        t0 = readings[0].time_s if readings else time.perf_counter()
        self._windows[key] = _Window(key, pids, t0, time.time(), readings, cpu0, machine0)
        if self._polled and not self._polled_failed:
            self._ensure_sampler()

    def end(self, key: str) -> Measurement:
        """Close window ``key`` and return its Measurement."""
        return self.measurement_of(self.end_raw(key))

    def end_raw(self, key: str) -> ClosedWindow:
        """Close window ``key``: read its end, charge nothing yet. The per-test path keeps
        this and charges it when the record is first wanted (:meth:`measurement_of`
        gives exactly what :meth:`end` would have given then)."""
        try:
            win = self._windows.pop(key)
        except KeyError:
            raise WindowError(f"window {key!r} was not begun") from None
        readings = self._read_all(win.pids)
        shared = self._cpu_from
        cpu1 = readings[shared].cpu_s if shared is not None else None
        if cpu1 is None:
            cpu1 = self._cpu_time(win.pids)
        machine1 = self._machine_busy() if win.machine0 is not None else None
        t1 = readings[0].time_s if readings else time.perf_counter()
        return (win, readings, t1, cpu1, machine1, self.idle)

    def measurement_of(self, closed: ClosedWindow) -> Measurement:
        """The Measurement of a window closed by :meth:`end_raw`, charged with the idle
        estimate in force when it closed."""
        win, readings, t1, cpu1, machine1, idle = closed
        return self._compute(win, readings, t1, cpu1, machine1, idle)

    def charge_of(self, closed: ClosedWindow) -> tuple[WindowInputs, Charge, list[str]]:
        """What :meth:`measurement_of` computes, without building the Measurement: the
        window's inputs, its :func:`charge` and its warnings (the same steps, in the same
        order, so the same numbers). For a record built straight from a window."""
        win, readings, t1, cpu1, machine1, idle = closed
        inputs, warnings = self._inputs(win, readings, t1, cpu1, machine1)
        ch, warnings = self._charged(inputs, warnings, idle)
        return inputs, ch, warnings

    # -- the per-test edge path ---------------------------------------------------------
    def edge_reader(self) -> Callable[[], Edge] | None:
        """The cheapest way to read a plain window's edges, where the meter has one: with a
        single model sensor that gives its inputs as numbers (the estimate's ``edge``),
        whose CPU clock is the meter's own, nothing machine-wide and nothing polled, a
        window is two calls of the returned reader and no Window object. None otherwise
        (counters: :meth:`begin` / :meth:`end_raw`). :meth:`charge_edges` gives what
        :meth:`charge_of` gives for the same readings."""
        if len(self.sensors) != 1 or self._machine_wide or self._polled or self._cpu_from != 0:
            return None
        reader = getattr(self.sensors[0], "edge", None)
        return reader if callable(reader) else None

    def _edge_inputs(self, key: str, e0: Edge, e1: Edge) -> tuple[WindowInputs, list[str]]:
        energy = self.sensors[0].energy_between(e0, e1)  # type: ignore[attr-defined]
        plan = self._edge_plan
        if plan is None:
            # Once per meter: the components in the meter's order with their (fixed)
            # methods and kinds, shared by every edge window's inputs (read-only).
            comps = [(c, m, k) for c, _, m, k in self._plan if c in energy]
            plan = self._edge_plan = (
                tuple(c for c, _, _ in comps),
                {c: m for c, m, _ in comps},
                {c: k for c, _, k in comps},
            )
        deltas: dict[str, float] = {}
        for c in plan[0]:
            e = energy[c]
            deltas[c] = 0.0 if e < 0.0 else e  # max(e, 0.0), without the call
        duration = e1[0] - e0[0]
        if duration < 0.0:
            duration = 0.0
        cpu_s = e1[1] - e0[1]
        inputs = WindowInputs(
            deltas, plan[1], plan[2], duration, 0.0 if cpu_s < 0.0 else cpu_s, None
        )
        if duration < self._update_period_s:
            return inputs, self._short_window(key, duration, [])
        return inputs, []

    def charge_edges(
        self, key: str, e0: Edge, e1: Edge, idle: IdleEstimate
    ) -> tuple[WindowInputs, Charge, list[str]]:
        """:meth:`charge_of` for a window read by :meth:`edge_reader` (same steps)."""
        inputs, warnings = self._edge_inputs(key, e0, e1)
        ch, warnings = self._charged(inputs, warnings, idle)
        return inputs, ch, warnings

    def measurement_of_edges(
        self, key: str, unix0: float, e0: Edge, e1: Edge, idle: IdleEstimate
    ) -> Measurement:
        """The Measurement of a window read by :meth:`edge_reader`."""
        inputs, warnings = self._edge_inputs(key, e0, e1)
        return self._measurement(key, unix0, inputs, (), warnings, idle)

    @contextmanager
    def measure(self, key: str, pids: tuple[int, ...] = ()) -> Iterator[MeasureHandle]:
        """``with meter.measure("x") as m: ...`` then ``m.measurement``."""
        handle = MeasureHandle(key)
        self.begin(key, pids)
        try:
            yield handle
        finally:
            handle.measurement = self.end(key)

    def measure_idle(
        self, duration_s: float | None = None, *, replace_stored: bool = False
    ) -> dict[str, float]:
        """Set and return the idle power per component (:attr:`idle` has its uncertainty
        and method).

        Model sensors give their idle power without waiting; machine-wide counters are
        calibrated over ``duration_s`` (:func:`pytest_carbon.measure.idle.calibrate`).
        """
        idle: dict[str, float] = {}
        unc: dict[str, float] = {}
        methods: list[str] = []
        counting: dict[str, int] = {}
        for i, s in enumerate(self.sensors):
            model = getattr(s, "idle_power_w", None)
            if callable(model):
                for c, w in model().items():
                    if self.owner.get(c) == i:
                        idle[c] = float(w)
                        unc[c] = 0.0
                if "model" not in methods:
                    methods.append("model")
            else:
                counting.update({c: i for c in s.components if self.owner.get(c) == i})
        per_cpu: dict[str, float] = {}
        trusted = True
        modelled: frozenset[str] = frozenset()
        if counting and (duration_s is None or duration_s > 0):
            fitted = calibrate(
                lambda: self._read_all(()),
                counting,
                self._machine_busy,
                CALIBRATION_S if duration_s is None else duration_s,
            )
            fitted = self._keep_or_recall(fitted, replace_stored)
            idle.update(fitted.power_w)
            unc.update(fitted.uncertainty_w)
            per_cpu.update(fitted.per_cpu_w)
            methods.append(fitted.method)
            trusted = fitted.trusted
            modelled = fitted.modelled
        self.idle = IdleEstimate(
            idle, unc, "; ".join(methods) or "none", per_cpu, trusted, modelled
        )
        return dict(idle)

    def calibration(self) -> Calibration:
        """A calibration of this meter's machine-wide counters (see measure/idle.py)."""
        counting = {
            c: i
            for c, i in self.owner.items()
            if not callable(getattr(self.sensors[i], "idle_power_w", None))
        }
        return Calibration(lambda: self._read_all(()), counting, self._machine_busy)

    def idle_key(self) -> str:
        """This machine and its counters: what a stored idle calibration belongs to."""
        from pytest_carbon.measure.machine import machine_id

        wide = [f"{s.name}:{getattr(s, 'root', '')}" for s in self.sensors if s.machine_wide]
        return f"{machine_id()}|{','.join(wide)}"

    def _keep_or_recall(self, fitted: IdleEstimate, replace: bool) -> IdleEstimate:
        """Of this run's calibration and the stored one, keep the more certain; store a
        trusted calibration that is better than the stored one (or any, ``replace``)."""
        from pytest_carbon.measure import idle as idle_mod

        if self.idle_store is None:
            return fitted
        key = self.idle_key()
        stored = None if replace else idle_mod.load(key, self.idle_store)
        if fitted.trusted and (
            stored is None or fitted.total_uncertainty_w <= stored.total_uncertainty_w
        ):
            with suppress(OSError):
                idle_mod.save(key, fitted, self.idle_store)
            return fitted
        if stored is None:
            return fitted
        why = "more certain than" if fitted.trusted else "used: it could not trust"
        return IdleEstimate(
            stored.power_w,
            stored.uncertainty_w,
            f"{stored.method}; {why} this run's calibration ({fitted.method})",
            stored.per_cpu_w,
        )

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
            if len(self.sensors) == 1:  # the usual case: one call, no comprehension
                return [self.sensors[0].read(pids)]
            return [s.read(pids) for s in self.sensors]

    def _compute(
        self,
        win: _Window,
        readings: list[Reading],
        t1: float,
        cpu1: float,
        machine1: float | None,
        idle: IdleEstimate | None = None,
    ) -> Measurement:
        inputs, warnings = self._inputs(win, readings, t1, cpu1, machine1)
        return self._measurement(win.key, win.unix0, inputs, tuple(win.samples), warnings, idle)

    def _inputs(
        self,
        win: _Window,
        readings: list[Reading],
        t1: float,
        cpu1: float,
        machine1: float | None,
    ) -> tuple[WindowInputs, list[str]]:
        deltas: dict[str, float] = {}
        methods: dict[str, str] = {}
        kinds: dict[str, str] = {}
        first = win.readings
        for c, i, method, kind in self._plan:
            before = first[i].energy_j.get(c)
            after = readings[i].energy_j.get(c)
            if before is None or after is None:
                continue
            deltas[c] = max(after - before, 0.0)
            methods[c] = method
            kinds[c] = kind
        machine_s = (
            max(machine1 - win.machine0, 0.0)
            if machine1 is not None and win.machine0 is not None
            else None
        )
        inputs = WindowInputs(
            deltas, methods, kinds, max(t1 - win.t0, 0.0), max(cpu1 - win.cpu0, 0.0), machine_s
        )
        return inputs, self._short_window(win.key, inputs.duration_s, list(win.errors))

    def _short_window(self, key: str, duration_s: float, warnings: list[str]) -> list[str]:
        period = self._update_period_s
        if duration_s < period:
            warnings.append(
                f"window {key!r} lasted {duration_s * 1e3:.3f} ms, shorter than the "
                f"counters' update period ({period * 1e3:g} ms): its energy is unreliable; "
                "repeat the work (the carbon fixture does) to measure it"
            )
        return warnings

    def _charged(
        self, inputs: WindowInputs, warnings: Sequence[str], idle: IdleEstimate | None
    ) -> tuple[Charge, list[str]]:
        idle = self.idle if idle is None else idle
        ch = charge(
            inputs, idle, cpus=self.cpus, attribution=self.attribution, sharers=self.sharers
        )
        warnings = list(warnings)
        if not idle.trusted and WIDE in inputs.kinds.values():
            warnings.append(
                "idle power was not observable (other work kept the machine busy) and is "
                f"{idle.method}; run `pytest-carbon sensors --calibrate` on a quieter "
                "machine to store a measured figure"
            )
        return ch, warnings

    def _measurement(
        self,
        key: str,
        start_unix_s: float,
        inputs: WindowInputs,
        samples: tuple[tuple[float, Mapping[str, float]], ...],
        warnings: Sequence[str],
        idle: IdleEstimate | None = None,
    ) -> Measurement:
        ch, warnings = self._charged(inputs, warnings, idle)
        return Measurement(
            key=key,
            start_unix_s=start_unix_s,
            duration_s=inputs.duration_s,
            energy_j=ch.energy_j,
            dynamic_energy_j=ch.dynamic_energy_j,
            method=ch.method,
            cpu_time_s=inputs.cpu_s,
            share=ch.share,
            sensors=self._sensor_names,
            samples=samples,
            warnings=tuple(warnings),
            machine_energy_j=ch.machine_energy_j,
            attribution=self.attribution,
            cpu_share=ch.cpu_share,
            idle_wall_energy_j=ch.idle_wall_energy_j,
            inputs=inputs,
        )

    def with_cpu_time(self, m: Measurement, cpu_s: float) -> Measurement:
        """``m`` charged again through :func:`charge` with a more precise CPU time (a
        sandbox's cgroup figure): a per-process model's reading is recomputed from it
        (its watts per core x ``cpu_s``), counters are kept as read. ``m`` unchanged when
        it carries no inputs (a combined measurement)."""
        if m.inputs is None:
            return m
        deltas = dict(m.inputs.deltas)
        for c, kind in m.inputs.kinds.items():
            i = self.owner.get(c)
            w = getattr(self.sensors[i], "watts_per_core", None) if i is not None else None
            if kind == DYNAMIC and isinstance(w, (int, float)) and c in deltas:
                deltas[c] = max(cpu_s, 0.0) * float(w)
        inputs = WindowInputs(
            deltas,
            m.inputs.methods,
            m.inputs.kinds,
            m.inputs.duration_s,
            max(cpu_s, 0.0),
            m.inputs.machine_s,
        )
        return self._measurement(m.key, m.start_unix_s, inputs, m.samples, m.warnings)

    def settings_fingerprint(self) -> dict[str, Any]:
        """What must be equal on two sides of a comparison for their energies to be
        comparable: the sensors, the attribution rule, the components' methods."""
        return {
            "sensors": list(self._sensor_names),
            "attribution": self.attribution,
            "methods": {c: self._methods[i] for c, i in sorted(self.owner.items())},
            "sharers": self.sharers,
        }

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
        machine_energy_j=_sum_or_none([m.machine_energy_j for m in measurements]),
        attribution=first.attribution,
        idle_wall_energy_j=sum(m.idle_wall_energy_j for m in measurements),
    )


def _sum_or_none(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None
