"""``pytest-carbon measure -- CMD ARGS``: run a command and report its energy and carbon.

The command runs as a child with our stdin, stdout and stderr. The window opens right
after the child is spawned (naming its pid, so its CPU time counts while it lives) and
closes once it is reaped (its CPU time then sits in ``RUSAGE_CHILDREN``). The report goes
to stderr, or as one JSON line to stdout with ``--json``, after the child's own output.
The exit status is the child's (128 + N when signal N ended it). Ctrl-C reaches the child
and the energy measured up to its exit is still reported.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from types import FrameType
from typing import Any

from pytest_carbon.measure.sensors.discover import DEFAULT_RAPL_ROOT


def _parser() -> argparse.ArgumentParser:
    from pytest_carbon.options import parse_idle, parse_positive_float, parse_pue, parse_sensors

    p = argparse.ArgumentParser(
        prog="pytest-carbon measure",
        usage="pytest-carbon measure [OPTIONS] -- CMD [ARGS...]",
        description="Run CMD and report its energy, power, EDP and carbon.",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object to stdout")
    p.add_argument("--country", metavar="ISO3", help="grid intensity of this country")
    p.add_argument("--region", metavar="NAME", help="grid region (e.g. a US state), with --country")
    p.add_argument(
        "--intensity", type=parse_positive_float, metavar="G_PER_KWH", help="grid intensity"
    )
    p.add_argument("--pue", type=parse_pue, default=None, help="data-centre PUE (default: 1.0)")
    p.add_argument(
        "--sensors",
        type=parse_sensors,
        default="auto",
        metavar="LIST",
        help="auto, or a comma-separated list of rapl, nvml, estimate (default: auto)",
    )
    p.add_argument(
        "--rapl-root",
        default=DEFAULT_RAPL_ROOT,
        metavar="DIR",
        help=f"powercap sysfs root (default: {DEFAULT_RAPL_ROOT})",
    )
    p.add_argument(
        "--interval",
        type=parse_positive_float,
        default=100.0,
        metavar="MS",
        help="sampling interval where power must be sampled (default: 100 ms)",
    )
    p.add_argument(
        "--idle",
        type=parse_idle,
        default="auto",
        metavar="auto|off|WATTS",
        help="idle power to subtract for dynamic energy (default: auto: the model's, or "
        "a 0.8 s calibration of the counters against busy CPUs before the command "
        "starts)",
    )
    p.add_argument("command", nargs=argparse.REMAINDER, help="the command and its arguments")
    return p


def _split(argv: list[str]) -> tuple[list[str], list[str]]:
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1 :]
    return argv, []


class _Forwarder:
    """Pass SIGINT and SIGTERM to the child once, unless the terminal already did.

    Ctrl-C in a terminal signals the whole foreground process group, child included;
    forwarding it again would interrupt the child's own clean-up. A signal sent to us
    alone (``kill -INT``, a CI runner, no terminal) is passed on.
    """

    def __init__(self) -> None:
        # Installed before the child starts: a signal that arrives while it starts (a
        # busy machine can take long) is held and passed on once it exists.
        self.child: subprocess.Popen[bytes] | None = None
        self.signals: list[int] = []
        self._pending: list[int] = []
        self._old: dict[int, Any] = {}

    def attach(self, child: subprocess.Popen[bytes]) -> None:
        self.child = child
        while self._pending:
            self._forward(self._pending.pop(0))

    def __enter__(self) -> _Forwarder:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)

    def _terminal_delivered(self, child: subprocess.Popen[bytes]) -> bool:
        try:
            fd = sys.stdin.fileno()
            return os.isatty(fd) and os.tcgetpgrp(fd) == os.getpgrp() == os.getpgid(child.pid)
        except (OSError, ValueError, AttributeError):
            return False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signals.append(signum)
        if self.child is None:
            self._pending.append(signum)
            return
        self._forward(signum)

    def _forward(self, signum: int) -> None:
        child = self.child
        if child is None or child.poll() is not None:
            return
        if signum == signal.SIGINT and self._terminal_delivered(child):
            return
        with contextlib.suppress(OSError):
            child.send_signal(signum)


def _exit_code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def main(argv: list[str]) -> int:
    from pytest_carbon.carbon.accounting import resolve_accounting
    from pytest_carbon.measure.meter import Meter
    from pytest_carbon.measure.sensors.discover import discover

    head, tail = _split(argv)
    parser = _parser()
    args = parser.parse_args(head)
    command = tail or [a for a in args.command if a != "--"]
    if not command:
        parser.error("no command given: pytest-carbon measure [OPTIONS] -- CMD [ARGS...]")
    try:
        accounting = resolve_accounting(
            args.country,
            args.region,
            args.intensity,
            args.pue if args.pue is not None else 1.0,
            pue_is_default=args.pue is None,
        )
    except (ValueError, OSError) as exc:
        parser.error(str(exc))

    interval_s = args.interval / 1000.0
    found = discover(args.sensors, args.rapl_root, interval_s)
    for msg in found.messages:
        print(f"pytest-carbon: {msg}", file=sys.stderr)
    meter = Meter(found.sensors, interval_s=interval_s)
    try:
        if isinstance(args.idle, float):
            meter.idle_power_w = {c: 0.0 for c in meter.owner}
            cpu_owner = "cpu" if "cpu" in meter.owner else next(iter(meter.owner), "cpu")
            meter.idle_power_w[cpu_owner] = args.idle
        elif args.idle == "auto":
            meter.measure_idle()
        with _Forwarder() as fwd:
            try:
                child = subprocess.Popen(command)
            except OSError as exc:
                print(f"pytest-carbon measure: cannot run {command[0]!r}: {exc}", file=sys.stderr)
                return 127 if isinstance(exc, FileNotFoundError) else 126
            fwd.attach(child)
            meter.begin("command", pids=(child.pid,))
            returncode = _wait(child, found.sensors, interval_s)
        measurement = meter.end("command")
    finally:
        meter.close()

    interrupted = bool(fwd.signals)
    result: dict[str, Any] = {
        "command": command,
        "exit_code": _exit_code(returncode),
        "interrupted": interrupted,
        **measurement.to_json(),
        "power_w": measurement.power_w,
        "edp_js": measurement.edp_js,
        "gco2e_g": accounting.gco2e_g(measurement.total_energy_j),
        "idle_power_w": dict(meter.idle_power_w),
        "accounting": accounting.to_json(),
    }
    if args.json:
        print(json.dumps(result, default=str))
    else:
        print(_text(result), file=sys.stderr)
    return int(result["exit_code"])


def _wait(child: subprocess.Popen[bytes], sensors: list[Any], interval_s: float) -> int:
    """Wait for the child, reading the per-process sensors every ``interval_s`` while it
    lives: the estimate integrates resident memory between reads, so this counts the
    child's memory, which two reads at the window's ends would miss."""
    per_process = [s for s in sensors if not s.machine_wide]
    while True:
        try:
            return child.wait(timeout=interval_s if per_process else None)
        except subprocess.TimeoutExpired:
            for s in per_process:
                s.read((child.pid,))
        except KeyboardInterrupt:  # a signal before our handler was installed
            child.send_signal(signal.SIGINT)
            time.sleep(0)


def _text(r: dict[str, Any]) -> str:
    """What a person reads: 3 significant digits with SI prefixes, never scientific
    notation (the report's one formatter); the attributed share only where a machine-wide
    counter was attributed."""
    from pytest_carbon.report import format as fmt

    methods = r["component_methods"]
    comps = ", ".join(
        f"{c} {fmt.energy(e)} ({methods.get(c, '?')})" for c, e in r["components"].items()
    )
    acc = r["accounting"]
    where = acc["country"] or "world average (default; pass --country ISO3)"
    lines = [
        "",
        f"pytest-carbon measure: {shlex.join(r['command'])}",
        f"  exit code   {r['exit_code']}" + ("  (interrupted)" if r["interrupted"] else ""),
        f"  duration    {fmt.duration(r['duration_s'])}   CPU time {fmt.duration(r['cpu_time_s'])}",
        f"  energy      {fmt.energy(r['energy_j'])}   [{comps}]",
        f"  dynamic     {fmt.energy(r['dynamic_energy_j'])}   (minus idle power x duration)",
        f"  power       {fmt.power(r['power_w'])}",
        f"  EDP         {fmt.si(r['edp_js'], 'J·s')}",
        f"  carbon      {fmt.carbon(r['gco2e_g'])}   "
        f"({fmt.setting(acc['intensity_g_per_kwh'])} g/kWh, {where}, "
        f"PUE {fmt.setting(acc['pue'])})",
        f"  method      {r['method']} (sensors: {', '.join(r['sensors'])})",
    ]
    if r["share"] is not None and "attributed" in methods.values():
        lines.append(f"  share       {fmt.sig(r['share'])} of machine-wide counters (attributed)")
    lines += [f"  warning     {w}" for w in r["warnings"]]
    return "\n".join(lines)
