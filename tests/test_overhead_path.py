"""The per-test path's shortcuts give the answers of the long way round.

Each shortcut (issue 23: ``--carbon`` at most 1.05x plain pytest) is checked against what
it replaced: the second's text against ``datetime``, the marker walk against pytest's
``get_closest_marker``, the window's CPU time read once against the meter's own reader.
No timing here: what it costs is in ``benchmarks/bench_overhead.py``.
"""

from __future__ import annotations

import random
from datetime import datetime, timezone
from typing import Any

import pytest
from scripted import Scripted, ScriptedSensor

from pytest_carbon.measure.idle import IdleEstimate
from pytest_carbon.measure.meter import Meter
from pytest_carbon.measure.sensors.base import Reading
from pytest_carbon.measure.sensors.estimate import EstimateSensor
from pytest_carbon.results.record import SUMMARY_FIELDS, iso_utc
from pytest_carbon.runner import closest_carbon_marker


def _datetime_iso(unix_s: float) -> str:
    dt = datetime.fromtimestamp(unix_s, timezone.utc)
    return dt.isoformat(timespec="seconds").replace("+00:00", "Z")


def test_the_cached_second_is_datetimes_text_at_every_edge() -> None:
    base = 1_764_000_000
    # The edges: a whole second, just under the rounding to the next one (datetime rounds
    # to the microsecond, half to even), and just over it.
    fractions = (0.0, 1e-7, 0.4999995, 0.5, 0.9999994, 0.9999995, 0.9999996, 0.999999999)
    edges = [base + k + f for k in range(3) for f in fractions]
    rng = random.Random(23)
    spread = [base + rng.uniform(-5e8, 5e8) for _ in range(2_000)]
    # In order (the cache hits) and shuffled (it misses), and before 1970 (no cache).
    for stamp in [*edges, *sorted(spread), *rng.sample(spread, len(spread)), -1.5, -0.25]:
        assert iso_utc(stamp) == _datetime_iso(stamp), stamp


def test_the_marker_walk_finds_what_get_closest_marker_finds(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        pytestmark = pytest.mark.carbon(max_energy_j=3)

        def test_module_level():
            pass

        @pytest.mark.carbon(max_energy_j=1)
        def test_own():
            pass

        @pytest.mark.carbon(max_energy_j=2)
        class TestClass:
            def test_class_level(self):
                pass

            @pytest.mark.carbon(max_energy_j=0.5)
            @pytest.mark.filterwarnings("default")
            def test_closest_wins(self):
                pass
        """
    )
    items, _ = pytester.inline_genitems()
    assert len(items) == 4
    budgets = {}
    for item in items:
        walked = closest_carbon_marker(item)
        assert walked is item.get_closest_marker("carbon")
        assert walked is not None
        budgets[item.name] = walked.kwargs["max_energy_j"]
    assert budgets == {
        "test_module_level": 3,
        "test_own": 1,
        "test_class_level": 2,
        "test_closest_wins": 0.5,
    }


def test_no_marker_is_none(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.filterwarnings("default")
        def test_x():
            pass
        """
    )
    items, _ = pytester.inline_genitems()
    assert closest_carbon_marker(items[0]) is None is items[0].get_closest_marker("carbon")


class _CountingClock:
    """The scripted CPU clock, counting its reads."""

    def __init__(self, script: Scripted) -> None:
        self.script = script
        self.reads = 0

    def __call__(self, pids: tuple[int, ...] = ()) -> float:
        self.reads += 1
        return self.script.cpu_s


def _estimate(script: Scripted, clock: _CountingClock) -> EstimateSensor:
    return EstimateSensor(
        watts_per_core=4.0,
        clock=script.clock,
        cpu_time_s=clock,
        resident_bytes=script.resident_bytes,
    )


