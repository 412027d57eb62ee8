"""Test helper: a stand-in for the ``pynvml`` module (nvidia-ml-py) with scripted GPUs.

It exposes the functions, error classes and constants the NVML sensor uses, with the
real library's shapes: ``NVMLError(value)`` becomes the subclass for that code, energy is
in millijoules, power in milliwatts, and a GPU without an energy counter raises
``NVMLError_NotSupported``. Each :class:`FakeGpu` draws ``power_w`` (changeable at any
time); its energy counter integrates that power over real time (``time.perf_counter``),
or over a scripted ``clock`` (a function returning seconds) where a test needs exact figures.
"""

from __future__ import annotations

import threading
import time
import types
from collections.abc import Callable
from dataclasses import dataclass, field

NVML_SUCCESS = 0
NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_GPU_IS_LOST = 15


class NVMLError(Exception):
    _by_value: dict[int, type[NVMLError]] = {}
    _text = {
        NVML_ERROR_UNINITIALIZED: "Uninitialized",
        NVML_ERROR_NOT_SUPPORTED: "Not Supported",
        NVML_ERROR_DRIVER_NOT_LOADED: "Driver Not Loaded",
        NVML_ERROR_LIBRARY_NOT_FOUND: "NVML Shared Library Not Found",
        NVML_ERROR_GPU_IS_LOST: "GPU is lost",
    }
    value: int

    def __new__(cls, value: int) -> NVMLError:
        if cls is NVMLError:
            cls = NVMLError._by_value.get(value, cls)
        obj = Exception.__new__(cls)
        obj.value = value
        return obj

    def __init__(self, value: int) -> None:
        super().__init__(value)

    def __str__(self) -> str:
        return self._text.get(self.value, f"Unknown Error {self.value}")


class NVMLError_Uninitialized(NVMLError):  # noqa: N801 (the real library's names)
    pass


class NVMLError_NotSupported(NVMLError):  # noqa: N801
    pass


class NVMLError_DriverNotLoaded(NVMLError):  # noqa: N801
    pass


class NVMLError_LibraryNotFound(NVMLError):  # noqa: N801
    pass


class NVMLError_GpuIsLost(NVMLError):  # noqa: N801
    pass


NVMLError._by_value.update(
    {
        NVML_ERROR_UNINITIALIZED: NVMLError_Uninitialized,
        NVML_ERROR_NOT_SUPPORTED: NVMLError_NotSupported,
        NVML_ERROR_DRIVER_NOT_LOADED: NVMLError_DriverNotLoaded,
        NVML_ERROR_LIBRARY_NOT_FOUND: NVMLError_LibraryNotFound,
        NVML_ERROR_GPU_IS_LOST: NVMLError_GpuIsLost,
    }
)


@dataclass
class FakeGpu:
    name: str = "NVIDIA A100-SXM4-40GB"
    uuid: str = "GPU-00000000-1111-2222-3333-444444444444"
    power_w: float = 100.0
    energy_counter: bool = True
    start_mj: int = 5_000_000
    lost: bool = False
    clock: Callable[[], float] = field(default=time.perf_counter, repr=False)
    _energy_mj: float = field(default=0.0, repr=False)
    _t: float = field(default=0.0, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self._energy_mj = float(self.start_mj)
        self._t = self.clock()

    def set_power(self, power_w: float) -> None:
        with self._lock:
            self._settle()
            self.power_w = power_w

    def _settle(self) -> None:
        now = self.clock()
        self._energy_mj += self.power_w * (now - self._t) * 1000.0
        self._t = now

    def energy_mj(self) -> int:
        with self._lock:
            self._settle()
            return int(self._energy_mj)

    def true_energy_j(self) -> float:
        return (self.energy_mj() - self.start_mj) / 1000.0


class FakeNvml(types.ModuleType):
    """``FakeNvml(gpus)`` behaves as ``import pynvml`` on a machine with those GPUs.

    ``init_error``: an NVML error code ``nvmlInit`` raises (no driver, no library).
    """

    def __init__(self, gpus: list[FakeGpu] | None = None, init_error: int | None = None) -> None:
        super().__init__("fake_pynvml")
        self.gpus = list(gpus or [])
        self.init_error = init_error
        self.initialised = 0
        self.calls: dict[str, int] = {}
        for name in (
            "NVMLError",
            "NVMLError_Uninitialized",
            "NVMLError_NotSupported",
            "NVMLError_DriverNotLoaded",
            "NVMLError_LibraryNotFound",
            "NVMLError_GpuIsLost",
            "NVML_ERROR_NOT_SUPPORTED",
            "NVML_ERROR_DRIVER_NOT_LOADED",
            "NVML_ERROR_LIBRARY_NOT_FOUND",
            "NVML_ERROR_GPU_IS_LOST",
        ):
            setattr(self, name, globals()[name])

    def _count(self, fn: str) -> None:
        self.calls[fn] = self.calls.get(fn, 0) + 1
        if fn != "nvmlInit" and self.initialised <= 0:
            raise NVMLError(NVML_ERROR_UNINITIALIZED)

    def _gpu(self, handle: int) -> FakeGpu:
        gpu = self.gpus[handle]
        if gpu.lost:
            raise NVMLError(NVML_ERROR_GPU_IS_LOST)
        return gpu

    def nvmlInit(self) -> None:  # noqa: N802 (the real library's names)
        self._count("nvmlInit")
        if self.init_error is not None:
            raise NVMLError(self.init_error)
        self.initialised += 1

    def nvmlShutdown(self) -> None:  # noqa: N802
        self._count("nvmlShutdown")
        self.initialised -= 1

    def nvmlSystemGetDriverVersion(self) -> str:  # noqa: N802
        self._count("nvmlSystemGetDriverVersion")
        return "550.54.15"

    def nvmlDeviceGetCount(self) -> int:  # noqa: N802
        self._count("nvmlDeviceGetCount")
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:  # noqa: N802
        self._count("nvmlDeviceGetHandleByIndex")
        if not 0 <= index < len(self.gpus):
            raise NVMLError(2)  # NVML_ERROR_INVALID_ARGUMENT
        return index

    def nvmlDeviceGetName(self, handle: int) -> str:  # noqa: N802
        self._count("nvmlDeviceGetName")
        return self._gpu(handle).name

    def nvmlDeviceGetUUID(self, handle: int) -> str:  # noqa: N802
        self._count("nvmlDeviceGetUUID")
        return self._gpu(handle).uuid

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: int) -> int:  # noqa: N802
        self._count("nvmlDeviceGetTotalEnergyConsumption")
        gpu = self._gpu(handle)
        if not gpu.energy_counter:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        return gpu.energy_mj()

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:  # noqa: N802
        self._count("nvmlDeviceGetPowerUsage")
        return int(self._gpu(handle).power_w * 1000)
