"""The base side of ``--carbon-compare-ref``: a pytest plugin that runs tests on request.

Loaded with ``-p pytest_carbon.compare.serve`` in the second pytest process, rooted in a
git worktree of REF (see :mod:`pytest_carbon.compare.ref` for the head side and
:mod:`pytest_carbon.compare.wire` for the protocol). It collects as usual, reports what
it collected, then runs the planned tests in the head's order, each one's setup, one
call, then as many measured rounds as the head asks, then the teardown.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
from collections.abc import Generator
from typing import Any

import pytest

from pytest_carbon.compare.wire import FD_ENV, Channel, ChannelClosed
from pytest_carbon.session import SESSION_KEY


class _State:
    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.current: str | None = None
        self.ready_sent = False
        self.outcome = "passed"
        self.errors: list[str] = []
        self.idle_option = ""


# One base process serves one head; logreport and collectreport hooks get no config, so
# the state lives here rather than in the config's stash.
_STATE: list[_State] = []


def _state(config: pytest.Config | None = None) -> _State:
    return _STATE[0]


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    fd = os.environ.get(FD_ENV)
    if not fd:
        raise pytest.UsageError(
            "pytest_carbon.compare.serve is the base side of --carbon-compare-ref; "
            f"it needs ${FD_ENV} (started by the head, not by hand)"
        )
    sock = socket.socket(fileno=int(fd))
    _STATE.append(_State(Channel(sock)))
    cs = config.stash.get(SESSION_KEY, None)
    if cs is not None:
        # The head passes its own settings (sensors, attribution, idle, plugins); they are
        # reported back and checked (fingerprint). The idle power itself is the head's
        # calibration, sent with the plan, so both sides charge from one figure: the base
        # does not calibrate its own (it would read a different machine moment).
        _STATE[0].idle_option = str(cs.settings.carbon_idle)
        # The base only measures what the head asks: no reports, no stored baselines, and
        # never a comparison of its own (the head's environment is inherited).
        cs.settings = dataclasses.replace(
            cs.settings,
            carbon_idle="off",
            carbon_json=None,
            carbon_csv=None,
            carbon_html=None,
            carbon_markdown=None,
            carbon_save=None,
            carbon_autosave=False,
            carbon_compare=None,
            carbon_compare_fail=(),
            carbon_compare_ref=None,
        )


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.failed and _STATE:
        _state().errors.append(f"{report.nodeid or '<root>'}: {_short(report.longreprtext)}")


def _short(text: str, limit: int = 300) -> str:
    lines = [x for x in text.strip().splitlines() if x.strip()]
    last = lines[-1] if lines else ""
    return last[:limit]


def pytest_collection_finish(session: pytest.Session) -> None:
    st = _state(session.config)
    cs = session.config.stash.get(SESSION_KEY, None)
    fingerprint: dict[str, Any] = {}
    if cs is not None:
        fingerprint = {**cs.meter.settings_fingerprint(), "idle": st.idle_option}
    st.channel.send(
        "collected",
        nodeids=[item.nodeid for item in session.items],
        errors=st.errors,
        fingerprint=fingerprint,
    )


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> bool:
    st = _state(session.config)
    try:
        _serve(session, st)
    except ChannelClosed:
        pass  # the head went away: stop quietly; its own output says why
    finally:
        st.channel.close()
    return True


def _serve(session: pytest.Session, st: _State) -> None:
    plan_msg = st.channel.recv()
    if plan_msg["op"] != "plan":
        return
    adopt_idle(session.config.stash[SESSION_KEY].meter, plan_msg.get("idle"))
    by_id = {item.nodeid: item for item in session.items}
    plan = [by_id[n] for n in plan_msg["nodeids"] if n in by_id]
    index = {item.nodeid: i for i, item in enumerate(plan)}
    meter = session.config.stash[SESSION_KEY].meter
    while True:
        msg = st.channel.recv()
        if msg["op"] == "probe":
            st.channel.send("probed", seconds=probe(_items(by_id, msg)))
            continue
        if msg["op"] == "group":
            try:
                fields = group_round(_items(by_id, msg), meter, int(msg["repeats"]), "base")
            except Exception as exc:  # a test failed in the group: the head descends
                st.channel.send("error", message=f"{type(exc).__name__}: {exc}"[:500])
                continue
            st.channel.send("measured", **fields)
            continue
        if msg["op"] != "run" or msg.get("nodeid") not in index:
            return
        i = index[msg["nodeid"]]
        item = plan[i]
        # The head examines a selection of the plan (the screen's): its next test is the
        # one whose fixtures may stay set up.
        if "nextid" in msg:
            nextitem = by_id.get(str(msg["nextid"])) if msg["nextid"] else None
        else:
            nextitem = plan[i + 1] if i + 1 < len(plan) else None
        st.current, st.ready_sent, st.outcome = item.nodeid, False, "passed"
        item.config.hook.pytest_runtest_protocol(item=item, nextitem=nextitem)
        st.channel.send("done", nodeid=item.nodeid, ran=st.ready_sent, outcome=st.outcome)
        st.current = None
        if session.shouldstop or session.shouldfail:
            return


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    st = _state() if _STATE else None
    if st is None or report.nodeid != st.current:
        return
    if report.skipped and st.outcome == "passed":
        st.outcome = "skipped"
    elif report.failed:
        st.outcome = f"{report.when} failed: {_short(report.longreprtext)}"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    st = _state(item.config)
    t0 = time.perf_counter()
    result = yield
    call_s = time.perf_counter() - t0
    if item.nodeid != st.current:
        return result
    st.ready_sent = True
    st.channel.send("ready", nodeid=item.nodeid, call_s=call_s)
    meter = item.config.stash[SESSION_KEY].meter
    while True:
        msg = st.channel.recv()
        if msg["op"] != "round":
            break
        op, fields = _round(item, meter, int(msg.get("iterations") or 1))
        st.channel.send(op, **fields)
    return result


def _items(by_id: dict[str, pytest.Item], msg: dict[str, Any]) -> list[pytest.Item]:
    return [by_id[n] for n in msg.get("nodeids") or [] if n in by_id]


def run_whole(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Run one test whole, as pytest would but unlogged (no reports, no record): its setup
    (pytest's and the plugins' hooks: fixtures, skip marks), its call, then its teardown
    up to what ``nextitem`` shares (everything, after a failure). Raises what the setup
    or call raised, after the teardown."""
    ihook = item.ihook
    ok = False
    try:
        ihook.pytest_runtest_setup(item=item)
        item.runtest()
        ok = True
    finally:
        # After a failure everything is torn down: the next test starts from nothing.
        ihook.pytest_runtest_teardown(item=item, nextitem=nextitem if ok else None)


