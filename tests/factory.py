"""Records and reports for tests, built by the plugin's own code.

A test that needs a record asks :func:`record` (or :func:`prompt_record`,
:func:`unmeasured`) rather than writing the dict by hand: the record then comes out of
``results.record.make_record``, the code that builds every real record, so a field
added to :class:`pytest_carbon.results.record.Record` reaches every test's data (a
hand-written dict is how ``read_report`` once dropped ``ed2p_js2`` unseen).

Every number is derived from a few inputs: the energy (one value, or one per round), a
power (duration = energy / power), the share of it in DRAM, an idle power.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pytest_carbon.carbon.accounting import Accounting
from pytest_carbon.measure.meter import Measurement
from pytest_carbon.results.io import summarize
from pytest_carbon.results.record import (
    SCHEMA,
    make_record,
    per_call_stats,
    unmeasured_record,
)

#: The world average (codecarbon's carbon_intensity_per_source.json), at PUE 1.
WORLD = Accounting(475.0, "world average (codecarbon)")
START = "2026-11-20T10:00:00Z"
MACHINE_ID = "Linux-AMD_EPYC_7B13-2cpu-1a2b3c4d"


def unix_s(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def measurement(
    energy_j: float,
    duration_s: float,
    *,
    dram_share: float = 0.0,
    idle_w: float = 0.0,
    method: str = "estimated",
    share: float | None = None,
    cpu_time_s: float | None = None,
    start: str = START,
    samples: Sequence[tuple[float, Mapping[str, float]]] = (),
    key: str = "m",
) -> Measurement:
    """A Measurement as the meter returns it: ``energy_j`` split between cpu and dram,
    idle power charged to the cpu."""
    parts = {"cpu": energy_j * (1 - dram_share), "dram": energy_j * dram_share}
    if not dram_share:
        parts = {"cpu": energy_j}
    dynamic = dict(parts)
    dynamic["cpu"] = max(0.0, parts["cpu"] - idle_w * duration_s)
    return Measurement(
        key=key,
        start_unix_s=unix_s(start),
        duration_s=duration_s,
        energy_j=parts,
        dynamic_energy_j=dynamic,
        method={c: method for c in parts},
        cpu_time_s=duration_s * 0.9 if cpu_time_s is None else cpu_time_s,
        share=share,
        sensors=("estimate",) if method == "estimated" else ("rapl",),
        samples=tuple(samples),
    )


def record(
    nodeid: str = "tests/test_a.py::test_a",
    energy_j: float | Sequence[float] = 1.0,
    *,
    power_w: float = 20.0,
    duration_s: float | None = None,
    dram_share: float = 0.0,
    idle_w: float = 0.0,
    method: str = "estimated",
    share: float | None = None,
    outcome: str = "passed",
    start: str = START,
    accounting: Accounting = WORLD,
    per_call_j: Sequence[float] | None = None,
    phase_measurements: Mapping[str, Measurement] | None = None,
    prompt: Mapping[str, Any] | None = None,
    worker: str | None = None,
    power_trace: Sequence[tuple[float, Mapping[str, float]]] = (),
    warnings: Sequence[str] = (),
    **fields: Any,
) -> dict[str, Any]:
    """A measured record. ``energy_j``: the total, or one value per round.
    ``duration_s`` (default ``energy / power_w``) is the total time. ``per_call_j``: per-call
    samples (as the carbon fixture writes them). ``fields`` are set last, as they are."""
    rounds_j = [float(energy_j)] if isinstance(energy_j, (int, float)) else list(energy_j)
    total_j = sum(rounds_j)
    total_s = total_j / power_w if duration_s is None else duration_s
    rounds_s = [total_s * e / total_j if total_j else total_s / len(rounds_j) for e in rounds_j]
    m = measurement(
        total_j,
        total_s,
        dram_share=dram_share,
        idle_w=idle_w,
        method=method,
        share=share,
        start=start,
        samples=power_trace,
        key=nodeid,
    )
    per_call = None
    if per_call_j is not None:
        per_call = per_call_stats(list(per_call_j), [total_s / len(per_call_j)] * len(per_call_j))
    rec = make_record(
        nodeid,
        m,
        accounting,
        outcome=outcome,
        rounds=len(rounds_j),
        per_round_energy_j=rounds_j,
        per_round_duration_s=rounds_s,
        per_call=per_call,
        phases=phase_measurements,
        prompt=prompt,
        worker=worker,
        warnings=warnings,
    )
    rec.update(fields)
    return rec


def unmeasured(
    nodeid: str = "tests/test_a.py::test_a",
    *,
    outcome: str = "failed",
    start: str = START,
    prompt: Mapping[str, Any] | None = None,
    worker: str | None = None,
    reason: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A record with nothing measured (energy fields null), as ``unmeasured_record``."""
    rec = unmeasured_record(nodeid, outcome=outcome, prompt=prompt, worker=worker, reason=reason)
    rec["start"] = start
    rec.update(fields)
    return rec


