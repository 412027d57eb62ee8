"""Stored runs and their noise-aware comparison: storage, regression checks, statistics.

Storage is laid out like pytest-benchmark's: ``<root>/<machine_id>/NNNN_<name>.json``.

How a change is judged (see ``docs/ci-regression.md``), per test and per metric, on the
per-round values (``samples``) of each side, lower being better for every metric:

* **Three or more samples on both sides**: a one-sided Mann-Whitney U test of the
  hypothesis "the current values exceed the baseline values moved up by the threshold"
  (``base x (1 + t)`` for ``N%``, ``base + t`` for an absolute value). A regression is
  declared when that test gives ``p <= 0.05``. This asks for both conditions at once: the
  change is larger than the threshold, and the data support it beyond chance. The test is
  rank-based, needs no normality, and is exact for small samples (normal approximation
  with tie correction for large ones). ``compare(..., test="bootstrap")`` uses instead a
  95 % bootstrap interval of the ratio (or difference) of medians, seeded, and declares a
  regression when its lower bound is above ``1 + t`` (or ``t``). Rounds of one run cannot
  see drift between runs, so where the stored history gives a run-to-run noise level
  (below), a supported change inside it is still ``noise``; a suite-wide shift is warned.
* **Fewer samples**: the medians are compared. A regression needs the change above the
  threshold *and* above the noise level of that test: three robust standard deviations
  (``3 x 1.4826 x MAD / median``) of its values in the stored history of this machine
  (at least :data:`MIN_HISTORY` past runs), else the default noise floor
  :data:`NOISE_FLOOR` (5 %). The output says which was used.

Improvements are judged the same way, downwards. A change that is not supported is shown
as ``noise`` and never fails. Metrics without a ``--carbon-compare-fail`` spec are judged
with :data:`DISPLAY_THRESHOLD` (5 %), for display only.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import math
import os
import random
import re
import statistics
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA = "pytest-carbon/report/1"

#: Significance level of the Mann-Whitney test (one-sided) and of the bootstrap interval.
ALPHA = 0.05
#: Relative noise assumed for a single-sample comparison when no history is stored.
NOISE_FLOOR = 0.05
#: Past runs of a test needed before its spread counts as a noise level.
MIN_HISTORY = 3
#: Past runs read from storage for noise levels (the most recent ones).
HISTORY_LIMIT = 20
#: Common tests needed before a suite-wide shift is called machine drift.
MIN_DRIFT_TESTS = 3
#: Samples needed on each side for a statistical test.
MIN_SAMPLES = 3
#: Threshold for metrics shown without a fail spec: smaller changes are not worth a word.
DISPLAY_THRESHOLD = 0.05
#: Metrics always shown, and those a fail spec may name.
DISPLAY_METRICS = ("energy", "duration", "gco2e")
METRICS = ("energy", "dynamic_energy", "duration", "gco2e", "edp")
UNITS = {"energy": "J", "dynamic_energy": "J", "duration": "s", "gco2e": "g", "edp": "J·s"}
#: Exact Mann-Whitney distributions: without ties up to this many samples a side; with
#: ties (enumerated) up to this many arrangements. Beyond, the normal approximation.
EXACT_MAX_N = 25
EXACT_LIMIT = 20_000
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 20240601

#: Methods that read hardware counters; an estimate is not comparable with them.
_COUNTER_METHODS = {"measured", "attributed"}


class ReportError(ValueError):
    """A file is missing, unreadable, or not a pytest-carbon report of a known schema."""


# -- reading and writing reports ---------------------------------------------------------


def load_report(path: str | Path) -> dict[str, Any]:
    """Read and check a JSON report; :class:`ReportError` says what is wrong."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReportError(f"{p}: file not found") from None
    except IsADirectoryError:
        raise ReportError(f"{p}: is a directory, not a report file") from None
    except OSError as exc:
        raise ReportError(f"{p}: cannot read ({exc.strerror or exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportError(
            f"{p}: not a pytest-carbon report (invalid JSON at line {exc.lineno}: {exc.msg})"
        ) from None
    check_report(data, str(p))
    return data  # type: ignore[no-any-return]


def check_report(data: Any, where: str = "report") -> None:
    """Raise :class:`ReportError` unless ``data`` is a report of schema :data:`SCHEMA`."""
    if not isinstance(data, dict) or "schema" not in data:
        raise ReportError(f"{where}: not a pytest-carbon report (no 'schema' field)")
    if data["schema"] != SCHEMA:
        raise ReportError(
            f"{where}: unsupported schema {data['schema']!r}; this version reads {SCHEMA!r}"
        )
    if not isinstance(data.get("tests"), list):
        raise ReportError(f"{where}: malformed report: 'tests' must be a list")


