"""Golden reports: saved JSON reports in, terminal, Markdown and CSV out, byte for byte.

Each ``tests/golden/NAME.json`` is rendered by the code that renders a real run, and
compared with ``NAME.terminal.txt``, ``NAME.md`` and ``NAME.csv`` beside it. A change
of format shows as a diff here, to be read and accepted on purpose:

    PYTEST_CARBON_UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_golden.py -p no:cacheprovider

rewrites the expected files from the current code (then review them with ``git diff
tests/golden``). The JSON inputs are data, never regenerated: a report saved by an
older version must still render.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_carbon.report.csvreport import render_csv
from pytest_carbon.report.markdown import render_markdown
from pytest_carbon.report.terminal import legend_line, table_lines

GOLDEN = Path(__file__).resolve().parent / "golden"
INPUTS = sorted(GOLDEN.glob("*.json"))
UPDATE = os.environ.get("PYTEST_CARBON_UPDATE_GOLDEN") == "1"
#: The terminal width the goldens are rendered at (the summary's own bounds are 80-140).
WIDTH = 100


def render_terminal(report: dict[str, Any]) -> str:
    """The terminal summary's report-only part: the table, its footnote and, for
    prompt suites, the per-model summary (the header needs a live session)."""
    records = report["tests"]
    lines = [*table_lines(records, width=WIDTH, limit=None), legend_line(records, WIDTH)]
    if any(r.get("prompt") for r in records):
        from pytest_carbon.prompts.summary import model_summary, render_model_summary
        from pytest_carbon.study.render import study_lines
        from pytest_carbon.study.stats import compute_study

        lines += ["", *render_model_summary(model_summary(records))]
        lines += ["", *study_lines(compute_study(records))]
    return "\n".join(lines) + "\n"


RENDERERS: dict[str, Callable[[dict[str, Any]], str]] = {
    "terminal.txt": render_terminal,
    "md": render_markdown,
    "csv": render_csv,
}


def test_there_are_golden_inputs() -> None:
    assert [p.stem for p in INPUTS] == ["basic", "measured", "prompts"]


@pytest.mark.parametrize("suffix", sorted(RENDERERS))
@pytest.mark.parametrize("source", INPUTS, ids=lambda p: p.stem)
def test_golden(source: Path, suffix: str) -> None:
    report = json.loads(source.read_text(encoding="utf-8"))
    text = RENDERERS[suffix](report)
    expected_path = source.with_suffix(f".{suffix}")
    if UPDATE:
        with open(expected_path, "w", encoding="utf-8", newline="") as f:
            f.write(text)
    assert expected_path.exists(), (
        f"{expected_path.name} is missing: run with PYTEST_CARBON_UPDATE_GOLDEN=1 to write it"
    )
    with open(expected_path, encoding="utf-8", newline="") as f:
        expected = f.read()
    assert text == expected, (
        f"{source.name} renders differently from {expected_path.name}; if the change is "
        "intended, rewrite it with PYTEST_CARBON_UPDATE_GOLDEN=1 and review the diff"
    )
