"""Choose the sensors for this machine: counters where readable, the estimate otherwise."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pytest_carbon.measure.sensors.base import Sensor, SensorStatus, SensorUnavailable

DEFAULT_RAPL_ROOT = "/sys/class/powercap"
ALL_SENSORS = ("rapl", "nvml", "estimate")


@dataclass
class Discovery:
    """The sensors opened, and a status for each sensor tried."""

    sensors: list[Sensor] = field(default_factory=list)
    statuses: list[SensorStatus] = field(default_factory=list)

    @property
    def messages(self) -> list[str]:
        """One line per unavailable sensor that the user asked for or could fix."""
        return [
            f"{s.name}: {s.reason}" + (f" Fix: {s.fix}" if s.fix else "")
            for s in self.statuses
            if not s.available and s.fix
        ]


def parse_sensor_names(spec: str | Sequence[str]) -> tuple[str, ...]:
    if isinstance(spec, str):
        names = [n.strip() for n in spec.split(",") if n.strip()]
    else:
        names = list(spec)
    if not names or names == ["auto"]:
        return ("auto",)
    bad = [n for n in names if n not in ALL_SENSORS]
    if bad:
        raise ValueError(
            f"unknown sensor(s) {', '.join(bad)}; choose from auto, {', '.join(ALL_SENSORS)}"
        )
    return tuple(names)


#: Why NVML is not tried without an NVIDIA device node or driver.
NO_NVIDIA_DEVICE = (
    "no NVIDIA GPU: no /dev/nvidiactl or /dev/nvidia* device node and no /proc/driver/nvidia"
)


def nvidia_device_present(dev: str = "/dev", proc: str = "/proc/driver/nvidia") -> bool:
    """Whether an NVIDIA driver or device node is visible (a cheap check before NVML)."""
    if os.path.exists(proc) or os.path.exists(os.path.join(dev, "nvidiactl")):
        return True
    try:
        return any(n.startswith("nvidia") for n in os.listdir(dev))
    except OSError:
        return False


def no_rapl_root(root: str | os.PathLike[str]) -> str | None:
    """Why RAPL cannot be read when ``root`` is no directory, else None (a cheap check)."""
    path = Path(root)
    if path.is_dir():
        return None
    return (
        f"no RAPL: {path} does not exist (most VMs and containers do not expose "
        "RAPL; on bare-metal Linux the intel_rapl_msr module provides it)"
    )


def _open(name: str, rapl_root: str, interval_s: float) -> Sensor:
    # A sensor's module is imported only when its hardware may be there: the checks that
    # its constructor would make first, made here, cost no import at each session start.
    if name == "rapl":
        missing = no_rapl_root(rapl_root)
        if missing:
            raise SensorUnavailable(name, missing)
        from pytest_carbon.measure.sensors.rapl import RaplSensor

        return RaplSensor(rapl_root)
    if name == "nvml":
        if not nvidia_device_present():
            raise SensorUnavailable(name, NO_NVIDIA_DEVICE)
        from pytest_carbon.measure.sensors.nvml import NvmlSensor

        return NvmlSensor(interval_s=interval_s)
    from pytest_carbon.measure.sensors.estimate import EstimateSensor

    return EstimateSensor()


def discover(
    spec: str | Sequence[str] = "auto",
    rapl_root: str = DEFAULT_RAPL_ROOT,
    interval_s: float = 0.1,
) -> Discovery:
    """Open the sensors named by ``spec`` (``auto``: every counter that can be read, and
    the estimate for the CPU when no CPU counter can)."""
    names = parse_sensor_names(spec)
    auto = names == ("auto",)
    wanted = ("rapl", "nvml") if auto else tuple(n for n in names if n != "estimate")
    found = Discovery()
    for name in wanted:
        try:
            sensor = _open(name, rapl_root, interval_s)
        except SensorUnavailable as exc:
            found.statuses.append(
                SensorStatus(name, False, "measured", reason=exc.reason, fix=exc.fix)
            )
            continue
        except Exception as exc:  # a broken driver must never stop a test session
            found.statuses.append(
                SensorStatus(name, False, "measured", reason=f"{type(exc).__name__}: {exc}")
            )
            continue
        found.sensors.append(sensor)
        found.statuses.append(_status_of(sensor))
    has_cpu = any("cpu" in s.components for s in found.sensors)
    if "estimate" in names or (auto and not has_cpu):
        # Listed last: the meter gives each component to the first sensor that has it,
        # so the estimate only fills what no counter measures.
        est = _open("estimate", rapl_root, interval_s)
        found.sensors.append(est)
        found.statuses.append(_status_of(est))
    return found


def _status_of(sensor: Sensor) -> SensorStatus:
    status = getattr(sensor, "status", None)
    if callable(status):
        result = status()
        if isinstance(result, SensorStatus):
            return result
    return SensorStatus(sensor.name, True, sensor.method, sensor.components)
