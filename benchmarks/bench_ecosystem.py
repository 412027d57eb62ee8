"""pytest-benchmark under ``--carbon`` (issue 16): its results stay its own, and combining
many windows stays linear.

Run: ``python -m pytest benchmarks/bench_ecosystem.py -p no:cacheprovider --benchmark-only``.
Targets: combining 16,000 windows, each with its own warning, under 0.5 s (it took 4.7 s
when warnings were de-duplicated with a list); a sub-microsecond benchmark's median with
``--carbon`` within 25% of its median without, alternating runs, best of 3 each.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from pytest_carbon.measure.meter import Measurement, combine

COMBINE_TARGET_S = 0.5
N_WINDOWS = 16_000


def test_combine_16k_windows(benchmark: Any) -> None:
    windows = [
        Measurement(
            f"w{i}", 0.0, 1e-3, {"cpu": 1e-2}, {"cpu": 1e-2}, {"cpu": "estimated"}, 1e-3,
            warnings=(f"window 'w{i}' lasted 0.001 ms",),
        )
        for i in range(N_WINDOWS)
    ]  # fmt: skip
    total = benchmark.pedantic(combine, args=(windows,), rounds=3, iterations=1)
    assert len(total.warnings) == N_WINDOWS
    assert benchmark.stats.stats.max < COMBINE_TARGET_S


TINY = """
def parse():
    return int("12345")

def test_tiny(benchmark):
    benchmark(parse)
"""


def test_tiny_benchmark_median_with_and_without_carbon(
    benchmark: Any, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)
    pytester.makepyfile(test_tiny=TINY)
    medians: dict[str, list[float]] = {"plain": [], "carbon": []}
    info: dict[str, Any] = {}

    def one_pair() -> None:
        for label, extra in (("plain", ()), ("carbon", ("--carbon",))):
            result = pytester.runpytest_subprocess(
                "-p", "no:randomly", "--benchmark-max-time=0.5", "--benchmark-json=b.json",
                *extra,
            )  # fmt: skip
            assert result.ret == 0
            bench = json.loads((pytester.path / "b.json").read_text())["benchmarks"][0]
            medians[label].append(bench["stats"]["median"])
            info.update(bench["extra_info"])

    benchmark.pedantic(one_pair, rounds=3, iterations=1)
    plain, carbon = min(medians["plain"]), min(medians["carbon"])
    benchmark.extra_info.update(
        plain_median_ns=plain * 1e9,
        carbon_median_ns=carbon * 1e9,
        carbon_energy_j_per_call=info.get("carbon_energy_j_per_call"),
        cpus=os.cpu_count(),
    )
    assert carbon == pytest.approx(plain, rel=0.25), benchmark.extra_info
