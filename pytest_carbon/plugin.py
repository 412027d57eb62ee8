"""pytest hooks of pytest-carbon: options, session state, and delegation. No logic lives here.

Importing this module must stay cheap: pytest imports it at every start, with or
without ``--carbon``. Everything else is imported inside the hook that needs it.
"""

from __future__ import annotations

from collections.abc import Generator
from time import time as _unix_time
from typing import Any

import pytest

from pytest_carbon.options import OptionError, add_options, build_settings
from pytest_carbon.session import (
    FIXTURE_KEY,
    SESSION_KEY,
    CarbonSession,
    closest_carbon_marker,
    get_session,
)

MARKER_HELP = (
    "carbon(max_energy_j=None, max_gco2e_g=None, max_edp_js=None, max_power_w=None): "
    "measure this test even without --carbon and fail it when it exceeds a budget "
    "(per call when the carbon fixture measured it)"
)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from pytest_carbon import _skip_assertion_rewriting, hookspec

    _skip_assertion_rewriting()

    pluginmanager.add_hookspecs(hookspec)


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    try:
        settings = build_settings(config)
    except OptionError as exc:
        raise pytest.UsageError(f"pytest-carbon: {exc}") from None
    cs = CarbonSession(config, settings)
    config.stash[SESSION_KEY] = cs
    if settings.carbon and cs.role != "worker":
        try:
            cs.check_accounting()
        except ValueError as exc:
            raise pytest.UsageError(f"pytest-carbon: {exc}") from None
    if cs.role != "worker":
        _check_startup(settings)
    if cs.records_possible_from_start():
        register_per_test_hooks(config, cs)
    if settings.carbon_compare_ref and cs.role != "worker":
        from pytest_carbon.compare.ref import register

        register(config, cs)
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistHooks(cs), "pytest-carbon-xdist")


def _check_startup(settings: Any) -> None:
    # Only an explicit baseline or named sensors can be wrong: a plain run imports nothing.
    compare = settings.carbon_compare
    named = settings.enabled and (settings.carbon_sensors or "auto") != "auto"
    if not named and (not compare or compare == "latest"):
        return
    from pytest_carbon.startup import missing_baseline, unreadable_sensors

    problems = [missing_baseline(settings)]
    if settings.enabled:
        problems.append(unreadable_sensors(settings))
    for problem in problems:
        if problem:
            raise pytest.UsageError(f"pytest-carbon: {problem}")


def pytest_unconfigure(config: pytest.Config) -> None:
    cs = config.stash.get(SESSION_KEY, None)
    if cs is not None:
        cs.close()


