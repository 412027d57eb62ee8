#!/usr/bin/env python
"""Check a prompt suite: every solution passes its tests, agrees with the reference on every
workload call, naive variants cost more, and no naive call comes near its timeout.

A developer script: it loads every YAML file with PyYAML and runs the reference and each
variant in a fresh ``python -I`` subprocess. There the solution is run on the task's
``tests`` and ``check``, each of them timed (the test results are judged here, with the
plugin's one equality rule, :mod:`pytest_carbon.sandbox.equality`); then each workload
call is run once, timed on its own and its result kept; then (references only) the calls are
cycled through, after one warm-up call, until ``min_time_s`` of CPU time for a stable
per-call figure. Times are the child's CPU time from ``resource.getrusage``::

    python tools/check_suite.py                  # every file under prompts/
    python tools/check_suite.py prompts/strings  # one folder, or files
    python tools/check_suite.py --jobs 2 --no-time

Run it with a busy neighbour to see the timeout margins a loaded CI runner leaves::

    python3 -c 'while True: pass' & python tools/check_suite.py; kill %1

One row per task: the number of workload calls, the reference's CPU time for one round
(every call once), reference and naive s/call, their ratio, the worst naive call as a
fraction of the task's ``timeout_s`` (every test case, the check, and every workload call,
each timed alone), and PASS/FAIL. The exit status is 1 when any solution fails, a variant's
result differs from the reference's on a workload call, a variant is cheaper than
``--min-ratio`` times the reference, a naive call takes more than ``--max-timeout-fraction``
of its timeout, or a reference round is outside ``--round-s``.
``tests/test_suite.py`` reuses :func:`run_solution`, :func:`same` and :func:`workload_calls`.

``kind: program`` tasks (stdin/stdout, any language of ``pytest_carbon/sandbox/languages.py``)
are compiled with their toolchain's command in a temporary directory and run as plain
processes (not in the sandbox: a developer script), one per input, each timed by its own
CPU time (``wait4``); their results are the normalised stdouts. A language whose toolchain
is missing is reported as SKIP, with the reason, and fails nothing.
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

from pytest_carbon.sandbox.equality import difference

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MIN_TIME_S = 0.2
DEFAULT_TIMEOUT_S = 30.0
#: A naive call may take at most this fraction of its item's timeout (issue 13): the item
#: also verifies, warms up and repeats, and a loaded runner stretches every call.
MAX_TIMEOUT_FRACTION = 0.25
#: One reference round (every workload call once), in CPU seconds: long enough that the
#: harness's per-call overhead is noise, short enough that min_time_s repeats it.
ROUND_S = (0.00025, 1.0)

# Runs in the child (python -I -c CHILD). It reads one JSON job on stdin and writes one JSON
# result on stdout. Kept free of anything but the standard library so the child starts fast.
CHILD = r"""
import json, math, resource, sys, time, traceback

def cpu_s():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime

def norm(v):
    # Results cross as JSON; the one rule compares a tuple and a list as sequences.
    if isinstance(v, (list, tuple)):
        return [norm(x) for x in v]
    if isinstance(v, dict):
        return {k: norm(x) for k, x in v.items()}
    return v

WALL = []  # wall-clock seconds of every timed call, in order

def timed(fn, call):
    before, wall = cpu_s(), time.perf_counter()
    got = fn(*call.get("args", []), **call.get("kwargs", {}))
    WALL.append(time.perf_counter() - wall)
    return got, cpu_s() - before

