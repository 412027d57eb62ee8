"""``pytest-carbon sensors``, run as a real subprocess, on this machine and on a fake tree."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from powercap import server_tree

from pytest_carbon.measure.doctor import main


def run_sensors(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_carbon.cli", "sensors", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in report["sensors"]}


def nvml_works() -> bool:
    try:
        import pynvml

        pynvml.nvmlInit()
        pynvml.nvmlShutdown()
        return True
    except Exception:
        return False


def test_json_without_rapl(tmp_path: Path) -> None:
    # An empty powercap root: the same answer on a laptop with RAPL and on a CI VM.
    root = tmp_path / "powercap"
    root.mkdir()
    proc = run_sensors("--json", "--rapl-root", str(root))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["schema"] == "pytest-carbon/sensors/1"
    rows = by_name(report)
    assert list(rows) == ["rapl", "nvml", "estimate"]
    assert rows["rapl"]["available"] is False
    assert str(root) in rows["rapl"]["reason"]
    nvml = rows["nvml"]
    # NVML is read from the real driver: either branch asserts something.
    if nvml_works():
        assert nvml["available"] is True and nvml["used"] is True
        assert report["plan"]["gpu"] == {"sensor": "nvml", "method": "measured"}
    else:
        assert nvml["available"] is False and nvml["reason"]
        assert "gpu" not in report["plan"]
    est = rows["estimate"]
    assert est["available"] is True and est["method"] == "estimated"
    assert est["details"]["watts_per_core"] > 0
    assert est["details"]["cpu_model"] == report["machine"]["cpu_model"]
    assert est["details"]["cpu_source"]
    assert "W/GB" in est["details"]["memory_source"]
    assert est["used"] is True
    assert report["plan"]["cpu"] == {"sensor": "estimate", "method": "estimated"}
    assert "estimated" in report["summary"]
    assert "No hardware counter is readable" in report["summary"]


def test_json_on_this_machine() -> None:
    # The default root, whatever this machine has: the answer is well-formed, and the
    # CPU is covered by RAPL when its tree is readable, else by the estimate.
    proc = run_sensors("--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    rows = by_name(report)
    assert list(rows) == ["rapl", "nvml", "estimate"]
    cpu = "rapl" if rows["rapl"]["available"] else "estimate"
    assert report["plan"]["cpu"]["sensor"] == cpu
    assert rows[cpu]["used"] is True


def test_fake_rapl_root(tmp_path: Path) -> None:
    pc = server_tree(tmp_path / "powercap")
    try:
        proc = run_sensors("--json", "--rapl-root", str(pc.root))
    finally:
        pc.close()
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    rows = by_name(report)
    rapl = rows["rapl"]
    assert rapl["available"] is True and rapl["used"] is True
    assert rapl["components"] == ["cpu", "dram"]
    assert [z["name"] for z in rapl["details"]["zones"]] == ["package-0", "dram"]
    assert rows["estimate"]["used"] is False  # a counter covers the CPU
    assert report["plan"]["cpu"] == {"sensor": "rapl", "method": "measured"}
    assert report["plan"]["dram"] == {"sensor": "rapl", "method": "measured"}
    assert "measured from the RAPL powercap counters" in report["summary"]


def test_text_output(capsys: Any, tmp_path: Path) -> None:
    assert main(["--rapl-root", str(tmp_path / "none")]) == 0
    out = capsys.readouterr().out
    assert "rapl      not available" in out
    assert f"{tmp_path / 'none'} does not exist" in out
    assert "W per busy CPU:" in out
    assert out.strip().splitlines()[-1].startswith("pytest --carbon will measure")


def test_text_names_the_unreadable_file(capsys: Any, tmp_path: Path) -> None:
    # A zone whose energy_uj is a directory cannot be read: the doctor says which and why.
    pc = server_tree(tmp_path / "p")
    try:
        energy = pc.zones["intel-rapl:0"].path / "energy_uj"
        energy.unlink()
        energy.mkdir()
        assert main(["--rapl-root", str(pc.root)]) == 0
    finally:
        pc.close()
    out = capsys.readouterr().out
    energy_uj = pc.root / "intel-rapl:0" / "energy_uj"
    assert f"reason: cannot read {energy_uj}: Is a directory" in out
    assert "hypervisors rarely pass RAPL through" not in out  # the VM hint: missing tree only
