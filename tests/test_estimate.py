"""The estimate sensor: scales with the work done, idles near zero, and states its model."""

from __future__ import annotations

import time

import pytest
from scripted import Scripted

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


def test_is_a_sensor() -> None:
    s = EstimateSensor()
    assert isinstance(s, Sensor)
    assert (s.method, s.machine_wide, s.poll_interval_s) == ("estimated", False, None)


def scripted_sensor(script: Scripted, watts_per_core: float = 5.0) -> EstimateSensor:
    return EstimateSensor(
        watts_per_core,
        clock=script.clock,
        cpu_time_s=script.cpu_time_s,
        resident_bytes=script.resident_bytes,
    )


def test_twice_the_work_is_estimated_at_twice_the_energy() -> None:
    # The model: cpu_j = CPU seconds x watts per core. With the CPU time scripted, twice
    # the CPU time is exactly twice the energy (the OS's accounting of real loops is
    # noisy on a shared machine: benchmarks/bench_scaling.py reports that figure).
    script = Scripted(seconds_per_unit=0.01)
    meter = Meter([scripted_sensor(script, watts_per_core=5.0)])
    energies = []
    for units in (10, 20):
        with meter.measure(f"work{units}") as h:
            script.work(units)
        assert h.measurement is not None
        assert h.measurement.method["cpu"] == "estimated"
        energies.append(h.measurement.energy_j["cpu"])
    meter.close()
    assert energies == [pytest.approx(0.1 * 5.0), pytest.approx(0.2 * 5.0)]


def test_the_real_cpu_time_of_a_loop_is_counted() -> None:
    # Unscripted: the sensor reads this process's CPU time from the OS. A lower bound
    # only: other work can only add time.
    sensor = EstimateSensor(watts_per_core=10.0)
    meter = Meter([sensor])
    with meter.measure("loop") as h:
        t0 = time.process_time()
        while time.process_time() - t0 < 0.05:
            pass
    meter.close()
    assert h.measurement is not None
    assert h.measurement.energy_j["cpu"] >= 0.04 * 10.0


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
    # ...its CPU is charged idle per CPU x its own (tiny) CPU time, not the machine's
    # idle for the wall time: that is reported beside, in idle_wall_energy_j.
    assert m.energy_j["cpu"] == pytest.approx(
        idle["cpu"] / meter.cpus * m.cpu_time_s, abs=0.001 * sensor.watts_per_core
    )
    assert m.idle_wall_energy_j == pytest.approx(sum(idle.values()) * m.duration_s)
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
    # formula; the busy vCPU's part of it, charged to the test, is (min + (max - min)) per
    # busy second: its dynamic energy plus one vCPU's idle for its CPU time.
    ccf_w = 2 * (CLOUD_MIN_W_PER_VCPU + 0.5 * (CLOUD_MAX_W_PER_VCPU - CLOUD_MIN_W_PER_VCPU))
    expected_j = m.dynamic_energy_j["cpu"] + 2 * CLOUD_MIN_W_PER_VCPU / meter.cpus * m.cpu_time_s
    assert m.energy_j["cpu"] == pytest.approx(expected_j)
    assert ccf_w * m.duration_s == pytest.approx(
        (model.watts_per_core + 2 * CLOUD_MIN_W_PER_VCPU) * m.duration_s
    )


def test_memory_model_is_resident_gb_times_watts_per_gb() -> None:
    script = Scripted()
    script.rss_bytes = 3 * 1024**3
    sensor = scripted_sensor(script)
    assert sensor.idle_power_w()["dram"] == pytest.approx(3 * MEMORY_WATTS_PER_GB)
    r0 = sensor.read()
    script.sleep(10.0)
    r1 = sensor.read()
    # Resident memory constant over 10 s: 3 GB x 0.3725 W/GB x 10 s.
    assert r1.energy_j["dram"] - r0.energy_j["dram"] == pytest.approx(3 * MEMORY_WATTS_PER_GB * 10)
    assert r1.time_s - r0.time_s == pytest.approx(10.0)
    # Growing from 3 to 5 GB over the next 10 s: the trapezoid, 4 GB on average.
    script.rss_bytes = 5 * 1024**3
    script.sleep(10.0)
    r2 = sensor.read()
    assert r2.energy_j["dram"] - r1.energy_j["dram"] == pytest.approx(4 * MEMORY_WATTS_PER_GB * 10)


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