def main():
    job = json.load(sys.stdin)
    out = {"ok": False, "error": None, "cpu_s_per_call": None, "per_call_s": [], "calls": 0,
           "case_s": [], "check_s": None, "call_s": [], "results": [], "worst_wall_s": 0.0,
           "case_results": []}
    try:
        ns = {"__name__": "__candidate__"}
        exec(compile(job["code"], "<solution>", "exec"), ns)
        name, dot, method = job["entry_point"].partition(".")
        if dot:  # Class.method: a fresh instance for every call, as the sandbox does
            cls = ns[name]
            fn = lambda *a, **k: getattr(cls(), method)(*a, **k)
        else:
            fn = ns[name]
        for case in job["tests"]:
            # Judged by the parent, under the plugin's one equality rule.
            got, spent = timed(fn, case)
            out["case_s"].append(spent)
            out["case_results"].append(norm(got))
        if job.get("check"):
            # Like the plugin's sandbox: the check sees the solution's globals plus
            # `candidate`, and a `def check(candidate)` it defines is called.
            before = cpu_s()
            cns = dict(ns, candidate=fn)
            exec(compile(job["check"], "<check>", "exec"), cns)
            checker = cns.get("check")
            if callable(checker) and checker is not ns.get("check"):
                checker(fn)
            out["check_s"] = cpu_s() - before
        calls = job.get("calls") or []
        if calls and job.get("each", True):
            # Every call once, cold, in order: its cost alone (the timeout margin) and its
            # result (compared with the reference's by the parent).
            for call in calls:
                got, spent = timed(fn, call)
                out["call_s"].append(spent)
                out["results"].append(norm(got))
        if calls and job.get("time", True):
            if job.get("warmup", True):
                timed(fn, calls[0])  # warm-up: caches, lazy imports, allocator
            min_time_s = float(job.get("min_time_s") or 0.0)
            spent_s, made, per_call = 0.0, 0, []
            start = cpu_s()
            while made < job.get("min_calls", 1) or spent_s < min_time_s:
                per_call.append(timed(fn, calls[made % len(calls)])[1])
                made += 1
                spent_s = cpu_s() - start
            out["cpu_s_per_call"] = spent_s / made
            out["per_call_s"] = per_call[:1000]
            out["calls"] = made
        out["worst_wall_s"] = max(WALL, default=0.0)
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
    #: ``kind: program`` tasks: stdin/stdout, compiled and run as plain processes here.
    kind: str = "function"
    language: str = "python"
    checker: str | None = None
    #: Reference's and variants' own languages, where they differ from ``language``.
    languages: dict[str, str] = field(default_factory=dict)

    @property
    def calls(self) -> list[dict[str, Any]]:
        if self.kind == "program":
            stdin = (self.workload or {}).get("stdin") or []
            return [
                {"args": [t], "kwargs": {}} for t in ([stdin] if isinstance(stdin, str) else stdin)
            ]
        return workload_calls(self.workload)

    @property
    def min_time_s(self) -> float:
        return float((self.workload or {}).get("min_time_s", DEFAULT_MIN_TIME_S))

    @property
    def tol(self) -> float | None:
        """The largest test tolerance: workload results are compared with it too."""
        tols = [float(c["tol"]) for c in self.tests if c.get("tol") is not None]
        return max(tols) if tols else None


@dataclass
class Result:
    """What one solution did in its child process."""

    ok: bool
    error: str | None = None
    cpu_s_per_call: float | None = None
    calls: int = 0
    per_call_s: list[float] = field(default_factory=list)
    #: CPU seconds of each test case, of the check, and of each workload call run once.
    case_s: list[float] = field(default_factory=list)
    check_s: float | None = None
    call_s: list[float] = field(default_factory=list)
    #: Each workload call's result, normalised (tuples as lists).
    results: list[Any] = field(default_factory=list)
    #: The longest wall-clock time of any test case or workload call (a loaded machine
    #: stretches it beyond the CPU time; the sandbox's deadline is wall-clock).
    worst_wall_s: float = 0.0

    @property
    def worst_call_s(self) -> float:
        """The longest single call: a test case, the check, or a workload call."""
        return max([*self.case_s, *self.call_s, self.check_s or 0.0], default=0.0)


