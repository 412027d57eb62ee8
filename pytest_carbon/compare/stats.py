"""Statistics of the stored-baseline comparison: per-round values of a record, the
Mann-Whitney U test and the bootstrap (both from ``scipy.stats``), and noise levels.

``scipy.stats`` is imported inside the functions that need it: importing it costs about
0.6-1.2 s on a 2-core VM, paid only by a run that compares with a baseline, never by
pytest's start-up. One Mann-Whitney test then costs about 0.4 ms (measured on that VM),
so a 1,000-test suite with three judged metrics spends about 2.5 s in it.
"""

from __future__ import annotations

import math
import statistics
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

#: Significance level of the Mann-Whitney test (one-sided) and of the bootstrap interval.
ALPHA = 0.05
#: Past runs of a test needed before their spread counts as a between-run noise level.
MIN_HISTORY = 3
#: Exact Mann-Whitney distributions: without ties up to this many samples a side; with
#: ties (by permutation) up to this many arrangements. Beyond, the normal approximation.
EXACT_MAX_N = 25
EXACT_LIMIT = 20_000
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 20240601
#: 1.4826 x MAD estimates the standard deviation of normal data, robustly.
MAD_TO_SIGMA = 1.4826


def mann_whitney_greater(x: Sequence[float], y: Sequence[float]) -> float:
    """One-sided Mann-Whitney U p-value for "x tends to be larger than y" (scipy).

    Exact without ties (up to :data:`EXACT_MAX_N` a side), exact by enumerating the
    permutations with ties (while there are at most :data:`EXACT_LIMIT`), otherwise the
    normal approximation with tie and continuity corrections.
    """
    from scipy import stats as st

    m, n = len(x), len(y)
    if m == 0 or n == 0:
        raise ValueError("both samples must be non-empty")
    pooled = list(x) + list(y)
    has_ties = len(set(pooled)) < len(pooled)
    method: Any
    if not has_ties and m <= EXACT_MAX_N and n <= EXACT_MAX_N:
        method = "exact"
    elif has_ties and math.comb(m + n, m) <= EXACT_LIMIT:
        method = st.PermutationMethod(n_resamples=math.inf)
    else:
        method = "asymptotic"
    if len(set(pooled)) == 1:
        return 1.0  # all values equal: no evidence either way (scipy's variance is 0)
    result = st.mannwhitneyu(x, y, alternative="greater", method=method)
    return float(result.pvalue)


def bootstrap_interval(
    base: Sequence[float],
    current: Sequence[float],
    relative: bool = True,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    level: float = 1 - ALPHA,
) -> tuple[float, float]:
    """Percentile bootstrap interval of median(current)/median(base) (or their difference),
    resampling each side independently (scipy). Seeded: the same data give the same
    interval."""
    import numpy as np
    from scipy import stats as st

    def statistic(b: Any, c: Any, axis: int = -1) -> Any:
        mb, mc = np.median(b, axis=axis), np.median(c, axis=axis)
        if not relative:
            return mc - mb
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(mb > 0, mc / np.where(mb > 0, mb, 1.0), np.where(mc > 0, np.inf, 1.0))

    with warnings.catch_warnings():
        # All-equal samples make a degenerate distribution; the interval is still right.
        warnings.simplefilter("ignore")
        result = st.bootstrap(
            (np.asarray(base, dtype=float), np.asarray(current, dtype=float)),
            statistic,
            n_resamples=resamples,
            confidence_level=level,
            method="percentile",
            vectorized=True,
            rng=np.random.default_rng(seed),
        )
    lo, hi = result.confidence_interval
    return float(lo), float(hi)


def run_sigma(values: Sequence[float]) -> float | None:
    """Relative spread of past run medians: 1.4826 x MAD / median (None: too few runs)."""
    vals = [v for v in values if v is not None]
    if len(vals) < MIN_HISTORY:
        return None
    med = statistics.median(vals)
    if med <= 0:
        return None
    mad = statistics.median(abs(v - med) for v in vals)
    return MAD_TO_SIGMA * mad / med