def test_the_window_takes_its_cpu_time_from_the_estimates_read() -> None:
    script = Scripted(seconds_per_unit=0.01)
    clock = _CountingClock(script)
    meter = Meter([_estimate(script, clock)], cpu_time=clock)
    meter.idle = IdleEstimate({"cpu": 0.0, "dram": 0.0}, method="given")
    before = clock.reads
    meter.begin("t")
    script.work(7)
    m = meter.end("t")
    # One read per edge, not two: the sensor's reading carries the CPU time.
    assert clock.reads - before == 2
    assert m.cpu_time_s == pytest.approx(0.07)
    # The CPU energy is exactly the window's CPU time at the model's watts per core.
    assert m.energy_j["cpu"] == pytest.approx(m.cpu_time_s * 4.0)


def test_a_meter_with_its_own_cpu_clock_reads_it_itself() -> None:
    script = Scripted(seconds_per_unit=0.01)
    sensor_clock, meter_clock = _CountingClock(script), _CountingClock(script)
    meter = Meter([_estimate(script, sensor_clock)], cpu_time=meter_clock)
    meter.idle = IdleEstimate({"cpu": 0.0, "dram": 0.0}, method="given")
    meter.begin("t")
    script.work(3)
    m = meter.end("t")
    assert meter_clock.reads == 2  # its own clock at both edges, not the sensor's
    assert m.cpu_time_s == pytest.approx(0.03)


def test_every_path_builds_the_same_record(pytester: pytest.Pytester) -> None:
    # A passing test, a failing one (its record is built as the exception passes) and a
    # budgeted one (checked against its marker's budget) carry the same fields, in the
    # same order, and the JUnit XML properties are their records' figures.
    import json
    import xml.etree.ElementTree as ET

    pytester.makepyfile(
        """
        import pytest

        def test_passes():
            sum(range(10_000))

        def test_fails():
            assert sum(range(10_000)) < 0

        @pytest.mark.carbon(max_energy_j=1e9)
        def test_budgeted():
            sum(range(10_000))
        """
    )
    result = pytester.runpytest(
        "--carbon", "--carbon-idle=off", "--carbon-json=out.json", "--junitxml=junit.xml"
    )
    result.assert_outcomes(passed=2, failed=1)
    report = json.loads((pytester.path / "out.json").read_text())
    recs = {r["nodeid"].split("::")[-1]: r for r in report["tests"]}
    assert set(recs) == {"test_passes", "test_fails", "test_budgeted"}
    assert [recs[n]["outcome"] for n in ("test_passes", "test_fails", "test_budgeted")] == [
        "passed",
        "failed",
        "passed",
    ]
    assert list(recs["test_passes"]) == list(recs["test_fails"]) == list(recs["test_budgeted"])
    assert recs["test_passes"]["attempts"] == 1
    assert recs["test_passes"]["energy_j"] > 0
    assert recs["test_passes"]["samples"]["energy_j"] == [recs["test_passes"]["energy_j"]]
    props: dict[str, dict[str, str]] = {}
    for case in ET.parse(pytester.path / "junit.xml").iter("testcase"):
        props[case.get("name", "")] = {
            p.get("name", ""): p.get("value", "") for p in case.iter("property")
        }
    for name, rec in recs.items():
        assert float(props[name]["carbon_energy_j"]) == round(rec["energy_j"], 6)
        assert float(props[name]["carbon_gco2e_g"]) == round(rec["gco2e_g"], 9)
        assert props[name]["carbon_method"] == rec["method"]


# -- the fast path's records (runner.window_records) against the full path's ---------


class _WideSensor:
    """A scripted machine-wide counter (component ``cpu``): attributed by CPU share."""

    name = "wide"
    method = "measured"
    components: tuple[str, ...] = ("cpu",)
    machine_wide = True
    poll_interval_s: float | None = None

    def __init__(self, script: Scripted, update_period_s: float = 0.0) -> None:
        self.script = script
        self.update_period_s = update_period_s

    def read(self, pids: tuple[int, ...] = ()) -> Reading:
        return Reading(time_s=self.script.now_s, energy_j={"cpu": self.script.energy_j * 3})

    def close(self) -> None:
        pass


