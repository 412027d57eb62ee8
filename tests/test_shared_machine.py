"""End to end on a shared machine: pytest --carbon over a package whose power follows load.

The powercap tree (``tests/powercap.py``, ``follow``) runs in its own process: package
power = 8 W + 12 W x the machine's busy CPUs read from /proc/stat, DRAM a constant 2 W,
rewritten in place every 10 ms as sysfs does. Other work on this machine (and the
neighbour these tests start) raises the package's power exactly as it would on hardware,
so the truth for a test's dynamic energy is 12 W x the CPU seconds the test itself used.

Idle power cannot be observed while other work keeps every CPU busy (two unknowns, one
busy level). The module therefore first stores a per-machine calibration with
``pytest-carbon sensors --calibrate``, which retries until the machine is quiet enough;
each run then keeps the more certain of its own calibration and the stored one. When no
calibration can be stored (every CPU kept busy for 90 s, as in CI's slow tier beside a
neighbour), the runs state the package's idle power instead (``--carbon-idle``, what a
user of such a machine does) and still check the attribution under load: no test of this
module skips because the machine is busy.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

IDLE_W = 8.0
PER_CPU_W = 12.0
DRAM_W = 2.0
HERE = Path(__file__).parent

TESTS = """
import os
import time


def _record(name, seconds):
    with open(os.path.join(os.environ["CPU_OUT"], name), "w") as f:
        f.write(repr(seconds))


def test_cpu_bound():
    t0 = time.process_time()
    x = 0
    while time.process_time() - t0 < 2.0:
        x += 1
    _record("cpu_bound", time.process_time() - t0)


def test_sleeps():
    t0 = time.process_time()
    time.sleep(1.0)
    _record("sleeps", time.process_time() - t0)
