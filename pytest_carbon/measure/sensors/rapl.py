"""The RAPL sensor: CPU package and DRAM energy from the Linux powercap counters.

Layout (``/sys/class/powercap``, or any root given for tests and containers)::

    intel-rapl:0/            name = package-0      energy_uj  max_energy_range_uj
    intel-rapl:0/intel-rapl:0:0/   name = core     (inside the package: never added)
    intel-rapl:0/intel-rapl:0:1/   name = uncore   (inside the package: never added)
    intel-rapl:0/intel-rapl:0:2/   name = dram     (outside the package: added)
    intel-rapl:1/            name = psys           (whole platform: overlaps, never added)
    intel-rapl-mmio:0/       the package again, through MMIO (a duplicate: skipped)

AMD Zen CPUs are served by the same ``intel_rapl`` driver, with the same ``intel-rapl``
names (``package-N`` with a ``core`` subzone, no DRAM). An ``amd-rapl`` prefix is
accepted as well, in case a kernel names its control type after the vendor.

Counters are microjoules that wrap at ``max_energy_range_uj`` (for a 200 W package, about
every 20 minutes). Each zone keeps its last raw value; a decrease means one wrap. More
than one wrap between two reads cannot be seen, so ``poll_interval_s`` tells the meter
how often it must read to stay safe.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from pytest_carbon.measure.sensors.base import Reading, SensorError, SensorStatus, SensorUnavailable
from pytest_carbon.measure.sensors.discover import no_rapl_root

DEFAULT_ROOT = "/sys/class/powercap"

#: Zone directories: ``intel-rapl:0`` (top level) or ``intel-rapl:0:2`` (subzone).
_ZONE_RE = re.compile(r"^(intel-rapl|amd-rapl):(\d+)(?::(\d+))?$")

#: Power assumed for a zone that states no maximum, when working out how fast its counter
#: can wrap: more than any current CPU socket or DIMM set draws.
ASSUMED_MAX_POWER_W = 500.0
#: Read at least this many times per shortest possible wrap period.
WRAP_SAFETY = 4.0
#: Counters that cannot wrap within this long need no polling between window ends.
NO_POLL_ABOVE_S = 3600.0

_UJ_PER_J = 1e6


def permission_fix(root: str | os.PathLike[str] = DEFAULT_ROOT) -> str:
    """How to let an ordinary user read the counters, now and after a reboot."""
    r = os.fspath(root).rstrip("/") or "/"
    return (
        f"sudo chmod o+r {r}/intel-rapl:*/energy_uj {r}/intel-rapl:*/*/energy_uj "
        "(until reboot). To keep it, add the udev rule "
        "/etc/udev/rules.d/99-powercap-rapl.rules containing: "
        'SUBSYSTEM=="powercap", ACTION=="add", KERNEL=="intel-rapl:*", '
        'RUN+="/bin/chmod o+r /sys%p/energy_uj" '
        "and reboot or run `sudo udevadm trigger --subsystem-match=powercap`. "
        "Kernels restrict these files to root since the PLATYPUS power side channel "
        "(CVE-2020-8694): grant access only where that is acceptable."
    )


@dataclass
class _Zone:
    """One powercap zone read for the sensor (its fd stays open)."""

    zone: str  # directory name, e.g. intel-rapl:0:2
    name: str  # the zone's ``name`` file, e.g. dram
    component: str  # cpu | dram
    package: str  # the package it belongs to, e.g. package-0
    path: Path
    max_range_uj: int
    max_power_w: float
    fd: int
    last_raw_uj: int
    total_uj: int = 0

    @property
    def wrap_period_s(self) -> float:
        return self.max_range_uj / (self.max_power_w * _UJ_PER_J)


def _read_text(path: Path) -> str:
    with open(path, encoding="ascii", errors="replace") as f:
        return f.read().strip()


def _read_int(path: Path) -> int:
    return int(_read_text(path))


def _pread_int(fd: int) -> int:
    # A sysfs attribute re-reads its value at offset 0, so one open fd serves every read.
    # An empty or torn value (a file being rewritten) is retried once before failing.
    for _ in range(3):
        data = os.pread(fd, 64, 0)
        try:
            return int(data)
        except ValueError:
            continue
    raise ValueError(f"not an integer: {data!r}")


class RaplSensor:
    """Cumulative energy of every CPU package (component ``cpu``) and DRAM (``dram``)."""

    name = "rapl"
    method = "measured"
    machine_wide = True
    update_period_s = 0.001

    def __init__(self, root: str | os.PathLike[str] = DEFAULT_ROOT) -> None:
        self.root = Path(root)
        self._lock = threading.Lock()
        self._closed = False
        self.skipped: list[dict[str, str]] = []
        self.mirrored: dict[str, str] = {}
        self._zones: list[_Zone] = []
        try:
            self._open_zones()
        except BaseException:
            self.close()
            raise
        comps = ["cpu"]
        if any(z.component == "dram" for z in self._zones):
            comps.append("dram")
        self.components: tuple[str, ...] = tuple(comps)
        shortest = min(z.wrap_period_s for z in self._zones) / WRAP_SAFETY
        self.poll_interval_s: float | None = None if shortest > NO_POLL_ABOVE_S else shortest

    # -- discovery ---------------------------------------------------------------------
    def _unavailable(self, reason: str, fix: str | None = None) -> SensorUnavailable:
        return SensorUnavailable(self.name, reason, fix)

    def _open_zones(self) -> None:
        root = self.root
        missing = no_rapl_root(root)
        if missing:
            raise self._unavailable(missing)
        try:
            entries = sorted(os.listdir(root))
        except OSError as exc:
            raise self._unavailable(f"cannot list {root}: {exc.strerror or exc}") from None
        for entry in entries:
            if entry.startswith(("intel-rapl-mmio", "amd-rapl-mmio")):
                # The same package counter reached through MMIO: adding it would double it.
                self.skipped.append({"zone": entry, "why": "MMIO duplicate of a package zone"})
        tops = [
            (int(m.group(2)), entry)
            for entry in entries
            if (m := _ZONE_RE.match(entry)) and m.group(3) is None
        ]
        if not tops:
            raise self._unavailable(
                f"no RAPL zones: {root} has no intel-rapl:* entries (most VMs and containers "
                "do not expose RAPL; on bare-metal Linux the intel_rapl_msr module provides it)"
            )
        for _, entry in sorted(tops):
            self._open_top(entry, entries)
        if not any(z.component == "cpu" for z in self._zones):
            raise self._unavailable(
                f"no RAPL package zone under {root}; found only: "
                + ", ".join(f"{s['zone']} ({s['why']})" for s in self.skipped)
            )
        self._drop_mirrors()

    def _open_top(self, entry: str, entries: list[str]) -> None:
        path = self.root / entry
        name = self._zone_name(path, entry)
        if name.startswith("package"):
            self._add(entry, name, "cpu", name, path)
        elif name == "dram":
            # Some servers expose DRAM as its own top-level zone.
            self._add(entry, name, "dram", name, path)
        elif name == "psys":
            self.skipped.append({"zone": entry, "name": name, "why": "platform total: overlaps"})
            return
        else:
            self.skipped.append({"zone": entry, "name": name, "why": "unknown domain"})
            return
        if not name.startswith("package"):
            return
        # Subzones live inside the package directory; /sys/class/powercap also lists them
        # flat beside it. Prefer the nested copy, fall back to the flat one.
        subs: dict[str, Path] = {}
        try:
            nested = sorted(os.listdir(path))
        except OSError:
            nested = []
        for sub in nested:
            m = _ZONE_RE.match(sub)
            if m and m.group(3) is not None and f"{m.group(1)}:{m.group(2)}" == entry:
                subs[sub] = path / sub
        for sub in entries:
            m = _ZONE_RE.match(sub)
            if m and m.group(3) is not None and f"{m.group(1)}:{m.group(2)}" == entry:
                subs.setdefault(sub, self.root / sub)
        for sub, sub_path in sorted(subs.items()):
            sub_name = self._zone_name(sub_path, sub)
            if sub_name == "dram":
                self._add(sub, sub_name, "dram", name, sub_path)
            else:
                # core and uncore (and any other) are parts of the package's own counter.
                why = (
                    "inside the package counter"
                    if sub_name in ("core", "uncore")
                    else ("unknown domain")
                )
                self.skipped.append({"zone": sub, "name": sub_name, "why": why})

    def _zone_name(self, path: Path, entry: str) -> str:
        try:
            return _read_text(path / "name")
        except OSError:
            return entry

    def _add(self, zone: str, name: str, component: str, package: str, path: Path) -> None:
        energy = path / "energy_uj"
        try:
            fd = os.open(energy, os.O_RDONLY)
        except PermissionError:
            raise self._unavailable(
                f"{energy} is readable by root only", permission_fix(self.root)
            ) from None
        except OSError as exc:
            raise self._unavailable(f"cannot open {energy}: {exc.strerror or exc}") from None
        where = energy
        try:
            raw = _pread_int(fd)
            where = path / "max_energy_range_uj"
            max_range = _read_int(where)
        except PermissionError:
            os.close(fd)
            raise self._unavailable(
                f"{where} is readable by root only", permission_fix(self.root)
            ) from None
        except (OSError, ValueError) as exc:
            os.close(fd)
            detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise self._unavailable(f"cannot read {where}: {detail}") from None
        if max_range <= 0:
            os.close(fd)
            raise self._unavailable(f"{path}/max_energy_range_uj is {max_range}")
        try:
            max_power_w = _read_int(path / "constraint_0_max_power_uw") / _UJ_PER_J
        except (OSError, ValueError):
            max_power_w = 0.0
        if max_power_w <= 0:
            max_power_w = ASSUMED_MAX_POWER_W
        self._zones.append(
            _Zone(zone, name, component, package, path, max_range, max_power_w, fd, raw)
        )

    def _drop_mirrors(self) -> None:
        # Multi-die AMD parts can list one package zone per die that all show the one
        # socket counter (codecarbon issue 1274). Independent counters almost never hold
        # the very same non-zero value, so an exact match is taken as a mirror.
        seen: dict[int, str] = {}
        keep: list[_Zone] = []
        for z in self._zones:
            if z.component == "cpu" and z.last_raw_uj > 0:
                if z.last_raw_uj in seen:
                    self.mirrored[z.zone] = seen[z.last_raw_uj]
                    os.close(z.fd)
                    continue
                seen[z.last_raw_uj] = z.zone
            keep.append(z)
        self._zones = keep

    # -- reading -----------------------------------------------------------------------
    def read(self, pids: tuple[int, ...] = ()) -> Reading:
        """Energy since the sensor was opened; ``pids`` is ignored (counters are
        machine-wide)."""
        with self._lock:
            if self._closed:
                raise SensorError("rapl: read after close()")
            cpu_uj = 0
            dram_uj = 0
            for z in self._zones:
                try:
                    raw = _pread_int(z.fd)
                except (OSError, ValueError) as exc:
                    raise SensorError(f"rapl: cannot read {z.path}/energy_uj: {exc}") from None
                delta = raw - z.last_raw_uj
                if delta < 0:
                    delta += z.max_range_uj
                z.total_uj += delta
                z.last_raw_uj = raw
                if z.component == "cpu":
                    cpu_uj += z.total_uj
                else:
                    dram_uj += z.total_uj
            now = time.perf_counter()
        energy = {"cpu": cpu_uj / _UJ_PER_J}
        if "dram" in self.components:
            energy["dram"] = dram_uj / _UJ_PER_J
        return Reading(time_s=now, energy_j=energy)

    def package_energy_j(self) -> dict[str, dict[str, float]]:
        """Energy per package and component since the sensor was opened (as of the last
        read): ``{"package-0": {"cpu": J, "dram": J}}``."""
        out: dict[str, dict[str, float]] = {}
        with self._lock:
            for z in self._zones:
                pkg = out.setdefault(z.package, {})
                pkg[z.component] = pkg.get(z.component, 0.0) + z.total_uj / _UJ_PER_J
        return out

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for z in self._zones:
                with contextlib.suppress(OSError):
                    os.close(z.fd)

    def status(self) -> SensorStatus:
        return SensorStatus(
            name=self.name,
            available=True,
            method=self.method,
            components=self.components,
            details={
                "root": str(self.root),
                "zones": [
                    {
                        "zone": z.zone,
                        "name": z.name,
                        "component": z.component,
                        "package": z.package,
                        "max_energy_range_uj": z.max_range_uj,
                        "wrap_period_s": round(z.wrap_period_s, 3),
                    }
                    for z in self._zones
                ],
                "packages": self.package_energy_j(),
                "skipped": list(self.skipped),
                "mirrored": dict(self.mirrored),
                "poll_interval_s": self.poll_interval_s,
                "update_period_s": self.update_period_s,
            },
        )


def probe(root: str | os.PathLike[str] = DEFAULT_ROOT) -> SensorStatus:
    """Open and close the sensor, and say what it would measure (or why it cannot)."""
    try:
        sensor = RaplSensor(root)
    except SensorUnavailable as exc:
        return SensorStatus("rapl", False, "measured", reason=exc.reason, fix=exc.fix)
    try:
        return sensor.status()
    finally:
        sensor.close()
