"""The per-model summary compares answers per workload call, not per measured window."""

from __future__ import annotations

import factory
import pytest

from pytest_carbon.carbon.accounting import Accounting
from pytest_carbon.prompts.summary import model_summary, render_model_summary

#: 1e-4 gCO2e per joule.
GRID = Accounting(360.0, "given")


def rec(model: str, task: str, per_call_j: float, calls: int, correct: bool = True) -> dict:
    return factory.record(
        f"{task}[{model}]",
        per_call_j * calls,
        accounting=GRID,
        per_call_j=[per_call_j] * calls,
        prompt=factory.prompt(task, model, correct=correct, ratio=1.0, generation_method="none"),
    )


def test_carbon_is_per_call_so_repetition_does_not_hide_the_gap() -> None:
    # Both windows last about the same time (min_time_s), so totals are similar, but the
    # naive answer costs 20x more per call.
    rows = model_summary([rec("reference", "t", 0.01, 200), rec("variant:naive", "t", 0.2, 11)])
    by_model = {r["model"]: r for r in rows}
    assert by_model["variant:naive"]["execution_gco2e_g"] == pytest.approx(0.2 * 1e-4)
    assert by_model["reference"]["execution_gco2e_g"] == pytest.approx(0.01 * 1e-4)
    lines = render_model_summary(rows)
    assert "frugality" in lines[0] and "energy/call" not in lines[0]
    assert all(len(line) <= 100 for line in lines)


def test_frugality_is_a_geometric_mean_of_ratios_over_solved_tasks_only() -> None:
    def ratio_rec(task: str, ratio: float, correct: bool = True) -> dict:
        r = rec("m", task, 0.01, 10, correct=correct)
        r["prompt"]["reference_ratio"] = {"energy": ratio} if correct else None
        return r

    # Tasks of very different absolute weights: only their ratios are pooled.
    rows = model_summary([ratio_rec("a", 2.0), ratio_rec("b", 8.0), ratio_rec("c", 1, False)])
    assert rows[0]["pass_at_1"] == pytest.approx(2 / 3)
    assert rows[0]["frugality"] == pytest.approx(4.0)
    assert rows[0]["frugality_tasks"] == 2
    assert "median_energy_j" not in rows[0] and "median_ratio_energy" not in rows[0]


def test_ratios_show_their_interval_and_say_when_they_include_one() -> None:
    from pytest_carbon.compare.paired import PairedRatio

    def compared(task: str, pr: PairedRatio) -> dict:
        r = rec("m", task, 0.02, 10)
        r["prompt"]["reference_ratio"] = {"energy": pr.ratio}
        r["prompt"]["reference_comparison"] = {
            **pr.to_json(),
            "stopped": "precision ±5% reached",
            "precision_target": 0.05,
        }
        return r

    rows = model_summary(
        [
            compared("same", PairedRatio(1.01, 0.98, 1.03, 20, 0.96)),
            compared("slow", PairedRatio(3.2, 3.1, 3.3, 20, 0.96)),
            rec("reference", "same", 0.02, 10),
        ]
    )
    m = {r["model"]: r for r in rows}["m"]
    assert (m["compared"], m["indistinguishable"]) == (2, 1)
    lines = render_model_summary(rows)
    text = "\n".join(lines)
    assert "1/2" in lines[1]  # the ~ref column
    assert "same[m#0]: 1.01× (95% CI 0.980–1.03, 20 pairs): indistinguishable from" in text
    assert "slow[m#0]: 3.20× (95% CI 3.10–3.30, 20 pairs): costlier than the reference" in text
    assert all(len(line) <= 100 for line in lines)


def test_a_program_items_compile_is_shown_apart_with_its_method() -> None:
    r = rec("variant:naive", "cpp_sum", 0.01, 10)
    built = {"ok": True, "duration_s": 0.31, "cpu_s": 0.3, "method": {"cpu": "estimated"}}
    r["prompt"]["program"] = {
        "language": "cpp",
        "compile": {
            "candidate": {**built, "energy_j": 0.253},
            "reference": {**built, "energy_j": 0.27, "ok": False},
        },
    }
    lines = render_model_summary(model_summary([r, rec("variant:naive", "py_task", 0.01, 10)]))
    text = "\n".join(lines)
    assert "compile, measured in its own window and never in a ratio" in text
    line = next(x for x in lines if "cpp_sum[variant:naive#0]" in x)
    assert "candidate 253 mJ in 310 ms" in line and "reference 270 mJ" in line
    assert "(failed)" in line and line.endswith("(estimated)")
    assert not any("py_task" in x for x in lines if "mJ in" in x)  # nothing compiled there
    # The reference's own item compiled only itself: no side to name.
    own = rec("reference", "cpp_sum", 0.01, 10)
    own["prompt"]["program"] = {"compile": {"candidate": {**built, "energy_j": 1.07}}}
    lines = render_model_summary(model_summary([own]))
    assert any(x.endswith("cpp_sum[reference#0]: 1.07 J in 310 ms (estimated)") for x in lines)
