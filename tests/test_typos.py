"""Typos are usage errors: an option value that matches nothing or lies out of range stops
the run at start-up (exit status 4) with what was expected and the closest valid value.
No run exits 0 after measuring nothing because of an option.

In-process runs (``pytester.runpytest``): a usage error is decided before any test runs.
"""

from __future__ import annotations

import pytest
from test_prompt_items import task_yaml

USAGE = pytest.ExitCode.USAGE_ERROR


def usage_error(pytester: pytest.Pytester, *args: str) -> str:
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:randomly", *args)
    assert result.ret == USAGE, (result.ret, result.outlines[-20:], result.errlines[-20:])
    return "\n".join(result.errlines + result.outlines)


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """Two tasks; only ``a`` has the variant ``naive``. No endpoint: nothing is asked."""
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    naive = "variants:\n  naive: |\n    def double(x):\n        return sum([x, x])\n"
    (pytester.path / "prompts").mkdir()
    (pytester.path / "prompts" / "a.yaml").write_text(task_yaml("a", extra=naive))
    (pytester.path / "prompts" / "b.yaml").write_text(task_yaml("b"))
    return pytester


# -- model and variant selections ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("model", "words"),
    [
        # A variant no collected task has: the closest one is named.
        ("variant:naiv", "no collected task has a variant 'naiv'"),
        # A task's variant named bare.
        ("naive", "no built-in model has that name, and it is a task's variant"),
        # A near miss of a built-in name is not sent to an LLM.
        ("refrence", "too close to one to be an LLM's name"),
    ],
)
def test_a_model_that_matches_nothing_stops_the_run(
    suite: pytest.Pytester, model: str, words: str
) -> None:
    text = usage_error(suite, "prompts/", "--co", f"--carbon-model={model}")
    assert words in text
    closest = "reference" if model == "refrence" else "variant:naive"
    assert f"did you mean --carbon-model={closest}?" in text


def test_a_variant_some_tasks_have_skips_the_others_with_the_reason(suite: pytest.Pytester) -> None:
    result = suite.runpytest(
        "-p", "no:cacheprovider", "prompts/", "--carbon-model=variant:naive", "-rs"
    )
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*task 'b' has no variant 'naive' (its variants: none)*"])


def test_an_llm_model_name_is_not_a_typo(suite: pytest.Pytester) -> None:
    result = suite.runpytest("-p", "no:cacheprovider", "prompts/", "--co", "--carbon-model=gpt-4o")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*2 tests collected*"])


# -- values out of range -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("option", "words"),
    [
        # A percentage given as a number: never "precision ±500% reached".
        ("--carbon-precision=5", "expected a fraction between 0 and 1"),
        ("--carbon-precision=5", "did you mean 0.05 (or 5%)?"),
        ("--carbon-precision=500", "did you mean 0.05?"),
        ("--carbon-precision=0", "expected a number > 0"),
        ("--carbon-rounds=0", "expected an integer >= 1, got '0'; the closest valid value is 1"),
        ("--carbon-top=-3", "the closest valid value is 1"),
        ("--carbon-max-time=nan", "expected a finite number"),
        ("--carbon-interval=0.1", "did you mean 100?"),
        ("--carbon-pue=0.9", "the closest valid value is 1.0"),
        ("--carbon-pue=12", "the closest valid value is 5.0"),
        ("--carbon-intensity=5000", "the closest valid value is 2000"),
        (
            "--carbon-llm-mode=relay",
            "expected auto, replay or live, got 'relay'; did you mean replay?",
        ),
        ("--carbon-attribution=proces", "did you mean process?"),
        (
            "--carbon-sensors=estimat",
            "choose from auto, rapl, nvml, estimate; did you mean estimate?",
        ),
        ("--carbon-idle=of", "did you mean off?"),
        ("--carbon-compare-fail=enrgy:10%", "did you mean energy?"),
        ("--carbon-country=FRANCE", "ISO 3166-1 alpha-3"),
    ],
)
def test_a_value_out_of_range_stops_the_run(
    pytester: pytest.Pytester, option: str, words: str
) -> None:
    pytester.makepyfile("def test_a():\n    pass\n")
    text = usage_error(pytester, "--carbon", option)
    assert option.split("=")[0] in text  # the option is named
    assert words in text


def test_a_percentage_is_accepted_with_its_sign(pytester: pytest.Pytester) -> None:
    from pytest_carbon.options import parse_fraction

    assert parse_fraction("5%") == pytest.approx(0.05)
    assert parse_fraction("0.05") == pytest.approx(0.05)


def test_an_ini_or_environment_value_out_of_range_is_a_usage_error_too(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile("def test_a():\n    pass\n")
    pytester.makeini("[pytest]\ncarbon_precision = 10\n")
    text = usage_error(pytester, "--carbon")
    assert "ini option carbon_precision" in text and "did you mean 0.1 (or 10%)?" in text
    monkeypatch.setenv("PYTEST_CARBON_ATTRIBUTION", "machin")
    text = usage_error(pytester, "--carbon", "--carbon-precision=0.1")
    assert "$PYTEST_CARBON_ATTRIBUTION" in text and "did you mean machine?" in text


@pytest.mark.slow
def test_under_xdist_a_model_that_matches_nothing_is_a_usage_error_too(
    suite: pytest.Pytester,
) -> None:
    # Each worker finds the typo; none runs anything, and the controller says why.
    result = suite.runpytest_subprocess(
        "-p", "no:cacheprovider", "-n", "2", "prompts/", "--carbon-model=variant:naiv"
    )
    assert result.ret == USAGE
    result.stderr.fnmatch_lines(["*did you mean --carbon-model=variant:naive?*"])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
