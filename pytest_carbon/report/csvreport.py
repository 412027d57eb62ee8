"""The CSV report: one row per record, with codecarbon's ``emissions.csv`` columns first.

Columns named as in codecarbon keep codecarbon's meaning and unit (``duration`` s,
``emissions`` kgCO2e, ``emissions_rate`` kgCO2e/s, ``*_power`` W, ``*_energy`` and
``energy_consumed`` kWh, ``ram_*`` for memory), so tools written for codecarbon's files
read ours. Our own columns follow, with units in their names, and ``method`` says how
each row's numbers were obtained.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytest_carbon.carbon.accounting import kwh
from pytest_carbon.results.atomic import write_text_atomic

CODECARBON_COLUMNS = (
    "timestamp",
    "project_name",
    "run_id",
    "experiment_id",
    "duration",
    "emissions",
    "emissions_rate",
    "cpu_power",
    "gpu_power",
    "ram_power",
    "cpu_energy",
    "gpu_energy",
    "ram_energy",
    "energy_consumed",
    "water_consumed",
    "country_name",
    "country_iso_code",
    "region",
    "os",
    "python_version",
    "cpu_count",
    "cpu_model",
    "gpu_count",
    "gpu_model",
    "ram_total_size",
    "tracking_mode",
    "pue",
)
OUR_COLUMNS = (
    "nodeid",
    "outcome",
    "method",
    "cpu_method",
    "dram_method",
    "gpu_method",
    "energy_j",
    "dynamic_energy_j",
    "duration_s",
    "power_w",
    "edp_js",
    "gco2e_g",
    "intensity_g_per_kwh",
    "intensity_source",
    "rounds",
    "energy_j_per_call",
    "prompt_task",
    "prompt_model",
    "prompt_sample",
    "prompt_correct",
    "worker",
)
COLUMNS = CODECARBON_COLUMNS + OUR_COLUMNS


def _kwh_or_none(j: float | None) -> float | None:
    return None if j is None else kwh(j)


def rows(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    machine = report.get("machine", {})
    acc = report.get("accounting", {})
    gpus = machine.get("gpus") or []
    out = []
    for r in report.get("tests", []):
        comps = r.get("components") or {}
        meths = r.get("component_methods") or {}
        d = r.get("duration_s")
        e = r.get("energy_j")
        g = r.get("gco2e_g")
        prompt = r.get("prompt") or {}
        per_call = ((r.get("per_call") or {}).get("energy_j") or {}).get("mean")

        def power(c: str, comps: Mapping[str, float] = comps, d: float | None = d) -> Any:
            return comps[c] / d if c in comps and d else None

        row = {
            "timestamp": r.get("start"),
            "project_name": "pytest-carbon",
            "run_id": report.get("created"),
            "experiment_id": r.get("nodeid"),
            "duration": d,
            "emissions": None if g is None else g / 1000.0,
            "emissions_rate": None if g is None or not d else g / 1000.0 / d,
            "cpu_power": power("cpu"),
            "gpu_power": power("gpu"),
            "ram_power": power("dram"),
            "cpu_energy": _kwh_or_none(comps.get("cpu")),
            "gpu_energy": _kwh_or_none(comps.get("gpu")),
            "ram_energy": _kwh_or_none(comps.get("dram")),
            "energy_consumed": _kwh_or_none(e),
            "water_consumed": r.get("water_l"),
            "country_name": acc.get("country_name") or acc.get("country") or "World",
            "country_iso_code": acc.get("country"),
            "region": acc.get("region"),
            "os": machine.get("system"),
            "python_version": machine.get("python"),
            "cpu_count": machine.get("cpu_count"),
            "cpu_model": machine.get("cpu_model"),
            "gpu_count": len(gpus),
            "gpu_model": ", ".join(str(g_.get("name", "")) for g_ in gpus) or None,
            "ram_total_size": machine.get("ram_gb"),
            "tracking_mode": "process",
            "pue": acc.get("pue"),
            "nodeid": r.get("nodeid"),
            "outcome": r.get("outcome"),
            "method": r.get("method"),
            "cpu_method": meths.get("cpu"),
            "dram_method": meths.get("dram"),
            "gpu_method": meths.get("gpu"),
            "energy_j": e,
            "dynamic_energy_j": r.get("dynamic_energy_j"),
            "duration_s": d,
            "power_w": r.get("power_w"),
            "edp_js": r.get("edp_js"),
            "gco2e_g": g,
            # A record charged at its own time (the intensity hook) carries its own.
            "intensity_g_per_kwh": r.get("intensity_g_per_kwh", acc.get("intensity_g_per_kwh")),
            "intensity_source": r.get("intensity_source", acc.get("intensity_source")),
            "rounds": r.get("rounds"),
            "energy_j_per_call": per_call,
            "prompt_task": prompt.get("task"),
            "prompt_model": prompt.get("model"),
            "prompt_sample": prompt.get("sample"),
            "prompt_correct": prompt.get("correct"),
            "worker": r.get("worker"),
        }
        out.append(row)
    return out


def render_csv(report: Mapping[str, Any]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows(report):
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return buf.getvalue()


def write_csv(report: Mapping[str, Any], path: str | Path) -> Path:
    return write_text_atomic(path, render_csv(report))
