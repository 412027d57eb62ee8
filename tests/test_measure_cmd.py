"""``pytest-carbon measure -- CMD``: real children, real exit codes, real signals."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from powercap import FakePowercap

BURN = (
    "import sys, time\n"
    "end = time.process_time() + float(sys.argv[1])\n"
    "while time.process_time() < end: pass\n"
    "print('burnt', flush=True)\n"
    "sys.exit(int(sys.argv[2]))\n"
)


def measure(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_carbon.cli", "measure", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def last_json(stdout: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    return result


def test_a_cpu_burning_child_is_estimated_by_its_cpu_time() -> None:
    proc = measure("--json", "--country", "FRA", "--", sys.executable, "-c", BURN, "0.4", "3")
    assert proc.returncode == 3, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0] == "burnt"  # the child's own output comes through
    r = last_json(proc.stdout)
    assert r["exit_code"] == 3 and r["interrupted"] is False
    assert r["method"] == "estimated"
    assert r["cpu_time_s"] >= 0.35  # the child's CPU time, counted once it was reaped
    assert r["cpu_time_s"] <= r["duration_s"] + 0.2
    from pytest_carbon.measure.sensors.estimate import EstimateSensor

    w = EstimateSensor().watts_per_core
    assert r["dynamic_components"]["cpu"] == pytest.approx(r["cpu_time_s"] * w, rel=0.01)
    # Plus the machine's idle CPU power per CPU for its own CPU time (the vCPU-hour
    # charge); the idle power of the wall time is reported beside it, never mixed in.
    from pytest_carbon.measure.meter import logical_cpus

    idle_w = r["idle_power_w"]["cpu"]
    assert r["components"]["cpu"] == pytest.approx(
        r["cpu_time_s"] * w + idle_w / logical_cpus() * r["cpu_time_s"], rel=0.01
    )
    assert r["idle_wall_energy_j"] >= idle_w * r["duration_s"] * 0.99
    assert r["energy_j"] == pytest.approx(sum(r["components"].values()))
    assert r["power_w"] == pytest.approx(r["energy_j"] / r["duration_s"])
    assert r["edp_js"] == pytest.approx(r["energy_j"] * r["duration_s"])
    assert r["accounting"]["country"] == "FRA"
    intensity = r["accounting"]["intensity_g_per_kwh"]
    assert r["gco2e_g"] == pytest.approx(r["energy_j"] / 3.6e6 * intensity)


def test_text_report_goes_to_stderr() -> None:
    proc = measure("--", sys.executable, "-c", BURN, "0.05", "0")
    assert proc.returncode == 0
    assert proc.stdout.strip() == "burnt"
    err = proc.stderr
    for label in ("duration", "energy", "dynamic", "power", "EDP", "carbon", "method"):
        assert f"  {label}" in err
    assert "estimated" in err and "gCO2e" in err


def test_rapl_counters_of_a_fake_tree(tmp_path: Path) -> None:
    pc = FakePowercap(tmp_path)
    pc.zone("intel-rapl:0", "package-0", 35.0, max_range_uj=2**62)
    pc.start()
    try:
        proc = measure(
            "--json",
            "--sensors",
            "rapl",
            "--rapl-root",
            str(tmp_path),
            "--idle",
            "off",
            "--",
            sys.executable,
            "-c",
            BURN,
            "0.3",
            "0",
        )
    finally:
        pc.stop()
        pc.close()
    assert proc.returncode == 0, proc.stderr
    r = last_json(proc.stdout)
    assert r["sensors"] == ["rapl"]
    # The whole counter, and the command's part of it: with no idle power, its CPU time's
    # share of the machine's busy time (this constant-power tree does not follow load).
    # (10%: the fake counters move in a thread, which a busy machine can leave stale.)
    assert r["machine_energy_j"] == pytest.approx(35.0 * r["duration_s"], rel=0.1)
    assert r["attribution"] == "auto" and r["method"] == "attributed"
    share = 1.0 if r["cpu_share"] is None else r["cpu_share"]
    assert r["components"]["cpu"] == pytest.approx(35.0 * r["duration_s"] * share, rel=0.1)


#: Counts the SIGINTs it gets: a signal delivered twice would interrupt a child's clean-up.
COUNT_SIGINTS = (
    "import signal, sys, time\n"
    "n = 0\n"
    "def on_int(signum, frame):\n"
    "    global n\n"
    "    n += 1\n"
    "signal.signal(signal.SIGINT, on_int)\n"
    "print('ready', flush=True)\n"
    "t = time.time()\n"
    "while n == 0 and time.time() - t < 20:\n"
    "    time.sleep(0.01)\n"
    "time.sleep(0.5)  # a second SIGINT would land now\n"
    "print('sigints', n, flush=True)\n"
    "sys.exit(7)\n"
)


def test_a_signal_sent_to_measure_alone_is_forwarded_once() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest_carbon.cli",
            "measure",
            "--json",
            "--",
            sys.executable,
            "-c",
            COUNT_SIGINTS,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGINT)  # to the measuring process only, as `kill -INT` would
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 7, err
    assert "sigints 1" in out
    r = last_json(out)
    assert r["interrupted"] is True and r["exit_code"] == 7
    assert r["duration_s"] > 0.4 and r["energy_j"] > 0


def test_a_python_child_stopped_by_ctrl_c_exits_130() -> None:
    child = "import time\nprint('ready', flush=True)\ntime.sleep(30)\n"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest_carbon.cli",
            "measure",
            "--json",
            "--",
            sys.executable,
            "-c",
            child,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 128 + signal.SIGINT, err
    assert "KeyboardInterrupt" in err
    r = last_json(out)
    assert r["interrupted"] is True and r["exit_code"] == 130


@pytest.mark.skipif(shutil.which("setsid") is None, reason="needs util-linux setsid")
def test_ctrl_c_at_a_terminal_stops_the_child_and_still_reports() -> None:
    # A real pseudo-terminal: ^C makes the kernel signal the whole foreground process
    # group, measure and its child alike; measure then leaves the child alone (it has the
    # signal already), waits for it, and reports. A forwarded duplicate usually merges with
    # the pending original, so "sigints 1" does not by itself prove that none was sent.
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [
            "setsid",
            "--ctty",
            sys.executable,
            "-m",
            "pytest_carbon.cli",
            "measure",
            "--json",
            "--",
            sys.executable,
            "-c",
            COUNT_SIGINTS,
        ],
        stdin=slave,
        stdout=slave,
        stderr=slave,
    )
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 30
    sent = False
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: every writer is gone
                break
            if not chunk:
                break
            seen += chunk
        if not sent and b"ready" in seen:
            os.write(master, b"\x03")  # ^C typed at the terminal
            sent = True
    os.close(master)
    assert proc.wait(timeout=10) == 7
    text = seen.decode(errors="replace")
    assert "sigints 1" in text, text
    r = last_json(text.replace("\r", ""))
    assert r["interrupted"] is True and r["exit_code"] == 7


def test_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    from pytest_carbon.cli import main

    def status(*args: str) -> object:
        # Refused before any child starts: the command's main() in this process.
        with pytest.raises(SystemExit) as info:
            main(["measure", *args])
        return info.value.code

    assert status("--json") == 2
    assert "no command given" in capsys.readouterr().err
    assert status("--country", "XXX", "--", "true") == 2
    assert "unknown country" in capsys.readouterr().err
    proc = measure("--", "/no/such/program")
    assert proc.returncode == 127 and "cannot run" in proc.stderr


def test_command_without_separator() -> None:
    proc = measure("--json", sys.executable, "-c", BURN, "0.01", "5")
    assert proc.returncode == 5, proc.stderr
    assert last_json(proc.stdout)["command"][0] == sys.executable
