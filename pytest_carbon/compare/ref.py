"""``--carbon-compare-ref=REF``: the head against REF, interleaved, test by test.

The head is this pytest process, on the work tree as it stands (uncommitted changes
included). The base is REF, checked out in a temporary ``git worktree`` and run by a
second pytest process (``-p pytest_carbon.compare.serve``) rooted in it. Both share the
virtual environment: installed packages, pytest-carbon included, are the head's; the
project's own files (tests, conftest, and the code under test, put first on the base's
``PYTHONPATH``) are REF's.

Both processes run under the head's measuring settings (its sensors, attribution, idle
option and ``-p``/``-o``/``--import-mode`` options are passed on); the base reports its
own, and a difference is a usage error. The base is charged from the head's idle
calibration, and both sides' rounds are :func:`pytest_carbon.compare.serve.timed_round`,
whose energy is the meter's one ``charge()``. While comparing, both processes are pinned
to one CPU.

Before the tests run, a screen (:mod:`pytest_carbon.compare.screen`, unless
``--carbon-compare-screen=off``) compares groups of the common tests (the suite, then its
files) and clears those whose total did not change beyond the threshold; only the tests
of the other groups are examined alone. Each examined test is run round by round,
alternating between the processes
(AB then BA, :func:`pytest_carbon.compare.paired.interleave`), until the paired ratio
head/base is known to ``--carbon-precision`` or ``--carbon-max-time`` passes; calibration
rounds size a round to about :data:`MIN_ROUND_S`, the same number of calls on both
sides. Every metric a fail spec names is judged on the same pairs, each interval at the
family-wise level (Bonferroni over the examined tests x metrics); a regression beyond a
``--carbon-compare-fail`` threshold fails the session like a failed test. The worktree is
removed afterwards, on error and on interrupt too.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from pytest_carbon.compare import paired, screen
from pytest_carbon.compare.judge import (
    DISPLAY_THRESHOLD,
    UNITS,
    Comparison,
    FailSpec,
    MetricChange,
    parse_fail_spec,
)
from pytest_carbon.compare.serve import group_round, probe, timed_round
from pytest_carbon.compare.wire import FD_ENV, Channel, ChannelClosed
from pytest_carbon.session import CarbonSession

#: Least duration of one round; short tests are repeated within a round to reach it.
MIN_ROUND_S = 0.05
#: Most calls in one round (a test of a few microseconds would otherwise need millions).
MAX_ITERATIONS = 10_000
#: Least time a test examined alone (or a screened group) gets; a test reached with less
#: of --carbon-compare-budget left is not examined (inconclusive).
MIN_LEFT_S = 1.0
#: How long the base may take to start and collect before the head gives up, s.
START_TIMEOUT_S = 300.0
#: Calibration rounds (both sides) to grow the calls per round to MIN_ROUND_S.
CALIBRATION_TRIES = 4
#: A test whose rounds stay under this part of MIN_ROUND_S at MAX_ITERATIONS calls is
#: too short to measure: said so, never gated.
SHORT_FRACTION = 0.2
#: Options of the head's command line passed to the base as they are (plugins, ini
#: overrides, import mode), so that both sides run under the same settings.
PASSED_OPTIONS = ("-p", "-o", "--override-ini", "--import-mode")

_STATUS = {
    paired.REGRESSION: "regression",
    paired.IMPROVEMENT: "improvement",
    paired.NO_CHANGE: "noise",
    paired.INCONCLUSIVE: "inconclusive",
}


class RefError(Exception):
    """The REF cannot be compared with: not a git repository, a REF that does not resolve,
    a worktree that cannot be made, a base process that does not start."""


def _git(cwd: Path, *args: str, timeout_s: float = 60.0) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout_s
        )
    except FileNotFoundError:
        raise RefError("git is not installed (or not on PATH)") from None
    except subprocess.TimeoutExpired:
        raise RefError(f"git {' '.join(args)} did not finish in {timeout_s:g} s") from None


def resolve(directory: Path, ref: str) -> tuple[Path, str]:
    """The repository's top level and REF's commit; :class:`RefError` says what is wrong."""
    top = _git(directory, "rev-parse", "--show-toplevel")
    if top.returncode != 0:
        raise RefError(
            f"--carbon-compare-ref={ref}: {directory} is not in a git repository "
            f"({top.stderr.strip() or 'git rev-parse failed'}); the base is checked out "
            "from git, so run from a clone"
        )
    sha = _git(directory, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if sha.returncode != 0 or not sha.stdout.strip():
        raise RefError(
            f"--carbon-compare-ref={ref}: {ref!r} does not name a commit in "
            f"{top.stdout.strip()} (check the spelling, or fetch it first, e.g. "
            "`git fetch origin main` for origin/main)"
        )
    return Path(top.stdout.strip()), sha.stdout.strip()


def register(config: pytest.Config, cs: CarbonSession) -> None:
    """Check the option at configure time (a bad REF is one usage error) and register the
    head's hooks."""
    s = cs.settings
    ref = str(s.carbon_compare_ref)
    if cs.role == "controller":
        raise pytest.UsageError(
            "pytest-carbon: --carbon-compare-ref runs each test alternately in two "
            "processes, one test at a time; it cannot run under pytest-xdist (drop -n)"
        )
    if not s.carbon:
        raise pytest.UsageError("pytest-carbon: --carbon-compare-ref needs --carbon")
    specs = [parse_fail_spec(t) for t in s.carbon_compare_fail]
    try:
        top, sha = resolve(Path(config.rootpath), ref)
    except RefError as exc:
        raise pytest.UsageError(f"pytest-carbon: {exc}") from None
    config.pluginmanager.register(HeadSide(config, cs, ref, top, sha, specs), "carbon-ref")


