"""The idle baseline of machine-wide counters, robust to a machine that is already busy.

Method (``docs/how-numbers-are-computed.md``, "Idle baseline"): for a short calibration,
this process alternates resting and keeping one CPU busy, in equal steps. For each step
the counters give the package power and ``/proc/stat`` the machine's busy CPUs (ours and
everyone else's). A weighted least-squares line ``power = idle + k x busy_cpus`` through
those points has the idle power as its intercept and the marginal power per busy CPU as
its slope. Other work running at the same time moves points along the line, not off it,
so it no longer counts as idle; the busy steps make sure the slope is determined even
when the background load is constant. The standard error of the intercept is reported as
the uncertainty.

A fit is trusted only when the busy CPUs spanned at least :data:`MIN_SPREAD_CPUS` (a
machine kept saturated by other work cannot show its idle power: power = idle + k x busy
has two unknowns and one busy level). A trusted fit is stored per machine and sensor set
(:func:`store_path`); an untrusted one falls back to the stored figure (``pytest-carbon
sensors --calibrate`` writes one, retrying until the machine is quiet enough), and
without one to a **stated model** (:func:`modelled_idle`): idle is
:data:`IDLE_FRACTION` of the machine's full-load power (Cloud Carbon Footprint's min/max
watts per vCPU, from SPECpower), the full-load power extrapolated from the power and busy
CPUs the steps saw. It is said so in ``method``, with a wide uncertainty, and the meter
adds a caveat to every record. The median resting power is never used as idle: on a
machine kept busy by others it is their power, and charging it would bill the tests for
the neighbours. Only where the machine's busy time is unreadable is it the (upper-bound)
fallback.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_carbon.measure.sensors.base import Reading

#: Calibration steps (alternately rest and busy) and the default total time.
STEPS = 8
CALIBRATION_S = 0.8
#: A mark (counters + busy time) taking longer than this was preempted: read again,
#: up to MARK_TRIES times.
MARK_MAX_S = 0.002
MARK_TRIES = 5
#: The busy CPUs must span this much across the steps for the intercept to be trusted.
MIN_SPREAD_CPUS = 0.2
#: Where trusted fits are kept: ``$PYTEST_CARBON_IDLE_STORE``, else the user's cache.
STORE_ENV = "PYTEST_CARBON_IDLE_STORE"
#: The stated model's idle fraction of full-load power: Cloud Carbon Footprint's average
#: min / max watts per vCPU over AWS, GCP and Azure (0.743 / 3.84, SPECpower-based).
IDLE_FRACTION = 0.743 / 3.84


def modelled_idle(mean_w: float, mean_busy_cpus: float, cpus: int) -> tuple[float, float]:
    """(idle W, W per busy CPU) from one operating point, by the stated model.

    ``power = idle + k x busy`` has two unknowns; the model adds ``idle = f x (idle +
    k x cpus)`` (f = :data:`IDLE_FRACTION`), so ``k = mean_w / (f/(1-f) x cpus + busy)``
    and ``idle = f/(1-f) x k x cpus``. Other work moves the operating point along the
    line, so it is not charged as idle."""
    ratio = IDLE_FRACTION / (1.0 - IDLE_FRACTION)
    denom = ratio * max(cpus, 1) + max(mean_busy_cpus, 0.0)
    k = max(mean_w, 0.0) / denom if denom > 0 else 0.0
    return ratio * k * max(cpus, 1), k


@dataclass(frozen=True)
class IdleEstimate:
    """Idle power per component, its standard error, and how it was obtained."""

    power_w: Mapping[str, float]
    uncertainty_w: Mapping[str, float] = field(default_factory=dict)
    method: str = "none"
    #: Marginal power per busy CPU (W), where the fit gave one.
    per_cpu_w: Mapping[str, float] = field(default_factory=dict)
    #: False when this run's calibration could not separate idle from other work.
    trusted: bool = True
    #: Components whose idle power is the stated model's (:func:`modelled_idle`), not a
    #: fit: ``method`` joins every component's method, this says which one each took.
    modelled: frozenset[str] = frozenset()

    @property
    def total_uncertainty_w(self) -> float:
        return math.sqrt(sum(u * u for u in self.uncertainty_w.values()))

    def to_json(self) -> dict[str, Any]:
        """The report's ``idle`` object: totals over components, and each component."""
        total = sum(self.power_w.values())
        unc = self.total_uncertainty_w
        return {
            "power_w": total,
            "uncertainty_w": unc,
            "method": self.method,
            "components": dict(self.power_w),
            "component_uncertainty_w": dict(self.uncertainty_w),
            "per_cpu_w": dict(self.per_cpu_w),
            "trusted": self.trusted,
        }


