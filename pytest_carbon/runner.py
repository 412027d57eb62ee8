"""Measure a test's call phase: rounds, the carbon fixture, pytest-benchmark, budgets.

The record of a test is built here, once (:func:`build_record`), from everything measured
during its call phase. Downstream, the plugin only adds the two facts pytest knows later,
the outcome and the number of attempts (:func:`pytest_carbon.results.record.finalize`).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from pytest_carbon.measure.meter import Measurement, combine
from pytest_carbon.results import record as record_module  # noqa: F401 (plugin.py reads it)
from pytest_carbon.results.record import make_record
from pytest_carbon.results.record import window_record as window_record_of
from pytest_carbon.session import FIXTURE_KEY, CarbonSession, closest_carbon_marker

CONCURRENT_NOTE = (
    "measured while other tests ran (xdist): the estimate counts only this "
    "test's process tree, but shared caches and frequency scaling add noise"
)


def measure_call(cs: CarbonSession, item: pytest.Item) -> Generator[None, object, object]:
    """The body of the ``pytest_runtest_call`` wrapper when measuring (``yield from`` it),
    for a test :func:`open_plain` declined: the record is built here, at once. (The common
    case, a plain window, is opened and closed by the plugin itself and keeps the raw
    readings until the record is first wanted.)"""
    budget = _budget_of(item)
    meter = cs.meter
    windows: list[Measurement] = []
    # Only a test that requested pytest-benchmark's fixture can have its rounds.
    rounds = (
        _benchmark_rounds(cs, item) if "benchmark" in getattr(item, "fixturenames", ()) else None
    )
    key = item.nodeid
    meter.begin(key)
    try:
        result = yield
    except BaseException:
        windows.append(meter.end(key))
        _finish_benchmark(rounds)
        _store(cs, item, build_record(cs, item, windows, rounds, key))
        raise
    windows.append(meter.end(key))
    if rounds is not None:
        rounds.finish()
    # --carbon-rounds=N: run the call phase N-1 more times for per-round statistics. The
    # carbon fixture starts a fresh run each time (its figure is per run); a
    # pytest-benchmark test is not run again: its own rounds are its samples.
    fx = item.stash.get(FIXTURE_KEY, None)
    for i in range(1, cs.settings.carbon_rounds if rounds is None else 1):
        if fx is not None:
            fx.start_run()
        rkey = f"{key}#round{i}"
        meter.begin(rkey)
        try:
            item.runtest()
        finally:
            windows.append(meter.end(rkey))
    record = build_record(cs, item, windows, rounds, key)
    _store(cs, item, record)
    if budget and record is not None:
        from pytest_carbon.budget import check_budget

        problems = check_budget(record, budget)
        if problems:
            # pytrace=False: the message says everything; the plugin's frames are noise.
            pytest.fail("\n".join(problems), pytrace=False)
    return result


def open_plain(cs: CarbonSession, item: pytest.Item) -> str | None:
    """Open the window of a plain test on the fast path and return its key; None (nothing
    opened) when the test or the run needs the full path (:func:`measure_call`). The
    plugin calls this and :func:`close_plain` around the call phase itself: no generator
    per test."""
    if not (cs.fast_path and plain_window(item)):
        return None
    key = item.nodeid
    cs.meter.begin(key)
    return key


def close_plain(cs: CarbonSession, item: pytest.Item, key: str) -> None:
    """Close a fast-path window (passed, failed or interrupted alike): its raw readings
    wait in ``cs.pending`` for the call report. A test that asked for the carbon fixture
    during its call gets the fixture's record, built now, as on the full path."""
    meter = cs.meter
    closed = meter.end_raw(key)
    if FIXTURE_KEY in item.stash:
        _store(cs, item, build_record(cs, item, [meter.measurement_of(closed)], None, key))
    else:
        cs.pending[key] = closed


def close_edges(cs: CarbonSession, item: pytest.Item, unix0: float, e0: Any, e1: Any) -> None:
    """Close a window read on the edge path (:attr:`CarbonSession.edge`, opened by the
    plugin around the call): four plain values wait in ``cs.pending`` for the call report
    (no Window object: the record is built when first wanted, as for :func:`close_plain`).
    A test that asked for the carbon fixture during its call gets its record now."""
    meter = cs.meter
    if FIXTURE_KEY in item.stash:
        m = meter.measurement_of_edges(item.nodeid, unix0, e0, e1, meter.idle)
        _store(cs, item, build_record(cs, item, [m], None, item.nodeid))
    else:
        cs.pending[item.nodeid] = (unix0, e0, e1, meter.idle)


def plain_window(item: pytest.Item) -> bool:
    """Whether the test's call phase is one plain window: no carbon fixture (so far), no
    pytest-benchmark, no ``carbon`` marker (a budget). The session's part of the
    question is :attr:`CarbonSession.fast_path`."""
    return (
        FIXTURE_KEY not in item.stash
        and "benchmark" not in getattr(item, "fixturenames", ())
        and closest_carbon_marker(item) is None
    )


