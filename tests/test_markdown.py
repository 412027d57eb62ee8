"""The Markdown summary: totals, method, intensity, and the largest changes or top tests."""

from __future__ import annotations

import re
from typing import Any

import factory
import pytest

from pytest_carbon.compare.baseline import compare, parse_fail_spec
from pytest_carbon.report.markdown import TOP_ROWS, render_markdown

G_PER_J = 475.0 / 3.6e6


def rec(nodeid: str, samples_j: list[float] | None) -> dict[str, Any]:
    """A record with one energy per round at 20 W (idle 2 W); None: measured nothing."""
    if samples_j is None:
        return factory.unmeasured(nodeid, outcome="passed")
    return factory.record(nodeid, samples_j, power_w=20.0, idle_w=2.0)


def rep(records: list[dict[str, Any]], *, default_intensity: bool = True) -> dict[str, Any]:
    measured = [r for r in records if r["energy_j"] is not None]
    return {
        "schema": "pytest-carbon/report/1",
        "complete": True,
        "machine": {
            "machine_id": "Linux-EPYC-2cpu-1234abcd",
            "cpu_model": "AMD EPYC 7B13",
            "cpu_count": 2,
            "sensors": [{"name": "estimate", "method": "estimated", "available": True}],
        },
        "accounting": {
            "intensity_g_per_kwh": 475.0,
            "intensity_source": "world average",
            "intensity_is_default": default_intensity,
            "pue": 1.0,
            "country": None if default_intensity else "FRA",
            "region": None,
        },
        "run": {"git": {"commit": "0123456789abcdef", "branch": "main", "dirty": False}},
        "tests": records,
        "summary": {
            "energy_j": sum(r["energy_j"] for r in measured),
            "gco2e_g": sum(r["gco2e_g"] for r in measured),
            "duration_s": sum(r["duration_s"] for r in measured),
            "tests": len(records),
            "measured": len(measured),
            "methods": {"estimated": len(measured)},
        },
        "warnings": ["estimated: no readable RAPL counter"],
    }


