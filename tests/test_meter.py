"""The meter over real sensors: RAPL on a fake powercap tree, NVML on a fake pynvml."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_pynvml import FakeGpu, FakeNvml
from powercap import FakePowercap, server_tree

from pytest_carbon.measure.meter import Meter, WindowError
from pytest_carbon.measure.sensors.nvml import NvmlSensor
from pytest_carbon.measure.sensors.rapl import RaplSensor

SAMPLER = "pytest-carbon-sampler"
TICK_S = 0.01  # /proc/stat counts in 1/100 s on Linux


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[FakePowercap]:
    pc = server_tree(tmp_path / "powercap")
    yield pc
    pc.close()


@pytest.fixture
def no_poll_tree(tmp_path: Path) -> Iterator[FakePowercap]:
    """package-0 (35 W) + dram (4 W) with counters too wide to wrap: no polling needed."""
    pc = FakePowercap(tmp_path / "wide")
    pc.zone("intel-rapl:0", "package-0", 35.0, max_range_uj=2**62)
    pc.zone("intel-rapl:0:2", "dram", 4.0, max_range_uj=2**62)
    yield pc
    pc.close()


class ProcStat:
    """A fake /proc/stat whose busy ticks we set, to script how busy the machine was."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.busy_s = 1000.0
        self.write()

    def write(self) -> None:
        user = round(self.busy_s / TICK_S)
        self.path.write_text(f"cpu  {user} 0 0 900000 0 0 0 0 0 0\ncpu0 {user} 0 0 0 0 0 0 0\n")

    def add(self, busy_s: float) -> None:
        self.busy_s += busy_s
        self.write()


def burn(seconds: float) -> None:
    end = time.process_time() + seconds
    x = 0
    while time.process_time() < end:
        x += 1


def sampler_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == SAMPLER and t.is_alive()]


def test_begin_end_measures_the_counters(no_poll_tree: FakePowercap) -> None:
    meter = Meter([RaplSensor(no_poll_tree.root)], attribution="never")
    meter.begin("w")
    no_poll_tree.advance(2.0)
    m = meter.end("w")
    meter.close()
    assert m.energy_j == pytest.approx({"cpu": 70.0, "dram": 8.0}, rel=0.01)
    assert m.method == {"cpu": "measured", "dram": "measured"}
    assert m.overall_method == "measured"
    assert m.sensors == ("rapl",)
    assert m.share is None


def test_context_manager_and_window_errors(tree: FakePowercap) -> None:
    with Meter([RaplSensor(tree.root)], attribution="never") as meter:
        with meter.measure("block") as handle:
            tree.advance(0.5)
        assert handle.measurement is not None
        assert handle.measurement.energy_j["cpu"] == pytest.approx(17.5, rel=0.01)
        assert handle.measurement.energy_j["dram"] == pytest.approx(2.0, rel=0.01)
        with pytest.raises(WindowError):
            meter.end("block")
        meter.begin("x")
        with pytest.raises(WindowError):
            meter.begin("x")
        meter.end("x")


def test_rapl_owns_cpu_and_dram_before_the_estimate(no_poll_tree: FakePowercap) -> None:
    from pytest_carbon.measure.sensors.estimate import EstimateSensor

    meter = Meter([RaplSensor(no_poll_tree.root), EstimateSensor()], attribution="never")
    with meter.measure("w") as h:
        no_poll_tree.advance(1.0)
        burn(0.05)  # the estimate would give this ~0.5 J; the counter's 35 J must win
    meter.close()
    m = h.measurement
    assert m is not None
    assert m.energy_j["cpu"] == pytest.approx(35.0, rel=0.01)
    assert m.method["cpu"] == "measured"


def test_idle_baseline_gives_dynamic_energy(no_poll_tree: FakePowercap) -> None:
    no_poll_tree.start()
    try:
        meter = Meter([RaplSensor(no_poll_tree.root)], attribution="never")
        idle = meter.measure_idle(0.3)
        assert idle["cpu"] == pytest.approx(35.0, rel=0.05)
        assert idle["dram"] == pytest.approx(4.0, rel=0.05)
        no_poll_tree.zones["intel-rapl:0"].power_w = 55.0  # 20 W of work above idle
        with meter.measure("work") as h:
            time.sleep(0.5)
        meter.close()
    finally:
        no_poll_tree.stop()
    m = h.measurement
    assert m is not None
    assert m.energy_j["cpu"] == pytest.approx(55.0 * m.duration_s, rel=0.03)
    assert m.dynamic_energy_j["cpu"] == pytest.approx(20.0 * m.duration_s, rel=0.1)
    assert m.dynamic_energy_j["dram"] == pytest.approx(0.0, abs=0.1)


def test_attribution_always_gives_the_cpu_time_share(
    no_poll_tree: FakePowercap, tmp_path: Path
) -> None:
    stat = ProcStat(tmp_path / "stat")
    meter = Meter([RaplSensor(no_poll_tree.root)], attribution="always", proc_stat=str(stat.path))
    meter.measure_idle(0)  # counters: no idle without waiting; nothing set
    meter.idle_power_w = {"cpu": 10.0, "dram": 2.0}
    meter.begin("w")
    burn(0.1)
    no_poll_tree.advance(1.0)
    stat.add(2.0)  # the machine was busy for 2 CPU-seconds: ours plus other work
    m = meter.end("w")
    meter.close()
    assert m.share is not None
    assert m.share == pytest.approx(m.cpu_time_s / 2.0, rel=0.01)
    assert 0.02 < m.share < 0.2
    assert m.method == {"cpu": "attributed", "dram": "attributed"}
    assert m.overall_method == "attributed"
    assert m.energy_j["cpu"] == pytest.approx(35.0 * m.share, rel=0.01)
    assert m.energy_j["dram"] == pytest.approx(4.0 * m.share, rel=0.01)
    # Idle power is shared the same way before it is subtracted.
    assert m.dynamic_energy_j["cpu"] == pytest.approx(
        max(35.0 * m.share - 10.0 * m.share * m.duration_s, 0.0), rel=0.01
    )


