"""The stored-baseline mode at the session's end: compare with a stored run, then save.

The pieces live in :mod:`~pytest_carbon.compare.storage` (stored runs),
:mod:`~pytest_carbon.compare.stats` (Mann-Whitney, bootstrap, noise levels),
:mod:`~pytest_carbon.compare.judge` (verdicts and the :class:`Comparison`) and
:mod:`~pytest_carbon.compare.render` (terminal lines); the names other modules import
from here are re-exported below, so ``from pytest_carbon.compare.baseline import
compare`` keeps working.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pytest_carbon.compare.judge import (
    DISPLAY_METRICS,
    DISPLAY_THRESHOLD,
    METRICS,
    NOISE_FLOOR,
    UNITS,
    Comparison,
    FailSpec,
    Floor,
    MetricChange,
    compare,
    judge,
    machine_id,
    parse_fail_spec,
)
from pytest_carbon.compare.render import fmt_change, fmt_value
from pytest_carbon.compare.stats import (
    MIN_HISTORY,
    bootstrap_interval,
    mann_whitney_greater,
    metric_samples,
    noise_level,
)
from pytest_carbon.compare.storage import Storage, git_info, write_json_atomic
from pytest_carbon.results.io import ReportError, check_report, load_report
from pytest_carbon.results.record import SCHEMA

#: The old name of :class:`MetricChange` (markdown and html reports type with it).
TestChange = MetricChange

__all__ = [
    "DISPLAY_METRICS",
    "DISPLAY_THRESHOLD",
    "METRICS",
    "NOISE_FLOOR",
    "SCHEMA",
    "UNITS",
    "Comparison",
    "FailSpec",
    "Floor",
    "MetricChange",
    "ReportError",
    "Storage",
    "TestChange",
    "apply_to_session",
    "bootstrap_interval",
    "check_report",
    "compare",
    "fmt_change",
    "fmt_value",
    "git_info",
    "judge",
    "load_report",
    "mann_whitney_greater",
    "metric_samples",
    "noise_level",
    "parse_fail_spec",
    "write_json_atomic",
]


def _describe(path: Path, report: Mapping[str, Any]) -> str:
    git = (report.get("run") or {}).get("git") or {}
    bits = [str(report.get("created") or "")]
    if git.get("commit"):
        bits.append(f"commit {str(git['commit'])[:10]}" + (" dirty" if git.get("dirty") else ""))
    if git.get("branch"):
        bits.append(str(git["branch"]))
    extra = ", ".join(b for b in bits if b)
    return f"{path}" + (f" ({extra})" if extra else "")


def apply_to_session(
    settings: Any,
    report: dict[str, Any],
    write_line: Callable[[str], None],
    *,
    verbose: bool = False,
    width: int = 100,
    meter: Callable[[], Any] | None = None,
) -> Comparison | None:
    """Save and/or compare the finished run, as the settings ask; print what happened.

    The baseline is looked up before this run is saved, so ``latest`` never means this run.
    With no baseline, this run is saved as one and a warning says so: the first CI run
    of a project has nothing to compare with, and that is not an error.

    ``meter``: gives the session's meter, to measure this machine's A/A floor while fewer
    than 3 runs are stored (:mod:`pytest_carbon.compare.floor`); the floor is written into
    the report (``noise_floor``), so the stored run keeps it.
    """
    storage = Storage(getattr(settings, "carbon_storage", None) or ".carbon")
    mid = machine_id(report) or "unknown-machine"
    save_name = getattr(settings, "carbon_save", None)
    want_save = bool(save_name) or bool(getattr(settings, "carbon_autosave", False))
    fail_texts = tuple(getattr(settings, "carbon_compare_fail", None) or ())
    # A fail threshold without --carbon-compare means: compare with the latest run (unless
    # it is meant for the interleaved comparison of --carbon-compare-ref).
    implied = fail_texts and not getattr(settings, "carbon_compare_ref", None)
    spec = getattr(settings, "carbon_compare", None) or ("latest" if implied else None)
    comparison: Comparison | None = None
    saved: Path | None = None

    if spec:
        fail_specs = [parse_fail_spec(t) for t in fail_texts]
        history = storage.history(mid)
        floor: Floor | None = None
        if len(history) < MIN_HISTORY and meter is not None:
            from pytest_carbon.compare.floor import measure_floor

            floor = measure_floor(meter())
            report["noise_floor"] = floor.to_json()
        path = storage.find(spec, mid)
        if path is None:
            saved = storage.save(report, save_name or "run")
            what = "stored run" if spec == "latest" else f"baseline {spec!r}"
            write_line(
                f"pytest-carbon: warning: no {what} found in {storage.root} to compare with; "
                f"saved this run as {saved} (later runs compare against it)"
            )
        else:
            try:
                base = storage.load(path)
            except ReportError as exc:
                write_line(f"pytest-carbon: warning: cannot compare: {exc}")
                base = None
            if base is not None:
                comparison = compare(base, report, fail_specs, history, floor=floor)
                comparison.base_label = _describe(path, base)
                for line in comparison.render_lines(width=width, verbose=verbose):
                    write_line(line)
    if want_save and saved is None:
        saved = storage.save(report, save_name or "run")
        write_line(f"pytest-carbon: saved this run as {saved}")
    return comparison