def prompt(
    task: str = "t",
    model: str = "reference",
    *,
    correct: bool | None = True,
    sample: int = 0,
    ratio: float | Mapping[str, float] | None = None,
    generation_gco2e_g: float | None = 0.0,
    generation_method: str = "estimated",
    failed_case: Any = None,
    **fields: Any,
) -> dict[str, Any]:
    """The ``prompt`` part of a prompt-suite record."""
    out: dict[str, Any] = {
        "task": task,
        "model": model,
        "sample": sample,
        "strategy": "plain",
        "samples": 1,
        "temperature": None,
        "correct": correct,
        "failed_case": failed_case,
        "generation": {
            "input_tokens": 0,
            "output_tokens": 0,
            "energy_j": 0.0,
            "gco2e_g": generation_gco2e_g,
            "method": generation_method,
        },
        "reference_ratio": (
            {"energy": ratio, "duration": ratio} if isinstance(ratio, (int, float)) else ratio
        ),
    }
    out.update(fields)
    return out


def machine(machine_id: str = MACHINE_ID, **fields: Any) -> dict[str, Any]:
    """The report's ``machine`` section (as ``machine.machine_json`` writes it)."""
    out: dict[str, Any] = {
        "hostname": "ci-runner",
        "machine_id": machine_id,
        "system": "Linux",
        "python": "3.11.7",
        "cpu_model": "AMD EPYC 7B13",
        "cpu_count": 2,
        "ram_gb": 23.5,
        "virtualized": True,
        "gpus": [],
        "sensors": [
            {
                "name": "estimate",
                "available": True,
                "method": "estimated",
                "components": ["cpu", "dram"],
                "reason": None,
                "fix": None,
                "details": {},
            }
        ],
    }
    out.update(fields)
    return out


def report(
    records: Sequence[Mapping[str, Any]],
    *,
    accounting: Accounting = WORLD,
    complete: bool = True,
    warnings: Sequence[str] = (),
    created: str = "2026-11-20T10:05:00Z",
    **fields: Any,
) -> dict[str, Any]:
    """A whole JSON report around ``records``, as ``results.io.build_report`` writes it."""
    tests = [dict(r) for r in records]
    out: dict[str, Any] = {
        "schema": SCHEMA,
        "version": "0.1.0",
        "created": created,
        "complete": complete,
        "machine": machine(),
        "accounting": accounting.to_json(),
        "idle_power_w": {"cpu": 0.0, "dram": 0.5},
        "run": {
            "started": START,
            "finished": created,
            "duration_s": unix_s(created) - unix_s(START),
            "workers": None,
            "args": ["--carbon"],
        },
        "tests": tests,
        "summary": summarize(tests),
        "warnings": list(warnings),
    }
    out.update(fields)
    return out
