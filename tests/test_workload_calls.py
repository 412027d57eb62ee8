"""A prompt item's workload makes every call of ``workload.calls``, not only the first,
and a ``workload.generate`` gives fresh inputs beyond them."""

from __future__ import annotations

import json
import textwrap

import pytest

TASK = textwrap.dedent(
    """\
    id: calls
    prompt: Return x.
    entry_point: f
    reference: |
      def f(x):
          if x == TRAP:
              raise ValueError(f"call with x={x} reached")
          return x
    tests: [{args: [1], expect: 1}]
    workload:
      calls: [{args: [1]}, {args: [2]}, {args: [3]}]
      min_time_s: 0.05
    timeout_s: 20
    """
)


def _run(pytester: pytest.Pytester, trap: int) -> pytest.RunResult:
    prompts = pytester.mkdir("prompts")
    (prompts / "calls.yaml").write_text(TASK.replace("TRAP", str(trap)), encoding="utf-8")
    return pytester.runpytest_subprocess(
        "prompts", "--carbon", "--carbon-json=out.json", "-p", "no:randomly"
    )


@pytest.mark.slow
def test_the_last_call_of_the_list_is_made(pytester: pytest.Pytester) -> None:
    # Only the third input raises: the item fails in its workload, so the list was followed
    # past its first entries (the tests themselves only call f(1)).
    result = _run(pytester, trap=3)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*workload failed*"])
    result.stdout.fnmatch_lines(["*call with x=3 reached*"])


@pytest.mark.slow
def test_a_workload_whose_calls_all_succeed_is_measured(pytester: pytest.Pytester) -> None:
    result = _run(pytester, trap=99)
    result.assert_outcomes(passed=1)
    (record,) = json.loads((pytester.path / "out.json").read_text())["tests"]
    assert record["per_call"]["calls"] >= 3


GENERATED = textwrap.dedent(
    """\
    id: generated
    prompt: Return x.
    entry_point: f
    reference: |
      def f(x):
          if x == TRAP:
              raise ValueError(f"call with x={x} reached")
          return x
    tests: [{args: [1], expect: 1}]
    workload:
      generate: |
        def generate(seed):
            return {"args": [1000 + seed]}
      min_time_s: 0.05
    timeout_s: 20
    """
)


@pytest.mark.slow
def test_a_generated_workload_gives_fresh_inputs_beyond_its_first_six(
    pytester: pytest.Pytester,
) -> None:
    # generate() runs in pytest's process; the task's calls are seeds 0-5 (1000-1005),
    # and the rounds of a trivial call go far beyond them: seed 40 is reached.
    prompts = pytester.mkdir("prompts")
    (prompts / "generated.yaml").write_text(GENERATED.replace("TRAP", "1040"), encoding="utf-8")
    result = pytester.runpytest_subprocess(
        "prompts", "--carbon", "--carbon-json=out.json", "-p", "no:randomly"
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*call with x=1040 reached*"])


def test_generated_inputs_are_plain_data_from_a_generate_function() -> None:
    from pytest_carbon.sandbox.measure import generator

    make = generator("def generate(seed):\n    return [seed, {'k': seed * 2}]\n")
    assert make(3) == ([3, {"k": 6}], {})
    with pytest.raises(ValueError, match="defines no function generate"):
        generator("x = 1\n")
    with pytest.raises(ValueError, match="not JSON"):
        generator("def generate(seed):\n    return [object()]\n")(0)


def test_a_bad_generate_is_a_spec_error_naming_the_key() -> None:
    from pytest_carbon.prompts.spec import SpecError, loads

    (task,) = loads(GENERATED.replace("TRAP", "-1"), "ok.yaml")
    assert [c.args for c in task.workload.calls] == [[1000 + s] for s in range(6)]
    bad = GENERATED.replace("def generate(seed)", "def other(seed)")
    with pytest.raises(SpecError, match="workload.generate.*defines no function generate"):
        loads(bad, "bad.yaml")
