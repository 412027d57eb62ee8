"""A prompt item's workload makes every call of ``workload.calls``, not only the first."""

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
