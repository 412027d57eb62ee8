"""The shipped prompt suite is well-formed, correct, and separates frugal from wasteful code."""

from __future__ import annotations

import importlib.util
import statistics
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROMPTS = ROOT / "prompts"
FILES = sorted(PROMPTS.rglob("*.yaml"))
THEMES = {"algorithms", "strings", "numeric", "data", "io"}

TASK_KEYS = {
    "id", "prompt", "entry_point", "reference", "variants", "tests", "check", "workload",
    "timeout_s", "models", "samples", "marks",
}  # fmt: skip
REQUIRED = {"prompt", "entry_point", "reference", "tests", "workload"}
CASE_KEYS = {"args", "kwargs", "expect", "tol"}
WORKLOAD_KEYS = {"args", "kwargs", "min_time_s"}
#: The naive variant must cost at least this many times the reference's CPU time per call.
MIN_RATIO = 3.0


def _load_checker() -> Any:
    spec = importlib.util.spec_from_file_location("check_suite", ROOT / "tools" / "check_suite.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["check_suite"] = module
    spec.loader.exec_module(module)
    return module


check_suite = _load_checker()
TASKS = [task for path in FILES for task in check_suite.load_tasks(path)]


def _json_like(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, list):
        return all(_json_like(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, (str, int)) and _json_like(v) for k, v in value.items())
    return False


def _structure_problems(data: Any) -> list[str]:
    """A minimal structural check of one task mapping, independent of the plugin's parser."""
    if not isinstance(data, dict):
        return [f"a task must be a mapping, got {type(data).__name__}"]
    problems = [f"unknown key {k!r}" for k in data if k not in TASK_KEYS]
    problems += [f"missing key {k!r}" for k in REQUIRED if k not in data]
    for key in ("prompt", "entry_point", "reference"):
        if not isinstance(data.get(key), str) or not data.get(key, "").strip():
            problems.append(f"{key} must be a non-empty string")
    if not isinstance(data.get("entry_point"), str) or not data["entry_point"].isidentifier():
        problems.append("entry_point must be a Python identifier")
    variants = data.get("variants", {})
    if not isinstance(variants, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in variants.items()
    ):
        problems.append("variants must map names to code strings")
    tests = data.get("tests")
    if not isinstance(tests, list) or not tests:
        problems.append("tests must be a non-empty list")
    else:
        for i, case in enumerate(tests):
            if not isinstance(case, dict) or "expect" not in case or set(case) - CASE_KEYS:
                problems.append(f"tests[{i}] must be a mapping of {sorted(CASE_KEYS)} with expect")
            elif not isinstance(case.get("args", []), list) or not _json_like(case):
                problems.append(f"tests[{i}] must hold JSON-like data with a list of args")
    workload = data.get("workload")
    if not isinstance(workload, dict) or set(workload) - WORKLOAD_KEYS:
        problems.append(f"workload must be a mapping of {sorted(WORKLOAD_KEYS)}")
    elif not isinstance(workload.get("args", []), list) or not _json_like(workload):
        problems.append("workload args must be a list of JSON-like data")
    elif not isinstance(workload.get("min_time_s", 0.2), (int, float)):
        problems.append("workload.min_time_s must be a number")
    if "check" in data and not isinstance(data["check"], str):
        problems.append("check must be a string")
    if not isinstance(data.get("timeout_s", 1), (int, float)) or data.get("timeout_s", 1) <= 0:
        problems.append("timeout_s must be a positive number")
    return problems


def test_suite_has_enough_tasks_in_every_theme() -> None:
    themes = {path.parent.name for path in FILES}
    assert themes >= THEMES, f"missing theme folders: {THEMES - themes}"
    assert len(TASKS) >= 40
    ids = [t.id for t in TASKS]
    assert len(ids) == len(set(ids)), "task ids must be unique across the suite"
    assert all(t.variants.get("naive") for t in TASKS), "every task ships a naive variant"


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_file_has_allowed_keys_and_types(path: Path) -> None:
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    entries = data["tasks"] if isinstance(data, dict) and "tasks" in data else [data]
    for entry in entries:
        assert _structure_problems(entry) == []
        assert entry.get("id", path.stem) == path.stem, "one task per file, named by its id"


def test_files_load_through_the_plugin_parser() -> None:
    # Our own parser: an ImportError here is a failure, never a skip.
    from pytest_carbon.prompts import spec

    loaded = [task for path in FILES for task in spec.load(path)]
    assert sorted(t.id for t in loaded) == sorted(t.id for t in TASKS)


def _verify(job: tuple[Any, str, str]) -> tuple[str, str, str | None]:
    task, name, code = job
    result = check_suite.run_solution(task, code, time_workload=False)
    return task.id, name, None if result.ok else result.error


@pytest.mark.slow
def test_reference_and_every_variant_pass_the_tests() -> None:
    jobs = [(t, "reference", t.reference) for t in TASKS]
    jobs += [(t, name, code) for t in TASKS for name, code in t.variants.items()]
    with ThreadPoolExecutor(max_workers=2) as pool:
        failures = [r for r in pool.map(_verify, jobs) if r[2] is not None]
    assert failures == []


def _median_cpu_s(task: Any, code: str, *, reference: bool) -> float:
    # Naive variants take up to a second per call: the median of three calls, no warm-up.
    # Some references run in tens of microseconds, near the CPU clock's resolution, so
    # their figure is the mean over at least 0.05 s of calls rather than a per-call median.
    if reference:
        result = check_suite.run_solution(task, code, min_calls=3, min_time_s=0.05)
        assert result.ok, f"{task.id}: {result.error}"
        return float(result.cpu_s_per_call)
    result = check_suite.run_solution(task, code, min_calls=3, min_time_s=0.0, warmup=False)
    assert result.ok, f"{task.id}: {result.error}"
    return statistics.median(result.per_call_s)


@pytest.mark.slow
def test_naive_variant_costs_at_least_three_times_the_reference() -> None:
    def ratio(task: Any) -> tuple[str, float, float]:
        ref_s = _median_cpu_s(task, task.reference, reference=True)
        naive_s = _median_cpu_s(task, task.variants["naive"], reference=False)
        return task.id, ref_s, naive_s

    with ThreadPoolExecutor(max_workers=2) as pool:
        rows = list(pool.map(ratio, TASKS))
    cheap = [
        f"{tid}: naive {naive_s:.4f} s/call vs reference {ref_s:.4f} s/call"
        for tid, ref_s, naive_s in rows
        if naive_s < MIN_RATIO * max(ref_s, 1e-9)
    ]
    assert cheap == []
    # A per-call time of zero would make every ratio meaningless.
    assert all(ref_s > 0 for _, ref_s, _ in rows)
