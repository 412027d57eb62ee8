"""What ``--carbon`` imports once per run: only what a run of plain tests on the estimate
sensor needs (the fixed start-up cost, issue 23). A regression, an import moved back to a
module's top, shows here as a module in ``sys.modules``.

One pytest subprocess: in-process runs share this process's ``sys.modules``, where other
tests (and pytest-benchmark, which imports ``statistics``) have put what is checked.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_carbon.measure.sensors.discover import nvidia_device_present

# Writes, at the very end of the run, what the run imported and how.
CONFTEST = """
import json, sys

def pytest_unconfigure(config):
    marked = [
        sorted(getattr(f, "_must_rewrite", ()))
        for f in sys.meta_path
        if type(f).__name__ == "AssertionRewritingHook"
    ]
    loaders = {
        name: type(getattr(mod, "__loader__", None)).__name__
        for name, mod in list(sys.modules.items())
        if name.startswith("pytest_carbon")
    }
    with open("modules.json", "w") as f:
        json.dump({"modules": sorted(sys.modules), "loaders": loaders, "marked": marked}, f)
"""

#: Modules a run of plain tests on the estimate sensor must not import (imported where
#: their path needs them).
NOT_NEEDED = (
    "pytest_carbon.measure.sensors.rapl",  # no RAPL root: discovery checks it first
    "pytest_carbon.budget",  # only a test with a carbon marker has a budget
    "statistics",  # per-round statistics, idle calibration, budgets over rounds
)


def _run(pytester: pytest.Pytester, *args: str, passed: int = 2) -> dict[str, object]:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_plain="def test_a():\n    pass\n\ndef test_b():\n    pass\n")
    result = pytester.runpytest_subprocess(
        "-p", "no:benchmark", "-p", "no:xdist", "-p", "no:randomly", "-p", "no:cacheprovider",
        *args,
    )  # fmt: skip
    result.assert_outcomes(passed=passed)
    data: dict[str, object] = json.loads((pytester.path / "modules.json").read_text())
    data["stdout"] = result.stdout.str()
    return data


def test_carbon_run_of_plain_tests_imports_only_what_it_needs(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    missing_root = tmp_path / "no-powercap"
    data = _run(pytester, "--carbon", "--carbon-idle=off", f"--carbon-rapl-root={missing_root}")
    modules = set(data["modules"])  # type: ignore[call-overload]
    # It measured (the check is not vacuous): the meter, the estimate and the summary ran.
    assert "2 measured" in str(data["stdout"])
    for needed in (
        "pytest_carbon.measure.meter",
        "pytest_carbon.measure.sensors.estimate",
        "pytest_carbon.report.terminal",
    ):
        assert needed in modules
    unexpected = [m for m in NOT_NEEDED if m in modules]
    assert unexpected == []
    if not nvidia_device_present():
        # No NVIDIA device node: discovery says so without importing the NVML sensor.
        assert "pytest_carbon.measure.sensors.nvml" not in modules


def test_the_plugins_modules_skip_pytests_assertion_rewriting(pytester: pytest.Pytester) -> None:
    """pytest's rewriting hook hashed each lazily imported module's source and unmarshalled
    its own cache from the file at every import (~80 M instructions a run): the package
    takes itself off the hook's list, and its modules load through Python's own import."""
    data = _run(pytester, "--carbon", "--carbon-idle=off")
    loaders: dict[str, str] = data["loaders"]  # type: ignore[assignment]
    assert loaders["pytest_carbon.measure.meter"] == "SourceFileLoader"
    assert loaders["pytest_carbon.options"] == "SourceFileLoader"
    assert [m for m in loaders.values() if m == "AssertionRewritingHook"] in (
        [],
        ["AssertionRewritingHook"],  # the package itself, imported before it can say so
    )
    assert all("pytest_carbon" not in names for names in data["marked"])  # type: ignore[attr-defined]


def test_an_in_process_run_takes_the_package_off_its_new_hook(pytester: pytest.Pytester) -> None:
    """In a process that imported the package already (pytester's in-process runs), the
    plugin's registration takes it off the new run's hook."""
    pytester.makeconftest(
        """
import sys

def pytest_configure(config):
    hooks = [f for f in sys.meta_path if type(f).__name__ == "AssertionRewritingHook"]
    config.marked_carbon = [("pytest_carbon" in f._must_rewrite) for f in hooks]

def pytest_report_header(config):
    return f"carbon marked: {config.marked_carbon}"
"""
    )
    pytester.makepyfile(test_plain="def test_a():\n    pass\n")
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1)
    header = [line for line in result.outlines if line.startswith("carbon marked:")]
    assert header and "True" not in header[0] and "False" in header[0]


@pytest.mark.parametrize("carbon", [False, True], ids=["plain", "carbon"])
def test_a_projects_other_yaml_files_do_not_import_the_prompt_machinery(
    pytester: pytest.Pytester, carbon: bool
) -> None:
    """pytest offers the plugin every YAML file of the directories it walks (mkdocs.yml, CI
    or data files). Deciding they are not prompt suites must not import the collection
    module (tens of ms at every start, with or without ``--carbon``)."""
    pytester.makefile(".yml", mkdocs="site_name: x\n")
    (pytester.path / "data").mkdir()
    (pytester.path / "data" / "cases.yaml").write_text("- 1\n- 2\n")
    (pytester.path / "data" / "test_data.py").write_text("def test_c():\n    pass\n")
    data = _run(pytester, *(["--carbon", "--carbon-idle=off"] if carbon else []), passed=3)
    modules = set(data["modules"])  # type: ignore[call-overload]
    assert "pytest_carbon.prompts.paths" in modules  # the gate was asked (not vacuous)
    assert "pytest_carbon.prompts.collect" not in modules
    assert "pytest_carbon.prompts.spec" not in modules


def test_a_plain_run_imports_only_the_plugins_front(pytester: pytest.Pytester) -> None:
    """Installed but off (no ``--carbon``, no marker, no report, no baseline): pytest
    imports the plugin, its options and its session, and nothing that measures, checks
    a baseline, compares or writes a report."""
    data = _run(pytester)
    modules = set(data["modules"])  # type: ignore[call-overload]
    assert "pytest_carbon.plugin" in modules and "pytest_carbon.session" in modules
    unexpected = sorted(
        m
        for m in (
            "pytest_carbon.startup",
            "pytest_carbon.finish",
            "pytest_carbon.runner",
            "pytest_carbon.measure.meter",
            "pytest_carbon.carbon.accounting",
            "pytest_carbon.report.terminal",
            "pytest_carbon.results.record",
        )
        if m in modules
    )
    assert unexpected == []