def probe(items: list[pytest.Item]) -> dict[str, float | None]:
    """Run each test whole once (the screen's warm-up): its seconds, or None where its
    setup, call or teardown raised (skipped, failed: such a test is not screened)."""
    out: dict[str, float | None] = {}
    for i, item in enumerate(items):
        nextitem = items[i + 1] if i + 1 < len(items) else None
        t0 = time.perf_counter()
        try:
            run_whole(item, nextitem)
        except KeyboardInterrupt:
            raise
        except BaseException:  # noqa: BLE001 - pytest's skip/fail outcomes are BaseException
            out[item.nodeid] = None
            continue
        out[item.nodeid] = time.perf_counter() - t0
    return out


def group_round(items: list[pytest.Item], meter: Any, repeats: int, side: str) -> dict[str, Any]:
    """One round of a group on either side (both sides' group rounds are this function):
    ``repeats`` times, each test of the group run whole (:func:`run_whole`), in one meter
    window whose energy the meter's one ``charge()`` computes. Per-repetition figures,
    like :func:`timed_round`'s per-call ones. A test that raises ends the round with its
    exception (after the window is closed and the tests are torn down)."""
    key = f"screen#{side}-round"
    start = time.time()
    meter.begin(key)
    try:
        for _ in range(repeats):
            for i, item in enumerate(items):
                run_whole(item, items[i + 1] if i + 1 < len(items) else None)
    finally:
        m = meter.end(key)
    end = time.time()
    return {
        "energy_j": m.total_energy_j / repeats,
        "dynamic_energy_j": m.total_dynamic_energy_j / repeats,
        "duration_s": m.duration_s / repeats,
        "cpu_time_s": m.cpu_time_s / repeats,
        "calls": repeats,
        "method": m.overall_method,
        "source": "group",
        "window_s": m.duration_s,
        "start_s": start,
        "end_s": end,
    }


