"""Class-method entry points (``Solution.divideArray``): spec, resolution, and a run
through the real sandbox (verification, the check naming the entry point, measurement)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pytest_carbon.prompts.extract import extract_code
from pytest_carbon.prompts.spec import SpecError, loads
from pytest_carbon.sandbox.child.worker import entry_point_ok, resolve_entry

DATA = Path(__file__).parent / "data"


def test_entry_point_forms() -> None:
    assert entry_point_ok("double") and entry_point_ok("Solution.divideArray")
    for bad in ("", "a.b.c", "Solution.__init__", "_S.m", "1x", "Solution.", None):
        assert not entry_point_ok(bad)


def test_a_class_entry_instantiates_afresh_for_every_call() -> None:
    namespace: dict[str, object] = {}
    exec(
        "class S:\n    made = 0\n    def __init__(self):\n        S.made += 1\n"
        "        self.n = 0\n    def f(self, x):\n        self.n += 1\n        return self.n * x\n",
        namespace,
    )
    call = resolve_entry(namespace, "S.f")
    assert [call(5), call(7)] == [5, 7]  # type: ignore[operator]
    assert namespace["S"].made == 2  # type: ignore[attr-defined]
    with pytest.raises(LookupError, match="no method 'g'"):
        resolve_entry(namespace, "S.g")
    with pytest.raises(LookupError, match="no class 'T'"):
        resolve_entry(namespace, "T.f")


def test_the_spec_accepts_a_class_entry_and_names_a_bad_one() -> None:
    task = loads((DATA / "class_entry.yaml").read_text(), "class_entry.yaml")[0]
    assert task.entry_point == "Solution.divideArray"
    text = (
        (DATA / "class_entry.yaml")
        .read_text()
        .replace("entry_point: Solution.divideArray", "entry_point: Solution.divide.Array")
    )
    with pytest.raises(SpecError) as err:
        loads(text, "x.yaml")
    assert "x.yaml:7: key 'entry_point'" in str(err.value)
    assert "Class.method" in str(err.value)


def test_extraction_finds_the_block_that_defines_the_class() -> None:
    answer = (
        "```python\nprint(1)\n```\n"
        "```python\nclass Solution:\n    def f(self, x):\n        return x\n```\n"
    )
    assert extract_code(answer, "Solution.f").startswith("class Solution:")


def test_a_class_entry_task_verifies_checks_and_measures(pytester: pytest.Pytester) -> None:
    (pytester.path / "prompts").mkdir()
    shutil.copy(DATA / "class_entry.yaml", pytester.path / "prompts" / "divide_array.yaml")
    result = pytester.runpytest_subprocess(
        "prompts/",
        "-p",
        "no:cacheprovider",
        "--carbon",
        "--carbon-idle=off",
        "--carbon-json=out.json",
        "--carbon-max-time=1",
        "--carbon-model=reference",
        "--carbon-model=variant:stateful",
        timeout=120,
    )
    result.assert_outcomes(passed=2)
    report = json.loads((pytester.path / "out.json").read_text())
    recs = {r["prompt"]["model"]: r for r in report["tests"]}
    ref, var = recs["reference"], recs["variant:stateful"]
    assert ref["prompt"]["correct"] is True and ref["energy_j"] > 0
    assert var["prompt"]["correct"] is True
    comparison = var["prompt"]["reference_comparison"]
    assert comparison["low"] <= comparison["ratio"] <= comparison["high"]
    assert comparison["checked_calls"] >= comparison["pairs"] >= 1


def test_a_check_naming_the_class_judges_the_answer() -> None:
    from pytest_carbon.sandbox.verify import verify

    task = loads((DATA / "class_entry.yaml").read_text(), "class_entry.yaml")[0]
    # Never says "impossible": only the check's first line, which names the class, sees it.
    wrong = task.reference.replace(
        "return out if all(g[2] - g[0] <= k for g in out) else []", "return out"
    )
    assert wrong != task.reference
    tests: list[dict[str, object]] = []
    good = verify(task.reference, task.entry_point, tests, task.check, reference=task.reference)
    assert good.passed, good.message
    bad = verify(wrong, task.entry_point, tests, task.check, reference=task.reference)
    assert not bad.passed
    assert bad.failed_case is not None and bad.failed_case.get("check")
    assert "Solution().divideArray([2, 4, 2, 2, 5, 2], 2) == []" in bad.message
    missing = verify("class Other:\n    pass\n", task.entry_point, tests, None)
    assert not missing.passed and "no class 'Solution'" in missing.message