def workload_calls(workload: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The workload's calls, ``[{"args": [...], "kwargs": {...}}, ...]``, for either form."""
    if not workload:
        return []
    if "calls" in workload:
        return [
            {"args": list(c.get("args") or []), "kwargs": dict(c.get("kwargs") or {})}
            for c in workload["calls"]
        ]
    single = {"args": workload.get("args") or [], "kwargs": workload.get("kwargs") or {}}
    return [{"args": list(single["args"]), "kwargs": dict(single["kwargs"])}]


def same(got: Any, want: Any, tol: float | None) -> bool:
    """Equal under the plugin's one rule (:func:`pytest_carbon.sandbox.equality.equal`)."""
    from pytest_carbon.sandbox.equality import equal

    return equal(got, want, tol=tol)


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
    defaults = data.get("defaults") or {} if isinstance(data, dict) and "tasks" in data else {}
    for entry in raw:
        entry = {**defaults, **entry}
        if entry.get("kind") == "program":
            tasks.append(_program_task(path, entry))
            continue
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


def _code(value: Any, task_language: str) -> tuple[str, str]:
    """A reference or variant: a string, or ``{code, language}``."""
    if isinstance(value, dict):
        return str(value["code"]), str(value.get("language") or task_language)
    return str(value), task_language


def _program_task(path: Path, entry: dict[str, Any]) -> Task:
    from pytest_carbon.sandbox.languages import canonical

    language = canonical(str(entry.get("language") or "python")) or "python"
    reference, ref_lang = _code(entry["reference"], language)
    variants, languages = {}, {"reference": ref_lang}
    for name, value in (entry.get("variants") or {}).items():
        variants[name], languages[name] = _code(value, language)
    return Task(
        path=path,
        id=str(entry.get("id", path.stem)),
        entry_point="",
        reference=reference,
        variants=variants,
        tests=list(entry.get("tests") or []),
        check=None,
        workload=entry.get("workload"),
        timeout_s=float(entry.get("timeout_s", DEFAULT_TIMEOUT_S)),
        kind="program",
        language=language,
        checker=entry.get("checker"),
        languages=languages,
    )


def _run_process(
    argv: list[str], cwd: str, stdin: str, timeout_s: float
) -> tuple[int, str, str, float, float]:
    """(status, stdout, stderr's tail, CPU seconds, wall seconds) of one process. The CPU
    time is the process's own, from ``wait4`` (not this process's children's total, which
    other threads' children share)."""
    import os
    import tempfile
    import time

    with (
        tempfile.TemporaryFile() as fin,
        tempfile.TemporaryFile() as fout,
        tempfile.TemporaryFile() as ferr,
    ):
        fin.write(stdin.encode())
        fin.seek(0)
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, stdin=fin, stdout=fout, stderr=ferr)
        timed_out = False
        while True:
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - t0 > timeout_s:
                proc.kill()
                _, status, ru = os.wait4(proc.pid, 0)
                timed_out = True
                break
            time.sleep(0.002)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        fout.seek(0)
        ferr.seek(0)
        out = fout.read().decode("utf-8", "replace")
        err = ferr.read().decode("utf-8", "replace")[-800:]
    if timed_out:
        err = f"timed out after {timeout_s:g} s"
    return proc.returncode, out, err, ru.ru_utime + ru.ru_stime, wall


def run_program_solution(
    task: Task,
    code: str,
    language: str,
    *,
    time_workload: bool = True,
    each_call: bool = True,
    min_time_s: float | None = None,
) -> Result:
    """A program: compiled (its toolchain's own command, sandbox/languages.py) in a
    temporary directory, its test cases run (stdout normalised, or the task's checker),
    then each workload input run once in its own process, timed by the CPU time the
    process used (its own, from ``wait4``); a
    reference's inputs are then cycled until ``min_time_s``. Results are the normalised
    stdouts."""
    import tempfile

    from pytest_carbon.sandbox.child.program import normalise
    from pytest_carbon.sandbox.languages import toolchain

    tc = toolchain(language)
    if tc.missing:
        return Result(ok=False, error=f"SKIP {tc.language}: {tc.missing}")
    checker = None
    if task.checker:
        namespace: dict[str, Any] = {}
        exec(compile(task.checker, "<checker>", "exec"), namespace)
        checker = namespace["check"]
    with tempfile.TemporaryDirectory(prefix="check-suite-") as tmp:
        Path(tmp, tc.source).write_text(code, encoding="utf-8")
        if tc.compile:
            status, out, err, _, _ = _run_process(list(tc.compile), tmp, "", 300)
            if status != 0:
                return Result(ok=False, error=f"does not compile: {(out + err)[-600:]}")

        def run(stdin: str) -> tuple[str, float, float]:
            status, out, err, cpu, wall = _run_process(list(tc.run), tmp, stdin, task.timeout_s)
            if status != 0:
                raise RuntimeError(f"exit status {status}: {err}")
            return normalise(out), cpu, wall

        case_s, call_s, results, per_call = [], [], [], []
        worst_wall = 0.0
        try:
            for i, case in enumerate(task.tests):
                got, cpu, wall = run(str(case["stdin"]))
                case_s.append(cpu)
                worst_wall = max(worst_wall, wall)
                want = case.get("expect_stdout")
                if want is not None and got != normalise(str(want)):
                    return Result(
                        ok=False,
                        error=f"case {i}: stdout {got[:200]!r} != {normalise(str(want))[:200]!r}",
                    )
                if checker is not None and checker(str(case["stdin"]), got) is False:
                    return Result(ok=False, error=f"case {i}: the checker rejected {got[:200]!r}")
            if each_call:
                for call in task.calls:
                    got, cpu, wall = run(call["args"][0])
                    call_s.append(cpu)
                    results.append(got)
                    worst_wall = max(worst_wall, wall)
            total, n = 0.0, 0
            if time_workload:
                least_s = task.min_time_s if min_time_s is None else min_time_s
                while total < least_s or n < len(task.calls):
                    _, cpu, _ = run(task.calls[n % len(task.calls)]["args"][0])
                    per_call.append(cpu)
                    total += cpu
                    n += 1
        except RuntimeError as exc:
            return Result(ok=False, error=str(exc)[:600])
    return Result(
        ok=True,
        cpu_s_per_call=(total / n) if time_workload and n else None,
        calls=n if time_workload else 0,
        per_call_s=per_call,
        case_s=case_s,
        call_s=call_s,
        results=results,
        worst_wall_s=worst_wall,
    )


