"""CPU time of plain pytest and ``--carbon`` (child rusage), AB/BA pairs, medians.

Usage: ``python tools/ovh.py PYTHON PAIRS [EXTRA ARGS]``: /tmp/triv2 (200 trivial tests)
and /tmp/triv (2,000), each run a separate ``pytest`` process; prints the medians, the
median of the per-pair ratios at 2,000 and the slope between the sizes. On a shared
machine these figures move with the neighbours' load (tools/irefs.py does not).
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys

SMALL, BIG = "/tmp/triv2/test_t.py", "/tmp/triv/test_t.py"


def main(argv: list[str]) -> None:
    py, pairs, extra = argv[0], int(argv[1]), argv[2:]
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)

    def run(path: str, carbon: bool) -> float:
        a = [py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
        a += ["-p", "no:xdist", path]
        if carbon:
            a += ["--carbon", "--carbon-idle=off", *extra]
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(a, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        return (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)

    res: dict[tuple[str, bool], list[float]] = {}
    for i in range(pairs):
        for path in (SMALL, BIG):
            for carbon in (False, True) if i % 2 == 0 else (True, False):
                res.setdefault((path, carbon), []).append(run(path, carbon))
    m = {k: statistics.median(v) for k, v in res.items()}
    print(
        f"plain 200 {m[(SMALL, False)]:.3f} 2000 {m[(BIG, False)]:.3f} | "
        f"carbon 200 {m[(SMALL, True)]:.3f} 2000 {m[(BIG, True)]:.3f}"
    )
    ratios = sorted(c / p for c, p in zip(res[(BIG, True)], res[(BIG, False)], strict=True))
    lo, hi = _median_ci(len(ratios))
    print(
        f"ratio at 2000 (median of pairs): {statistics.median(ratios):.3f} "
        f"(95% interval of the median {ratios[lo]:.3f}-{ratios[hi]:.3f}, {len(ratios)} pairs)"
    )
    slope = (m[(BIG, True)] - m[(SMALL, True)]) - (m[(BIG, False)] - m[(SMALL, False)])
    slope_us = slope / 1800 * 1e6
    fixed_ms = (m[(SMALL, True)] - m[(SMALL, False)]) * 1e3 - slope_us * 200 / 1e3
    print(f"extra per test (slope): {slope_us:.0f} us; fixed extra: {fixed_ms:.0f} ms")


def _median_ci(n: int, level: float = 0.95) -> tuple[int, int]:
    """0-based ranks (lo, hi) of the sorted sample that hold the median with at least
    ``level`` probability (binomial order statistics; the whole range when n is small)."""
    from math import comb

    best = (0, n - 1)
    for k in range(n // 2):
        cover = sum(comb(n, i) for i in range(k + 1, n - k)) / 2**n
        if cover < level:
            break
        best = (k, n - 1 - k)
    return best


if __name__ == "__main__":
    main(sys.argv[1:])
