"""End-to-end tests of ``pytest --carbon`` through pytester, with and without xdist."""

from __future__ import annotations

import csv
import importlib.util
import json
import subprocess
import sys

import pytest

from pytest_carbon.carbon.accounting import J_PER_KWH
from pytest_carbon.report.csvreport import CODECARBON_COLUMNS

WORK = """
import time
import pytest

def work(n):
    total = 0
    for i in range(n):
        total += i * i
    return total

def test_light():
    work(300_000)

def test_heavy():
    work(1_200_000)

def test_sleep():
    time.sleep(0.1)

def test_fails():
    work(10_000)
    assert False, "boom"
"""

HAS_XDIST = importlib.util.find_spec("xdist") is not None
XDIST = [
    pytest.param([], id="local"),
    pytest.param(
        ["-n", "2"],
        id="xdist",
        marks=pytest.mark.skipif(
            not HAS_XDIST, reason="pytest-xdist is not installed (tox's noxdist environment)"
        ),
    ),
]
#: The same, the xdist run in the slow tier (two more interpreters; the fast tier keeps
#: one xdist run, test_json_fields_consistent's).
XDIST_SLOW = [
    XDIST[0],
    pytest.param(*XDIST[1].values, id="xdist", marks=[*XDIST[1].marks, pytest.mark.slow]),
]


def run_json(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict]:
    # In-process unless xdist is asked for: no interpreter start per run.
    run = pytester.runpytest_subprocess if "-n" in args else pytester.runpytest
    result = run("--carbon", "--carbon-json=out.json", *args)
    report = json.loads((pytester.path / "out.json").read_text())
    return result, report


@pytest.mark.parametrize("extra", XDIST)
def test_json_fields_consistent(pytester: pytest.Pytester, extra: list[str]) -> None:
    pytester.makepyfile(test_work=WORK)
    result, report = run_json(pytester, "--carbon-pue=1.2", *extra)
    result.assert_outcomes(passed=3, failed=1)
    assert report["schema"] == "pytest-carbon/report/1"
    assert report["complete"] is True
    acc = report["accounting"]
    assert acc["pue"] == 1.2
    assert acc["intensity_g_per_kwh"] > 0
    assert report["machine"]["sensors"], "the sensors used must be listed"
    tests = {t["nodeid"].split("::")[-1]: t for t in report["tests"]}
    assert set(tests) == {"test_light", "test_heavy", "test_sleep", "test_fails"}
    assert tests["test_fails"]["outcome"] == "failed"
    for t in tests.values():
        assert t["method"] in ("measured", "estimated", "attributed")
        assert set(t["component_methods"]) == set(t["components"])
        assert t["energy_j"] == pytest.approx(sum(t["components"].values()), rel=1e-9)
        assert t["edp_js"] == pytest.approx(t["energy_j"] * t["duration_s"], rel=1e-9)
        expected_g = t["energy_j"] / J_PER_KWH * acc["pue"] * acc["intensity_g_per_kwh"]
        assert t["gco2e_g"] == pytest.approx(expected_g, rel=1e-9)
        assert t["power_w"] == pytest.approx(t["energy_j"] / t["duration_s"], rel=1e-9)
        assert 0 <= t["dynamic_energy_j"] <= t["energy_j"] + 1e-12
    if extra:
        assert {t["worker"] for t in tests.values()} <= {"gw0", "gw1"}
        assert report["run"]["workers"] == 2
        assert "less precise" in result.stdout.str()
    summary = report["summary"]
    assert summary["tests"] == 4
    assert summary["energy_j"] == pytest.approx(sum(t["energy_j"] for t in tests.values()))
    # The heavier loop costs more; sleeping costs almost nothing beyond idle.
    assert tests["test_heavy"]["energy_j"] > tests["test_light"]["energy_j"]
    assert tests["test_sleep"]["dynamic_energy_j"] < 0.1 * tests["test_light"]["energy_j"]