def write_json_atomic(path: str | Path, data: Any) -> Path:
    """Write JSON atomically (see :func:`pytest_carbon.results.atomic.write_text_atomic`)."""
    from pytest_carbon.results.atomic import write_text_atomic

    return write_text_atomic(path, json.dumps(data, indent=1, allow_nan=False, default=str) + "\n")


def git_info(cwd: str | Path | None = None, timeout_s: float = 5.0) -> dict[str, Any] | None:
    """Commit, branch and dirty flag of the git work tree at ``cwd``; None outside git."""

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", *args],
                cwd=cwd,
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return None
    branch = git("rev-parse", "--abbrev-ref", "HEAD")
    if branch in (None, "HEAD"):
        # CI checks out pull requests on a detached HEAD; the runner names the branch.
        branch = os.environ.get("GITHUB_HEAD_REF") or os.environ.get("GITHUB_REF_NAME") or None
    status = git("status", "--porcelain", "--untracked-files=no")
    dirty = bool(status) if status is not None else None
    return {"commit": commit, "branch": branch, "dirty": dirty}


# -- storage -----------------------------------------------------------------------------

_RUN_FILE = re.compile(r"^(?P<id>\d{4,})_(?P<name>.+)\.json$")


def _safe_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.")
    return cleaned[:80] or "run"


class Storage:
    """Runs stored as ``<root>/<machine_id>/NNNN_<name>.json``, ids increasing per machine."""

    def __init__(self, root: str | Path = ".carbon") -> None:
        self.root = Path(root)

    def runs(self, machine_id: str | None = None) -> list[Path]:
        """Stored runs, oldest first: of one machine, or of all machines (by mtime)."""
        if machine_id is not None:
            return self._machine_runs(self.root / _safe_name(machine_id))
        if not self.root.is_dir():
            return []
        found = [p for d in self.root.iterdir() if d.is_dir() for p in self._machine_runs(d)]
        return sorted(found, key=lambda p: (p.stat().st_mtime, p.name))

    @staticmethod
    def _machine_runs(directory: Path) -> list[Path]:
        if not directory.is_dir():
            return []
        runs = []
        for p in directory.iterdir():
            m = _RUN_FILE.match(p.name)
            if m and p.is_file():
                runs.append((int(m["id"]), p))
        return [p for _, p in sorted(runs)]

    def save(self, report: dict[str, Any], name: str = "run") -> Path:
        """Store ``report`` under the next id of its machine and return the path.

        Adds ``report["run"]["git"]`` (commit, branch, dirty) when run inside git.
        The file appears complete or not at all; two processes saving at once get two ids.
        """
        machine_id = str((report.get("machine") or {}).get("machine_id") or "unknown-machine")
        run = report.setdefault("run", {})
        if isinstance(run, dict) and "git" not in run:
            git = git_info()
            if git is not None:
                run["git"] = git
        directory = self.root / _safe_name(machine_id)
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".saving.", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(report, f, indent=1, allow_nan=False, default=str)
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())
            while True:
                existing = self._machine_runs(directory)
                last = int(_RUN_FILE.match(existing[-1].name)["id"]) if existing else 0  # type: ignore[index]
                target = directory / f"{last + 1:04d}_{_safe_name(name)}.json"
                try:
                    # link() fails when the name exists: a concurrent saver took this id.
                    os.link(tmp, target)
                except FileExistsError:
                    continue
                except OSError:
                    # No hard links on this file system: rename (not race-free, still atomic).
                    if target.exists():
                        continue
                    os.replace(tmp, target)
                return target
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)

    def find(self, spec: str | None, machine_id: str) -> Path | None:
        """The stored run that ``spec`` names, or None.

        ``None``/``"latest"``: the latest run of this machine, else the latest of any machine.
        ``"NNNN"`` (or ``NNNN_name``): that id, on this machine first. Anything else: a path.
        """
        if spec is None or spec == "latest":
            own = self.runs(machine_id)
            if own:
                return own[-1]
            anywhere = self.runs()
            return anywhere[-1] if anywhere else None
        if re.fullmatch(r"\d+(_.*)?", spec):
            number, _, rest = spec.partition("_")
            mine = self.runs(machine_id)
            candidates = mine + [p for p in self.runs() if p not in mine]
            for p in candidates:
                m = _RUN_FILE.match(p.name)
                if m and int(m["id"]) == int(number) and (not rest or m["name"] == rest):
                    return p
            path = Path(spec)
            return path if path.is_file() else None
        path = Path(spec)
        if path.is_file():
            return path
        in_root = self.root / spec
        return in_root if in_root.is_file() else None

    def load(self, path: str | Path) -> dict[str, Any]:
        return load_report(path)

    def history(
        self, machine_id: str, limit: int = HISTORY_LIMIT, exclude: Path | None = None
    ) -> list[dict[str, Any]]:
        """The most recent stored runs of this machine (unreadable files are skipped)."""
        out = []
        for p in self.runs(machine_id)[-limit:]:
            if exclude is not None and p.resolve() == exclude.resolve():
                continue
            with contextlib.suppress(ReportError):
                out.append(load_report(p))
        return out