def _meters(script: Scripted, machine: list[float]) -> list[tuple[str, Meter]]:
    """Meters over every kind of reading the charge knows (a per-process model, a
    reading that includes its idle, a machine-wide counter) and every attribution rule."""

    def busy() -> float:
        return machine[0]

    def est() -> EstimateSensor:
        return _estimate(script, _CountingClock(script))

    out = [
        ("estimate", Meter([est()], cpu_time=script.cpu_time_s)),
        ("own", Meter([ScriptedSensor(script)], cpu_time=script.cpu_time_s)),
        ("estimate-machine", Meter([est()], attribution="machine", cpu_time=script.cpu_time_s)),
    ]
    for rule in ("auto", "process", "machine"):
        out.append(
            (
                f"wide-{rule}",
                Meter(
                    [_WideSensor(script, update_period_s=0.05), est()],
                    attribution=rule,
                    sharers=2,
                    cpu_time=script.cpu_time_s,
                    machine_busy=busy,
                ),
            )
        )
    return out


def _idles() -> list[IdleEstimate]:
    return [
        IdleEstimate({"cpu": 2.5, "dram": 0.75}, method="given"),
        IdleEstimate({"cpu": 7.0, "dram": 0.5}, {"cpu": 1.0}, "fit", {"cpu": 3.2}),
        IdleEstimate({"cpu": 6.0}, method="model", trusted=False),
    ]


def _accountings() -> list[Any]:
    from pytest_carbon.carbon.accounting import resolve_accounting

    return [
        resolve_accounting(),
        resolve_accounting(
            intensity_g_per_kwh=321.0,
            pue=1.37,
            embodied_kgco2e=1200.0,
            lifetime_h=35_000.0,
            water_l_per_kwh=1.8,
        ),
    ]


def _full_record(meter: Meter, closed: Any, acc: Any, outcome: str, attempts: int) -> Any:
    """What the full path builds: runner.build_record's make_record of one window (no
    rounds, fixture or benchmark, not concurrent), then the plugin's finalize."""
    from pytest_carbon.results.record import finalize, make_record

    m = meter.measurement_of(closed)
    rec = make_record(
        "t.py::test_x[a\\b]",
        m,
        acc,
        rounds=1,
        per_round_energy_j=(),
        per_round_duration_s=(),
        per_call=None,
        extra_info=None,
        worker=None,
        warnings=[],
        own_intensity=False,
    )
    return finalize(rec, outcome, attempts)


def _fast_record(
    meter: Meter, closed: Any, acc: Any, outcome: str, attempts: int, summary: bool = False
) -> Any:
    from pytest_carbon.results.record import window_record

    inputs, ch, warnings = meter.charge_of(closed)
    win = closed[0]
    return window_record(
        "t.py::test_x[a\\b]",
        win.unix0,
        inputs,
        ch,
        warnings,
        win.samples,
        acc,
        attribution=meter.attribution,
        sensors=meter.sensor_names,
        worker=None,
        outcome=outcome,
        attempts=attempts,
        summary=summary,
    )


