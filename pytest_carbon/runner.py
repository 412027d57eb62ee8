"""Measure a test's call phase: rounds, the carbon fixture, pytest-benchmark, budgets."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from pytest_carbon.budget import BudgetError, check_budget, parse_budget
from pytest_carbon.measure.meter import Measurement, combine
from pytest_carbon.results.record import make_record, measurement_fields, per_call_stats
from pytest_carbon.session import FIXTURE_KEY, CarbonSession


def measure_call(cs: CarbonSession, item: pytest.Item) -> Generator[None, object, object]:
    """The body of the ``pytest_runtest_call`` wrapper when measuring (``yield from`` it)."""
    budget = _budget_of(item)
    meter = cs.meter
    bench = _benchmark_of(item)
    windows: list[Measurement] = []
    bench_windows: list[Measurement] = []
    if bench is not None:
        _hook_benchmark(bench, meter, item.nodeid, bench_windows)
    key = item.nodeid
    meter.begin(key)
    try:
        result = yield
    except BaseException:
        windows.append(meter.end(key))
        _store(cs, item, windows, bench, bench_windows, failed=True)
        raise
    windows.append(meter.end(key))
    # --carbon-rounds=N: run the call phase N-1 more times for per-round statistics.
    for i in range(1, cs.settings.carbon_rounds):
        rkey = f"{key}#round{i}"
        meter.begin(rkey)
        try:
            item.runtest()
        finally:
            windows.append(meter.end(rkey))
    record = _store(cs, item, windows, bench, bench_windows, failed=False)
    if budget and record is not None:
        problems = check_budget(record, budget)
        if problems:
            # pytrace=False: the message says everything; the plugin's frames are noise.
            pytest.fail("\n".join(problems), pytrace=False)
    return result


def fixture_record(cs: CarbonSession, item: pytest.Item) -> None:
    """Without --carbon: store the record of the carbon fixture, if the test used it."""
    fx = item.stash.get(FIXTURE_KEY, None)
    if fx is not None and fx.used:
        record = fx.build_record()
        if record is not None:
            cs.set_record(item, record)


def _budget_of(item: pytest.Item) -> dict[str, float]:
    marker = item.get_closest_marker("carbon")
    if marker is None:
        return {}
    try:
        return parse_budget(marker.args, marker.kwargs)
    except BudgetError as exc:
        pytest.fail(str(exc), pytrace=False)


def _store(
    cs: CarbonSession,
    item: pytest.Item,
    windows: list[Measurement],
    bench: Any,
    bench_windows: list[Measurement],
    *,
    failed: bool,
) -> dict[str, Any] | None:
    fx = item.stash.get(FIXTURE_KEY, None)
    record: dict[str, Any] | None
    if fx is not None and fx.used:
        # The fixture measured exactly what the test asked for: its record wins, and the
        # whole call phase is kept beside it as a phase.
        record = fx.build_record()
        if record is not None:
            record["phases"]["call"] = measurement_fields(combine(windows), cs.accounting)
    else:
        total = combine(windows)
        record = make_record(
            item.nodeid,
            total,
            cs.accounting,
            rounds=len(windows),
            per_round_energy_j=[m.total_energy_j for m in windows],
            per_round_duration_s=[m.duration_s for m in windows],
            worker=cs.worker_id,
        )
    if record is not None and bench is not None and bench_windows:
        _benchmark_energy(record, bench, bench_windows)
    if record is not None:
        if cs.concurrent and record["method"] == "estimated":
            record["warnings"].append(
                "measured while other tests ran (xdist): the estimate counts only this "
                "test's process tree, but shared caches and frequency scaling add noise"
            )
        cs.set_record(item, record)
    return record


# -- pytest-benchmark interop ------------------------------------------------------------


def _benchmark_of(item: pytest.Item) -> Any:
    if "benchmark" not in getattr(item, "fixturenames", ()):
        return None
    funcargs = getattr(item, "funcargs", {})
    bench = funcargs.get("benchmark")
    # Only a real BenchmarkFixture has the timer we wrap; anything else is left alone.
    return bench if bench is not None and hasattr(bench, "_timer") else None


def _hook_benchmark(bench: Any, meter: Any, nodeid: str, windows: list[Measurement]) -> None:
    """Wrap the benchmark's timer so each timed round is also a meter window.

    pytest-benchmark's runner calls ``timer()`` right before and right after each round;
    we open the window before the start time is taken and close it after the end time,
    so the meter's own cost stays outside the benchmark's timing.
    """
    inner = bench._timer
    state = {"open": False, "n": 0}
    key_base = f"{nodeid}::benchmark"

    def timer() -> float:
        if not state["open"]:
            state["open"] = True
            meter.begin(f"{key_base}#{state['n']}")
            return float(inner())
        now = float(inner())
        state["open"] = False
        windows.append(meter.end(f"{key_base}#{state['n']}"))
        state["n"] += 1
        return now

    timer.__name__ = getattr(inner, "__name__", "timer")
    bench._timer = timer


def _benchmark_energy(record: dict[str, Any], bench: Any, windows: list[Measurement]) -> None:
    metadata = getattr(bench, "stats", None)  # pytest-benchmark's Metadata
    data = list(getattr(getattr(metadata, "stats", None), "data", []) or [])
    rounds = len(data) or len(windows)
    # Calibration runs come first; the last ``rounds`` windows are the benchmark's rounds.
    measured = windows[-rounds:] if rounds else windows
    iterations = max(int(getattr(metadata, "iterations", 1) or 1), 1)
    per_round = [m.total_energy_j for m in measured]
    if not per_round:
        return
    mean_round = sum(per_round) / len(per_round)
    info = {
        "energy_j_per_round": mean_round,
        "energy_j_per_call": mean_round / iterations,
        "energy_method": combine(measured).overall_method,
        "energy_rounds": len(per_round),
    }
    extra = getattr(bench, "extra_info", None)
    if isinstance(extra, dict):
        extra.update({f"carbon_{k}": v for k, v in info.items()})
    record["extra_info"]["benchmark"] = info
    record["per_call"] = per_call_stats(
        [e / iterations for e in per_round],
        [m.duration_s / iterations for m in measured],
        iterations_per_round=iterations,
        source="pytest-benchmark rounds",
    )
