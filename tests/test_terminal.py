"""The terminal summary: ranking, names shortened in the middle, labels, the last line."""

from __future__ import annotations

import json
from typing import Any

import cpu_burn
import pytest

from pytest_carbon.report.rows import outcome, shorten
from pytest_carbon.report.terminal import table_lines


def rec(
    nodeid: str,
    energy_j: float | None,
    *,
    per_call_j: float | None = None,
    rounds: int = 1,
    ratio: Any = None,
    comparison: dict[str, Any] | None = None,
) -> dict[str, Any]:
    r: dict[str, Any] = {
        "nodeid": nodeid,
        "outcome": "passed",
        "energy_j": energy_j,
        "components": {} if energy_j is None else {"cpu": energy_j},
        "method": None if energy_j is None else "estimated",
        "gco2e_g": None if energy_j is None else energy_j * 1e-4,
        "duration_s": None if energy_j is None else 0.1,
        "edp_js": None if energy_j is None else energy_j * 0.1,
        "rounds": rounds,
        "per_call": None,
        "phases": {},
        "prompt": None,
    }
    if per_call_j is not None:
        r["per_call"] = {"energy_j": {"median": per_call_j}, "calls": 100}
    if ratio is not None or comparison is not None:
        r["prompt"] = {"task": "t", "model": "m", "reference_ratio": ratio}
        if comparison is not None:
            r["prompt"]["reference_comparison"] = comparison
    return r


def body(lines: list[str]) -> list[str]:
    rows = lines[2 : lines.index(lines[1], 2)]  # up to the rule above the total
    return [line for line in rows if not line.startswith("...")]


def test_prompt_rows_are_ranked_by_energy_per_call_not_by_window() -> None:
    # Every window is ~2 J (min_time_s x power); one call ranges from 0.5 mJ to 400 mJ.
    records = [
        rec("p.yaml::sum[reference-0]", 2.10, per_call_j=0.0005, ratio=1.0),
        rec("p.yaml::sum[variant_naive-0]", 1.90, per_call_j=0.400, ratio=800.0),
        rec("p.yaml::sum[gpt-0]", 2.30, per_call_j=0.020, ratio=40.0),
        rec("p.yaml::sum[broken-0]", None),
    ]
    lines = table_lines(records, width=120)
    header = lines[0].split()
    assert header[:4] == ["test", "per", "call", "vs"]  # per call leads, then the ratio
    names = [line.split()[0] for line in body(lines)]
    assert names == [
        "p.yaml::sum[variant_naive-0]",
        "p.yaml::sum[gpt-0]",
        "p.yaml::sum[reference-0]",
        "p.yaml::sum[broken-0]",
    ]
    first = body(lines)[0]
    assert "400 mJ" in first and "800×" in first and "1.90 J" in first
    # The label, never cut, on a line of its own where the name column is narrower.
    assert lines[-2] == "total (3 measured, 1 not measured, 3 window totals):"
    assert all(len(line) <= 120 for line in lines)


def test_ratio_shows_its_interval_when_the_record_has_one() -> None:
    pr = {"ratio": 1.02, "low": 0.97, "high": 1.08, "pairs": 12, "coverage": 0.96}
    records = [rec("p.yaml::sum[m-0]", 2.0, per_call_j=0.01, ratio=1.02, comparison=pr)]
    row = body(table_lines(records, width=120))[0]
    assert "1.02× [0.970–1.08] ≈1" in row
    # An old report (a dict, no interval) still shows its ratio, plainly.
    old = [rec("p.yaml::sum[m-0]", 2.0, per_call_j=0.01, ratio={"energy": 3.5})]
    assert "3.50×" in body(table_lines(old, width=120))[0]


def test_totals_over_rounds_say_so_and_the_label_is_never_cut() -> None:
    records = [rec(f"tests/test_{i}.py::test_{i}", 1.0 + i, rounds=5) for i in range(3)]
    records.append(rec("tests/test_x.py::test_x", None))
    lines = table_lines(records, width=80)
    assert "energy (5 rounds)" in lines[0]
    assert lines[-2] == "total (3 measured, 1 not measured, 5 rounds):"
    assert "6.00 J" in lines[-1]
    # Where the name column has room, the label heads the total row.
    wide = table_lines(records, width=140)
    assert wide[-1].startswith("total (3 measured, 1 not measured, 5 rounds) ")


@pytest.mark.parametrize("width", [24, 30, 40])
def test_names_are_shortened_in_the_middle_keeping_task_and_model(width: int) -> None:
    a = "prompts/suites/algorithms/basic.yaml::max_sum[variant_naive-0]"
    b = "prompts/suites/algorithms/basic.yaml::window_sum[variant_naive-0]"
    sa, sb = shorten(a, width), shorten(b, width)
    assert len(sa) <= width and len(sb) <= width
    assert sa != sb  # the issue: "…ax_sum[variant_naive-0]" vs "…ow_sum[…]"
    ta, tb = sa.split("::")[-1], sb.split("::")[-1]
    assert ta.startswith("max") and tb.startswith("win")  # the task's start
    assert "[var" in sb and sb.endswith("-0]")  # the model's start and the sample
    assert shorten("t.py::test_a", width) == "t.py::test_a"  # what fits is untouched


