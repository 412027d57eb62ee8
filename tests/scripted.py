"""A scripted clock and energy counter: measurements whose cost the test sets.

Real workloads on a shared machine give energies that drift by 10-20% from one run to
the next, so a unit test never compares two of them. Code under test reads this clock
and counter instead (as pytest-benchmark's own tests script its timer): each call of
:meth:`Scripted.work` advances time and energy by exactly what it is told, so "four
times the work" is four times the energy, to the last bit, however loaded the machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pytest_carbon.measure.sensors.base import Reading, SensorStatus


@dataclass
class Scripted:
    """Time and energy that move only when :meth:`work` says so.

    ``seconds_per_unit`` and ``joules_per_unit``: the cost of one unit of work.
    """

    seconds_per_unit: float = 0.001
    joules_per_unit: float = 0.01
    now_s: float = 1000.0
    energy_j: float = 0.0
    cpu_s: float = 0.0
    rss_bytes: int = 2 * 1024**3
    units: int = field(default=0)

    def clock(self) -> float:
        return self.now_s

    def work(self, units: int = 1) -> int:
        """Do ``units`` of work: the clock, the counter and the CPU time advance."""
        self.units += units
        self.now_s += units * self.seconds_per_unit
        self.cpu_s += units * self.seconds_per_unit
        self.energy_j += units * self.joules_per_unit
        return units

    def sleep(self, seconds: float) -> None:
        """Time passes, nothing runs."""
        self.now_s += seconds

    def cpu_time_s(self, pids: tuple[int, ...] = ()) -> float:
        return self.cpu_s

    def resident_bytes(self, pids: tuple[int, ...] = ()) -> int:
        return self.rss_bytes

    def sensor(self, method: str = "measured") -> ScriptedSensor:
        return ScriptedSensor(self, method)


class ScriptedSensor:
    """A Sensor (``sensors.base.Sensor``) that reads the scripted counter: component cpu."""

    name = "scripted"
    components: tuple[str, ...] = ("cpu",)
    machine_wide = False
    update_period_s = 0.0
    poll_interval_s: float | None = None

    def __init__(self, script: Scripted, method: str = "measured") -> None:
        self.script = script
        self.method = method

    def read(self, pids: tuple[int, ...] = ()) -> Reading:
        return Reading(time_s=self.script.now_s, energy_j={"cpu": self.script.energy_j})

    def close(self) -> None:
        pass

    def status(self) -> SensorStatus:
        return SensorStatus(self.name, True, self.method, self.components)
