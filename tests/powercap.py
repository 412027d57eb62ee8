"""Test helper: writes a fake Linux powercap tree whose counters advance by known power.

The tree has the kernel's shape: top-level zones ``intel-rapl:N`` with their subzones
nested inside (``intel-rapl:N/intel-rapl:N:M``) and, as in ``/sys/class/powercap``, also
linked flat beside them. Each zone holds ``name``, ``energy_uj`` and
``max_energy_range_uj``. :meth:`FakePowercap.advance` adds ``power_w x seconds`` to every
zone and wraps at ``max_energy_range_uj`` like the hardware. A zone's ``power_w`` may be
changed at any time; :attr:`FakeZone.true_energy_j` is the unwrapped truth to compare with.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

#: A typical Xeon's range: 2^32 raw units of 61.035 uJ.
DEFAULT_MAX_RANGE_UJ = 262_143_328_850
_WIDTH = 24  # energy_uj is rewritten in place at a fixed width, so a reader never sees it torn


@dataclass
class FakeZone:
    zone: str
    name: str
    path: Path
    power_w: float
    max_range_uj: int
    energy_uj: float
    true_energy_j: float = 0.0
    wraps: int = 0
    _fd: int = field(default=-1, repr=False)

    def write(self) -> None:
        text = f"{int(self.energy_uj):<{_WIDTH}d}\n".encode()
        os.pwrite(self._fd, text, 0)

    def step(self, seconds: float) -> None:
        added = self.power_w * seconds * 1e6
        self.true_energy_j += added / 1e6
        value = self.energy_uj + added
        while value >= self.max_range_uj:
            value -= self.max_range_uj
            self.wraps += 1
        self.energy_uj = value
        self.write()


class FakePowercap:
    """A powercap tree under ``root``; zones are added with :meth:`zone`."""

    def __init__(self, root: str | os.PathLike[str], prefix: str = "intel-rapl") -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.prefix = prefix
        self.zones: dict[str, FakeZone] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def zone(
        self,
        zone: str,
        name: str,
        power_w: float,
        *,
        max_range_uj: int = DEFAULT_MAX_RANGE_UJ,
        start_uj: int = 1_000_000,
        max_power_uw: int | None = None,
        flat_link: bool = True,
    ) -> FakeZone:
        """Add ``zone`` (``intel-rapl:0`` or a subzone ``intel-rapl:0:2``)."""
        parts = zone.split(":")
        if len(parts) == 3:
            parent = ":".join(parts[:2])
            path = self.root / parent / zone
        else:
            path = self.root / zone
        path.mkdir(parents=True, exist_ok=True)
        (path / "name").write_text(name + "\n")
        (path / "max_energy_range_uj").write_text(f"{max_range_uj}\n")
        if max_power_uw is not None:
            (path / "constraint_0_max_power_uw").write_text(f"{max_power_uw}\n")
        energy = path / "energy_uj"
        energy.write_text("")
        fd = os.open(energy, os.O_WRONLY)
        z = FakeZone(zone, name, path, power_w, max_range_uj, float(start_uj), _fd=fd)
        z.write()
        if len(parts) == 3 and flat_link:
            # /sys/class/powercap lists subzones flat as well as nested.
            (self.root / zone).symlink_to(path, target_is_directory=True)
        self.zones[zone] = z
        return z

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass for every zone at its current power."""
        with self._lock:
            for z in self.zones.values():
                z.step(seconds)

    def advance_in_steps(self, seconds: float, step_s: float) -> None:
        n = max(1, round(seconds / step_s))
        for _ in range(n):
            self.advance(seconds / n)

    # -- real time -----------------------------------------------------------------------
    def start(self, tick_s: float = 0.001) -> None:
        """Advance the counters by real elapsed time, in a thread, like the hardware."""

        def run() -> None:
            last = time.perf_counter()
            while not self._stop.wait(tick_s):
                now = time.perf_counter()
                self.advance(now - last)
                last = now

        self._stop.clear()
        self._thread = threading.Thread(target=run, name="fake-powercap", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None

    def close(self) -> None:
        self.stop()
        for z in self.zones.values():
            if z._fd >= 0:
                os.close(z._fd)
                z._fd = -1


def server_tree(root: str | os.PathLike[str]) -> FakePowercap:
    """A one-socket Intel server as the kernel shows it: package-0 (35 W) with core,
    uncore and dram (4 W) subzones, a psys zone, and an MMIO duplicate of the package."""
    pc = FakePowercap(root)
    pc.zone("intel-rapl:0", "package-0", 35.0, start_uj=123_456_789)
    pc.zone("intel-rapl:0:0", "core", 20.0, start_uj=5_000_000)
    pc.zone("intel-rapl:0:1", "uncore", 3.0, start_uj=7_000_000)
    pc.zone("intel-rapl:0:2", "dram", 4.0, start_uj=9_876_543)
    pc.zone("intel-rapl:1", "psys", 60.0, start_uj=11_111_111)
    mmio = FakePowercap(pc.root, prefix="intel-rapl-mmio")
    z = mmio.zone("intel-rapl-mmio:0", "package-0", 35.0, start_uj=123_456_789)
    pc.zones["intel-rapl-mmio:0"] = z
    return pc


# -- a package whose power follows the machine's load ---------------------------------------


def busy_cpu_s(proc_stat: str = "/proc/stat") -> float:
    """Busy CPU-seconds of the whole machine since boot, as /proc/stat counts them."""
    with open(proc_stat, "rb") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return (v[0] + v[1] + v[2] + v[5] + v[6]) / os.sysconf("SC_CLK_TCK")


def follow_load(
    root: str | os.PathLike[str],
    idle_w: float,
    per_cpu_w: float,
    dram_w: float,
    *,
    tick_s: float = 0.01,
    stop: threading.Event | None = None,
) -> None:
    """Run a package whose power is ``idle_w + per_cpu_w x busy CPUs`` (read from
    /proc/stat) and a constant-power DRAM zone, rewriting ``energy_uj`` in place every
    ``tick_s`` like sysfs, until ``stop`` is set (or forever). Meant to run in its own
    process (``python tests/powercap.py follow ...``), so that its own CPU time is other
    work, not the measured test's."""
    with contextlib.suppress(OSError):
        # Hardware counters never lag; on a loaded machine a 10 ms updater would, so it
        # asks for the highest priority it is allowed (it sleeps between updates).
        os.nice(-20)
    pc = FakePowercap(root)
    pkg = pc.zone("intel-rapl:0", "package-0", idle_w, max_range_uj=2**62)
    pc.zone("intel-rapl:0:0", "dram", dram_w, max_range_uj=2**62)
    (Path(root) / "ready").write_text("1\n")
    last_t = time.perf_counter()
    last_busy = busy_cpu_s()
    try:
        while stop is None or not stop.is_set():
            time.sleep(tick_s)
            now, busy = time.perf_counter(), busy_cpu_s()
            dt = now - last_t
            if dt <= 0:
                continue
            # Energy of the interval: idle x dt + per_cpu x busy CPU-seconds (exact in
            # /proc/stat's own ticks, so a reader comparing with /proc/stat sees no drift).
            pkg.power_w = idle_w + per_cpu_w * max(busy - last_busy, 0.0) / dt
            pc.advance(dt)
            last_t, last_busy = now, busy
    finally:
        pc.close()


if __name__ == "__main__":  # python tests/powercap.py follow ROOT IDLE_W PER_CPU_W DRAM_W
    import sys

    if len(sys.argv) != 6 or sys.argv[1] != "follow":
        raise SystemExit("usage: powercap.py follow ROOT IDLE_W PER_CPU_W DRAM_W")
    follow_load(sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]))