@dataclass(frozen=True)
class Fit:
    """A fit of package power against the machine's busy CPUs: intercept and slope."""

    idle_w: float
    idle_se_w: float
    per_cpu_w: float
    points: int
    spread_cpus: float = 0.0

    @property
    def trusted(self) -> bool:
        # The busy levels must differ, and the intercept be known to 5 % (or 0.1 W).
        return self.spread_cpus >= MIN_SPREAD_CPUS and self.idle_se_w <= max(
            0.05 * abs(self.idle_w), 0.1
        )


def fit_idle(points: Sequence[tuple[float, float, float]]) -> Fit | None:
    """Weighted least squares of power on busy CPUs.

    ``points``: (seconds, joules, busy CPU-seconds) per step; each step weighs by its
    length. None when the busy CPUs did not vary (the slope, hence the intercept, is
    undetermined) or there are fewer than three points."""
    steps = [(dt, b / dt, e / dt) for dt, e, b in points if dt > 0]
    n = len(steps)
    if n < 3:
        return None
    mean_dt = sum(p[0] for p in steps) / n
    # (weight, busy CPUs, watts): each step weighs by its length.
    pts = [(dt / mean_dt, x, y) for dt, x, y in steps]
    sw = sum(w for w, _, _ in pts)
    xbar = sum(w * x for w, x, _ in pts) / sw
    ybar = sum(w * y for w, _, y in pts) / sw
    sxx = sum(w * (x - xbar) ** 2 for w, x, _ in pts)
    if sxx < 1e-6 * sw:
        return None
    slope = sum(w * (x - xbar) * (y - ybar) for w, x, y in pts) / sxx
    intercept = ybar - slope * xbar
    rss = sum(w * (y - intercept - slope * x) ** 2 for w, x, y in pts)
    s2 = rss / (n - 2)
    se = math.sqrt(max(s2 * (1.0 / sw + xbar * xbar / sxx), 0.0))
    spread = max(x for _, x, _ in pts) - min(x for _, x, _ in pts)
    return Fit(intercept, se, slope, n, spread)


def burn_cpu(seconds: float) -> None:
    """Keep this thread's CPU busy for ``seconds`` of wall time."""
    end = time.perf_counter() + seconds
    x = 0
    while time.perf_counter() < end:
        x += 1


