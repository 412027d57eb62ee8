"""pytest-carbon among other pytest plugins and pytest's own features (issue 16):
pytest-benchmark, xfail, pytest-rerunfailures, ``-x``/``--maxfail``, ``-v`` on a large
suite, warnings grouped by kind, and how far to trust a total."""

from __future__ import annotations

import json
import statistics
import sys
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from pytest_carbon.benchmark_rounds import MIN_WINDOW_S, BenchmarkRounds
from pytest_carbon.measure.meter import Measurement, combine
from pytest_carbon.results.caveats import aggregate, kind_lines, strip_nodeid, trust_note

XDIST_VARS = ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID")


def run_json(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict[str, Any]]:
    # In-process unless xdist is asked for: no interpreter start per run.
    run = pytester.runpytest_subprocess if "-n" in args else pytester.runpytest
    result = run("--carbon", "--carbon-json=out.json", "-p", "no:randomly", *args)
    return result, json.loads((pytester.path / "out.json").read_text())


# -- pytest-benchmark ---------------------------------------------------------------------

#: The benchmarked call burns this much CPU time (a busy loop on the process clock).
CPU_PER_CALL_S = 0.002

BENCH = f"""
import time

def burn():
    t0 = time.process_time()
    while time.process_time() - t0 < {CPU_PER_CALL_S}:
        pass

def test_burn(benchmark):
    benchmark(burn)
"""


def _bench_median_s(pytester: pytest.Pytester, *extra: str) -> tuple[float, dict[str, Any]]:
    # pytest-benchmark's process-time timer: a neighbour on the shared machine cannot
    # stretch it, while any meter work that leaked inside the timed region would show.
    args = (
        "--benchmark-timer=time.process_time",
        "--benchmark-max-time=0.3",
        "--benchmark-json=bench.json",
        "-p",
        "no:randomly",
    )
    result = pytester.runpytest_subprocess(*args, *extra)
    result.assert_outcomes(passed=1)
    bench = json.loads((pytester.path / "bench.json").read_text())["benchmarks"][0]
    return float(bench["stats"]["median"]), bench


