"""The terminal summary says what it means (issue 23): per-component energy and EDP with
``-v`` at least, one footnote line for the table's labels, and a prompt suite's last line
saying what was measured and what to run next."""

from __future__ import annotations

import re
from typing import Any

import pytest

from pytest_carbon.prompts.summary import NEXT_LLM, NEXT_VARIANTS, closing_line
from pytest_carbon.report.terminal import LABELS_DOC, legend_line, table_lines

SUITE = """
def test_plain():
    sum(range(20000))

def test_repeated(carbon):
    carbon(sum, range(2000))
"""


def header_of(lines: list[str]) -> list[str]:
    header = next(line for line in lines if line.startswith("test "))
    return re.split(r"\s{2,}|\s(?=[a-zA-Z])", header.strip())


def run(pytester: pytest.Pytester, *args: str) -> list[str]:
    pytester.makepyfile(SUITE)
    result = pytester.runpytest(
        "--carbon", "--carbon-idle=off", "--carbon-min-time=0.01", "-p", "no:randomly", *args
    )
    result.assert_outcomes(passed=2)
    return result.outlines


def test_a_fixture_run_shows_components_and_edp_with_v_at_80_columns(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    plain = run(pytester)
    table = plain[plain.index(next(x for x in plain if x.startswith("test "))) :]
    # At 80 columns without -v, a per-call table has no room for the split: it says so.
    assert "cpu" not in table[0].split()
    verbose = run(pytester, "-v")
    head = next(x for x in verbose if x.startswith("test ")).split()
    for column in ("per", "energy", "cpu", "dram", "method", "EDP", "CO2e", "time"):
        assert column in head, (column, head)
    row = next(x for x in verbose if x.startswith("test_repeated"))
    assert re.search(r"\d [µmn]?J·s", row)


def test_plain_tests_show_components_and_edp_without_v(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain():\n    sum(range(20000))\n")
    result = pytester.runpytest("--carbon", "--carbon-idle=off", "-p", "no:randomly")
    result.assert_outcomes(passed=1)
    head = next(x for x in result.outlines if x.startswith("test ")).split()
    assert head == ["test", "energy", "cpu", "dram", "method", "EDP", "CO2e", "time"]


def test_the_footnote_explains_every_label_the_table_shows(pytester: pytest.Pytester) -> None:
    lines = run(pytester)
    notes = [x for x in lines if x.startswith("columns: ")]
    assert len(notes) == 1, "one footnote line"
    note = notes[0]
    total = next(x for x in lines if x.startswith("total ("))
    assert total.startswith("total (2 measured, 1 window total)")
    for label in ("per call =", "energy =", "method =", "CO2e =", "window totals =", "measured"):
        assert label in note, label
    assert note.endswith(f"every label: {LABELS_DOC}")
    # The method and per-call paragraphs it replaces are gone.
    assert not [x for x in lines if x.startswith(("methods: measured =", "per call: median"))]


def rec(model: str, task: str, ratio: float | None = 1.0) -> dict[str, Any]:
    return {
        "nodeid": f"prompts/{task}.yaml::{task}[{model}-plain-0]",
        "energy_j": 0.3,
        "method": "estimated",
        "per_call": {"energy_j": {"median": 0.01}, "calls": 30},
        "prompt": {"task": task, "model": model, "reference_ratio": ratio},
    }


def test_the_footnote_names_the_ratio_column_and_not_the_absent_ones() -> None:
    records = [rec("reference", "a"), rec("variant:naive", "a", 8.0)]
    note = legend_line(records, 100)
    assert "vs ref = " in note and "≈1" in note
    assert "EDP" not in note or "EDP" in table_lines(records, 100)[0]
    assert "not measured" not in note  # every record has a figure


def test_the_main_job_ends_with_what_was_measured_and_the_next_command() -> None:
    refs = [rec("reference", t) for t in ("a", "b", "c")]
    line = closing_line(refs, ["prompts/"])
    assert line is not None
    assert "the reference solutions of 3 tasks" in line and "no LLM" in line
    assert line.endswith(NEXT_VARIANTS + " (a wasteful variant against the reference)")
    both = closing_line([*refs, rec("variant:naive", "a", 9.0)], ["suite/"])
    assert both is not None and "the shipped naive variant" in both
    assert NEXT_LLM.replace("prompts/", "suite/") in both
    llm = closing_line([*refs, rec("gpt-4o-mini", "a", 1.2)], [])
    assert llm is not None and "the code gpt-4o-mini wrote for 3 tasks" in llm
    assert "no LLM" not in llm
    assert closing_line([{"nodeid": "t.py::t", "energy_j": 1.0}]) is None


def test_settings_echo_with_at_most_three_significant_digits() -> None:
    from pytest_carbon.report.format import setting

    assert [setting(v) for v in (1.0, 1.2, 1.126, 475.0, 367.812, 56.0)] == [
        "1",
        "1.2",
        "1.13",
        "475",
        "368",
        "56",
    ]
    assert setting(None) == "—"
