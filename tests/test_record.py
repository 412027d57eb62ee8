"""The record definition: builders fill every field, and a report keeps every field.

A round trip JSON -> ``read_report`` -> ``records_from_frame`` over a record that sets
every field of :class:`Record` (``read_report`` once dropped ``ed2p_js2``).
"""

from __future__ import annotations

import math
from pathlib import Path

import factory
import pytest

from pytest_carbon.carbon.accounting import Accounting
from pytest_carbon.results.frame import (
    OPTIONAL_FIELDS,
    SCALAR_FIELDS,
    read_report,
    records_from_frame,
)
from pytest_carbon.results.io import write_json
from pytest_carbon.results.record import (
    Generation,
    Prompt,
    Record,
    per_call_stats,
    scalar_fields,
    unmeasured_record,
)

EMBODIED_AND_WATER = Accounting(
    475.0, "world average", pue=1.2, embodied_kgco2e=350.0, lifetime_h=35_040.0,
    water_l_per_kwh=1.8,
)  # fmt: skip


def full_record() -> dict:
    """A record with every field of the definition set (none null)."""
    rec = factory.record(
        "tests/test_all.py::test_everything",
        [1.5, 2.5],
        power_w=25.0,
        dram_share=0.25,
        idle_w=2.0,
        method="attributed",
        share=0.4,
        accounting=EMBODIED_AND_WATER,
        per_call_j=[0.01, 0.02, 0.03],
        phase_measurements={"build": factory.measurement(0.5, 0.02)},
        prompt=factory.prompt(
            "sum",
            "m1",
            ratio=1.7,
            failed_case={"args": [1]},
            temperature=0.2,
            energy_percentile={
                "value": 60.0,
                "low": 20.0,
                "high": 100.0,
                "references": 3,
                "intervals_reached": True,
                "method": "m",
            },
            graded_references=[{"index": 0, "score": 20.0, "ratio": 0.5}],
        ),
        worker="gw1",
        power_trace=[(0.0, {"cpu": 20.0}), (0.1, {"cpu": 21.0})],
        warnings=["a caveat"],
        attempts=2,
        machine_id="Linux-box-2cpu-abcd",
        machine_energy_j=9.5,
        attribution="process",
        intensity_g_per_kwh=300.0,
        intensity_source="hook: grid API",
    )
    rec["extra_info"] = {"size": 3}
    compiled = {"ok": True, "energy_j": 0.3, "duration_s": 0.4, "cpu_s": 0.1, "method": {}}
    rec["prompt"]["program"] = {"language": "cpp", "compile": {"candidate": compiled}}
    return rec


def test_the_full_record_sets_every_field_of_the_definition() -> None:
    rec = full_record()
    # A field added to Record must be added here (and so to the frame's round trip).
    assert set(rec) == set(Record.__annotations__)
    assert all(rec[k] is not None for k in rec)
    assert all(v is not None for v in rec["prompt"].values())
    assert set(rec["prompt"]) >= set(Prompt.__annotations__) - {"reference_comparison"}
    assert set(rec["prompt"]["generation"]) == set(Generation.__annotations__)


def test_unmeasured_record_has_every_required_field() -> None:
    rec = unmeasured_record("t.py::x", outcome="failed", reason="nothing ran")
    assert set(rec) == set(Record.__required_keys__)
    assert rec["energy_j"] is None and rec["ed2p_js2"] is None
    assert rec["warnings"] == ["nothing ran"]


def test_frame_columns_come_from_the_definition() -> None:
    names = {name for name, _, _ in scalar_fields(Record)}
    assert "ed2p_js2" in SCALAR_FIELDS
    assert {"embodied_gco2e_g", "water_l", "machine_energy_j", "attempts"} <= set(OPTIONAL_FIELDS)
    # Every scalar is a column; the report-level ones are the report's columns.
    assert names - set(SCALAR_FIELDS) - set(OPTIONAL_FIELDS) == {
        "machine_id",
        "intensity_g_per_kwh",
        "intensity_source",
    }


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    rec = full_record()
    path = write_json(factory.report([rec]), tmp_path / "r.json")
    df = read_report(path)
    row = df.iloc[0]
    for name, kind, _ in scalar_fields(Record):
        if name == "start":
            assert row["start"].isoformat().replace("+00:00", "Z") == rec["start"]
            continue
        value = row[name]
        assert value == (pytest.approx(rec[name]) if kind is float else rec[name]), name
    for name, _, _ in scalar_fields(Prompt):
        assert row[f"prompt_{name}"] == rec["prompt"][name], name
    for name, _, _ in scalar_fields(Generation):
        assert row[f"generation_{name}"] == rec["prompt"]["generation"][name], name
    assert row["prompt_failed_case"] == '{"args": [1]}'
    assert (row["energy_percentile"], row["energy_percentile_low"]) == (60.0, 20.0)
    assert row["reference_ratio_energy"] == pytest.approx(1.7)
    for comp in ("cpu", "dram"):
        assert row[f"component_{comp}_j"] == pytest.approx(rec["components"][comp])
        assert row[f"component_{comp}_method"] == "attributed"
    for stat in ("mean", "median", "stdev", "min", "max"):
        assert row[f"per_call_energy_j_{stat}"] == pytest.approx(rec["per_call"]["energy_j"][stat])
    assert row["phase_build_energy_j"] == pytest.approx(0.5)
    assert row["extra_size"] == 3
    assert row["sensors"] == "rapl"
    assert row["warnings"] == "a caveat"
    assert bool(row["has_trace"]) is True

    back = records_from_frame(df)[0]
    for name in (*SCALAR_FIELDS, *OPTIONAL_FIELDS):
        if name == "start":
            continue
        expected = rec[name]
        assert back[name] == (pytest.approx(expected) if isinstance(expected, float) else expected)
    assert back["components"] == pytest.approx(rec["components"])
    assert back["prompt"]["generation"] == rec["prompt"]["generation"]


def test_a_single_number_reference_ratio_fills_the_energy_column(tmp_path: Path) -> None:
    rec = factory.record("t.py::r", prompt=factory.prompt(ratio=None, reference_ratio=0.8))
    df = read_report(write_json(factory.report([rec]), tmp_path / "r.json"))
    assert df.loc[0, "reference_ratio_energy"] == pytest.approx(0.8)
    assert math.isnan(df.loc[0, "reference_ratio_duration"])


def test_per_call_stats_counts_every_call() -> None:
    pc = per_call_stats([1.0, 3.0, 2.0], [0.1, 0.3, 0.2], iterations_per_round=50)
    assert pc["calls"] == 150 and pc["iterations_per_round"] == 50
    assert pc["energy_j"] == {"mean": 2.0, "median": 2.0, "stdev": 1.0, "min": 1.0, "max": 3.0}
    assert pc["duration_s"]["median"] == pytest.approx(0.2)
    assert "source" not in pc
    assert per_call_stats([1.0], [0.1], source="pytest-benchmark rounds")["source"] == (
        "pytest-benchmark rounds"
    )
