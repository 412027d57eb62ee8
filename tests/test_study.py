"""Study statistics from records with known ratios: pass@k, frugality and its interval,
head-to-head with Holm's correction, the leaderboard, and `pytest-carbon study` on shards."""

from __future__ import annotations

import json
import math
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from pytest_carbon.compare.paired import PairedRatio
from pytest_carbon.study.render import leaderboard_lines, markdown_lines, study_lines
from pytest_carbon.study.stats import compute_study, geometric_interval, holm, pass_at_k
from tests.factory import prompt, record, report, unmeasured


def _comparison(ratio: float, half: float = 0.02) -> dict[str, Any]:
    return PairedRatio(ratio, ratio * (1 - half), ratio * (1 + half), 12, 0.96).to_json()


def rec(
    task: str,
    model: str,
    ratio: float | None,
    *,
    strategy: str = "plain",
    sample: int = 0,
    correct: bool = True,
    half: float = 0.02,
    gen_g: float | None = 0.0,
    file: str = "prompts/s.yaml",
    **fields: Any,
) -> dict[str, Any]:
    """A prompt record whose ratio to the reference (and its interval) is known."""
    nodeid = f"{file}::{task}[{model.replace(':', '_')}-{strategy}-{sample}]"
    p = prompt(
        task,
        model,
        correct=correct,
        sample=sample,
        ratio=ratio if correct else None,
        generation_gco2e_g=gen_g,
        strategy=strategy,
        reference_comparison=(
            _comparison(ratio, half)
            if correct and ratio is not None and model != "reference"
            else None
        ),
    )
    if not correct:
        return unmeasured(nodeid, outcome="failed", prompt=p, **fields)
    return record(nodeid, 0.5, per_call_j=[0.001] * 3, prompt=p, **fields)


# -- pass@k ----------------------------------------------------------------------------------


def _closed_form(n: int, c: int, k: int) -> Fraction:
    if n - c < k:
        return Fraction(1)
    return 1 - Fraction(math.comb(n - c, k), math.comb(n, k))


@pytest.mark.parametrize(
    "n,c,k", [(1, 0, 1), (1, 1, 1), (5, 2, 1), (5, 2, 3), (10, 3, 5), (20, 0, 10), (200, 7, 100)]
)
def test_pass_at_k_equals_the_closed_form(n: int, c: int, k: int) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(float(_closed_form(n, c, k)), rel=1e-12, abs=1e-15)


def test_pass_at_k_stays_finite_where_binomials_overflow_floats() -> None:
    # C(2000, 1000) is far beyond a float: the product form never builds it.
    assert pass_at_k(2000, 1, 1000) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 4)


def test_cell_pass_at_k_averages_over_tasks() -> None:
    records = [
        rec("a", "m", 2.0, sample=i, correct=i < 2)
        for i in range(4)  # 2 of 4
    ] + [rec("b", "m", 3.0, sample=i, correct=i == 0) for i in range(4)]  # 1 of 4
    (cell,) = [c for c in compute_study(records).cells if c.model == "m"]
    assert cell.pass_at_1 == pytest.approx((2 / 4 + 1 / 4) / 2)
    expected = (float(_closed_form(4, 2, 4)) + float(_closed_form(4, 1, 4))) / 2
    assert cell.pass_at_k[4] == pytest.approx(expected)
    assert cell.pass_at_k[2] == pytest.approx(
        (float(_closed_form(4, 2, 2)) + float(_closed_form(4, 1, 2))) / 2
    )
    assert cell.attempted == 2 and cell.solved == 2 and cell.correct == 3


# -- frugality ---------------------------------------------------------------------------------


def test_frugality_is_the_geometric_mean_with_a_t_interval_on_log_ratios() -> None:
    ratios = [1.5, 2.0, 3.0, 4.0, 2.5]
    records = [rec(f"t{i}", "m", r) for i, r in enumerate(ratios)]
    records += [rec(f"t{i}", "reference", 1.0) for i in range(len(ratios))]
    records.append(rec("t9", "m", None, correct=False))  # attempted, not solved
    study = compute_study(records)
    cell = next(c for c in study.cells if c.model == "m")
    logs = [math.log(r) for r in ratios]
    mean = sum(logs) / 5
    sd = math.sqrt(sum((x - mean) ** 2 for x in logs) / 4)
    half = 2.7764451051977987 * sd / math.sqrt(5)  # t(0.975, 4)
    f = cell.frugality
    assert f is not None and f.n == 5
    assert f.value == pytest.approx(math.exp(mean))
    assert f.low == pytest.approx(math.exp(mean - half))
    assert f.high == pytest.approx(math.exp(mean + half))
    assert (cell.attempted, cell.solved) == (6, 5)
    assert cell.verdicts() == {
        "costlier": 5,
        "indistinguishable": 0,
        "cheaper": 0,
        "no interval": 0,
    }
    ref = next(c for c in study.cells if c.model == "reference")
    assert ref.frugality is not None and ref.frugality.value == 1.0
    assert ref.frugality.low == ref.frugality.high == 1.0  # every log ratio is 0
    assert study.cells[0] is ref  # ranked: the most frugal first