def test_auto_attribution_only_when_other_work_runs(
    no_poll_tree: FakePowercap, tmp_path: Path
) -> None:
    stat = ProcStat(tmp_path / "stat")
    meter = Meter([RaplSensor(no_poll_tree.root)], proc_stat=str(stat.path))
    meter.begin("alone")
    burn(0.1)
    no_poll_tree.advance(1.0)
    stat.add(0.1)  # nothing else ran
    alone = meter.end("alone")
    meter.begin("busy")
    burn(0.1)
    no_poll_tree.advance(1.0)
    stat.add(1.0)  # 0.9 CPU-seconds of other work
    busy = meter.end("busy")
    meter.close()
    assert alone.share is None and alone.method["cpu"] == "measured"
    assert busy.share is not None and busy.method["cpu"] == "attributed"
    assert busy.energy_j["cpu"] < 35.0 * 0.5


def test_short_window_warns(no_poll_tree: FakePowercap) -> None:
    meter = Meter([RaplSensor(no_poll_tree.root)], attribution="never")
    meter.begin("tiny")
    short = meter.end("tiny")
    meter.begin("long")
    time.sleep(0.005)
    long = meter.end("long")
    meter.close()
    assert short.duration_s < 0.001
    assert any("shorter than the counters' update period" in w for w in short.warnings)
    assert long.warnings == ()


def test_no_sampler_thread_when_no_sensor_needs_polling(no_poll_tree: FakePowercap) -> None:
    sensor = RaplSensor(no_poll_tree.root)
    assert sensor.poll_interval_s is None
    before = len(sampler_threads())
    meter = Meter([sensor], attribution="never")
    meter.begin("w")
    time.sleep(0.02)
    assert len(sampler_threads()) == before
    meter.end("w")
    meter.close()


def test_sampler_thread_runs_for_a_wrapping_counter(tmp_path: Path) -> None:
    pc = FakePowercap(tmp_path)
    pc.zone(
        "intel-rapl:0",
        "package-0",
        35.0,
        max_range_uj=7_000_000,  # 7 J: wraps every 0.2 s at 35 W
        max_power_uw=50_000_000,
    )
    sensor = RaplSensor(tmp_path)
    assert sensor.poll_interval_s == pytest.approx(7.0 / 50.0 / 4)
    before = len(sampler_threads())
    pc.start()
    try:
        meter = Meter([sensor], attribution="never")
        meter.begin("w")
        assert len(sampler_threads()) == before + 1
        time.sleep(1.0)
        m = meter.end("w")
        meter.close()
    finally:
        pc.stop()
        pc.close()
    assert len(sampler_threads()) == before
    assert pc.zones["intel-rapl:0"].wraps >= 4
    # Four or more wraps in the window, all caught by the sampler's reads.
    assert m.energy_j["cpu"] == pytest.approx(35.0 * m.duration_s, rel=0.03)
    assert len(m.samples) >= 10
    # The trace's power comes from successive counter reads, wraps included.
    powers = sorted(p["cpu"] for _, p in m.samples if "cpu" in p)
    assert powers[len(powers) // 2] == pytest.approx(35.0, rel=0.1)


def test_nvml_power_integration_through_the_sampler() -> None:
    gpu = FakeGpu(power_w=100.0, energy_counter=False)
    nv = FakeNvml([gpu])
    sensor = NvmlSensor(nv, interval_s=0.02)
    meter = Meter([sensor], interval_s=0.02, attribution="never")
    truth0 = gpu.true_energy_j()
    meter.begin("gpu")
    assert len(sampler_threads()) >= 1
    time.sleep(0.25)
    gpu.set_power(250.0)
    time.sleep(0.25)
    m = meter.end("gpu")
    truth = gpu.true_energy_j() - truth0
    meter.close()
    assert nv.initialised == 0  # the meter closed the sensor: nvmlShutdown
    assert m.method == {"gpu": "measured"}
    assert m.energy_j["gpu"] == pytest.approx(truth, rel=0.05)
    powers = [p["gpu"] for _, p in m.samples]
    assert 100.0 in powers and 250.0 in powers
    assert len(powers) >= 10


def test_idle_power_is_the_machines_not_a_share_of_it(
    no_poll_tree: FakePowercap, tmp_path: Path
) -> None:
    stat = ProcStat(tmp_path / "stat")
    stop = threading.Event()

    def other_work() -> None:  # another process keeps one core busy meanwhile
        while not stop.wait(0.01):
            stat.add(0.01)

    busy = threading.Thread(target=other_work, daemon=True)
    no_poll_tree.start()
    busy.start()
    try:
        meter = Meter(
            [RaplSensor(no_poll_tree.root)], attribution="always", proc_stat=str(stat.path)
        )
        idle = meter.measure_idle(0.3)
        meter.close()
    finally:
        stop.set()
        busy.join()
        no_poll_tree.stop()
    assert idle["cpu"] == pytest.approx(35.0, rel=0.1)
