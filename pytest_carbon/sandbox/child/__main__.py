"""The child's entry point: ``python -I child.pyz CTL_OUT_FD CTL_IN_FD``.

It reads the job from ``job.json`` in its working directory and removes the file, reads
what it needs of its own file (the zygote's program, its sources for tracebacks) while
that file is still visible, applies containment, then runs the job's mode.
"""

from __future__ import annotations

import json
import linecache
import os
import sys
import types
from typing import Any

from .bench import run_bench, worker_program
from .containment import contain, harden
from .program import run_checker, run_program
from .protocol import connect, flush_and_exit, send
from .verify import run_check, run_verify

USAGE = "usage: python -I child.pyz CTL_OUT_FD CTL_IN_FD (started by pytest-carbon's sandbox)"


def _cache_sources() -> None:
    """Put the source of every module of this package in linecache, under the file name
    its code carries, so that tracebacks show their lines once containment hides the
    file they come from."""
    package = __package__ or __name__.rpartition(".")[0]
    for name, module in list(sys.modules.items()):
        if name != package and not name.startswith(package + "."):
            continue
        names = {
            value.__code__.co_filename
            for value in vars(module).values()
            if isinstance(value, types.FunctionType) and value.__module__ == name
        }
        for filename in names or {getattr(module, "__file__", None) or ""}:
            if filename:
                linecache.getlines(filename, module.__dict__)


def main() -> None:
    args = sys.argv[1:]
    if len(args) != 2 or not all(a.isdigit() for a in args):
        sys.stderr.write(USAGE + "\n")
        sys.exit(2)
    connect(int(args[0]), int(args[1]))
    with open("job.json") as f:
        job = json.load(f)
    os.remove("job.json")
    # What we need of our own file, before the tmpfs hides it.
    zygote_program = worker_program()
    _cache_sources()
    notes: dict[str, Any] = {}
    if job.get("contain"):
        try:
            notes = contain(job)
        except BaseException as exc:
            send({"type": "setup_error", "error": f"{type(exc).__name__}: {exc}"})
            flush_and_exit(2)
    notes.update(harden())
    send({"type": "setup", **notes})
    if job["mode"] == "probe":
        send({"type": "result", "version": sys.version, "uid": os.getuid()})
    elif job["mode"] == "verify":
        run_verify(job)
    elif job["mode"] == "check":
        run_check(job)
    elif job["mode"] == "program":
        run_program(job)
    elif job["mode"] == "checker":
        run_checker(job)
    else:
        run_bench(job, zygote_program)
    flush_and_exit(0)


if __name__ == "__main__":
    main()
