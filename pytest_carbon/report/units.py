"""Kept for imports written before :mod:`pytest_carbon.report.format`, the one formatter."""

from __future__ import annotations

from pytest_carbon.report.format import si

__all__ = ["si"]
