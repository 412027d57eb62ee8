"""Reports the report tests share: a two-model prompt suite whose windows are all ~2 J
while one call costs from 0.5 mJ to 400 mJ (issue 13.5), with paired intervals."""

from __future__ import annotations

from typing import Any

from test_frame import record, report

#: task -> (reference's energy per call, naive variant's multiple, interval half-width)
TASKS = {
    "merge_intervals": (0.0005, 800.0, 0.04),
    "max_sum": (0.002, 1.03, 0.06),  # indistinguishable from the reference
    "window_sum": (0.010, 12.0, 0.05),
}


def _pr(ratio: float, half: float) -> dict[str, Any]:
    return {
        "ratio": ratio,
        "low": ratio * (1 - half),
        "high": ratio * (1 + half),
        "pairs": 12,
        "coverage": 0.961,
        "precision": half,
        "contains_one": ratio * (1 - half) <= 1 <= ratio * (1 + half),
        "method": "median of paired ratios; exact binomial order-statistic 95% interval",
        "stopped": "precision ±5% reached",
        "precision_target": 0.05,
    }


def two_model_report() -> dict[str, Any]:
    tests = []
    for task, (ref_j, naive_x, half) in TASKS.items():
        for model, per_call_j, ratio in (
            ("reference", ref_j, 1.0),
            ("variant:naive", ref_j * naive_x, naive_x),
        ):
            window_j = 2.0 + per_call_j  # ~min_time_s x power, whatever the call costs
            calls = max(int(window_j / per_call_j), 1)
            prompt: dict[str, Any] = {
                "task": task,
                "model": model,
                "sample": 0,
                "correct": True,
                "failed_case": None,
                "generation": {"gco2e_g": 0.0, "method": "estimated"},
                "reference_ratio": ratio,
            }
            if model != "reference":
                prompt["reference_comparison"] = _pr(ratio, half)
            node = f"prompts/algorithms/basic.yaml::{task}[{model.replace(':', '_')}-0]"
            rec = record(node, cpu_j=window_j, duration_s=0.2, prompt=prompt)
            rec["per_call"] = {
                "energy_j": {"median": per_call_j, "mean": per_call_j, "min": per_call_j},
                "calls": calls,
            }
            rec["rounds"] = 12
            tests.append(rec)
    return report(tests)