@pytest.mark.slow
def test_benchmark_results_unchanged_and_energy_follows_cpu_time(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Under xdist the child pytest would inherit the worker's variables, and
    # pytest-benchmark would disable itself.
    for name in XDIST_VARS:
        monkeypatch.delenv(name, raising=False)
    pytester.makepyfile(test_bench=BENCH)
    plain: list[float] = []
    carbon: list[float] = []
    # Alternated, so a busy neighbour on the machine hits both sides alike.
    for _ in range(2):
        plain.append(_bench_median_s(pytester)[0])
        # --carbon-idle=off: the check is that energy per call follows the call's CPU
        # time; the idle share (power x wall time, stretched by a neighbour) is not that,
        # and is tested with the meter (tests/test_meter.py).
        median, bench = _bench_median_s(
            pytester, "--carbon", "--carbon-idle=off", "--carbon-json=out.json"
        )
        carbon.append(median)
    assert min(carbon) == pytest.approx(min(plain), rel=0.25), (plain, carbon)

    report = json.loads((pytester.path / "out.json").read_text())
    rec = report["tests"][0]
    info = rec["extra_info"]["benchmark"]
    # Calibration rounds never count: at most the benchmark's own rounds are measured.
    assert 0 < info["energy_rounds"] <= bench["stats"]["rounds"]
    assert info["cpu_time_s_per_call"] == pytest.approx(CPU_PER_CALL_S, rel=0.5)
    estimate = next(s for s in report["machine"]["sensors"] if s["name"] == "estimate")
    expected_j = CPU_PER_CALL_S * estimate["details"]["watts_per_core"]
    assert expected_j / 2 <= info["energy_j_per_call"] <= expected_j * 2, (info, expected_j)
    assert rec["per_call"]["source"] == "pytest-benchmark rounds"
    assert rec["per_call"]["energy_j"]["median"] == pytest.approx(expected_j, rel=1.0)
    # pytest-benchmark's own JSON carries the same figures.
    extra = bench["extra_info"]
    assert extra["carbon_energy_j_per_call"] == pytest.approx(info["energy_j_per_call"])
    assert extra["carbon_energy_rounds"] == info["energy_rounds"]


class ScriptedMeter:
    """A meter whose windows cost what the test says: power is scripted per window."""

    update_period_s = 0.001

    def __init__(self, clock: list[float]) -> None:
        self.clock = clock
        self.power_w = 10.0
        self.open: dict[str, float] = {}
        self.windows = 0

    def begin(self, key: str) -> None:
        assert key not in self.open
        self.open[key] = self.clock[0]

    def end(self, key: str) -> Measurement:
        t0 = self.open.pop(key)
        self.windows += 1
        d = self.clock[0] - t0
        e = self.power_w * d
        return Measurement(key, 0.0, d, {"cpu": e}, {"cpu": e}, {"cpu": "estimated"}, d)


def _round(rounds: BenchmarkRounds, clock: list[float], seconds: float, measured: bool) -> None:
    """One runner call as pytest-benchmark makes it: start, the round, end, then
    ``stats.update`` only for a measured round (a small gap follows every round)."""
    rounds.before_round()
    clock[0] += seconds
    rounds.after_round()
    if measured:
        rounds.confirm(seconds, iterations=4)
    clock[0] += 1e-6


def test_calibration_is_ignored_and_windows_span_rounds() -> None:
    clock = [0.0]
    meter = ScriptedMeter(clock)
    rounds = BenchmarkRounds(meter, "t::benchmark", clock=lambda: clock[0])  # type: ignore[arg-type]
    meter.power_w = 1000.0  # calibration and warm-up at a power no measured round has
    for seconds in (1e-5, 1e-4, 1e-3, 1e-2):
        _round(rounds, clock, seconds, measured=False)
    meter.power_w = 10.0
    n = 20_000
    for _ in range(n):
        _round(rounds, clock, 1e-5, measured=True)
    rounds.finish()
    assert not meter.open
    info = rounds.info()
    assert info is not None
    # 20,000 rounds of 10 µs: windows of MIN_WINDOW_S, not one per round (memory, cost).
    assert rounds.windows <= n * (1e-5 + 1e-6) / MIN_WINDOW_S + 1
    assert len(rounds.per_call_energy_j) == rounds.windows
    assert n - 600 <= info["energy_rounds"] <= n
    # 10 W x 10 µs per round / 4 calls: no calibration energy, gaps not charged.
    assert info["energy_j_per_call"] == pytest.approx(10.0 * 1e-5 / 4, rel=1e-6)
    per_call = rounds.per_call()
    assert per_call is not None and per_call["calls"] == info["energy_rounds"] * 4


def test_few_short_rounds_still_get_a_window_with_a_caveat() -> None:
    clock = [0.0]
    meter = ScriptedMeter(clock)
    rounds = BenchmarkRounds(meter, "t::benchmark", clock=lambda: clock[0])  # type: ignore[arg-type]
    for _ in range(3):
        _round(rounds, clock, 1e-4, measured=True)
    clock[0] += 1e-3  # the test's own code after the rounds, inside the open window
    rounds.finish()
    info = rounds.info()
    assert info is not None and info["energy_rounds"] == 3
    assert any("filled" in w for w in rounds.warnings())


def test_combine_keeps_each_warning_once_in_order() -> None:
    def m(*warnings: str) -> Measurement:
        return Measurement("k", 0.0, 1.0, {"cpu": 1.0}, {"cpu": 1.0}, {"cpu": "estimated"}, 1.0,
                           warnings=warnings)  # fmt: skip

    total = combine([m("b", "a"), m("a"), m("c", "b")] * 1000)
    assert total.warnings == ("b", "a", "c")
    assert total.energy_j["cpu"] == pytest.approx(3000.0)


# -- outcomes, reruns, -x -------------------------------------------------------------------

OUTCOMES = """
import pytest

@pytest.mark.xfail(reason="known bug")
def test_xfailed():
    sum(range(10_000))
    assert False

@pytest.mark.xfail(reason="fixed meanwhile")
def test_xpassed():
    sum(range(10_000))

@pytest.mark.xfail(strict=True, reason="must fail")
def test_strict_xpass():
    pass

def test_skipped_inside():
    pytest.skip("not today")

def test_passed():
    pass

def test_failed():
    assert False
"""


def test_records_keep_pytests_outcome_words(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_outcomes=OUTCOMES)
    result, report = run_json(pytester, "--carbon-markdown=out.md")
    result.assert_outcomes(passed=1, failed=2, skipped=1, xfailed=1, xpassed=1)
    outcomes = {t["nodeid"].split("::")[-1]: t["outcome"] for t in report["tests"]}
    assert outcomes == {
        "test_xfailed": "xfailed",
        "test_xpassed": "xpassed",
        "test_strict_xpass": "failed",
        "test_skipped_inside": "skipped",
        "test_passed": "passed",
        "test_failed": "failed",
    }
    assert all(t["attempts"] == 1 for t in report["tests"])
    result.stdout.fnmatch_lines(["outcomes: 1 passed, 2 failed, 1 skipped, 1 xfailed, 1 xpassed"])


RERUN = """
ATTEMPTS = []

def test_flaky():
    # The module stays imported between attempts: the first attempt in a run fails.
    ATTEMPTS.append(1)
    assert len(ATTEMPTS) > 1, "first attempt fails"
    sum(range(10_000))

def test_steady():
    pass
"""


@pytest.mark.parametrize(
    "extra",
    [pytest.param((), id="local"), pytest.param(("-n", "2"), id="xdist", marks=pytest.mark.slow)],
)
def test_a_rerun_replaces_the_earlier_attempt(
    pytester: pytest.Pytester, extra: tuple[str, ...]
) -> None:
    if extra:
        pytest.importorskip("xdist", reason="pytest-xdist is not installed (noxdist env)")
    pytester.makepyfile(test_rerun=RERUN)
    result, report = run_json(pytester, "--reruns=2", "--junitxml=junit.xml", *extra)
    result.assert_outcomes(passed=2)
    assert result.parseoutcomes()["rerun"] == 1
    records = {t["nodeid"].split("::")[-1]: t for t in report["tests"]}
    assert len(report["tests"]) == 2 == report["summary"]["tests"]
    assert records["test_flaky"]["attempts"] == 2
    assert records["test_flaky"]["outcome"] == "passed"
    assert records["test_steady"]["attempts"] == 1
    props = [
        (p.get("name"), p.get("value"))
        for c in ET.parse(pytester.path / "junit.xml").iter("testcase")
        if c.get("name") == "test_flaky"
        for p in c.iter("property")
    ]
    energies = [float(v) for name, v in props if name == "carbon_energy_j"]
    assert len(energies) == 1, props
    assert energies[0] == pytest.approx(records["test_flaky"]["energy_j"], rel=1e-3)


STOPS = "".join(
    f"def test_{i:02d}():\n    sum(range(20_000))\n    assert {i} != 1\n\n" for i in range(40)
)


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(("-x",), id="x"),
        pytest.param(("--maxfail=1",), id="maxfail"),
        pytest.param(("-x", "-n", "2"), id="xdist", marks=pytest.mark.slow),
    ],
)
def test_stopping_early_makes_the_report_incomplete(
    pytester: pytest.Pytester, args: tuple[str, ...]
) -> None:
    if "-n" in args:
        pytest.importorskip("xdist", reason="pytest-xdist is not installed (noxdist env)")
    pytester.makepyfile(test_stop=STOPS)
    result, report = run_json(pytester, "--carbon-markdown=out.md", *args)
    # xdist ends a stopped run as interrupted; pytest itself as failed.
    assert result.ret in (pytest.ExitCode.TESTS_FAILED, pytest.ExitCode.INTERRUPTED)
    assert report["complete"] is False
    assert "stopping after 1 failures" in report["incomplete_reason"]
    assert "of 40 collected tests did not run" in report["incomplete_reason"]
    assert "Incomplete run (stopping after 1 failures" in (pytester.path / "out.md").read_text()
    result.stdout.fnmatch_lines(["warning: incomplete run (stopping after 1 failures*"])


