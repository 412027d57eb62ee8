"""The published formats' importers (EffiBench, Mercury, EvalPerf, EvalPlus) on the tiny
hand-made samples in tests/data/: the fields read, and, through the real sandbox, tasks
whose references (graded ones included) all pass; a broken reference is reported and
skipped."""

from __future__ import annotations

import importlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from pytest_carbon.importers import build_parser, main
from pytest_carbon.importers.base import ImporterError, heaviest, prepare_tasks, read_rows
from pytest_carbon.prompts.spec import load

DATA = Path(__file__).parent / "data"
SAMPLES = {
    "effibench": ("effibench_sample.json", []),
    "mercury": ("mercury_sample.jsonl", ["--graded"]),
    "evalperf": ("evalperf_sample.jsonl", []),
    "evalplus": ("evalplus_sample.jsonl", []),
}


def _tasks(source: str, tmp_path: Path, path: Path | None = None) -> list[Any]:
    name, extra = SAMPLES[source]
    args = build_parser().parse_args(
        [source, str(tmp_path / "out"), "--input", str(path or DATA / name), *extra]
    )
    return list(importlib.import_module(f"pytest_carbon.importers.{source}").read(args))


def test_effibench_reads_class_tasks_small_tests_and_large_cases(tmp_path: Path) -> None:
    tasks = {t.id: t for t in _tasks("effibench", tmp_path)}
    two = tasks["effibench_1"]
    assert two.entry_point == "Solution.twoSum"
    assert two.tests[0] == {"args": [[2, 7, 11, 15], 9], "expect": [0, 1]}
    assert len(two.tests) == 3  # small_test_cases, not the large ones
    sizes = [len(c["args"][0]) for c in two.workload_calls]
    assert sizes == [600, 200, 120, 40]  # test_case's inputs, largest first
    assert "`class Solution` with the method `twoSum`" in two.prompt
    assert two.reference.startswith("from typing import *") and "```" not in two.reference


def test_mercury_reads_solutions_slow_to_fast_and_the_generator(tmp_path: Path) -> None:
    tasks = {t.id: t for t in _tasks("mercury", tmp_path)}
    sub = tasks["mercury_maximum_subarray"]
    assert sub.entry_point == "Solution.maxSubArray"
    scores = [r["score"] for r in sub.references]
    assert scores == sorted(scores) and scores[-1] == 100.0 and len(scores) == 3
    assert "for j in range(i" in sub.references[0]["code"]  # 2890 ms: the slowest
    assert sub.reference == sub.references[-1]["code"]  # 40 ms: the fastest
    assert sub.workload_check is not None and "generate_test_case()" in sub.workload_check
    assert sub.workload_calls == []  # recorded in the sandbox, never here
    longest = tasks["mercury_longest_substring_without_repeating_characters"]
    assert longest.tests[0] == {"args": [], "kwargs": {"s": "abcabcbb"}, "expect": 3}


def test_evalperf_reads_graded_references_and_pe_input(tmp_path: Path) -> None:
    tasks = {t.id: t for t in _tasks("evalperf", tmp_path)}
    primes = tasks["evalperf_HumanEval_900"]
    assert [r["score"] for r in primes.references] == [8.5, 47.2, 100.0]
    assert "sieve" in primes.reference
    assert primes.test_inputs == [[600]] and primes.workload_calls == [{"args": [600]}]


def test_evalplus_reads_base_and_plus_inputs(tmp_path: Path) -> None:
    tasks = {t.id: t for t in _tasks("evalplus", tmp_path)}
    he = tasks["HumanEval_0_plus"]
    assert he.reference.startswith("from typing import List")  # prompt + solution
    assert len(he.test_inputs) == 2 + 4 and len(he.workload_calls[0]["args"][0]) == 800
    assert tasks["HumanEval_4_plus"].test_tol == 1e-6
    mbpp = tasks["Mbpp_3_plus"]
    assert mbpp.reference.startswith("def is_not_prime")  # a whole function already
    assert {c["args"][0] for c in mbpp.workload_calls[:2]} == {104729, 999983}  # 6 digits


def test_bad_files_say_where(tmp_path: Path) -> None:
    bad = tmp_path / "x.jsonl"
    bad.write_text('{"task_id": "a"}\nnot json\n')
    with pytest.raises(ImporterError, match=r"x.jsonl:2: not JSON"):
        read_rows(bad)
    bad.write_text('{"task_id": "HumanEval/1"}\n')
    with pytest.raises(ImporterError, match=r"x.jsonl:1: missing fields \['base_input'"):
        _tasks("evalplus", tmp_path, bad)
    assert heaviest([[1], [[1, 2, 3]], [1], [{1}]], 5) == [[[1, 2, 3]], [1]]