class HeadSide:
    """The head's hooks: start the base, drive it test by test, judge, clean up."""

    def __init__(
        self,
        config: pytest.Config,
        cs: CarbonSession,
        ref: str,
        top: Path,
        sha: str,
        specs: list[FailSpec],
    ) -> None:
        self.config, self.cs, self.ref, self.top, self.sha = config, cs, ref, top, sha
        # Every metric a record has is judged here, each on its own paired series.
        self.specs = list(specs)
        energy = [sp for sp in specs if sp.metric == "energy"]
        self.spec: FailSpec | None = energy[0] if energy else None
        self.warnings: list[str] = []
        self.tmp: Path | None = None
        self.tree: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.log: Path | None = None
        self.channel: Channel | None = None
        self.common: list[str] = []
        self.base_only: list[str] = []
        self.head_only: list[str] = []
        self.base_errors: list[str] = []
        self.deselected: set[str] = set()
        self.self_measured: list[str] = []
        self.ready: dict[str, float] = {}
        self.ended: set[str] = set()
        self.changes: dict[str, list[MetricChange]] = {}
        self.dead: str | None = None
        #: The tests examined alone (all common tests, less those a screen cleared), in
        #: the session's order, and each one's next (the base keeps shared fixtures).
        self.examine: list[str] = []
        self.next_examined: dict[str, str | None] = {}
        #: The screen's groups, and the group that cleared each screened test.
        self.groups: list[screen.GroupResult] = []
        self.screened: dict[str, screen.GroupResult] = {}
        self.screen_thresholds: dict[str, float] = {}
        #: The CPU both processes are pinned to while comparing, and the head's affinity
        #: before (restored at the end); None where pinning is not possible.
        self.cpu: int | None = None
        self.affinity: set[int] | None = None
        #: When the comparison's budget (--carbon-compare-budget) is spent (monotonic
        #: clock; None: no limit), and the tests it left unexamined.
        self.deadline: float | None = None
        self.over_budget: list[str] = []
        config.add_cleanup(self.cleanup)

    # -- the base tree and process -------------------------------------------------------
    def start(self, session: pytest.Session) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="pytest-carbon-ref-"))
        self.tree = self.tmp / "base"
        added = _git(self.top, "worktree", "add", "--detach", str(self.tree), self.sha)
        if added.returncode != 0:
            raise RefError(f"git worktree add failed: {added.stderr.strip()}")
        ours, theirs = socket.socketpair()
        self.channel = Channel(ours)
        self.log = self.tmp / "base.log"
        env = dict(os.environ)
        env[FD_ENV] = str(theirs.fileno())
        env["PYTEST_CARBON_COMPARE_REF"] = ""  # the base never compares in turn
        # The code under test must be REF's, even when the project is installed in the
        # (shared) venv in editable mode: the base tree goes first on the path.
        roots = [str(self.tree / "src")] if (self.tree / "src").is_dir() else []
        roots.append(str(self.tree))
        env["PYTHONPATH"] = os.pathsep.join(roots + [p for p in [env.get("PYTHONPATH")] if p])
        cmd, cwd = self._command()
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                cmd,
                cwd=cwd,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                pass_fds=[theirs.fileno()],
            )
        theirs.close()
        ours.settimeout(START_TIMEOUT_S)
        try:
            msg = self.channel.recv()
        except (ChannelClosed, TimeoutError) as exc:
            raise RefError(f"the base pytest did not start ({exc}): {self._log_tail()}") from None
        ours.settimeout(None)
        differences = fingerprint_differences(
            self.fingerprint(), dict(msg.get("fingerprint") or {})
        )
        if differences:
            raise RefError(
                "the base would be measured differently from the head, so their energies "
                "cannot be compared: " + "; ".join(differences)
            )
        base = list(msg.get("nodeids") or [])
        self.base_errors = [str(e) for e in msg.get("errors") or []]
        # Prompt items measure themselves against their reference: not re-run here.
        self.self_measured = [
            i.nodeid for i in session.items if getattr(i, "carbon_self_measured", False)
        ]
        head = [i.nodeid for i in session.items if i.nodeid not in self.self_measured]
        base_set, head_set = set(base), set(head) | set(self.self_measured)
        self.common = [n for n in head if n in base_set]
        self.head_only = [n for n in head if n not in base_set]
        # Tests the head deselected (-k, -m, --deselect) are not "missing" from it.
        self.base_only = [n for n in base if n not in head_set and n not in self.deselected]
        # Both sides charge their windows from the head's idle calibration.
        self.channel.send("plan", nodeids=self.common, idle=self.cs.meter.idle.to_json())
        assert self.proc is not None
        self.cpu, self.affinity = pin_pair(self.proc.pid)

    def fingerprint(self) -> dict[str, Any]:
        """The head's measuring settings, as the base reports its own."""
        return {**self.cs.meter.settings_fingerprint(), "idle": str(self.cs.settings.carbon_idle)}

    def _command(self) -> tuple[list[str], Path]:
        """The base's command line and directory: the head's, mapped into the worktree."""
        assert self.tree is not None
        inv = Path(self.config.invocation_params.dir)
        cwd = self._map(inv) or self.tree
        s = self.cs.settings
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "pytest_carbon.compare.serve",
            "-p",
            "no:cacheprovider",
            "-q",
            "--continue-on-collection-errors",
            f"--rootdir={self._map(Path(self.config.rootpath)) or self.tree}",
            f"--carbon-sensors={s.carbon_sensors}",
            f"--carbon-rapl-root={s.carbon_rapl_root}",
            f"--carbon-interval={s.carbon_interval}",
            f"--carbon-idle={s.carbon_idle}",
            f"--carbon-attribution={s.carbon_attribution}",
            f"--carbon-min-time={s.carbon_min_time}",
            *passed_options(list(self.config.invocation_params.args)),
        ]
        # One process, one test at a time; "-n 0" also overrides an "addopts = -n auto".
        cmd += ["-n", "0"] if self.config.pluginmanager.hasplugin("xdist") else ["-p", "no:xdist"]
        # The same selection on both sides, so that deselected tests are not "missing".
        option = self.config.option
        for flag, value in (("-k", option.keyword), ("-m", option.markexpr)):
            if value:
                cmd += [flag, str(value)]
        inipath = self.config.inipath
        mapped_ini = self._map(Path(inipath)) if inipath else None
        if mapped_ini is not None and mapped_ini.is_file():
            cmd += ["-c", str(mapped_ini)]
        for arg in self.config.args:
            path, sep, rest = str(arg).partition("::")
            full = Path(path) if Path(path).is_absolute() else inv / path
            mapped = self._map(full)
            cmd.append(f"{mapped}{sep}{rest}" if mapped is not None else str(arg))
        return cmd, cwd

    def _map(self, path: Path) -> Path | None:
        """``path`` in the head's tree -> the same path in the base's; None outside it."""
        assert self.tree is not None
        try:
            rel = path.resolve().relative_to(self.top.resolve())
        except ValueError:
            return None
        return self.tree / rel

    def _log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(errors="replace") if self.log else ""
        except OSError:
            return "(no output)"
        tail = "\n".join(text.strip().splitlines()[-lines:])
        return f"its output ended with:\n{tail}" if tail else "(no output)"

    def cleanup(self) -> None:
        """Stop the base and remove the worktree; safe to call twice, and on interrupt."""
        if self.affinity is not None:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(0, self.affinity)
            self.affinity = None
        if self.channel is not None:
            with contextlib.suppress(ChannelClosed):
                self.channel.send("quit")
            self.channel.close()
            self.channel = None
        if self.proc is not None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
            self.proc = None
        if self.tree is not None:
            _git(self.top, "worktree", "remove", "--force", str(self.tree))
            self.tree = None
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            _git(self.top, "worktree", "prune")
            self.tmp = None

    # -- hooks ---------------------------------------------------------------------------
    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, object, object]:
        if session.testsfailed and not session.config.option.continue_on_collection_errors:
            return (yield)  # pytest stops on collection errors; so do we
        if session.config.option.collectonly:
            return (yield)
        budget = float(getattr(self.cs.settings, "carbon_compare_budget", 0.0) or 0.0)
        self.deadline = time.monotonic() + budget if budget > 0 else None
        try:
            self.start(session)
        except RefError as exc:
            self.cleanup()
            raise pytest.UsageError(f"pytest-carbon: {exc}") from None
        try:
            self.run_screen(session)
        except ChannelClosed as exc:
            self._base_died(exc)
        except BaseException:
            self.cleanup()
            raise
        try:
            result = yield
        finally:
            self.cleanup()
        self.finish(session)
        return result

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        self.deselected.update(i.nodeid for i in items)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(
        self, item: pytest.Item, nextitem: pytest.Item | None
    ) -> Generator[None, object, object]:
        nodeid = item.nodeid
        if nodeid not in self.next_examined or self.channel is None or self.dead:
            return (yield)
        if self.left_s() < MIN_LEFT_S:
            self._over_budget(nodeid)
            return (yield)
        try:
            self.channel.send("run", nodeid=nodeid, nextid=self.next_examined[nodeid])
            msg = self.channel.recv()
            if msg["op"] == "ready":
                self.ready[nodeid] = float(msg.get("call_s") or 0.0)
            else:
                self._not_compared(nodeid, f"base: {msg.get('outcome', 'did not run')}")
        except ChannelClosed as exc:
            self._base_died(exc)
        result = yield
        try:
            if nodeid in self.ready and nodeid not in self.ended:
                self.channel.send("end")
                self.ended.add(nodeid)
            if nodeid in self.ready:
                done = self.channel.recv()
                if done.get("outcome") not in ("passed", None):
                    self._not_compared(nodeid, f"base: {done['outcome']}")
        except ChannelClosed as exc:
            self._base_died(exc)
        if nodeid not in self.changes:
            self._not_compared(nodeid, "head: the test did not pass its call")
        return result

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, object, object]:
        t0 = time.perf_counter()
        result = yield  # the head's warm-up call, measured by the plugin as usual
        head_call_s = time.perf_counter() - t0
        nodeid = item.nodeid
        if nodeid in self.ready and nodeid not in self.ended and not self.dead:
            try:
                self._compare(item, head_call_s)
            finally:
                if self.channel is not None and not self.dead:
                    try:
                        self.channel.send("end")
                    except ChannelClosed as exc:
                        self._base_died(exc)
                self.ended.add(nodeid)
        return result

    # -- the budget ------------------------------------------------------------------------
    def left_s(self) -> float:
        """Seconds left of --carbon-compare-budget (infinite without one)."""
        return math.inf if self.deadline is None else self.deadline - time.monotonic()

    def _over_budget(self, nodeid: str) -> None:
        """A test the screen left to examine, reached after the budget was spent: the head
        runs it as usual, the base does not, and its verdict is inconclusive."""
        self.over_budget.append(nodeid)
        budget = getattr(self.cs.settings, "carbon_compare_budget", 0.0)
        metrics = dict.fromkeys(["energy", *(sp.metric for sp in self.specs)])
        specs = {sp.metric: sp for sp in self.specs}
        self.changes[nodeid] = [
            MetricChange(
                nodeid=nodeid,
                metric=m,
                status="inconclusive",
                spec=specs.get(m),
                detail=(
                    f"not examined: the comparison's budget of {budget:g} s was spent "
                    "(--carbon-compare-budget); the screen could not clear its group"
                ),
            )
            for m in metrics
        ]

    # -- one test --------------------------------------------------------------------------
    def judgements(self) -> int:
        """How many verdicts this run gives (tests x judged metrics): the family whose
        chance of any false alarm is held at 5% (:func:`paired.family_confidence`)."""
        metrics = {sp.metric for sp in self.specs} or {"energy"}
        return len(self.examine) * len(metrics)

    # -- the screen ------------------------------------------------------------------------
    def _set_examined(self, examine: set[str]) -> None:
        self.examine = [n for n in self.common if n in examine]
        nexts: list[str | None] = [*self.examine[1:], None][: len(self.examine)]
        self.next_examined = dict(zip(self.examine, nexts, strict=True))

    def run_screen(self, session: pytest.Session) -> None:
        """Screen groups of tests (:mod:`pytest_carbon.compare.screen`) and keep, for the
        test-by-test comparison, only those in groups that may have changed. Every test is
        examined alone under ``--carbon-compare-screen=off``, with an absolute threshold,
        and for tests that the screen cannot run whole (the ``carbon`` fixture and
        pytest-benchmark tests, which measure themselves; a test that fails or skips)."""
        self._set_examined(set(self.common))
        s = self.cs.settings
        if getattr(s, "carbon_compare_screen", "auto") == "off" or len(self.common) < 2:
            return
        if any(not sp.relative for sp in self.specs):
            self.warnings.append(
                "not screened: an absolute threshold ("
                + ", ".join(sp.text for sp in self.specs if not sp.relative)
                + ") has no meaning for a group of tests; every test was examined alone"
            )
            return
        thresholds = {sp.metric: sp.value for sp in self.specs}
        thresholds.setdefault("energy", screen.DEFAULT_THRESHOLD)
        self.screen_thresholds = thresholds
        by_id = {i.nodeid: i for i in session.items}
        own = {"carbon", "benchmark", "benchmark_weave"}
        candidates = [
            n for n in self.common if not own & set(getattr(by_id[n], "fixturenames", ()))
        ]
        if len(candidates) < 2:
            return
        channel, meter = self.channel, self.cs.meter
        assert channel is not None
        head_s = probe([by_id[n] for n in candidates])
        channel.send("probe", nodeids=candidates)
        base_s = dict(channel.recv().get("seconds") or {})
        ok = [n for n in candidates if head_s.get(n) is not None and base_s.get(n) is not None]
        g_per_j = self.cs.accounting.gco2e_g(1.0)

        # The probe's second pass: warm (imports and caches done), it sizes the chunks.
        head_s = probe([by_id[n] for n in ok])
        channel.send("probe", nodeids=ok)
        base_s = dict(channel.recv().get("seconds") or {})
        ok = [n for n in ok if head_s.get(n) is not None and base_s.get(n) is not None]
        seconds = {n: min(float(head_s[n] or 0.0), float(base_s[n] or 0.0)) for n in ok}

        def base_chunk(ids: list[str], repeats: int) -> dict[str, Any]:
            channel.send("group", nodeids=ids, repeats=repeats)
            msg = channel.recv()
            if msg["op"] != "measured":
                raise _BaseRoundError(str(msg.get("message") or msg))
            return msg

        def judge(name: str, ids: list[str]) -> screen.GroupResult:
            parts = screen.chunks(ids, seconds, MIN_ROUND_S)
            plan = [
                (
                    part,
                    [by_id[n] for n in part],
                    screen.repeats_for(sum(seconds[n] for n in part), 1, MIN_ROUND_S),
                )
                for part in parts
            ]

            def measure_pair(index: int) -> tuple[dict[str, float], dict[str, float]]:
                head = dict.fromkeys(thresholds, 0.0)
                base = dict.fromkeys(thresholds, 0.0)
                for j, (part, items, reps) in enumerate(plan):
                    if (index + j) % 2 == 0:
                        h = group_round(items, meter, reps, "head")
                        b = base_chunk(part, reps)
                    else:
                        b = base_chunk(part, reps)
                        h = group_round(items, meter, reps, "head")
                    for m in thresholds:
                        head[m] += metric_value(h, m, g_per_j)
                        base[m] += metric_value(b, m, g_per_j)
                return head, base

            try:
                result = screen.screen_group(
                    name,
                    ids,
                    measure_pair,
                    thresholds,
                    max_time_s=max(min(s.carbon_max_time, self.left_s()), MIN_LEFT_S),
                )
            except (_BaseRoundError, Exception) as exc:  # a test failed in a group round
                if isinstance(exc, ChannelClosed):
                    raise
                result = screen.GroupResult(name, ids, stopped=f"a round failed: {exc}"[:300])
            result.chunks = len(plan)
            self._progress(f"screen: {result.describe(thresholds)} ({result.stopped})")
            return result

        examine, self.groups = screen.screen(ok, judge)
        for g in self.groups:
            if g.decision == screen.CLEARED:
                for n in g.nodeids:
                    self.screened.setdefault(n, g)
        self._set_examined({n for n in self.common if n not in self.screened} | examine)

    def _compare(self, item: pytest.Item, head_call_s: float) -> None:
        nodeid = item.nodeid
        base_call_s = self.ready[nodeid]
        shortest = max(min(head_call_s, base_call_s), 1e-6)
        iterations = int(min(MAX_ITERATIONS, max(1, math.ceil(MIN_ROUND_S / shortest))))
        meter = self.cs.meter
        channel = self.channel
        assert channel is not None
        trace: list[dict[str, Any]] = []
        heads: list[dict[str, Any]] = []
        bases: list[dict[str, Any]] = []
        n_iter = [iterations]
        calibration: list[int] = []

        def head_round(keep: bool = True) -> float:
            r = timed_round(item, meter, n_iter[0], "head")
            if keep:
                heads.append(r)
                trace.append({"side": "head", "start_s": r["start_s"], "end_s": r["end_s"]})
            return float(r["energy_j"])

        def base_round(keep: bool = True) -> float:
            channel.send("round", iterations=n_iter[0])
            msg = channel.recv()
            if msg["op"] != "measured":
                raise _BaseRoundError(str(msg.get("message") or msg))
            if keep:
                bases.append(msg)
                trace.append({"side": "base", "start_s": msg["start_s"], "end_s": msg["end_s"]})
            return float(msg["energy_j"])

        s = self.cs.settings
        confidence = paired.family_confidence(self.judgements())
        try:
            window_s = self._calibrate(item, meter, n_iter, channel, calibration)
            if window_s < MIN_ROUND_S * SHORT_FRACTION:
                self._not_compared(
                    nodeid,
                    f"too short to measure: {n_iter[0]} calls last {window_s * 1e3:.2f} ms, "
                    f"under the {MIN_ROUND_S * SHORT_FRACTION * 1e3:g} ms a round needs; "
                    "not gated (measure it with the carbon fixture, or a larger input)",
                )
                return
            run = paired.interleave(
                head_round,
                base_round,
                precision=s.carbon_precision,
                max_time_s=max(min(s.carbon_max_time, self.left_s()), MIN_LEFT_S),
                confidence=confidence,
            )
        except _BaseRoundError as exc:
            self._not_compared(nodeid, f"base failed in a round: {exc}")
            return
        except ChannelClosed as exc:
            self._base_died(exc)
            return
        pr = run.result
        if pr is None:
            self._not_compared(nodeid, "no pair had a positive base energy")
            return
        g_per_j = self.cs.accounting.gco2e_g(1.0)
        extra = {
            "stopped": run.stopped,
            "reached": run.reached,
            "orders": list(run.orders),
            "iterations": n_iter[0],
            "calibration": calibration,
            "cpu": self.cpu,
            "elapsed_s": run.elapsed_s,
            "rounds": trace,
            "source": heads[0].get("source") if heads else None,
        }
        specs = {sp.metric: sp for sp in self.specs}
        for metric in dict.fromkeys(["energy", *specs]):
            a = [metric_value(r, metric, g_per_j) for r in heads]
            b = [metric_value(r, metric, g_per_j) for r in bases]
            self.changes.setdefault(nodeid, [])
            self._record_change(nodeid, metric, a, b, specs.get(metric), confidence, extra)

    def _calibrate(
        self,
        item: pytest.Item,
        meter: Any,
        n_iter: list[int],
        channel: Channel,
        done: list[int],
    ) -> float:
        """Size the calls per round so that both sides' rounds last about
        :data:`MIN_ROUND_S` (a first call is often slower, imports and caches, so it
        mis-counts). Returns the shorter side's round length; these rounds (their calls
        per round in ``done``) are warm-up, not samples."""
        shortest = 0.0
        for _ in range(CALIBRATION_TRIES):
            done.append(n_iter[0])
            head = timed_round(item, meter, n_iter[0], "head")
            channel.send("round", iterations=n_iter[0])
            base = channel.recv()
            if base["op"] != "measured":
                raise _BaseRoundError(str(base.get("message") or base))
            shortest = min(float(head["window_s"]), float(base["window_s"]))
            if shortest > MIN_ROUND_S * 3 and n_iter[0] > 1:
                # Far too long (the first call was the fast one): shrink, and look again.
                n_iter[0] = max(1, int(n_iter[0] * MIN_ROUND_S * 1.5 / shortest))
                continue
            if shortest >= MIN_ROUND_S * 0.8 or n_iter[0] >= MAX_ITERATIONS:
                break
            grow = MIN_ROUND_S / max(shortest, 1e-6) * 1.2
            n_iter[0] = int(min(MAX_ITERATIONS, max(n_iter[0] + 1, math.ceil(n_iter[0] * grow))))
        return shortest

    def _record_change(
        self,
        nodeid: str,
        metric: str,
        heads: list[float],
        bases: list[float],
        spec: FailSpec | None,
        confidence: float,
        extra: dict[str, Any],
    ) -> None:
        s = self.cs.settings
        relative = spec.relative if spec is not None else True
        threshold = spec.value if spec is not None else DISPLAY_THRESHOLD
        try:
            if relative:
                pr = paired.paired_ratio(heads, bases, confidence)
            else:
                pr = paired_difference(heads, bases, confidence)
        except ValueError as exc:
            self.changes[nodeid].append(self._unmeasured(nodeid, str(exc), metric))
            return
        if relative:
            word = paired.verdict(pr, threshold, s.carbon_precision)
            change: float | None = pr.ratio - 1.0
            detail = f"head/base {pr.describe('the base')}"
        else:
            word = absolute_verdict(pr, threshold)
            change = None
            detail = (
                f"head - base {pr.ratio:.4g} {UNITS[metric]} (CI {pr.low:.4g} to "
                f"{pr.high:.4g}, {pr.pairs} pairs) against {threshold:g} {UNITS[metric]}"
            )
        self.changes[nodeid].append(
            MetricChange(
                nodeid=nodeid,
                metric=metric,
                status=_STATUS[word],
                base=statistics.median(bases),
                current=statistics.median(heads),
                change=change,
                method="paired",
                interval=(pr.low, pr.high),
                spec=spec,
                n_base=len(bases),
                n_current=len(heads),
                detail=f"{detail}; {extra['stopped']}",
                paired={
                    **pr.to_json(),
                    **extra,
                    "verdict": word,
                    "threshold": threshold,
                    "relative": relative,
                    "precision_target": s.carbon_precision,
                    "head": heads,
                    "base": bases,
                },
            )
        )

    def _screened_changes(self, nodeid: str, group: screen.GroupResult) -> list[MetricChange]:
        """A test in a cleared group: no change beyond the threshold in its group's total,
        for each screened metric (not examined alone: no per-test ratio)."""
        specs = {sp.metric: sp for sp in self.specs}
        out = []
        for metric, pr in group.ratios.items():
            out.append(
                MetricChange(
                    nodeid=nodeid,
                    metric=metric,
                    status="noise",
                    method="screened",
                    spec=specs.get(metric),
                    interval=(pr.low, pr.high),
                    detail=f"screened: {group.describe(self.screen_thresholds)}",
                    paired={
                        **pr.to_json(),
                        "group": group.name,
                        "group_tests": len(group.nodeids),
                        "verdict": paired.NO_CHANGE,
                        "threshold": self.screen_thresholds.get(metric),
                    },
                )
            )
        return out

    def _progress(self, line: str) -> None:
        """A line on the terminal while the comparison runs (the screen can take a while)."""
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"carbon compare-ref {line}")

    @staticmethod
    def _unmeasured(nodeid: str, why: str, metric: str = "energy") -> MetricChange:
        return MetricChange(
            nodeid=nodeid, metric=metric, status="unmeasured", detail=f"not compared: {why}"
        )

    def _not_compared(self, nodeid: str, why: str) -> None:
        if nodeid not in self.changes:
            self.changes[nodeid] = [self._unmeasured(nodeid, why)]

    def _base_died(self, exc: Exception) -> None:
        if self.dead is None:
            self.dead = f"the base pytest ended early ({exc}); {self._log_tail()}"

    # -- the end -------------------------------------------------------------------------
    def finish(self, session: pytest.Session) -> None:
        changes = [c for n in self.common for c in self.changes.get(n, [])]
        for n in self.common:
            group = self.screened.get(n)
            if group is not None and n not in self.changes:
                changes += self._screened_changes(n, group)
                continue
            if n not in self.changes:
                why = self.dead or "the session stopped before this test"
                changes.append(
                    MetricChange(
                        nodeid=n,
                        metric="energy",
                        status="unmeasured",
                        detail=f"not compared: {why}",
                    )
                )
        changes += [MetricChange(nodeid=n, metric="energy", status="new") for n in self.head_only]
        changes += [
            MetricChange(nodeid=n, metric="energy", status="missing") for n in self.base_only
        ]
        warnings = list(self.warnings)
        if self.head_only:
            warnings.append(
                f"{len(self.head_only)} test(s) only in the work tree, not compared: "
                + ", ".join(self.head_only[:5])
                + (" ..." if len(self.head_only) > 5 else "")
            )
        if self.base_only:
            warnings.append(
                f"{len(self.base_only)} test(s) only in {self.ref}, not compared: "
                + ", ".join(self.base_only[:5])
                + (" ..." if len(self.base_only) > 5 else "")
            )
        if self.self_measured:
            warnings.append(
                f"{len(self.self_measured)} prompt item(s) not compared with {self.ref}: they "
                "measure themselves against their reference"
            )
        for err in self.base_errors:
            warnings.append(f"collecting {self.ref} failed: {err}")
        if self.over_budget:
            budget = getattr(self.cs.settings, "carbon_compare_budget", 0.0)
            warnings.append(
                f"{len(self.over_budget)} test(s) the screen left to examine were not: the "
                f"comparison's budget of {budget:g} s was spent (inconclusive, never a "
                "regression; raise --carbon-compare-budget, 0 for no limit, or compare "
                "fewer tests)"
            )
        if self.dead:
            warnings.append(self.dead)
        compared = [c for c in changes if c.method == "paired" and c.metric == "energy"]
        totals = {}
        if compared:
            totals["energy"] = (
                sum(c.base or 0.0 for c in compared),
                sum(c.current or 0.0 for c in compared),
            )
        comp = Comparison(
            changes=changes,
            failures=[c for c in changes if c.failing],
            warnings=warnings,
            specs=list(self.specs),
            totals=totals,
            base_label=f"{self.ref} ({self.sha[:10]}, a git worktree, interleaved)",
            family=self.judgements(),
            current_label="the work tree",
            mode="paired",
            screen=[g.to_json(self.screen_thresholds) for g in self.groups] or None,
        )
        self.cs.comparison = comp
        width = session.config.get_terminal_writer().fullwidth
        lines = comp.render_lines(
            width=max(min(width, 140), 80), verbose=session.config.option.verbose > 0
        )
        self.cs.comparison_lines = [*self.cs.comparison_lines, *lines]
        session.testsfailed += len(comp.failures)


