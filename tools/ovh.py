"""CPU time of plain pytest and ``--carbon`` (child rusage), in pairs, with intervals.

Usage: ``python tools/ovh.py PYTHON PAIRS [EXTRA ARGS]``. Each iteration runs, as
separate ``pytest`` processes, a file of 2,000 trivial tests and one of 200, each plain
and with ``--carbon --carbon-idle=off`` (the order of the two sides alternates: AB, BA,
...). The files are written to /tmp/triv and /tmp/triv2 when missing, and the runs start
in /tmp, outside any project, so that pytest's directory walk offers the plugin nothing
else. ``TREE=DIR`` runs the pytest-carbon of another checkout (a worktree of a commit):
it goes first on ``PYTHONPATH``. Prints:

- the median of the per-pair ratios at 2,000 tests, with its 95% interval (order
  statistics; the ratio of the medians beside it);
- the extra per test: per iteration, (carbon - plain at 2,000) - (carbon - plain at
  200), over 1,800 tests; the median over iterations, with its interval;
- the extra at 200 tests (mostly the fixed part), median of pairs with its interval.

On a shared machine a single run's CPU time moves by about +-10%: each figure comes with
its interval, and tools/irefs.py (instructions) does not move.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
from math import comb
from pathlib import Path

SMALL, BIG = "/tmp/triv2/test_t.py", "/tmp/triv/test_t.py"


def _write_suites() -> None:
    for path, n in ((SMALL, 200), (BIG, 2000)):
        p = Path(path)
        if not p.exists():
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text("".join(f"def test_{i}():\n    pass\n\n\n" for i in range(n)))


def main(argv: list[str]) -> None:
    py, pairs, extra = os.path.abspath(argv[0]), int(argv[1]), argv[2:]
    _write_suites()
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if os.environ.get("TREE"):
        env["PYTHONPATH"] = os.environ["TREE"]

    def run(path: str, carbon: bool) -> float:
        a = [py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
        a += ["-p", "no:xdist", path]
        if carbon:
            a += ["--carbon", "--carbon-idle=off", *extra]
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(
            a, env=env, cwd="/tmp", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            check=True,
        )  # fmt: skip
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        return (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)

    res: dict[tuple[str, bool], list[float]] = {}
    for i in range(pairs):
        for path in (BIG, SMALL):
            for carbon in (False, True) if i % 2 == 0 else (True, False):
                res.setdefault((path, carbon), []).append(run(path, carbon))
    m = {k: statistics.median(v) for k, v in res.items()}
    print(
        f"plain 200 {m[(SMALL, False)]:.3f} 2000 {m[(BIG, False)]:.3f} | "
        f"carbon 200 {m[(SMALL, True)]:.3f} 2000 {m[(BIG, True)]:.3f} (s, medians)"
    )
    ratios = [c / p for c, p in zip(res[(BIG, True)], res[(BIG, False)], strict=True)]
    med, lo, hi = _median_ci(ratios)
    print(
        f"ratio at 2000 (median of {pairs} pairs): {med:.3f} (95% interval {lo:.3f}-{hi:.3f}; "
        f"ratio of the medians {m[(BIG, True)] / m[(BIG, False)]:.3f})"
    )
    small = [c - p for c, p in zip(res[(SMALL, True)], res[(SMALL, False)], strict=True)]
    big = [c - p for c, p in zip(res[(BIG, True)], res[(BIG, False)], strict=True)]
    slopes = [(b - s) / 1800 * 1e6 for b, s in zip(big, small, strict=True)]
    med, lo, hi = _median_ci(slopes)
    print(f"extra per test (slope, median of iterations): {med:.0f} us ({lo:.0f}-{hi:.0f})")
    med, lo, hi = (x * 1e3 for x in _median_ci(small))
    print(f"extra at 200 tests (median of pairs): {med:.0f} ms ({lo:.0f}-{hi:.0f})")


def _median_ci(values: list[float], level: float = 0.95) -> tuple[float, float, float]:
    """The median and the order statistics around it that hold the median with at least
    ``level`` probability (binomial; the whole range when there are few values)."""
    v = sorted(values)
    n = len(v)
    lo, hi = 0, n - 1
    for k in range(n // 2):
        cover = sum(comb(n, i) for i in range(k + 1, n - k)) / 2**n
        if cover < level:
            break
        lo, hi = k, n - 1 - k
    return statistics.median(v), v[lo], v[hi]


if __name__ == "__main__":
    main(sys.argv[1:])
