"""The A/A floor: how much the same work's energy moves on this machine, measured now.

With fewer than 3 stored runs, the spread between runs is unknown. Instead of assuming a
fixed figure, the session re-runs a small calibration workload (a pure-Python loop, the
same code every time) :data:`REPEATS` times under the session's meter and takes the
spread of its energies: 3 x sqrt(2) x 1.4826 x MAD / median, the same statistic as the
stored history's (a difference of two measurements, 3 robust standard deviations).
A quick A/A cannot see drift over minutes (a neighbour starting a job), so the floor
used is never below :data:`~pytest_carbon.compare.judge.NOISE_FLOOR` (5 %).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from typing import Any

from pytest_carbon.compare.judge import NOISE_FLOOR, Floor
from pytest_carbon.compare.stats import MAD_TO_SIGMA

#: Calibration measurements, and the least time of each (calibrated by iterations).
REPEATS = 10
MIN_ROUND_S = 0.03


def calibration_work(n: int = 20_000) -> int:
    """The calibration workload: integer arithmetic in a loop, no allocation to speak of."""
    total = 0
    for i in range(n):
        total += (i * i) % 7
    return total


def spread_floor(energies: list[float]) -> float | None:
    """3 x sqrt(2) robust standard deviations of the relative energy; None if unusable."""
    if len(energies) < 3:
        return None
    med = statistics.median(energies)
    if med <= 0:
        return None
    mad = statistics.median(abs(e - med) for e in energies)
    return 3.0 * math.sqrt(2.0) * MAD_TO_SIGMA * mad / med


def measure_floor(
    meter: Any,
    *,
    repeats: int = REPEATS,
    work: Callable[[], object] = calibration_work,
    clock: Callable[[], float] = time.perf_counter,
) -> Floor:
    """Measure the A/A floor with ``meter`` (a :class:`~pytest_carbon.measure.meter.Meter`).

    The workload is repeated within each measurement until it lasts :data:`MIN_ROUND_S`,
    so a counter's granularity does not dominate."""
    t0 = clock()
    work()
    once_s = max(clock() - t0, 1e-6)
    iterations = max(1, math.ceil(MIN_ROUND_S / once_s))
    energies = []
    for i in range(repeats):
        key = f"pytest-carbon:aa-floor#{i}"
        meter.begin(key)
        for _ in range(iterations):
            work()
        energies.append(float(meter.end(key).total_energy_j))
    measured = spread_floor(energies)
    if measured is None:
        return Floor(NOISE_FLOOR, "default noise floor (the A/A calibration measured nothing)")
    return Floor(
        max(measured, NOISE_FLOOR),
        f"A/A floor {measured * 100:.1f}% from {repeats} re-runs of a calibration workload "
        f"on this machine now (never below {NOISE_FLOOR * 100:g}%)",
    )