def test_interval_covers_the_true_ratio_on_constructed_noise() -> None:
    # Log ratios drawn around log(2) with a known spread: the 95% interval covers 2 in
    # about 95% of 400 constructed studies of 8 tasks each (binomial 95% band: 372-388).
    import random

    rng = random.Random(20261203)
    covered = 0
    for _ in range(400):
        iv = geometric_interval([math.log(2.0) + rng.gauss(0.0, 0.3) for _ in range(8)])
        assert iv is not None and iv.low is not None and iv.high is not None
        covered += iv.low <= 2.0 <= iv.high
    assert 366 <= covered <= 394


def test_one_task_has_no_interval_and_verdicts_follow_each_tasks_own_interval() -> None:
    records = [
        rec("a", "m", 1.01, half=0.03),  # interval 0.98-1.04: indistinguishable
        rec("b", "m", 0.5),  # cheaper
        rec("c", "m", 3.0),  # costlier
        rec("d", "solo", 2.0),
    ]
    study = compute_study(records)
    m = next(c for c in study.cells if c.model == "m")
    assert m.verdicts() == {"costlier": 1, "indistinguishable": 1, "cheaper": 1, "no interval": 0}
    solo = next(c for c in study.cells if c.model == "solo")
    assert solo.frugality is not None and solo.frugality.low is None and solo.frugality.n == 1


def test_generation_footprint_per_correct_solution_counts_incorrect_samples() -> None:
    records = [
        rec("a", "m", 2.0, sample=0, gen_g=0.3),
        rec("a", "m", None, sample=1, correct=False, gen_g=0.5),
        rec("b", "m", 2.0, sample=0, gen_g=0.4),
        rec("b", "m", None, sample=1, correct=False, gen_g=0.6),
    ]
    (cell,) = compute_study(records).cells
    _, g = cell.per_correct()
    assert g == pytest.approx((0.3 + 0.5 + 0.4 + 0.6) / 2)


def test_an_unknown_generation_footprint_is_unknown_not_zero() -> None:
    (cell,) = compute_study([rec("a", "m", 2.0, gen_g=None), rec("b", "m", 2.0)]).cells
    assert cell.per_correct()[1] is None


def test_no_median_of_absolute_energies_anywhere() -> None:
    # The example: two tasks right out of three, energies 38.5 mJ and 2.30 J.
    records = [
        rec("light", "m", 3.28),
        rec("heavy", "m", 73.0),
        rec("third", "m", None, correct=False),
    ]
    (cell,) = compute_study(records).cells
    assert cell.frugality is not None
    assert cell.frugality.value == pytest.approx(math.sqrt(3.28 * 73.0))
    text = "\n".join(leaderboard_lines(compute_study(records)))
    assert "15.5×" in text and "2/2/3" in text
    assert " J" not in text.replace("CO2e", "")  # no absolute energy in the leaderboard


# -- head-to-head --------------------------------------------------------------------------------


def test_holm_adjusts_step_down_and_stays_monotone() -> None:
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm([]) == []


def test_head_to_head_on_tasks_both_solved_with_holm_across_pairs() -> None:
    tasks = [f"t{i}" for i in range(10)]
    records = []
    for i, t in enumerate(tasks):
        base = 1.5 + 0.1 * i
        wobble = 1.0 + 0.01 * ((i % 3) - 1)
        records.append(rec(t, "model-b", base))
        records.append(rec(t, "model-a", base * 1.42 * wobble))
        records.append(rec(t, "model-c", base * wobble))  # same as b, give or take 1%
    records.append(rec("extra", "model-a", 2.0))  # only model-a solved it: not compared
    study = compute_study(records)
    by = {(p.a[0], p.b[0]): p for p in study.pairs}
    ab = by[("model-a", "model-b")]
    assert ab.ratio.n == 10
    assert ab.ratio.value == pytest.approx(1.42, rel=0.01)
    assert ab.ratio.low is not None and ab.ratio.low > 1.3
    assert ab.p == pytest.approx(2 / 2**10)  # exact: all ten differences positive
    assert ab.p_holm == pytest.approx(min(1.0, 3 * ab.p))  # three pairs, the smallest p
    assert ab.clear
    assert (
        ab.sentence.startswith("model-a's correct code costs 1.42× (95% CI ")
        and "the energy of model-b's on the 10 tasks both solved" in ab.sentence
    )
    bc = next(p for p in study.pairs if {p.a[0], p.b[0]} == {"model-b", "model-c"})
    assert not bc.clear and bc.sentence.endswith(": no clear effect")
    assert sorted(p.p_holm for p in study.pairs) == pytest.approx(
        sorted(holm([p.p for p in study.pairs]))
    )


