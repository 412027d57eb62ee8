"""Import EvalPerf (Liu et al. 2024): performance-exercising tasks from HumanEval+ and
MBPP+, each with graded reference solutions.

The file is the dataset the user downloaded (``evalplus/evalperf``, JSON Lines or a
JSON array). Fields read per task:

* ``task_id`` (``HumanEval/10``, ``Mbpp/4``): the task id;
* ``prompt``: the prompt (the function's signature and docstring);
* ``entry_point``: the function's name;
* ``reference`` and ``scores``: the graded references and their scores (0-100), which
  become ``references: [{code, score}]`` sorted slow to fast (by score; of references
  with the same score the last is kept). The fastest is the reference;
* ``pe_input``: the performance-exercising input(s), JSON text or a list of inputs, each a
  list of positional arguments: the workload, and the test (the fastest reference's
  result on it, recorded in the sandbox; every graded reference must give the same).

EvalPerf's MBPP inputs that need its own deserialisation (sets, tuples as keys) are read as
JSON: a reference that then fails is reported and the task skipped.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from typing import Any

from pytest_carbon.importers.base import (
    ImportedTask,
    ImporterError,
    add_common_arguments,
    calls_from_cases,
    heaviest,
    need,
    read_rows,
    safe_id,
    strip_fence,
    tidy,
)

NAME = "evalperf"
HELP = "EvalPerf's dataset (graded references, pe_input) you downloaded"
INSTRUCTION = (
    "Complete the following Python function, as efficiently as you can. Return the whole "
    "function definition, with any imports it needs.\n\n"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser, "EvalPerf .jsonl (or .json)")


def graded(references: list[Any], scores: list[Any], where: str) -> list[dict[str, Any]]:
    """``[{code, score}]`` slow to fast, scores strictly increasing."""
    if len(references) != len(scores) or not references:
        raise ImporterError(f"{where}: 'reference' and 'scores' differ in length or are empty")
    by_score: dict[float, str] = {}
    for code, score in zip(references, scores, strict=True):
        try:
            value = float(score)
        except (TypeError, ValueError):
            raise ImporterError(f"{where}: score {score!r} is not a number") from None
        if not 0 <= value <= 100:
            raise ImporterError(f"{where}: score {value:g} is outside 0-100")
        by_score[value] = tidy(strip_fence(str(code)))
    return [{"code": by_score[s], "score": s} for s in sorted(by_score)]


def pe_inputs(value: Any, where: str) -> list[Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ImporterError(f"{where}: pe_input is not JSON: {exc.msg}") from None
    if not isinstance(value, list) or not value:
        raise ImporterError(f"{where}: pe_input is not a list of inputs")
    return value


def convert(row: dict[str, Any], where: str, args: argparse.Namespace) -> ImportedTask:
    need(row, where, "task_id", "prompt", "entry_point", "reference", "scores", "pe_input")
    refs = graded(list(row["reference"]), list(row["scores"]), where)
    inputs = heaviest(pe_inputs(row["pe_input"], where), args.workload_calls)
    return ImportedTask(
        id=safe_id(f"{args.prefix}evalperf_{row['task_id']}"),
        source=f"EvalPerf {row['task_id']}",
        prompt=INSTRUCTION + tidy(str(row["prompt"])),
        entry_point=str(row["entry_point"]),
        reference=refs[-1]["code"],
        tests=[],
        test_inputs=inputs,
        references=refs,
        workload_calls=calls_from_cases([{"args": a} for a in inputs]),
        min_time_s=args.min_time_s,
    )


def read(args: argparse.Namespace) -> Iterator[ImportedTask]:
    for where, row in read_rows(args.input):
        yield convert(row, where, args)
