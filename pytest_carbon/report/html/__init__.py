"""The HTML report, built from small section builders: :mod:`.common` (colours, cells),
:mod:`.charts` (matplotlib SVG), :mod:`.cards` (summary cards), :mod:`.tables` (records,
models), :mod:`.compare` (the baseline comparison and its banner) and :mod:`.page`
(the document)."""

from __future__ import annotations

from pytest_carbon.report.html.common import PALETTE, TEXT_PAIRS, TOP_N, TRACE_MAX
from pytest_carbon.report.html.page import render_html, write_html
from pytest_carbon.report.html.tables import model_rows

__all__ = [
    "PALETTE",
    "TEXT_PAIRS",
    "TOP_N",
    "TRACE_MAX",
    "model_rows",
    "render_html",
    "write_html",
]
