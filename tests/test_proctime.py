"""Process-tree CPU time and memory through both back ends: /proc, and psutil forced on
Linux with ``PYTEST_CARBON_PROCFS=off`` (the path macOS and Windows take)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from cpu_burn import burn

from pytest_carbon.measure import proctime


@pytest.fixture
def psutil_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(proctime.PROCFS_ENV, "off")
    assert proctime.backend() == "psutil"


def test_proc_is_the_default_on_linux() -> None:
    assert proctime.backend() == "proc"


def test_the_two_back_ends_agree_on_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    burn(0.05)
    fast = (proctime.tree_cpu_s(), proctime.rss_bytes(), proctime.machine_busy_cpu_s())
    monkeypatch.setenv(proctime.PROCFS_ENV, "off")
    slow = (proctime.tree_cpu_s(), proctime.rss_bytes(), proctime.machine_busy_cpu_s())
    assert slow[0] == pytest.approx(fast[0], abs=0.05)
    assert slow[1] == pytest.approx(fast[1], rel=0.1)
    assert fast[2] is not None and slow[2] is not None
    # Machine-wide busy time keeps growing between the reads (other work): a second apart.
    assert slow[2] == pytest.approx(fast[2], abs=1.0)


def test_psutil_counts_own_work_and_reaped_children(psutil_only: None) -> None:
    t0 = proctime.tree_cpu_s()
    burn(0.1)
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import time\nt=time.process_time()\nwhile time.process_time()-t<0.2: pass",
        ],
        check=True,
    )
    spent = proctime.tree_cpu_s() - t0
    assert spent >= 0.3 - 0.02  # ours and the reaped child's (allowing tick rounding)


def test_psutil_reads_a_live_process_and_its_descendants(psutil_only: None) -> None:
    code = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', "
        "'import time\\nt=time.process_time()\\nwhile time.process_time()-t<0.3: pass\\n"
        "time.sleep(30)'])\n"
        "t=time.process_time()\nwhile time.process_time()-t<0.2: pass\n"
        "print(child.pid, flush=True)\ntime.sleep(30)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        parent.stdout.readline()
        deadline = time.monotonic() + 20
        total = 0.0
        while time.monotonic() < deadline:
            total = proctime.process_tree_cpu_s(parent.pid) or 0.0
            if total >= 0.45:
                break
            time.sleep(0.05)
        assert total >= 0.45  # 0.2 s in the parent, 0.3 s in its live child
        assert proctime.pid_cpu_s(parent.pid) >= 0.15
        assert proctime.rss_bytes((parent.pid,)) > proctime.rss_bytes()
    finally:
        for p in psutil.Process(parent.pid).children(recursive=True):
            p.kill()
        parent.kill()
        parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()
    assert proctime.process_tree_cpu_s(parent.pid) is None  # gone: unknown, not zero


def test_a_gone_process_reads_zero(psutil_only: None) -> None:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    assert proctime.pid_cpu_s(p.pid) == 0.0


@pytest.mark.slow
def test_pytest_carbon_runs_on_psutil_with_proc_reads_disabled(tmp_path: Path) -> None:
    (tmp_path / "test_work.py").write_text(
        "import time\n"
        "def test_busy():\n"
        "    t = time.process_time()\n"
        "    while time.process_time() - t < 0.3:\n"
        "        pass\n"
    )
    out = tmp_path / "report.json"
    env = {**os.environ, proctime.PROCFS_ENV: "off"}
    env.pop("PYTEST_XDIST_WORKER", None)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist", "-q"]
        + ["--carbon", "--carbon-sensors=estimate", f"--carbon-json={out}", "test_work.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(out.read_text())
    (rec,) = report["tests"]
    assert rec["cpu_time_s"] >= 0.28
    assert rec["dynamic_components"]["cpu"] > 0
    assert rec["components"]["dram"] > 0  # resident memory read through psutil
    (estimate,) = [s for s in report["machine"]["sensors"] if s["name"] == "estimate"]
    assert estimate["details"]["process_reader"] == "psutil"
