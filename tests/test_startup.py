"""Start-up checks: a typo in a sensor or a baseline is a usage error (exit 4), not a
gate quietly off; and the hints for a country or a model typed the wrong way."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from pytest_carbon.options import parse_country

SUITE = """
def test_a():
    sum(range(1000))
"""


def test_explicit_missing_baseline_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_load=SUITE)
    for spec in ("missing.json", "9999"):
        result = pytester.runpytest_subprocess(
            "--carbon", f"--carbon-compare={spec}", f"--carbon-storage={pytester.path / 's'}"
        )
        assert result.ret == 4, result.stdout.str()
        assert f"no baseline {spec!r}" in result.stderr.str()
    # The implicit "latest" may still start a first baseline.
    first = pytester.runpytest_subprocess(
        "--carbon", "--carbon-compare", f"--carbon-storage={pytester.path / 's'}"
    )
    assert first.ret == 0
    assert list(Path(pytester.path / "s").glob("*/0001_run.json"))


def test_unreadable_named_sensor_is_a_usage_error_with_the_doctors_fix(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    pytester.makepyfile(test_load=SUITE)
    empty = tmp_path / "powercap"  # a sysfs root without any RAPL zone
    empty.mkdir()
    result = pytester.runpytest_subprocess(
        "--carbon", "--carbon-sensors=rapl", f"--carbon-rapl-root={empty}"
    )
    assert result.ret == 4, result.stdout.str()
    err = result.stderr.str()
    assert "--carbon-sensors=rapl: rapl cannot be read here:" in err
    assert "no RAPL zones" in err and "pytest-carbon sensors" in err  # the doctor's reason
    # auto takes what it finds: the estimate, and the run passes.
    auto = pytester.runpytest_subprocess("--carbon", f"--carbon-rapl-root={empty}")
    assert auto.ret == 0
    # The estimate can always be read: naming it is fine.
    est = pytester.runpytest_subprocess("--carbon", "--carbon-sensors=estimate")
    assert est.ret == 0


def test_country_name_gets_a_did_you_mean() -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=r"Did you mean: FRA \(France\)"):
        parse_country("FRANCE")
    assert parse_country("fra") == "FRA"