def test_a_full_run_is_complete(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_a():\n    pass\n\ndef test_b():\n    assert False\n")
    _, report = run_json(pytester)
    assert report["complete"] is True
    assert "incomplete_reason" not in report


# -- warnings by kind, -v --------------------------------------------------------------------


#: A sensor whose counters update once an hour: every window is shorter than that, so
#: every test has the same kind of warning, whatever the machine's speed.
HOURLY_SENSOR = """
import time

from pytest_carbon.measure.sensors.base import Reading


class HourlySensor:
    name = "hourly"
    method = "measured"
    components = ("cpu", "dram")  # owns both, so the estimate adds nothing
    machine_wide = False
    update_period_s = 3600.0
    poll_interval_s = None

    def read(self, pids=()):
        t = time.perf_counter()
        return Reading(t, {"cpu": 10.0 * t, "dram": 0.0})

    def close(self):
        pass


def pytest_carbon_sensors(config):
    return [HourlySensor()]
"""


def test_verbose_adds_rows_not_one_line_per_warning(pytester: pytest.Pytester) -> None:
    n = 200  # enough to show one row per test and one line per kind of warning
    pytester.makeconftest(HOURLY_SENSOR)
    pytester.makepyfile("".join(f"def test_{i}():\n    pass\n\n" for i in range(n)))
    result, report = run_json(pytester, "-v", "--carbon-markdown=out.md")
    result.assert_outcomes(passed=n)
    lines = result.stdout.lines
    start = next(i for i, line in enumerate(lines) if "pytest-carbon: energy and carbon" in line)
    section = lines[start:]
    # One row per test, plus a fixed number of header, total and caveat lines.
    assert n < len(section) <= n + 30, "\n".join(section[-40:])
    # Every test is shorter than the counters' update period: one kind, counted.
    kinds = report["warning_kinds"]
    short = [k for k in kinds if "shorter than the counters' update period" in k["kind"]]
    assert len(short) == 1, kinds
    with_it = [t for t in report["tests"] if any("update period" in w for w in t["warnings"])]
    assert short[0]["count"] == len(with_it) == n
    assert "test_" not in short[0]["kind"]
    assert len(short[0]["examples"]) == 3
    assert sum("shorter than the counters' update period" in line for line in section) == 1
    assert f"({len(with_it)} tests: " in (pytester.path / "out.md").read_text()


def test_warning_kinds_drop_the_node_id_and_the_numbers() -> None:
    def rec(nodeid: str, ms: float) -> dict[str, Any]:
        return {
            "nodeid": nodeid,
            "warnings": [
                f"window '{nodeid}::benchmark' lasted {ms:.3f} ms, shorter than 1 ms",
                "measured while other tests ran",
                "measured while other tests ran",
            ],
        }

    kinds = aggregate([rec("a.py::t1", 0.01), rec("a.py::t2", 0.02), rec("b.py::t[x-1]", 0.5)])
    assert [k["count"] for k in kinds] == [3, 3]
    texts = [k["kind"] for k in kinds]
    assert "measured while other tests ran" in texts
    assert "window <test> lasted … ms, shorter than … ms" in texts
    assert kinds[0]["examples"] == ["a.py::t1", "a.py::t2", "b.py::t[x-1]"]
    # Identical texts keep their numbers.
    same = aggregate(
        [{"nodeid": "x", "warnings": ["took 5 s"]}, {"nodeid": "y", "warnings": ["took 5 s"]}]
    )
    assert same[0]["kind"] == "took 5 s"
    assert kind_lines(same) == ["took 5 s (2 tests: x, …)"]
    assert strip_nodeid("test 'a::b' slow", "a::b") == "test <test> slow"


def test_warning_kinds_group_ids_holding_escapes() -> None:
    # dateutil-style ids hold backslashes; a window key is written with !r, which doubles
    # them: the id is found in either form, so 200 tests make one kind, not 200.
    ids = [f"t.py::test_x[a\\b{i}\\n]" for i in range(100)] + [
        f"t.py::test_y[\u00e9\t{i}]" for i in range(100)
    ]
    recs = [{"nodeid": n, "warnings": [f"window {n!r} lasted 0.{i} ms"]} for i, n in enumerate(ids)]
    kinds = aggregate(recs)
    assert [(k["kind"], k["count"]) for k in kinds] == [("window <test> lasted … ms", 200)]
    assert strip_nodeid("w 'a[\\\\]::bench' and a[\\] x", "a[\\]") == "w <test> and <test> x"


def test_html_report_lists_kinds_and_the_trust_note() -> None:
    from pytest_carbon.report.html import render_html

    report = {
        "schema": "pytest-carbon/report/1",
        "complete": False,
        "incomplete_reason": "stopping after 1 failures: 3 of 5 collected tests did not run",
        "tests": [
            {
                "nodeid": f"t.py::t{i}",
                "outcome": o,
                "energy_j": 1.0,
                "duration_s": 1.0,
                "method": "estimated",
                "components": {"cpu": 1.0},
                "gco2e_g": 1e-4,
                "warnings": [f"window 't.py::t{i}' lasted {i}.5 ms"],
            }
            for i, o in enumerate(("passed", "xfailed"))
        ],  # fmt: skip
        "summary": {"tests": 2, "measured": 2, "energy_j": 2.0},
        "warnings": [],
    }
    page = render_html(report)
    assert "window &lt;test&gt; lasted … ms (2 tests: t.py::t0, t.py::t1)" in page
    assert "stopping after 1 failures: 3 of 5 collected tests did not run" in page
    assert "how far to trust the totals" in page
    assert "xfailed" in page


def test_trust_note_names_each_method_present() -> None:
    assert trust_note([]) == ""
    note = trust_note(["estimated", "estimated"])
    assert "factor of 2" in note and "tens of %" in note
    both = trust_note(["measured", "estimated"])
    assert "estimated totals" in both and "measured totals" in both


def test_model_summary_leaves_skipped_items_out_of_pass_rates() -> None:
    from pytest_carbon.prompts.summary import model_summary, render_model_summary

    def rec(outcome: str, correct: bool | None, sample: int) -> dict[str, Any]:
        return {
            "nodeid": f"p.yaml::t[m-{sample}]",
            "outcome": outcome,
            "energy_j": 1.0 if correct else None,
            "prompt": {"task": "t", "model": "m", "sample": sample, "correct": correct},
        }

    rows = model_summary(
        [rec("passed", True, 0), rec("xfailed", False, 1), rec("skipped", None, 2)]
    )
    assert rows[0]["items"] == 2 and rows[0]["correct"] == 1 and rows[0]["skipped"] == 1
    assert rows[0]["pass_at_1"] == pytest.approx(0.5)
    assert any("skipped, not in pass rates: m 1" in line for line in render_model_summary(rows))


def test_stats_of_many_rounds_stay_small() -> None:
    # The per-call figures of a kept window are plain doubles: 8 bytes each.
    clock = [0.0]
    rounds = BenchmarkRounds(ScriptedMeter(clock), "k", clock=lambda: clock[0])  # type: ignore[arg-type]
    for _ in range(50_000):
        _round(rounds, clock, 2e-6, measured=True)
    rounds.finish()
    assert rounds.per_call_energy_j.itemsize == 8
    assert len(rounds.per_call_energy_j) < 50
    assert statistics.median(rounds.per_call_energy_j) == pytest.approx(10.0 * 2e-6 / 4)


# -- the CI checker (tools/check_carbon_suite.py) ----------------------------------------

CHECKER = __import__("pathlib").Path(__file__).parents[1] / "tools" / "check_carbon_suite.py"


def _checker(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.run(sys.executable, str(CHECKER), str(pytester.path), *args)


@pytest.mark.slow
def test_ci_checker_accepts_a_suite_with_every_outcome_and_a_rerun(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_outcomes=OUTCOMES, test_rerun=RERUN)
    result = _checker(pytester, "-p", "no:randomly", "--reruns=1")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*'rerun': 3}; executed: 8; records: 8", "ok: *"])


@pytest.mark.slow
def test_ci_checker_fails_when_carbon_changes_an_outcome(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture(autouse=True)
        def _differs(request):
            if request.config.getoption("carbon"):
                pytest.fail("only with --carbon")
        """
    )
    pytester.makepyfile("def test_a():\n    pass\n")
    result = _checker(pytester, "-p", "no:randomly")
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        ["FAIL: exit status 0 without --carbon, 1 with it", "FAIL: outcomes differ*"]
    )


def test_terminal_lists_a_few_kinds_and_verbose_lists_all() -> None:
    from types import SimpleNamespace

    from pytest_carbon.report.terminal import KINDS_SHOWN, caveat_lines

    records = [
        {"nodeid": f"t.py::t{i}", "method": "estimated", "warnings": [f"caveat {'x' * i}"]}
        for i in range(KINDS_SHOWN + 2)
    ]
    cs = SimpleNamespace(warnings=["run caveat"], incomplete_reason="interrupted")
    quiet = caveat_lines(cs, records, verbose=False)
    loud = caveat_lines(cs, records, verbose=True)
    assert quiet[0] == "warning: run caveat"
    assert sum(line.startswith("warning: caveat") for line in quiet) == KINDS_SHOWN
    assert "warning: 2 more kinds of caveat (-v lists them)" in quiet
    assert sum(line.startswith("warning: caveat") for line in loud) == KINDS_SHOWN + 2
    assert any(line.startswith("how far to trust the totals") for line in quiet)
    assert quiet[-1] == "warning: incomplete run (interrupted): totals cover only what ran"
