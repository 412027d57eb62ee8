"""One record per measured test: the dict that travels on the test report and into reports.

Field names follow the JSON contract (``../shared/design.md`` section 6). Every number
sits beside the method that produced it.

:class:`Record` is the one definition of the record's fields and their types. Records
travel as plain dicts (JSON, xdist reports), so the definition is a ``TypedDict``:
:func:`make_record` and :func:`unmeasured_record` are checked against it by mypy, and
:func:`scalar_fields` reads it at run time, so the pandas frame
(:mod:`pytest_carbon.results.frame`) derives its columns from it instead of a second
hand-kept list. A field added here appears in every frame.

No ``from __future__ import annotations`` here: a TypedDict turns each annotation that
is a string into a ``ForwardRef``, which compiles it, about 130 ``compile()`` calls and
~30 M instructions at each ``--carbon`` start; real annotations cost none of that, and
:func:`scalar_fields` resolves both to the same types. Every name an annotation uses
must therefore be defined above it.
"""

import math
import time
import types
import typing
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, TypedDict, cast

from pytest_carbon.carbon.accounting import Accounting, ed2p_js2, edp_js
from pytest_carbon.measure.meter import Charge, Measurement, WindowInputs
from pytest_carbon.measure.sensors.base import weakest_method

SCHEMA = "pytest-carbon/report/1"


class Stats(TypedDict):
    """Summary statistics of per-call or per-round values (see :func:`stats`)."""

    mean: float
    median: float
    stdev: float
    min: float
    max: float


class _PerCallRequired(TypedDict):
    energy_j: Stats
    duration_s: Stats
    #: Every call made, over all rounds.
    calls: int
    iterations_per_round: int


class PerCall(_PerCallRequired, total=False):
    """Per-call statistics (the ``carbon`` fixture, pytest-benchmark rounds, prompt
    workloads); built by :func:`per_call_stats` only."""

    #: Where the rounds came from, when not from the carbon fixture.
    source: str


class Samples(TypedDict):
    """Per-round values, kept for noise-aware comparison."""

    energy_j: list[float]
    duration_s: list[float]


class _MeasuredRequired(TypedDict):
    duration_s: float | None
    energy_j: float | None
    dynamic_energy_j: float | None
    components: dict[str, float]
    component_methods: dict[str, str]
    #: measured, estimated or attributed (the weakest of the components').
    method: str | None
    power_w: float | None
    edp_js: float | None
    ed2p_js2: float | None
    cpu_time_s: float | None
    #: Share of machine-wide counters given to the test (None: not attributed).
    share: float | None
    gco2e_g: float | None


class MeasuredFields(_MeasuredRequired, total=False):
    """The fields of one measurement: a record's own, and each of its phases'."""

    #: Present when embodied emissions are on.
    embodied_gco2e_g: float
    #: Present when a water factor is given.
    water_l: float
    #: The counter's whole-machine energy beside the attributed figures (None when no
    #: machine-wide counter was read), and the attribution rule that turned one into the
    #: other (``--carbon-attribution``).
    machine_energy_j: float | None
    attribution: str | None
    #: Dynamic (above idle) energy per component, J.
    dynamic_components: dict[str, float]
    #: The machine's idle power x the wall time x ``share``: what keeping the machine on
    #: while the test ran cost. Beside ``energy_j``, never part of it (J).
    idle_wall_energy_j: float


class Generation(TypedDict):
    """The footprint of generating a prompt item's code."""

    input_tokens: int | None
    output_tokens: int | None
    energy_j: float | None
    gco2e_g: float | None
    method: str | None


class EnergyPercentile(TypedDict):
    """An answer's place on its task's graded references (``references:``, slow to fast,
    each with the benchmark's efficiency score, 0-100): EvalPerf's differential
    performance score applied to energy (see :mod:`pytest_carbon.compare.graded`)."""

    #: The score of the highest-scored reference whose paired energy ratio is <= 1, else 0.
    value: float
    #: The same with every ratio at the high end of its 95% interval.
    low: float
    #: The same with every ratio at the low end of its 95% interval.
    high: float
    #: How many graded references the answer was measured against.
    references: int
    #: False when a comparison had too few pairs for its 95% interval: its ratio then
    #: counted as anywhere from 0 to infinity for ``low`` and ``high``.
    intervals_reached: bool
    method: str


