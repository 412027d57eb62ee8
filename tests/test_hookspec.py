"""pytest-carbon's own hooks: their specs, and a conftest.py implementation used end to end."""

from __future__ import annotations

import json
import re
from typing import Any

import pluggy
import pytest

from pytest_carbon import hookspec


class _Plugin:
    def __init__(self, value: Any) -> None:
        self.value = value
        self.calls: list[Any] = []

    @pytest.hookimpl
    def pytest_carbon_intensity(self, config: Any, when: Any) -> Any:
        self.calls.append(when)
        return self.value


def _manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("pytest")
    pm.add_hookspecs(hookspec)
    return pm


def test_intensity_hook_takes_the_first_non_none_result() -> None:
    pm = _manager()
    first, second, third = _Plugin(None), _Plugin(120.0), _Plugin(999.0)
    # pluggy calls the last registered first.
    for plugin in (third, second, first):
        pm.register(plugin)
    assert pm.hook.pytest_carbon_intensity(config=None, when="t0") == 120.0
    assert first.calls == ["t0"] and second.calls == ["t0"] and third.calls == []


def test_sensors_and_json_hooks_collect_every_result() -> None:
    pm = _manager()

    class A:
        @pytest.hookimpl
        def pytest_carbon_sensors(self, config: Any) -> list[str]:
            return ["a"]

        @pytest.hookimpl
        def pytest_carbon_json(self, config: Any, report: dict[str, Any]) -> None:
            report["a"] = 1

    class B:
        @pytest.hookimpl
        def pytest_carbon_sensors(self) -> list[str]:  # pluggy passes only named args
            return ["b1", "b2"]

        @pytest.hookimpl
        def pytest_carbon_json(self, report: dict[str, Any]) -> None:
            report["b"] = report.get("a", 0) + 1

    pm.register(A())
    pm.register(B())
    assert sorted(s for lst in pm.hook.pytest_carbon_sensors(config=None) for s in lst) == [
        "a",
        "b1",
        "b2",
    ]
    report: dict[str, Any] = {"schema": "pytest-carbon/report/1"}
    pm.hook.pytest_carbon_json(config=None, report=report)
    assert report["a"] == 1 and report["b"] in (1, 2)


def test_a_misspelt_argument_is_refused_at_registration() -> None:
    pm = _manager()

    class Bad:
        @pytest.hookimpl
        def pytest_carbon_intensity(self, config: Any, moment: Any) -> float:
            return 1.0

    with pytest.raises(pluggy.PluginValidationError, match="moment"):
        pm.register(Bad())


CONFTEST = """
import datetime

def pytest_carbon_intensity(config, when):
    aware = when.tzinfo is not None and when.utcoffset() == datetime.timedelta(0)
    return {"intensity_g_per_kwh": 123.0, "source": f"fixed profile (utc={aware})"}

def pytest_carbon_json(config, report):
    report["from_conftest"] = {"tests": len(report["tests"])}
"""

TESTS = """
def test_work():
    assert sum(i * i for i in range(20000)) > 0
"""


def test_conftest_intensity_hook_is_used_in_the_json_report(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(TESTS)
    result = pytester.runpytest("--carbon", "--carbon-json=out.json", "--carbon-idle=off")
    result.assert_outcomes(passed=1)
    report = json.loads((pytester.path / "out.json").read_text(encoding="utf-8"))
    acc = report["accounting"]
    assert acc["intensity_g_per_kwh"] == 123.0
    assert acc["intensity_source"] == "hook: fixed profile (utc=True)"
    assert acc["intensity_is_default"] is False
    assert report["from_conftest"] == {"tests": 1}
    test = report["tests"][0]
    assert test["gco2e_g"] == pytest.approx(test["energy_j"] / 3.6e6 * acc["pue"] * 123.0)


def test_a_bad_intensity_hook_result_is_an_error_naming_the_hook(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest("def pytest_carbon_intensity(config, when):\n    return -3\n")
    pytester.makepyfile(TESTS)
    result = pytester.runpytest("--carbon", "--carbon-idle=off")
    assert result.ret != 0
    # A usage error goes to stderr, an error during the run to stdout: accept either.
    output = result.stdout.str() + result.stderr.str()
    assert re.search(r"pytest_carbon_intensity returned .*-3", output), output
