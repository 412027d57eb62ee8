"""CarbonSession: the run's state (settings, meter, accounting, records) and its role.

Role: ``local`` (no xdist), ``worker`` (an xdist worker: measures, sends records on the
test reports) or ``controller`` (the xdist controller: receives records, writes reports).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from pytest_carbon.options import Settings

SESSION_KEY = pytest.StashKey["CarbonSession"]()
#: The item's carbon fixture, when the test requested it.
FIXTURE_KEY = pytest.StashKey[Any]()


class CarbonWarning(UserWarning):
    """A measurement caveat worth the user's attention (shown, never fatal)."""


def get_session(config: pytest.Config) -> CarbonSession:
    """The CarbonSession of this run (created by the plugin at configure time)."""
    return config.stash[SESSION_KEY]


class CarbonSession:
    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        workerinput = getattr(config, "workerinput", None)
        self.worker_id: str | None = workerinput["workerid"] if workerinput else None
        dist = getattr(config.option, "dist", "no")
        numprocesses = getattr(config.option, "numprocesses", None)
        if self.worker_id is not None:
            self.role = "worker"
        elif dist not in (None, "no") or numprocesses:
            self.role = "controller"
        else:
            self.role = "local"
        self.concurrent = self.worker_id is not None or self.role == "controller"
        if workerinput:
            self.workers: int | None = int(workerinput.get("workercount", 0)) or None
        else:
            self.workers = int(numprocesses) if isinstance(numprocesses, int) else None
        # Finished records, in the order tests finished. An entry is a record dict, or,
        # on the per-test fast path (runner.open_plain), the raw readings of the test's
        # window (a tuple): :attr:`records` builds those dicts when first asked.
        self._records: list[Any] = []
        self._raw = 0  # how many entries of _records are still raw
        # Position of each node id in ``records``: a rerun replaces its earlier attempt.
        self._record_at: dict[str, int] = {}
        self._gc_held = False  # hold_gc() paused the collector; release_gc() restarts it
        # The per-test hooks (plugin.register_per_test_hooks) are registered; a test
        # whose carbon fixture registered them late, by node id; whether tests ran
        # before they were (then ``ran`` cannot tell which tests did not run).
        self.per_test_hooks = False
        self.late_fixture: dict[str, pytest.Item] = {}
        self.ran_partial = False
        # The report hook is registered (with the per-test hooks, or later in a tally
        # run); the run is a tally (plugin._TallyHooks): its plain windows' outcomes and
        # attempts are read from pytest's terminal reporter at the end (settle_tally).
        self.report_hook = False
        self.tally = False
        # Per node id, the record waiting for its report: a dict, or a raw window tuple.
        self.pending: dict[str, Any] = {}
        # Attempts per node id (setup reports seen where the test runs): reruns count.
        self.attempts: dict[str, int] = {}
        # Node ids whose protocol ran (teardown reported), to tell whether all collected ran.
        self.ran: set[str] = set()
        # Node ids whose current attempt pytest-rerunfailures will run again.
        self.superseded: set[str] = set()
        # Node ids with a failed subtest (the test fails: record.outcome_of).
        self.failed_subtests: set[str] = set()
        # Set at session finish (see completeness()); the reports say why a run is partial.
        self.complete = True
        self.incomplete_reason = ""
        self.started_unix_s = time.time()
        self.finished_unix_s: float | None = None
        self.warnings: list[str] = []
        self._meter: Any = None
        self._accounting: Any = None
        self._statuses: list[Any] = []
        self._gpus: list[dict[str, Any]] | None = None
        self._idle_power_w: dict[str, float] | None = None
        self._idle_json: dict[str, Any] | None = None
        self._worker_statuses: list[dict[str, Any]] | None = None
        self._intensity_varies: bool | None = None
        self._fast_path: bool | None = None
        self._edge: Any = False
        self.comparison: Any = None
        self.comparison_lines: list[str] = []
        self.written: list[tuple[str, str]] = []
        if self.role == "controller" and settings.carbon:
            self.warn(
                "tests ran concurrently (pytest-xdist): per-test energy is less precise; "
                "machine-wide counters are attributed by CPU-time share, and the estimate "
                "counts each test's own process"
            )

    # -- lazily opened, so a run that measures nothing opens nothing -------------------
    @property
    def accounting(self) -> Any:
        """The session's accounting: settings, then the ``pytest_carbon_intensity`` hook
        asked for the session's start. Errors are ValueErrors with a user-facing message."""
        if self._accounting is None:
            from datetime import datetime, timezone

            self._accounting = self.accounting_at(
                datetime.fromtimestamp(self.started_unix_s, timezone.utc),
                base=self._base_accounting(),
            )
        return self._accounting

    @accounting.setter
    def accounting(self, value: Any) -> None:
        self._accounting = value

    def _base_accounting(self) -> Any:
        from pytest_carbon.carbon.accounting import accounting_from_settings, embodied_requested

        # GPUs are asked of NVML only when their embodied share is wanted.
        gpu_count = len(self.gpus) if embodied_requested(self.settings) else 0
        return accounting_from_settings(self.settings, gpu_count=gpu_count)

    @property
    def gpus(self) -> list[dict[str, Any]]:
        """The GPUs NVML sees (for ``machine.gpus`` and embodied emissions), asked once."""
        if self._gpus is None:
            from pytest_carbon.measure.sensors.nvml import visible_gpus

            self._gpus = visible_gpus()
        return list(self._gpus)

    @property
    def intensity_varies(self) -> bool:
        """Whether a ``pytest_carbon_intensity`` implementation exists: then each record is
        charged at the intensity the hook gives for the record's own start."""
        if self._intensity_varies is None:
            impls = self.config.pluginmanager.hook.pytest_carbon_intensity.get_hookimpls()
            self._intensity_varies = bool(impls)
        return self._intensity_varies

    def accounting_at(self, when: Any, base: Any = None) -> Any:
        from pytest_carbon.carbon.accounting import apply_intensity_hook

        base = base if base is not None else self.accounting
        hooked = self.config.hook.pytest_carbon_intensity(config=self.config, when=when)
        return apply_intensity_hook(base, hooked)

    def accounting_for(self, start_unix_s: float) -> Any:
        """The accounting a record that started at ``start_unix_s`` is charged with: the
        session's, or, when a ``pytest_carbon_intensity`` hook exists, the hook's answer
        for that moment."""
        if not self.intensity_varies:
            return self.accounting
        from datetime import datetime, timezone

        return self.accounting_at(datetime.fromtimestamp(start_unix_s, timezone.utc))

    def check_accounting(self) -> None:
        """Resolve the accounting now (at configure time), so a bad country or region is
        one usage error, not a failure in every test."""
        _ = self.accounting

    @property
    def meter(self) -> Any:
        """The session's Meter: sensors discovered once, idle baseline measured once."""
        if self._meter is None:
            self._open_meter()
        return self._meter

    def _open_meter(self) -> None:
        from pytest_carbon.measure.meter import Meter
        from pytest_carbon.measure.sensors.discover import discover

        s = self.settings
        found = discover(s.carbon_sensors, s.carbon_rapl_root, s.interval_s)
        extra = self.config.hook.pytest_carbon_sensors(config=self.config)
        sensors = list(found.sensors)
        for group in extra or []:
            sensors[:0] = list(group or [])
        self._statuses = found.statuses
        for msg in found.messages:
            self.warn(msg)
        from pytest_carbon.measure.idle import store_path

        meter = Meter(
            sensors,
            interval_s=s.interval_s,
            attribution=s.carbon_attribution,
            sharers=(self.workers or 1) if self.concurrent else 1,
            idle_store=store_path(),
        )
        if isinstance(s.carbon_idle, float):
            from pytest_carbon.measure.idle import IdleEstimate

            meter.idle = IdleEstimate(
                {c: (s.carbon_idle if c == "cpu" else 0.0) for c in meter.owner},
                method=f"given: --carbon-idle={s.carbon_idle:g}",
            )
        elif s.carbon_idle == "auto":
            meter.measure_idle()
            if not meter.idle.trusted:
                self.warn(
                    "idle power could not be separated from other work on this machine "
                    f"({meter.idle.method}); run `pytest-carbon sensors --calibrate` when "
                    "the machine is quieter to store a figure for later runs"
                )
        self._idle_power_w = dict(meter.idle_power_w)
        self._idle_json = meter.idle.to_json()
        self._meter = meter

    @property
    def fast_path(self) -> bool:
        """Whether a plain test's record may wait for its raw window to be wanted
        (runner.open_plain): a run without xdist (a worker sends the record on the test
        report), with one round, one carbon intensity (no ``pytest_carbon_intensity``
        hook) and no reader of the tests' user properties (JUnit XML, a report log),
        which get the record's figures as the test ends. Decided once."""
        if self._fast_path is None:
            opt = self.config.option
            self._fast_path = (
                self.role == "local"
                and self.settings.carbon_rounds == 1
                and not self.intensity_varies
                and not getattr(opt, "xmlpath", None)
                and not getattr(opt, "report_log", None)
            )
        return self._fast_path

    @property
    def edge(self) -> Any:
        """The meter's edge reader (:meth:`~pytest_carbon.measure.meter.Meter.edge_reader`)
        where plain tests may take the edge path (:attr:`fast_path` and a meter that has
        one), else None. Decided once, when the first test is measured."""
        if self._edge is False:
            self._edge = (self.fast_path and self.meter.edge_reader()) or None
        return self._edge

    def reports_wanted(self) -> bool:
        """A JSON, CSV, HTML or Markdown report was asked for (finish.write_reports)."""
        s = self.settings
        return bool(s.carbon_json or s.carbon_csv or s.carbon_html or s.carbon_markdown)

    def baseline_wanted(self) -> bool:
        """The run is to be stored or compared with a stored one
        (finish.after_runtestloop)."""
        s = self.settings
        return bool(s.carbon_save or s.carbon_autosave or s.carbon_compare or s.carbon_compare_fail)

    def records_possible_from_start(self) -> bool:
        """Whether records can arise whatever is collected: ``--carbon``, a report, a
        stored run or a comparison asked for, or an xdist controller (its workers'
        records arrive on their reports)."""
        s = self.settings
        return bool(
            s.carbon
            or self.role == "controller"
            or s.carbon_compare_ref
            or self.reports_wanted()
            or self.baseline_wanted()
        )

    def wants_measurement(self, item: pytest.Item) -> bool:
        """Measure this item's call phase here? (Prompt items measure themselves.)"""
        if getattr(item, "carbon_self_measured", False):
            return False
        return self.settings.carbon or closest_carbon_marker(item) is not None

    def sensor_statuses(self) -> list[dict[str, Any]]:
        if self._worker_statuses is not None:
            return list(self._worker_statuses)
        return [st.to_json() for st in self._statuses]

    @property
    def idle_power_w(self) -> dict[str, float]:
        return dict(self._idle_power_w or {})

    @property
    def idle_json(self) -> dict[str, Any] | None:
        """The report's ``idle``: power_w, uncertainty_w, method (None: nothing measured)."""
        return dict(self._idle_json) if self._idle_json else None

    # -- xdist: workers measure, the controller reports --------------------------------
    def worker_output(self) -> dict[str, Any]:
        return {
            "sensors": self.sensor_statuses(),
            "idle_power_w": self.idle_power_w,
            "idle": self.idle_json,
            "warnings": list(self.warnings),
        }

    def merge_worker_output(self, output: dict[str, Any]) -> None:
        if output.get("sensors") and self._worker_statuses is None:
            self._worker_statuses = list(output["sensors"])
        if output.get("idle_power_w") and not self._idle_power_w:
            self._idle_power_w = dict(output["idle_power_w"])
        if output.get("idle") and not self._idle_json:
            self._idle_json = dict(output["idle"])
        for w in output.get("warnings") or []:
            self.warn(w)

    def warn(self, message: str) -> None:
        """Record a caveat for the summary and the JSON report (once per message)."""
        if message not in self.warnings:
            self.warnings.append(message)

    @property
    def records(self) -> list[dict[str, Any]]:
        """The finished records (one per test; a rerun's last attempt). Raw entries of the
        per-test fast path become record dicts here, the first time they are asked for
        (the summary, the reports, a comparison), with the fields and values the full
        path gives (:func:`pytest_carbon.runner.window_records`)."""
        self.settle_tally()
        if self._raw:
            self._records = self._built(summary=False)
            self._raw = 0
        return self._records

    @records.setter
    def records(self, value: list[dict[str, Any]]) -> None:
        self._records = list(value)
        self._raw = 0
        self._record_at = {r["nodeid"]: i for i, r in enumerate(self._records)}

    def summary_records(self) -> list[dict[str, Any]]:
        """The records as the terminal summary reads them: :attr:`records` where they are
        built already (a report, a stored run or a comparison read them), else the
        fast path's raw windows as summary records (only the fields the summary reads,
        :data:`~pytest_carbon.results.record.SUMMARY_FIELDS`), built for this one reading
        and not kept: the raw windows stay raw."""
        self.settle_tally()
        return self._built(summary=True) if self._raw else self._records

    def _built(self, summary: bool) -> list[dict[str, Any]]:
        """The records in their order, each raw window built
        (:func:`pytest_carbon.runner.window_records`; ``summary``: its summary fields
        only), in a new list: the raw entries are left as they are."""
        from pytest_carbon.runner import window_records

        out = list(self._records)
        at = [i for i, r in enumerate(out) if type(r) is tuple]
        with gc_paused():
            built = window_records(self, [out[i] for i in at], summary=summary)
            for i, rec in zip(at, built, strict=True):
                out[i] = rec
        return out

    @property
    def has_records(self) -> bool:
        """Whether any test left a record (raw or built), without building any."""
        return bool(self._records)

    def add_record(self, record: dict[str, Any]) -> None:
        """Keep a finished record; a later attempt of the same test (a rerun) replaces it."""
        self._keep(record["nodeid"], record)

    def add_raw(self, nodeid: str, closed: Any, outcome: str | None, attempts: int) -> None:
        """Keep the raw window of a finished test (the fast path): its record is built
        when :attr:`records` is first read. A rerun replaces the earlier attempt. A tally
        run's windows come without their outcome (None) and attempts (0):
        :meth:`settle_tally` gives them."""
        self._raw += 1
        self._keep(nodeid, (nodeid, closed, outcome, attempts))

    def _keep(self, nodeid: str, entry: Any) -> None:
        recs = self._records
        at = self._record_at.get(nodeid)
        if at is None:
            self._record_at[nodeid] = len(recs)
            recs.append(entry)
        else:
            if type(recs[at]) is tuple:
                self._raw -= 1
            recs[at] = entry

    def set_record(
        self, item: pytest.Item, record: dict[str, Any], *, charged: bool = False
    ) -> None:
        """Store an item's record; the plugin attaches it to the item's call report (or
        its setup report when setup failed), so it travels through xdist. ``charged``: the
        record was built with :meth:`accounting_for` its start (records built elsewhere are
        charged here, at their start, when an intensity hook exists)."""
        if not charged and self.intensity_varies and record.get("energy_j") is not None:
            record = self._charged_at_own_time(record)
        self.pending[item.nodeid] = record
        # On the item: junitxml reads the properties of the teardown report, made from it.
        # A rerun runs the item again: its properties replace the earlier attempt's.
        props = item.user_properties
        if props:
            props[:] = [p for p in props if not str(p[0]).startswith("carbon_")]
        props.extend(record_properties(record))

    def _charged_at_own_time(self, record: dict[str, Any]) -> dict[str, Any]:
        """The carbon fields with the hook's intensity at the record's start."""
        from datetime import datetime

        when = datetime.fromisoformat(record["start"].replace("Z", "+00:00"))
        acc = self.accounting_at(when)
        out = dict(record)
        out.update(
            acc.record_fields(record["energy_j"], record["duration_s"], share=record.get("share"))
        )
        out["phases"] = {
            name: {
                **phase,
                **acc.record_fields(
                    phase["energy_j"], phase["duration_s"], share=phase.get("share")
                ),
            }
            for name, phase in (record.get("phases") or {}).items()
        }
        out["intensity_g_per_kwh"] = acc.intensity_g_per_kwh
        out["intensity_source"] = acc.intensity_source
        return out

    def settle_tally(self) -> None:
        """A tally run's raw windows get the outcome and attempts of their test, read once
        from the terminal reporter's reports (every report of the run is kept there, by
        status word): the call report's outcome (pytest-rerunfailures' ``rerun`` only
        when no later attempt reported a call; a subtest's report is not the test's),
        the number of setup reports. Which tests ran (a teardown report) is read in the
        same pass, for :meth:`completeness`. A window whose call was never reported (an
        interrupted test) is dropped, as the report hook would have. Once, when the run
        is over (a no-op in any other run)."""
        if not self.tally:
            return
        self.tally = False
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        stats = getattr(tr, "stats", None)
        from pytest_carbon.results.record import is_subtest_report, outcome_of

        # Each test's own call report: the last attempt's, the one that is not a rerun
        # (a test has one; the lists of stats are by status word, not in time order).
        final: dict[str, Any] = {}
        failed_subtests: set[str] = set()
        attempts: dict[str, int] = {}
        ran = self.ran
        for reports in stats.values() if isinstance(stats, dict) else ():
            for rep in reports:
                when = getattr(rep, "when", None)
                if when == "call":
                    if is_subtest_report(rep):
                        if rep.failed:
                            failed_subtests.add(rep.nodeid)
                    elif rep.nodeid not in final or rep.outcome != "rerun":
                        final[rep.nodeid] = rep
                elif when == "setup":
                    nodeid = rep.nodeid
                    attempts[nodeid] = attempts.get(nodeid, 0) + 1
                elif when == "teardown":
                    ran.add(rep.nodeid)
        outcomes = {n: outcome_of(rep, n in failed_subtests) for n, rep in final.items()}
        recs = self._records
        dropped = False
        for i, entry in enumerate(recs):
            if type(entry) is tuple and entry[2] is None:
                nodeid = entry[0]
                outcome = outcomes.get(nodeid)
                if outcome is None:
                    dropped = True
                    self._raw -= 1
                    recs[i] = None
                else:
                    recs[i] = (nodeid, entry[1], outcome, attempts.get(nodeid, 1))
        if dropped:  # positions moved: the index by node id is built again
            self._records = [r for r in recs if r is not None]
            self._record_at = {
                (r[0] if type(r) is tuple else r["nodeid"]): i for i, r in enumerate(self._records)
            }

    def completeness(self, session: pytest.Session, exitstatus: int | None) -> tuple[bool, str]:
        """Whether every collected item ran, and if not, why (empty when complete)."""
        self.settle_tally()
        collected = session.testscollected
        # Hooks registered mid-run (a carbon fixture first asked for at run time, no
        # report asked for) did not see the tests before: no count of missing tests then.
        missing = 0 if self.ran_partial else max(collected - len(self.ran), 0)
        # Under xdist the controller's scheduler holds the reason to stop (-x, --maxfail).
        dsession = session.config.pluginmanager.get_plugin("dsession")
        stop = session.shouldstop or session.shouldfail or getattr(dsession, "shouldstop", "")
        interrupted = exitstatus is not None and int(exitstatus) == int(pytest.ExitCode.INTERRUPTED)
        if not missing and not interrupted:
            return True, ""
        parts = [str(stop) if stop else ("interrupted" if interrupted else "")]
        if missing:
            parts.append(f"{missing} of {collected} collected tests did not run")
        return False, ": ".join(p for p in parts if p)

    def close(self) -> None:
        """The run is over (``pytest_unconfigure``): close the sensors and let go of the
        per-test records, read by then, before pytest's last garbage collection has to
        walk them (thousands of small dicts)."""
        self.finished_unix_s = time.time()
        self.pending.clear()
        self._records = []
        self._record_at = {}
        self._raw = 0
        if self._meter is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._meter.close()

    def hold_gc(self) -> None:
        """Pause automatic garbage collection from the end of the run to
        :meth:`release_gc` (pytest's last ``pytest_unconfigure``).

        Building and reading the run's records allocates thousands of small objects that
        all live on: the collector counts them, and by the end of a run a full
        collection is usually due, so it walked pytest's whole heap at the first
        allocations after the summary and freed nothing. pytest collects fully at
        unconfigure anyway (after :meth:`close` let the records go); the collector is
        restarted after that, with nothing left to count. A collector that was off
        stays off."""
        import gc

        # The restart is a hook of the per-test hooks' object: without it, no pause.
        if self.per_test_hooks and not self._gc_held and gc.isenabled():
            gc.disable()
            self._gc_held = True

    def release_gc(self) -> None:
        """Restart the collector that :meth:`hold_gc` paused (idempotent)."""
        if self._gc_held:
            self._gc_held = False
            import gc

            gc.enable()


def closest_carbon_marker(item: pytest.Item) -> pytest.Mark | None:
    """``item.get_closest_marker("carbon")``, walking the node chain directly (the item,
    its class, module, ... in that order): the same answer, without the generators and
    the chain list pytest builds on every call (a few µs per test)."""
    node: Any = item
    while node is not None:
        for mark in node.own_markers:
            if mark.name == "carbon":
                return mark  # type: ignore[no-any-return]
        node = node.parent
    return None


@contextmanager
def gc_paused() -> Iterator[None]:
    """No automatic garbage collection inside the block (restored as it was after it).

    For building and reading the run's records: thousands of small dicts that all live
    on to the end, so a collection pass there walks pytest's whole heap and frees
    nothing. Nested uses are harmless: only the outermost enables the collector again."""
    import gc

    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def record_properties(record: dict[str, Any]) -> list[tuple[str, object]]:
    """The few numbers that go into JUnit XML as properties."""
    if record.get("energy_j") is None:
        return []
    return [
        ("carbon_energy_j", round(record["energy_j"], 6)),
        ("carbon_gco2e_g", round(record["gco2e_g"], 9)),
        ("carbon_method", record["method"]),
    ]