def test_budget_failure_shows_value_budget_and_method(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.carbon(max_energy_j=1e-9)
        def test_over():
            sum(range(200_000))

        @pytest.mark.carbon(max_energy_j=1e6, max_power_w=1e6)
        def test_under():
            sum(range(1000))
        """
    )
    # No --carbon: a test with a budget is measured anyway.
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*carbon budget exceeded: energy_j = * J for the call phase > max_energy_j=1e-09 J "
            "(method: estimated)*"
        ]
    )


def test_bad_budget_fails_the_test_with_a_clear_message(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.carbon(max_joules=3)
        def test_x():
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*@pytest.mark.carbon: unknown budget max_joules; use max_energy_j*"]
    )


@pytest.mark.parametrize("extra", XDIST_SLOW)
def test_interrupted_run_still_writes_what_it_measured(
    pytester: pytest.Pytester, extra: list[str]
) -> None:
    pytester.makepyfile(
        test_a="""
        def test_first():
            sum(range(100_000))
        """,
        test_b="""
        def test_interrupt():
            raise KeyboardInterrupt
        """,
    )
    result = pytester.runpytest_subprocess(
        "--carbon", "--carbon-json=out.json", "-p", "no:randomly", *extra
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED
    report = json.loads((pytester.path / "out.json").read_text())
    assert report["complete"] is False
    measured = [t["nodeid"] for t in report["tests"]]
    assert "test_a.py::test_first" in measured


def test_csv_has_codecarbon_columns(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_work=WORK)
    pytester.runpytest("--carbon", "--carbon-csv=out.csv", "--carbon-json=out.json")
    with open(pytester.path / "out.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    report = json.loads((pytester.path / "out.json").read_text())
    assert len(rows) == 4
    header = list(rows[0])
    assert header[: len(CODECARBON_COLUMNS)] == list(CODECARBON_COLUMNS)
    by_id = {t["nodeid"]: t for t in report["tests"]}
    for row in rows:
        rec = by_id[row["nodeid"]]
        # codecarbon units: kWh for energy, kg for emissions, seconds for duration.
        assert float(row["energy_consumed"]) == pytest.approx(rec["energy_j"] / J_PER_KWH)
        assert float(row["emissions"]) == pytest.approx(rec["gco2e_g"] / 1000)
        assert float(row["duration"]) == pytest.approx(rec["duration_s"])
        assert row["method"] == rec["method"]


def test_without_carbon_nothing_is_measured(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_work=WORK)
    result = pytester.runpytest("--carbon-json=out.json")
    result.assert_outcomes(passed=3, failed=1)
    assert "pytest-carbon" not in result.stdout.str()
    report = json.loads((pytester.path / "out.json").read_text())
    assert report["tests"] == []


def test_terminal_summary_states_location_pue_sensors_and_methods(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_work=WORK)
    result = pytester.runpytest("--carbon", "--carbon-country=FRA")
    out = result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*pytest-carbon: energy and carbon*",
            "sensors: estimate (estimated*",
            "location: FRA, * gCO2e/kWh*",
            "PUE: 1 (default)*",
            "test * energy * cpu * dram * method * EDP * CO2e * time",
            "*test_work.py::test_heavy * estimated *",
            "total (4 measured)*",
        ]
    )
    # Sorted by energy: the heavy test comes first.
    assert out.index("test_heavy") < out.index("test_light")
    for line in out.splitlines():
        if line.startswith("test_work.py::"):
            assert len(line) <= 100


def test_rounds_repeat_the_call_phase(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        CALLS = []

        def test_counted():
            CALLS.append(1)
            sum(range(50_000))

        def test_calls_seen():
            assert len(CALLS) == 3
        """
    )
    result, report = run_json(pytester, "--carbon-rounds=3", "-p", "no:randomly")
    result.assert_outcomes(passed=2)
    rec = next(t for t in report["tests"] if t["nodeid"].endswith("test_counted"))
    assert rec["rounds"] == 3
    assert len(rec["samples"]["energy_j"]) == 3
    assert sum(rec["samples"]["energy_j"]) == pytest.approx(rec["energy_j"])


@pytest.mark.slow
def test_ini_and_environment_precedence(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        """
        [pytest]
        carbon = true
        carbon_country = POL
        carbon_json = out.json
        """
    )
    pytester.makepyfile("def test_x():\n    sum(range(1000))\n")
    pytester.runpytest_subprocess()
    report = json.loads((pytester.path / "out.json").read_text())
    assert report["accounting"]["country"] == "POL"
    assert len(report["tests"]) == 1
    # Environment beats ini; the command line beats both.
    import os

    env = dict(os.environ, PYTEST_CARBON_COUNTRY="FRA")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"],
        cwd=pytester.path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads((pytester.path / "out.json").read_text())["accounting"]["country"] == "FRA"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--carbon-country=DEU"],
        cwd=pytester.path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert json.loads((pytester.path / "out.json").read_text())["accounting"]["country"] == "DEU"


def test_bad_option_value_is_a_clear_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--carbon", "--carbon-pue=0.5")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*PUE is total facility / IT energy, >= 1.0*"])


def test_benchmark_rounds_are_measured(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # When this suite itself runs under xdist, the child pytest inherits the worker's
    # variables and pytest-benchmark would disable itself.
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)
    pytester.makepyfile(
        test_bench="""
        def test_bench(benchmark):
            benchmark.pedantic(sum, args=(range(20_000),), rounds=7, iterations=3)
        """
    )
    result, report = run_json(pytester, "--benchmark-json=bench.json")
    result.assert_outcomes(passed=1)
    rec = report["tests"][0]
    info = rec["extra_info"]["benchmark"]
    # Windows span whole rounds (at least a few ms each): some or all 7 rounds are kept,
    # never more, and never the warm-up (pedantic has none here).
    assert 1 <= info["energy_rounds"] <= 7
    assert rec["per_call"]["calls"] == info["energy_rounds"] * 3
    assert info["energy_j_per_call"] == pytest.approx(info["energy_j_per_round"] / 3)
    bench = json.loads((pytester.path / "bench.json").read_text())
    extra = bench["benchmarks"][0]["extra_info"]
    assert extra["carbon_energy_j_per_round"] == pytest.approx(info["energy_j_per_round"])
    assert extra["carbon_energy_method"] == rec["method"]