def run_solution(
    task: Task,
    code: str,
    *,
    time_workload: bool = True,
    each_call: bool = True,
    min_calls: int = 1,
    min_time_s: float | None = None,
    warmup: bool = True,
    name: str = "reference",
) -> Result:
    """Verify ``code`` against the task, then run its workload, in a fresh ``python -I``
    (a ``kind: program`` task: :func:`run_program_solution`, in ``name``'s language).

    ``each_call``: run every workload call once, timing it and keeping its result.
    ``time_workload``: then cycle through the calls after one warm-up call (unless
    ``warmup`` is false) until ``min_time_s`` (default: the task's) of CPU time and at least
    ``min_calls`` calls, for a per-call mean.
    """
    if task.kind == "program":
        language = task.languages.get(name, task.language)
        return run_program_solution(
            task,
            code,
            language,
            time_workload=time_workload,
            each_call=each_call,
            min_time_s=min_time_s,
        )
    job = {
        "code": code,
        "entry_point": task.entry_point,
        "tests": task.tests,
        "check": task.check,
        "calls": task.calls,
        "each": each_call,
        "time": time_workload,
        "min_calls": min_calls,
        "min_time_s": task.min_time_s if min_time_s is None else min_time_s,
        "warmup": warmup,
    }
    # Generous: the child verifies, runs every call once, then repeats; the per-call limit
    # is what --max-timeout-fraction checks.
    limit_s = task.timeout_s * (4 + len(task.calls))
    try:
        proc = subprocess.run(
            [sys.executable, "-I", "-c", CHILD],
            input=json.dumps(job),
            capture_output=True,
            text=True,
            timeout=limit_s,
        )
    except subprocess.TimeoutExpired:
        return Result(ok=False, error=f"timed out after {limit_s:.0f} s")
    marker = proc.stdout.rfind("\x00RESULT")
    if marker < 0:
        return Result(ok=False, error=f"child exited {proc.returncode}: {proc.stderr[-800:]}")
    raw = json.loads(proc.stdout[marker + len("\x00RESULT") :])
    ok, error = raw["ok"], raw["error"]
    for i, (case, got) in enumerate(zip(task.tests, raw["case_results"], strict=False)):
        found = difference(got, case["expect"], tol=case.get("tol"))
        if found is not None:
            ok, error = False, f"case {i}: args={case.get('args')!r}: {found}"[:600]
            break
    return Result(
        ok=ok,
        error=error,
        cpu_s_per_call=raw["cpu_s_per_call"],
        calls=raw["calls"],
        per_call_s=raw["per_call_s"],
        case_s=raw["case_s"],
        check_s=raw["check_s"],
        call_s=raw["call_s"],
        results=raw["results"],
        worst_wall_s=raw["worst_wall_s"],
    )


def disagreements(task: Task, reference: Result, other: Result) -> list[int]:
    """Indices of the workload calls whose result differs from the reference's."""
    if len(reference.results) != len(other.results):
        return list(range(max(len(reference.results), len(other.results))))
    return [
        i
        for i, (want, got) in enumerate(zip(reference.results, other.results, strict=True))
        if not same(got, want, task.tol)
    ]


def _fmt(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.4f}"


