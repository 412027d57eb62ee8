"""A pytest plugin for tools/irefs.py's breakdown (``IREFS_PRE="-p nosum"``, tools/ on
PYTHONPATH): it empties pytest-carbon's records before the terminal summary, so that the
per-test cost while tests run is counted without the records' building and summary."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    from pytest_carbon.session import SESSION_KEY

    cs = config.stash.get(SESSION_KEY, None)
    if cs is not None:
        cs._records = []
        cs._raw = 0
        cs._record_at = {}
