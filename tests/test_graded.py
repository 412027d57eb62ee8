"""Graded references: the spec, the percentile's rule and interval, and a run through
the real sandbox that places an answer on the references' scale."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pytest_carbon.compare.graded import dps, energy_percentile
from pytest_carbon.prompts.spec import SpecError, loads

DATA = Path(__file__).parent / "data"


def test_dps_is_the_score_of_the_fastest_reference_not_beaten() -> None:
    scores = [20.0, 60.0, 100.0]
    assert dps(scores, [0.5, 0.9, 1.3]) == 60.0
    assert dps(scores, [1.5, 2.0, 3.0]) == 0.0  # costlier than every reference
    assert dps(scores, [0.1, 0.2, 1.0]) == 100.0  # as cheap as the fastest
    with pytest.raises(ValueError):
        dps(scores, [1.0])


def test_the_interval_comes_from_the_ratios_intervals() -> None:
    comps = [
        {"ratio": 0.5, "low": 0.4, "high": 0.6},
        {"ratio": 0.95, "low": 0.8, "high": 1.1},  # its interval straddles 1
        {"ratio": 2.0, "low": 1.8, "high": 2.2},
    ]
    p = energy_percentile([20.0, 60.0, 100.0], comps)
    assert p is not None
    assert (p["value"], p["low"], p["high"], p["references"]) == (60.0, 20.0, 60.0, 3)
    assert energy_percentile([20.0, 60.0], [comps[0], None]) is None


def test_the_spec_reads_graded_references_and_refuses_bad_scores() -> None:
    text = (DATA / "graded.yaml").read_text()
    task = loads(text, "g.yaml")[0]
    assert [r.score for r in task.references] == [20.0, 60.0, 100.0]
    assert task.reference == task.references[-1].code  # the fastest, by default
    bad = text.replace("score: 60", "score: 10")
    with pytest.raises(SpecError, match=r"g.yaml:18: key 'references\[1\].score'.*above 20"):
        loads(bad, "g.yaml")
    with pytest.raises(SpecError, match="from 0 to 100"):
        loads(text.replace("score: 100", "score: 101"), "g.yaml")


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    (pytester.path / "prompts").mkdir(exist_ok=True)
    return pytester.runpytest_subprocess(
        "prompts/",
        "-p",
        "no:cacheprovider",
        "--carbon",
        "--carbon-idle=off",
        "--carbon-json=out.json",
        "--carbon-max-time=1.5",
        *args,
        timeout=180,
    )


def test_an_answer_gets_an_energy_percentile_with_an_interval(pytester: pytest.Pytester) -> None:
    (pytester.path / "prompts").mkdir()
    shutil.copy(DATA / "graded.yaml", pytester.path / "prompts" / "count_below.yaml")
    result = _run(pytester, "--carbon-model=variant:loop")
    result.assert_outcomes(passed=1)
    rec = json.loads((pytester.path / "out.json").read_text())["tests"][0]
    p = rec["prompt"]
    pct = p["energy_percentile"]
    assert pct["references"] == 3 and "EvalPerf" in pct["method"]
    assert pct["value"] in (0.0, 20.0, 60.0, 100.0)
    assert 0.0 <= pct["low"] <= pct["value"] <= pct["high"] <= 100.0
    graded = p["graded_references"]
    assert [g["score"] for g in graded] == [20.0, 60.0, 100.0]
    for g in graded:
        assert g["low"] <= g["ratio"] <= g["high"] and g["pairs"] >= 1
    # The fastest graded reference is the task's reference: its comparison is reused.
    assert p["reference_comparison"]["ratio"] == graded[-1]["ratio"]
    result.stdout.fnmatch_lines(["*energy percentile*", "*count_below?variant:loop#0?: *"])


@pytest.mark.slow
def test_a_graded_reference_that_fails_the_tests_fails_the_item(
    pytester: pytest.Pytester,
) -> None:
    (pytester.path / "prompts").mkdir()
    text = (DATA / "graded.yaml").read_text().replace("n += 1\n          return n", "n += 2\n          return n")
    (pytester.path / "prompts" / "count_below.yaml").write_text(text)
    result = _run(pytester, "--carbon-model=variant:loop")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*graded reference 0 (score 20)*fails the task's tests*"])
    rec = json.loads((pytester.path / "out.json").read_text())["tests"][0]
    assert rec["prompt"]["correct"] is None and rec["energy_j"] is None
