"""The NVML sensor: energy of the visible NVIDIA GPUs, from their counters or their power.

Volta and newer GPUs keep a total-energy counter (millijoules since the driver loaded),
read with ``nvmlDeviceGetTotalEnergyConsumption``. Older GPUs only report power
(milliwatts); it is integrated with the trapezoid rule between reads, so the meter's
sampler thread must read it every ``interval_s``. ``pynvml`` (distribution
``nvidia-ml-py``) is imported only when the sensor is opened.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from pytest_carbon.measure.sensors.base import Reading, SensorStatus, SensorUnavailable

# Here for the sensor; discovery makes the same check before importing this module.
from pytest_carbon.measure.sensors.discover import NO_NVIDIA_DEVICE, nvidia_device_present

_MJ_PER_J = 1000.0
_MW_PER_W = 1000.0

ENERGY_COUNTER = "energy-counter"
POWER_INTEGRATION = "power-integration"


@dataclass
class _Gpu:
    """One GPU the sensor reads, and its running energy."""

    index: int
    handle: Any
    name: str
    uuid: str
    method: str  # ENERGY_COUNTER | POWER_INTEGRATION
    start_mj: int = 0
    energy_j: float = 0.0
    last_power_w: float = 0.0
    last_t: float = 0.0


def _text(value: object) -> str:
    # Old pynvml releases return bytes, newer ones str.
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def visible_indices(env: str | None, uuids: list[str]) -> tuple[list[int], str | None]:
    """NVML indices named by ``CUDA_VISIBLE_DEVICES`` (``env``), and a note on any entry
    that was not used. ``None``: every GPU. Entries are indices or (prefixes of) ``GPU-``
    UUIDs; as in CUDA, an invalid entry hides itself and every entry after it.

    Integer entries are taken as NVML (PCI bus) order, which is CUDA's order only under
    ``CUDA_DEVICE_ORDER=PCI_BUS_ID``; UUIDs are exact either way.
    """
    if env is None:
        return list(range(len(uuids))), None
    chosen: list[int] = []
    for raw in env.split(","):
        token = raw.strip()
        if not token:
            break
        index: int | None = None
        if token.lstrip("-").isdigit():
            i = int(token)
            index = i if 0 <= i < len(uuids) else None
        elif token.startswith("GPU-"):
            hits = [i for i, u in enumerate(uuids) if u.startswith(token)]
            index = hits[0] if len(hits) == 1 else None
        if index is None or index in chosen:
            return chosen, f"CUDA_VISIBLE_DEVICES entry {token!r} (and any after it) not used"
        chosen.append(index)
    return chosen, None


class NvmlSensor:
    """Cumulative energy of the GPUs visible to this process (component ``gpu``)."""

    name = "nvml"
    method = "measured"
    components: tuple[str, ...] = ("gpu",)
    machine_wide = True
    update_period_s = 0.1

    def __init__(self, module: Any = None, interval_s: float = 0.1, dev_root: str = "/dev") -> None:
        if module is None:
            if not nvidia_device_present(dev_root):
                # Importing the bindings costs ~25 ms at every session start; with no
                # NVIDIA device node there is nothing they could find.
                raise SensorUnavailable(self.name, NO_NVIDIA_DEVICE)
            try:
                import pynvml

                module = pynvml
            except ImportError:
                raise SensorUnavailable(
                    self.name,
                    "the NVML bindings are not installed (no pynvml module)",
                    "pip install nvidia-ml-py (only useful with an NVIDIA GPU and driver)",
                ) from None
        self._nv = module
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._closed = False
        self.errors: list[str] = []
        try:
            module.nvmlInit()
        except module.NVMLError as exc:
            self._closed = True
            raise SensorUnavailable(
                self.name, f"no NVIDIA driver: NVML could not start ({_text(exc)})"
            ) from None
        try:
            self.gpus, self.note = self._open_gpus()
        except BaseException:
            self.close()
            raise
        self.polled = any(g.method == POWER_INTEGRATION for g in self.gpus)
        self.poll_interval_s: float | None = interval_s if self.polled else None
        # A counter updates about every 100 ms at best; a power-only GPU no faster than
        # we sample it.
        self.update_period_s = max(0.1, interval_s) if self.polled else 0.1

    def _open_gpus(self) -> tuple[list[_Gpu], str | None]:
        nv = self._nv
        env = os.environ.get("CUDA_VISIBLE_DEVICES")
        if env is not None and not env.strip():
            raise SensorUnavailable(
                self.name, "CUDA_VISIBLE_DEVICES is empty: no GPU is visible to this process"
            )
        try:
            count = int(nv.nvmlDeviceGetCount())
            handles = [nv.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
            uuids = [_text(nv.nvmlDeviceGetUUID(h)) for h in handles]
        except nv.NVMLError as exc:
            raise SensorUnavailable(self.name, f"NVML could not list GPUs ({_text(exc)})") from None
        indices, note = visible_indices(env, uuids)
        if not indices:
            why = "the driver reports no GPU" if count == 0 else f"no GPU selected ({note})"
            raise SensorUnavailable(self.name, why)
        gpus: list[_Gpu] = []
        now = time.perf_counter()
        for i in indices:
            h = handles[i]
            try:
                name = _text(nv.nvmlDeviceGetName(h))
            except nv.NVMLError:
                name = "unknown NVIDIA GPU"
            try:
                start_mj = int(nv.nvmlDeviceGetTotalEnergyConsumption(h))
                gpus.append(_Gpu(i, h, name, uuids[i], ENERGY_COUNTER, start_mj, last_t=now))
                continue
            except nv.NVMLError:
                pass  # pre-Volta (NotSupported) or an old driver: integrate power instead
            try:
                power_w = nv.nvmlDeviceGetPowerUsage(h) / _MW_PER_W
            except nv.NVMLError as exc:
                self.errors.append(f"GPU {i} ({name}): neither energy nor power ({_text(exc)})")
                continue
            gpus.append(
                _Gpu(i, h, name, uuids[i], POWER_INTEGRATION, last_power_w=power_w, last_t=now)
            )
        if not gpus:
            raise SensorUnavailable(self.name, "; ".join(self.errors))
        return gpus, note

    def read(self, pids: tuple[int, ...] = ()) -> Reading:
        """Energy since the sensor was opened; ``pids`` is ignored (NVML is per device)."""
        nv = self._nv
        with self._lock:
            total_j = 0.0
            power_w = 0.0
            for g in self.gpus:
                now = time.perf_counter()
                if g.method == ENERGY_COUNTER:
                    try:
                        mj = int(nv.nvmlDeviceGetTotalEnergyConsumption(g.handle))
                        g.energy_j = (mj - g.start_mj) / _MJ_PER_J
                    except nv.NVMLError as exc:
                        self._error(g, exc)
                    if self.polled:
                        # Power too, so the trace covers every GPU when some only have power.
                        try:
                            power_w += nv.nvmlDeviceGetPowerUsage(g.handle) / _MW_PER_W
                        except nv.NVMLError as exc:
                            self._error(g, exc)
                else:
                    try:
                        w = nv.nvmlDeviceGetPowerUsage(g.handle) / _MW_PER_W
                    except nv.NVMLError as exc:
                        # Hold the last value rather than break a measurement.
                        self._error(g, exc)
                        w = g.last_power_w
                    g.energy_j += (g.last_power_w + w) / 2 * (now - g.last_t)
                    g.last_power_w, g.last_t = w, now
                    power_w += w
                total_j += g.energy_j
            t = time.perf_counter()
        if self.polled:
            return Reading(time_s=t, energy_j={"gpu": total_j}, power_w={"gpu": power_w})
        return Reading(time_s=t, energy_j={"gpu": total_j})

    def _error(self, g: _Gpu, exc: Exception) -> None:
        msg = f"GPU {g.index} ({g.name}): {_text(exc)}"
        if msg not in self.errors:
            self.errors.append(msg)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        with contextlib.suppress(Exception):
            self._nv.nvmlShutdown()

    def status(self) -> SensorStatus:
        details: dict[str, object] = {
            "gpus": [
                {"index": g.index, "name": g.name, "uuid": g.uuid, "method": g.method}
                for g in self.gpus
            ],
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "poll_interval_s": self.poll_interval_s,
        }
        with contextlib.suppress(Exception):
            details["driver_version"] = _text(self._nv.nvmlSystemGetDriverVersion())
        if self.note:
            details["note"] = self.note
        if self.errors:
            details["errors"] = list(self.errors)
        return SensorStatus(
            name=self.name,
            available=True,
            method=self.method,
            components=self.components,
            details=details,
        )


def probe(module: Any = None) -> SensorStatus:
    """Open and close the sensor, and say which GPUs it would measure (or why it cannot)."""
    try:
        sensor = NvmlSensor(module)
    except SensorUnavailable as exc:
        return SensorStatus("nvml", False, "measured", reason=exc.reason, fix=exc.fix)
    try:
        return sensor.status()
    finally:
        sensor.close()


def visible_gpus(module: Any = None) -> list[dict[str, object]]:
    """The GPUs NVML sees here (index, name, uuid, method); ``[]`` without NVML or a GPU.

    For the report's ``machine.gpus`` and the GPU part of embodied emissions. Without an
    NVIDIA device node this costs no import (see :class:`NvmlSensor`).
    """
    status = probe(module)
    gpus = status.details.get("gpus") if status.available else None
    return [dict(g) for g in gpus] if isinstance(gpus, list) else []