def pytest_collect_file(file_path: Any, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix not in (".yaml", ".yml"):
        return None
    # The gate is cheap; the collection module (tens of ms) is imported for prompt
    # suites only, not for every YAML file of a project.
    from pytest_carbon.prompts.paths import wants_file

    if not wants_file(file_path, parent):
        return None
    from pytest_carbon.prompts.collect import PromptFile

    return PromptFile.from_parent(parent, path=file_path)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import sys

    cs = config.stash.get(SESSION_KEY, None)
    if cs is not None and not cs.per_test_hooks and any(map(_may_leave_a_record, items)):
        register_per_test_hooks(config, cs)
    if cs is not None and cs.per_test_hooks and not cs.tally and _tally_possible(config, cs, items):
        # Every collected test is a plain window: the report hook is not needed (module
        # docstring of _TallyHooks); its call wrapper alone stays.
        config.pluginmanager.unregister(name=PER_TEST_NAME)
        config.pluginmanager.register(_TallyHooks(cs), PER_TEST_NAME)
        cs.tally = True
        cs.report_hook = False

    # A --carbon-model that matches no collected prompt task is a usage error.
    if "pytest_carbon.prompts.collect" in sys.modules:
        from pytest_carbon.prompts.collect import check_model_selection

        check_model_selection(config, items)


def pytest_collection_finish(session: pytest.Session) -> None:
    import sys

    # Only when a prompt file was collected has the prompts package been imported.
    if "pytest_carbon.prompts.collect" in sys.modules:
        from pytest_carbon.prompts.generate import prefetch

        prefetch(session)


def _may_leave_a_record(item: pytest.Item) -> bool:
    """Whether a test can leave a record in a run without ``--carbon``: a ``carbon``
    marker, the ``carbon`` fixture among its fixtures, or a prompt item."""
    return (
        closest_carbon_marker(item) is not None
        or "carbon" in getattr(item, "fixturenames", ())
        or bool(getattr(item, "carbon_self_measured", False))
    )


def _tally_possible(config: pytest.Config, cs: CarbonSession, items: list[pytest.Item]) -> bool:
    """Whether the run can do without the report hook (:class:`_TallyHooks`): ``--carbon``
    on the per-test fast path (:attr:`CarbonSession.fast_path`: no xdist, one round, one
    intensity, no JUnit XML or report log), pytest's terminal reporter there to keep the
    reports, and no collected test that needs the full path (a ``carbon`` marker or
    fixture, pytest-benchmark, a prompt item)."""
    if not (cs.settings.carbon and items and cs.fast_path):
        return False
    if config.option.collectonly or config.pluginmanager.is_blocked("terminal"):
        return False
    if config.pluginmanager.get_plugin("terminalreporter") is None:
        return False
    return not any(
        _may_leave_a_record(item) or "benchmark" in getattr(item, "fixturenames", ())
        for item in items
    )


#: The names the per-test hooks' object, and the report hook on its own, are
#: registered under.
PER_TEST_NAME = "pytest-carbon-records"
REPORT_HOOK_NAME = "pytest-carbon-reports"


def register_report_hook(config: pytest.Config, cs: CarbonSession) -> None:
    """Register the report hook beside the tally's call wrapper (:class:`_TallyHooks`),
    once: a test of the run needs the full path after all (the carbon fixture asked for
    at run time, a marker added at run time, a meter without an edge reader)."""
    if not cs.report_hook:
        cs.report_hook = True
        config.pluginmanager.register(_ReportHook(cs), REPORT_HOOK_NAME)


def _leave_tally(config: pytest.Config, cs: CarbonSession) -> None:
    """Replace the tally's call wrapper with :class:`_PerTestHooks` (the wrapper and the
    report hook in one), for a run whose meter has no edge reader: its windows are read
    by :meth:`~pytest_carbon.measure.meter.Meter.begin` and the report hook finishes them.
    Called from the first test's call (pluggy copies a hook's implementations for each
    call: the swap applies from the next hook call on)."""
    pm = config.pluginmanager
    if cs.report_hook:  # registered on its own already: _PerTestHooks brings its own
        pm.unregister(name=REPORT_HOOK_NAME)
    pm.unregister(name=PER_TEST_NAME)
    pm.register(_PerTestHooks(cs), PER_TEST_NAME)
    cs.tally = False
    cs.report_hook = True


def register_per_test_hooks(config: pytest.Config, cs: CarbonSession) -> None:
    """Register the hooks that run for every test (the call wrapper, the report hook):
    from the start when ``--carbon``, a report or a baseline asks for records, else when
    a collected test can leave one (:func:`_may_leave_a_record`), or when a test first
    asks for the ``carbon`` fixture at run time (fixture.py). A run that can measure
    nothing calls none of the plugin's code per test."""
    if not cs.per_test_hooks:
        cs.per_test_hooks = True
        cs.report_hook = True
        config.pluginmanager.register(_PerTestHooks(cs), PER_TEST_NAME)


def _runner() -> Any:
    """pytest_carbon.runner, imported on first use (its imports are the measuring stack)."""
    global _RUNNER
    if _RUNNER is None:
        from pytest_carbon import runner

        _RUNNER = runner
    return _RUNNER


_RUNNER: Any = None


class _XdistHooks:
    """Registered only when pytest-xdist is present (its hooks are unknown otherwise)."""

    def __init__(self, cs: CarbonSession) -> None:
        self.cs = cs
        self.usage_errors: list[str] = []

    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        output = getattr(node, "workeroutput", {}).get("pytest_carbon")
        if output:
            self.cs.merge_worker_output(output)
        usage = getattr(node, "workeroutput", {}).get("pytest_carbon_usage_error")
        if usage and usage not in self.usage_errors:
            self.usage_errors.append(usage)
            import sys

            print(f"ERROR: {usage}", file=sys.stderr)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.usage_errors:  # a worker's typo (prompts/collect.py): exit status 4
            session.exitstatus = pytest.ExitCode.USAGE_ERROR


class _ReleaseGc:
    """The per-test hooks' last word: restart the collector paused since the session's
    finish (:meth:`CarbonSession.hold_gc`)."""

    cs: CarbonSession

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(self, config: pytest.Config) -> None:
        # After pytest's own full collection (a plain unconfigure hook of its
        # unraisableexception plugin): restarting the collector then costs nothing.
        self.cs.release_gc()


class _ReportHook:
    """The report hook, on its own: part of :class:`_PerTestHooks`, and registered
    beside :class:`_TallyHooks` when a test of a tally run needs the full path."""

    def __init__(self, cs: CarbonSession) -> None:
        self.cs = cs

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # tryfirst: the record must be on the report before xdist sends it to the
        # controller. It rides on the call report, or on the setup report when setup
        # failed (a prompt item whose generation failed). The pending record only gets
        # the two facts known now: the outcome and the attempt (reruns run it again).
        # A fast-path window (runner.open_plain/close_plain or the edge path, never under
        # xdist) goes straight to the session, raw: its record is built when first wanted.
        cs = self.cs
        when = report.when
        nodeid = report.nodeid
        if when == "call" and getattr(report, "context", None) is not None:
            # A subtest's report (record.is_subtest_report): the test's own follows.
            if report.failed:
                cs.failed_subtests.add(nodeid)
            return
        if when == "setup":
            counts = cs.attempts
            counts[nodeid] = counts.get(nodeid, 0) + 1
        if when == "call" and cs.late_fixture:
            # The carbon fixture, first asked for during this test's call, registered
            # these hooks: the call ran without the wrapper, whose part is done here.
            item = cs.late_fixture.pop(nodeid, None)
            if item is not None and nodeid not in cs.pending:
                from pytest_carbon.runner import fixture_record

                fixture_record(cs, item)
        if when == "call" or (when == "setup" and report.outcome == "failed"):
            pending = cs.pending.pop(nodeid, None)
            if pending is not None:
                rec_mod = _runner().record_module
                attempts = cs.attempts.get(nodeid, 1)
                outcome = rec_mod.outcome_of(report, nodeid in cs.failed_subtests)
                if type(pending) is tuple:
                    cs.add_raw(nodeid, pending, outcome, attempts)
                else:
                    report.carbon = rec_mod.finalize(pending, outcome, attempts)  # type: ignore[attr-defined]
        if str(report.outcome) == "rerun":  # pytest-rerunfailures' own outcome word
            cs.superseded.add(nodeid)
        if when == "teardown":
            cs.ran.add(nodeid)
            if nodeid in cs.superseded:
                # pytest-rerunfailures runs the test again: JUnit XML gets the carbon
                # properties of the attempt that counts, not of this one as well.
                cs.superseded.discard(nodeid)
                report.user_properties = [
                    p for p in report.user_properties if not str(p[0]).startswith("carbon_")
                ]
        record = getattr(report, "carbon", None)
        if record is not None:
            cs.add_record(record)


class _PerTestHooks(_ReportHook, _ReleaseGc):
    """The hooks that run for every test, for one session: the call phase's wrapper
    (measure it) and the report hook (a test's record rides on its report). A per-config
    object (``pytest_runtest_logreport`` gets no config), registered only where a record
    can arise (:func:`register_per_test_hooks`)."""

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, object, object]:
        cs = self.cs
        if cs.wants_measurement(item):
            runner = _runner()
            # The common test: one window around the call, opened and closed here (no
            # generator of the runner's per test); anything else: the runner's full path.
            # Cheapest where the meter reads a window as two edges (the estimate sensor).
            edge = cs.edge
            if edge is not None and runner.plain_window(item):
                unix0 = _unix_time()
                e0 = edge()
                try:
                    result = yield
                finally:
                    runner.close_edges(cs, item, unix0, e0, edge())
                return result
            key = runner.open_plain(cs, item)
            if key is None:
                return (yield from runner.measure_call(cs, item))
            try:
                result = yield
            finally:
                runner.close_plain(cs, item, key)
            return result
        result = yield
        if FIXTURE_KEY in item.stash:  # the carbon fixture measured something without --carbon
            from pytest_carbon.runner import fixture_record

            fixture_record(cs, item)
        return result