class Prompt(TypedDict, total=False):
    """The prompt-suite part of a record (``None`` on ordinary tests)."""

    task: str
    model: str
    #: The prompt strategy (``plain`` unless --carbon-strategy chose another).
    strategy: str
    sample: int
    samples: int
    temperature: float | None
    correct: bool | None
    failed_case: Any
    generation: Generation
    #: Workload energy against the reference: a float, or ``{"energy", "duration"}``.
    reference_ratio: Any
    reference_comparison: dict[str, Any]
    #: Tasks with graded references only: the answer's energy percentile on them.
    energy_percentile: EnergyPercentile | None
    #: Tasks with graded references only, slow to fast: ``{index, score}`` and that
    #: reference's paired comparison (``ratio``, ``low``, ``high``, ``pairs``, ...: the
    #: keys of ``reference_comparison``), candidate / reference energy per call.
    graded_references: list[dict[str, Any]]
    #: ``kind: program`` tasks: ``{"language", "reference_language", "compile":
    #: {"candidate"|"reference": {"ok", "energy_j", "duration_s", "cpu_s", "method"}}}``;
    #: each compile measured in a window of its own, never part of the ratio.
    program: dict[str, Any]


class _RecordRequired(MeasuredFields):
    nodeid: str
    #: pytest's outcome word: passed, failed, skipped, xfailed, xpassed, error.
    outcome: str
    #: ISO 8601 UTC start of the measured phase.
    start: str
    rounds: int
    samples: Samples
    per_call: PerCall | None
    phases: dict[str, MeasuredFields]
    extra_info: dict[str, Any]
    prompt: Prompt | None
    #: The xdist worker that measured the test (None: not under xdist).
    worker: str | None
    sensors: list[str]
    warnings: list[str]


class Record(_RecordRequired, total=False):
    """One test's record, as written in the JSON report's ``tests`` list."""

    #: Power trace: ``[seconds since start, {component: watts}]`` pairs.
    trace: list[list[Any]]
    #: Runs of the test (reruns), when more than one.
    attempts: int
    #: Set by ``pytest-carbon merge``: the machine the record was measured on.
    machine_id: str
    #: Set when a ``pytest_carbon_intensity`` hook charges the record at its own start.
    intensity_g_per_kwh: float
    intensity_source: str


#: What makes two records the same record (``pytest-carbon merge`` keeps one of each).
IDENTITY: tuple[str, ...] = ("machine_id", "nodeid", "start")

_SCALARS = (float, int, str, bool)


def scalar_fields(definition: Any = Record) -> tuple[tuple[str, type, bool], ...]:
    """``(name, type, required)`` of the scalar fields of a record definition, in
    declaration order: what becomes one column each in a frame."""
    hints = typing.get_type_hints(definition)
    out = []
    for name, hint in hints.items():
        union = typing.get_origin(hint) in (typing.Union, types.UnionType)
        args = typing.get_args(hint) if union else (hint,)
        kinds = [a for a in args if a is not type(None)]
        if len(kinds) == 1 and kinds[0] in _SCALARS:
            out.append((name, kinds[0], name in definition.__required_keys__))
    return tuple(out)


def iso_utc(unix_s: float | None = None) -> str:
    """``2026-01-31T12:00:00Z``: ISO 8601 UTC to the second, as ``datetime`` writes it.

    A test's record takes it at its start: thousands of tests start within the same
    second, so the text of the last second is kept and reused (no ``datetime`` per test).
    """
    global _ISO_LAST
    if unix_s is None:
        unix_s = time.time()
    last = _ISO_LAST
    # Well inside the cached second (no rounding can reach the next one): its text.
    if 0 <= last[0] <= unix_s <= last[0] + 0.999998:
        return last[1]
    # datetime.fromtimestamp rounds to the microsecond, half to even, then isoformat
    # drops the microseconds: the second is the integer part after that rounding.
    frac, whole = math.modf(unix_s)
    second = int(whole) + (1 if round(frac * 1e6) >= 1_000_000 else 0)
    if frac < 0:  # before 1970: no cache, datetime's own arithmetic
        return _iso_second(unix_s)
    if _ISO_LAST[0] == second:
        return _ISO_LAST[1]
    text = _iso_second(second)
    _ISO_LAST = (second, text)
    return text


def _iso_second(unix_s: float) -> str:
    dt = datetime.fromtimestamp(unix_s, timezone.utc)
    return dt.isoformat(timespec="seconds").replace("+00:00", "Z")


#: The last second :func:`iso_utc` wrote, and its text.
_ISO_LAST: tuple[int, str] = (-1, "")


def stats(values: Sequence[float]) -> dict[str, float]:
    """mean, median, stdev (0 for one value), min, max."""
    vals = list(values)
    if not vals:
        return {}
    import statistics  # here: a run of plain tests never needs it

    return {
        "mean": statistics.fmean(vals),
        "median": statistics.median(vals),
        "stdev": statistics.stdev(vals) if len(vals) > 1 else 0.0,
        "min": min(vals),
        "max": max(vals),
    }