def table_rows(text: str, header_start: str) -> list[str]:
    lines = text.splitlines()
    i = next(k for k, line in enumerate(lines) if line.startswith(header_start))
    rows = []
    for line in lines[i + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows


def test_comparison_renders_a_table_of_the_largest_changes() -> None:
    # Five rounds a side: three tests share the run's 5% (1.7% each), which 3 rounds
    # (smallest p 1/20) could never reach.
    base = rep(
        [
            rec("t.py::test_a", [1.0, 1.01, 0.99, 1.02, 0.98]),
            rec("t.py::test_b", [2.0, 2.02, 1.98, 2.01, 1.99]),
            rec("t.py::test_c[x|y]", [0.5, 0.51, 0.49, 0.5, 0.5]),
            rec("t.py::gone", [0.1] * 5),
        ]
    )
    cur = rep(
        [
            rec("t.py::test_a", [1.3, 1.31, 1.29, 1.3, 1.32]),
            rec("t.py::test_b", [2.0, 2.01, 1.99, 2.02, 1.98]),
            rec("t.py::test_c[x|y]", [1.5, 1.52, 1.49, 1.51, 1.5]),
            rec("t.py::added", [0.2] * 5),
        ]
    )
    # 22 stored runs like the baseline: the noise between runs is known (and small); 22
    # runs give one gated metric's family enough single-run excursions (1 / 5% + 2).
    comp = compare(base, cur, [parse_fail_spec("energy:10%")], [base] * 22)
    text = render_markdown(cur, comp)
    assert text.startswith("## pytest-carbon: energy and carbon")
    assert "### Changes against the baseline" in text
    assert "❌ 2 regression(s) beyond the threshold" in text
    rows = table_rows(text, "| Test | Energy: baseline")
    # Largest change first (test_c tripled), then test_a (+30%), then the unchanged one.
    assert [r.split(" | ")[0] for r in rows] == [
        "| `t.py::test_c[x\\|y]`",
        "| `t.py::test_a`",
        "| `t.py::test_b`",
    ]
    assert "+200%" in rows[0] and "❌ energy > 10%" in rows[0]
    assert "+30.0%" in rows[1]
    assert "within noise" in rows[2]  # stored runs: "no change" can be claimed
    # Every row has the header's number of cells: the pipe in the id did not split it.
    assert all(r.replace("\\|", "").count("|") == 7 for r in rows)
    assert "`t.py::added` (new)" in text and "`t.py::gone` (missing)" in text
    assert "Fail on: `energy:10%`" in text


def test_without_comparison_lists_top_tests_by_energy() -> None:
    records = [rec(f"t.py::test_{i}", [0.1 * (i + 1)]) for i in range(TOP_ROWS + 5)]
    records.append(rec("t.py::wrong_code", None))
    text = render_markdown(rep(records))
    rows = table_rows(text, "| Test | Energy |")
    assert len(rows) == TOP_ROWS
    assert rows[0].startswith(f"| `t.py::test_{TOP_ROWS + 4}`")
    heaviest = sorted(records[:-1], key=lambda r: r["energy_j"], reverse=True)[:TOP_ROWS]
    assert [r.split("`")[1] for r in rows] == [r["nodeid"] for r in heaviest]
    assert "wrong_code" not in text.split("### Top tests")[1].split("\n\n")[1]
    assert "1 test(s) measured nothing" in text
    assert f"| Method | estimated ({TOP_ROWS + 5}) |" in text
    assert "default world average" in text
    assert "`0123456789`" in text and "on main" in text
    assert "<details><summary>Warnings</summary>" in text


def test_chosen_grid_is_shown_without_the_default_note() -> None:
    text = render_markdown(rep([rec("t.py::a", [1.0])], default_intensity=False))
    assert "475 gCO2e/kWh (FRA)" in text
    assert "default world average" not in text


def test_prompt_suite_leads_with_energy_per_call_and_has_the_model_summary() -> None:
    from report_samples import two_model_report

    text = render_markdown(two_model_report())
    assert "### Top tests by energy per call" in text
    rows = table_rows(text, "| Test | Energy per call | vs reference | Energy (window)")
    assert [r.split("`")[1].split("::")[1] for r in rows[:2]] == [
        "merge_intervals[variant_naive-0]",
        "window_sum[variant_naive-0]",
    ]
    assert "| 400 mJ | 800× \\[768–832\\] | 2.40 J |" in rows[0]  # brackets: text, not a link
    assert "≈1" in next(r for r in rows if "max_sum[variant_naive-0]" in r)
    models = table_rows(text, "| Model | Frugality")
    assert models[0].startswith("| `reference` | 1.00× (1.00–1.00) | 100% (3/3)")
    # 800x, 1x and 12.4x: their geometric mean, never a median of absolute energies.
    assert models[1].startswith("| `variant:naive` | 21.5× (0.00502–91,700) | 100% (3/3)")
    study = table_rows(text, "| # | cell | frugality")
    assert study[1].startswith("| 2 | `variant:naive` | 21.5× | 0.00502–91,700 | 3/3/3 | 100%")
    assert not re.search(r"\d[eE][-+]\d", text)  # no scientific notation


def test_embodied_water_phases_and_rounds_are_beside_the_totals() -> None:
    records = [rec("t.py::a", [1.0, 1.1, 0.9]), rec("t.py::b", [2.0, 2.0, 2.2])]
    for r in records:
        r["embodied_gco2e_g"] = 0.5
        r["water_l"] = 0.002
    records[0]["phases"] = {"load": {"energy_j": 0.4, "gco2e_g": 5e-5, "method": "estimated"}}
    text = render_markdown(rep(records))
    assert "| Embodied | 1.00 gCO2e (manufacturing share" in text
    assert "| Water | 4.00 mL |" in text
    assert "| Phases (carbon.measure) | `load` 400 mJ, 50.0 µgCO2e |" in text
    assert "(3 rounds)" in text.splitlines()[2]
    assert "| Test | Energy (3 rounds) | Duration |" in text


# -- strings from outside stay text ------------------------------------------------------
#: What a candidate or a suite file can put into a report's strings.
INJECTIONS = [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    "</details><h1>owned</h1>",
    "[click](http://evil.invalid/a)",
    "![pixel](http://evil.invalid/p.png)",
    "[ref]: http://evil.invalid/r",
    "`` ` ``` code ````",
    "a|b||c",
    "*em* _em_ **strong** __init__ ~~strike~~",
    "see http://evil.invalid/x and www.evil.invalid and me@evil.invalid",
    "$x^2$ and $$y$$",
    "@someone fixes #123",
    "&lt;b&gt; &amp; &#60;",
    "back\\slash\\",
    "line1\nline2\r\nline3\u2028line4",
    "lone \udc80 surrogate",
    "\x1b[2J ansi \u202e bidi",
]


def _hostile_report(s: str) -> dict[str, Any]:
    r = factory.record(f"prompts/t.yaml::t[{s}]", [0.2], power_w=20.0, idle_w=2.0)
    r["prompt"] = factory.prompt("t", s, ratio=1.5)
    r["method"] = s
    bad = factory.unmeasured(
        f"prompts/t.yaml::u[{s}]", prompt=factory.prompt("u", s, correct=False), reason=s
    )
    report = rep([r, bad])
    report["complete"] = False
    report["incomplete_reason"] = s
    report["warnings"] = [s]
    report["machine"]["cpu_model"] = s
    report["machine"]["machine_id"] = s
    report["accounting"]["intensity_source"] = s
    report["run"]["git"]["branch"] = s
    return report


def _visible_text(page: str) -> str:
    from html.parser import HTMLParser

    class Text(HTMLParser):
        def __init__(self) -> None:
            super().__init__(convert_charrefs=True)
            self.parts: list[str] = []

        def handle_data(self, data: str) -> None:
            self.parts.append(data)

    p = Text()
    p.feed(page)
    return "".join(p.parts)


@pytest.mark.parametrize("s", INJECTIONS)
def test_strings_from_the_report_stay_text_under_githubs_renderer(s: str) -> None:
    cmarkgfm = pytest.importorskip("cmarkgfm")
    from cmarkgfm.cmark import Options

    from pytest_carbon.report.mdtext import flat

    md = render_markdown(_hostile_report(s))
    md.encode("utf-8")  # no lone surrogate left
    # GitHub's own renderer, raw HTML let through: only escaping can keep the data text.
    page = cmarkgfm.github_flavored_markdown_to_html(md, options=Options.CMARK_OPT_UNSAFE)
    # A bare e-mail address still becomes a mailto link in cmark-gfm, whatever is
    # escaped: its text is its target, nothing is hidden. No other link, no image.
    mailto = re.findall(r'<a href="mailto:([^"]*)">([^<]*)</a>', page)
    assert all(target == text for target, text in mailto), mailto
    page_without_mailto = re.sub(r'<a href="mailto:[^"]*">([^<]*)</a>', r"\1", page)
    tags = set(re.findall(r"<([a-z0-9]+)", page_without_mailto))
    assert tags <= {
        "h2",
        "h3",
        "p",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
        "code",
        "strong",
        "em",
        "sub",
        "details",
        "summary",
        "ul",
        "li",
        "blockquote",
    }, tags
    assert "<img" not in page and "<del" not in page and "<script" not in page
    # Every table row kept its cells: no pipe from the data split one.
    for table in re.findall(r"<table>.*?</table>", page, re.S):
        widths = {
            len(re.findall(r"<t[hd]", row)) for row in re.findall(r"<tr>.*?</tr>", table, re.S)
        }
        assert len(widths) == 1, table
    # And the text reads exactly as the data (one line, controls and surrogates escaped),
    # in prose, in table cells and in code spans alike.
    shown = _visible_text(page)
    expected = flat(s)
    assert shown.count(expected) >= 6, (expected, shown)


def test_a_code_span_is_never_closed_by_the_data() -> None:
    from pytest_carbon.report.mdtext import code

    assert code("plain") == "`plain`"
    assert code("a`b") == "``a`b``"
    assert code("x ``` y") == "````x ``` y````"
    assert code("`edge`") == "`` `edge` ``"
    assert code("p|q") == "`p\\|q`" and code("p|q", table=False) == "`p|q`"
