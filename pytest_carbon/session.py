"""CarbonSession: the run's state (settings, meter, accounting, records) and its role.

Role: ``local`` (no xdist), ``worker`` (an xdist worker: measures, sends records on the
test reports) or ``controller`` (the xdist controller: receives records, writes reports).
"""

from __future__ import annotations

import time
import warnings
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
        self.records: list[dict[str, Any]] = []
        self.pending: dict[str, dict[str, Any]] = {}
        self.started_unix_s = time.time()
        self.finished_unix_s: float | None = None
        self.complete = True
        self.warnings: list[str] = []
        self._meter: Any = None
        self._accounting: Any = None
        self._statuses: list[Any] = []
        self._idle_power_w: dict[str, float] | None = None
        self._idle_json: dict[str, Any] | None = None
        self._worker_statuses: list[dict[str, Any]] | None = None
        self._intensity_varies: bool | None = None
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
        from pytest_carbon.carbon.accounting import accounting_from_settings

        return accounting_from_settings(self.settings)

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

    @property
    def has_meter(self) -> bool:
        return self._meter is not None

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

    def wants_measurement(self, item: pytest.Item) -> bool:
        """Measure this item's call phase here? (Prompt items measure themselves.)"""
        if getattr(item, "carbon_self_measured", False):
            return False
        return self.settings.carbon or item.get_closest_marker("carbon") is not None

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

    def add_record(self, record: dict[str, Any]) -> None:
        self.records.append(record)

    def set_record(self, item: pytest.Item, record: dict[str, Any]) -> None:
        """Store an item's record; the plugin attaches it to the item's call report (or
        its setup report when setup failed), so it travels through xdist."""
        if self.intensity_varies and record.get("energy_j") is not None:
            self._charge_at_own_time(record)
        self.pending[item.nodeid] = record
        # On the item: junitxml reads the properties of the teardown report, made from it.
        item.user_properties.extend(record_properties(record))

    def _charge_at_own_time(self, record: dict[str, Any]) -> None:
        """Recompute the carbon fields with the hook's intensity at the record's start."""
        from datetime import datetime

        when = datetime.fromisoformat(record["start"].replace("Z", "+00:00"))
        acc = self.accounting_at(when)
        record.update(
            acc.record_fields(record["energy_j"], record["duration_s"], share=record.get("share"))
        )
        for phase in (record.get("phases") or {}).values():
            phase.update(
                acc.record_fields(phase["energy_j"], phase["duration_s"], share=phase.get("share"))
            )
        record["intensity_g_per_kwh"] = acc.intensity_g_per_kwh
        record["intensity_source"] = acc.intensity_source

    def take_record(self, nodeid: str) -> dict[str, Any] | None:
        return self.pending.pop(nodeid, None)

    def close(self) -> None:
        self.finished_unix_s = time.time()
        if self._meter is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._meter.close()


def record_properties(record: dict[str, Any]) -> list[tuple[str, object]]:
    """The few numbers that go into JUnit XML as properties."""
    if record.get("energy_j") is None:
        return []
    return [
        ("carbon_energy_j", round(record["energy_j"], 6)),
        ("carbon_gco2e_g", round(record["gco2e_g"], 9)),
        ("carbon_method", record["method"]),
    ]
