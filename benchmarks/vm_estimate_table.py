"""Three CPU-seconds of one busy thread, estimated three ways on this machine: pytest-carbon's
estimate sensor, codecarbon (offline tracker) and Cloud Carbon Footprint's formula.

Run by hand (``python benchmarks/vm_estimate_table.py``); it prints the Markdown table kept in
docs/how-numbers-are-computed.md. codecarbon is imported here only: the plugin never does.
"""

from __future__ import annotations

import logging
import os
import time

BUSY_S = 3.0


def burn(cpu_s: float) -> float:
    """Use ``cpu_s`` of CPU time (on a shared machine this takes longer than ``cpu_s``)."""
    t0 = time.process_time()
    while time.process_time() - t0 < cpu_s:
        pass
    return time.process_time() - t0


def ours() -> dict[str, float]:
    from pytest_carbon.measure.meter import Meter
    from pytest_carbon.measure.sensors.estimate import EstimateSensor

    sensor = EstimateSensor()
    meter = Meter([sensor])
    meter.measure_idle()
    with meter.measure("busy") as h:
        cpu_s = burn(BUSY_S)
    meter.close()
    m = h.measurement
    assert m is not None
    return {
        "cpu_w": m.energy_j["cpu"] / m.duration_s,
        "cpu_j": m.energy_j["cpu"],
        "ram_j": m.energy_j["dram"],
        "total_j": m.total_energy_j,
        "cpu_s": cpu_s,
        "seconds": m.duration_s,
    }


def codecarbon_run() -> dict[str, float]:
    from codecarbon import OfflineEmissionsTracker

    logging.getLogger("codecarbon").setLevel(logging.ERROR)
    tracker = OfflineEmissionsTracker(
        country_iso_code="FRA", save_to_file=False, log_level="error", measure_power_secs=1
    )
    tracker.start()
    burn(BUSY_S)
    tracker.stop()
    d = tracker.final_emissions_data
    kwh_to_j = 3.6e6
    return {
        "cpu_w": float(d.cpu_power),
        "cpu_j": float(d.cpu_energy) * kwh_to_j,
        "ram_j": float(d.ram_energy) * kwh_to_j,
        "total_j": float(d.energy_consumed) * kwh_to_j,
        "seconds": float(d.duration),
    }


def ccf(min_w: float, max_w: float, vcpus: int, seconds: float, cpu_s: float) -> dict[str, float]:
    util = cpu_s / (vcpus * seconds)  # this workload's utilisation of the VM
    watts = vcpus * (min_w + util * (max_w - min_w))
    return {"cpu_w": watts, "cpu_j": watts * seconds, "ram_j": 0.0, "total_j": watts * seconds}


def main() -> None:
    vcpus = os.cpu_count() or 1
    us = ours()
    rows = [("pytest-carbon (estimate)", us), ("codecarbon 3.3 (offline)", codecarbon_run())]
    for name, lo, hi in [("AWS", 0.74, 3.5), ("GCP", 0.71, 4.26), ("Azure", 0.78, 3.76)]:
        # CCF over the same window as ours, at our workload's utilisation.
        rows.append((f"CCF, {name} average", ccf(lo, hi, vcpus, us["seconds"], us["cpu_s"])))
    print(f"{BUSY_S:g} CPU-s of work took {us['seconds']:.2f} s here ({vcpus} vCPUs)\n")
    print("| | CPU power (W) | CPU energy (J) | RAM energy (J) | total (J) |")
    print("|---|---|---|---|---|")
    for name, r in rows:
        print(
            f"| {name} | {r['cpu_w']:.2f} | {r['cpu_j']:.1f} | {r['ram_j']:.2f} | "
            f"{r['total_j']:.1f} |"
        )


if __name__ == "__main__":
    main()
