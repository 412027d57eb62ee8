"""Import EffiBench (Huang et al. 2024): LeetCode problems written as ``class Solution``.

The file is the dataset the user downloaded (``dataset.json``: a JSON array, or JSON
Lines). Fields read per problem:

* ``problem_idx`` (else ``task_name``): the task id;
* ``markdown_description`` (else ``description``): the prompt's problem text;
* ``canonical_solution``: the reference (a Markdown fence around it is removed), run with
  the names EffiBench's own harness imports (``typing``, ``collections``, ...);
* ``small_test_cases``: the tests, lines ``assert solution.METHOD(ARGS) == EXPECTED``
  with literal arguments and results (the method gives the entry point
  ``Solution.METHOD``); without it, the first lines of ``test_case``;
* ``test_case``: EffiBench's generated test cases, the same form: the largest inputs
  (``--workload-calls``, by JSON size) are the workload, so that it measures the
  algorithm on EffiBench's large cases.

Problems whose cases use ``ListNode`` or ``TreeNode`` values (not plain data) have no
literal case and are reported and skipped, as is any whose reference fails its tests.
"""

from __future__ import annotations

import argparse
import ast
from collections.abc import Iterator
from typing import Any

from pytest_carbon.importers.base import (
    LEETCODE_PRELUDE,
    ImportedTask,
    ImporterError,
    add_common_arguments,
    calls_from_cases,
    cases_from_asserts,
    heaviest,
    leetcode_prompt,
    need,
    read_rows,
    safe_id,
    strip_fence,
    tidy,
)

NAME = "effibench"
HELP = "EffiBench's dataset.json (LeetCode problems, class Solution) you downloaded"
#: Tests taken from ``test_case`` when a problem has no ``small_test_cases``.
FALLBACK_TESTS = 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser, "EffiBench dataset.json (or .jsonl)")


def method_called(test_code: str, obj: str = "solution") -> str | None:
    """The method the asserts call on ``obj`` (``solution.twoSum(...)`` -> twoSum)."""
    try:
        tree = ast.parse(test_code)
    except (SyntaxError, ValueError):
        return None
    for node in ast.walk(tree):
        func = node.func if isinstance(node, ast.Call) else None
        if (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id == obj
        ):
            return func.attr
    return None


def convert(row: dict[str, Any], where: str, args: argparse.Namespace) -> ImportedTask:
    need(row, where, "canonical_solution", "test_case")
    raw_id = row.get("problem_idx", row.get("task_name"))
    if raw_id is None:
        raise ImporterError(f"{where}: missing fields ['problem_idx'] (or 'task_name')")
    big = str(row["test_case"])
    small = str(row.get("small_test_cases") or "")
    method = method_called(small or big)
    if method is None:
        raise ImporterError(f"{where}: no `solution.METHOD(...)` call in its test cases")
    entry = f"Solution.{method}"
    callee = f"solution.{method}"
    tests = cases_from_asserts(small, callee=callee)
    big_cases = cases_from_asserts(big, callee=callee)
    if not tests:
        tests = big_cases[:FALLBACK_TESTS]
    heavy = heaviest([c["args"] for c in big_cases], args.workload_calls)
    description = str(row.get("markdown_description") or row.get("description") or "")
    if not description.strip():
        raise ImporterError(f"{where}: no markdown_description")
    name = str(row.get("task_name") or raw_id)
    return ImportedTask(
        id=safe_id(f"{args.prefix}effibench_{raw_id}"),
        source=f"EffiBench {raw_id} ({name})",
        prompt=leetcode_prompt(description, entry, None),
        entry_point=entry,
        reference=tidy(LEETCODE_PRELUDE + "\n" + strip_fence(str(row["canonical_solution"]))),
        tests=tests,
        workload_calls=calls_from_cases([{"args": a} for a in heavy]) if heavy else [],
        min_time_s=args.min_time_s,
    )


def read(args: argparse.Namespace) -> Iterator[ImportedTask]:
    for where, row in read_rows(args.input):
        yield convert(row, where, args)
