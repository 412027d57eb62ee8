"""The JSON report (schema ``pytest-carbon/report/1``): build it from a session, write it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_carbon import __version__
from pytest_carbon.results.atomic import write_text_atomic
from pytest_carbon.results.caveats import aggregate
from pytest_carbon.results.record import SCHEMA, iso_utc

if TYPE_CHECKING:
    from pytest_carbon.session import CarbonSession


#: In a prompt record's ``failed_case``: pytest-carbon itself raised on that item (a bug
#: met on that answer). The item failed, its record says why, and the report is
#: ``complete: false``.
PLUGIN_ERROR_KEY = "plugin_error"


class ReportError(ValueError):
    """A file is not a pytest-carbon report (or has another schema)."""


def summarize(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Totals over records; unmeasured records (null energy) count as tests, not as zero."""
    energy = gco2e = duration = 0.0
    tests = measured = 0
    methods: dict[str, int] = {}
    embodied: float | None = None
    water: float | None = None
    for r in records:
        tests += 1
        if r.get("energy_j") is None:
            continue
        measured += 1
        energy += r["energy_j"]
        gco2e += r.get("gco2e_g") or 0.0
        duration += r.get("duration_s") or 0.0
        m = r.get("method") or "unknown"
        methods[m] = methods.get(m, 0) + 1
        if r.get("embodied_gco2e_g") is not None:
            embodied = (embodied or 0.0) + r["embodied_gco2e_g"]
        if r.get("water_l") is not None:
            water = (water or 0.0) + r["water_l"]
    out: dict[str, Any] = {
        "energy_j": energy,
        "gco2e_g": gco2e,
        "duration_s": duration,
        "tests": tests,
        "measured": measured,
        "methods": methods,
    }
    if embodied is not None:
        out["embodied_gco2e_g"] = embodied
    if water is not None:
        out["water_l"] = water
    return out


def plugin_failures(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """Node ids of the records of items on which pytest-carbon itself raised."""
    out = []
    for r in records:
        prompt = r.get("prompt")
        failed = prompt.get("failed_case") if isinstance(prompt, Mapping) else None
        if isinstance(failed, Mapping) and failed.get(PLUGIN_ERROR_KEY):
            out.append(str(r.get("nodeid")))
    return out


def build_report(
    cs: CarbonSession, *, complete: bool, incomplete_reason: str = ""
) -> dict[str, Any]:
    """The report of a CarbonSession (controller or local). ``complete`` is false when not
    every collected test ran (``-x``, ``--maxfail``, an interrupt), or when pytest-carbon
    itself failed on an item (:func:`plugin_failures`); ``incomplete_reason`` then says
    why. Every string is free of lone surrogates (:func:`scrub_surrogates`), so every
    writer can encode the report."""
    from pytest_carbon.measure.machine import machine_json
    from pytest_carbon.sandbox.safe_text import scrub_surrogates

    machine = machine_json(gpus=cs.gpus)
    machine["sensors"] = cs.sensor_statuses()
    machine["idle"] = cs.idle_json
    records = sorted(cs.records, key=lambda r: r["nodeid"])
    crashed = plugin_failures(records)
    if crashed:
        shown = ", ".join(crashed[:5]) + (
            f" and {len(crashed) - 5} more" if len(crashed) > 5 else ""
        )
        why = f"pytest-carbon failed on {len(crashed)} item(s), whose records say why: {shown}"
        incomplete_reason = (
            f"{incomplete_reason}; {why}" if not complete and incomplete_reason else why
        )
        complete = False
    finished = cs.finished_unix_s
    report: dict[str, Any] = {
        "schema": SCHEMA,
        "version": __version__,
        "created": iso_utc(),
        "complete": complete,
        **({} if complete else {"incomplete_reason": incomplete_reason or "unknown"}),
        "machine": machine,
        "accounting": cs.accounting.to_json(),
        "idle_power_w": cs.idle_power_w,
        "run": {
            "started": iso_utc(cs.started_unix_s),
            "finished": iso_utc(finished) if finished else iso_utc(),
            "duration_s": (finished or time.time()) - cs.started_unix_s,
            "workers": cs.workers,
            "args": list(cs.config.invocation_params.args),
        },
        "tests": records,
        "summary": summarize(records),
        "warnings": list(cs.warnings),
        "warning_kinds": aggregate(records),
    }
    return scrub_surrogates(report)  # type: ignore[no-any-return]


def dumps(report: Mapping[str, Any]) -> str:
    return json.dumps(report, indent=2, sort_keys=False, default=_default, allow_nan=False) + "\n"


def _default(obj: object) -> object:
    if isinstance(obj, (set, tuple)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    return repr(obj)


def write_json(report: Mapping[str, Any], path: str | Path) -> Path:
    return write_text_atomic(path, dumps(report))


def load_report(path: str | Path) -> dict[str, Any]:
    """Read and check a report; a clear ReportError when it is not one."""
    p = Path(path)
    try:
        with open(p, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise ReportError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise ReportError(f"{p}: is a directory, not a report file") from None
    except UnicodeDecodeError as exc:
        raise ReportError(f"{p}: not a pytest-carbon report (not UTF-8 text: {exc})") from None
    except json.JSONDecodeError as exc:
        raise ReportError(f"{p}: not a pytest-carbon report (not JSON: {exc})") from None
    except OSError as exc:
        raise ReportError(f"{p}: cannot read ({exc.strerror or exc})") from None
    check_report(data, str(p))
    from pytest_carbon.sandbox.safe_text import scrub_surrogates

    # JSON can carry a lone surrogate as an escape ("\\udc80"): none reaches a writer.
    return scrub_surrogates(data)  # type: ignore[no-any-return]


def check_report(data: Any, where: str = "report") -> None:
    """Raise :class:`ReportError` unless ``data`` is a report of schema :data:`SCHEMA`."""
    if not isinstance(data, dict) or "schema" not in data:
        raise ReportError(f"{where}: not a pytest-carbon report (no 'schema' field)")
    if data["schema"] != SCHEMA:
        raise ReportError(f"{where}: unsupported schema {data['schema']!r}, expected {SCHEMA!r}")
    if not isinstance(data.get("tests"), list):
        raise ReportError(f"{where}: malformed report: 'tests' must be a list")