def test_plugin_import_is_light() -> None:
    """Importing the plugin (what pytest does at every start) pulls in nothing heavy."""
    code = (
        "import sys, pytest_carbon.plugin\n"
        "heavy = ['pandas', 'openai', 'pynvml', 'matplotlib', 'codecarbon', 'numpy', 'yaml']\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_pytest_startup_without_carbon_imports_nothing_heavy(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import sys

        def test_modules():
            heavy = ["pandas", "openai", "pynvml", "matplotlib", "codecarbon", "yaml"]
            assert [m for m in heavy if m in sys.modules] == []
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:benchmark", "-p", "no:xdist")
    result.assert_outcomes(passed=1)


def test_junit_xml_gets_energy_properties(pytester: pytest.Pytester) -> None:
    import xml.etree.ElementTree as ET

    pytester.makepyfile("def test_x():\n    sum(range(100_000))\n")
    _, report = run_json(pytester, "--junitxml=junit.xml")
    props = {
        p.get("name"): p.get("value")
        for p in ET.parse(pytester.path / "junit.xml").iter("property")
    }
    rec = report["tests"][0]
    assert float(props["carbon_energy_j"]) == pytest.approx(rec["energy_j"], rel=1e-3)
    assert props["carbon_method"] == rec["method"]
    assert float(props["carbon_gco2e_g"]) == pytest.approx(rec["gco2e_g"], rel=1e-3)


def test_intensity_hook_charges_each_test_at_its_own_time(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        CALLS = []

        def pytest_carbon_intensity(config, when):
            CALLS.append(when)
            # A grid that gets dirtier with every question: 100, 200, 300 ... g/kWh.
            return {"intensity_g_per_kwh": 100.0 * len(CALLS), "source": "test grid"}
        """
    )
    pytester.makepyfile(
        """
        def test_a():
            sum(range(100_000))

        def test_b():
            sum(range(100_000))
        """
    )
    _, report = run_json(pytester, "-p", "no:randomly", "--carbon-csv=out.csv")
    assert report["accounting"]["intensity_source"] == "hook: test grid"
    intensities = sorted(t["intensity_g_per_kwh"] for t in report["tests"])
    assert len(set(intensities)) == 2, intensities
    assert all(i > 100.0 for i in intensities)  # the session itself asked first
    for t in report["tests"]:
        expected = t["energy_j"] / J_PER_KWH * t["intensity_g_per_kwh"]
        assert t["gco2e_g"] == pytest.approx(expected, rel=1e-9)
        assert t["intensity_source"] == "hook: test grid"
    with open(pytester.path / "out.csv", newline="") as f:
        rows = {r["nodeid"]: r for r in csv.DictReader(f)}
    for t in report["tests"]:
        assert float(rows[t["nodeid"]]["intensity_g_per_kwh"]) == t["intensity_g_per_kwh"]


def test_unknown_country_is_one_usage_error_with_suggestions(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest("--carbon", "--carbon-country=FRN")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown country code 'FRN'*Did you mean*FRA (France)*"])


@pytest.mark.slow
def test_html_and_markdown_reports_from_a_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_work=WORK)
    result = pytester.runpytest_subprocess(
        "--carbon", "--carbon-html=out/report.html", "--carbon-markdown=out/summary.md"
    )
    result.stdout.fnmatch_lines(["HTML report: out/report.html", "Markdown report: out/summary.md"])
    html = (pytester.path / "out" / "report.html").read_text()
    assert "<svg" in html and "test_heavy" in html and "estimated" in html
    markdown = (pytester.path / "out" / "summary.md").read_text()
    assert "test_heavy" in markdown and "estimated" in markdown


def test_ed2p_is_defined_beside_edp(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x():\n    sum(range(100_000))\n")
    _, report = run_json(pytester)
    t = report["tests"][0]
    assert t["ed2p_js2"] == pytest.approx(t["energy_j"] * t["duration_s"] ** 2, rel=1e-9)


def test_help_renders_with_the_plugin_installed(pytester: pytest.Pytester) -> None:
    """`pytest --help` must work in any project where the plugin is installed: argparse
    %-formats help strings, so a bare % in one of ours crashed it for everyone."""
    result = pytester.runpytest("--help")
    assert result.ret == 0, result.stderr.str()
    out = result.stdout.str()
    assert "--carbon-compare-fail" in out
    assert "energy:10%" in out
    assert "Traceback" not in result.stderr.str()
