"""What ``--carbon`` costs on trivial tests: the ratio to plain pytest and the cost per test.

Issue 23's targets: at most 1.05x plain pytest on 2,000 trivial tests (median of paired
runs) and under 50 us per test (the slope between 200 and 2,000 tests, so that start-up
costs paid once are not counted per test). Nothing in the summary may grow faster than
linearly with the number of tests: the slope is taken between the two sizes, and the
summary's own share is timed separately at 2,000 and 20,000 records.

Run: ``pytest benchmarks/bench_overhead.py --benchmark-only -p no:cacheprovider -s``
(``BENCH_PAIRS=N`` for more pairs; 9 by default). Each pair runs the same suite in-process
(interpreter start-up stays out), plain and ``--carbon``, the order alternating between
pairs (AB, BA, ...), each run from a collected heap, and times both by wall clock and by
this process's CPU time: on a shared machine the CPU time is the steadier figure (a
neighbour stretches wall time, not our CPU seconds). pytester restores ``sys.modules``
after each run, so each ``--carbon`` run imports the plugin's lazily imported modules
again, as a fresh ``pytest --carbon`` process does: run it with bytecode caching on
(``PYTHONDONTWRITEBYTECODE`` unset), as an installed package has it, or each of those
imports compiles its module from source.

Figures are printed and kept in the benchmark's ``extra_info``; the targets are checked
and reported, never asserted in the test suite (a busy machine would cross them).

``test_carbon_overhead_in_instructions`` counts instructions instead of seconds: each
side runs as its own ``pytest`` process under valgrind (cachegrind, no cache simulation,
``PYTHONHASHSEED=0``, bytecode cached by a first run), 200 and 2,000 trivial tests, and
the ratio and slope are taken from the counts. On a shared machine that is the figure
that does not move with the neighbours' load (run it twice: the counts agree to a few
parts in a thousand); it leaves out the kernel's time in system calls (a window edge
makes 2, ``clock_gettime`` of the process's CPU clock and ``getrusage`` of its children,
and a ``pread`` of its RSS at most once a millisecond), which the CPU-time figures include,
and it counts instructions, not how long they take: start-up code that runs once (imports)
runs at fewer instructions per cycle than pytest's hot loop, so the fixed part weighs more
in seconds than in instructions. Skipped without valgrind; it takes about 4 minutes.
"""

from __future__ import annotations

import gc
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

PAIRS = int(os.environ.get("BENCH_PAIRS", "9"))
SIZES = (200, 2000)
RATIO_TARGET = 1.05
PER_TEST_TARGET_US = 50.0
ARGS = ("-q", "-p", "no:cacheprovider", "-p", "no:xdist", "-p", "no:randomly", "-p", "no:benchmark")


def _suite(root: Path, n: int) -> Path:
    d = root / f"trivial_{n}"
    d.mkdir()
    (d / f"test_trivial_{n}.py").write_text(
        "".join(f"def test_{i}():\n    pass\n\n" for i in range(n))
    )
    return d


def _timed(pytester: pytest.Pytester, path: Path, *extra: str) -> tuple[float, float]:
    # Each run starts from a collected heap: garbage left by the previous run would be
    # collected during this one, and charged to whichever side came second.
    gc.collect()
    w0, c0 = time.perf_counter(), time.process_time()
    result = pytester.runpytest_inprocess(*ARGS, str(path), *extra)
    w1, c1 = time.perf_counter(), time.process_time()
    assert result.ret == 0
    return w1 - w0, c1 - c0


def measure_pairs(pytester: pytest.Pytester, pairs: int) -> dict[str, Any]:
    suites = {n: _suite(pytester.path, n) for n in SIZES}
    # One warm-up of each, so the first pair does not pay the imports.
    for path in suites.values():
        _timed(pytester, path)
        _timed(pytester, path, "--carbon", "--carbon-idle=off")
    runs: dict[tuple[int, str], list[tuple[float, float]]] = {}
    for i in range(pairs):
        for n, path in suites.items():
            # Alternate which side runs first (AB, BA, ...): a drift in the machine's load
            # or in the process's heap then falls on both sides alike.
            order = ("plain", "carbon") if i % 2 == 0 else ("carbon", "plain")
            for side in order:
                extra = ("--carbon", "--carbon-idle=off") if side == "carbon" else ()
                runs.setdefault((n, side), []).append(_timed(pytester, path, *extra))
    out: dict[str, Any] = {"pairs": pairs}
    for i, clock in enumerate(("wall", "cpu")):
        for n in SIZES:
            plain = [r[i] for r in runs[(n, "plain")]]
            carbon = [r[i] for r in runs[(n, "carbon")]]
            out[f"{clock}_ratio_{n}"] = statistics.median(
                c / p for c, p in zip(carbon, plain, strict=True)
            )
            out[f"{clock}_extra_s_{n}"] = statistics.median(
                c - p for c, p in zip(carbon, plain, strict=True)
            )
        # The slope: extra seconds per extra test between the two sizes.
        lo, hi = SIZES
        out[f"{clock}_us_per_test"] = (
            (out[f"{clock}_extra_s_{hi}"] - out[f"{clock}_extra_s_{lo}"]) / (hi - lo) * 1e6
        )
    return out


