"""The estimate sensor: scales with the work done, idles near zero, and states its model."""

from __future__ import annotations

import statistics
import time

import pytest

from pytest_carbon.carbon.ccdata import cpu_power_table
from pytest_carbon.measure.machine import CpuInfo, cpu_info
from pytest_carbon.measure.meter import Meter
from pytest_carbon.measure.sensors.base import Sensor
from pytest_carbon.measure.sensors.estimate import (
    CLOUD_MAX_W_PER_VCPU,
    CLOUD_MIN_W_PER_VCPU,
    MEMORY_WATTS_PER_GB,
    EstimateSensor,
    cpu_power_model,
    lookup_tdp_w,
    normalize_cpu_name,
)


def loop(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def calibrate(target_s: float) -> int:
    n = 20_000
    while True:
        t0 = time.process_time()
        loop(n)
        spent = time.process_time() - t0
        if spent > 0.01:
            return max(1, int(n * target_s / spent))
        n *= 4


def test_is_a_sensor() -> None:
    s = EstimateSensor()
    assert isinstance(s, Sensor)
    assert (s.method, s.machine_wide, s.poll_interval_s) == ("estimated", False, None)


def test_twice_the_work_is_estimated_at_twice_the_energy() -> None:
    n = calibrate(0.04)
    meter = Meter([EstimateSensor()])
    ratios = []
    for _ in range(7):
        # Each N run is paired with the 2N run right after it, so a burst of load from
        # elsewhere on the machine tends to hit both; the median pair ratio ignores the rest.
        pair = []
        for k in (n, 2 * n):
            with meter.measure(f"loop{k}") as h:
                loop(k)
            assert h.measurement is not None
            assert h.measurement.method["cpu"] == "estimated"
            pair.append(h.measurement.energy_j["cpu"])
        assert pair[0] > 0
        ratios.append(pair[1] / pair[0])
    meter.close()
    assert statistics.median(ratios) == pytest.approx(2.0, rel=0.10)


def test_sleeping_is_estimated_near_idle() -> None:
    sensor = EstimateSensor()
    meter = Meter([sensor])
    idle = meter.measure_idle()
    # The CPU's idle power is the model's: vCPUs x CCF's min (0 on bare metal).
    assert idle["cpu"] == pytest.approx(sensor.model.idle_w_per_cpu * cpu_info().logical_cpus)
    assert idle["dram"] > 0
    with meter.measure("sleep") as h:
        time.sleep(0.3)
    meter.close()
    m = h.measurement
    assert m is not None
    # Sleeping uses almost no CPU time: well under 10 ms of it, so no dynamic energy...
    assert m.dynamic_energy_j["cpu"] < 0.01 * sensor.watts_per_core
    assert m.total_dynamic_energy_j == pytest.approx(0.0, abs=0.01 * sensor.watts_per_core)
    assert m.energy_j["dram"] == pytest.approx(idle["dram"] * m.duration_s, rel=0.1)
    # ...and the total is idle power x duration, give or take 1 ms of CPU (the reads).
    assert m.total_energy_j == pytest.approx(
        sum(idle.values()) * m.duration_s, abs=0.001 * sensor.watts_per_core
    )
    assert m.warnings == ()


def test_a_busy_cpu_second_costs_max_minus_min_above_the_shared_idle() -> None:
    info = CpuInfo("AMD EPYC", 2, 2, 1, True)
    model = cpu_power_model(info)
    # CCF: power per vCPU = min + utilisation x (max - min); one busy vCPU for 1 s costs
    # (max - min) J above the machine's idle, which is vCPUs x min.
    assert model.watts_per_core == pytest.approx(CLOUD_MAX_W_PER_VCPU - CLOUD_MIN_W_PER_VCPU)
    assert model.idle_w_per_cpu == CLOUD_MIN_W_PER_VCPU
    sensor = EstimateSensor(watts_per_core=model.watts_per_core)
    meter = Meter([sensor], idle_power_w={"cpu": 2 * CLOUD_MIN_W_PER_VCPU, "dram": 0.0})
    with meter.measure("busy") as h:
        end = time.process_time() + 0.2
        while time.process_time() < end:
            pass
    meter.close()
    m = h.measurement
    assert m is not None
    # (The sensor and the meter read CPU time microseconds apart.)
    assert m.dynamic_energy_j["cpu"] == pytest.approx(m.cpu_time_s * model.watts_per_core, rel=0.01)
    # A whole 2-vCPU VM at 50 % (one vCPU busy) draws 2 x (min + 0.5 (max - min)) in CCF's
    # formula: our busy vCPU's dynamic energy plus the idle, over the window.
    ccf_w = 2 * (CLOUD_MIN_W_PER_VCPU + 0.5 * (CLOUD_MAX_W_PER_VCPU - CLOUD_MIN_W_PER_VCPU))
    expected_j = m.dynamic_energy_j["cpu"] + 2 * CLOUD_MIN_W_PER_VCPU * m.duration_s
    assert m.energy_j["cpu"] == pytest.approx(expected_j)
    assert ccf_w * m.duration_s == pytest.approx(
        (model.watts_per_core + 2 * CLOUD_MIN_W_PER_VCPU) * m.duration_s
    )


def test_memory_model_is_resident_gb_times_watts_per_gb() -> None:
    sensor = EstimateSensor(watts_per_core=5.0)
    assert sensor.idle_power_w()["dram"] == pytest.approx(
        sensor.idle_power_w()["dram"] / MEMORY_WATTS_PER_GB * MEMORY_WATTS_PER_GB
    )
    r0 = sensor.read()
    time.sleep(0.1)
    r1 = sensor.read()
    rss_gb = sensor.idle_power_w()["dram"] / MEMORY_WATTS_PER_GB
    expected = rss_gb * MEMORY_WATTS_PER_GB * (r1.time_s - r0.time_s)
    assert r1.energy_j["dram"] - r0.energy_j["dram"] == pytest.approx(expected, rel=0.05)


@pytest.mark.parametrize(
    ("model", "normalised"),
    [
        ("Intel(R) Xeon(R) Platinum 8280 CPU @ 2.70GHz", "intel xeon platinum 8280"),
        ("AMD EPYC 7763 64-Core Processor", "amd epyc 7763"),
        ("Intel(R) Core(TM) i7-8700K CPU @ 3.70GHz", "intel core i7-8700k"),
        ("AMD Ryzen 7 5800H with Radeon Graphics", "amd ryzen 7 5800h"),
    ],
)
def test_cpu_name_normalisation(model: str, normalised: str) -> None:
    assert normalize_cpu_name(model) == normalised


@pytest.mark.parametrize(
    ("model", "tdp_w"),
    [
        ("Intel(R) Xeon(R) Platinum 8280 CPU @ 2.70GHz", 205.0),
        ("AMD EPYC 7763 64-Core Processor", 280.0),
        ("Intel(R) Core(TM) i7-8700K CPU @ 3.70GHz", 95.0),
        ("AMD EPYC", None),  # what a VM often shows: no model number, no match
        ("Intel(R) Xeon(R) Processor @ 2.10GHz", None),
        ("Intel(R) Xeon(R) Gold 9999 CPU @ 2.70GHz", None),  # no such part: no near miss
    ],
)
def test_tdp_lookup_in_codecarbons_table(model: str, tdp_w: float | None) -> None:
    found = lookup_tdp_w(model, cpu_power_table())
    assert (found[1] if found else None) == tdp_w


def test_power_model_uses_tdp_per_thread_on_bare_metal() -> None:
    info = CpuInfo("Intel(R) Xeon(R) Platinum 8280 CPU @ 2.70GHz", 56, 28, 1, False)
    model = cpu_power_model(info)
    assert model.watts_per_core == pytest.approx(205 / 56)
    assert model.idle_w_per_cpu == 0.0
    assert "205 W / 56 threads" in model.source


def test_power_model_uses_ccf_per_vcpu_in_a_vm() -> None:
    info = CpuInfo("Intel(R) Xeon(R) Platinum 8280 CPU @ 2.70GHz", 2, 2, 1, True)
    model = cpu_power_model(info)
    assert model.watts_per_core == pytest.approx(CLOUD_MAX_W_PER_VCPU - CLOUD_MIN_W_PER_VCPU)
    assert model.idle_w_per_cpu == CLOUD_MIN_W_PER_VCPU
    assert model.tdp_w == 205.0
    assert "virtualised" in model.source and "Cloud Carbon Footprint" in model.source


def test_power_model_uses_ccf_for_an_unknown_cpu() -> None:
    model = cpu_power_model(CpuInfo("AMD EPYC", 4, 4, 1, False))
    assert model.watts_per_core == pytest.approx(CLOUD_MAX_W_PER_VCPU - CLOUD_MIN_W_PER_VCPU)
    assert model.tdp_w is None
    assert "not in codecarbon" in model.source


def test_the_cloud_average_is_ccfs_three_providers() -> None:
    # cloudcarbonfootprint.org methodology: AWS 0.74/3.5, GCP 0.71/4.26, Azure 0.78/3.76.
    assert pytest.approx((0.74 + 0.71 + 0.78) / 3, abs=1e-3) == CLOUD_MIN_W_PER_VCPU
    assert pytest.approx((3.5 + 4.26 + 3.76) / 3, abs=1e-3) == CLOUD_MAX_W_PER_VCPU


def test_status_states_the_model() -> None:
    details = EstimateSensor().status().details
    assert details["watts_per_core"] > 0  # type: ignore[operator]
    assert details["cpu_source"]
    assert "0.3725" in str(details["memory_source"])