def per_call_stats(
    energy_j: Sequence[float],
    duration_s: Sequence[float],
    *,
    iterations_per_round: int = 1,
    source: str | None = None,
    calls: int | None = None,
) -> PerCall:
    """The ``per_call`` field from per-call samples: one value per round, each a round's
    total over its ``iterations_per_round`` calls. The one builder of ``per_call``.
    ``calls``: every call made, where a sample stands for more than one round (a
    pytest-benchmark window spans several); default: samples x iterations."""
    out: PerCall = {
        "energy_j": cast(Stats, stats(energy_j)),
        "duration_s": cast(Stats, stats(duration_s)),
        "calls": len(energy_j) * iterations_per_round if calls is None else calls,
        "iterations_per_round": iterations_per_round,
    }
    if source is not None:
        out["source"] = source
    return out


def measurement_fields(m: Measurement, accounting: Accounting) -> MeasuredFields:
    """The energy, time, power, EDP and carbon fields of one measurement."""
    energy = m.total_energy_j
    duration = m.duration_s
    methods = dict(m.method)
    out: MeasuredFields = {
        "duration_s": duration,
        "energy_j": energy,
        "dynamic_energy_j": m.total_dynamic_energy_j,
        "components": dict(m.energy_j),
        "dynamic_components": dict(m.dynamic_energy_j),
        "component_methods": methods,
        "method": weakest_method(tuple(methods.values())),
        "power_w": energy / duration if duration > 0 else 0.0,
        "edp_js": edp_js(energy, duration),
        "ed2p_js2": ed2p_js2(energy, duration),
        "cpu_time_s": m.cpu_time_s,
        "share": m.share,
        "gco2e_g": None,
        "machine_energy_j": m.machine_energy_j,
        "attribution": m.attribution if m.machine_energy_j is not None else None,
        "idle_wall_energy_j": m.idle_wall_energy_j,
    }
    out.update(accounting.record_fields(energy, duration, share=m.share))  # type: ignore[typeddict-item]
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
    per_call: PerCall | None = None,
    phases: Mapping[str, Measurement] | None = None,
    extra_info: Mapping[str, Any] | None = None,
    prompt: Mapping[str, Any] | None = None,
    worker: str | None = None,
    warnings: Sequence[str] = (),
    own_intensity: bool = False,
) -> dict[str, Any]:
    """Build the record of one test (a :class:`Record`, handed on as a plain dict).

    ``measurement`` covers the whole measured phase (all rounds). ``per_round_*`` are the
    per-round values, kept for noise-aware comparison. ``per_call``: statistics per call
    (from :func:`per_call_stats`). ``phases``: named blocks measured inside the test.
    ``own_intensity``: ``accounting`` is the intensity hook's for this record's start, and
    the record says which intensity it was charged at.
    """
    fields = measurement_fields(measurement, accounting)
    phase_fields = (
        {k: measurement_fields(v, accounting) for k, v in phases.items()} if phases else {}
    )
    if phase_fields:
        fields["method"] = weakest_method(
            [str(fields["method"]), *(str(p["method"]) for p in phase_fields.values())]
        )
    # mypy asks the ** item to name the record's optional keys too; they are set below.
    rec: Record = {
        "nodeid": nodeid,
        "outcome": outcome,
        "start": iso_utc(measurement.start_unix_s),
        **fields,  # type: ignore[typeddict-item]
        "rounds": rounds,
        "samples": {
            "energy_j": list(per_round_energy_j) or [measurement.total_energy_j],
            "duration_s": list(per_round_duration_s) or [measurement.duration_s],
        },
        "per_call": per_call,
        "phases": phase_fields,
        "extra_info": dict(extra_info or {}),
        "prompt": cast(Prompt, dict(prompt)) if prompt else None,
        "worker": worker,
        "sensors": list(measurement.sensors),
        "warnings": (
            list(dict.fromkeys([*measurement.warnings, *warnings]))
            if measurement.warnings or warnings
            else []
        ),
    }
    if measurement.samples:
        rec["trace"] = [[round(t, 4), dict(p)] for t, p in measurement.samples]
    if own_intensity:
        rec["intensity_g_per_kwh"] = accounting.intensity_g_per_kwh
        rec["intensity_source"] = accounting.intensity_source
    return cast(dict[str, Any], rec)


