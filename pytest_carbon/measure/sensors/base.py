"""The Sensor protocol, its Reading, and the errors sensors raise."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol, runtime_checkable


def weakest_method(methods: list[str] | tuple[str, ...] | set[str]) -> str:
    """The least direct of several methods: estimated < attributed < measured.

    ``measured``: read from a hardware counter. ``estimated``: computed from a model (CPU
    time x power). ``attributed``: a share of a machine-wide measured counter, given to
    one process tree by its CPU-time share.

    Labels that are not measurements (``unknown``: a footprint that could not be
    estimated; ``none``: nothing to measure, e.g. a built-in model's generation) are
    returned as they are, never promoted to ``estimated``.
    """
    for m in ("estimated", "attributed", "measured", "unknown", "none"):
        if m in methods:
            return m
    return "none"


#: Shared by every Reading that carries no power (one less dict per read on the hot path).
NO_POWER: Mapping[str, float] = MappingProxyType({})
_NO_POWER = NO_POWER


@dataclass(slots=True)
class Reading:
    """Cumulative energy per component at one instant (read-only by convention: not
    ``frozen``, which made each of the two reads per test cost several µs more).

    ``energy_j`` values are joules since the sensor was opened, already corrected for
    counter wraparound; only differences between two readings are meaningful.
    ``time_s`` is ``time.perf_counter()`` at the read.
    """

    time_s: float
    energy_j: Mapping[str, float]
    #: Instantaneous power per component in watts, where the sensor reads power.
    power_w: Mapping[str, float] = field(default_factory=lambda: _NO_POWER)
    #: The measured tree's CPU seconds at the read, where the sensor read them as its
    #: input (the estimate): the meter then takes its window's CPU time from here
    #: instead of reading the same clock a second time (None: not read).
    cpu_s: float | None = None


class SensorError(Exception):
    """A sensor failed in a way its caller should report."""


class SensorUnavailable(SensorError):
    """The sensor cannot be used on this machine: ``reason`` says why, ``fix`` how to fix it."""

    def __init__(self, sensor: str, reason: str, fix: str | None = None) -> None:
        self.sensor = sensor
        self.reason = reason
        self.fix = fix
        super().__init__(f"{sensor}: {reason}" + (f" (fix: {fix})" if fix else ""))


@runtime_checkable
class Sensor(Protocol):
    """Yields cumulative energy per component.

    Attributes:
        name: short name (``rapl``, ``nvml``, ``estimate``).
        method: ``measured`` for counters, ``estimated`` for models.
        components: component names this sensor reports (``cpu``, ``dram``, ``gpu``, ...).
        machine_wide: True when the counter covers the whole machine (RAPL, NVML), so a
            share must be attributed to the measured process tree under concurrency.
        update_period_s: how often the underlying counter updates; windows shorter than
            this get a warning.
        poll_interval_s: None when two reads bracketing a window suffice; otherwise the
            longest safe gap between reads (a counter that can wrap, or a power-only
            reading that must be integrated), so the meter runs its sampler thread.
    """

    name: str
    method: str
    components: tuple[str, ...]
    machine_wide: bool
    update_period_s: float
    poll_interval_s: float | None

    def read(self, pids: tuple[int, ...] = ()) -> Reading:
        """Cumulative energy now. ``pids`` names live processes that belong to the measured
        tree; only per-process sensors (the estimate) use it, counters ignore it."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class SensorStatus:
    """What the doctor reports for one sensor."""

    name: str
    available: bool
    method: str
    components: tuple[str, ...] = ()
    reason: str | None = None
    fix: str | None = None
    details: Mapping[str, object] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "available": self.available,
            "method": self.method,
            "components": list(self.components),
            "reason": self.reason,
            "fix": self.fix,
            "details": dict(self.details),
        }