@pytest.mark.parametrize("work", [0, 1, 7, 250])
def test_the_fast_path_builds_the_full_paths_record(work: int) -> None:
    # Same scripted readings, both ways: every key, in the same order, with the same value
    # to the last bit (== on floats), for every kind of reading, attribution rule, idle
    # estimate (a trusted one, a fit with a per-CPU slope, an untrusted model) and
    # accounting (embodied and water on), with and without a power trace and warnings.
    compared = 0
    for idle in _idles():
        for acc in _accountings():
            script = Scripted(seconds_per_unit=0.0013, joules_per_unit=0.037)
            machine = [100.0]
            for name, meter in _meters(script, machine):
                meter.idle = idle
                key = f"t.py::test_x[a\\b]-{name}"
                meter.begin(key)
                script.work(work)
                machine[0] += work * 0.0013 * 1.7
                if work == 7:
                    win = meter._windows[key]
                    win.samples.append((0.00123456, {"cpu": 3.5}))
                    win.errors.append("sampler stopped: OSError: gone")
                closed = meter.end_raw(key)
                full = _full_record(meter, closed, acc, "failed", 2)
                fast = _fast_record(meter, closed, acc, "failed", 2)
                assert list(fast) == list(full), name
                for k in full:
                    assert fast[k] == full[k], (name, k)
                    assert type(fast[k]) is type(full[k]), (name, k)
                # The summary's projection: its fields only, each the full record's.
                summ = _fast_record(meter, closed, acc, "failed", 2, summary=True)
                assert set(summ) == set(SUMMARY_FIELDS) | set(acc.record_fields(1.0, 1.0))
                for k in summ:
                    assert summ[k] == full[k], (name, k)
                    assert type(summ[k]) is type(full[k]), (name, k)
                compared += 1
    assert compared == len(_idles()) * len(_accountings()) * 6


def test_a_window_charged_later_uses_the_idle_of_its_close() -> None:
    script = Scripted()
    meter = Meter([_estimate(script, _CountingClock(script))], cpu_time=script.cpu_time_s)
    meter.idle = IdleEstimate({"cpu": 4.0, "dram": 0.0}, method="given")
    meter.begin("t")
    script.work(10)
    closed = meter.end_raw("t")
    before = meter.measurement_of(closed)
    meter.idle = IdleEstimate({"cpu": 400.0, "dram": 0.0}, method="given")
    assert meter.measurement_of(closed) == before
    assert before.energy_j["cpu"] > before.dynamic_energy_j["cpu"]


FAST_SUITE = """
import pytest

def test_plain():
    sum(range(10_000))

def test_fails():
    assert sum(range(10_000)) < 0

@pytest.mark.carbon(max_energy_j=1e9)
def test_budgeted():
    sum(range(10_000))

def test_fixture_late(request):
    request.getfixturevalue("carbon")(sum, range(1000))

@pytest.mark.skip
def test_skipped():
    pass
"""


def test_the_fast_and_full_paths_give_records_of_one_shape(pytester: pytest.Pytester) -> None:
    # Without JUnit XML the plain tests take the fast path (their records are built at
    # the end), the budgeted one the full path: the JSON report cannot tell them apart.
    import json

    from pytest_carbon import runner

    pytester.makepyfile(FAST_SUITE)
    built: list[str] = []
    original = runner.window_records

    def counting(cs: Any, entries: Any, summary: bool = False) -> Any:
        built.extend(e[0].split("::")[-1] for e in entries)
        return original(cs, entries, summary=summary)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(runner, "window_records", counting)
        result = pytester.runpytest("--carbon", "--carbon-idle=off", "--carbon-json=out.json")
    result.assert_outcomes(passed=3, failed=1, skipped=1)
    assert sorted(built) == ["test_fails", "test_plain"]
    report = json.loads((pytester.path / "out.json").read_text())
    recs = {r["nodeid"].split("::")[-1]: r for r in report["tests"]}
    assert set(recs) == {"test_plain", "test_fails", "test_budgeted", "test_fixture_late"}
    assert list(recs["test_plain"]) == list(recs["test_fails"]) == list(recs["test_budgeted"])
    assert recs["test_fails"]["outcome"] == "failed"
    assert recs["test_plain"]["attempts"] == 1
    assert recs["test_plain"]["energy_j"] > 0
    assert recs["test_plain"]["samples"]["energy_j"] == [recs["test_plain"]["energy_j"]]
    # The test that asked for the carbon fixture during its call has the fixture's record.
    assert recs["test_fixture_late"]["per_call"] is not None
    assert "call" in recs["test_fixture_late"]["phases"]


