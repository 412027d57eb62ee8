"""Import EvalPlus (Liu et al. 2023): HumanEval+ and MBPP+, HumanEval and MBPP with many
more inputs.

The file is the release the user downloaded (``HumanEvalPlus.jsonl.gz`` or
``MbppPlus.jsonl.gz``; JSON Lines, gzipped or not). Fields read per task:

* ``task_id`` (``HumanEval/0``, ``Mbpp/2``): the task id;
* ``prompt``: the prompt; ``entry_point``: the function's name;
* ``canonical_solution``: the reference (HumanEval+: the prompt's signature followed by
  it; MBPP+: a whole function already);
* ``base_input``: the original inputs, each a list of positional arguments: the tests,
  with the reference's results recorded in the sandbox (EvalPlus, too, takes expected
  outputs from the reference);
* ``plus_input``: the added inputs: the largest (``--workload-calls``, by JSON size) are
  the workload, and ``--plus-tests N`` of them (default 4) are added to the tests;
* ``atol``: the absolute tolerance of float results (recorded cases get it).
"""

from __future__ import annotations

import argparse
import ast
from collections.abc import Iterator
from typing import Any

from pytest_carbon.importers.base import (
    ImportedTask,
    add_common_arguments,
    calls_from_cases,
    heaviest,
    need,
    read_rows,
    safe_id,
    tidy,
)

NAME = "evalplus"
HELP = "HumanEval+ or MBPP+ (EvalPlus's .jsonl[.gz]) you downloaded"
INSTRUCTION = (
    "Complete the following Python function. Return the whole function definition, with "
    "any imports it needs.\n\n"
)
#: Base inputs kept as tests (recorded from the reference).
MAX_BASE_TESTS = 12


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser, "HumanEvalPlus/MbppPlus .jsonl[.gz]")
    parser.add_argument(
        "--plus-tests",
        type=int,
        default=4,
        metavar="N",
        help="plus_input cases (the smallest) added to the tests (default 4)",
    )


def _defines(code: str, name: str) -> bool:
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    return any(isinstance(n, ast.FunctionDef) and n.name == name for n in tree.body)


def convert(row: dict[str, Any], where: str, args: argparse.Namespace) -> ImportedTask:
    need(row, where, "task_id", "prompt", "entry_point", "canonical_solution", "base_input")
    entry = str(row["entry_point"])
    solution = str(row["canonical_solution"])
    reference = solution if _defines(solution, entry) else str(row["prompt"]) + solution
    base = [list(a) for a in row["base_input"] if isinstance(a, (list, tuple))]
    plus = [a for a in row.get("plus_input") or [] if isinstance(a, (list, tuple))]
    smallest_plus = list(reversed(heaviest(plus, len(plus))))[: max(args.plus_tests, 0)]
    heavy = heaviest(plus or base, args.workload_calls)
    try:
        atol = float(row.get("atol") or 0.0)
    except (TypeError, ValueError):
        atol = 0.0
    return ImportedTask(
        id=safe_id(f"{args.prefix}{row['task_id']}_plus"),
        source=f"EvalPlus {row['task_id']}",
        prompt=INSTRUCTION + tidy(str(row["prompt"])),
        entry_point=entry,
        reference=tidy(reference),
        tests=[],
        test_inputs=base[:MAX_BASE_TESTS] + smallest_plus,
        test_tol=atol,
        workload_calls=calls_from_cases([{"args": a} for a in heavy]),
        min_time_s=args.min_time_s,
    )


def read(args: argparse.Namespace) -> Iterator[ImportedTask]:
    for where, row in read_rows(args.input):
        yield convert(row, where, args)
