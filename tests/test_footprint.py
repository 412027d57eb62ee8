"""Generation footprint (EcoLogits estimate, model sizes) and the per-model summary."""

from __future__ import annotations

import math

import factory
import pytest

from pytest_carbon.prompts import footprint as fp
from pytest_carbon.prompts.summary import model_summary, pass_at_k, render_model_summary


def test_ecologits_energy_follows_the_published_fit_by_hand() -> None:
    # Llama 3.1 8B, 100 output tokens: 1 GPU (1.2 * 8.03 * 4 / 8 = 4.8 GB < 80 GB).
    est = fp.ecologits_estimate(100, 8.03, 8.03)
    gpu_wh = 100 * (8.91e-5 * 8.03 + 1.43e-3)
    latency_s = 100 * (8.02e-4 * 8.03 + 2.23e-2)
    server_wh = latency_s / 3600 * 1000 * 1 / 8
    assert est["gpus"] == 1
    assert est["latency_s"] == pytest.approx(latency_s)
    assert est["energy_j"] == pytest.approx(1.2 * (server_wh + gpu_wh) * 3600)
    embodied_g = latency_s / (5 * 365.25 * 86400) * (3000 / 8 + 143) * 1000
    assert est["embodied_gco2e_g"] == pytest.approx(embodied_g)


def test_big_models_need_more_gpus_and_request_latency_bounds_the_time() -> None:
    est = fp.ecologits_estimate(10, 405.0, 405.0)
    assert est["gpus"] == math.ceil(1.2 * 405 * 4 / 8 / 80)
    assert fp.ecologits_estimate(1000, 8.0, 8.0, request_latency_s=0.5)["latency_s"] == 0.5


def test_energy_grows_with_tokens_and_active_parameters() -> None:
    small = fp.ecologits_estimate(100, 3.0, 3.0)["energy_j"]
    assert fp.ecologits_estimate(200, 3.0, 3.0)["energy_j"] == pytest.approx(2 * small)
    assert fp.ecologits_estimate(100, 70.0, 70.0)["energy_j"] > small
    # A mixture of experts costs by its active parameters, not its total.
    moe = fp.ecologits_estimate(100, 12.9, 46.7)["energy_j"]
    dense = fp.ecologits_estimate(100, 46.7, 46.7)["energy_j"]
    assert moe < dense


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("meta-llama/Llama-3.1-8B-Instruct", (8.03, 8.03)),
        ("llama3.1:8b", (8.03, 8.03)),
        ("mistralai/Mixtral-8x7B-Instruct-v0.1", None),
        ("mixtral-8x7b", (12.9, 46.7)),
        ("qwen2.5-coder:7b-instruct-q4_K_M", (7.62, 7.62)),
        ("gpt-4o", None),
    ],
)
def test_model_names_are_matched_loosely_but_never_guessed(
    name: str, expected: tuple[float, float] | None
) -> None:
    assert fp.lookup_params(name) == expected


def test_user_tables_extend_and_override_the_builtin_one() -> None:
    table, problems = fp.parse_params_lines(
        ["my-model=7", "llama-3.1-8b = 9", "moe=3/30", "# comment", "", "broken", "bad=x"]
    )
    assert table == {"my-model": (7.0, 7.0), "llama-3.1-8b": (9.0, 9.0), "moe": (3.0, 30.0)}
    assert len(problems) == 2 and "NAME=ACTIVE_BILLIONS" in problems[0]
    assert fp.lookup_params("My-Model", table) == (7.0, 7.0)
    assert fp.lookup_params("llama3.1:8b", table) == (9.0, 9.0)
    assert fp.lookup_params("moe", table, {"moe": (4.0, 40.0)}) == (4.0, 40.0)


def test_remote_footprint_estimated_or_unknown() -> None:
    known = fp.remote_footprint("llama-3.1-8b", 40, 100, 475.0, params=(8.03, 8.03))
    assert known["method"] == "estimated"
    assert known["energy_j"] == pytest.approx(fp.ecologits_estimate(100, 8.03, 8.03)["energy_j"])
    assert known["gco2e_g"] == pytest.approx(known["energy_j"] / 3.6e6 * 475.0)
    assert known["input_tokens"] == 40 and known["embodied_gco2e_g"] > 0
    unknown = fp.remote_footprint("mystery", 40, 100, 475.0, params=None)
    assert unknown["method"] == "unknown"
    assert unknown["energy_j"] is None and unknown["gco2e_g"] is None
    assert "carbon_model_params" in unknown["reason"]
    no_usage = fp.remote_footprint("llama-3.1-8b", None, None, 475.0, params=(8.0, 8.0))
    assert no_usage["energy_j"] is None and "usage" in no_usage["reason"]