def window_record(
    nodeid: str,
    start_unix_s: float,
    inputs: WindowInputs,
    ch: Charge,
    warnings: Sequence[str],
    samples: Sequence[tuple[float, Mapping[str, float]]],
    accounting: Accounting,
    *,
    attribution: str,
    sensors: Sequence[str],
    worker: str | None,
    outcome: str,
    attempts: int,
    summary: bool = False,
) -> dict[str, Any]:
    """The finished record of one plain window, straight from its charge
    (:meth:`~pytest_carbon.measure.meter.Meter.charge_of`): what :func:`make_record` of
    the window's Measurement, then :func:`finalize`, give (same keys in the same order,
    same values, computed by the same operations), without the Measurement, the
    intermediate dicts and their copies. The per-test fast path builds its records here;
    ``tests/test_overhead_path.py`` holds the two ways to each other.

    ``summary``: only the fields the terminal summary reads (:data:`SUMMARY_FIELDS`),
    the same values: what a run that writes no report needs of its thousands of plain
    tests, at half the cost of the whole record (``tests/test_overhead_path.py`` holds
    each field to the whole record's, ``tests/test_tally.py`` the summary printed from
    them to the one printed from whole records)."""
    energy_j = ch.energy_j
    energy = sum(energy_j.values())
    duration = inputs.duration_s
    methods = ch.method
    share = ch.share
    if summary:
        out: dict[str, Any] = {
            "nodeid": nodeid,
            "outcome": outcome,
            "duration_s": duration,
            "energy_j": energy,
            "components": energy_j,
            "method": weakest_method(tuple(methods.values())),
            "edp_js": energy * duration,
            "rounds": 1,
            "warnings": list(dict.fromkeys(warnings)) if warnings else [],
            "attempts": attempts,
        }
        out.update(accounting.record_fields(energy, duration, share=share))
        return out
    machine = ch.machine_energy_j
    rec: dict[str, Any] = {
        "nodeid": nodeid,
        "outcome": outcome,
        "start": iso_utc(start_unix_s),
        "duration_s": duration,
        "energy_j": energy,
        "dynamic_energy_j": sum(ch.dynamic_energy_j.values()),
        "components": energy_j,
        "dynamic_components": ch.dynamic_energy_j,
        "component_methods": methods,
        "method": weakest_method(tuple(methods.values())),
        "power_w": energy / duration if duration > 0 else 0.0,
        "edp_js": energy * duration,
        "ed2p_js2": energy * duration * duration,
        "cpu_time_s": inputs.cpu_s,
        "share": share,
        "gco2e_g": None,
        "machine_energy_j": machine,
        "attribution": attribution if machine is not None else None,
        "idle_wall_energy_j": ch.idle_wall_energy_j,
    }
    rec.update(accounting.record_fields(energy, duration, share=share))
    rec["rounds"] = 1
    rec["samples"] = {"energy_j": [energy], "duration_s": [duration]}
    rec["per_call"] = None
    rec["phases"] = {}
    rec["extra_info"] = {}
    rec["prompt"] = None
    rec["worker"] = worker
    rec["sensors"] = list(sensors)
    rec["warnings"] = list(dict.fromkeys(warnings)) if warnings else []
    if samples:
        rec["trace"] = [[round(t, 4), dict(p)] for t, p in samples]
    rec["attempts"] = attempts
    return rec


#: The fields of a plain window's record that the terminal summary reads (besides those
#: of :meth:`~pytest_carbon.carbon.accounting.Accounting.record_fields`): what
#: :func:`window_record` gives with ``summary=True``.
SUMMARY_FIELDS = (
    "nodeid",
    "outcome",
    "duration_s",
    "energy_j",
    "components",
    "method",
    "edp_js",
    "rounds",
    "warnings",
    "attempts",
)

#: pytest's outcome words, kept in records (``xfailed``/``xpassed`` are not folded into
#: skipped/passed; ``rerun`` only ever marks an attempt that a later one replaces).
OUTCOMES = ("passed", "failed", "skipped", "xfailed", "xpassed", "error")


def outcome_of(report: Any, subtest_failed: bool = False) -> str:
    """The outcome word of a test from its report (the call report, or a failed setup).
    ``subtest_failed``: one of the test's subtests failed, so the test fails, as pytest
    says it does (its ``subtests`` plugin turns a passed report into a failed one when the
    terminal reporter asks for its status, after the plugin's report hook has run)."""
    if report.when == "setup" and report.failed:
        return "error"
    if subtest_failed and report.passed:
        return "failed"
    if hasattr(report, "wasxfail"):
        if report.skipped:
            return "xfailed"
        if report.passed:
            return "xpassed"
    return str(report.outcome)


def is_subtest_report(report: Any) -> bool:
    """Whether a call-phase report is a subtest's (pytest's ``subtests`` fixture, or the
    pytest-subtests plugin), not the test's own: it carries the subtest's ``context``. A
    test's outcome is its own call report's, logged after its subtests'."""
    return getattr(report, "context", None) is not None


def finalize(record: Mapping[str, Any], outcome: str, attempts: int) -> dict[str, Any]:
    """The record with the facts pytest knows only once the test has run."""
    return {**record, "outcome": outcome, "attempts": attempts}


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
    rec: Record = {
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
        "prompt": cast(Prompt, dict(prompt)) if prompt else None,
        "worker": worker,
        "sensors": [],
        "warnings": [reason] if reason else [],
    }
    return cast(dict[str, Any], rec)