"""


class Tree:
    def __init__(self, root: Path, store: Path) -> None:
        self.root = root
        self.store = store
        #: Options every run of the module adds: the stated idle power when no calibration
        #: could be stored (see the ``tree`` fixture).
        self.idle_args: list[str] = []

    def env(self, out: Path) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            PYTEST_CARBON_IDLE_STORE=str(self.store),
            CPU_OUT=str(out),
            PYTHONDONTWRITEBYTECODE="1",
        )
        env.pop("PYTEST_XDIST_WORKER", None)
        env.pop("PYTEST_ADDOPTS", None)
        return env


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tree]:
    base = tmp_path_factory.mktemp("shared")
    root = base / "powercap"
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "powercap.py"), "follow", str(root)]
        + [str(IDLE_W), str(PER_CPU_W), str(DRAM_W)]
    )
    try:
        deadline = time.monotonic() + 30
        while not (root / "ready").exists():
            assert proc.poll() is None, "the load-following powercap tree did not start"
            assert time.monotonic() < deadline, "the powercap tree took over 30 s to start"
            time.sleep(0.02)
        t = Tree(root, base / "idle.json")
        calibrated = subprocess.run(
            [sys.executable, "-c", "from pytest_carbon.cli import main; raise SystemExit(main())"]
            + ["sensors", "--calibrate", "--json", "--rapl-root", str(root), "--seconds", "90"],
            env=t.env(base),
            capture_output=True,
            text=True,
            timeout=180,
        )
        result = json.loads(calibrated.stdout)
        if not result["stored"]:
            # With every CPU kept busy by other processes for 90 s (a neighbour beside
            # this suite's own xdist workers), no method can tell idle power from their
            # work. What a user of such a machine does: state the idle power, measured at
            # a quiet moment elsewhere (--carbon-idle, the package's; the DRAM zone's then
            # counts as dynamic, which the checks below keep apart). The runs then still
            # test the attribution under load, against the tree's truth.
            print(f"no calibration stored ({result['idle']['method']}): idle stated")
            t.idle_args = [f"--carbon-idle={IDLE_W:g}"]
        yield t
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def run_pytest(tree: Tree, tmp_path: Path, *args: str, target: str = "") -> dict[str, Any]:
    if not target:
        (tmp_path / "test_work.py").write_text(TESTS)
        target = str(tmp_path / "test_work.py")
    out = tmp_path / "report.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--carbon"]
        + ["--carbon-sensors=rapl", f"--carbon-rapl-root={tree.root}", f"--carbon-json={out}"]
        + ["-p", "no:xdist", *tree.idle_args, *args, target],
        cwd=tmp_path,
        env=tree.env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report: dict[str, Any] = json.loads(out.read_text())
    return report


def record(report: dict[str, Any], name: str) -> dict[str, Any]:
    (rec,) = [r for r in report["tests"] if r["nodeid"].endswith(name)]
    return rec


def cpu_seconds(tmp_path: Path, name: str) -> float:
    return float((tmp_path / name).read_text())


def _dynamic_matches_the_truth(report: dict, tmp_path: Path) -> tuple[dict, float]:
    """The CPU-bound test's dynamic CPU energy is within 20% of the tree's truth (its CPU
    seconds x the watts per busy CPU); returns its record and that truth."""
    rec = record(report, "test_cpu_bound")
    truth_j = PER_CPU_W * cpu_seconds(tmp_path, "cpu_bound")
    dynamic_cpu_j = rec["dynamic_energy_j"] - _dram_dynamic(rec)
    idle = report["machine"]["idle"]
    print("dynamic", dynamic_cpu_j, "truth", truth_j, "idle", idle["power_w"],
          idle["uncertainty_w"], idle["method"][:60])  # fmt: skip
    assert dynamic_cpu_j == pytest.approx(truth_j, rel=0.2), (rec, idle)
    return rec, truth_j


@pytest.mark.slow
def test_cpu_bound_dynamic_energy_alone(tree: Tree, tmp_path: Path) -> None:
    report = run_pytest(tree, tmp_path, "-k", "cpu_bound")
    rec, truth_j = _dynamic_matches_the_truth(report, tmp_path)
    # Both views are kept: the whole counter's delta holds at least the idle and the work.
    assert rec["machine_energy_j"] >= truth_j
    assert rec["attribution"] == "auto"
    idle = report["machine"]["idle"]
    assert set(idle) >= {"power_w", "uncertainty_w", "method"}
    if tree.idle_args:  # stated, not calibrated (the tree fixture): the package's alone
        assert idle["method"].startswith("given") and idle["components"]["cpu"] == IDLE_W, idle
    else:
        assert idle["power_w"] == pytest.approx(IDLE_W + DRAM_W, abs=3.0)


@pytest.mark.slow
def test_cpu_bound_dynamic_energy_with_a_busy_neighbour(tree: Tree, tmp_path: Path) -> None:
    neighbour = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)  # the neighbour is running before pytest starts
        report = run_pytest(tree, tmp_path, "-k", "cpu_bound")
    finally:
        neighbour.kill()
        neighbour.wait()
    rec, _ = _dynamic_matches_the_truth(report, tmp_path)
    # The neighbour's work is in the machine's counter, not in the test's figure.
    assert rec["machine_energy_j"] > rec["energy_j"]


@pytest.mark.slow
def test_a_sleeping_tests_energy_is_stable_over_three_runs(tree: Tree, tmp_path: Path) -> None:
    energies, walls_of = [], []
    for i in range(3):
        run_dir = tmp_path / f"run{i}"
        run_dir.mkdir()
        rec = record(run_pytest(tree, run_dir, "-k", "sleeps"), "test_sleeps")
        energies.append(rec["energy_j"])
        walls_of.append(rec["idle_wall_energy_j"])
    print("sleep energies", energies)
    # A sleeping test uses (almost) no CPU: its energy is its own few ms of CPU, not the
    # machine's idle for its second, which is reported beside it (about 10 W x 1 s here).
    assert all(e < 0.5 for e in energies), energies
    walls = [float(r) for r in walls_of]
    assert all(4.0 < w < 20.0 for w in walls), walls


def _dram_dynamic(rec: dict[str, Any]) -> float:
    # The DRAM zone is constant: its dynamic part is noise around zero, kept apart.
    return float(rec["dynamic_components"].get("dram", 0.0))


DOUBLE = "```python\ndef double(x):\n    return x + x\n```"


@pytest.mark.slow
def test_a_local_servers_generation_energy_is_counted(tree: Tree, tmp_path: Path) -> None:
    """A model server in its own process burns 0.6 s of CPU per request: the generation
    phase's dynamic energy holds its 3 x 0.6 s at 12 W per busy CPU."""
    server = subprocess.Popen(
        [sys.executable, str(HERE / "llm_server.py"), "--cpu-s", "0.6", "--text", DOUBLE],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        (tmp_path / "prompts").mkdir()
        for name in ("a", "b", "c"):
            (tmp_path / "prompts" / f"{name}.yaml").write_text(
                f'id: {name}\nprompt: "Write double(x). {name}"\nentry_point: double\n'
                "reference: |\n  def double(x):\n      return 2 * x\n"
                "tests:\n  - {args: [2], expect: 4}\n"
                "workload: {args: [21], min_time_s: 0.01}\ntimeout_s: 10\n"
            )
        report = run_pytest(
            tree,
            tmp_path,
            f"--carbon-base-url={url}",
            "--carbon-model=m",
            "--carbon-concurrency=3",
            target=str(tmp_path / "prompts"),
        )
    finally:
        server.kill()
        server.wait()
        if server.stdout is not None:
            server.stdout.close()
    gens = [r["prompt"]["generation"] for r in report["tests"]]
    assert len(gens) == 3
    assert all(g["method"] == "attributed" for g in gens)
    assert all(g["shared_by"] == "server CPU time per request" for g in gens)
    dynamic_j = sum(g["dynamic_energy_j"] for g in gens)
    truth_j = PER_CPU_W * 3 * 0.6
    # pytest's own CPU in the window (HTTP clients) adds a little: +- 20 % holds it.
    assert dynamic_j == pytest.approx(truth_j, rel=0.2), (gens, report["machine"]["idle"])


@pytest.fixture
def bare_tree(tmp_path: Path) -> Iterator[Path]:
    """The load-following tree, with no stored calibration."""
    root = tmp_path / "powercap"
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "powercap.py"), "follow", str(root)]
        + [str(IDLE_W), str(PER_CPU_W), str(DRAM_W)]
    )
    try:
        deadline = time.monotonic() + 30
        while not (root / "ready").exists():
            assert proc.poll() is None, "the load-following powercap tree did not start"
            assert time.monotonic() < deadline, "the powercap tree took over 30 s to start"
            time.sleep(0.02)
        yield root
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.slow
def test_a_machine_busy_before_pytest_starts_never_charges_the_neighbours(
    bare_tree: Path, tmp_path: Path
) -> None:
    """Every CPU busy with other work from before pytest starts, no stored calibration:
    idle is not observable; the stated model is used and said so, the CPU-bound test's
    dynamic energy stays within 20% of the truth, and the sleeping test is not charged
    the neighbours' power (the former fallback charged it 48-53 J)."""
    tree = Tree(bare_tree, tmp_path / "no-calibration.json")
    neighbours = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(os.cpu_count() or 2)
    ]
    try:
        time.sleep(0.5)
        report = run_pytest(tree, tmp_path)
    finally:
        for n in neighbours:
            n.kill()
            n.wait()
    idle = report["machine"]["idle"]
    print("idle", idle["power_w"], idle["method"][:120])
    if idle["trusted"]:
        pytest.skip("the machine had idle moments during calibration: the fit saw idle")
    assert "stated model" in idle["method"]
    _dynamic_matches_the_truth(report, tmp_path)
    sleeps = record(report, "test_sleeps")
    assert sleeps["energy_j"] < 0.5, sleeps
    assert any("idle power was not observable" in w for w in sleeps["warnings"])
