"""Facts about this machine: CPU model, core counts, memory, hostname, machine id.

Read from ``/proc`` and :mod:`platform`; never from the ``cpuinfo`` module, which two
PyPI distributions (py-cpuinfo, py-cpuinfo2) install under the same name.
"""

from __future__ import annotations

import functools
import os
import platform
from dataclasses import dataclass


@dataclass(frozen=True)
class CpuInfo:
    """The CPU facts of ``/proc/cpuinfo``."""

    model: str
    logical_cpus: int
    #: Physical cores per package as the kernel reports it (``cpu cores``); in a VM this
    #: is the guest's topology, not the host's.
    cores_per_package: int | None
    packages: int
    hypervisor: bool


def parse_cpuinfo(text: str) -> CpuInfo:
    """Parse the text of ``/proc/cpuinfo``."""
    model = ""
    cores: int | None = None
    logical = 0
    packages: set[str] = set()
    hypervisor = False
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        value = value.strip()
        if key == "processor":
            logical += 1
        elif key == "model name" and not model:
            model = value
        elif key == "cpu cores" and cores is None:
            try:
                cores = int(value)
            except ValueError:
                cores = None
        elif key == "physical id":
            packages.add(value)
        elif key == "flags" and " hypervisor" in f" {value} ":
            hypervisor = True
    return CpuInfo(
        model=model or platform.processor() or platform.machine(),
        logical_cpus=logical or (os.cpu_count() or 1),
        cores_per_package=cores,
        packages=max(1, len(packages)),
        hypervisor=hypervisor,
    )


@functools.lru_cache(maxsize=1)
def cpu_info() -> CpuInfo:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            return parse_cpuinfo(f.read())
    except OSError:
        return CpuInfo(
            model=platform.processor() or platform.machine(),
            logical_cpus=os.cpu_count() or 1,
            cores_per_package=None,
            packages=1,
            hypervisor=False,
        )


def ram_gb() -> float:
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024**2, 2)
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


def machine_id() -> str:
    """A stable, privacy-preserving id: system, CPU model and a hash of the hostname."""
    import hashlib
    import socket

    info = cpu_info()
    host = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
    cpu = "".join(c if c.isalnum() else "_" for c in info.model)[:40].strip("_")
    return f"{platform.system()}-{cpu}-{info.logical_cpus}cpu-{host}"


def machine_json(gpus: list[dict[str, object]] | None = None) -> dict[str, object]:
    import socket

    info = cpu_info()
    return {
        "hostname": socket.gethostname(),
        "machine_id": machine_id(),
        "system": platform.system(),
        "python": platform.python_version(),
        "cpu_model": info.model,
        "cpu_count": info.logical_cpus,
        "ram_gb": ram_gb(),
        "virtualized": info.hypervisor,
        "gpus": gpus or [],
    }