@pytest.mark.parametrize(
    "source",
    [
        "effibench",
        pytest.param("mercury", marks=pytest.mark.slow),
        pytest.param("evalperf", marks=pytest.mark.slow),
        pytest.param("evalplus", marks=pytest.mark.slow),
    ],
)
def test_each_sample_imports_to_tasks_whose_references_all_pass(
    source: str, tmp_path: Path, capsys: Any
) -> None:
    name, extra = SAMPLES[source]
    dest = tmp_path / "out"
    assert main([source, str(DATA / name), str(dest), *extra]) == 0
    out, err = capsys.readouterr()
    assert "skipped" not in out + err
    files = sorted(dest.glob("*.yaml"))
    assert len(files) == len(read_rows(DATA / name))
    for f in files:
        task = load(f)[0]  # through the plugin's own parser
        assert task.tests and task.workload.calls
        if source in ("mercury", "evalperf"):
            assert len(task.references) >= 2
        if source in ("effibench", "mercury"):
            assert task.entry_point.startswith("Solution.")


@pytest.mark.slow
def test_mercury_generator_inputs_are_recorded_in_the_sandbox(tmp_path: Path) -> None:
    tasks = {t.id: t for t in _tasks("mercury", tmp_path)}
    good, skipped = prepare_tasks(tasks.values())
    assert not skipped
    sub = next(t for t in good if t.id == "mercury_maximum_subarray")
    assert len(sub.workload_calls) == 8  # --workload-calls, from seeds 0..7
    assert all(200 <= len(c["args"][0]) <= 400 for c in sub.workload_calls)


@pytest.mark.slow
def test_a_broken_reference_is_reported_and_skipped(tmp_path: Path, capsys: Any) -> None:
    rows = [json.loads(line) for line in (DATA / "evalperf_sample.jsonl").read_text().splitlines()]
    # The middle graded reference of the first task counts one prime too many.
    rows[0]["reference"][1] = rows[0]["reference"][1].replace("return count", "return count + 1")
    broken = tmp_path / "evalperf.jsonl"
    broken.write_text("".join(json.dumps(r) + "\n" for r in rows))
    dest = tmp_path / "out"
    assert main(["evalperf", str(dest), "--input", str(broken)]) == 0
    out, err = capsys.readouterr()
    assert "skipped EvalPerf HumanEval/900: graded reference 1 (score 47.2) fails" in err
    assert "skipped 1 task(s)" in out
    assert [f.name for f in dest.glob("*.yaml")] == ["evalperf_Mbpp_901.yaml"]


@pytest.mark.slow
def test_an_imported_leetcode_task_runs_end_to_end(pytester: pytest.Pytester) -> None:
    """Mercury's sample, imported with graded references, measured through the plugin:
    a class entry point and an energy percentile with its interval."""
    dest = pytester.path / "prompts"
    sample = pytester.path / "m.jsonl"
    shutil.copy(DATA / "mercury_sample.jsonl", sample)
    assert (
        main(["mercury", str(dest), "--input", str(sample), "--graded", "--min-time-s", "0.01"])
        == 0
    )
    # One task is enough: the slowest human solution plays the answer.
    task = dest / "mercury_longest_substring_without_repeating_characters.yaml"
    (dest / "mercury_maximum_subarray.yaml").unlink()
    text = task.read_text()
    slow = load(task)[0].references[0].code
    body = "\n".join("    " + line for line in slow.splitlines())
    task.write_text(text + "variants:\n  slowest: |\n" + body + "\n")
    result = pytester.runpytest_subprocess(
        "prompts/",
        "-p",
        "no:cacheprovider",
        "--carbon",
        "--carbon-idle=off",
        "--carbon-json=out.json",
        "--carbon-max-time=2",
        "--carbon-model=variant:slowest",
        timeout=300,
    )
    result.assert_outcomes(passed=1)
    rec = json.loads((pytester.path / "out.json").read_text())["tests"][0]
    pct = rec["prompt"]["energy_percentile"]
    assert 0 <= pct["low"] <= pct["value"] <= pct["high"] <= 100
    assert len(rec["prompt"]["graded_references"]) == 2


def test_the_file_comes_first_and_dest_defaults_to_prompts_source(
    tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    name, extra = SAMPLES["effibench"]
    assert main(["effibench", str(DATA / name), *extra]) == 0
    assert "wrote" in capsys.readouterr().out
    assert len(list((tmp_path / "prompts" / "effibench").glob("*.yaml"))) == len(
        read_rows(DATA / name)
    )
    # Both a positional FILE/DEST pair and --input: which is the file is ambiguous.
    with pytest.raises(SystemExit) as exc:
        main(["effibench", str(DATA / name), "out", "--input", str(DATA / name)])
    assert exc.value.code == 2
    assert "give FILE [DEST], or DEST --input FILE" in capsys.readouterr().err