# -- fail specs --------------------------------------------------------------------------

_SPEC = re.compile(r"^\s*(?P<metric>[a-z0-9_]+)\s*:\s*(?P<value>[0-9]*\.?[0-9]+)\s*(?P<pct>%?)\s*$")


@dataclass(frozen=True)
class FailSpec:
    """A regression threshold: ``energy:10%`` (relative) or ``gco2e:0.5`` (absolute, g)."""

    metric: str
    value: float
    relative: bool
    text: str

    @property
    def threshold_text(self) -> str:
        if self.relative:
            return f"{self.value * 100:g}%"
        return f"{self.value:g} {UNITS[self.metric]}"


def parse_fail_spec(text: str) -> FailSpec:
    """Parse ``METRIC:N%`` or ``METRIC:N``; :class:`ValueError` explains a bad one."""
    m = _SPEC.match(text)
    if not m or m["metric"] not in METRICS:
        raise ValueError(
            f"bad fail spec {text!r}: expected METRIC:N% or METRIC:N (absolute, in the "
            f"metric's unit), METRIC one of {', '.join(METRICS)}"
        )
    value = float(m["value"])
    relative = m["pct"] == "%"
    return FailSpec(m["metric"], value / 100 if relative else value, relative, text.strip())


# -- statistics --------------------------------------------------------------------------


