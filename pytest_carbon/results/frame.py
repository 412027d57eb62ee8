"""Reports as pandas DataFrames: one row per record, flat columns, for your own analysis.

``read_report(path_or_paths)`` reads one report, several, or a directory of them (merged
reports too) into one DataFrame. ``model_summary_frame`` wraps the per-model summary the
terminal prints (:func:`pytest_carbon.prompts.summary.model_summary`), so the numbers are
the same everywhere. pandas is imported inside these functions only.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_carbon.results.io import ReportError, load_report
from pytest_carbon.results.record import Generation, Prompt, Record, Stats, scalar_fields

PathLike = str | os.PathLike[str]

#: Report-level columns, the same on every row of one report, with their types
#: (``report_created`` is a timestamp).
_REPORT_TYPES: dict[str, type] = {
    "source_file": str,
    "report_created": object,
    "report_complete": bool,
    "report_version": str,
    "machine_id": str,
    "hostname": str,
    "cpu_model": str,
    "country": str,
    "region": str,
    "intensity_g_per_kwh": float,
    "intensity_source": str,
    "intensity_is_default": bool,
    "pue": float,
}
REPORT_COLUMNS: tuple[str, ...] = tuple(_REPORT_TYPES)
#: Record fields a frame row does not copy as a column of the same name: ``machine_id``
#: and the intensity are report-level columns above (a record's own value, where it has
#: one, fills them in its row).
_REPORT_LEVEL = frozenset({"machine_id", "intensity_g_per_kwh", "intensity_source"})
#: The record's scalar fields, from the one definition (:class:`record.Record`): the
#: required ones are columns of every frame, in this order; an optional one (embodied,
#: water, attempts, ...) is a column when a record has it.
_RECORD_SCALARS = tuple(f for f in scalar_fields(Record) if f[0] not in _REPORT_LEVEL)
_LEAD = ("nodeid", "outcome", "method", "start")
SCALAR_FIELDS: tuple[str, ...] = (
    *_LEAD,
    *(name for name, _, required in _RECORD_SCALARS if required and name not in _LEAD),
)
OPTIONAL_FIELDS: tuple[str, ...] = tuple(
    name for name, _, required in _RECORD_SCALARS if not required
)
#: Fields a frame row gives back to a record: the scalars (``start`` stays behind: the
#: frame holds it as a timestamp, and the summaries do not use it) and the machine.
_BACK_FIELDS: tuple[str, ...] = (
    *(f for f in SCALAR_FIELDS if f != "start"),
    "machine_id",
)
RECORD_COLUMNS: tuple[str, ...] = (
    "record_index",
    *SCALAR_FIELDS,
    "sensors",
    "warnings",
    "has_trace",
)
#: Prompt fields (``prompt_``), generation fields (``generation_``), from the definition.
_PROMPT_SCALARS = scalar_fields(Prompt)
_GENERATION_SCALARS = scalar_fields(Generation)
#: Graded references: the energy percentile and its interval (``prompt.energy_percentile``).
_PERCENTILE_COLUMNS = ("energy_percentile", "energy_percentile_low", "energy_percentile_high")
#: Prompt-suite columns, present (null) even on frames without prompts.
PROMPT_COLUMNS: tuple[str, ...] = (
    *(f"prompt_{name}" for name, _, _ in _PROMPT_SCALARS),
    "prompt_failed_case",
    *(f"generation_{name}" for name, _, _ in _GENERATION_SCALARS),
    "reference_ratio_energy",
    "reference_ratio_duration",
    *_PERCENTILE_COLUMNS,
)
_STATS = tuple(Stats.__annotations__)


def _typed(kind: type) -> set[str]:
    return {
        *(n for n, k in _REPORT_TYPES.items() if k is kind),
        *(n for n, k, _ in _RECORD_SCALARS if k is kind),
        *(f"prompt_{n}" for n, k, _ in _PROMPT_SCALARS if k is kind),
        *(f"generation_{n}" for n, k, _ in _GENERATION_SCALARS if k is kind),
    }


_FLOAT = {
    *_typed(float),
    "reference_ratio_energy",
    "reference_ratio_duration",
    *_PERCENTILE_COLUMNS,
}
_INT = {*_typed(int), "record_index"}
_BOOL = {*_typed(bool), "has_trace"}
_TEXT = {*_typed(str), "sensors", "warnings", "prompt_failed_case"}


def read_report(path_or_paths: PathLike | Iterable[PathLike]) -> Any:
    """Read pytest-carbon JSON reports into a pandas DataFrame, one row per record.

    ``path_or_paths``: a report file, a directory (every ``*.json`` below it, sorted, e.g.
    a ``.carbon`` storage folder), or a list of either. A file that is not a pytest-carbon
    report raises :class:`~pytest_carbon.results.io.ReportError` naming the file,
    except inside a directory, where JSON files without a pytest-carbon ``schema`` are
    skipped and listed in ``df.attrs["skipped_files"]``.

    Columns (units in the names; null energies stay NaN, never zero):

    - report level: ``source_file``, ``report_created`` (UTC datetime),
      ``report_complete``, ``report_version``, ``machine_id``, ``hostname``, ``cpu_model``,
      ``country``, ``region``, ``intensity_g_per_kwh``, ``intensity_source``,
      ``intensity_is_default``, ``pue``. In a merged report (a ``machines`` list), a
      record's own ``machine_id`` selects its machine.
    - record: ``record_index`` (position in its file), then every scalar field of
      :class:`pytest_carbon.results.record.Record`: ``nodeid``, ``outcome``,
      ``method`` (measured / estimated / attributed), ``start`` (UTC datetime),
      ``duration_s``, ``energy_j``, ``dynamic_energy_j``, ``power_w``, ``edp_js``,
      ``ed2p_js2``, ``cpu_time_s``, ``share``, ``gco2e_g``, ``rounds``, ``worker``;
      ``sensors`` and ``warnings`` (joined with ``"; "``), ``has_trace``; the optional
      fields (``embodied_gco2e_g``, ``water_l``, ``machine_energy_j``, ``attempts``) when
      the report has them.
    - per component ``C`` (cpu, dram, gpu, ...): ``component_C_j`` and
      ``component_C_method``.
    - per call (``carbon`` fixture): ``per_call_energy_j_STAT`` and
      ``per_call_duration_s_STAT`` for STAT in mean, median, stdev, min, max.
    - per phase ``P``: ``phase_P_energy_j``, ``phase_P_duration_s``, ``phase_P_method``.
    - ``extra_K`` for each scalar ``extra_info`` key ``K``.
    - prompt suites: ``prompt_task``, ``prompt_model``, ``prompt_strategy``, ``prompt_sample``,
      ``prompt_samples``, ``prompt_temperature``, ``prompt_correct``,
      ``prompt_failed_case``, ``generation_input_tokens``, ``generation_output_tokens``,
      ``generation_energy_j``, ``generation_gco2e_g``, ``generation_method``,
      ``reference_ratio_energy``, ``reference_ratio_duration`` (present, null, on reports
      without prompts; a single-number ``reference_ratio`` fills the energy column),
      ``energy_percentile``, ``energy_percentile_low``, ``energy_percentile_high`` (tasks
      with graded references; null elsewhere).
    """
    import pandas as pd

    files = _expand(path_or_paths)
    if not files:
        raise ReportError(f"no JSON files found in {_describe(path_or_paths)}")
    rows: list[dict[str, Any]] = []
    skipped: list[str] = []
    for path, from_dir in files:
        try:
            report = load_report(path)
        except ReportError:
            if from_dir and _foreign_json(path):
                skipped.append(str(path))
                continue
            raise
        rows.extend(flatten_report(report, source_file=str(path)))
    if len(skipped) == len(files):
        raise ReportError(
            f"no pytest-carbon reports in {_describe(path_or_paths)} "
            f"({len(skipped)} other JSON files skipped)"
        )
    df = _frame(pd, rows)
    df.attrs["skipped_files"] = skipped
    return df


def _describe(path_or_paths: Any) -> str:
    if isinstance(path_or_paths, (str, os.PathLike)):
        return str(path_or_paths)
    return ", ".join(str(p) for p in path_or_paths)


def _expand(path_or_paths: PathLike | Iterable[PathLike]) -> list[tuple[Path, bool]]:
    """(file, found by a directory scan) pairs, in the order given."""
    if isinstance(path_or_paths, (str, os.PathLike)):
        items = [path_or_paths]
    else:
        items = list(path_or_paths)
    files: list[tuple[Path, bool]] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            files += [(f, True) for f in sorted(p.rglob("*.json")) if f.is_file()]
        else:
            files.append((p, False))
    return files


def _foreign_json(path: Path) -> bool:
    """Valid JSON that does not claim to be ours: skipped in a directory scan. A broken
    file, or one of ours with another schema version, is an error instead."""
    import json

    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return False
    schema = data.get("schema", "") if isinstance(data, dict) else ""
    return not str(schema).startswith("pytest-carbon/")


def flatten_report(
    report: Mapping[str, Any], source_file: str | None = None
) -> list[dict[str, Any]]:
    """The flat rows of one report (plain dicts; :func:`read_report` makes them a frame)."""
    tests = report.get("tests")
    if not isinstance(tests, list):
        raise ReportError(f"{source_file or 'report'}: no 'tests' list")
    machines = {
        str(m.get("machine_id")): m
        for m in report.get("machines") or []
        if isinstance(m, dict) and m.get("machine_id")
    }
    default_machine = _dict(report.get("machine"))
    acc = _dict(report.get("accounting"))
    rows = []
    for index, rec in enumerate(tests):
        if not isinstance(rec, dict):
            raise ReportError(f"{source_file or 'report'}: test record {index} is not an object")
        machine = machines.get(str(rec.get("machine_id")), default_machine) or {}
        if not machine and len(machines) == 1:
            machine = next(iter(machines.values()))
        # A merged report may keep each machine's own accounting beside it.
        m_acc = _dict(machine.get("accounting")) or acc
        row: dict[str, Any] = {
            "source_file": source_file,
            "report_created": report.get("created"),
            "report_complete": report.get("complete"),
            "report_version": report.get("version"),
            "machine_id": rec.get("machine_id") or machine.get("machine_id"),
            "hostname": machine.get("hostname"),
            "cpu_model": machine.get("cpu_model"),
            "country": m_acc.get("country"),
            "region": m_acc.get("region"),
            "intensity_g_per_kwh": m_acc.get("intensity_g_per_kwh"),
            "intensity_source": m_acc.get("intensity_source"),
            "intensity_is_default": m_acc.get("intensity_is_default"),
            "pue": m_acc.get("pue"),
        }
        row.update(flatten_record(rec))
        row["record_index"] = index
        rows.append(row)
    return rows


def flatten_record(rec: Mapping[str, Any]) -> dict[str, Any]:
    """One record as flat columns (see :func:`read_report` for the names)."""
    row: dict[str, Any] = {k: rec.get(k) for k in SCALAR_FIELDS}
    for optional in OPTIONAL_FIELDS:
        if optional in rec:
            row[optional] = rec[optional]
    for name in _REPORT_LEVEL:
        if rec.get(name) is not None:
            row[name] = rec[name]
    row["sensors"] = "; ".join(str(s) for s in rec.get("sensors") or []) or None
    row["warnings"] = "; ".join(str(w) for w in rec.get("warnings") or []) or None
    row["has_trace"] = bool(rec.get("trace"))
    comps = _dict(rec.get("components"))
    methods = _dict(rec.get("component_methods"))
    for name in [*comps, *(m for m in methods if m not in comps)]:
        row[f"component_{name}_j"] = comps.get(name)
        row[f"component_{name}_method"] = methods.get(name)
    per_call = _dict(rec.get("per_call"))
    for quantity in ("energy_j", "duration_s"):
        stats = _dict(per_call.get(quantity))
        for stat in _STATS:
            if stat in stats:
                row[f"per_call_{quantity}_{stat}"] = stats[stat]
    for name, phase in _dict(rec.get("phases")).items():
        phase = _dict(phase)
        row[f"phase_{name}_energy_j"] = phase.get("energy_j")
        row[f"phase_{name}_duration_s"] = phase.get("duration_s")
        row[f"phase_{name}_method"] = phase.get("method")
    for key, value in _dict(rec.get("extra_info")).items():
        if value is None or isinstance(value, (str, int, float, bool)):
            row[f"extra_{key}"] = value
    p = _dict(rec.get("prompt"))
    gen = _dict(p.get("generation"))
    ratio = p.get("reference_ratio")
    if not isinstance(ratio, dict):
        # The paired comparison's ratio is a single number: the per-call energy ratio.
        ratio = {"energy": ratio} if isinstance(ratio, (int, float)) else {}
    failed = p.get("failed_case")
    row.update({f"prompt_{name}": p.get(name) for name, _, _ in _PROMPT_SCALARS})
    row["prompt_failed_case"] = None if failed is None else _text(failed)
    row.update({f"generation_{name}": gen.get(name) for name, _, _ in _GENERATION_SCALARS})
    row["reference_ratio_energy"] = ratio.get("energy")
    row["reference_ratio_duration"] = ratio.get("duration")
    pct = _dict(p.get("energy_percentile"))
    for column, key in zip(_PERCENTILE_COLUMNS, ("value", "low", "high"), strict=True):
        row[column] = pct.get(key)
    return row


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    import json

    return json.dumps(value, sort_keys=True, default=str)


def _frame(pd: Any, rows: Sequence[Mapping[str, Any]]) -> Any:
    """The DataFrame, with fixed columns first and explicit dtypes (nulls stay null)."""
    fixed = [*REPORT_COLUMNS, *RECORD_COLUMNS, *PROMPT_COLUMNS]
    extra: list[str] = []
    seen = set(fixed)
    for row in rows:
        for key in row:
            if key not in seen:
                seen.add(key)
                extra.append(key)
    columns = [*fixed, *sorted(extra, key=_extra_order)]
    df = pd.DataFrame.from_records(list(rows), columns=columns)
    for col in df.columns:
        if col in ("report_created", "start"):
            df[col] = pd.to_datetime(df[col], utc=True, errors="coerce", format="ISO8601")
        elif col in _BOOL:
            df[col] = df[col].astype("boolean")
        elif col in _INT:
            df[col] = pd.to_numeric(df[col], errors="coerce").astype("Int64")
        elif col in _FLOAT or col.endswith(("_j", "_s", "_g", "_w", "_js")):
            df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
        elif col in _TEXT or col.endswith("_method"):
            df[col] = df[col].astype("string")
    return df


def _extra_order(col: str) -> tuple[int, str]:
    for rank, prefix in enumerate(
        ("component_", "embodied", "water", "per_call_", "phase_", "extra_")
    ):
        if col.startswith(prefix):
            return rank, col
    return 99, col


# --------------------------------------------------------------------- per-model summary


def records_from_frame(df: Any) -> list[dict[str, Any]]:
    """Records rebuilt from a :func:`read_report` frame (the fields summaries use).

    So a frame you filtered (``df[df.prompt_task == "x"]``) can be summarised with the
    same code as the terminal.
    """
    records = []
    for row in df.to_dict("records"):
        row = {k: _py(v) for k, v in row.items()}
        comps = {
            k[len("component_") : -len("_j")]: row[k]
            for k in row
            if k.startswith("component_") and k.endswith("_j") and row[k] is not None
        }
        comp_methods = {
            k[len("component_") : -len("_method")]: row[k]
            for k in row
            if k.startswith("component_") and k.endswith("_method") and row[k] is not None
        }
        rec: dict[str, Any] = {k: row.get(k) for k in _BACK_FIELDS}
        rec["components"] = comps
        rec["component_methods"] = comp_methods
        for optional in OPTIONAL_FIELDS:
            if row.get(optional) is not None:
                rec[optional] = row[optional]
        has_prompt = any(row.get(c) is not None for c in ("prompt_task", "prompt_model"))
        rec["prompt"] = None
        if has_prompt:
            prompt = {name: row.get(f"prompt_{name}") for name, _, _ in _PROMPT_SCALARS}
            prompt["failed_case"] = row.get("prompt_failed_case")
            prompt["generation"] = {
                name: row.get(f"generation_{name}") for name, _, _ in _GENERATION_SCALARS
            }
            prompt["reference_ratio"] = {
                "energy": row.get("reference_ratio_energy"),
                "duration": row.get("reference_ratio_duration"),
            }
            if row.get("energy_percentile") is not None:
                prompt["energy_percentile"] = {
                    "value": row.get("energy_percentile"),
                    "low": row.get("energy_percentile_low"),
                    "high": row.get("energy_percentile_high"),
                }
            rec["prompt"] = prompt
        records.append(rec)
    return records


def _py(value: Any) -> Any:
    """A pandas cell as a plain Python value (NA/NaN/NaT -> None)."""
    if value is None:
        return None
    try:
        import pandas as pd

        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        return value
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def model_summary_frame(data: Any) -> Any:
    """The per-model summary of prompt-suite records as a DataFrame, one row per model.

    ``data``: a frame from :func:`read_report`, a report dict, or a list of records. The
    rows are exactly :func:`pytest_carbon.prompts.summary.model_summary`'s, the code the
    terminal summary uses, so the numbers agree everywhere.
    """
    import pandas as pd

    from pytest_carbon.prompts.summary import model_summary

    if isinstance(data, pd.DataFrame):
        records = records_from_frame(data)
    elif isinstance(data, Mapping):
        if not isinstance(data.get("tests"), list):
            raise ReportError("model_summary_frame: the dict has no 'tests' list")
        records = [r for r in data["tests"] if isinstance(r, dict)]
    else:
        records = [dict(r) for r in data]
    rows = model_summary(records)
    return pd.DataFrame.from_records([dict(r) for r in rows])
