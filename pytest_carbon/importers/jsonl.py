"""Import MBPP-style JSONL (``task_id``, ``text``, ``code``, ``test_list``) the user provides."""

from __future__ import annotations

import argparse
import ast
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pytest_carbon.importers.base import (
    ImportedTask,
    ImporterError,
    calls_from_cases,
    cases_from_asserts,
    safe_id,
    tidy,
)

NAME = "jsonl"
HELP = "an MBPP-style JSONL file you provide (task_id, text, code, test_list)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", type=Path, required=True, help="the .jsonl file to import")
    parser.add_argument("--prefix", default="", help="prepended to every task id (e.g. mbpp_)")


def _defined_functions(code: str) -> list[str]:
    return [n.name for n in ast.parse(code).body if isinstance(n, ast.FunctionDef)]


def _called_names(tests: list[str]) -> list[str]:
    names = []
    for line in tests:
        for node in ast.walk(ast.parse(line)):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                names.append(node.func.id)
    return names


def convert(row: dict[str, Any], where: str, prefix: str, min_time_s: float) -> ImportedTask:
    missing = {"task_id", "text", "code", "test_list"} - set(row)
    if missing:
        raise ImporterError(f"{where}: missing fields {sorted(missing)}")
    code, tests = str(row["code"]).replace("\r\n", "\n"), list(row["test_list"])
    try:
        defined = _defined_functions(code)
        called = _called_names(tests)
    except SyntaxError as exc:
        raise ImporterError(f"{where}: code or tests do not parse: {exc}") from exc
    entry = next((name for name in called if name in defined), None)
    if entry is None:
        raise ImporterError(f"{where}: no function of `code` is called by `test_list`")
    # The tests call the function by name; bind that name to the candidate under test.
    setup = str(row.get("test_setup_code") or "")
    check = f"{entry} = candidate\n{setup}\n" + "\n".join(tests) + "\n"
    # Without a literal `assert f(...) == ...`, cases are recorded from the check, in the
    # sandbox (base.prepare_tasks).
    cases = cases_from_asserts("\n".join(tests), callee=entry)
    examples = "\n".join(tests)
    prompt = (
        f"{row['text']}\nWrite it as a Python function named `{entry}`. "
        f"Your code should pass these tests:\n\n{examples}\n"
    )
    return ImportedTask(
        id=safe_id(f"{prefix}{row['task_id']}"),
        source=str(row["task_id"]),
        prompt=prompt,
        entry_point=entry,
        reference=tidy(code),
        tests=cases,
        check=check,
        workload_calls=calls_from_cases(cases) if cases else [],
        min_time_s=min_time_s,
    )


def read(args: argparse.Namespace) -> Iterator[ImportedTask]:
    path: Path = args.input
    if not path.is_file():
        raise ImporterError(f"{path}: no such file")
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ImporterError(f"{path}:{lineno}: not JSON: {exc}") from exc
            yield convert(row, f"{path}:{lineno}", args.prefix, args.min_time_s)