def test_strategy_against_strategy_reads_as_a_change() -> None:
    records = []
    for i in range(8):
        r = 2.0 + 0.2 * i
        records.append(rec(f"t{i}", "m", r, strategy="plain"))
        records.append(rec(f"t{i}", "m", r * 0.91 * 1.2 ** ((-1) ** i), strategy="green"))
    study = compute_study(records)
    (pair,) = study.pairs
    assert pair.a == ("m", "green") and pair.b == ("m", "plain")
    assert pair.sentence.startswith("with m, the green prompt changed energy by 0.910× (")
    assert "against the plain prompt on the 8 tasks both solved" in pair.sentence
    assert pair.sentence.endswith(": no clear effect")  # x1.2 or /1.2 around 0.91: 4 up, 4 down
    assert study.strategies == ["plain", "green"]


def test_leaderboard_and_markdown_show_the_same_rows() -> None:
    records = [rec("a", "reference", 1.0), rec("a", "m", 2.0), rec("b", "m", 8.0)]
    records += [rec("b", "reference", 1.0)]
    study = compute_study(records)
    lines = leaderboard_lines(study)
    assert all(len(line) <= 100 for line in lines)
    body = [line for line in lines if line.lstrip()[:1].isdigit()]
    assert body[0].split()[1] == "reference" and "1.00× (ref)" in body[0]
    assert body[1].split()[1] == "m" and "4.00×" in body[1] and "2/2/2" in body[1]
    md = "\n".join(markdown_lines(study))
    assert "| 2 | `m` | 4.00× |" in md


# -- from reports --------------------------------------------------------------------------------


def _suite_records() -> list[dict[str, Any]]:
    out = []
    for i in range(6):
        out.append(rec(f"t{i}", "reference", 1.0))
        out.append(rec(f"t{i}", "variant:naive", 3.0 + i, half=0.1))
        out.append(rec(f"t{i}", "m", 1.1 + 0.05 * i, strategy="plain"))
        out.append(rec(f"t{i}", "m", 1.0 + 0.04 * i, strategy="green", correct=i != 3))
    return out