def test_shortening_drops_directories_first() -> None:
    assert shorten("tests/unit/deep/test_x.py::test_y", 20) == "test_x.py::test_y"
    cut = shorten("tests/unit/deep/test_x.py::test_yyyyyyyyyyyyyyyyyy_end", 20)
    assert cut == "test_yyyyy…yyyyy_end"
    assert len(shorten("a" * 50, 11)) == 11 and shorten("a" * 50, 11)[5] == "…"


def test_outcome_words_are_table_driven() -> None:
    assert outcome("xfailed")[0].startswith("xfailed")
    assert outcome("xpassed")[1] == "warn"
    assert outcome("error")[1] == "bad"
    assert outcome("rerun") == ("rerun", "other")  # a word no table knows is shown as is
    assert outcome(None)[0] == "—"


# Work sized in CPU seconds (cpu_burn), not loop counts: a faster machine must not turn the
# heavy test's rounds into windows too short to measure (compare/judge.py MIN_WINDOW_S).
SUITE = (
    cpu_burn.SOURCE
    + """

def test_light():
    burn(0.002)

def test_heavy():
    burn(0.04)
"""
)


def _shrink(report: dict[str, Any], nodeid: str, factor: float) -> None:
    for r in report["tests"]:
        if r["nodeid"] != nodeid:
            continue
        for key in ("energy_j", "dynamic_energy_j", "gco2e_g", "edp_js"):
            if r.get(key) is not None:
                r[key] *= factor
        r["samples"]["energy_j"] = [v * factor for v in r["samples"]["energy_j"]]


@pytest.mark.slow
def test_last_line_names_the_energy_regression(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_load=SUITE)
    base = pytester.path / "base.json"
    common = ("--carbon", "--carbon-rounds=5", "-p", "no:cacheprovider")
    first = pytester.runpytest_subprocess(*common, f"--carbon-json={base}")
    assert first.ret == 0
    report = json.loads(base.read_text())
    # A regression needs the noise between runs sized by stored runs of this machine
    # (compare/judge.py): 22 copies of the real run stand for them.
    from pytest_carbon.compare.storage import Storage

    store = pytester.path / "store"
    for _ in range(22):
        Storage(store).save(json.loads(base.read_text()))
    common = (*common, f"--carbon-storage={store}")
    # The baseline's heavy test cost a hundredth: this run is a clear energy regression.
    _shrink(report, "test_load.py::test_heavy", 0.01)
    base.write_text(json.dumps(report))
    result = pytester.runpytest_subprocess(
        *common, f"--carbon-compare={base}", "--carbon-compare-fail=energy:10%"
    )
    assert result.ret == 1
    last = result.stdout.lines[-1]
    assert "2 passed, 1 energy regression in" in last, last
    # Without the failing threshold nothing fails and the line names no regression.
    shown = pytester.runpytest_subprocess(*common, f"--carbon-compare={base}")
    assert shown.ret == 0 and "regression in" not in shown.stdout.lines[-1]


def test_embodied_water_and_phases_lines() -> None:
    from pytest_carbon.report.terminal import extra_total_lines
    from pytest_carbon.report.totals import compute

    records = [rec("t.py::a", 2.0), rec("t.py::b", 1.0), rec("t.py::c", None)]
    records[0]["embodied_gco2e_g"] = 0.003
    records[0]["water_l"] = 1.5e-6
    records[0]["phases"] = {
        "load": {"energy_j": 0.25, "gco2e_g": 2e-5, "duration_s": 0.01, "method": "estimated"},
        "call": {"energy_j": 2.0, "gco2e_g": 2e-4, "duration_s": 0.1, "method": "estimated"},
    }
    t = compute(records)
    assert (t.tests, t.measured, t.energy_j) == (3, 2, 3.0)
    lines = extra_total_lines(t)
    assert lines[0] == "embodied: 3.00 mgCO2e (10.0x the operational figure)"
    assert lines[1] == "water: 1.50 µL"
    assert lines[2] == "phases (carbon.measure): load 250 mJ, 20.0 µgCO2e (1 test)"
    # Nothing measured: no false zero, and a method of "unknown", not "estimated".
    none = compute([rec("t.py::x", None)])
    assert none.energy_j is None and extra_total_lines(none) == []
    odd = rec("t.py::y", 1.0)
    odd["method"] = None
    assert compute([odd]).methods == {"unknown": 1}