def _normal_sf(z: float) -> float:
    """P(Z >= z) for a standard normal Z."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


@functools.cache
def _u_counts(m: int, n: int) -> tuple[int, ...]:
    """Number of arrangements giving each U = 0..m*n, for samples of sizes m and n, no ties.

    Recurrence on the largest value: it belongs to the first sample (adding n to U)
    or to the second (adding nothing).
    """
    if m == 0 or n == 0:
        return (1,)
    a = _u_counts(m - 1, n)
    b = _u_counts(m, n - 1)
    out = [0] * (m * n + 1)
    for u, c in enumerate(a):
        out[u + n] += c
    for u, c in enumerate(b):
        out[u] += c
    return tuple(out)


def _u_statistic(x: Sequence[float], y: Sequence[float]) -> float:
    """Pairs (x_i, y_j) with x_i > y_j, ties counting one half."""
    u = 0.0
    for xi in x:
        for yj in y:
            u += 1.0 if xi > yj else 0.5 if xi == yj else 0.0
    return u


def mann_whitney_greater(x: Sequence[float], y: Sequence[float]) -> float:
    """One-sided Mann-Whitney U p-value for "x tends to be larger than y".

    Exact without ties (and by enumeration with ties while the arrangements are few);
    otherwise the normal approximation with tie and continuity corrections.
    """
    m, n = len(x), len(y)
    if m == 0 or n == 0:
        raise ValueError("both samples must be non-empty")
    u = _u_statistic(x, y)
    pooled = list(x) + list(y)
    has_ties = len(set(pooled)) < len(pooled)
    if not has_ties and m <= EXACT_MAX_N and n <= EXACT_MAX_N:
        counts = _u_counts(m, n)
        total = sum(counts)
        k = math.ceil(u - 1e-9)
        return sum(counts[k:]) / total
    if has_ties and math.comb(m + n, m) <= EXACT_LIMIT:
        # Exact permutation distribution of U over all splits of the pooled values.
        observed = u - 1e-9
        hits = 0
        total = 0
        for idx in itertools.combinations(range(m + n), m):
            chosen = set(idx)
            xs = [pooled[i] for i in idx]
            ys = [pooled[i] for i in range(m + n) if i not in chosen]
            total += 1
            if _u_statistic(xs, ys) >= observed:
                hits += 1
        return hits / total
    nt = m + n
    ties = sum(c**3 - c for c in _multiplicities(pooled))
    var = m * n / 12.0 * ((nt + 1) - ties / (nt * (nt - 1)))
    if var <= 0:
        return 1.0
    z = (u - m * n / 2.0 - 0.5) / math.sqrt(var)
    return _normal_sf(z)


def _multiplicities(values: Iterable[float]) -> list[int]:
    counts: dict[float, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return [c for c in counts.values() if c > 1]


def bootstrap_interval(
    base: Sequence[float],
    current: Sequence[float],
    relative: bool = True,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    level: float = 1 - ALPHA,
) -> tuple[float, float]:
    """Percentile bootstrap interval of median(current)/median(base) (or their difference).

    Seeded, so the same data always give the same interval.
    """
    rng = random.Random(seed)
    b, c = list(base), list(current)
    stats_: list[float] = []
    for _ in range(resamples):
        mb = statistics.median(rng.choices(b, k=len(b)))
        mc = statistics.median(rng.choices(c, k=len(c)))
        if relative:
            stats_.append(mc / mb if mb > 0 else (math.inf if mc > 0 else 1.0))
        else:
            stats_.append(mc - mb)
    stats_.sort()
    lo = stats_[int(math.floor((1 - level) / 2 * resamples))]
    hi = stats_[min(resamples - 1, int(math.ceil((1 + level) / 2 * resamples)) - 1)]
    return lo, hi


def noise_level(values: Sequence[float]) -> float | None:
    """Relative noise of past values: 3 robust standard deviations (3 x 1.4826 x MAD / median)."""
    vals = [v for v in values if v is not None]
    if len(vals) < MIN_HISTORY:
        return None
    med = statistics.median(vals)
    if med <= 0:
        return None
    mad = statistics.median(abs(v - med) for v in vals)
    return 3 * 1.4826 * mad / med


# -- values of a record ------------------------------------------------------------------


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def metric_samples(record: Mapping[str, Any], metric: str) -> list[float]:
    """Per-round values of ``metric`` in a record; empty when it measured nothing.

    Energy and duration come from ``samples``. The others are derived per round from the
    record's own totals: gCO2e by its g/J factor, dynamic energy by its idle power
    ((energy - dynamic) / duration), EDP as energy x duration of the round.
    """
    energy = _num(record.get("energy_j"))
    duration = _num(record.get("duration_s"))
    samples = record.get("samples") or {}
    rounds = max(1, int(_num(record.get("rounds")) or 1))

    def series(key: str, total: float | None) -> list[float]:
        vals = [x for x in (_num(v) for v in samples.get(key) or []) if x is not None]
        if vals:
            return vals
        return [] if total is None else [total / rounds]

    e = series("energy_j", energy)
    d = series("duration_s", duration)
    if metric == "energy":
        return e
    if metric == "duration":
        return d
    if energy is None:
        return []
    if metric == "gco2e":
        g = _num(record.get("gco2e_g"))
        if g is None:
            return []
        factor = g / energy if energy > 0 else 0.0
        return [x * factor for x in e]
    if metric == "dynamic_energy":
        dyn = _num(record.get("dynamic_energy_j"))
        if dyn is None:
            return []
        if len(d) != len(e) or not duration:
            return [dyn / rounds]
        idle_w = max(0.0, (energy - dyn) / duration)
        return [max(0.0, x - idle_w * t) for x, t in zip(e, d, strict=True)]
    if metric == "edp":
        if len(d) != len(e):
            return [] if duration is None else [energy * duration / rounds / rounds]
        return [x * t for x, t in zip(e, d, strict=True)]
    raise ValueError(f"unknown metric {metric!r}")


def _comparable_class(method: Any) -> str | None:
    if method in _COUNTER_METHODS:
        return "measured"
    return "estimated" if method == "estimated" else None


# -- the comparison ----------------------------------------------------------------------


@dataclass
class TestChange:
    """The change of one test in one metric between the baseline and this run.

    ``base``/``current``: medians of the per-round values (None where absent).
    ``change``: ``current / base - 1`` (None where undefined).
    ``status``: regression, improvement, noise, new, missing or unmeasured.
    ``method``: mann-whitney, bootstrap, threshold+noise-floor or threshold+history.
    """

    __test__ = False  # not a pytest test class, despite the name

    nodeid: str
    metric: str
    base: float | None
    current: float | None
    change: float | None
    status: str
    method: str | None = None
    p_value: float | None = None
    interval: tuple[float, float] | None = None
    noise: float | None = None
    spec: FailSpec | None = None
    n_base: int = 0
    n_current: int = 0
    comparable: bool = True
    detail: str = ""

    @property
    def unit(self) -> str:
        return UNITS[self.metric]

    @property
    def failing(self) -> bool:
        return self.status == "regression" and self.spec is not None and self.comparable

    def to_json(self) -> dict[str, Any]:
        return {
            "nodeid": self.nodeid,
            "metric": self.metric,
            "unit": self.unit,
            "base": self.base,
            "current": self.current,
            "change": self.change,
            "status": self.status,
            "method": self.method,
            "p_value": self.p_value,
            "interval": list(self.interval) if self.interval else None,
            "noise": self.noise,
            "threshold": self.spec.text if self.spec else None,
            "n_base": self.n_base,
            "n_current": self.n_current,
            "comparable": self.comparable,
            "failing": self.failing,
            "detail": self.detail,
        }


@dataclass
class Comparison:
    """Every test's changes, the failing ones, and what the reader should be warned about."""

    changes: list[TestChange]
    failures: list[TestChange]
    warnings: list[str]
    specs: list[FailSpec] = field(default_factory=list)
    #: metric -> (baseline total, current total) over the tests present on both sides.
    totals: dict[str, tuple[float, float]] = field(default_factory=dict)
    base_label: str = "baseline"
    current_label: str = "this run"

    def by_test(self) -> dict[str, dict[str, TestChange]]:
        out: dict[str, dict[str, TestChange]] = {}
        for c in self.changes:
            out.setdefault(c.nodeid, {}).setdefault(c.metric, c)
        return out

    def counts(self) -> dict[str, int]:
        """Tests per status; a test takes its worst status across metrics."""
        order = ["regression", "improvement", "unmeasured", "new", "missing", "noise"]
        out = dict.fromkeys(order, 0)
        for per_metric in self.by_test().values():
            statuses = {c.status for c in per_metric.values()}
            out[next(s for s in order if s in statuses)] += 1
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "base": self.base_label,
            "current": self.current_label,
            "fail": [s.text for s in self.specs],
            "totals": {k: {"base": b, "current": c} for k, (b, c) in self.totals.items()},
            "counts": self.counts(),
            "failures": [c.to_json() for c in self.failures],
            "changes": [c.to_json() for c in self.changes],
            "warnings": list(self.warnings),
        }

    def render_lines(self, width: int = 100, verbose: bool = False, top: int = 20) -> list[str]:
        """The comparison as terminal lines: totals, the notable tests, counts and warnings.

        Without ``verbose``, tests within the noise are counted, not listed.
        """
        lines = [f"carbon comparison: {self.base_label} -> {self.current_label}"]
        if self.specs:
            lines.append("  fail on: " + ", ".join(s.text for s in self.specs))
        if self.totals:
            parts = [
                f"{m} {fmt_value(b, m)} -> {fmt_value(c, m)} ({fmt_change(_ratio(b, c))})"
                for m, (b, c) in self.totals.items()
            ]
            lines.append("  totals over common tests: " + " · ".join(parts))
        rows = self._rows(verbose, top)
        if rows:
            name_w = max(20, width - 68)
            header = f"  {'test':<{name_w}} {'energy':<27} {'duration':>9} {'gCO2e':>9}  verdict"
            lines.append(header)
            for nodeid, per in rows:
                lines.append(self._row(nodeid, per, name_w))
                if verbose:
                    lines += [f"      {c.metric}: {c.detail}" for c in per.values() if c.detail]
        counts = self.counts()
        summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        lines.append(f"  tests: {summary or 'none'}")
        hidden = sum(1 for nodeid, _ in self._rows(True, None)) - len(rows)
        if hidden > 0:
            lines.append(f"  ({hidden} more not listed: within noise, or beyond the top {top})")
        for f in self.failures:
            lines.append(
                f"  FAILED {f.nodeid}: {f.metric} {fmt_value(f.base, f.metric)} -> "
                f"{fmt_value(f.current, f.metric)} ({fmt_change(f.change)}) exceeds "
                f"{f.spec.threshold_text if f.spec else '?'}: {f.detail}"
            )
        lines += [f"  warning: {w}" for w in self.warnings]
        return lines

    def _rows(self, verbose: bool, top: int | None) -> list[tuple[str, dict[str, TestChange]]]:
        def rank(item: tuple[str, dict[str, TestChange]]) -> tuple[int, float]:
            per = item[1]
            failing = any(c.failing for c in per.values())
            e = per.get("energy")
            size = abs(e.change) if e is not None and e.change is not None else 0.0
            return (0 if failing else 1, -size)

        items = sorted(self.by_test().items(), key=rank)
        if not verbose:
            items = [(k, v) for k, v in items if any(c.status != "noise" for c in v.values())]
        return items if top is None or verbose else items[:top]

    @staticmethod
    def _row(nodeid: str, per: Mapping[str, TestChange], name_w: int) -> str:
        name = nodeid if len(nodeid) <= name_w else "…" + nodeid[-(name_w - 1) :]
        e = per.get("energy")
        if e is not None and e.status in ("new", "missing", "unmeasured"):
            energy = {"new": "(new test)", "missing": "(not in this run)"}.get(
                e.status, "(nothing measured)"
            )
        elif e is not None:
            energy = f"{fmt_value(e.base, 'energy')} -> {fmt_value(e.current, 'energy')} "
            energy += fmt_change(e.change)
        else:
            energy = ""
        dur = per.get("duration")
        gco2e = per.get("gco2e")
        verdict = _verdict(per)
        return (
            f"  {name:<{name_w}} {energy:<27} "
            f"{fmt_change(dur.change) if dur else '':>9} "
            f"{fmt_change(gco2e.change) if gco2e else '':>9}  {verdict}"
        )


