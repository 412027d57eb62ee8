"""The HTML report's "All records" table at scale: searchable, filterable, grouped by file,
light, and no sideways scrolling at 1400 px (issue 23).

Above ``INLINE_MAX`` records the rows travel as compact JSON and the page's script draws
only what is shown; the Chromium test drives that script on a generated 8,000-record
report.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from browser import SKIP_REASON, Browser, PageServer, chromium_path
from test_frame import record, report

from pytest_carbon.report.html import render_html
from pytest_carbon.report.html.tables import INLINE_MAX

pytest.importorskip("matplotlib", reason="charts need the [html] extra (matplotlib)")

OUTCOMES = ("passed",) * 17 + ("failed", "skipped", "xfailed")
METHODS = ("estimated", "measured", "attributed")


def big_report(n: int = 8000, per_file: int = 20) -> dict[str, Any]:
    """``n`` records in ``n / per_file`` files, with long parametrized ids (jsonschema's
    suite has 7,815 of them), a few failures, skips and unmeasured ones."""
    tests = []
    for i in range(n):
        f, k = divmod(i, per_file)
        nodeid = (
            f"tests/suite/draft2020/test_keyword_{f:04d}.py::TestDraft202012UnevaluatedItems"
            f"::test_unevaluated_items_with_nested_tuple_and_items_{k}[case-{i}-valid]"
        )
        outcome = OUTCOMES[i % len(OUTCOMES)]
        cpu = None if outcome == "skipped" else 0.0004 + (i % 97) * 0.00031
        tests.append(
            record(
                nodeid,
                cpu_j=cpu,
                dram_j=0.0 if cpu is None else cpu / 40,
                duration_s=0.002 + (i % 13) * 0.001,
                method=METHODS[i % 3],
                outcome=outcome,
            )
        )
    return report(tests)


def records_data(page: str) -> dict[str, Any]:
    m = re.search(r'<script type="application/json" id="records-data">(.*?)</script>', page, re.S)
    assert m, "the records' data is missing"
    data: dict[str, Any] = json.loads(m.group(1))
    return data


def tbody(page: str) -> str:
    table = page[page.index('id="records"') :]
    return table[table.index("<tbody>") + 7 : table.index("</tbody>")]


def test_thousands_of_records_travel_as_compact_data_not_rows() -> None:
    rep = big_report()
    page = render_html(rep)
    data = records_data(page)
    # No row is written as HTML: the script draws the ones shown.
    assert tbody(page) == ""
    assert len(data["rows"]) == 8000 and len(data["files"]) == 400
    assert data["grouped"] is True
    # The file is said once per group, not in every row: a row names the test in its file.
    path, count, energy = data["files"][0]
    assert path.startswith("tests/suite/draft2020/test_keyword_") and count == 20
    assert re.fullmatch(r"[\d.]+ [mµ]?J", energy)
    first = data["rows"][0]
    assert data["files"][first[0]][0] + "::" + first[1] in {t["nodeid"] for t in rep["tests"]}
    assert not any(r[1].startswith("tests/") for r in data["rows"])
    # Light: under 400 bytes a record, charts and all (7.4 MB for 7,815 records before).
    assert len(page.encode("utf-8")) < 8000 * 400, len(page)
    # What a person reads has 3 significant digits and no scientific notation.
    texts = [c for r in data["rows"] for c in r[4:] if c is not None]
    assert texts and not [t for t in texts if re.search(r"\de[-+]?\d", t)]
    assert all(len(re.sub(r"\D", "", t.split(" ")[0])) <= 3 for t in texts)
    # Carbon reads CO₂e: no browser breaks "mgCO2 / e"; cells do not wrap (td.num nowrap).
    assert any(t.endswith("gCO₂e") for t in texts) and not any("CO2e" in t for t in texts)
    assert "td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}" in page
    # The filters list what the records hold.
    assert re.findall(r'<select id="rec-o">(.*?)</select>', page)[0].count("<option") == 5


def test_small_reports_keep_html_rows_and_group_only_files_with_several_tests() -> None:
    several = report(
        [record(f"tests/test_{i % 5}.py::test_{i}", cpu_j=0.01 * (i + 1)) for i in range(40)]
    )
    page = render_html(several)
    data = records_data(page)
    assert "rows" not in data and data["grouped"] is True
    assert tbody(page).count('<tr data-f="') == 40
    # The file part of each id is marked, so the grouped view shows it once (in the group).
    assert '<span class="f">tests/<wbr>test_0.py::<wbr></span>test_' in page
    one_each = report([record(f"p/t{i}.yaml::t{i}[reference]", cpu_j=0.1) for i in range(40)])
    assert records_data(render_html(one_each))["grouped"] is False
    assert INLINE_MAX >= 500


def test_a_closing_script_tag_in_a_test_id_stays_data() -> None:
    rep = big_report(INLINE_MAX + 1)
    rep["tests"][0]["nodeid"] = "t.py::test_x[</script><script>alert(1)</script>]"
    page = render_html(rep)
    assert "</script><script>alert(1)" not in page
    names = {r[1] for r in records_data(page)["rows"]}
    assert "test_x[</script><script>alert(1)</script>]" in names


# Slow tier: 5-6 s of Chromium; test_html's prompt report keeps a browser check fast.
@pytest.mark.slow
@pytest.mark.skipif(chromium_path() is None, reason=SKIP_REASON)
def test_eight_thousand_records_in_chromium_at_1400_px(
    tmp_path: Path, pytestconfig: pytest.Config
) -> None:
    page_html = render_html(big_report()).encode("utf-8")
    target = "test_unevaluated_items_with_nested_tuple_and_items_7[case-4567-valid]"
    with (
        PageServer({"/big.html": page_html}) as server,
        Browser(tmp_path, width=1400, height=1000) as browser,
    ):
        page = browser.open(server.url("/big.html"))
        state = (
            "({ready: document.body.getAttribute('data-ready'),"
            " rows: document.querySelectorAll('#records tbody tr:not(.group):not(.more)').length,"
            " groups: document.querySelectorAll('#records tbody tr.group').length,"
            " count: document.getElementById('rec-n').textContent,"
            " wrap: (function () { var w = document.querySelector('.tablewrap');"
            "   return w.scrollWidth - w.clientWidth; })(),"
            " page: document.documentElement.scrollWidth - document.documentElement.clientWidth,"
            " first: (document.querySelector('#records tbody tr:not(.group) th') || {}).textContent"
            "})"
        )
        opened = page.evaluate(state)
        # Open the first file's group.
        page.evaluate("document.querySelector('#records tr.group button').click()")
        group = page.evaluate(state)
        # Search one test id: its group opens with the one row.
        page.evaluate(
            "(function () { var q = document.getElementById('rec-q');"
            f" q.value = {json.dumps(target[:-8])}; q.dispatchEvent(new Event('input')); }})()"
        )
        page.evaluate("new Promise(function (r) { setTimeout(r, 400); })")
        found = page.evaluate(state)
        page.evaluate("document.getElementById('h-records').scrollIntoView()")
        shot = page.screenshot(tmp_path / "records-8000.png", full_page=False)
        # Failed ones only, flat: the first page of them, and a "show more" row.
        page.evaluate(
            "(function () { var q = document.getElementById('rec-q'); q.value = '';"
            " q.dispatchEvent(new Event('input'));"
            " var o = document.getElementById('rec-o'); o.value = 'failed';"
            " o.dispatchEvent(new Event('change'));"
            " var g = document.getElementById('rec-g'); g.checked = false;"
            " g.dispatchEvent(new Event('change')); })()"
        )
        page.evaluate("new Promise(function (r) { setTimeout(r, 400); })")
        failed = page.evaluate(state)
        outcomes = page.evaluate(
            "Array.from(document.querySelectorAll('#records tbody tr:not(.more)'),"
            " function (r) { return r.cells[1].textContent; })"
        )
        more = page.evaluate("document.querySelectorAll('#records tr.more').length")
        errors = page.console_errors()
    assert errors == []
    assert opened["ready"] == "1"
    # Grouped by file and closed: 400 group rows, no test row drawn yet.
    assert opened["groups"] == 400 and opened["rows"] == 0
    assert opened["count"] == "8000 records"
    assert opened["wrap"] <= 0 and opened["page"] <= 0, "the table scrolls sideways at 1400 px"
    assert group["rows"] == 20 and group["wrap"] <= 0
    assert found["groups"] == 1 and found["rows"] == 1 and found["first"].endswith(target)
    assert found["count"] == "1 of 8000 records"
    assert failed["count"] == "400 of 8000 records" and failed["groups"] == 0
    assert failed["rows"] == 200 and more == 1 and set(outcomes) == {"failed"}
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("PYTEST_CARBON_SCREENSHOT"):
        dest = pytestconfig.rootpath / ".carbon" / "html-records-8000.png"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, dest)


def test_a_caption_that_names_a_dashed_line_has_one_drawn() -> None:
    from report_samples import two_model_report

    page = render_html(two_model_report())
    figures = re.findall(r"<figure[^>]*>(.*?)</figure>", page, re.S)
    named = [f for f in figures if "dashed" in f.split("<figcaption>")[-1]]
    assert named, "the frugality chart's caption names its dashed reference line"
    for fig in named:
        svg = fig.split("<figcaption>")[0]
        # Inline SVG draws dashes as stroke-dasharray; matplotlib's as a dash style.
        assert "stroke-dasharray" in svg, fig.split("<figcaption>")[-1]
    chart = page[page.index('id="chart-frugality"') :]
    chart = chart[: chart.index("</svg>")]
    assert 'class="ref-line"' in chart and "reference 1×" in chart
