"""The hooks pytest-carbon offers to plugins and ``conftest.py`` files.

Registered by the plugin with ``config.pluginmanager.add_hookspecs(hookspec)``. Implement
one in a ``conftest.py`` (or a plugin) by defining a function of the same name; pluggy
passes only the arguments the implementation names. ``docs/how-numbers-are-computed.md``
has worked examples.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from pytest_carbon.measure.sensors.base import Sensor


@pytest.hookspec(firstresult=True)
def pytest_carbon_intensity(
    config: pytest.Config, when: datetime
) -> float | Mapping[str, Any] | None:
    """Return the grid carbon intensity to use, or ``None`` to keep the configured one.

    :param config: the pytest config.
    :param when: the time of the measurement, a timezone-aware ``datetime`` in UTC. The
        hook is called for the session's start, then for each measured test at the time
        its window opened (so a time-varying intensity charges each test at its own).

    Return ``None``, a number (gCO2e/kWh, >= 0), or a mapping
    ``{"intensity_g_per_kwh": x, "source": "...", "year": 2024}`` (``source`` and ``year``
    optional). The first implementation to return something other than ``None`` wins
    (``firstresult``). The value replaces the intensity from ``--carbon-country`` /
    ``--carbon-region`` / ``--carbon-intensity``; PUE, embodied and water settings stay.
    The report states it as ``intensity_source = "hook: <source>"``. A value of the wrong
    type, a negative or a non-finite number stops the run with an error naming this hook.
    """


@pytest.hookspec
def pytest_carbon_sensors(config: pytest.Config) -> Sequence[Sensor] | None:
    """Return extra sensors to read alongside the built-in ones (a list, possibly empty).

    :param config: the pytest config.

    Each object follows the ``Sensor`` protocol of :mod:`pytest_carbon.measure.sensors.base`
    (``name``, ``method``, ``components``, ``read()``, ``close()``, ``status()``). Every
    implementation is called and the lists are joined. A sensor must not report a
    component that a built-in sensor already covers, or that energy would count twice.
    """


@pytest.hookspec
def pytest_carbon_json(config: pytest.Config, report: dict[str, Any]) -> None:
    """Enrich or modify the JSON report (schema ``pytest-carbon/report/1``) before it is
    written.

    :param config: the pytest config.
    :param report: the report dict; change it in place. Called on the controller only
        (never on an xdist worker), once per written report.

    Put new data under keys of your own (for example ``report["my_plugin"] = {...}``) so
    that readers of the schema keep working.
    """