def _verdict(per: Mapping[str, TestChange]) -> str:
    failing = [c for c in per.values() if c.failing]
    if failing:
        return "FAIL " + ", ".join(
            f"{c.metric}>{c.spec.threshold_text if c.spec else '?'} ({_how(c)})" for c in failing
        )
    notable = [c for c in per.values() if c.status in ("regression", "improvement")]
    if notable:
        return ", ".join(f"{c.metric} {c.status} ({_how(c)})" for c in notable)
    statuses = {c.status for c in per.values()}
    if statuses & {"new", "missing", "unmeasured"}:
        return next(s for s in ("unmeasured", "new", "missing") if s in statuses)
    e = per.get("energy") or next(iter(per.values()))
    return f"noise ({_how(e)})"


def _how(c: TestChange) -> str:
    if c.method == "mann-whitney" and c.p_value is not None:
        return f"mann-whitney p={c.p_value:.3g}, n={c.n_base}/{c.n_current}"
    if c.method == "bootstrap" and c.interval is not None:
        return f"bootstrap 95% [{c.interval[0]:.3g}, {c.interval[1]:.3g}]"
    if c.method and c.method.startswith("threshold+") and c.noise is not None:
        return f"{c.method} {c.noise * 100:.1f}%"
    return c.method or "-"


