"""Checks at start-up that turn a typo into a usage error instead of a gate quietly off:
a sensor named in ``--carbon-sensors`` that cannot be read, and an explicit
``--carbon-compare=ID|PATH`` that names no stored run. Each returns the message, or None.
"""

from __future__ import annotations

import contextlib
from typing import Any


def unreadable_sensors(settings: Any) -> str | None:
    """The doctor's reason and fix for each named sensor that cannot be opened here.
    ``auto`` (the default) takes what it finds, and is never an error."""
    spec = getattr(settings, "carbon_sensors", "auto") or "auto"
    if spec == "auto":
        return None
    from pytest_carbon.measure.sensors.discover import discover

    found = discover(spec, settings.carbon_rapl_root, settings.interval_s)
    try:
        bad = [s for s in found.statuses if not s.available]
    finally:
        for sensor in found.sensors:
            with contextlib.suppress(Exception):  # closing a probe must not hide the answer
                sensor.close()
    if not bad:
        return None
    lines = [
        f"--carbon-sensors={spec}: {s.name} cannot be read here: {s.reason}"
        + (f" Fix: {s.fix}" if s.fix else "")
        for s in bad
    ]
    lines.append(
        "`pytest-carbon sensors` shows what this machine can read; "
        "--carbon-sensors=auto uses it (the estimate where no counter is readable)."
    )
    return "\n".join(lines)


def missing_baseline(settings: Any) -> str | None:
    """An explicit ``--carbon-compare`` (an ID or a PATH, not ``latest``) that finds
    nothing: comparing with nothing would turn a CI gate off without a word."""
    spec = getattr(settings, "carbon_compare", None)
    if not spec or spec == "latest":
        return None
    from pytest_carbon.compare.baseline import Storage
    from pytest_carbon.measure.machine import machine_id

    storage = Storage(getattr(settings, "carbon_storage", None) or ".carbon")
    if storage.find(spec, machine_id()) is not None:
        return None
    return (
        f"--carbon-compare: no baseline {spec!r}: not a stored run id in {storage.root} "
        "and not a report file. Give an existing id or path, or --carbon-compare alone "
        "(the latest stored run; the first run saves one)."
    )