def adopt_idle(meter: Any, idle: Any) -> None:
    """Charge this side's windows from the head's idle calibration (``idle``: its
    :meth:`~pytest_carbon.measure.idle.IdleEstimate.to_json`-like fields)."""
    if not isinstance(idle, dict):
        return
    from pytest_carbon.measure.idle import IdleEstimate

    meter.idle = IdleEstimate(
        {str(k): float(v) for k, v in (idle.get("components") or {}).items()},
        {str(k): float(v) for k, v in (idle.get("component_uncertainty_w") or {}).items()},
        f"the head's: {idle.get('method', '?')}",
        {str(k): float(v) for k, v in (idle.get("per_cpu_w") or {}).items()},
        bool(idle.get("trusted", True)),
    )


def timed_round(item: pytest.Item, meter: Any, iterations: int, side: str) -> dict[str, Any]:
    """One measured round, on either side (the head's and the base's rounds are this one
    function): ``iterations`` runs of the test in one meter window, whose energy the
    meter's one :func:`~pytest_carbon.measure.meter.charge` computes.

    Returns per-call figures (energy, dynamic energy, duration, CPU time), the method,
    the window's length and its wall-clock start and end. A test that uses the ``carbon``
    fixture is measured by what the fixture measured (a fresh fixture each run: per call
    of its calibrated rounds, or its blocks per run); a pytest-benchmark test runs its
    benchmarked function once per run (the benchmark is disabled during rounds). An
    exception from the test propagates once the window is closed."""
    from pytest_carbon.session import FIXTURE_KEY

    key = f"{item.nodeid}#{side}-round"
    fx = item.stash.get(FIXTURE_KEY, None)
    bench = _benchmark(item)
    runs: list[Any] = []
    saved = (bench.disabled, bench._mode) if bench is not None else None
    start = time.time()
    meter.begin(key)
    try:
        for _ in range(iterations):
            if fx is not None:
                fx.start_run()
            if bench is not None:
                bench.disabled, bench._mode = True, None
            item.runtest()
            if fx is not None and fx.used:
                runs.append(fx.current_run())
    finally:
        m = meter.end(key)
        if saved is not None:
            bench.disabled, bench._mode = saved
    end = time.time()
    if runs:
        calls = sum(r.calls for r in runs)
        per = [r.per_call() for r in runs]
        weights = [r.calls for r in runs]
        energy = sum(p[0] * w for p, w in zip(per, weights, strict=True)) / calls
        dynamic = sum(p[1] * w for p, w in zip(per, weights, strict=True)) / calls
        duration = sum(p[2] * w for p, w in zip(per, weights, strict=True)) / calls
        windows = [w for r in runs for w in r.windows]
        cpu = sum(w.cpu_time_s for w in windows) / calls
        method = _weakest([w.overall_method for w in windows])
        source = "carbon fixture"
    else:
        calls = iterations
        energy = m.total_energy_j / calls
        dynamic = m.total_dynamic_energy_j / calls
        duration = m.duration_s / calls
        cpu = m.cpu_time_s / calls
        method = m.overall_method
        source = "call"
    return {
        "energy_j": energy,
        "dynamic_energy_j": dynamic,
        "duration_s": duration,
        "cpu_time_s": cpu,
        "calls": calls,
        "method": method,
        "source": source,
        "window_s": m.duration_s,
        "start_s": start,
        "end_s": end,
    }


def _weakest(methods: list[str]) -> str:
    from pytest_carbon.measure.sensors.base import weakest_method

    return weakest_method(tuple(methods))


def _benchmark(item: pytest.Item) -> Any:
    from pytest_carbon.benchmark_rounds import benchmark_of

    return benchmark_of(item)


def _round(item: pytest.Item, meter: Any, iterations: int) -> tuple[str, dict[str, Any]]:
    """The base's round, as the message the head reads."""
    try:
        fields = timed_round(item, meter, iterations, "base")
    except Exception as exc:  # the base test failed in a round: the head must know why
        return "error", {"message": f"{type(exc).__name__}: {exc}"[:500]}
    return "measured", fields