def noise_level(values: Sequence[float]) -> float | None:
    """The largest relative change between two runs that the between-run spread of past
    runs explains: 3 robust standard deviations of a difference of two runs, each off by
    its own drift (3 x sqrt(2) x 1.4826 x MAD / median). None with fewer than 3 runs."""
    sigma = run_sigma(values)
    return None if sigma is None else 3.0 * math.sqrt(2.0) * sigma


def excursions(values: Sequence[float]) -> list[float]:
    """Single-run excursions of one test's stored run medians, in time order: for each run
    with a run on either side, ``|log v - median(log of it and its two neighbours)|``.

    A run that stood out alone (a neighbour sharing the core through that test, once)
    gives its full size; a lasting step (the code changed) gives nothing, because the
    median of three follows the step. Empty with fewer than 3 positive values."""
    logs = [math.log(v) for v in values if v is not None and v > 0]
    out = []
    for i in range(1, len(logs) - 1):
        window = sorted(logs[i - 1 : i + 2])
        out.append(abs(logs[i] - window[1]))
    return out


def excursion_tail(pooled: Sequence[float], level: float) -> tuple[float | None, str]:
    """The relative change a single run's excursion exceeds with probability ``1 - level``,
    from excursions pooled over a suite's tests (the machine's, not one test's: a test's
    own few runs rarely show its rare slow run).

    Returns (relative change, description). The change is None while the pool is too small
    to place that quantile: with N excursions a new one exceeds their largest with
    probability 1 / (N + 1) when runs are alike (exchangeable), so a family of m judgements
    at 5% (``1 - level = 0.05 / m``) needs N >= m / 0.05 - 1; until then no between-run
    noise is known. Otherwise the empirical ``level`` quantile (the largest at the minimum)."""
    vals = sorted(pooled)
    n = len(vals)
    need = max(1, math.ceil(1.0 / max(1.0 - level, 1e-12) - 1 - 1e-9))
    if n < need:
        return None, (
            f"{n} single-run excursions in the stored runs, fewer than the {need} that "
            "place this family's level"
        )
    x = vals[min(n - 1, max(0, math.ceil(level * (n + 1)) - 1))]
    return math.exp(x) - 1.0, f"the {level * 100:.4g}th percentile of {n} single-run excursions"


# -- values of a record ------------------------------------------------------------------


def num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def metric_samples(record: Mapping[str, Any], metric: str) -> list[float]:
    """Per-round values of ``metric`` in a record; empty when it measured nothing.

    Energy and duration come from ``samples``. The others are derived per round from the
    record's own totals: gCO2e by its g/J factor, dynamic energy by its dynamic fraction
    (dynamic / energy: the idle part follows CPU time, as energy does), EDP as energy x
    duration of the round.
    """
    energy = num(record.get("energy_j"))
    duration = num(record.get("duration_s"))
    samples = record.get("samples") or {}
    rounds = max(1, int(num(record.get("rounds")) or 1))

    def series(key: str, total: float | None) -> list[float]:
        vals = [x for x in (num(v) for v in samples.get(key) or []) if x is not None]
        if vals:
            return vals
        return [] if total is None else [total / rounds]

    e = series("energy_j", energy)
    d = series("duration_s", duration)
    if metric == "energy":
        return e
    if metric == "duration":
        return d
    if energy is None:
        return []
    if metric == "gco2e":
        g = num(record.get("gco2e_g"))
        if g is None:
            return []
        factor = g / energy if energy > 0 else 0.0
        return [x * factor for x in e]
    if metric == "dynamic_energy":
        dyn = num(record.get("dynamic_energy_j"))
        if dyn is None:
            return []
        # The idle part of energy follows CPU time, not wall time: each round keeps the
        # record's own dynamic fraction.
        if energy <= 0:
            return [dyn / rounds]
        return [x * dyn / energy for x in e]
    if metric == "edp":
        if len(d) != len(e):
            return [] if duration is None else [energy * duration / rounds / rounds]
        return [x * t for x, t in zip(e, d, strict=True)]
    raise ValueError(f"unknown metric {metric!r}")


def relative_change(base: float | None, current: float | None) -> float | None:
    """``current / base - 1``; None where undefined (a side missing, or a zero base)."""
    if base is None or current is None:
        return None
    if base == 0:
        return 0.0 if current == 0 else None
    return current / base - 1.0
