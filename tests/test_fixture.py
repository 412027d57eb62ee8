"""The carbon fixture: calibrated repetition, per-call statistics, blocks, single use."""

from __future__ import annotations

import json

import pytest
from cpu_burn import burn
from scripted import Scripted

from pytest_carbon.carbon.accounting import resolve_accounting
from pytest_carbon.fixture import CarbonFixture, FixtureAlreadyUsed
from pytest_carbon.measure.meter import Meter


def make_fixture(min_time_s: float = 0.05) -> CarbonFixture:
    meter = Meter()
    acc = resolve_accounting()
    return CarbonFixture(lambda: meter, lambda: acc, "t::x", min_time_s=min_time_s)


def busy(n: int) -> int:
    total = 0
    for i in range(n):
        total += i
    return total


def test_call_repeats_until_min_time_and_returns_result() -> None:
    # A call of 0.1 ms of CPU, not a loop count: the fixture sizes its rounds on the first
    # call, and stops at MAX_ROUNDS (1000). A 1000-step loop (~30 us) whose first call a
    # busy machine delayed by 5 ms got one call a round, and 1000 such rounds lasted 34 ms
    # here, under the 50 ms asked (less on a faster machine); 1000 rounds of this call
    # last at least 100 ms wherever it runs.
    fx = make_fixture(min_time_s=0.05)
    assert fx(burn, 0.0001) == 0.0001
    record = fx.build_record()
    assert record is not None
    assert record["duration_s"] >= 0.05
    per_call = record["per_call"]
    assert per_call["calls"] == record["rounds"] * per_call["iterations_per_round"]
    assert per_call["calls"] > 10  # a 0.1 ms call is far shorter than 50 ms
    e = per_call["energy_j"]
    assert e["min"] <= e["median"] <= e["max"]
    assert e["mean"] * per_call["calls"] == pytest.approx(record["energy_j"], rel=1e-6)
    assert record["method"] == "estimated"
    assert len(record["samples"]["energy_j"]) == record["rounds"]


def scripted_fixture(script: Scripted, min_time_s: float = 0.1) -> CarbonFixture:
    meter = Meter([script.sensor()], attribution="never")
    acc = resolve_accounting()
    return CarbonFixture(lambda: meter, lambda: acc, "t::x", min_time_s=min_time_s)


def test_per_call_energy_is_the_energy_of_one_call() -> None:
    # Scripted: a unit of work costs exactly 1 ms and 10 mJ, so per call the fixture must
    # find 4 units' cost for work(4), however many calls it batched into its rounds.
    # (Real workloads scaling with work: benchmarks/bench_scaling.py.)
    script = Scripted(seconds_per_unit=0.001, joules_per_unit=0.01)
    small, large = scripted_fixture(script), scripted_fixture(script)
    small(script.work, 1)
    large(script.work, 4)
    e_small = small.build_record()["per_call"]["energy_j"]
    e_large = large.build_record()["per_call"]["energy_j"]
    assert e_small["median"] == pytest.approx(0.01, rel=1e-9)
    assert e_large["median"] == pytest.approx(0.04, rel=1e-9)
    assert e_large["stdev"] == pytest.approx(0.0, abs=1e-12)
    d_large = large.build_record()["per_call"]["duration_s"]
    assert d_large["median"] == pytest.approx(0.004, rel=1e-9)


def test_single_use() -> None:
    fx = make_fixture()
    fx(busy, 10)
    with pytest.raises(FixtureAlreadyUsed, match="one function per test"):
        fx(busy, 10)


def test_not_callable_is_a_clear_error() -> None:
    with pytest.raises(TypeError, match="needs a callable"):
        make_fixture()(42)  # type: ignore[arg-type]


def test_blocks_are_phases_and_unique() -> None:
    script = Scripted(joules_per_unit=0.01)
    fx = scripted_fixture(script)
    with fx.measure("build"):
        script.work(5)
    with fx.measure("query"):
        script.work(1)
    with pytest.raises(ValueError, match="already used"), fx.measure("build"):
        pass
    record = fx.build_record()
    assert set(record["phases"]) == {"build", "query"}
    assert record["phases"]["build"]["energy_j"] == pytest.approx(0.05)
    assert record["phases"]["query"]["energy_j"] == pytest.approx(0.01)
    assert record["energy_j"] == pytest.approx(
        record["phases"]["build"]["energy_j"] + record["phases"]["query"]["energy_j"]
    )


def test_nested_blocks_are_refused() -> None:
    fx = make_fixture()
    with fx.measure("outer"), pytest.raises(RuntimeError, match="cannot nest"), fx.measure("in"):
        pass


def test_exception_in_function_propagates_and_closes_the_window() -> None:
    fx = make_fixture()
    calls = []

    def flaky() -> None:
        calls.append(1)
        if len(calls) > 1:
            raise ValueError("second call fails")

    with pytest.raises(ValueError, match="second call fails"):
        fx(flaky)
    # The window was closed: the meter can open the same key again.
    fx2 = CarbonFixture(fx._meter_factory, fx._accounting_factory, "t::x", min_time_s=0.01)
    fx2(busy, 10)


