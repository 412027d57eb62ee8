"""Tests of the HTML report: structure, escaping, no network, accessibility, and a real browser.

The browser test drives Debian's headless Chromium over the DevTools pipe (see
tests/browser.py for why that way): the page is served by a real HTTP server on 127.0.0.1,
and the test checks that the charts render, the sorting script ran without a console
error, the page requested nothing but itself, and saves a full-page screenshot
(copied to ``.carbon/html-screenshot.png`` when ``PYTEST_CARBON_SCREENSHOT=1``).
"""

from __future__ import annotations

import copy
import html as htmlmod
import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from browser import SKIP_REASON, Browser, PageServer, chromium_path
from report_samples import two_model_report
from test_frame import cli_report, prompt_report, record, report

from pytest_carbon.report.html import PALETTE, TEXT_PAIRS, render_html, write_html

pytest.importorskip("matplotlib", reason="charts need the [html] extra (matplotlib)")

HOSTILE = "tests/test_x.py::test_y[<script>alert(1)</script>]"
REMOTE = re.compile(r"""(?:src|href|action|xlink:href)\s*=\s*["']?\s*(?:https?:)?//""", re.I)


class Structure(HTMLParser):
    """Collects tags, attributes and script bodies of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)

    def find(self, tag: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag]


def parse(page: str) -> Structure:
    s = Structure()
    s.feed(page)
    return s


def test_prompt_report_has_every_chart_and_table() -> None:
    page = render_html(prompt_report())
    doc = parse(page)
    svg_ids = {a.get("id") for a in doc.find("svg")}
    assert {
        "chart-energy-per-test",
        "chart-frugality",
        "chart-heatmap",
        "chart-generation-execution",
        "chart-reference-ratio",
    } <= svg_ids
    # Every chart is labelled for screen readers, and has a <title>.
    for svg in doc.find("svg"):
        assert svg.get("role") == "img" and svg.get("aria-labelledby")
        assert "width" not in svg and "height" not in svg, "charts must scale to the page"
    assert page.count("<title id=") == len(doc.find("svg"))
    # Axes are labelled with units.
    for label in ("energy per test (J)", "pass@1", "carbon (gCO2e)", "(ratio)"):
        assert label in page
    table_ids = {a.get("id") for a in doc.find("table")}
    assert {"records", "models"} <= table_ids
    # The per-model numbers are the terminal's (prompts.summary.model_summary).
    from pytest_carbon.prompts.summary import model_summary

    rows = model_summary(prompt_report()["tests"])
    gpt = next(r for r in rows if r["model"] == "gpt-4o-mini")
    models_table = page[page.index('id="models"') :]
    # Frugality: a geometric mean of per-task ratios, never a median of absolute energies.
    assert f'data-v="{gpt["frugality"]!r}"' in models_table
    assert "median_energy_j" not in gpt


def test_the_unmeasured_record_is_a_dash_titled_not_measured() -> None:
    page = render_html(prompt_report())
    records = page[page.index('id="records"') :]
    rows = re.split(r"<tr[ >]", records[: records.index("</tbody>")])
    row = next(r for r in rows if "qwen2.5-coder-0]" in r and "sum_primes" in r)
    # energy, time, EDP, carbon and the components: each a dash titled "not measured".
    assert row.count('title="not measured">—</td>') >= 5
    assert "0.0" not in re.findall(r'data-v="([^"]*)"', row)
    # Sums skip it: the totals card shows the sum of the measured records only.
    measured = [t["energy_j"] for t in prompt_report()["tests"] if t["energy_j"] is not None]
    from pytest_carbon.report.format import energy

    assert energy(sum(measured)).replace(" ", "&nbsp;") in page


def test_methods_are_shown_and_distinguished() -> None:
    page = render_html(cli_report())
    for method in ("measured", "attributed", "estimated"):
        assert f'<span class="badge {method}">{method}</span>' in page
        # The per-test chart labels each bar with its method, in text.
        assert f"· {method}</text>" in page
    svg = page[page.index('id="chart-energy-per-test"') :]
    svg = svg[: svg.index("</svg>")]
    # Hatch patterns exist for the two indirect methods, none for measured (solid).
    assert svg.count("<pattern") >= 2


def test_hostile_strings_are_escaped() -> None:
    rep = cli_report()
    rep["tests"][0]["nodeid"] = HOSTILE
    rep["machine"]["hostname"] = '"><img src=x onerror=alert(1)>'
    rep["warnings"] = ["<b>bold</b> & co"]
    model_rec = prompt_report()["tests"][1]
    model_rec["prompt"]["model"] = "<svg onload=alert(2)>"
    rep["tests"].append(model_rec)
    page = render_html(rep)
    assert "<script>alert(1)</script>" not in page
    assert htmlmod.escape(HOSTILE) in page
    assert "<img src=x" not in page and "<svg onload" not in page
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; co" in page
    doc = parse(page)
    # One script only, ours (the records' JSON is data, never run); no element carries an
    # event handler.
    assert [a.get("type") for a in doc.find("script")] == ["application/json", None]
    assert not [a for _, a in doc.tags if any(k.startswith("on") for k in a)]


def test_no_remote_references() -> None:
    rep = prompt_report()
    # A source text that is a URL stays text, never a link.
    rep["accounting"]["intensity_source"] = "IEA (https://www.iea.org/reports/x)"
    page = render_html(rep)
    assert not REMOTE.findall(page)
    assert "@import" not in page and "url(http" not in page
    doc = parse(page)
    assert not [a for t, a in doc.tags if t in ("img", "iframe", "object", "embed", "audio")]
    links = doc.find("link")
    assert all((a.get("href") or "").startswith("data:") for a in links)
    csp = [a for a in doc.find("meta") if a.get("http-equiv") == "Content-Security-Policy"]
    assert csp and "default-src 'none'" in (csp[0].get("content") or "")


def test_accessibility_basics() -> None:
    page = render_html(prompt_report())
    doc = parse(page)
    assert doc.find("html")[0].get("lang") == "en"
    assert doc.find("title")
    assert doc.find("meta") and any(a.get("name") == "viewport" for a in doc.find("meta"))
    ths = doc.find("th")
    assert ths and all(a.get("scope") in ("col", "row") for a in ths)
    assert "max-width:1320px" in page


def _luminance(hex_color: str) -> float:
    rgb = [int(hex_color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


@pytest.mark.parametrize(("fg", "bg"), TEXT_PAIRS)
def test_text_contrast_meets_wcag_aa(fg: str, bg: str) -> None:
    a, b = sorted((_luminance(PALETTE[fg]), _luminance(PALETTE[bg])), reverse=True)
    ratio = (a + 0.05) / (b + 0.05)
    assert ratio >= 4.5, f"{fg} on {bg}: {ratio:.2f}:1"


@pytest.mark.parametrize(
    "rep",
    [
        pytest.param(report([]), id="empty"),
        pytest.param(report([record("t.py::test_none", cpu_j=None)]), id="only-unmeasured"),
        pytest.param({"schema": "pytest-carbon/report/1", "tests": []}, id="bare"),
        pytest.param(
            report([record("t.py::t", cpu_j=1.0, components={}, trace=[[0, {"cpu": "x"}], 5])]),
            id="odd-fields",
        ),
    ],
)
def test_robust_to_empty_and_odd_reports(rep: dict[str, Any]) -> None:
    page = render_html(rep)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert 'id="h-records"' in page


def test_empty_report_says_nothing_was_measured() -> None:
    page = render_html(report([]))
    assert "No test was measured." in page
    assert "<svg" not in page


def test_comparison_renders_the_changes() -> None:
    from pytest_carbon.compare.baseline import compare

    base = cli_report()
    current = copy.deepcopy(base)
    big = current["tests"][0]
    big["samples"]["energy_j"] = [big["energy_j"] * 2]
    big["energy_j"] *= 2
    comparison = compare(base, current)
    page = render_html(current, comparison.to_json())
    assert 'id="changes"' in page and "Against the baseline" in page
    section = page[page.index('id="h-compare"') :]
    assert htmlmod.escape(big["nodeid"]) in section
    # Also accepts the Comparison object itself, with the same result.
    assert render_html(current, comparison) == page
    # Any other shape of rows still shows as a table.
    other = render_html(current, {"baseline": "main", "rows": [{"nodeid": "a", "delta": 1.5}]})
    assert 'id="changes"' in other and 'data-v="1.5"' in other


@pytest.mark.slow
def test_output_is_deterministic_and_written_atomically(tmp_path: Path) -> None:
    rep = prompt_report()
    assert render_html(rep) == render_html(rep)
    out = write_html(rep, tmp_path / "sub" / "report.html")
    assert out.read_text(encoding="utf-8") == render_html(rep)
    assert [p.name for p in out.parent.iterdir()] == ["report.html"], "no temporary file left"


def test_report_command_writes_html(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The command's main() in this process (the same code `pytest-carbon report` runs, no
    # interpreter start); test_merge starts the real command.
    from pytest_carbon.cli import main

    src = tmp_path / "r.json"
    src.write_text(json.dumps(prompt_report()), encoding="utf-8")
    out = tmp_path / "r.html"
    assert main(["report", str(src), "--html", str(out)]) == 0, capsys.readouterr().err
    assert "<svg" in out.read_text(encoding="utf-8")
    capsys.readouterr()
    assert main(["report", str(tmp_path / "no.json"), "--html", str(out)]) == 2
    assert "no such file" in capsys.readouterr().err


# ------------------------------------------------------------------------ real browser


@pytest.mark.slow
@pytest.mark.skipif(chromium_path() is None, reason=SKIP_REASON)
def test_browser_detects_errors_and_requests(tmp_path: Path) -> None:
    """The harness itself: a page that errs and fetches must be caught, or the real test
    below would pass vacuously."""
    bad = (
        b"<!DOCTYPE html><html lang=en><head><title>bad</title></head><body>"
        b'<img src="https://cdn.example.com/x.png" alt="">'
        b"<script>console.error('canary');"
        b"fetch('http://api.example.org/y').catch(function () {});</script></body></html>"
    )
    with PageServer({"/bad.html": bad}) as server, Browser(tmp_path) as browser:
        page = browser.open(server.url("/bad.html"))
        page.evaluate("new Promise(function (r) { setTimeout(r, 300); })")
        errors = page.console_errors()
        requested = page.requests()
    assert any("canary" in e for e in errors), errors
    assert "https://cdn.example.com/x.png" in requested
    assert "http://api.example.org/y" in requested


@pytest.mark.skipif(chromium_path() is None, reason=SKIP_REASON)
def test_prompt_report_in_headless_chromium(tmp_path: Path, pytestconfig: pytest.Config) -> None:
    page_html = render_html(prompt_report(), None).encode("utf-8")
    with PageServer({"/report.html": page_html}) as server, Browser(tmp_path) as browser:
        page = browser.open(server.url("/report.html"))
        ready = page.evaluate("document.body.getAttribute('data-ready')")
        charts = page.evaluate(
            "Array.from(document.querySelectorAll('figure svg')).map(function (s) {"
            " var r = s.getBoundingClientRect(); return [s.id, r.width, r.height]; })"
        )
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        # Click "energy" in the records table twice: ascending, then descending.
        sort_js = (
            "(function () {"
            " var t = document.getElementById('records');"
            " var heads = Array.from(t.tHead.rows[0].cells);"
            " var col = heads.findIndex(function (h) { return h.textContent === 'energy'; });"
            " heads[col].querySelector('button').click();"
            " return Array.from(t.tBodies[0].rows).map(function (r) {"
            "   return r.cells[col].getAttribute('data-v'); }); })()"
        )
        ascending = page.evaluate(sort_js)
        descending = page.evaluate(sort_js)
        shot = page.screenshot(tmp_path / "report.png")
        errors = page.console_errors()
        requested = page.requests()
    assert ready == "1", "the table script did not run"
    ids = [c[0] for c in charts]
    assert {
        "chart-energy-per-test",
        "chart-frugality",
        "chart-heatmap",
        "chart-generation-execution",
        "chart-reference-ratio",
    } <= set(ids)
    assert all(w > 600 and h > 150 for _, w, h in charts), charts  # drawn at a readable size
    assert overflow <= 0, "the page scrolls sideways on a 1280 px laptop screen"
    values = [float(v) for v in ascending if v]
    assert values == sorted(values) and len(values) == 7
    assert ascending[-1] == "", "not measured sorts last"
    assert [float(v) for v in descending if v] == sorted(values, reverse=True)
    assert errors == []
    assert requested == [server.url("/report.html")]
    assert server.requests == [("GET", "/report.html")]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    if os.environ.get("PYTEST_CARBON_SCREENSHOT"):
        dest = pytestconfig.rootpath / ".carbon" / "html-screenshot.png"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, dest)


@pytest.mark.slow
@pytest.mark.skipif(chromium_path() is None, reason=SKIP_REASON)
def test_real_prompt_suite_report_in_headless_chromium(pytester: pytest.Pytester) -> None:
    """End to end: a prompt suite run by pytest, rendered by ``pytest-carbon report``,
    opened in Chromium."""
    pytest.importorskip("pytest_carbon.prompts.collect", reason="prompt suites not written yet")
    from test_frame import TASK_YAML

    pytester.makefile(".yaml", add_squares=TASK_YAML)
    result = pytester.runpytest_subprocess(
        "add_squares.yaml", "--carbon", "--carbon-json=r.json", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=1)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest_carbon.cli", "report", "r.json", "--html", "r.html"],
        cwd=pytester.path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    body = (pytester.path / "r.html").read_bytes()
    with PageServer({"/r.html": body}) as server, Browser(pytester.path / "chromium") as browser:
        page = browser.open(server.url("/r.html"))
        ids = page.evaluate("Array.from(document.querySelectorAll('figure svg'), s => s.id)")
        ready = page.evaluate("document.body.getAttribute('data-ready')")
        model = page.evaluate("document.querySelector('#models tbody th').textContent")
        errors = page.console_errors()
        requested = page.requests()
    assert ready == "1" and model == "reference"
    # A prompt item leads with its energy per call; one model draws no one-dot frontier.
    assert {"chart-energy-per-call", "chart-reference-ratio"} <= set(ids)
    assert "chart-frontier" not in ids
    assert errors == []
    assert requested == [server.url("/r.html")]


# ------------------------------------------------------------ what a reader sees first


def records_rows(page: str) -> list[str]:
    table = page[page.index('id="records"') :]
    table = table[table.index("<tbody>") : table.index("</tbody>")]
    return re.split(r"<tr[ >]", table)[1:]


def test_prompt_items_lead_with_energy_per_call_and_the_ratio() -> None:
    page = render_html(two_model_report())
    doc = parse(page)
    assert "chart-energy-per-call" in {a.get("id") for a in doc.find("svg")}
    # Windows (~2 J each) are not what ranks prompt items: no per-test chart for them.
    assert "chart-energy-per-test" not in {a.get("id") for a in doc.find("svg")}
    head = page[page.index('id="records"') :]
    head = head[: head.index("</thead>")]
    labels = re.findall(r'<button type="button">([^<]*)</button>', head)
    assert labels[3:6] == [
        "energy per call",
        "ratio to reference",
        "energy (window)",
    ]
    rows = records_rows(page)
    assert "merge_intervals[variant_naive-0]" in rows[0]
    assert "merge_intervals[reference-0]" in rows[-1]  # 0.5 mJ: the cheapest call
    assert "800× [768–832]" in rows[0] and "costlier than the reference" in rows[0]
    max_sum = next(r for r in rows if "max_sum[variant_naive-0]" in r)
    assert "indistinguishable from the reference" in max_sum
    assert "400 mJ" in rows[0] and "e-0" not in page.split("<svg")[0]
    # The model table leads with frugality (a geometric mean of per-task ratios).
    models = page[page.index('id="models"') :]
    assert re.findall(r'<button type="button">([^<]*)</button>', models)[1] == "frugality"
    assert "Total (6 measured, 6 window totals)" in page


def test_one_model_draws_no_lone_dot_and_no_flat_box() -> None:
    rep = two_model_report()
    rep["tests"] = [t for t in rep["tests"] if t["prompt"]["model"] == "variant:naive"]
    page = render_html(rep)
    ids = {a.get("id") for a in parse(page).find("svg")}
    assert "chart-frontier" not in ids
    ratio = page[page.index('id="chart-reference-ratio"') :]
    ratio = ratio[: ratio.index("</svg>")]
    # One point per task, on a task axis; no box (fewer than 5 points a group).
    assert "task (variant:naive)" in ratio and "merge_intervals" in ratio
    assert "chart-frugality" not in ids  # one cell: one dot


def five_rounds(report: dict[str, Any]) -> dict[str, Any]:
    """The report with five rounds a test (a single round is never judged a regression)."""
    for r in report["tests"]:
        if r.get("energy_j") and r.get("duration_s"):
            spread = (1.0, 1.01, 0.99, 1.02, 0.98)
            r["samples"] = {
                "energy_j": [r["energy_j"] / 5 * f for f in spread],
                "duration_s": [r["duration_s"] / 5 * f for f in spread],
            }
            r["rounds"] = 5
    return report


def test_comparison_opens_with_a_pass_or_fail_banner() -> None:
    from pytest_carbon.compare.baseline import compare, parse_fail_spec

    base = five_rounds(cli_report())
    current = copy.deepcopy(base)
    big = current["tests"][0]
    big["samples"]["energy_j"] = [e * 3 for e in big["samples"]["energy_j"]]
    big["energy_j"] *= 3
    # 22 stored runs like the baseline: the noise between runs is known (and small); 22
    # runs give one gated metric's family enough single-run excursions (1 / 5% + 2).
    failing = compare(base, current, [parse_fail_spec("energy:10%")], [base] * 22)
    assert failing.failures
    page = render_html(current, failing)
    banner = page[page.index('class="banner') :]
    assert banner.index("FAIL") < 60 and "1 energy regression" in banner[:200]
    # The banner comes before the summary cards: the verdict opens the page.
    assert page.index('class="banner') < page.index('aria-label="summary"')
    assert "this run</dt><dd>this run" not in page
    passing = render_html(base, compare(base, copy.deepcopy(base), [parse_fail_spec("energy:10%")]))
    assert 'class="banner pass"' in passing and "no regression beyond energy:10%" in passing
    neutral = render_html(base, compare(base, copy.deepcopy(base)))
    assert 'class="banner info"' in neutral


def test_embodied_water_and_phases_are_beside_the_totals() -> None:
    rep = cli_report()
    for t in rep["tests"]:
        if t["energy_j"] is not None:
            t["embodied_gco2e_g"] = 0.015
            t["water_l"] = 0.0004
    rep["tests"][0]["phases"] = {
        "load": {"energy_j": 1.5, "gco2e_g": 0.0002, "duration_s": 0.1, "method": "measured"},
        "call": {"energy_j": 9.0, "gco2e_g": 0.001, "duration_s": 1.0, "method": "measured"},
    }
    page = render_html(rep)
    card = page[page.index('aria-label="totals"') :]
    card = card[: card.index("</section>")]
    # Quantities never break inside: one nowrap span, a non-breaking space, CO₂ subscript.
    assert '<dt>embodied</dt><dd><span class="q">60.0&nbsp;mgCO₂e</span>' in card
    assert '<dt>water</dt><dd><span class="q">1.60&nbsp;mL</span>' in card
    assert '<code>load</code> <span class="q">1.50&nbsp;J</span>' in card
    assert "<code>call</code>" not in card  # the runner's whole-call phase is not a block


def test_outcome_words_render_from_one_table() -> None:
    recs = [
        record(f"t.py::test_{word}", cpu_j=1.0, outcome=word)
        for word in ("passed", "failed", "error", "xfailed", "xpassed", "skipped", "rerun")
    ]
    page = render_html(report(recs))
    assert 'class="good">passed<' in page and 'class="bad">error<' in page
    assert "xfailed (expected failure)" in page and "xpassed (unexpected pass)" in page
    assert 'class="other">rerun<' in page


def _shoot(page_html: str, tmp_path: Path, name: str, pytestconfig: pytest.Config) -> Any:
    with PageServer({"/r.html": page_html.encode("utf-8")}) as server, Browser(tmp_path) as b:
        page = b.open(server.url("/r.html"))
        found = page.evaluate(
            "({ready: document.body.getAttribute('data-ready'),"
            " banner: (document.querySelector('.banner') || {}).textContent || '',"
            " first: document.querySelector('#records tbody th').textContent,"
            " charts: Array.from(document.querySelectorAll('figure svg'), s => s.id),"
            " overflow: document.documentElement.scrollWidth"
            "   - document.documentElement.clientWidth})"
        )
        shot = page.screenshot(tmp_path / f"{name}.png")
        errors = page.console_errors()
        requested = page.requests()
    assert errors == [] and requested == [server.url("/r.html")]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    if os.environ.get("PYTEST_CARBON_SCREENSHOT"):
        dest = pytestconfig.rootpath / ".carbon" / f"html-{name}.png"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, dest)
    return found


@pytest.mark.slow
@pytest.mark.skipif(chromium_path() is None, reason=SKIP_REASON)
def test_two_model_report_in_headless_chromium(tmp_path: Path, pytestconfig: pytest.Config) -> None:
    found = _shoot(render_html(two_model_report()), tmp_path, "two-models", pytestconfig)
    assert found["ready"] == "1" and found["overflow"] <= 0
    assert found["first"].endswith("merge_intervals[variant_naive-0]")
    assert {"chart-energy-per-call", "chart-frugality", "chart-reference-ratio"} <= set(
        found["charts"]
    )


@pytest.mark.slow  # the fast tier's browser test: test_prompt_report_in_headless_chromium
@pytest.mark.skipif(chromium_path() is None, reason=SKIP_REASON)
def test_compare_report_in_headless_chromium(tmp_path: Path, pytestconfig: pytest.Config) -> None:
    from pytest_carbon.compare.baseline import compare, parse_fail_spec

    base = five_rounds(cli_report())
    current = copy.deepcopy(base)
    t1 = current["tests"][1]
    t1["samples"]["energy_j"] = [e * 3 for e in t1["samples"]["energy_j"]]
    t1["energy_j"] *= 3
    comparison = compare(base, current, [parse_fail_spec("energy:10%")], [base] * 22)
    found = _shoot(render_html(current, comparison), tmp_path, "compare", pytestconfig)
    assert found["ready"] == "1" and found["overflow"] <= 0
    assert found["banner"].startswith("FAIL") and "1 energy regression" in found["banner"]


def test_a_lone_surrogate_anywhere_is_written_escaped(tmp_path: Path) -> None:
    from pytest_carbon.report.html import write_html

    rep = cli_report()
    rep["tests"][0]["nodeid"] = "t.py::t[\udc80]"
    rep["warnings"] = ["ValueError: bad \ud800 input"]
    model_rec = prompt_report()["tests"][1]
    model_rec["prompt"]["model"] = "m\udfff"
    rep["tests"].append(model_rec)
    # Written as it is given (no scrubbing on the way): the writer itself must cope.
    out = write_html(rep, tmp_path / "r.html")
    page = out.read_text(encoding="utf-8")  # valid UTF-8 throughout
    assert "t.py::t[\\udc80]" in page and "bad \\ud800 input" in page and "m\\udfff" in page
