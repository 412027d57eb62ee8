"""Start-up checks: a typo in a sensor or a baseline is a usage error (exit 4), not a
gate quietly off; and the hints for a country or a model typed the wrong way.

Runs are in-process (``pytester.runpytest``): start-up is what is checked, and an
interpreter start per run would cost more than the check."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
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
        result = pytester.runpytest(
            "--carbon", f"--carbon-compare={spec}", f"--carbon-storage={pytester.path / 's'}"
        )
        assert result.ret == 4, result.stdout.str()
        assert f"no baseline {spec!r}" in result.stderr.str()
    # The implicit "latest" may still start a first baseline.
    first = pytester.runpytest(
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
    result = pytester.runpytest("--carbon", "--carbon-sensors=rapl", f"--carbon-rapl-root={empty}")
    assert result.ret == 4, result.stdout.str()
    err = result.stderr.str()
    assert "--carbon-sensors=rapl: rapl cannot be read here:" in err
    assert "no RAPL zones" in err and "pytest-carbon sensors" in err  # the doctor's reason
    # auto takes what it finds: the estimate, and the run passes.
    auto = pytester.runpytest("--carbon", f"--carbon-rapl-root={empty}")
    assert auto.ret == 0
    # The estimate can always be read: naming it is fine.
    est = pytester.runpytest("--carbon", "--carbon-sensors=estimate")
    assert est.ret == 0


def test_country_name_gets_a_did_you_mean() -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=r"Did you mean: FRA \(France\)"):
        parse_country("FRANCE")
    assert parse_country("fra") == "FRA"


def test_import_prints_the_command_that_runs_what_it_wrote(pytester: pytest.Pytester) -> None:
    """`pytest-carbon import ... out/he` then `pytest out/he --carbon` used to run nothing."""
    from test_importers import MBPP_ROWS

    from pytest_carbon.importers import main

    source = pytester.path / "mbpp.jsonl"
    source.write_text("\n".join(json.dumps(r) for r in MBPP_ROWS) + "\n", encoding="utf-8")
    dest = pytester.path / "out" / "he"
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert main(["jsonl", str(dest), "--input", str(source)]) == 0
    command = out.getvalue().strip().splitlines()[-1]
    assert command == f"run them with: pytest {dest} --carbon"
    # Run what it says (without --carbon: collection is the point, and fast).
    result = pytester.runpytest(str(dest), "--collect-only", "-q")
    assert result.ret == 0, result.stdout.str()
    collected = [line for line in result.stdout.lines if "::" in line]
    assert len(collected) == 2 and all("[reference-plain-0]" in line for line in collected)
    # YAML that does not declare the schema is data, not tests, even in a named folder.
    (dest / "config.yaml").write_text("name: not a prompt suite\n", encoding="utf-8")
    again = pytester.runpytest(str(dest), "--collect-only", "-q")
    assert len([line for line in again.stdout.lines if "::" in line]) == 2


def test_a_bare_variant_name_as_model_hints_at_variant_prefix(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    from test_prompt_items import task_yaml

    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    (pytester.path / "prompts").mkdir()
    (pytester.path / "prompts" / "t.yaml").write_text(
        task_yaml("t", extra="variants:\n  naive: |\n    def double(x):\n        return x + x\n")
    )
    result = pytester.runpytest("prompts/", "--carbon-model=naive", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # at start-up: nothing was asked for
    result.stderr.fnmatch_lines(["*did you mean --carbon-model=variant:naive?*"])
    # No LLM was asked: nothing went to a cache.
    assert not (pytester.path / ".carbon" / "llm-cache").exists()


def test_sensors_command_shows_an_unavailable_method_as_unavailable(tmp_path: Path) -> None:
    from pytest_carbon.measure.doctor import _text, survey

    text = _text(survey(str(tmp_path)))  # an empty powercap root: RAPL unreadable
    rapl = next(line for line in text.splitlines() if line.startswith("rapl "))
    assert "not available" in rapl and "unavailable" in rapl and "measured" not in rapl
