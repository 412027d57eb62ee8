#!/usr/bin/env python
"""Check a prompt suite: every solution passes its tests, and naive variants cost more.

A developer script, independent of the plugin: it loads every YAML file with PyYAML, runs
the reference and each variant in a fresh ``python -I`` subprocess against the task's
``tests`` and ``check``, then times the ``workload`` there (CPU time of the child from
``resource.getrusage``, one warm-up call, repeated until ``min_time_s``)::

    python tools/check_suite.py                  # every file under prompts/
    python tools/check_suite.py prompts/strings  # one folder, or files
    python tools/check_suite.py --jobs 2 --no-time

It prints one row per task: reference s/call, naive s/call, their ratio, and PASS/FAIL.
The exit status is 1 when any solution fails or a variant is cheaper than ``--min-ratio``
times the reference. ``tests/test_suite.py`` reuses :func:`run_solution`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MIN_TIME_S = 0.2
DEFAULT_TIMEOUT_S = 30.0

# Runs in the child (python -I -c CHILD). It reads one JSON job on stdin and writes one JSON
# result on stdout. Kept free of anything but the standard library so the child starts fast.
CHILD = r"""
import json, math, resource, sys, traceback

def cpu_s():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime

def norm(v):
    # Test values are JSON-like data: a tuple compares equal to a list.
    if isinstance(v, (list, tuple)):
        return [norm(x) for x in v]
    if isinstance(v, dict):
        return {k: norm(x) for k, x in v.items()}
    return v

def same(got, want, tol):
    if tol is not None and isinstance(got, (int, float)) and isinstance(want, (int, float)) \
            and not isinstance(got, bool):
        return math.isclose(got, want, rel_tol=0.0, abs_tol=tol)
    if tol is not None and isinstance(got, list) and isinstance(want, list):
        return len(got) == len(want) and all(same(g, w, tol) for g, w in zip(got, want))
    return got == want

def main():
    job = json.load(sys.stdin)
    out = {"ok": False, "error": None, "cpu_s_per_call": None, "per_call_s": [], "calls": 0}
    try:
        ns = {"__name__": "__candidate__"}
        exec(compile(job["code"], "<solution>", "exec"), ns)
        fn = ns[job["entry_point"]]
        for i, case in enumerate(job["tests"]):
            got = norm(fn(*case.get("args", []), **case.get("kwargs", {})))
            if not same(got, norm(case["expect"]), case.get("tol")):
                out["error"] = (f"case {i}: args={case.get('args')!r} "
                                f"expected {case['expect']!r}, got {got!r}")[:600]
                return out
        if job.get("check"):
            # Like the plugin's sandbox: the check sees the solution's globals plus
            # `candidate`, and a `def check(candidate)` it defines is called.
            cns = dict(ns, candidate=fn)
            exec(compile(job["check"], "<check>", "exec"), cns)
            checker = cns.get("check")
            if callable(checker) and checker is not ns.get("check"):
                checker(fn)
        wl = job.get("workload")
        if wl is not None and job.get("time", True):
            args, kwargs = wl.get("args", []), wl.get("kwargs", {})
            if job.get("warmup", True):
                fn(*args, **kwargs)  # warm-up: caches, lazy imports, allocator
            wanted = job.get("min_time_s")
            min_time_s = float(wl.get("min_time_s", 0.2) if wanted is None else wanted)
            spent_s, calls, per_call = 0.0, 0, []
            start = cpu_s()
            while calls < job.get("min_calls", 1) or spent_s < min_time_s:
                before = cpu_s()
                fn(*args, **kwargs)
                per_call.append(cpu_s() - before)
                calls += 1
                spent_s = cpu_s() - start
            out["cpu_s_per_call"] = spent_s / calls
            out["per_call_s"] = per_call[:1000]
            out["calls"] = calls
        out["ok"] = True
    except BaseException:
        out["error"] = traceback.format_exc(limit=4)[-1500:]
    return out

