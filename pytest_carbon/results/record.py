"""One record per measured test: the dict that travels on the test report and into reports.

Field names follow the JSON contract (``../shared/design.md`` section 6). Every number
sits beside the method that produced it.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from pytest_carbon.carbon.accounting import Accounting, ed2p_js2, edp_js
from pytest_carbon.measure.meter import Measurement
from pytest_carbon.measure.sensors.base import weakest_method

SCHEMA = "pytest-carbon/report/1"


def iso_utc(unix_s: float | None = None) -> str:
    dt = (
        datetime.now(timezone.utc)
        if unix_s is None
        else datetime.fromtimestamp(unix_s, timezone.utc)
    )
    return dt.isoformat(timespec="seconds").replace("+00:00", "Z")


def stats(values: Sequence[float]) -> dict[str, float]:
    """mean, median, stdev (0 for one value), min, max."""
    vals = list(values)
    if not vals:
        return {}
    return {
        "mean": statistics.fmean(vals),
        "median": statistics.median(vals),
        "stdev": statistics.stdev(vals) if len(vals) > 1 else 0.0,
        "min": min(vals),
        "max": max(vals),
    }


def measurement_fields(m: Measurement, accounting: Accounting) -> dict[str, Any]:
    """The energy, time, power, EDP and carbon fields of one measurement."""
    energy = m.total_energy_j
    out: dict[str, Any] = {
        "duration_s": m.duration_s,
        "energy_j": energy,
        "dynamic_energy_j": m.total_dynamic_energy_j,
        "components": dict(m.energy_j),
        "dynamic_components": dict(m.dynamic_energy_j),
        "component_methods": dict(m.method),
        "method": m.overall_method,
        "power_w": m.power_w,
        "edp_js": edp_js(energy, m.duration_s),
        "ed2p_js2": ed2p_js2(energy, m.duration_s),
        "cpu_time_s": m.cpu_time_s,
        "share": m.share,
        "machine_energy_j": m.machine_energy_j,
        "attribution": m.attribution if m.machine_energy_j is not None else None,
    }
    out.update(accounting.record_fields(energy, m.duration_s, share=m.share))
    return out


def make_record(
    nodeid: str,
    measurement: Measurement,
    accounting: Accounting,
    *,
    outcome: str = "passed",
    rounds: int = 1,
    per_round_energy_j: Sequence[float] = (),
    per_round_duration_s: Sequence[float] = (),
    per_call: Mapping[str, Any] | None = None,
    phases: Mapping[str, Measurement] | None = None,
    extra_info: Mapping[str, Any] | None = None,
    prompt: Mapping[str, Any] | None = None,
    worker: str | None = None,
    warnings: Sequence[str] = (),
) -> dict[str, Any]:
    """Build the record of one test.

    ``measurement`` covers the whole measured phase (all rounds). ``per_round_*`` are the
    per-round values, kept for noise-aware comparison. ``per_call``: statistics per call
    (from the ``carbon`` fixture). ``phases``: named blocks measured inside the test.
    """
    rec: dict[str, Any] = {
        "nodeid": nodeid,
        "outcome": outcome,
        "start": iso_utc(measurement.start_unix_s),
    }
    rec.update(measurement_fields(measurement, accounting))
    rec["rounds"] = rounds
    rec["samples"] = {
        "energy_j": list(per_round_energy_j) or [rec["energy_j"]],
        "duration_s": list(per_round_duration_s) or [rec["duration_s"]],
    }
    rec["per_call"] = dict(per_call) if per_call else None
    rec["phases"] = {k: measurement_fields(v, accounting) for k, v in (phases or {}).items()}
    if rec["phases"]:
        rec["method"] = weakest_method(
            [rec["method"], *(p["method"] for p in rec["phases"].values())]
        )
    rec["extra_info"] = dict(extra_info or {})
    rec["prompt"] = dict(prompt) if prompt else None
    rec["worker"] = worker
    rec["sensors"] = list(measurement.sensors)
    if measurement.samples:
        rec["trace"] = [[round(t, 4), dict(p)] for t, p in measurement.samples]
    rec["warnings"] = list(dict.fromkeys([*measurement.warnings, *warnings]))
    return rec


def unmeasured_record(
    nodeid: str,
    *,
    outcome: str,
    prompt: Mapping[str, Any] | None = None,
    worker: str | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """The record of an item that produced no measurement (e.g. incorrect generated code).

    Energy fields are ``None``: nothing was measured, and a zero would be a false number.
    Such records still count in pass rates and generation footprints.
    """
    return {
        "nodeid": nodeid,
        "outcome": outcome,
        "start": iso_utc(),
        "duration_s": None,
        "energy_j": None,
        "dynamic_energy_j": None,
        "components": {},
        "component_methods": {},
        "method": None,
        "power_w": None,
        "edp_js": None,
        "ed2p_js2": None,
        "cpu_time_s": None,
        "share": None,
        "gco2e_g": None,
        "rounds": 0,
        "samples": {"energy_j": [], "duration_s": []},
        "per_call": None,
        "phases": {},
        "extra_info": {},
        "prompt": dict(prompt) if prompt else None,
        "worker": worker,
        "sensors": [],
        "warnings": [reason] if reason else [],
    }
