"""Gamed answers against their honest equivalents, and the A/A spread of the shipped suite.

Run: ``python -m pytest benchmarks/bench_integrity.py -p no:cacheprovider --benchmark-only
-s`` (a few minutes). Each case measures, interleaved with the same loop the prompt items
use (:func:`pytest_carbon.sandbox.measure.compare`), a gaming trick from issue 12 against
the same code without the trick, and prints the paired energy ratio with its 95%
interval: "within the noise of its honest equivalent" means an interval around 1.0, not
the 1e-4 the tricks got before. Tricks that now fail the measurement print how. The A/A
case compares each shipped task's reference with itself (issue 11's target: 1.00 +- 5% for
>= 90% of tasks). Numbers are reported (``extra_info`` and stdout), never asserted: they
are measurements of a shared machine.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_carbon.measure.meter import Meter
from pytest_carbon.sandbox.isolation import SandboxError
from pytest_carbon.sandbox.measure import compare

ROOT = Path(__file__).resolve().parents[1]

HONEST = "def f(n):\n    return sum(i * i for i in range(n))\n"
LIST_HONEST = "def f(xs):\n    t = 0\n    for x in xs:\n        t += x * x\n    return t\n"
N_CALLS = [([20000], {}), ([20001], {})]
LIST_CALLS = [([list(range(20000))], {}), ([list(range(20001))], {})]

CASES: dict[str, tuple[str, str, list[Any]]] = {
    "lru_cache": (
        "import functools\n@functools.lru_cache(maxsize=None)\n" + HONEST,
        HONEST,
        N_CALLS,
    ),
    "module-level dict": (
        "_memo = {}\ndef f(n):\n    if n not in _memo:\n"
        "        _memo[n] = sum(i * i for i in range(n))\n    return _memo[n]\n",
        HONEST,
        N_CALLS,
    ),
    "consumes its input": (
        "def f(xs):\n    t = 0\n    while xs:\n        x = xs.pop()\n        t += x * x\n"
        "    return t\n",
        LIST_HONEST,
        LIST_CALLS,
    ),
    "long-lived forked worker": (
        "import os\nr1, w1 = os.pipe()\nr2, w2 = os.pipe()\nif os.fork() == 0:\n"
        "    while True:\n        n = int(os.read(r1, 64))\n"
        "        os.write(w2, str(sum(i * i for i in range(n))).encode())\n"
        "def f(n):\n    os.write(w1, str(n).encode())\n    return int(os.read(r2, 64))\n",
        HONEST,
        N_CALLS,
    ),
    "fork per call, SIGCHLD ignored": (
        "import os, signal\ndef f(n):\n    signal.signal(signal.SIGCHLD, signal.SIG_IGN)\n"
        "    if os.fork() == 0:\n        sum(i * i for i in range(n))\n        os._exit(0)\n"
        "    return sum(i * i for i in range(n))\n",
        HONEST,
        N_CALLS,
    ),
    "detects the workload by frame": (
        "import inspect\ndef f(n):\n"
        "    if any(fr.function == 'worker_round' for fr in inspect.stack()):\n        return 0\n"
        "    return sum(i * i for i in range(n))\n",
        HONEST,
        N_CALLS,
    ),
    "patches time.perf_counter": (
        "import time\ntime.perf_counter = lambda: 0.0\n" + HONEST,
        HONEST,
        N_CALLS,
    ),
}


def _run(code: str, reference: str, calls: list[Any]) -> dict[str, Any]:
    with Meter() as meter:
        t0 = time.perf_counter()
        try:
            c = compare(
                code,
                reference,
                "f",
                calls,
                meter=meter,
                key="bench",
                precision=0.05,
                max_time_s=10,
                timeout_s=20,
            )
        except SandboxError as exc:
            return {"outcome": f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"}
        assert c.energy is not None
        return {
            "outcome": "measured",
            "ratio": c.energy.ratio,
            "low": c.energy.low,
            "high": c.energy.high,
            "pairs": c.energy.pairs,
            "describe": c.energy.describe("the honest code"),
            "seconds": time.perf_counter() - t0,
        }


@pytest.mark.parametrize("name", list(CASES))
def test_gaming_trick_against_its_honest_equivalent(benchmark: Any, name: str) -> None:
    code, reference, calls = CASES[name]
    out = benchmark.pedantic(_run, args=(code, reference, calls), rounds=1, iterations=1)
    benchmark.extra_info.update(out)
    print(f"\n{name}: {out.get('describe') or out['outcome']}")


def _shipped_tasks() -> list[Any]:
    from pytest_carbon.prompts.spec import load

    tasks = []
    for path in sorted((ROOT / "prompts").rglob("*.yaml")):
        tasks.extend(load(path))
    return tasks


def test_aa_spread_of_the_shipped_suite(benchmark: Any) -> None:
    """Each task's reference against itself: the spread of the ratio, and the time per item."""
    from pytest_carbon.sandbox.measure import workload_calls

    def run() -> dict[str, Any]:
        ratios, seconds, reached = [], [], 0
        with Meter() as meter:
            for task in _shipped_tasks():
                t0 = time.perf_counter()
                c = compare(
                    task.reference,
                    task.reference,
                    task.entry_point,
                    workload_calls(task.workload),
                    meter=meter,
                    key=task.id,
                    precision=0.05,
                    max_time_s=10,
                    timeout_s=task.timeout_s,
                )
                seconds.append(time.perf_counter() - t0)
                assert c.energy is not None
                ratios.append(c.energy.ratio)
                reached += c.energy.reached(0.05)
        within = sum(1 for r in ratios if abs(r - 1) <= 0.05)
        return {
            "tasks": len(ratios),
            "within_5pct": within,
            "min": min(ratios),
            "max": max(ratios),
            "median": statistics.median(ratios),
            "precision_reached": reached,
            "seconds_per_item_median": statistics.median(seconds),
            "seconds_total": sum(seconds),
        }

    out = benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(out)
    print(f"\nA/A over the shipped suite: {out}")