print("\x00RESULT" + json.dumps(main()))
"""


@dataclass
class Task:
    """One task of a prompt file, as plain data."""

    path: Path
    id: str
    entry_point: str
    reference: str
    variants: dict[str, str]
    tests: list[dict[str, Any]]
    check: str | None
    workload: dict[str, Any] | None
    timeout_s: float


@dataclass
class Result:
    """What one solution did in its child process."""

    ok: bool
    error: str | None = None
    cpu_s_per_call: float | None = None
    calls: int = 0
    per_call_s: list[float] = field(default_factory=list)


def iter_files(paths: list[str]) -> Iterator[Path]:
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            yield from sorted(q for q in p.rglob("*.y*ml") if q.suffix in (".yaml", ".yml"))
        else:
            yield p


def load_tasks(path: Path) -> list[Task]:
    """Read one prompt file (one task, or a ``tasks:`` list) into Task objects."""
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    raw = data["tasks"] if isinstance(data, dict) and "tasks" in data else [data]
    tasks = []
    for entry in raw:
        tasks.append(
            Task(
                path=path,
                id=str(entry.get("id", path.stem)),
                entry_point=entry["entry_point"],
                reference=entry["reference"],
                variants=dict(entry.get("variants") or {}),
                tests=list(entry.get("tests") or []),
                check=entry.get("check"),
                workload=entry.get("workload"),
                timeout_s=float(entry.get("timeout_s", DEFAULT_TIMEOUT_S)),
            )
        )
    return tasks


def run_solution(
    task: Task,
    code: str,
    *,
    time_workload: bool = True,
    min_calls: int = 1,
    min_time_s: float | None = None,
    warmup: bool = True,
) -> Result:
    """Verify ``code`` against the task, then time its workload, in a fresh ``python -I``.

    The workload runs once to warm up (unless ``warmup`` is false), then repeats until
    ``min_time_s`` (default: the task's) of CPU time and at least ``min_calls`` calls.
    """
    job = {
        "code": code,
        "entry_point": task.entry_point,
        "tests": task.tests,
        "check": task.check,
        "workload": task.workload,
        "time": time_workload,
        "min_calls": min_calls,
        "min_time_s": min_time_s,
        "warmup": warmup,
    }
    try:
        proc = subprocess.run(
            [sys.executable, "-I", "-c", CHILD],
            input=json.dumps(job),
            capture_output=True,
            text=True,
            timeout=task.timeout_s * 4,
        )
    except subprocess.TimeoutExpired:
        return Result(ok=False, error=f"timed out after {task.timeout_s * 4:.0f} s")
    marker = proc.stdout.rfind("\x00RESULT")
    if marker < 0:
        return Result(ok=False, error=f"child exited {proc.returncode}: {proc.stderr[-800:]}")
    raw = json.loads(proc.stdout[marker + len("\x00RESULT") :])
    return Result(
        ok=raw["ok"],
        error=raw["error"],
        cpu_s_per_call=raw["cpu_s_per_call"],
        calls=raw["calls"],
        per_call_s=raw["per_call_s"],
    )


def _fmt(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.4f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", default=[str(ROOT / "prompts")])
    parser.add_argument("--jobs", type=int, default=1, help="parallel children (default 1)")
    parser.add_argument("--no-time", action="store_true", help="verify only, skip workloads")
    parser.add_argument("--variant", default="naive", help="variant to compare (default naive)")
    parser.add_argument("--min-ratio", type=float, default=3.0, help="default 3.0")
    args = parser.parse_args(argv)

    tasks = [t for f in iter_files(args.paths) for t in load_tasks(f)]
    jobs = [(t, "reference", t.reference) for t in tasks]
    jobs += [(t, name, code) for t in tasks for name, code in t.variants.items()]
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(
            pool.map(lambda j: run_solution(j[0], j[2], time_workload=not args.no_time), jobs)
        )
    by_key = {(id(t), name): r for (t, name, _), r in zip(jobs, results, strict=True)}

    failed = 0
    header = f"{'task':<34} {'ref s/call':>11} {'naive s/call':>13} {'ratio':>7}  result"
    print(header)
    print("-" * len(header))
    total_ref_s = 0.0
    for t in tasks:
        ref = by_key[(id(t), "reference")]
        var = by_key.get((id(t), args.variant))
        problems = [f"{n}: {r.error}" for (k, n), r in by_key.items() if k == id(t) and not r.ok]
        ratio = None
        if ref.cpu_s_per_call and var is not None and var.cpu_s_per_call:
            ratio = var.cpu_s_per_call / ref.cpu_s_per_call
            if ratio < args.min_ratio:
                problems.append(f"{args.variant} only {ratio:.1f}x the reference")
        if ref.cpu_s_per_call:
            total_ref_s += ref.cpu_s_per_call
        status = "PASS" if not problems else "FAIL"
        failed += bool(problems)
        name = f"{t.path.parent.name}/{t.id}"
        print(
            f"{name:<34} {_fmt(ref.cpu_s_per_call):>11} "
            f"{_fmt(var.cpu_s_per_call if var else None):>13} "
            f"{'-' if ratio is None else f'{ratio:.1f}x':>7}  {status}"
        )
        for p in problems:
            print(f"    {p}")
    print(f"\n{len(tasks)} tasks, {failed} failed; reference CPU s/call summed: {total_ref_s:.2f}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
