"""Merge reports from shards or machines into one report: ``pytest-carbon merge OUT IN...``.

The merged report keeps the schema. It adds ``machines`` (one entry per distinct machine
id, with its sensors, accounting and idle power), and each record gains ``machine_id``.
A record is identified by ``(machine_id, nodeid, start)``: the same record reached
through two inputs (a report given twice, or a merged report merged again) is kept
once. Records that share that identity but differ are both kept, with a warning,
because dropping a measurement would lose data. The summary is recomputed (nulls
skipped), ``complete`` is true only when every input is, and warnings are concatenated.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_carbon.compare.storage import write_json_atomic
from pytest_carbon.report.format import num
from pytest_carbon.results.io import ReportError, check_report, load_report
from pytest_carbon.results.record import SCHEMA


def _machines_of(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The machines of one input: its ``machines`` list if merged, else its ``machine``."""
    if report.get("machines"):
        return [dict(m) for m in report["machines"]]
    machine = dict(report.get("machine") or {})
    machine.setdefault("machine_id", "unknown-machine")
    machine["accounting"] = report.get("accounting")
    machine["idle_power_w"] = report.get("idle_power_w")
    return [machine]


def _record_identity(rec: dict[str, Any]) -> tuple[Any, ...]:
    from pytest_carbon.results.record import IDENTITY

    return tuple(rec.get(k) for k in IDENTITY)


def _same_content(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def merge_reports(reports: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Merge reports into one (see the module docstring). Raises ReportError on a bad input."""
    if not reports:
        raise ReportError("nothing to merge")
    for i, rep in enumerate(reports):
        check_report(rep, f"input {i + 1}")
    from pytest_carbon import __version__
    from pytest_carbon.results.io import summarize
    from pytest_carbon.results.record import iso_utc

    machines: dict[str, dict[str, Any]] = {}
    records: list[dict[str, Any]] = []
    seen: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    warnings: list[str] = []
    duplicates = 0
    runs: list[dict[str, Any]] = []
    for rep in reports:
        for m in _machines_of(rep):
            machines.setdefault(str(m.get("machine_id")), m)
        default_mid = (rep.get("machine") or {}).get("machine_id") or "unknown-machine"
        for rec in rep["tests"]:
            rec = dict(rec)
            rec.setdefault("machine_id", default_mid)
            key = _record_identity(rec)
            same = seen.setdefault(key, [])
            if any(_same_content(rec, other) for other in same):
                duplicates += 1
                continue
            if same:
                warnings.append(
                    f"two different records of {rec.get('nodeid')} on {rec.get('machine_id')} "
                    f"started at {rec.get('start')}: both kept"
                )
            same.append(rec)
            records.append(rec)
        for w in rep.get("warnings") or []:
            if w not in warnings:
                warnings.append(w)
        run = rep.get("run") or {}
        for sub in run.get("merged_from") or [run]:
            if sub not in runs:
                runs.append(sub)

    started = [str(r["started"]) for r in runs if r.get("started")]
    finished = [str(r["finished"]) for r in runs if r.get("finished")]
    durations = [v for v in (num(r.get("duration_s")) for r in runs) if v is not None]
    machine_list = list(machines.values())
    if len(machine_list) == 1:
        only = machine_list[0]
        machine = {k: v for k, v in only.items() if k not in ("accounting", "idle_power_w")}
        accounting = only.get("accounting")
        idle = only.get("idle_power_w")
    else:
        # Several machines: the per-machine facts live in `machines`; these keep the schema.
        machine = {
            "hostname": None,
            "machine_id": "merged",
            "cpu_model": f"{len(machine_list)} machines (see 'machines')",
            "cpu_count": None,
            "ram_gb": None,
            "gpus": [],
            "sensors": [],
        }
        accountings = [m.get("accounting") for m in machine_list]
        same_acc = all(a == accountings[0] for a in accountings)
        accounting = (
            accountings[0]
            if same_acc
            else {
                "intensity_g_per_kwh": None,
                "intensity_source": "per machine (see machines[].accounting)",
            }
        )
        idle = {}
    return {
        "schema": SCHEMA,
        "version": __version__,
        "created": iso_utc(),
        "complete": all(bool(r.get("complete", False)) for r in reports),
        "machine": machine,
        "machines": machine_list,
        "accounting": accounting,
        "idle_power_w": idle,
        "run": {
            "started": min(started) if started else None,
            "finished": max(finished) if finished else None,
            # Summed: shards run in parallel, so this is the machine time spent, not wall time.
            "duration_s": sum(durations) if durations else None,
            "workers": None,
            "args": None,
            "merged_from": runs,
            "duplicates_dropped": duplicates,
        },
        "tests": records,
        "summary": summarize(records),
        "warnings": warnings,
    }


def _refuse_output(out: str, inputs: Sequence[str], *, force: bool) -> str | None:
    """Why OUT must not be written, or None. The first argument is the output: a user who
    types ``merge a.json b.json`` meant to merge two reports, and writing over ``a.json``
    would lose its records, so an existing OUT needs ``--force`` and an input never is one."""
    out_path = Path(out)
    for given in inputs:
        same = out_path.resolve() == Path(given).resolve()
        if not same and out_path.exists() and Path(given).exists():
            same = os.path.samefile(out_path, given)
        if same:
            return (
                f"the output {out} is also an input; merge writes its first argument. "
                f"Use: pytest-carbon merge MERGED.json {' '.join(inputs)}"
            )
    if out_path.exists() and not force:
        return (
            f"{out} exists and would be overwritten (merge writes its first argument). "
            f"Give a new output path, e.g. pytest-carbon merge merged.json {out} "
            f"{' '.join(inputs)}, or add --force to replace {out}"
        )
    return None


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="pytest-carbon merge",
        description="Merge pytest-carbon JSON reports (shards, workers, CI matrix machines) "
        "into one report, grouped by machine. Every record is kept once.",
    )
    parser.add_argument("out", metavar="OUT.json", help="the merged report to write")
    parser.add_argument("inputs", metavar="IN.json", nargs="+", help="reports to merge")
    parser.add_argument(
        "--force", action="store_true", help="overwrite OUT.json if it exists (never an input)"
    )
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    refusal = _refuse_output(args.out, args.inputs, force=args.force)
    if refusal:
        print(f"pytest-carbon merge: error: {refusal}", file=sys.stderr)
        return 2
    try:
        reports = [load_report(p) for p in args.inputs]
        merged = merge_reports(reports)
    except ReportError as exc:
        print(f"pytest-carbon merge: error: {exc}", file=sys.stderr)
        return 2
    try:
        write_json_atomic(args.out, merged)
    except OSError as exc:
        print(f"pytest-carbon merge: error: cannot write {args.out}: {exc}", file=sys.stderr)
        return 2
    dropped = merged["run"]["duplicates_dropped"]
    print(
        f"merged {len(reports)} report(s) from {len(merged['machines'])} machine(s): "
        f"{len(merged['tests'])} record(s)"
        + (f", {dropped} duplicate(s) dropped" if dropped else "")
        + f" -> {args.out}"
    )
    return 0
