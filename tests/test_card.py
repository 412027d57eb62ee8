"""Tests of ``pytest-carbon card``: the minimum environmental card in Markdown."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_frame import cli_report, prompt_report, record, report

from pytest_carbon.report.card import main, render_card
from pytest_carbon.report.format import carbon as fmt_carbon
from pytest_carbon.report.format import energy as fmt_energy


def table_rows(card: str) -> dict[str, str]:
    """Question -> answer of the card's main table."""
    rows = {}
    for line in card.splitlines():
        if line.startswith("| ") and not line.startswith("| Question"):
            cells = [c.strip() for c in line.strip("|").split(" | ")]
            if len(cells) == 2:
                rows[cells[0]] = cells[1]
    return rows


def test_card_answers_the_minimum_questions_with_methods() -> None:
    rep = cli_report()
    card = render_card(rep)
    rows = table_rows(card)
    assert "AMD EPYC 7B13 (8 logical CPUs)" in rows["Hardware"]
    energy = rows["What was the energy consumption (CPU/GPU/memory)?"]
    assert fmt_energy(rep["summary"]["energy_j"]) in energy
    # Mixed methods: each is named with its count; components name theirs.
    assert "measured for 1 tests" in energy and "attributed for 1 tests" in energy
    assert "estimated for 2 tests" in energy
    assert "cpu " in energy and "(attributed, estimated, measured)" in energy
    assert rows["At which geo location were the computations performed?"] == "DEU"
    mix = rows["What was the energy mix at the geo location?"]
    assert mix.startswith("475 gCO2e/kWh") and "global_energy_mix" in mix
    carbon = rows["How much CO2e was emitted?"]
    assert carbon.startswith(fmt_carbon(rep["summary"]["gco2e_g"]))
    assert "PUE 1.2" in carbon
    assert "rapl (measured: cpu, dram)" in rows["How were the numbers obtained?"]
    assert "Hershcovich" in card and "2205.05071" in card


def test_default_location_is_said_plainly() -> None:
    rep = cli_report()
    rep["accounting"].update(country=None, intensity_is_default=True)
    rows = table_rows(render_card(rep))
    assert "world-average" in rows["At which geo location were the computations performed?"]
    assert "a default" in rows["What was the energy mix at the geo location?"]


def test_prompt_suite_card_has_a_row_per_model() -> None:
    card = render_card(prompt_report())
    model_lines = [line for line in card.splitlines() if line.startswith("| gpt-4o-mini")]
    assert len(model_lines) == 1
    assert "100% (4/4)" in model_lines[0] and "(estimated)" in model_lines[0]
    qwen = next(line for line in card.splitlines() if line.startswith("| qwen2.5-coder"))
    assert "50% (1/2)" in qwen


def test_unmeasured_records_are_left_out_not_zero() -> None:
    rep = report([record("t.py::a", cpu_j=2.0), record("t.py::b", cpu_j=None)])
    rows = table_rows(render_card(rep))
    assert "in 1 tests" in rows["How much time did the measured work take?"]
    assert "mean of 1" in rows["What is the average CO2e of one test (sample)?"]
    empty = table_rows(render_card(report([])))
    assert empty["How much CO2e was emitted?"] == "not measured"


def test_pipes_in_strings_cannot_break_the_table() -> None:
    rep = cli_report()
    rep["machine"]["cpu_model"] = "Weird | CPU\nname"
    card = render_card(rep)
    line = next(x for x in card.splitlines() if x.startswith("| Hardware"))
    assert "Weird \\| CPU name" in line
    assert line.count(" | ") == 1  # only the separator between question and answer


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "r.json"
    src.write_text(json.dumps(cli_report()), encoding="utf-8")
    out = tmp_path / "card.md"
    assert main([str(src), "-o", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == render_card(cli_report())
    proc = subprocess.run(
        [sys.executable, "-m", "pytest_carbon.cli", "card", str(src)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and proc.stdout == render_card(cli_report())
    bad = tmp_path / "bad.json"
    bad.write_text('{"hello": 1}', encoding="utf-8")
    assert main([str(bad)]) == 2
    assert "not a pytest-carbon report" in capsys.readouterr().err