def test_local_endpoints_and_builtins() -> None:
    assert fp.is_local_endpoint("http://127.0.0.1:8000/v1")
    assert fp.is_local_endpoint("http://localhost:11434/v1")
    assert fp.is_local_endpoint("http://[::1]:8080/v1")
    assert not fp.is_local_endpoint("https://api.openai.com/v1")
    assert not fp.is_local_endpoint(None)
    assert fp.none_footprint() == {
        "input_tokens": 0,
        "output_tokens": 0,
        "energy_j": 0.0,
        "gco2e_g": 0.0,
        "method": "none",
    }
    measured = fp.measured_footprint(1, 2, 3.0, "estimated", 0.1)
    assert "warning" in measured
    assert "warning" not in fp.measured_footprint(1, 2, 3.0, "measured", 0.1)


# -- summary -------------------------------------------------------------------------------


def rec(
    model: str,
    task: str,
    correct: bool | None,
    energy: float | None = None,
    ratio: float | None = None,
    gen_g: float | None = 0.0,
    gco2e: float | None = None,
    method: str | None = "estimated",
) -> dict[str, object]:
    pr = factory.prompt(task, model, correct=correct, ratio=ratio, generation_gco2e_g=gen_g)
    if energy is None:
        return factory.unmeasured(f"{task}[{model}]", prompt=pr, gco2e_g=gco2e)
    return factory.record(
        f"{task}[{model}]", energy, method=method or "estimated", prompt=pr, gco2e_g=gco2e
    )


def test_pass_at_k_is_the_unbiased_estimator() -> None:
    assert pass_at_k(5, 0, 1) == 0.0
    assert pass_at_k(5, 5, 3) == 1.0
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25)
    # 1 - C(2,2)/C(4,2) = 1 - 1/6
    assert pass_at_k(4, 2, 2) == pytest.approx(5 / 6)
    with pytest.raises(ValueError):
        pass_at_k(2, 1, 3)


def test_model_summary_counts_nulls_in_rates_but_not_in_ratios() -> None:
    records = [
        rec("m", "a", True, energy=2.0, ratio=1.5, gen_g=0.1, gco2e=0.01),
        rec("m", "a", False, gen_g=0.2),
        rec("m", "b", True, energy=4.0, ratio=0.5, gen_g=0.3, gco2e=0.03),
        rec("m", "b", True, energy=6.0, ratio=1.0, gen_g=None, gco2e=0.05),
        rec("reference", "a", True, energy=1.0, ratio=1.0, gco2e=0.02),
        {"nodeid": "tests/test_x.py::test_plain", "energy_j": 9.0, "prompt": None},
    ]
    m, ref = model_summary(records)
    assert (m["model"], m["items"], m["tasks"], m["correct"]) == ("m", 4, 2, 3)
    assert m["pass_at_1"] == pytest.approx((0.5 + 1.0) / 2)
    assert m["pass_at_k"] == {2: pytest.approx((pass_at_k(2, 1, 2) + 1.0) / 2)}
    # Task a: 1.5; task b: the geometric mean of its two correct samples (0.5 and 1.0).
    assert m["frugality"] == pytest.approx((1.5 * (0.5 * 1.0) ** 0.5) ** 0.5)
    assert m["frugality_tasks"] == 2
    assert m["generation_gco2e_g"] == pytest.approx(0.6)
    assert m["gco2e_per_correct_g"] == pytest.approx((0.09 + 0.6) / 3)
    assert "generation:estimated" in m["methods"] and "estimated" in m["methods"]
    assert ref["pass_at_k"] == {} and ref["correct"] == 1


def test_a_model_with_nothing_correct_has_no_per_correct_figure() -> None:
    (row,) = model_summary([rec("m", "a", False), rec("m", "a", None)])
    assert row["correct"] == 0 and row["pass_at_1"] == 0.0
    assert row["gco2e_per_correct_g"] is None and row["frugality"] is None


def test_render_fits_100_columns_even_with_long_names() -> None:
    rows = model_summary(
        [
            rec(
                "a-very-long-organisation-name/an-even-longer-model-name-" + "x" * 60,
                "t",
                True,
                energy=0.003,
                ratio=1.2,
                gen_g=1e-5,
                gco2e=1e-7,
            ),
            rec("m", "t", False),
        ]
    )
    lines = render_model_summary(rows)
    assert lines[0].startswith("model")
    assert all(len(line) <= 100 for line in lines)
    assert "1.20×" in lines[1]
    assert render_model_summary([]) == []