class _TallyHooks(_ReleaseGc):
    """The per-test hooks of a run whose collected tests are all plain windows on the
    edge path (:func:`_tally_possible`): the call wrapper alone, no report hook. Each
    test's window joins the session's records raw, with its outcome and attempts left
    open; they are read once from pytest's terminal reporter, which keeps every report,
    when the run is over (:meth:`CarbonSession.settle_tally`). The report hook is called
    three times per test (pluggy's dispatch alone is about a fifth of the plugin's cost
    per test); walking the reporter's lists once at the end is a fraction of that. A test
    that needs the full path after all takes the :class:`_PerTestHooks` wrapper's, and
    the report hook is registered from then on (:func:`register_report_hook`)."""

    def __init__(self, cs: CarbonSession) -> None:
        self.cs = cs

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, object, object]:
        cs = self.cs
        runner = _runner()
        edge = cs.edge
        if edge is None:
            # The meter reads counters, not edges (decided at this, the first, test): the
            # run takes the per-test hooks after all, from this test's call report on.
            _leave_tally(item.config, cs)
            return (yield from _PerTestHooks.pytest_runtest_call(self, item))  # type: ignore[arg-type]
        if not runner.plain_window(item):
            register_report_hook(item.config, cs)
            return (yield from _PerTestHooks.pytest_runtest_call(self, item))  # type: ignore[arg-type]
        unix0 = _unix_time()
        e0 = edge()
        try:
            return (yield)
        finally:
            e1 = edge()
            if FIXTURE_KEY in item.stash:  # the carbon fixture, asked for during the call
                register_report_hook(item.config, cs)
                runner.close_edges(cs, item, unix0, e0, e1)
            else:
                cs.add_raw(item.nodeid, (unix0, e0, e1, cs.meter.idle), None, 0)


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session: pytest.Session) -> Generator[None, object, object]:
    cs = get_session(session.config)
    result = yield
    if cs.role != "worker" and cs.baseline_wanted():
        from pytest_carbon.finish import after_runtestloop

        after_runtestloop(cs, session)
    return result


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    cs = session.config.stash.get(SESSION_KEY, None)
    if cs is None:
        return
    if cs.role == "worker":
        # What the controller cannot see for itself travels back in workeroutput.
        session.config.workeroutput["pytest_carbon"] = cs.worker_output()  # type: ignore[attr-defined]
        return
    cs.complete, cs.incomplete_reason = cs.completeness(session, exitstatus)
    if cs.has_records:  # the run is over: reports and the summary read the records
        cs.hold_gc()
    if cs.reports_wanted():
        from pytest_carbon.finish import write_reports

        write_reports(cs, session, exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    cs = config.stash.get(SESSION_KEY, None)
    if cs is None or cs.role == "worker" or not (cs.has_records or cs.settings.enabled):
        return
    from pytest_carbon.report.terminal import terminal_summary

    # The summary reads the run's records with the collector paused since the session's
    # finish (hold_gc); they are let go at unconfigure, before pytest's own collection.
    terminal_summary(cs, terminalreporter)


@pytest.fixture
def carbon(request: pytest.FixtureRequest) -> Any:
    """Measure the energy of a function (``carbon(func, *args)``, repeated until the measured
    time reaches ``--carbon-min-time``) or of blocks (``with carbon.measure("phase"):``)."""
    from pytest_carbon.fixture import fixture_for

    return fixture_for(request)
