"""The estimate sensor: energy from the process tree's CPU time and memory, by a stated model.

Used where no counter can be read (VMs, CI runners). The model, documented in
``docs/how-numbers-are-computed.md``:

* **CPU**, per hardware thread (a VM's vCPU is one): ``cpu_j = cpu_time_s x W``.
  On bare metal with the model in codecarbon's ``cpu_power.csv``: ``W`` = TDP / threads
  per package, no idle model. On a virtualised or unknown CPU: Cloud Carbon Footprint's
  per-vCPU coefficients (SPECpower-based), ``power = min + utilisation x (max - min)``
  per vCPU: ``W = max - min`` for each busy CPU-second, and ``vCPUs x min`` is the
  machine's idle power (:meth:`EstimateSensor.idle_power_w`), which the meter shares
  like a counter's idle.
* **Memory** (component ``dram``): ``dram_j = rss_gb x MEMORY_WATTS_PER_GB x wall_s``,
  with RSS sampled at each read (trapezoid rule between reads). On the per-test edge
  path an RSS read less than 1 ms old is reused: a process faults memory in or out at
  about 10 GB/s at most, so the reused figure is off by 10 MB at most, 1.7 mW of DRAM
  term through the trapezoid (pytest alone holds ~50 MB: ~18 mW), under 0.1% of a window's
  energy next to the CPU's watts.

Only the process tree's own work counts, so the estimate is per-process by nature and
needs no attribution under concurrency.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from pytest_carbon.measure.machine import CpuInfo, cpu_info
from pytest_carbon.measure.proctime import backend, cpu_reader, rss_reader
from pytest_carbon.measure.sensors.base import NO_POWER, Reading, SensorStatus

#: Cloud Carbon Footprint's per-vCPU coefficients where the micro-architecture is
#: unknown (cloudcarbonfootprint.org/docs/methodology, "Compute"; min/max watts per vCPU
#: from the SPECpower database): AWS average 0.74/3.5, GCP median 0.71/4.26, Azure
#: average 0.78/3.76. We take the mean of the three providers, stated in every report.
CCF_PROVIDERS_W = {"aws": (0.74, 3.5), "gcp": (0.71, 4.26), "azure": (0.78, 3.76)}
CLOUD_MIN_W_PER_VCPU = round(sum(v[0] for v in CCF_PROVIDERS_W.values()) / 3, 3)
CLOUD_MAX_W_PER_VCPU = round(sum(v[1] for v in CCF_PROVIDERS_W.values()) / 3, 3)

#: Power drawn by memory per GB resident: 0.3725 W/GB, Green Algorithms' figure
#: (Lannelongue et al., 2021, "Green Algorithms: Quantifying the Carbon Footprint of
#: Computation", Adv. Sci.), which cites Karyakin & Salem, DaMoN 2017
#: (doi:10.1145/3076113.3076117). See docs/how-numbers-are-computed.md for its caveats.
MEMORY_WATTS_PER_GB = 0.3725

_GB = 1024**3

#: On the per-test edge path, an RSS read younger than this is reused (seconds).
EDGE_RSS_REUSE_S = 0.001


def normalize_cpu_name(name: str) -> str:
    """``Intel(R) Xeon(R) Platinum 8280 CPU @ 2.70GHz`` -> ``intel xeon platinum 8280``."""
    s = re.sub(r"\((R|TM|tm|r)\)", " ", name)
    s = re.sub(r"@.*$", " ", s)
    s = re.sub(r"\b\d+-Core\b", " ", s, flags=re.I)
    s = re.sub(r"\b(CPU|Processor|with Radeon.*|w/ Radeon.*)\b", " ", s, flags=re.I)
    return " ".join(s.lower().split())


def lookup_tdp_w(model: str, table: dict[str, float]) -> tuple[str, float] | None:
    """Find a CPU model in codecarbon's table: exact normalised name, else the longest
    table name whose words all appear in the model (model numbers must match exactly)."""
    target = normalize_cpu_name(model)
    if not target:
        return None
    # Normalising all ~5,000 names costs ~50 ms: first keep only names whose last word
    # (usually the model number) occurs in the target.
    norm = {
        normalize_cpu_name(k): (k, v)
        for k, v in table.items()
        if k.split() and k.split()[-1].lower() in target
    }
    if target in norm:
        return norm[target]
    words = set(target.split())
    best: tuple[str, float] | None = None
    best_len = 0
    for key, (name, tdp) in norm.items():
        kw = key.split()
        # Require a word with a digit (the model number) so "AMD EPYC" never matches.
        if not any(any(ch.isdigit() for ch in w) for w in kw):
            continue
        if set(kw) <= words and len(key) > best_len:
            best, best_len = (name, tdp), len(key)
    return best


@dataclass(frozen=True)
class CpuPowerModel:
    """The CPU power the estimate charges: watts per busy thread, and where they come from."""

    #: Watts per busy hardware thread (CPU-second / second) above idle.
    watts_per_core: float
    source: str
    tdp_w: float | None = None
    matched_name: str | None = None
    #: Idle watts per logical CPU (0 where the model has no idle part).
    idle_w_per_cpu: float = 0.0


def cpu_power_model(info: CpuInfo | None = None) -> CpuPowerModel:
    info = info or cpu_info()
    match = None
    # A name without a model number ("Intel Xeon Processor" in many VMs) can match no
    # entry: skip reading the 5,000-row table, which costs tens of ms at session start.
    # Normalising only removes characters: a name without a digit needs no normalising
    # (nor the four patterns it compiles).
    if any(ch.isdigit() for ch in info.model) and any(
        any(ch.isdigit() for ch in w) for w in normalize_cpu_name(info.model).split()
    ):
        import csv

        from pytest_carbon.carbon.ccdata import DataMissing, cpu_power_table

        try:
            match = lookup_tdp_w(info.model, cpu_power_table())
        except (DataMissing, OSError, UnicodeDecodeError, csv.Error):
            # codecarbon missing, or its table unreadable: the stated fallback applies,
            # and the sensor's status says which model was used.
            match = None
    threads = max(info.logical_cpus // max(info.packages, 1), 1)
    if match and not info.hypervisor:
        name, tdp = match
        return CpuPowerModel(
            watts_per_core=tdp / threads,
            source=f"codecarbon cpu_power.csv: {name} TDP {tdp:g} W / {threads} threads",
            tdp_w=tdp,
            matched_name=name,
        )
    lo, hi = CLOUD_MIN_W_PER_VCPU, CLOUD_MAX_W_PER_VCPU
    why = (
        "virtualised"
        if info.hypervisor
        else f"CPU model {info.model!r} not in codecarbon's cpu_power.csv"
    )
    if match:
        why += f" ({match[0]} TDP {match[1]:g} W is the host's, not this guest's)"
    return CpuPowerModel(
        watts_per_core=hi - lo,
        source=f"Cloud Carbon Footprint cloud average per vCPU ({why}): min {lo:g} W + "
        f"utilisation x (max {hi:g} W - min)",
        tdp_w=match[1] if match else None,
        matched_name=match[0] if match else None,
        idle_w_per_cpu=lo,
    )


class EstimateSensor:
    """Cumulative estimated energy of the process tree (``cpu`` and ``dram``)."""

    name = "estimate"
    method = "estimated"
    components: tuple[str, ...] = ("cpu", "dram")
    #: ``cpu`` readings hold only the work above idle: the meter adds the idle share.
    dynamic_components: tuple[str, ...] = ("cpu",)
    machine_wide = False
    #: No counter that updates on a period: the model is read when asked (its CPU-time
    #: input has clock-tick resolution, a caveat of its own, not an update period).
    update_period_s = 0.0
    poll_interval_s: float | None = None

    def __init__(
        self,
        watts_per_core: float | None = None,
        memory_watts_per_gb: float = MEMORY_WATTS_PER_GB,
        pids: tuple[int, ...] = (),
        *,
        clock: Callable[[], float] = time.perf_counter,
        cpu_time_s: Callable[[tuple[int, ...]], float] | None = None,
        resident_bytes: Callable[[tuple[int, ...]], int] | None = None,
    ) -> None:
        # clock, cpu_time_s, resident_bytes: the model's inputs, replaceable so that a
        # test can script them (as pytest-benchmark scripts its timer). By default the
        # /proc or psutil readers (proctime), chosen once, here.
        cpu_time_s = cpu_time_s or cpu_reader()
        resident_bytes = resident_bytes or rss_reader()
        self._clock = clock
        self._cpu_time_s = cpu_time_s
        #: The CPU-time reader: a meter reading the same one takes each window's CPU time
        #: from this sensor's readings (``Reading.cpu_s``), one read instead of two.
        self.cpu_time_reader = cpu_time_s
        self._rss = resident_bytes
        model = cpu_power_model() if watts_per_core is None else None
        self.model = model or CpuPowerModel(watts_per_core or 0.0, "given")
        self.watts_per_core = self.model.watts_per_core
        self.memory_watts_per_gb = memory_watts_per_gb
        self.pids = pids
        self._lock = threading.Lock()
        self._t0 = clock()
        self._last_t = self._t0
        self._last_rss = resident_bytes(pids)
        self._dram_j = 0.0
        self._cpu0 = cpu_time_s(pids)
        self._edge_rss = (self._t0, self._last_rss)

    def read(self, pids: tuple[int, ...] = ()) -> Reading:
        with self._lock:
            now = self._clock()
            rss = self._rss(pids)
            self._dram_j += (
                (self._last_rss + rss) / 2 / _GB * self.memory_watts_per_gb * (now - self._last_t)
            )
            self._last_t, self._last_rss = now, rss
            cpu = self._cpu_time_s(pids)
            cpu_j = (cpu - self._cpu0) * self.watts_per_core
            return Reading(now, {"cpu": cpu_j, "dram": self._dram_j}, NO_POWER, cpu)

    def edge(self) -> tuple[float, float, int]:
        """One edge of a window, as three numbers (clock, CPU time, RSS of this process),
        by the readers :meth:`read` uses, for the meter's per-test path
        (:meth:`~pytest_carbon.measure.meter.Meter.edge_reader`). No lock and no running
        DRAM integral: :meth:`energy_between` of two edges is what two reads with no read
        between them give. RSS is read again only when the last edge's is at least
        :data:`EDGE_RSS_REUSE_S` old (a read costs as much as the rest of the edge): a
        process cannot grow or shrink enough in that time to move the window's energy
        by 0.1% (module docstring)."""
        now = self._clock()
        last = self._edge_rss
        if now - last[0] < EDGE_RSS_REUSE_S:
            rss = last[1]
        else:
            rss = self._rss(())
            self._edge_rss = (now, rss)
        return (now, self._cpu_time_s(()), rss)

    def energy_between(
        self, a: tuple[float, float, int], b: tuple[float, float, int]
    ) -> dict[str, float]:
        """The model's energy per component between two :meth:`edge` readings: CPU time
        x watts per core, and the trapezoid of RSS over the wall time (as :meth:`read`)."""
        return {
            "cpu": (b[1] - a[1]) * self.watts_per_core,
            "dram": (a[2] + b[2]) / 2 / _GB * self.memory_watts_per_gb * (b[0] - a[0]),
        }

    def idle_power_w(self) -> dict[str, float]:
        """The model's power at rest: the machine's idle CPU power (vCPUs x min; 0 on bare
        metal, whose TDP model has no idle part), current memory resident."""
        return {
            "cpu": self.model.idle_w_per_cpu * cpu_info().logical_cpus,
            "dram": self._rss(self.pids) / _GB * self.memory_watts_per_gb,
        }

    def close(self) -> None:
        pass

    def status(self) -> SensorStatus:
        return SensorStatus(
            name=self.name,
            available=True,
            method=self.method,
            components=self.components,
            details={
                "cpu_model": cpu_info().model,
                "watts_per_core": round(self.watts_per_core, 3),
                "idle_w_per_cpu": self.model.idle_w_per_cpu,
                "cpu_source": self.model.source,
                "memory_watts_per_gb": self.memory_watts_per_gb,
                "memory_source": "Green Algorithms (Lannelongue et al. 2021): 0.3725 W/GB",
                "process_reader": backend(),
            },
        )
