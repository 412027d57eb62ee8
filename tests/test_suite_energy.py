"""The shipped suite separates frugal from wasteful code when measured by the plugin itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

PROMPTS = Path(__file__).resolve().parent.parent / "prompts"


@pytest.mark.slow
def test_naive_variants_cost_at_least_3x_the_reference(pytester: pytest.Pytester) -> None:
    # Two themes keep this end-to-end check short; tests/test_suite.py checks every task's
    # CPU time ratio directly.
    result = pytester.runpytest_subprocess(
        str(PROMPTS / "io"),
        str(PROMPTS / "numeric"),
        "--carbon",
        "--carbon-model=variant:naive",
        "--carbon-model=reference",
        "--carbon-json=out.json",
        "-p",
        "no:randomly",
    )
    tasks = len(list((PROMPTS / "io").glob("*.yaml"))) + len(
        list((PROMPTS / "numeric").glob("*.yaml"))
    )
    result.assert_outcomes(passed=2 * tasks)
    report = json.loads((pytester.path / "out.json").read_text())
    naive = [t for t in report["tests"] if t["prompt"]["model"] == "variant:naive"]
    assert len(naive) == tasks
    for t in naive:
        ratio = t["prompt"]["reference_ratio"]["energy"]
        assert ratio >= 3, (t["prompt"]["task"], ratio)
        assert t["per_call"]["energy_j"]["median"] > 0
    # The per-model summary puts the gap in plain sight.
    # (Rows come in order of first appearance, so each line is matched on its own.)
    result.stdout.fnmatch_lines(["model * items * pass@1 * frugality * 95% CI*"])
    result.stdout.fnmatch_lines([f"variant:naive * {tasks}/{tasks} * 100% *× *"])
    result.stdout.fnmatch_lines([f"reference * {tasks}/{tasks} * 100% * 1.00× *"])
