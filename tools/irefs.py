"""Instructions (valgrind cachegrind, user space) of plain pytest and ``--carbon``.

Deterministic where CPU time is not (a shared machine): ``PYTHONHASHSEED=0``, bytecode
cached by a first run of each side; the kernel's time in system calls is not counted.
Each process starts in /tmp, as in tools/ovh.py: outside any project (started in a
checkout, the same suite counted about 30 M instructions more on the ``--carbon`` side
and 100 M fewer on the plain one: the working directory moves pytest's rootdir and the
node ids, so compare counts taken from the same place only).

Usage: ``python tools/irefs.py PYTHON SUITE [SUITE] [-- EXTRA ARGS]``. With two suites of
n1 < n2 trivial tests, it prints the slope (extra instructions per test) and the fixed
extra. ``IREFS_PRE="-p NAME"`` adds plugins to both sides (a plugin that disables the gc
or the summary, on ``PYTHONPATH``, for a breakdown).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

BASE = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", "-p", "no:xdist"]
CARBON = ["--carbon", "--carbon-idle=off"]


def main(argv: list[str]) -> None:
    py, rest = argv[0], argv[1:]
    if os.sep in py:  # the processes start in /tmp: a relative path would not be found
        py = os.path.abspath(py)
    extra = rest[rest.index("--") + 1 :] if "--" in rest else []
    suites = rest[: rest.index("--")] if "--" in rest else rest
    pre = os.environ.get("IREFS_PRE", "").split()
    env = dict(os.environ, PYTHONHASHSEED="0")
    env.pop("PYTHONDONTWRITEBYTECODE", None)

    def args(path: str, carbon: bool) -> list[str]:
        return [py, *BASE, *pre, path, *(CARBON + extra if carbon else [])]

    def irefs(path: str, carbon: bool) -> int:
        cmd = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]
        r = subprocess.run(
            [*cmd, *args(path, carbon)], env=env, cwd="/tmp", capture_output=True, text=True
        )
        pid = re.search(r"==(\d+)== Command:", r.stderr)
        m = re.search(rf"=={pid.group(1) if pid else ''}== I\s+refs:\s+([\d,]+)", r.stderr)
        if m is None:
            raise SystemExit(f"no count from valgrind: {r.stderr[-400:]}")
        return int(m.group(1).replace(",", ""))

    for path in suites:  # warm-up: bytecode caches written before anything is counted
        for carbon in (False, True):
            subprocess.run(args(path, carbon), env=env, cwd="/tmp", capture_output=True)
    out: dict[int, tuple[int, int]] = {}
    for path in suites:
        with open(path) as f:
            n = f.read().count("def test_")
        p, c = irefs(path, False), irefs(path, True)
        out[n] = (p, c)
        print(
            f"{n} tests: plain {p / 1e6:.1f} M, carbon {c / 1e6:.1f} M instructions, "
            f"ratio {c / p:.3f}, extra {(c - p) / 1e6:.1f} M"
        )
    if len(out) == 2:
        (ns, (ps, cs)), (nb, (pb, cb)) = sorted(out.items())
        slope = ((cb - pb) - (cs - ps)) / (nb - ns)
        print(
            f"slope {slope:.0f} instructions/test; fixed {((cs - ps) - slope * ns) / 1e6:.1f} M;"
            f" plain per test {(pb - ps) / (nb - ns):.0f}"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