def _ratio(base: float | None, current: float | None) -> float | None:
    if base is None or current is None:
        return None
    if base == 0:
        return 0.0 if current == 0 else None
    return current / base - 1.0


def fmt_change(change: float | None) -> str:
    if change is None:
        return "n/a"
    return f"{change * 100:+.1f}%"


_PREFIXES = ((1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"))


def fmt_value(value: float | None, metric: str) -> str:
    """A value with its unit and an SI prefix: ``1.23 J``, ``45.6 mg``, ``820 ms``."""
    if value is None:
        return "-"
    unit = UNITS.get(metric, "")
    if value == 0:
        return f"0 {unit}"
    for scale, prefix in _PREFIXES:
        if abs(value) >= scale or scale == 1e-9:
            return f"{value / scale:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"  # pragma: no cover - the loop always returns


def _machine_id(report: Mapping[str, Any]) -> str | None:
    mid = (report.get("machine") or {}).get("machine_id")
    return str(mid) if mid else None


def _multi_machine(report: Mapping[str, Any]) -> bool:
    return len(report.get("machines") or []) > 1


def _index(report: Mapping[str, Any], by_machine: bool) -> dict[str, list[Mapping[str, Any]]]:
    """Records by test key: the node id, prefixed by the machine in merged reports."""
    out: dict[str, list[Mapping[str, Any]]] = {}
    for rec in report.get("tests") or []:
        nodeid = str(rec.get("nodeid"))
        key = f"{rec.get('machine_id')}::{nodeid}" if by_machine else nodeid
        out.setdefault(key, []).append(rec)
    return out


def _pooled(records: Sequence[Mapping[str, Any]], metric: str) -> list[float]:
    return [v for r in records for v in metric_samples(r, metric)]


def _history_values(
    history: Sequence[Mapping[str, Any]], by_machine: bool
) -> Callable[[str, str], list[float]]:
    """Per-run medians of each (test, metric) in the stored history."""
    indexes = [_index(h, by_machine) for h in history]

    def values(key: str, metric: str) -> list[float]:
        out = []
        for idx in indexes:
            vals = _pooled(idx.get(key, ()), metric)
            if vals:
                out.append(statistics.median(vals))
        return out

    return values


def _history_check(
    status: str, rel: float | None, noise_history: Sequence[float], detail: str
) -> tuple[str, float | None, str]:
    """Rounds within one run cannot see drift between runs (a busier or slower machine for
    the whole run); where stored runs show that drift, a change inside it is noise."""
    noise = noise_level(noise_history)
    if noise is None or status not in ("regression", "improvement") or rel is None:
        return status, noise, detail
    if abs(rel) <= noise:
        return (
            "noise",
            noise,
            detail
            + (
                f"; but inside the run-to-run noise of {len(noise_history)} stored runs "
                f"({noise * 100:.1f}%)"
            ),
        )
    return status, noise, detail + f"; beyond stored run-to-run noise ({noise * 100:.1f}%)"


def judge(
    base: Sequence[float],
    current: Sequence[float],
    threshold: float,
    relative: bool,
    noise_history: Sequence[float] = (),
    test: str = "mann-whitney",
) -> tuple[str, str, float | None, tuple[float, float] | None, float | None, str]:
    """Judge one metric's samples: (status, method, p_value, interval, noise, detail)."""
    mb, mc = statistics.median(base), statistics.median(current)
    rel = _ratio(mb, mc)
    limit = f"{threshold * 100:g}%" if relative else f"{threshold:g}"
    if len(base) >= MIN_SAMPLES and len(current) >= MIN_SAMPLES:
        if test == "bootstrap":
            lo, hi = bootstrap_interval(base, current, relative)
            up, down = (1 + threshold, 1 - threshold) if relative else (threshold, -threshold)
            status = "regression" if lo > up else "improvement" if hi < down else "noise"
            what = "ratio" if relative else "difference"
            detail = (
                f"95% bootstrap interval of the {what} of medians [{lo:.4g}, {hi:.4g}] "
                f"vs threshold {limit} (n={len(base)}/{len(current)})"
            )
            status, noise, detail = _history_check(status, rel, noise_history, detail)
            return status, "bootstrap", None, (lo, hi), noise, detail
        if relative:
            raised = [b * (1 + threshold) for b in base]
            lowered = [b * (1 - threshold) for b in base]
        else:
            raised = [b + threshold for b in base]
            lowered = [b - threshold for b in base]
        p_up = mann_whitney_greater(current, raised)
        p_down = mann_whitney_greater(lowered, current)
        if p_up <= ALPHA and (rel is None or rel > 0):
            status, p = "regression", p_up
        elif p_down <= ALPHA and (rel is None or rel < 0):
            status, p = "improvement", p_down
        else:
            status, p = "noise", min(p_up, p_down)
        detail = (
            f"one-sided Mann-Whitney U: p={p:.3g} that the change exceeds {limit} "
            f"(alpha {ALPHA:g}, n={len(base)}/{len(current)})"
        )
        status, noise, detail = _history_check(status, rel, noise_history, detail)
        return status, "mann-whitney", p, None, noise, detail
    noise = noise_level(noise_history)
    if noise is not None:
        method = "threshold+history"
        source = f"spread of {len(noise_history)} stored runs"
    else:
        noise, method = NOISE_FLOOR, "threshold+noise-floor"
        source = "default noise floor (fewer than 3 stored runs)"
    if rel is None:
        # A zero baseline has no relative change: only an absolute threshold can judge it.
        beyond = not relative and mc - mb > threshold
        status = "regression" if beyond else "noise"
    else:
        beyond = abs(rel) > threshold if relative else abs(mc - mb) > threshold
        if beyond and abs(rel) > noise:
            status = "regression" if rel > 0 else "improvement"
        else:
            status = "noise"
    detail = (
        f"{len(base)}/{len(current)} sample(s): change {fmt_change(rel)} vs threshold {limit} "
        f"and noise {noise * 100:.1f}% ({source})"
    )
    return status, method, None, None, noise, detail


def compare(
    base: dict[str, Any],
    current: dict[str, Any],
    fail: Sequence[FailSpec] = (),
    history: Sequence[dict[str, Any]] | None = None,
    *,
    test: str = "mann-whitney",
) -> Comparison:
    """Compare two reports test by test; ``fail`` decides which regressions fail.

    ``history``: stored past runs of this machine, for the noise level of single-sample
    comparisons. ``test``: ``mann-whitney`` (default) or ``bootstrap`` for multi-sample ones.
    """
    if test not in ("mann-whitney", "bootstrap"):
        raise ValueError(f"unknown test {test!r}: expected mann-whitney or bootstrap")
    warnings: list[str] = []
    mid_b, mid_c = _machine_id(base), _machine_id(current)
    if mid_b and mid_c and mid_b != mid_c:
        warnings.append(
            f"the baseline was measured on machine {mid_b}, this run on {mid_c}: energy "
            "differs between machines, so changes may reflect the hardware, not the code"
        )
    by_machine = _multi_machine(base) or _multi_machine(current)
    ib, ic = _index(base, by_machine), _index(current, by_machine)
    hist_values = _history_values(history or [], by_machine)

    metrics = list(DISPLAY_METRICS) + [m for m in METRICS if m not in DISPLAY_METRICS]
    specs_by_metric: dict[str, list[FailSpec]] = {}
    for s in fail:
        specs_by_metric.setdefault(s.metric, []).append(s)
    metrics = [m for m in metrics if m in DISPLAY_METRICS or m in specs_by_metric]

    changes: list[TestChange] = []
    mixed_methods = 0
    totals: dict[str, list[float]] = {m: [0.0, 0.0] for m in DISPLAY_METRICS}
    for key in list(ib) + [k for k in ic if k not in ib]:
        rb, rc = ib.get(key), ic.get(key)
        nodeid = key
        if rb is None or rc is None:
            status = "new" if rb is None else "missing"
            for metric in metrics:
                changes.append(TestChange(nodeid, metric, None, None, None, status))
            continue
        classes_b = {_comparable_class(r.get("method")) for r in rb}
        classes_c = {_comparable_class(r.get("method")) for r in rc}
        comparable = not (
            "measured" in classes_b | classes_c
            and "estimated" in classes_b | classes_c
            and classes_b != classes_c
        )
        if not comparable:
            mixed_methods += 1
        for metric in metrics:
            sb, sc = _pooled(rb, metric), _pooled(rc, metric)
            if not sb or not sc:
                changes.append(
                    TestChange(
                        nodeid,
                        metric,
                        statistics.median(sb) if sb else None,
                        statistics.median(sc) if sc else None,
                        None,
                        "unmeasured",
                        n_base=len(sb),
                        n_current=len(sc),
                        detail="nothing measured " + ("in the baseline" if not sb else "now"),
                    )
                )
                continue
            mb, mc = statistics.median(sb), statistics.median(sc)
            if metric in totals:
                totals[metric][0] += mb
                totals[metric][1] += mc
            for spec in specs_by_metric.get(metric) or [None]:  # type: ignore[list-item]
                threshold = spec.value if spec else DISPLAY_THRESHOLD
                relative = spec.relative if spec else True
                status, method, p, interval, noise, detail = judge(
                    sb, sc, threshold, relative, hist_values(key, metric), test
                )
                if not comparable:
                    detail += "; methods differ (measured vs estimated): not comparable"
                changes.append(
                    TestChange(
                        nodeid,
                        metric,
                        mb,
                        mc,
                        _ratio(mb, mc),
                        status,
                        method,
                        p,
                        interval,
                        noise,
                        spec,
                        len(sb),
                        len(sc),
                        comparable,
                        detail,
                    )
                )
    drift = _suite_drift(changes)
    if drift is not None:
        warnings.append(
            f"the whole suite's energy moved by {fmt_change(drift)} (median over the common "
            "tests): the machine was likely slower or busier in one run; per-test verdicts "
            "may reflect that, not the code (store runs to learn this machine's noise)"
        )
    if mixed_methods:
        warnings.append(
            f"{mixed_methods} test(s) were measured with hardware counters on one side and "
            "estimated on the other: not comparable, so never counted as failures"
        )
    methods_b = (base.get("summary") or {}).get("methods") or {}
    methods_c = (current.get("summary") or {}).get("methods") or {}
    if not mixed_methods and methods_b and methods_c:
        cb = {_comparable_class(m) for m, n in methods_b.items() if n}
        cc = {_comparable_class(m) for m, n in methods_c.items() if n}
        if cb != cc:
            warnings.append(
                f"methods differ: baseline {sorted(methods_b)}, this run {sorted(methods_c)}"
            )
    failures = [c for c in changes if c.failing]
    has_common = any(c.status not in ("new", "missing") for c in changes)
    return Comparison(
        changes=changes,
        failures=failures,
        warnings=warnings,
        specs=list(fail),
        totals={m: (b, c) for m, (b, c) in totals.items()} if has_common else {},
    )


def _suite_drift(changes: Sequence[TestChange]) -> float | None:
    """The median energy change over common tests when most of them moved the same way."""
    rel = [
        c.change
        for c in changes
        if c.metric == "energy" and c.change is not None and c.status != "unmeasured"
    ]
    if len(rel) < MIN_DRIFT_TESTS:
        return None
    mid = statistics.median(rel)
    same_way = sum(1 for r in rel if (r > NOISE_FLOOR) == (mid > 0) and abs(r) > NOISE_FLOOR)
    return mid if abs(mid) > NOISE_FLOOR and same_way > len(rel) / 2 else None


# -- the session's end -------------------------------------------------------------------


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
) -> Comparison | None:
    """Save and/or compare the finished run, as the settings ask; print what happened.

    The baseline is looked up before this run is saved, so ``latest`` never means this run.
    With no baseline, this run is saved as one and a warning says so: the first CI run
    of a project has nothing to compare with, and that is not an error.
    """
    storage = Storage(getattr(settings, "carbon_storage", None) or ".carbon")
    machine_id = _machine_id(report) or "unknown-machine"
    save_name = getattr(settings, "carbon_save", None)
    want_save = bool(save_name) or bool(getattr(settings, "carbon_autosave", False))
    fail_texts = tuple(getattr(settings, "carbon_compare_fail", None) or ())
    # A fail threshold without --carbon-compare means: compare with the latest run.
    spec = getattr(settings, "carbon_compare", None) or ("latest" if fail_texts else None)
    comparison: Comparison | None = None
    saved: Path | None = None

    if spec:
        fail_specs = [parse_fail_spec(t) for t in fail_texts]
        path = storage.find(spec, machine_id)
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
                history = storage.history(machine_id)
                comparison = compare(base, report, fail_specs, history)
                comparison.base_label = _describe(path, base)
                for line in comparison.render_lines(width=width, verbose=verbose):
                    write_line(line)
    if want_save and saved is None:
        saved = storage.save(report, save_name or "run")
        write_line(f"pytest-carbon: saved this run as {saved}")
    return comparison