def _round_s(text: str) -> tuple[float, float]:
    low, _, high = text.partition(",")
    return float(low), float(high)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", default=[str(ROOT / "prompts")])
    parser.add_argument("--jobs", type=int, default=1, help="parallel children (default 1)")
    parser.add_argument("--no-time", action="store_true", help="verify only, skip workloads")
    parser.add_argument("--variant", default="naive", help="variant to compare (default naive)")
    parser.add_argument("--min-ratio", type=float, default=3.0, help="default 3.0")
    parser.add_argument(
        "--max-timeout-fraction",
        type=float,
        default=MAX_TIMEOUT_FRACTION,
        help=f"longest naive call / timeout_s (default {MAX_TIMEOUT_FRACTION})",
    )
    parser.add_argument(
        "--round-s",
        type=_round_s,
        default=ROUND_S,
        metavar="LOW,HIGH",
        help="allowed reference CPU seconds per round, every call once "
        f"(default {ROUND_S[0]},{ROUND_S[1]})",
    )
    args = parser.parse_args(argv)

    tasks = [t for f in iter_files(args.paths) for t in load_tasks(f)]
    jobs = [(t, "reference", t.reference) for t in tasks]
    jobs += [(t, name, code) for t in tasks for name, code in t.variants.items()]

    def run(job: tuple[Task, str, str]) -> Result:
        task, name, code = job
        if args.no_time:
            return run_solution(task, code, time_workload=False, each_call=False, name=name)
        # Variants are timed call by call (their cost alone); references are also cycled
        # until min_time_s, since most of their calls are too short to time alone.
        return run_solution(task, code, time_workload=name == "reference", name=name)

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(pool.map(run, jobs))
    by_key = {(id(t), name): r for (t, name, _), r in zip(jobs, results, strict=True)}

    failed = 0
    header = (
        f"{'task':<34} {'calls':>5} {'ref ms/round':>12} {'ref s/call':>10} "
        f"{'naive s/call':>12} {'ratio':>7} {'worst':>6}  result"
    )
    print(header)
    print("-" * len(header))
    total_ref_s = 0.0
    worst: tuple[float, str] = (0.0, "-")
    worst_wall: tuple[float, str] = (0.0, "-")
    for t in tasks:
        ref = by_key[(id(t), "reference")]
        var = by_key.get((id(t), args.variant))
        problems = [f"{n}: {r.error}" for (k, n), r in by_key.items() if k == id(t) and not r.ok]
        skipped = [p for p in problems if ": SKIP " in p]
        if skipped:  # a missing toolchain: the task is skipped, with the reason
            print(f"{t.path.parent.name}/{t.id:<30} SKIP  {skipped[0]}")
            continue
        ratio = fraction = round_s = naive_s = None
        if ref.ok and not args.no_time:
            for (k, name), r in by_key.items():
                if k == id(t) and name != "reference" and r.ok:
                    bad = disagreements(t, ref, r)
                    if bad:
                        shown = ", ".join(f"calls[{i}]" for i in bad[:5])
                        problems.append(f"{name} differs from the reference on {shown}")
        if ref.cpu_s_per_call:
            round_s = ref.cpu_s_per_call * len(t.calls)
            total_ref_s += round_s
            low, high = args.round_s
            if not low <= round_s <= high:
                problems.append(
                    f"reference round {round_s * 1e3:.1f} ms is outside "
                    f"{low * 1e3:g}-{high * 1e3:g} ms"
                )
        if var is not None and var.ok and var.call_s:
            naive_s = sum(var.call_s) / len(var.call_s)
            if ref.cpu_s_per_call:
                ratio = naive_s / ref.cpu_s_per_call
                if ratio < args.min_ratio:
                    problems.append(f"{args.variant} only {ratio:.1f}x the reference")
            fraction = var.worst_call_s / t.timeout_s
            worst = max(worst, (fraction, f"{t.path.parent.name}/{t.id}"))
            wall = var.worst_wall_s / t.timeout_s
            worst_wall = max(worst_wall, (wall, f"{t.path.parent.name}/{t.id}"))
            if fraction > args.max_timeout_fraction:
                problems.append(
                    f"a {args.variant} call takes {var.worst_call_s:.1f} s, "
                    f"{fraction:.0%} of its {t.timeout_s:g} s timeout"
                )
        status = "PASS" if not problems else "FAIL"
        failed += bool(problems)
        name = f"{t.path.parent.name}/{t.id}"
        print(
            f"{name:<34} {len(t.calls):>5} "
            f"{'-' if round_s is None else f'{round_s * 1e3:.1f}':>12} "
            f"{_fmt(ref.cpu_s_per_call):>10} {_fmt(naive_s):>12} "
            f"{'-' if ratio is None else f'{ratio:.1f}x':>7} "
            f"{'-' if fraction is None else f'{fraction:.1%}':>6}  {status}"
        )
        for p in problems:
            print(f"    {p}")
    print(
        f"\n{len(tasks)} tasks, {failed} failed; reference CPU s per round summed: "
        f"{total_ref_s:.2f}\nworst {args.variant} call: {worst[0]:.1%} of its timeout in CPU "
        f"time ({worst[1]}), {worst_wall[0]:.1%} in wall-clock time ({worst_wall[1]})"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