def summary_cost(records: int) -> float:
    """Seconds to build the terminal table, totals and warning kinds of ``records``."""
    from pytest_carbon.report.terminal import table_lines
    from pytest_carbon.report.totals import compute
    from pytest_carbon.results.caveats import aggregate

    recs = [
        {
            "nodeid": f"t.py::test_{i}[a\\b{i}]",
            "outcome": "passed",
            "energy_j": 0.001 * (i % 97 + 1),
            "components": {"cpu": 0.001, "dram": 0.0001},
            "gco2e_g": 1e-7,
            "duration_s": 0.0001,
            "edp_js": 1e-7,
            "method": "estimated",
            "warnings": [f"window 't.py::test_{i}[a\\\\b{i}]' lasted 0.0{i % 9} ms"],
        }
        for i in range(records)
    ]
    t0 = time.process_time()
    totals = compute(recs)
    table_lines(recs, width=100, limit=20, totals=totals)
    aggregate(recs)
    return time.process_time() - t0


def test_carbon_overhead_on_trivial_tests(benchmark: Any, pytester: pytest.Pytester) -> None:
    figures: dict[str, Any] = {}
    benchmark.pedantic(
        lambda: figures.update(measure_pairs(pytester, PAIRS)), rounds=1, iterations=1
    )
    small, large = summary_cost(2_000), summary_cost(20_000)
    figures["summary_us_per_record_2000"] = small / 2_000 * 1e6
    figures["summary_us_per_record_20000"] = large / 20_000 * 1e6
    figures["targets"] = {
        "ratio_2000": RATIO_TARGET,
        "us_per_test": PER_TEST_TARGET_US,
        "met_cpu": figures["cpu_ratio_2000"] <= RATIO_TARGET
        and figures["cpu_us_per_test"] < PER_TEST_TARGET_US,
    }
    benchmark.extra_info.update(figures)
    print()
    for key, value in figures.items():
        print(f"{key}: {value:.4g}" if isinstance(value, float) else f"{key}: {value}")


def _instructions(path: Path, *extra: str) -> int:
    """User-space instructions of one ``pytest`` process on ``path`` (valgrind)."""
    env = dict(os.environ, PYTHONHASHSEED="0")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    args = [sys.executable, "-m", "pytest", *ARGS, str(path), *extra]
    # A first run writes the bytecode caches (and pytest's rewritten modules).
    subprocess.run(args, env=env, capture_output=True, check=False)
    cmd = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]
    out = subprocess.run([*cmd, *args], env=env, capture_output=True, text=True, check=False)
    pid = re.search(r"==(\d+)== Command:", out.stderr)
    refs = re.search(rf"=={pid.group(1) if pid else ''}== I\s+refs:\s+([\d,]+)", out.stderr)
    if refs is None:
        raise RuntimeError(f"no instruction count from valgrind: {out.stderr[-500:]}")
    return int(refs.group(1).replace(",", ""))


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_carbon_overhead_in_instructions(benchmark: Any, tmp_path: Path) -> None:
    counts: dict[tuple[int, str], int] = {}

    def measure() -> None:
        for n in SIZES:
            path = _suite(tmp_path, n)
            counts[(n, "plain")] = _instructions(path)
            counts[(n, "carbon")] = _instructions(path, "--carbon", "--carbon-idle=off")

    benchmark.pedantic(measure, rounds=1, iterations=1)
    lo, hi = SIZES
    extra = {n: counts[(n, "carbon")] - counts[(n, "plain")] for n in SIZES}
    slope = (extra[hi] - extra[lo]) / (hi - lo)
    figures: dict[str, Any] = {f"{side}_{n}": counts[(n, side)] for (n, side) in counts}
    figures["ratio_2000"] = counts[(hi, "carbon")] / counts[(hi, "plain")]
    figures["extra_per_test"] = slope
    figures["fixed_extra"] = extra[lo] - slope * lo
    figures["plain_per_test"] = (counts[(hi, "plain")] - counts[(lo, "plain")]) / (hi - lo)
    benchmark.extra_info.update(figures)
    print()
    for key, value in figures.items():
        print(f"{key}: {value:.4g}" if isinstance(value, float) else f"{key}: {value}")
