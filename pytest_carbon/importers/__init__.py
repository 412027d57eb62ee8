"""``pytest-carbon import SOURCE DEST/``: write a public benchmark as prompt YAML files.

Each source is one module in this package (see :mod:`.base` for the contract); add it to
:data:`SOURCES` to make it available.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

#: source name -> module (imported only when chosen)
SOURCES: dict[str, str] = {
    "humaneval": "pytest_carbon.importers.humaneval",
    "jsonl": "pytest_carbon.importers.jsonl",
    "effibench": "pytest_carbon.importers.effibench",
    "mercury": "pytest_carbon.importers.mercury",
    "evalperf": "pytest_carbon.importers.evalperf",
    "evalplus": "pytest_carbon.importers.evalplus",
}


#: Sources read from a file the user downloaded: ``import SOURCE FILE [DEST]`` (DEST
#: defaults to ``prompts/SOURCE``); ``import SOURCE DEST --input FILE`` works too.
FILE_SOURCES = frozenset({"effibench", "mercury", "evalperf", "evalplus"})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pytest-carbon import",
        description="Import a public code benchmark as prompt YAML files (one per task).",
    )
    sub = parser.add_subparsers(dest="source", required=True, metavar="SOURCE")
    for name, module_name in SOURCES.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        if name in FILE_SOURCES:
            p.add_argument(
                "first",
                type=Path,
                metavar="FILE",
                help="the downloaded file to import (or DEST, when --input names the file)",
            )
            p.add_argument(
                "dest",
                type=Path,
                nargs="?",
                metavar="DEST",
                help=f"folder for the YAML files (default prompts/{name})",
            )
        else:
            p.add_argument("dest", type=Path, metavar="DEST", help="folder for the YAML files")
        p.add_argument("--force", action="store_true", help="overwrite existing files")
        p.add_argument(
            "--min-time-s",
            type=float,
            default=0.05,
            help="workload.min_time_s written to every task (default 0.05)",
        )
        p.add_argument(
            "--jobs",
            type=int,
            default=2,
            help="references verified in the sandbox at once (default 2)",
        )
        module.add_arguments(p)
    return parser


def main(argv: list[str]) -> int:
    from pytest_carbon.importers.base import ImporterError, prepare_tasks, write_tasks
    from pytest_carbon.sandbox.isolation import SandboxError

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.source in FILE_SOURCES:
        if args.input is None:  # import SOURCE FILE [DEST]
            args.input = args.first
            args.dest = args.dest or Path("prompts") / args.source
        elif args.dest is not None:
            parser.error(f"import {args.source}: give FILE [DEST], or DEST --input FILE")
        else:  # import SOURCE DEST --input FILE
            args.dest = args.first
    module = importlib.import_module(SOURCES[args.source])
    try:
        # Every reference is run against its own tests and check in the sandbox (nothing
        # of the source runs on the host); a task whose reference fails is not written.
        tasks, skipped = prepare_tasks(module.read(args), jobs=args.jobs)
        paths = write_tasks(tasks, args.dest, force=args.force)
    except (ImporterError, SandboxError) as exc:
        print(f"pytest-carbon import {args.source}: {exc}", file=sys.stderr)
        return 1
    for task, reason in skipped:
        print(f"skipped {task.source or task.id}: {reason}", file=sys.stderr)
    print(f"wrote {len(paths)} task(s) to {args.dest}")
    if skipped:
        print(f"skipped {len(skipped)} task(s) whose reference fails its own tests")
    if paths:
        import shlex

        # The YAML files declare the prompt schema, so naming the folder collects them.
        print(f"run them with: pytest {shlex.quote(str(args.dest))} --carbon")
    return 0
