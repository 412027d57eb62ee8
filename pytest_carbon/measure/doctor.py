"""``pytest-carbon sensors``: which sensors can be read here, how, and how to fix the rest."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from typing import Any

from pytest_carbon.measure.sensors.base import SensorStatus
from pytest_carbon.measure.sensors.discover import DEFAULT_RAPL_ROOT, discover

_ORDER = ("rapl", "nvml", "estimate")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pytest-carbon sensors",
        description="List the energy sensors: readable or not, what they measure and how, "
        "and how to make an unreadable one readable.",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument(
        "--rapl-root",
        default=DEFAULT_RAPL_ROOT,
        metavar="DIR",
        help=f"powercap sysfs root (default: {DEFAULT_RAPL_ROOT})",
    )
    p.add_argument(
        "--calibrate",
        action="store_true",
        help="measure this machine's idle power (repeating until the machine is quiet "
        "enough to separate it from other work) and store it for later runs",
    )
    p.add_argument(
        "--seconds",
        type=float,
        default=30.0,
        metavar="S",
        help="give up calibrating after S seconds (default: 30)",
    )
    return p


def calibrate_idle(rapl_root: str, seconds: float) -> tuple[bool, dict[str, Any]]:
    """Calibrate until a trusted fit is stored or ``seconds`` pass. Returns (stored, idle)."""
    import time

    from pytest_carbon.measure.idle import save, store_path
    from pytest_carbon.measure.meter import Meter

    found = discover("auto", rapl_root)
    meter = Meter(found.sensors)
    deadline = time.monotonic() + seconds
    try:
        if not any(s.machine_wide for s in meter.sensors):
            return False, {"method": "no machine-wide counter here: nothing to calibrate"}
        # Steps pool across attempts: the quiet moments of a busy machine add up.
        cal = meter.calibration()
        while True:
            # Longer steps than a session's quick check: less noise per point.
            cal.run(duration_s=2.0)
            estimate = cal.estimate()
            if estimate.trusted:
                save(meter.idle_key(), estimate, store_path())
                return True, {**estimate.to_json(), "store": store_path()}
            if time.monotonic() > deadline:
                return False, estimate.to_json()
    finally:
        meter.close()


def survey(rapl_root: str = DEFAULT_RAPL_ROOT) -> dict[str, Any]:
    """What ``pytest --carbon`` would use here, as a JSON-ready dict."""
    from pytest_carbon.measure.machine import cpu_info

    found = discover("auto", rapl_root)
    try:
        statuses: dict[str, SensorStatus] = {s.name: s for s in found.statuses}
        used = {s.name for s in found.sensors}
        # Each component goes to the first sensor that lists it (the meter's rule).
        owners: dict[str, tuple[str, str]] = {}
        for s in found.sensors:
            for c in s.components:
                owners.setdefault(c, (s.name, s.method))
    finally:
        for s in found.sensors:
            with contextlib.suppress(Exception):
                s.close()
    if "estimate" not in statuses:
        # A counter covers the CPU, so discover() did not open the estimate; describe it
        # anyway, as the fallback it would be.
        from pytest_carbon.measure.sensors.estimate import EstimateSensor

        statuses["estimate"] = EstimateSensor().status()
    info = cpu_info()
    rows = []
    for name in _ORDER:
        st = statuses.get(name)
        if st is None:
            continue
        row = st.to_json()
        row["used"] = name in used
        if name == "rapl" and info.hypervisor and (st.reason or "").startswith("no RAPL"):
            row["hint"] = "this machine is virtualised: hypervisors rarely pass RAPL through"
        rows.append(row)
    plan = {c: {"sensor": s, "method": m} for c, (s, m) in owners.items()}
    return {
        "schema": "pytest-carbon/sensors/1",
        "machine": {
            "cpu_model": info.model,
            "cpu_count": info.logical_cpus,
            "virtualized": info.hypervisor,
        },
        "rapl_root": rapl_root,
        "sensors": rows,
        "plan": plan,
        "summary": _summary(plan, statuses),
    }


def _summary(plan: dict[str, dict[str, str]], statuses: dict[str, SensorStatus]) -> str:
    if not plan:
        return "pytest --carbon will measure nothing here: no sensor could be opened."
    by_sensor: dict[str, list[str]] = {}
    for c, v in plan.items():
        by_sensor.setdefault(v["sensor"], []).append(c)
    parts = []
    for sensor, comps in by_sensor.items():
        method = plan[comps[0]]["method"]
        how = {
            "rapl": "from the RAPL powercap counters (machine-wide: each test gets its CPU "
            "time x watts per busy CPU, plus its share of idle; --carbon-attribution)",
            "nvml": "from NVML (machine-wide: attributed like RAPL; --carbon-attribution)",
        }.get(sensor)
        if sensor == "estimate":
            d = statuses["estimate"].details
            how = (
                f"as the process tree's CPU time x {d.get('watts_per_core')} W per busy CPU "
                f"(plus {d.get('idle_w_per_cpu', 0)} W idle per CPU) and "
                f"resident memory x {d.get('memory_watts_per_gb')} W/GB"
            )
        parts.append(f"{' and '.join(comps)}, {method} {how}")
    line = "pytest --carbon will measure " + "; ".join(parts) + "."
    missing = [n for n in ("rapl", "nvml") if n in statuses and not statuses[n].available]
    if missing and "estimate" in by_sensor:
        line += f" No hardware counter is readable ({', '.join(missing)}: see above)."
    return line


def _text(report: dict[str, Any]) -> str:
    lines = [f"pytest-carbon sensors (powercap root: {report['rapl_root']})", ""]
    for row in report["sensors"]:
        state = "readable" if row["available"] else "not available"
        if row["available"] and not row["used"]:
            state = "readable (not needed)"
        comps = ", ".join(row["components"]) or "-"
        # An unreadable sensor measures nothing: its method would be a false promise.
        method = row["method"] if row["available"] else "unavailable"
        lines.append(f"{row['name']:<9} {state:<22} {method:<11} {comps}")
        d = row["details"]
        if not row["available"]:
            lines.append(f"          reason: {row['reason']}")
            if row.get("hint"):
                lines.append(f"          note:   {row['hint']}")
            if row["fix"]:
                lines.append(f"          fix:    {row['fix']}")
        elif row["name"] == "rapl":
            for z in d.get("zones", []):
                lines.append(
                    f"          {z['zone']:<16} {z['name']:<10} -> {z['component']} "
                    f"(wraps after {z['wrap_period_s']:.0f} s at full power)"
                )
            for s in d.get("skipped", []):
                lines.append(f"          {s['zone']:<16} skipped: {s['why']}")
        elif row["name"] == "nvml":
            for g in d.get("gpus", []):
                lines.append(f"          GPU {g['index']}: {g['name']} {g['uuid']} ({g['method']})")
        elif row["name"] == "estimate":
            lines.append(f"          CPU model:       {d.get('cpu_model')}")
            lines.append(
                f"          W per busy CPU:  {d.get('watts_per_core')} ({d.get('cpu_source')})"
            )
            lines.append(
                f"          memory:          {d.get('memory_watts_per_gb')} W/GB resident "
                f"({d.get('memory_source')})"
            )
    lines += ["", "The sandbox of prompt suites has its own report: `pytest-carbon sandbox`."]
    lines += ["", report["summary"]]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.calibrate:
        stored, idle = calibrate_idle(args.rapl_root, args.seconds)
        if args.json:
            print(json.dumps({"stored": stored, "idle": idle}, indent=2))
        elif stored:
            print(
                f"idle power {idle['power_w']:.2f} W +- {idle['uncertainty_w']:.2f} W "
                f"({idle['method']}); stored in {idle['store']}"
            )
        else:
            print(f"not calibrated: {idle['method']}", file=sys.stderr)
        return 0 if stored else 1
    report = survey(args.rapl_root)
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print(_text(report))
    sys.stdout.flush()
    return 0