class Calibration:
    """Steps of rest and work, pooled over as many runs as :meth:`run` is called, and the
    idle estimate they give (pooling lets ``sensors --calibrate`` collect the few quiet
    moments of a busy machine until the fit is trusted)."""

    def __init__(
        self,
        read: Callable[[], Sequence[Reading]],
        components: Mapping[str, int],
        busy_cpu_s: Callable[[], float | None],
        work: Callable[[float], None] = burn_cpu,
        cpus: int | None = None,
    ) -> None:
        self.read = read
        #: Logical CPUs of the machine (default: this one's), for the stated model.
        self.cpus = cpus
        #: What a busy step does (keep one CPU busy for the given seconds).
        self.work = work
        self.components = dict(components)
        self.busy_cpu_s = busy_cpu_s
        #: Per component: (seconds, joules, busy CPU-seconds) of every step.
        self.points: dict[str, list[tuple[float, float, float]]] = {c: [] for c in components}
        #: Per component: the power of every resting step.
        self.rest_w: dict[str, list[float]] = {c: [] for c in components}
        self.step_s = 0.0

    def run(self, duration_s: float = CALIBRATION_S, steps: int = STEPS) -> None:
        step_s = self.step_s = duration_s / steps
        marks = [self._mark()]
        for i in range(steps):
            if i % 2:
                self.work(step_s)
            else:
                time.sleep(step_s)
            marks.append(self._mark())
        for comp, idx in self.components.items():
            for i, ((r0, b0), (r1, b1)) in enumerate(zip(marks[:-1], marks[1:], strict=True)):
                dt = r1[idx].time_s - r0[idx].time_s
                e0 = r0[idx].energy_j.get(comp)
                e1 = r1[idx].energy_j.get(comp)
                if dt <= 0 or e0 is None or e1 is None:
                    continue
                energy = max(e1 - e0, 0.0)
                if i % 2 == 0:
                    self.rest_w[comp].append(energy / dt)
                if b0 is not None and b1 is not None:
                    self.points[comp].append((dt, energy, max(b1 - b0, 0.0)))

    def _mark(self) -> tuple[Sequence[Reading], float | None]:
        """Counters and busy time read together. On a loaded machine this process can be
        preempted between the two reads (or inside one), pairing energy and busy time from
        different moments; such a mark is taken again."""
        for _ in range(MARK_TRIES):
            t0 = time.perf_counter()
            readings, busy = self.read(), self.busy_cpu_s()
            if time.perf_counter() - t0 < MARK_MAX_S:
                break
        return readings, busy

    def estimate(self) -> IdleEstimate:
        import statistics  # here: a session that calibrates nothing never imports it

        power: dict[str, float] = {}
        unc: dict[str, float] = {}
        per_cpu: dict[str, float] = {}
        modelled: set[str] = set()
        methods: set[str] = set()
        trusted = True
        step_ms = f"{self.step_s * 1e3:.0f} ms"
        for comp in self.components:
            pts, rest = self.points[comp], self.rest_w[comp]
            fit = fit_idle(pts)
            if fit is not None and fit.trusted:
                # Idle cannot exceed what the machine drew at rest (the median resting
                # step: the minimum would be biased low by noise).
                power[comp] = min(
                    max(fit.idle_w, 0.0), statistics.median(rest) if rest else math.inf
                )
                unc[comp] = fit.idle_se_w
                per_cpu[comp] = max(fit.per_cpu_w, 0.0)
                methods.add(
                    f"fit of power against machine busy CPUs over {fit.points} steps of "
                    f"{step_ms}, alternately resting and keeping one CPU busy (intercept)"
                )
            elif pts:
                trusted = False
                total_s = sum(dt for dt, _, _ in pts)
                mean_w = sum(e for _, e, _ in pts) / total_s
                busy = sum(b for _, _, b in pts) / total_s
                from pytest_carbon.measure.proctime import logical_cpus

                cpus = self.cpus or logical_cpus()
                idle_w, k = modelled_idle(mean_w, busy, cpus)
                modelled.add(comp)
                power[comp] = idle_w
                per_cpu[comp] = k
                # The model's own uncertainty: idle fractions of real servers span about
                # half to twice this one.
                unc[comp] = idle_w
                why = (
                    f"the machine's busy CPUs varied by "
                    f"{fit.spread_cpus if fit is not None else 0.0:.2f} (other work kept it "
                    f"busy at {busy:.2f} of {cpus} CPUs), too little to fit"
                )
                methods.add(
                    f"stated model, idle not observable: idle = {IDLE_FRACTION:.1%} of "
                    f"full-load power (Cloud Carbon Footprint's min/max W per vCPU), "
                    f"extrapolated from {mean_w:.3g} W at {busy:.2f} busy CPUs; {why}"
                )
            elif rest:
                trusted = False
                # Busy time unreadable: the median resting power, an upper bound while
                # other work runs, and unlike the minimum not biased low by one noisy step.
                power[comp] = statistics.median(rest)
                # Idle lies between 0 and that: half the range is the honest uncertainty.
                unc[comp] = power[comp] / 2
                why = "the machine's busy time is unreadable"
                methods.add(
                    f"median power of {len(rest)} resting steps of {step_ms}, an upper bound: {why}"
                )
        return IdleEstimate(
            power,
            unc,
            "; ".join(sorted(methods)) or "none",
            per_cpu,
            trusted=trusted,
            modelled=frozenset(modelled),
        )


def calibrate(
    read: Callable[[], Sequence[Reading]],
    components: Mapping[str, int],
    busy_cpu_s: Callable[[], float | None],
    duration_s: float = CALIBRATION_S,
    steps: int = STEPS,
) -> IdleEstimate:
    """Fit idle power for ``components`` (component -> index of its sensor in ``read()``)."""
    cal = Calibration(read, components, busy_cpu_s)
    cal.run(duration_s, steps)
    return cal.estimate()


def store_path() -> str:
    env = os.environ.get(STORE_ENV)
    if env:
        return env
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "pytest-carbon", "idle.json")


def save(key: str, estimate: IdleEstimate, path: str | None = None) -> None:
    """Keep a trusted estimate for this machine and sensor set (written atomically)."""
    from pytest_carbon.results.atomic import write_text_atomic

    target = path or store_path()
    data = _load_all(target)
    data[key] = {
        "power_w": dict(estimate.power_w),
        "uncertainty_w": dict(estimate.uncertainty_w),
        "per_cpu_w": dict(estimate.per_cpu_w),
        "method": estimate.method,
        "saved_unix_s": time.time(),
    }
    os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
    write_text_atomic(target, json.dumps(data, indent=1, sort_keys=True) + "\n")


def load(key: str, path: str | None = None) -> IdleEstimate | None:
    entry = _load_all(path or store_path()).get(key)
    if not isinstance(entry, dict):
        return None
    try:
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(float(entry["saved_unix_s"])))
        return IdleEstimate(
            {k: float(v) for k, v in entry["power_w"].items()},
            {k: float(v) for k, v in entry.get("uncertainty_w", {}).items()},
            f"stored per-machine calibration of {when} ({entry.get('method', '?')})",
            {k: float(v) for k, v in entry.get("per_cpu_w", {}).items()},
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def _load_all(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
