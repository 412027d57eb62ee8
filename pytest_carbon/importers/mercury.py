"""Import Mercury (Du et al. 2024): LeetCode problems with a test-case generator and the
runtimes of human solutions.

The file is the dataset the user downloaded (the Hugging Face ``Elfsong/Mercury`` split
saved as JSON Lines or a JSON array). Fields read per problem:

* ``slug_name`` (else ``id``): the task id;
* ``pretty_content`` (a list of paragraphs, or text): the prompt's problem text, with
  ``prompt`` (the ``class Solution`` starter code) after it;
* ``entry_point``: the method name, giving the entry point ``Solution.METHOD``;
* ``solutions``: ``[{"solution": CODE, "runtime": "44 ms" or a number}, ...]``: the
  fastest is the reference; with ``--graded`` every one becomes a graded reference,
  slow to fast, scored ``100 * rank / n`` (the share of the solutions it is at least as
  fast as, as EvalPerf's normalised score);
* ``test_cases``: JSON text (or a list) of ``{"input": ARGS, "expected": VALUE}``
  (``expected_output`` also read): ARGS a list of positional arguments (a mapping: keyword
  arguments). The tests;
* ``generator_code``: Python defining ``generate_test_case()``, which returns one input
  (a tuple or list of positional arguments, or a mapping of keyword arguments). It is run
  at import **in the sandbox**, against the reference, with seeds 0, 1, ...: the inputs it
  makes (``--workload-calls``) are the workload. Nothing of the file runs on the host.

Mercury's ``convert_offline`` / ``evaluate_offline`` are not read: inputs are used as
given, and results compared with the one equality rule. A problem whose values need a
conversion (``ListNode``, ``TreeNode``) then fails its reference's vetting and is
reported and skipped.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from collections.abc import Iterator
from typing import Any

from pytest_carbon.importers.base import (
    LEETCODE_PRELUDE,
    ImportedTask,
    ImporterError,
    add_common_arguments,
    leetcode_prompt,
    need,
    read_rows,
    safe_id,
    strip_fence,
    tidy,
)

NAME = "mercury"
HELP = "Mercury's dataset (LeetCode problems with generators) saved as JSON Lines"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser, "Mercury .jsonl (or .json)")
    parser.add_argument(
        "--graded",
        action="store_true",
        help="every human solution becomes a graded reference (slow to fast, by runtime)",
    )


def runtime_ms(value: Any) -> float:
    """``"44 ms"`` / ``44`` -> 44.0; unknown runtimes sort last (inf)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    match = re.search(r"[\d.]+", str(value or ""))
    try:
        return float(match.group()) if match else math.inf
    except ValueError:
        return math.inf


def _case(item: Any, where: str) -> dict[str, Any]:
    if not isinstance(item, dict) or "input" not in item:
        raise ImporterError(f"{where}: a test case is not {{input, expected}}: {item!r:.80}")
    expect = item.get("expected", item.get("expected_output"))
    value = item["input"]
    if isinstance(value, dict):
        return {"args": [], "kwargs": value, "expect": expect}
    if isinstance(value, list):
        return {"args": value, "expect": expect}
    return {"args": [value], "expect": expect}


def workload_check(generator: str, n: int) -> str:
    """A check that calls the candidate on ``n`` generated inputs (seeds 0..n-1)."""
    return (
        tidy(generator)
        + "\n\nimport random as _random\n"
        + f"for _seed in range({n}):\n"
        + "    _random.seed(_seed)\n"
        + "    _input = generate_test_case()\n"
        + "    if isinstance(_input, dict):\n"
        + "        candidate(**_input)\n"
        + "    elif isinstance(_input, (list, tuple)):\n"
        + "        candidate(*_input)\n"
        + "    else:\n"
        + "        candidate(_input)\n"
    )


def convert(row: dict[str, Any], where: str, args: argparse.Namespace) -> ImportedTask:
    need(row, where, "entry_point", "solutions", "test_cases")
    raw_id = row.get("slug_name", row.get("id"))
    if raw_id is None:
        raise ImporterError(f"{where}: missing fields ['slug_name'] (or 'id')")
    entry = f"Solution.{row['entry_point']}"
    solutions = [
        (runtime_ms(s.get("runtime")), strip_fence(str(s["solution"])))
        for s in row["solutions"]
        if isinstance(s, dict) and s.get("solution")
    ]
    if not solutions:
        raise ImporterError(f"{where}: no solution")
    solutions.sort(key=lambda s: (-s[0], s[1]))  # slow to fast
    codes = [tidy(LEETCODE_PRELUDE + "\n" + code) for _, code in solutions]
    raw_cases = row["test_cases"]
    if isinstance(raw_cases, str):
        try:
            raw_cases = json.loads(raw_cases)
        except json.JSONDecodeError as exc:
            raise ImporterError(f"{where}: test_cases is not JSON: {exc.msg}") from None
    if not isinstance(raw_cases, list):
        raise ImporterError(f"{where}: test_cases is not a list")
    tests = [_case(c, where) for c in raw_cases]
    content = row.get("pretty_content") or row.get("content") or ""
    text = "\n\n".join(map(str, content)) if isinstance(content, list) else str(content)
    references = []
    if args.graded:
        n = len(codes)
        references = [
            {"code": c, "score": round(100.0 * (i + 1) / n, 4)} for i, c in enumerate(codes)
        ]
    generator = str(row.get("generator_code") or "")
    return ImportedTask(
        id=safe_id(f"{args.prefix}mercury_{raw_id}"),
        source=f"Mercury {raw_id}",
        prompt=leetcode_prompt(text, entry, str(row.get("prompt") or "")),
        entry_point=entry,
        reference=codes[-1],
        tests=tests,
        references=references,
        workload_check=workload_check(generator, args.workload_calls) if generator else None,
        workload_limit=args.workload_calls,
        min_time_s=args.min_time_s,
    )


def read(args: argparse.Namespace) -> Iterator[ImportedTask]:
    for where, row in read_rows(args.input):
        yield convert(row, where, args)