def test_fixture_end_to_end_with_and_without_carbon(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def work(n):
            return sum(i * i for i in range(n))

        def test_func(carbon):
            carbon.extra_info["n"] = 5000
            assert carbon(work, 5000) == work(5000)

        def test_blocks(carbon):
            with carbon.measure("setup-data"):
                data = list(range(100_000))
            with carbon.measure("sort"):
                sorted(data, reverse=True)

        def test_plain():
            pass
        """
    )
    for args in ([], ["--carbon"]):
        # In-process (no interpreter start); test_fixture_blocks_budgets_and_benchmark_under_
        # rounds runs the fixture in a pytest process of its own.
        result = pytester.runpytest("--carbon-json=out.json", "--carbon-min-time=0.05", *args)
        result.assert_outcomes(passed=3)
        report = json.loads((pytester.path / "out.json").read_text())
        recs = {t["nodeid"].split("::")[-1]: t for t in report["tests"]}
        expected = {"test_func", "test_blocks"} | ({"test_plain"} if args else set())
        assert set(recs) == expected
        assert recs["test_func"]["extra_info"] == {"n": 5000}
        assert recs["test_func"]["per_call"]["calls"] >= 1
        assert recs["test_func"]["duration_s"] >= 0.05
        assert set(recs["test_blocks"]["phases"]) >= {"setup-data", "sort"}
        if args:
            # Under --carbon the whole call phase is kept beside the fixture's numbers.
            assert "call" in recs["test_func"]["phases"]
            assert (
                recs["test_func"]["phases"]["call"]["duration_s"] >= recs["test_func"]["duration_s"]
            )


@pytest.mark.slow
def test_budget_applies_per_call_with_the_fixture(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.carbon(max_energy_j=1e-12)
        def test_tiny_budget(carbon):
            carbon(sum, range(100))
        """
    )
    result = pytester.runpytest_subprocess("--carbon-min-time=0.02")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*energy_j = * J per call (median) > max_energy_j=1e-12 J*"])


#: A sensor that counts the joules the tests declare (``SPENT``), so that a budget's verdict
#: depends on the rounds that ran, never on the machine's speed or load.
COUNTING_SENSOR = """
import time

from pytest_carbon.measure.sensors.base import Reading

SPENT = [0.0]


class CountingSensor:
    name = "counting"
    method = "measured"
    components = ("cpu", "dram")  # owns both, so the estimate adds nothing
    machine_wide = False
    update_period_s = 0.0
    poll_interval_s = None

    def read(self, pids=()):
        return Reading(time.perf_counter(), {"cpu": SPENT[0], "dram": 0.0})

    def close(self):
        pass


def pytest_carbon_sensors(config):
    return [CountingSensor()]
"""

ROUNDS_SUITE = """
import pytest
from conftest import SPENT

def parse(data):
    return sum(int(x) for x in data.split(","))

DATA = ",".join(str(i) for i in range(2000))

def test_call(carbon):
    assert carbon(parse, DATA) == sum(range(2000))

def test_blocks(carbon):
    with carbon.measure("load"):
        rows = DATA.split(",")
    with carbon.measure("sum"):
        assert sum(int(x) for x in rows) == sum(range(2000))

@pytest.mark.carbon(max_energy_j=2.2)
def test_budget():
    SPENT[0] += 1.0  # one joule per round (the counting sensor of COUNTING_SENSOR)

def test_bench(benchmark):
    assert benchmark(parse, DATA) == sum(range(2000))
"""


def test_fixture_blocks_budgets_and_benchmark_under_rounds(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's examples under --carbon-rounds=3: every test is measured (a fresh
    fixture each round), and a budget applies to the median round, never the sum."""
    # Under xdist the inner pytest would inherit PYTEST_XDIST_WORKER, and pytest-benchmark
    # then disables itself (no benchmark record to check).
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)
    # One round of test_budget costs 1 J (a counting sensor); a budget of 2.2 J is met by
    # each round and would be exceeded by the sum of three.
    one = 1.0
    pytester.makeconftest(COUNTING_SENSOR)
    pytester.makepyfile(test_suite=ROUNDS_SUITE)
    result = pytester.runpytest_subprocess(
        "test_suite.py",
        "--carbon",
        "--carbon-rounds=3",
        "--carbon-min-time=0.02",
        "-p",
        "no:randomly",
        "--benchmark-max-time=0.05",
        "--carbon-json=out.json",
    )
    out = result.stdout.str()
    assert "FixtureAlreadyUsed" not in out and "already used" not in out, out
    result.assert_outcomes(passed=4)
    recs = {
        r["nodeid"].split("::")[-1]: r
        for r in json.loads((pytester.path / "out.json").read_text())["tests"]
    }
    assert set(recs) == {"test_call", "test_blocks", "test_budget", "test_bench"}
    # Call mode: every calibrated round of the three runs is a per-call sample.
    call = recs["test_call"]
    assert call["rounds"] == len(call["samples"]["energy_j"]) >= 3
    assert call["per_call"]["calls"] >= call["rounds"]
    # Blocks: one sample per run (the sum of its blocks), each block a phase over 3 runs.
    blocks = recs["test_blocks"]
    assert blocks["rounds"] == 3 and len(blocks["samples"]["energy_j"]) == 3
    assert {"load", "sum"} <= set(blocks["phases"])
    # The budget test ran 3 rounds, and its whole energy is above the budget: only the
    # median round is checked.
    budget = recs["test_budget"]
    assert budget["rounds"] == 3 and budget["energy_j"] == pytest.approx(3 * one)
    # pytest-benchmark's own rounds are its samples: not run again.
    bench = recs["test_bench"]
    assert bench["per_call"]["source"] and bench["rounds"] == 1