def _run_study_cli(paths: list[Path], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    from pytest_carbon.cli import main

    code = main(["study", *map(str, paths), "--json", str(paths[0].parent / "study.json")])
    return code, capsys.readouterr().out


def test_study_cli_on_merged_shards_equals_the_unsharded_records(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pytest_carbon.cli import main
    from tests.factory import machine

    records = _suite_records()
    whole = tmp_path / "whole.json"
    whole.write_text(json.dumps(report(records)))
    # Two shards, as two CI machines write them: tasks split between them.
    shards = []
    for n, part in enumerate((("t0", "t2", "t4"), ("t1", "t3", "t5"))):
        recs = [r for r in records if r["prompt"]["task"] in part]
        path = tmp_path / f"shard{n}.json"
        path.write_text(json.dumps(report(recs, machine=machine(f"machine-{n}"))))
        shards.append(path)
    merged = tmp_path / "merged.json"
    assert main(["merge", str(merged), *map(str, shards)]) == 0
    capsys.readouterr()

    code, out_whole = _run_study_cli([whole], capsys)
    assert code == 0
    expected = json.loads((tmp_path / "study.json").read_text())
    code, out_merged = _run_study_cli([merged], capsys)
    assert code == 0
    got = json.loads((tmp_path / "study.json").read_text())
    assert got == expected  # exactly: every figure, every sentence
    assert out_merged == out_whole
    # The shards given directly are merged first: the same study.
    code, out_shards = _run_study_cli(shards, capsys)
    assert code == 0 and json.loads((tmp_path / "study.json").read_text()) == expected
    assert "variant:naive · plain" in out_whole and "head-to-head" in out_whole
    assert "the green prompt changed energy by" in out_whole
    assert "warning" not in out_whole


def test_study_cli_warns_when_a_tasks_cells_come_from_different_machines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.factory import machine

    records = _suite_records()
    a = [r for r in records if r["prompt"]["model"] != "m"]
    b = [r for r in records if r["prompt"]["model"] == "m"]
    paths = []
    for n, part in enumerate((a, b)):
        path = tmp_path / f"s{n}.json"
        path.write_text(json.dumps(report(part, machine=machine(f"box-{n}"))))
        paths.append(path)
    code, out = _run_study_cli(paths, capsys)
    assert code == 0
    assert "warning: task t0: its cells were measured on different machines (box-0, box-1)" in out


def test_study_cli_refuses_a_report_without_prompt_records(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pytest_carbon.cli import main

    path = tmp_path / "plain.json"
    path.write_text(json.dumps(report([record()])))
    assert main(["study", str(path)]) == 1
    assert "no prompt-suite records" in capsys.readouterr().err
    assert main(["study", str(tmp_path / "missing.json")]) == 2


def test_study_lines_include_sentences_and_fit_the_terminal() -> None:
    lines = study_lines(compute_study(_suite_records()))
    assert all(len(line) <= 100 for line in lines)
    assert any(line.startswith("- with m, the green prompt changed energy by") for line in lines)


# -- HTML -------------------------------------------------------------------------------------


def test_html_opens_with_the_study_and_its_charts_name_tasks_and_ratios() -> None:
    import re

    from pytest_carbon.report.html import render_html
    from pytest_carbon.report.html.study import log_ticks, tick_label

    page = render_html(report(_suite_records()))
    study = page.index('id="h-study"')
    assert study < page.index('aria-label="summary"')  # before the cards: the first screen
    assert page.index('id="leaderboard"') < page.index('id="chart-frugality"')
    assert "Most frugal of the " in page and " compared: m · green" in page
    heat = page[page.index('id="chart-heatmap"') :]
    heat = heat[: heat.index("</svg>")]
    assert "<title>t3 · variant:naive · plain: 6.00× (costlier)</title>" in heat
    assert "<title>t3 · m · green: not solved</title>" in heat
    chart = page[page.index('id="chart-frugality"') :]
    chart = chart[: chart.index("</svg>")]
    ticks = re.findall(r'<text class="tick"[^>]*>([^<]*)</text>', chart)
    assert "1×" in ticks and all(re.fullmatch(r"[0-9.,]+×", t) for t in ticks)
    assert [tick_label(v) for v in (0.5, 1, 2, 10, 1000, 0.01)] == [
        "0.5×",
        "1×",
        "2×",
        "10×",
        "1,000×",
        "0.01×",
    ]
    assert log_ticks(0.03, 3000) == [0.1, 1, 10, 100, 1000]  # too many 1-2-5 steps
    assert log_ticks(0.4, 3) == [0.5, 1, 2]
    section = page[study : page.index("</section>", study)]
    visible = re.sub(r"<[^>]*>", " ", section)  # text and hover titles, not colours
    assert not re.search(r"\d[eE][-+]?\d", visible)  # never scientific notation


@pytest.mark.slow  # the fast tier's browser test: test_html's prompt report
def test_the_study_first_screen_in_headless_chromium(tmp_path: Path) -> None:
    from browser import SKIP_REASON, Browser, PageServer, chromium_path

    from pytest_carbon.report.html import render_html

    if chromium_path() is None:
        pytest.skip(SKIP_REASON)
    body = render_html(report(_suite_records())).encode("utf-8")
    with PageServer({"/r.html": body}) as server, Browser(tmp_path, width=1400, height=900) as b:
        page = b.open(server.url("/r.html"))
        board = page.evaluate(
            "document.getElementById('leaderboard').getBoundingClientRect().bottom"
        )
        first = page.evaluate("document.querySelector('ul.headline li').textContent")
        sizes = page.evaluate(
            "['chart-frugality', 'chart-heatmap'].map(function (i) {"
            " var r = document.getElementById(i).getBoundingClientRect();"
            " return [r.width, r.height]; })"
        )
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        errors = page.console_errors()
    assert board < 900, "the leaderboard is not on the first screen"
    assert first.startswith("Most frugal of the ") and " compared: m · green" in first
    assert all(w > 500 and h > 200 for w, h in sizes), sizes
    assert overflow <= 0 and errors == []


def test_skipped_items_are_left_out_and_errors_count_as_attempted() -> None:
    records = [
        rec("a", "variant:fast", 0.5),
        rec("b", "variant:fast", None, outcome="skipped"),  # the task has no such variant
    ]
    err = unmeasured(
        "prompts/s.yaml::c[m-plain-0]",
        outcome="error",
        prompt=prompt("c", "m", correct=None, strategy="plain"),
    )
    study = compute_study([*records, err, rec("a", "m", 2.0)])
    fast = next(c for c in study.cells if c.model == "variant:fast")
    assert (fast.attempted, fast.solved, fast.skipped) == (1, 1, 1)
    m = next(c for c in study.cells if c.model == "m")
    assert (m.attempted, m.solved, m.pass_at_1) == (2, 1, 0.5)
