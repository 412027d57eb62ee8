"""Tests of the pandas API: read_report over real and hand-built reports, model summaries.

The hand-built reports here (``cli_report``, ``prompt_report``) follow the JSON schema
``pytest-carbon/report/1`` field by field; test_html.py and test_card.py import them.
"""

from __future__ import annotations

import copy
import json
import math
import textwrap
from pathlib import Path
from typing import Any

import factory
import pytest

from pytest_carbon.carbon.accounting import J_PER_KWH, Accounting
from pytest_carbon.results.io import ReportError

pd = pytest.importorskip("pandas", reason="pandas is a dependency of pytest-carbon")

INTENSITY = 475.0
PUE = 1.2


ACCOUNTING = Accounting(INTENSITY, "codecarbon global_energy_mix.json (DEU)", pue=PUE)


def gco2e(energy_j: float) -> float:
    return energy_j / J_PER_KWH * PUE * INTENSITY


def record(
    nodeid: str,
    *,
    cpu_j: float | None,
    dram_j: float = 0.0,
    duration_s: float = 1.0,
    method: str = "estimated",
    outcome: str = "passed",
    prompt: dict[str, Any] | None = None,
    trace: list[Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A record built by record.make_record (tests/factory.py); ``cpu_j=None``: an
    unmeasured one."""
    if cpu_j is None:
        return factory.unmeasured(
            nodeid,
            outcome=outcome,
            start="2025-03-01T10:00:00Z",
            prompt=prompt,
            reason="generated code is incorrect: nothing measured",
            **extra,
        )
    energy = cpu_j + dram_j
    return factory.record(
        nodeid,
        energy,
        duration_s=duration_s,
        dram_share=dram_j / energy if energy else 0.0,
        idle_w=0.2 * energy / duration_s,
        method=method,
        share=0.5 if method == "attributed" else None,
        outcome=outcome,
        start="2025-03-01T10:00:00Z",
        accounting=ACCOUNTING,
        prompt=prompt,
        **({"trace": trace} if trace is not None else {}),
        **extra,
    )


def report(tests: list[dict[str, Any]], **over: Any) -> dict[str, Any]:
    measured = [t for t in tests if t["energy_j"] is not None]
    methods: dict[str, int] = {}
    for t in measured:
        methods[t["method"]] = methods.get(t["method"], 0) + 1
    rep: dict[str, Any] = {
        "schema": "pytest-carbon/report/1",
        "version": "0.1.0",
        "created": "2025-03-01T10:05:00Z",
        "complete": True,
        "machine": {
            "hostname": "lab-7",
            "machine_id": "Linux-AMD_EPYC_7B13-8cpu-1a2b3c4d",
            "system": "Linux",
            "python": "3.11.7",
            "cpu_model": "AMD EPYC 7B13",
            "cpu_count": 8,
            "ram_gb": 31.2,
            "virtualized": False,
            "gpus": [],
            "sensors": [
                {
                    "name": "rapl",
                    "available": True,
                    "method": "measured",
                    "components": ["cpu", "dram"],
                    "reason": None,
                    "fix": None,
                    "details": {},
                },
                {
                    "name": "nvml",
                    "available": False,
                    "method": "measured",
                    "components": [],
                    "reason": "no NVIDIA driver",
                    "fix": None,
                    "details": {},
                },
                {
                    "name": "estimate",
                    "available": True,
                    "method": "estimated",
                    "components": ["cpu", "dram"],
                    "reason": None,
                    "fix": None,
                    "details": {},
                },
            ],
        },
        "accounting": {
            "country": "DEU",
            "region": None,
            "intensity_g_per_kwh": INTENSITY,
            "intensity_source": "codecarbon global_energy_mix.json (DEU)",
            "intensity_year": 2022,
            "intensity_is_default": False,
            "pue": PUE,
        },
        "idle_power_w": {"cpu": 4.0, "dram": 0.5},
        "run": {
            "started": "2025-03-01T10:00:00Z",
            "finished": "2025-03-01T10:05:00Z",
            "duration_s": 300.0,
            "workers": None,
            "args": ["--carbon"],
        },
        "tests": tests,
        "summary": {
            "energy_j": sum(t["energy_j"] for t in measured),
            "gco2e_g": sum(t["gco2e_g"] for t in measured),
            "duration_s": sum(t["duration_s"] for t in measured),
            "tests": len(tests),
            "measured": len(measured),
            "methods": methods,
        },
        "warnings": [],
    }
    rep.update(over)
    return rep


def cli_report() -> dict[str, Any]:
    """A ``pytest --carbon`` report: measured, attributed and estimated tests, a trace,
    per-call statistics, phases and extra_info."""
    trace = [[round(0.1 * i, 4), {"cpu": 20.0 + (i % 5), "dram": 2.0}] for i in range(30)]
    return report(
        [
            record(
                "tests/test_io.py::test_parse[big]",
                cpu_j=52.0,
                dram_j=4.0,
                duration_s=3.0,
                method="measured",
                trace=trace,
            ),
            record(
                "tests/test_io.py::test_parse[small]",
                cpu_j=3.5,
                dram_j=0.4,
                duration_s=0.4,
                method="attributed",
                worker="gw1",
            ),
            record(
                "tests/test_math.py::test_sum",
                cpu_j=0.9,
                dram_j=0.02,
                duration_s=0.12,
                per_call={
                    "energy_j": {
                        "mean": 0.009,
                        "median": 0.0088,
                        "stdev": 0.001,
                        "min": 0.008,
                        "max": 0.012,
                    },
                    "duration_s": {
                        "mean": 0.0012,
                        "median": 0.0011,
                        "stdev": 0.0001,
                        "min": 0.001,
                        "max": 0.0015,
                    },
                },
                phases={"setup": {"energy_j": 0.2, "duration_s": 0.03, "method": "estimated"}},
                extra_info={"n": 100, "label": "sum"},
                rounds=100,
            ),
            record("tests/test_math.py::test_fails", cpu_j=0.3, outcome="failed"),
        ]
    )


def prompt_record(
    task: str,
    model: str,
    sample: int,
    *,
    correct: bool,
    cpu_j: float,
    gen_g: float,
    ratio: float | None,
) -> dict[str, Any]:
    prompt = {
        "task": task,
        "model": model,
        "sample": sample,
        "correct": correct,
        "failed_case": None if correct else {"args": [10], "expect": 17, "got": 12},
        "generation": {
            "input_tokens": 120,
            "output_tokens": 250,
            "energy_j": gen_g * 7000,
            "gco2e_g": gen_g,
            "method": "estimated",
        },
        "reference_ratio": {"energy": ratio, "duration": ratio} if ratio else None,
    }
    nodeid = f"prompts/{task}.yaml::{task}[{model}-{sample}]"
    if not correct:
        return record(nodeid, cpu_j=None, outcome="failed", prompt=prompt)
    return record(nodeid, cpu_j=cpu_j, dram_j=cpu_j * 0.05, duration_s=cpu_j / 15, prompt=prompt)


def prompt_report() -> dict[str, Any]:
    """A prompt-suite report: the reference and two LLMs, one with an incorrect answer."""
    tests = []
    for task, base in (("sum_primes", 8.0), ("fib", 3.0)):
        tests.append(
            prompt_record(task, "reference", 0, correct=True, cpu_j=base, gen_g=0.0, ratio=1.0)
        )
        for sample, factor in enumerate((1.4, 2.5)):
            tests.append(
                prompt_record(
                    task,
                    "gpt-4o-mini",
                    sample,
                    correct=True,
                    cpu_j=base * factor,
                    gen_g=0.05,
                    ratio=factor * 1.05,
                )
            )
        tests.append(
            prompt_record(
                task,
                "qwen2.5-coder",
                0,
                correct=task == "fib",
                cpu_j=base * 0.7,
                gen_g=0.02,
                ratio=0.7 * 1.05,
            )
        )
    return report(tests)


def write(tmp_path: Path, name: str, data: Any) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------ tests


def test_one_row_per_record_with_flat_columns(tmp_path: Path) -> None:
    rep = cli_report()
    from pytest_carbon import read_report

    df = read_report(write(tmp_path, "r.json", rep))
    assert len(df) == len(rep["tests"])
    assert list(df["nodeid"]) == [t["nodeid"] for t in rep["tests"]]
    big = df[df.nodeid == "tests/test_io.py::test_parse[big]"].iloc[0]
    assert big.energy_j == pytest.approx(56.0)
    assert big.component_cpu_j == pytest.approx(52.0)
    assert big.component_dram_j == pytest.approx(4.0)
    assert big.component_cpu_method == "measured"
    assert bool(big.has_trace) is True
    assert big.machine_id == rep["machine"]["machine_id"]
    assert big.intensity_g_per_kwh == INTENSITY
    assert big.pue == PUE
    assert big.source_file == str(tmp_path / "r.json")
    assert str(big.report_created) == "2025-03-01 10:05:00+00:00"
    small = df[df.nodeid.str.endswith("[small]")].iloc[0]
    assert small.method == "attributed" and small.worker == "gw1" and small.share == 0.5
    s = df[df.nodeid.str.endswith("test_sum")].iloc[0]
    assert s.per_call_energy_j_median == pytest.approx(0.0088)
    assert s.per_call_duration_s_max == pytest.approx(0.0015)
    assert s.phase_setup_energy_j == pytest.approx(0.2)
    assert s.phase_setup_method == "estimated"
    assert s.extra_n == 100 and s.extra_label == "sum"
    assert s.rounds == 100
    # Columns for prompts exist, null, on a report without prompts.
    assert df["prompt_model"].isna().all()
    assert df["generation_gco2e_g"].isna().all()
    # Sums over the frame equal the report's own summary.
    assert df.energy_j.sum() == pytest.approx(rep["summary"]["energy_j"])
    assert df.gco2e_g.sum() == pytest.approx(rep["summary"]["gco2e_g"])


def test_prompt_columns_and_nulls_stay_null(tmp_path: Path) -> None:
    from pytest_carbon.results.frame import read_report

    rep = prompt_report()
    df = read_report(write(tmp_path, "p.json", rep))
    assert len(df) == len(rep["tests"])
    wrong = df[df.prompt_correct == False]  # noqa: E712 -- a nullable boolean column
    assert len(wrong) == 1
    row = wrong.iloc[0]
    assert row.prompt_model == "qwen2.5-coder" and row.prompt_task == "sum_primes"
    # Nothing measured: NaN, never zero, and excluded from sums.
    assert math.isnan(row.energy_j) and math.isnan(row.gco2e_g)
    assert json.loads(row.prompt_failed_case) == {"args": [10], "expect": 17, "got": 12}
    assert row.generation_gco2e_g == pytest.approx(0.02)
    assert df.energy_j.count() == len(rep["tests"]) - 1
    assert df.energy_j.sum() == pytest.approx(rep["summary"]["energy_j"])
    assert str(df.prompt_correct.dtype) == "boolean"
    assert str(df.generation_input_tokens.dtype) == "Int64"
    ref = df[df.prompt_model == "reference"]
    assert (ref.reference_ratio_energy == 1.0).all()
    assert set(df.generation_method.dropna()) == {"estimated"}


def test_list_of_paths_and_directory(tmp_path: Path) -> None:
    from pytest_carbon.results.frame import read_report

    a = write(tmp_path / "runs", "a/0001_first.json", cli_report())
    b = write(tmp_path / "runs", "b/0002_second.json", prompt_report())
    write(tmp_path / "runs", "b/llm-cache.json", {"entries": []})  # not ours: skipped
    n = len(cli_report()["tests"]) + len(prompt_report()["tests"])
    by_list = read_report([a, str(b)])
    assert len(by_list) == n
    assert set(by_list.source_file) == {str(a), str(b)}
    by_dir = read_report(tmp_path / "runs")
    assert len(by_dir) == n
    assert by_dir.attrs["skipped_files"] == [str(tmp_path / "runs/b/llm-cache.json")]
    # record_index points back into each file's "tests" list.
    for _, row in by_dir.iterrows():
        source = json.loads(Path(row.source_file).read_text())
        assert source["tests"][row.record_index]["nodeid"] == row.nodeid


def test_merged_report_takes_each_records_machine(tmp_path: Path) -> None:
    from pytest_carbon.results.frame import read_report

    a, b = cli_report(), prompt_report()
    b["machine"] = dict(b["machine"], machine_id="Linux-other-4cpu-99", hostname="ci-2")
    for rec in a["tests"]:
        rec["machine_id"] = a["machine"]["machine_id"]
    for rec in b["tests"]:
        rec["machine_id"] = b["machine"]["machine_id"]
    merged = dict(a, tests=a["tests"] + b["tests"], machines=[a["machine"], b["machine"]])
    del merged["machine"]
    df = read_report(write(tmp_path, "merged.json", merged))
    assert len(df) == len(a["tests"]) + len(b["tests"])
    hosts = df.groupby("machine_id").hostname.first().to_dict()
    assert hosts == {a["machine"]["machine_id"]: "lab-7", "Linux-other-4cpu-99": "ci-2"}


def test_empty_report_has_the_documented_columns(tmp_path: Path) -> None:
    from pytest_carbon.results.frame import (
        PROMPT_COLUMNS,
        RECORD_COLUMNS,
        REPORT_COLUMNS,
        read_report,
    )

    df = read_report(write(tmp_path, "e.json", report([])))
    assert len(df) == 0
    assert list(df.columns) == [*REPORT_COLUMNS, *RECORD_COLUMNS, *PROMPT_COLUMNS]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"tests": []}', "no 'schema' field"),
        ('{"schema": "pytest-benchmark/4", "tests": []}', "expected 'pytest-carbon/report/1'"),
        ("[1, 2", "not JSON"),
    ],
)
def test_not_a_report_is_a_clear_error(tmp_path: Path, content: str, message: str) -> None:
    from pytest_carbon.results.frame import read_report

    path = tmp_path / "x.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ReportError, match=message) as info:
        read_report(path)
    assert str(path) in str(info.value)


def test_directory_errors(tmp_path: Path) -> None:
    from pytest_carbon.results.frame import read_report

    with pytest.raises(ReportError, match="no JSON files"):
        read_report(tmp_path)
    write(tmp_path, "other.json", {"hello": 1})
    with pytest.raises(ReportError, match="no pytest-carbon reports"):
        read_report(tmp_path)
    # Ours, but a version we cannot read: an error even inside a directory.
    write(tmp_path, "future.json", dict(cli_report(), schema="pytest-carbon/report/9"))
    with pytest.raises(ReportError, match="report/9"):
        read_report(tmp_path)
    with pytest.raises(ReportError, match="no such file"):
        read_report(tmp_path / "missing.json")


def test_records_from_frame_round_trip() -> None:
    from pytest_carbon.results.frame import _frame, flatten_report, records_from_frame

    rep = prompt_report()
    df = _frame(pd, flatten_report(rep))
    back = records_from_frame(df)
    assert len(back) == len(rep["tests"])
    for orig, rec in zip(rep["tests"], back, strict=True):
        assert rec["nodeid"] == orig["nodeid"]
        assert rec["energy_j"] == orig["energy_j"]  # None stays None
        assert rec["components"] == orig["components"]
        assert rec["prompt"]["model"] == orig["prompt"]["model"]
        assert rec["prompt"]["correct"] is orig["prompt"]["correct"]
        assert rec["prompt"]["generation"]["gco2e_g"] == orig["prompt"]["generation"]["gco2e_g"]


def test_model_summary_frame_agrees_with_the_terminal_code(tmp_path: Path) -> None:
    summary = pytest.importorskip(
        "pytest_carbon.prompts.summary", reason="prompts/summary.py not written yet"
    )
    from pytest_carbon.results.frame import model_summary_frame, read_report

    rep = prompt_report()
    expected = summary.model_summary(copy.deepcopy(rep["tests"]))
    df = read_report(write(tmp_path, "p.json", rep))
    for source in (df, rep, rep["tests"]):
        frame = model_summary_frame(source)
        got = frame.to_dict("records")
        assert len(got) == len(expected) == 3
        for g, e in zip(got, expected, strict=True):
            for key, value in e.items():
                if isinstance(value, float):
                    assert g[key] == pytest.approx(value, nan_ok=True), key
                elif value is None:
                    assert g[key] is None or pd.isna(g[key]), key
                elif not isinstance(value, (dict, list)):
                    assert g[key] == value, key


# ---------------------------------------------------------------- real runs (pytester)

SMALL_TESTS = """
def work(n):
    return sum(i * i for i in range(n))

def test_light():
    work(200_000)

def test_heavy():
    work(800_000)

def test_fails():
    work(10_000)
    assert False
"""


@pytest.mark.slow
def test_round_trip_of_a_real_carbon_run(pytester: pytest.Pytester) -> None:
    from pytest_carbon import read_report

    pytester.makepyfile(test_small=SMALL_TESTS)
    result = pytester.runpytest_subprocess(
        "--carbon", "--carbon-json=r.json", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=2, failed=1)
    raw = json.loads((pytester.path / "r.json").read_text())
    df = read_report(pytester.path / "r.json")
    assert len(df) == len(raw["tests"]) == 3
    by_id = {t["nodeid"]: t for t in raw["tests"]}
    for _, row in df.iterrows():
        rec = by_id[row.nodeid]
        assert row.outcome == rec["outcome"]
        assert row.method == rec["method"]
        assert row.energy_j == pytest.approx(rec["energy_j"])
        assert row.gco2e_g == pytest.approx(rec["gco2e_g"])
        for comp, value in rec["components"].items():
            assert row[f"component_{comp}_j"] == pytest.approx(value)
            assert row[f"component_{comp}_method"] == rec["component_methods"][comp]
    assert df.loc[df.nodeid.str.endswith("test_fails"), "outcome"].item() == "failed"
    heavy = df.loc[df.nodeid.str.endswith("test_heavy"), "energy_j"].item()
    light = df.loc[df.nodeid.str.endswith("test_light"), "energy_j"].item()
    assert heavy > light
    assert df.machine_id.nunique() == 1 and df.machine_id.iloc[0] == raw["machine"]["machine_id"]
    assert df.energy_j.sum() == pytest.approx(raw["summary"]["energy_j"])


TASK_YAML = textwrap.dedent(
    """\
    id: add_squares
    prompt: |
      Write a Python function `add_squares(n: int) -> int` returning the sum of i*i for i < n.
    entry_point: add_squares
    reference: |
      def add_squares(n):
          total = 0
          for i in range(n):
              total += i * i
          return total
    tests:
      - {args: [3], expect: 5}
      - {args: [0], expect: 0}
    workload:
      args: [200000]
      min_time_s: 0.05
    timeout_s: 20
    models: [reference]
    """
)


def test_round_trip_of_a_real_prompt_suite(pytester: pytest.Pytester) -> None:
    pytest.importorskip("pytest_carbon.prompts.collect", reason="prompt suites not written yet")
    from pytest_carbon import read_report

    pytester.makefile(".yaml", add_squares=TASK_YAML)
    result = pytester.runpytest(
        "add_squares.yaml",
        "--carbon",
        "--carbon-json=r.json",
        "--carbon-model=reference",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=1)
    raw = json.loads((pytester.path / "r.json").read_text())
    df = read_report(pytester.path / "r.json")
    assert len(df) == len(raw["tests"]) == 1
    row = df.iloc[0]
    rec = raw["tests"][0]
    assert row.prompt_task == "add_squares" and row.prompt_model == "reference"
    assert bool(row.prompt_correct) is True
    assert row.energy_j == pytest.approx(rec["energy_j"])
    assert row.energy_j > 0
    assert row.method == rec["method"]
