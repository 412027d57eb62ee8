"""Energy scales with the work done, on real workloads: reported figures, not unit tests.

Run: ``python -m pytest benchmarks/bench_scaling.py -p no:cacheprovider --benchmark-only``
(add ``--benchmark-json=out.json`` to keep the figures). Each benchmark measures a real
loop at N and at k x N, in interleaved pairs, and reports the median pair ratio in
``extra_info`` (expected: about k). On a shared machine the ratio drifts by 10-20% from
one run to the next, which is why unit tests script their clock and counter instead
(tests/scripted.py) and these figures carry no pass/fail threshold.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from pytest_carbon.carbon.accounting import resolve_accounting
from pytest_carbon.fixture import CarbonFixture
from pytest_carbon.measure.meter import Meter
from pytest_carbon.measure.sensors.estimate import EstimateSensor

PAIRS = 5
WORK = "def work(n):\n    s = 0\n    for i in range(n):\n        s += i * i\n    return s\n"


def loop(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def calibrate(target_cpu_s: float) -> int:
    n = 20_000
    while True:
        t0 = time.process_time()
        loop(n)
        spent = time.process_time() - t0
        if spent > 0.01:
            return max(1, int(n * target_cpu_s / spent))
        n *= 4


def paired_ratios(energy: Callable[[int], float], n: int, k: int) -> list[float]:
    """N then k x N, PAIRS times: a burst of load from elsewhere tends to hit both."""
    ratios = []
    for _ in range(PAIRS):
        small = energy(n)
        large = energy(k * n)
        ratios.append(large / small)
    return ratios


def report(benchmark: Any, ratios: list[float], k: int) -> None:
    benchmark.extra_info.update(
        {
            "expected_ratio": k,
            "median_ratio": round(statistics.median(ratios), 3),
            "min_ratio": round(min(ratios), 3),
            "max_ratio": round(max(ratios), 3),
            "pairs": len(ratios),
        }
    )


def test_estimate_sensor_twice_the_loop(benchmark: Any) -> None:
    meter = Meter([EstimateSensor()])
    n = calibrate(0.04)

    def energy(units: int) -> float:
        with meter.measure(f"loop{units}") as h:
            loop(units)
        assert h.measurement is not None
        return h.measurement.energy_j["cpu"]

    result: dict[str, list[float]] = {}
    benchmark.pedantic(lambda: result.update(r=paired_ratios(energy, n, 2)), rounds=1)
    meter.close()
    report(benchmark, result["r"], 2)


def test_carbon_fixture_per_call_four_times_the_loop(benchmark: Any) -> None:
    meter = Meter()
    acc = resolve_accounting()
    n = calibrate(0.0005)

    def energy(units: int) -> float:
        fx = CarbonFixture(lambda: meter, lambda: acc, "bench::x", min_time_s=0.1)
        fx(loop, units)
        record = fx.build_record()
        assert record is not None and record["per_call"] is not None
        return float(record["per_call"]["energy_j"]["median"])

    result: dict[str, list[float]] = {}
    benchmark.pedantic(lambda: result.update(r=paired_ratios(energy, n, 4)), rounds=1)
    meter.close()
    report(benchmark, result["r"], 4)


def test_sandbox_workload_twice_the_childs_work(benchmark: Any) -> None:
    from pytest_carbon.sandbox.verify import run_workload

    meter = Meter()
    n = calibrate(0.2)

    def energy(units: int) -> float:
        w = run_workload(
            WORK, "work", [units], {}, min_time_s=0, timeout_s=60, meter=meter, key="s"
        )
        # The child's CPU time is in the window: the estimate reads it from /proc.
        return w.measurement.total_energy_j

    result: dict[str, list[float]] = {}
    benchmark.pedantic(lambda: result.update(r=paired_ratios(energy, n, 2)), rounds=1)
    meter.close()
    report(benchmark, result["r"], 2)
