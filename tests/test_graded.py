"""Graded references: the spec, the percentile's rule and interval, and a run through
the real sandbox that places an answer on the references' scale."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from pytest_carbon.compare.graded import dps, energy_percentile
from pytest_carbon.prompts.spec import SpecError, loads
from pytest_carbon.study.render import markdown_lines, study_lines
from pytest_carbon.study.stats import compute_study
from tests.factory import prompt, record

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
    assert p["intervals_reached"] is True
    # The fastest reference's own code: ratio 1.003, interval 0.967-1.29 (measured): it
    # matches that reference (100); the interval says it may not (low 20: the 60-score
    # comparison straddles 1 too).
    same = [*comps[:2], {"ratio": 1.003, "low": 0.967, "high": 1.291}]
    s = energy_percentile([20.0, 60.0, 100.0], same)
    assert s is not None and (s["value"], s["low"], s["high"]) == (100.0, 20.0, 100.0)
    assert energy_percentile([20.0, 60.0], [comps[0], None]) is None
    # Too few pairs for a 95% interval against the fastest: it bounds nothing.
    few = [*comps[:2], {"ratio": 2.0, "low": 1.8, "high": 2.2, "coverage": 0.5}]
    q = energy_percentile([20.0, 60.0, 100.0], few)
    assert q is not None and (q["value"], q["low"], q["high"]) == (60.0, 20.0, 100.0)
    assert q["intervals_reached"] is False


def test_the_spec_reads_graded_references_and_refuses_bad_scores() -> None:
    text = (DATA / "graded.yaml").read_text()
    task = loads(text, "g.yaml")[0]
    assert [r.score for r in task.references] == [20.0, 60.0, 100.0]
    assert task.reference == task.references[-1].code  # the fastest, by default
    bad = text.replace("score: 60", "score: 10")
    with pytest.raises(SpecError, match=r"g.yaml:20: key 'references\[1\].score'.*above 20"):
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


@pytest.mark.slow
def test_an_answer_gets_an_energy_percentile_with_an_interval(pytester: pytest.Pytester) -> None:
    (pytester.path / "prompts").mkdir()
    shutil.copy(DATA / "graded.yaml", pytester.path / "prompts" / "pairs_below.yaml")
    result = _run(pytester, "--carbon-model=variant:twopointer")
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
    result.stdout.fnmatch_lines(
        ["*energy percentile*", "*pairs_below?varia*#0?: *graded references*"]
    )


@pytest.mark.slow
def test_a_graded_reference_that_fails_the_tests_fails_the_item(
    pytester: pytest.Pytester,
) -> None:
    (pytester.path / "prompts").mkdir()
    text = (DATA / "graded.yaml").read_text()
    broken = text.replace("n += 1\n          return n", "n += 2\n          return n", 1)
    assert broken != text
    (pytester.path / "prompts" / "pairs_below.yaml").write_text(broken)
    result = _run(pytester, "--carbon-model=reference", "--carbon-model=variant:twopointer")
    result.assert_outcomes(failed=2)  # the reference's item vets them too
    result.stdout.fnmatch_lines(
        [
            "*graded reference failed*cannot be placed on the task's graded references*",
            "*graded reference 0 (score 20) of task 'pairs_below' fails the task's tests*",
        ]
    )
    for rec in json.loads((pytester.path / "out.json").read_text())["tests"]:
        assert rec["prompt"]["correct"] is None and rec["energy_j"] is None


def _graded_record(task: str, model: str, value: float, sample: int = 0) -> dict[str, Any]:
    pct = {"value": value, "low": 0.0, "high": 100.0, "references": 3, "method": "m"}
    return record(
        f"prompts/{task}.yaml::{task}[{model}-plain-{sample}]",
        prompt=prompt(task, model, sample=sample, ratio=1.0, energy_percentile=pct),
    )


def test_the_study_reports_the_median_percentile_per_model_with_an_interval() -> None:
    recs = [_graded_record(f"t{i}", "m", v) for i, v in enumerate([0, 20, 20, 60, 60, 60, 100])]
    recs += [_graded_record("t0", "n", 100), _graded_record("t0", "n", 60, sample=1)]
    recs.append(record("prompts/u.yaml::u[m-plain-0]", prompt=prompt("u", "m", ratio=1.0)))
    study = compute_study(recs)
    cells = {c.model: c for c in study.cells}
    m = cells["m"].percentile
    assert m is not None and (m.value, m.n) == (60, 7)  # the task without grades left out
    assert m.coverage >= 0.95 and m.low == 0 and m.high == 100  # 7 tasks: (x1, x7)
    n = cells["n"].percentile
    assert n is not None and (n.value, n.n) == (80, 1)  # one task: its samples' median
    assert cells["m"].to_json()["energy_percentile"]["value"] == 60
    text = "\n".join(study_lines(study))
    assert "energy percentile on graded references" in text
    assert "m: 60 (95% CI 0–100, 7 tasks)" in text
    assert "n: 80 (range 80–80, covering 0%: too few tasks, 1 task)" in text
    assert any("energy percentile" in line for line in markdown_lines(study))


def test_a_task_needs_a_reference_or_graded_ones_and_defaults_cannot_grade() -> None:
    text = (DATA / "graded.yaml").read_text()
    start, end = text.index("references:"), text.index("tests:")
    with pytest.raises(SpecError, match="key 'reference': missing required key"):
        loads(text[:start] + text[end:], "g.yaml")
    with pytest.raises(SpecError, match=r"key 'references\[0\].speed': unknown key"):
        loads(text.replace("  - score: 20\n", "  - score: 20\n    speed: 1\n"), "g.yaml")
    multi = "tasks:\n  - id: a\n" + "".join("    " + line + "\n" for line in text.splitlines())
    multi = "defaults:\n  references: []\n" + multi
    with pytest.raises(SpecError, match="key 'defaults.references': unknown key"):
        loads(multi, "g.yaml")


def test_the_html_page_labels_the_percentile_per_item_and_per_cell() -> None:
    from pytest_carbon.report.html.page import render_html
    from tests.factory import report

    recs = [_graded_record(f"t{i}", "m", v) for i, v in enumerate([20, 60, 100])]
    page = render_html(report(recs))
    assert "energy percentile on graded references" in page  # the study section
    assert "m: 60 (range 20–100, covering 75%: too few tasks, 3 tasks)" in page
    assert "energy percentile 60 (95% CI 0–100, 3 graded references)" in page  # item title