def pin_pair(base_pid: int) -> tuple[int | None, set[int] | None]:
    """Pin this process (its main thread, which runs the tests) and the base to one CPU,
    the last this process may use: the two sides then always run on the same CPU, so a
    process that the scheduler keeps on a slower or busier CPU (beside a neighbour) cannot
    make one side persistently slower. Returns (the CPU, this process's affinity before),
    or (None, None) where it cannot pin (one CPU, no sched_setaffinity, refused)."""
    try:
        before = set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None, None
    if len(before) < 2:
        return None, None
    cpu = max(before)
    try:
        os.sched_setaffinity(base_pid, {cpu})
        os.sched_setaffinity(0, {cpu})
    except OSError:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, before)
        return None, None
    return cpu, before


def passed_options(args: list[str]) -> list[str]:
    """The head's options the base must share (:data:`PASSED_OPTIONS`), from its command
    line: ``-p no:randomly``, ``-pno:randomly``, ``-o k=v``, ``--import-mode=importlib``.
    ``-p pytest_carbon.compare.serve`` is the base's own and never passed twice."""
    out: list[str] = []
    i = 0
    while i < len(args):
        arg = str(args[i])
        for opt in PASSED_OPTIONS:
            if arg == opt and i + 1 < len(args):
                value = str(args[i + 1])
                i += 1
                break
            if arg.startswith(opt + "=") or (len(opt) == 2 and arg.startswith(opt) and arg != opt):
                value = arg[len(opt) + 1 :] if arg.startswith(opt + "=") else arg[len(opt) :]
                break
        else:
            i += 1
            continue
        if not (opt == "-p" and value == "pytest_carbon.compare.serve"):
            out.append(f"{opt}={value}" if opt.startswith("--") else opt)
            if not opt.startswith("--"):
                out.append(value)
        i += 1
    return out