def _close_to(a: Any, b: Any) -> bool:
    """Equal, floats to 1e-12 relative (two ways of subtracting the same readings)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == pytest.approx(b, rel=1e-12, abs=1e-300)
    if isinstance(a, dict):
        return list(a) == list(b) and all(_close_to(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_close_to(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@pytest.mark.parametrize("work", [0, 1, 7, 250])
def test_the_edge_path_builds_the_full_paths_record(work: int) -> None:
    # The estimate's edges (clock, CPU time, RSS as three numbers) charged by
    # Meter.charge_edges against the same window read by begin/end_raw and built by the
    # full path: same keys in the same order, same types, same values (floats to 1e-12:
    # the full path subtracts running totals, the edge path the raw readings), for every
    # attribution rule, idle estimate and accounting, RSS growing in the window.
    from pytest_carbon.results.record import window_record

    compared = 0
    for idle in _idles():
        for acc in _accountings():
            for rule in ("auto", "process", "machine"):
                script = Scripted(seconds_per_unit=0.0013, joules_per_unit=0.037)
                clock = _CountingClock(script)
                meter = Meter([_estimate(script, clock)], attribution=rule, cpu_time=clock)
                meter.idle = idle
                reader = meter.edge_reader()
                assert reader is not None
                meter.begin("k")
                e0 = reader()
                script.work(work)
                script.rss_bytes += work * 4096 * 1000
                e1 = reader()
                closed = meter.end_raw("k")
                full = _full_record(meter, closed, acc, "failed", 2)
                inputs, ch, warnings = meter.charge_edges("t.py::test_x[a\\b]", e0, e1, idle)
                edge = window_record(
                    "t.py::test_x[a\\b]",
                    closed[0].unix0,
                    inputs,
                    ch,
                    warnings,
                    (),
                    acc,
                    attribution=meter.attribution,
                    sensors=meter.sensor_names,
                    worker=None,
                    outcome="failed",
                    attempts=2,
                )
                assert list(edge) == list(full), rule
                for k in full:
                    assert _close_to(edge[k], full[k]), (rule, k, edge[k], full[k])
                if work:
                    assert edge["components"]["dram"] > 0 and edge["cpu_time_s"] > 0
                m = meter.measurement_of_edges("k", closed[0].unix0, e0, e1, idle)
                assert _close_to(m.energy_j, full["components"])
                compared += 1
    assert compared == len(_idles()) * len(_accountings()) * 3


def test_only_a_lone_model_sensor_on_the_meters_clock_has_an_edge_reader() -> None:
    script = Scripted()
    clock = _CountingClock(script)
    assert Meter([_estimate(script, clock)], cpu_time=clock).edge_reader() is not None
    # Its own CPU clock, a counter beside it, a counter alone: the general path.
    assert Meter([_estimate(script, clock)], cpu_time=script.cpu_time_s).edge_reader() is None
    wide = Meter([_WideSensor(script), _estimate(script, clock)], cpu_time=clock)
    assert wide.edge_reader() is None
    assert Meter([ScriptedSensor(script)], cpu_time=clock).edge_reader() is None


def test_an_edge_reuses_an_rss_read_younger_than_a_millisecond() -> None:
    from pytest_carbon.measure.sensors.estimate import EDGE_RSS_REUSE_S

    script = Scripted()
    sensor = _estimate(script, _CountingClock(script))
    script.sleep(0.01)
    first = sensor.edge()
    assert first[2] == script.rss_bytes
    script.rss_bytes += 4096 * 100
    script.sleep(EDGE_RSS_REUSE_S / 2)
    assert sensor.edge()[2] == first[2]  # young: reused
    script.sleep(EDGE_RSS_REUSE_S)
    assert sensor.edge()[2] == script.rss_bytes  # old enough: read again
    # read() (the general path) always reads.
    script.rss_bytes += 4096
    assert sensor.read().energy_j["dram"] >= 0 and sensor._last_rss == script.rss_bytes