def window_records(
    cs: CarbonSession, entries: list[tuple[str, Any, str, int]], summary: bool = False
) -> list[dict[str, Any]]:
    """The records of fast-path windows (:meth:`CarbonSession.add_raw`), one per
    ``(nodeid, closed, outcome, attempts)``: what :func:`build_record` and
    :func:`~pytest_carbon.results.record.finalize` give for one window, no rounds, no
    fixture, no benchmark, not concurrent, one intensity. The run's constants (meter,
    accounting, sensors, worker) are read once for all of them. ``summary``: only the
    fields the terminal summary reads (:func:`~pytest_carbon.results.record.window_record`)."""
    meter = cs.meter
    accounting = cs.accounting
    attribution = meter.attribution
    sensors = meter.sensor_names
    worker = cs.worker_id
    charge_edges = meter.charge_edges
    out = []
    for nodeid, closed, outcome, attempts in entries:
        samples: Any
        if len(closed) == 4:  # the edge path (close_edges): (unix0, edge0, edge1, idle)
            unix0, e0, e1, idle = closed
            inputs, ch, warnings = charge_edges(nodeid, e0, e1, idle)
            samples = ()
        else:
            inputs, ch, warnings = meter.charge_of(closed)
            win = closed[0]
            unix0, samples = win.unix0, win.samples
        out.append(
            window_record_of(
                nodeid,
                unix0,
                inputs,
                ch,
                warnings,
                samples,
                accounting,
                attribution=attribution,
                sensors=sensors,
                worker=worker,
                outcome=outcome,
                attempts=attempts,
                summary=summary,
            )
        )
    return out


def fixture_record(cs: CarbonSession, item: pytest.Item) -> None:
    """Without --carbon: store the record of the carbon fixture, if the test used it."""
    _store(cs, item, build_record(cs, item, [], None))


def _store(cs: CarbonSession, item: pytest.Item, record: dict[str, Any] | None) -> None:
    if record is not None:
        cs.set_record(item, record, charged=True)


def build_record(
    cs: CarbonSession,
    item: pytest.Item,
    windows: list[Measurement],
    rounds: Any,
    nodeid: str | None = None,
) -> dict[str, Any] | None:
    """The one place a test's record is built: the call-phase windows, or the carbon
    fixture's own rounds and blocks (which then win, with the call phase as a phase), plus
    pytest-benchmark's rounds and the caveats of the run. ``nodeid``: the item's, when the
    caller has it already (pytest computes it on each access)."""
    fx = item.stash.get(FIXTURE_KEY, None)
    fixture_used = fx is not None and bool(fx.ever_used)
    if not windows and not fixture_used:
        return None
    warnings: list[str] = []
    if cs.concurrent:
        measured = list(windows)
        if fx is not None and fixture_used:
            measured += [*fx.rounds, *fx.phases.values()]
        if any(m.overall_method == "estimated" for m in measured):
            warnings.append(CONCURRENT_NOTE)
    per_call = extra_info = None
    if rounds is not None and rounds.windows:
        per_call = rounds.per_call()
        info = rounds.info()
        extra_info = {"benchmark": info}
        rounds.publish(info)
        warnings.extend(rounds.warnings())
    if fx is not None and fixture_used:
        return fx.build_record(  # type: ignore[no-any-return]
            accounting_for=cs.accounting_for,
            extra_phases={"call": combine(windows)} if windows else None,
            warnings=warnings,
            per_call=per_call,
            extra_info=extra_info,
            own_intensity=cs.intensity_varies,
        )
    total = windows[0] if len(windows) == 1 else combine(windows)
    return make_record(
        item.nodeid if nodeid is None else nodeid,
        total,
        cs.accounting_for(total.start_unix_s),
        rounds=len(windows),
        # Left empty for one window: make_record takes the total's own figures then.
        per_round_energy_j=[m.total_energy_j for m in windows] if len(windows) > 1 else (),
        per_round_duration_s=[m.duration_s for m in windows] if len(windows) > 1 else (),
        per_call=per_call,
        extra_info=extra_info,
        worker=cs.worker_id,
        warnings=warnings,
        own_intensity=cs.intensity_varies,
    )


def _budget_of(item: pytest.Item) -> dict[str, float]:
    marker = closest_carbon_marker(item)
    if marker is None:
        return {}
    from pytest_carbon.budget import BudgetError, parse_budget

    try:
        return parse_budget(marker.args, marker.kwargs)
    except BudgetError as exc:
        pytest.fail(str(exc), pytrace=False)


# -- pytest-benchmark interop ------------------------------------------------------------


def _benchmark_rounds(cs: CarbonSession, item: pytest.Item) -> Any:
    from pytest_carbon.benchmark_rounds import benchmark_of

    bench = benchmark_of(item)
    if bench is None:
        return None
    from pytest_carbon.benchmark_rounds import BenchmarkRounds

    rounds = BenchmarkRounds(cs.meter, f"{item.nodeid}::benchmark")
    rounds.install(bench)
    return rounds


def _finish_benchmark(rounds: Any) -> None:
    if rounds is None:
        return
    rounds.finish()