def fingerprint_differences(head: dict[str, Any], base: dict[str, Any]) -> list[str]:
    """What differs between the two sides' measuring settings, in words (empty: none)."""
    if not base:
        return ["the base did not report its sensors and attribution"]
    out = []
    for key in sorted(set(head) | set(base)):
        if head.get(key) != base.get(key):
            out.append(f"{key}: head {head.get(key)!r}, base {base.get(key)!r}")
    return out


def metric_value(r: dict[str, Any], metric: str, g_per_j: float) -> float:
    """One round's value of ``metric`` (per call) from :func:`serve.timed_round`'s figures."""
    e, d = float(r["energy_j"]), float(r["duration_s"])
    if metric == "energy":
        return e
    if metric == "dynamic_energy":
        return float(r.get("dynamic_energy_j") or 0.0)
    if metric == "duration":
        return d
    if metric == "gco2e":
        return e * g_per_j
    if metric == "edp":
        return e * d
    raise ValueError(f"unknown metric {metric!r}")


def paired_difference(
    a: list[float], b: list[float], confidence: float = paired.CONFIDENCE
) -> paired.PairedRatio:
    """The median of per-pair differences ``a - b`` with its order-statistic interval (for
    absolute thresholds), in a :class:`~pytest_carbon.compare.paired.PairedRatio`."""
    if len(a) != len(b) or not a:
        raise ValueError("no pairs")
    diffs = [x - y for x, y in zip(a, b, strict=True)]
    low, high, coverage = paired.median_interval(diffs, confidence)
    return paired.PairedRatio(
        statistics.median(diffs),
        low,
        high,
        len(diffs),
        coverage,
        "median of paired differences; exact binomial order-statistic interval",
        confidence,
    )


def absolute_verdict(pr: paired.PairedRatio, threshold: float) -> str:
    """Regression when the difference's interval lies above ``threshold``; improvement
    below ``-threshold``; no change when it lies within ±threshold; else inconclusive."""
    if pr.coverage + 1e-12 < pr.confidence:
        return paired.INCONCLUSIVE
    if pr.low > threshold:
        return paired.REGRESSION
    if pr.high < -threshold:
        return paired.IMPROVEMENT
    if -threshold <= pr.low and pr.high <= threshold:
        return paired.NO_CHANGE
    return paired.INCONCLUSIVE


class _BaseRoundError(Exception):
    """The base's test failed during a measured round."""
