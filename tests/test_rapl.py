"""The RAPL sensor over fake powercap trees written to disk (tests/powercap.py)."""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from powercap import FakePowercap, server_tree

from pytest_carbon.measure.sensors.base import Sensor, SensorError, SensorUnavailable
from pytest_carbon.measure.sensors.rapl import ASSUMED_MAX_POWER_W, RaplSensor, probe


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[FakePowercap]:
    pc = server_tree(tmp_path / "powercap")
    yield pc
    pc.close()


def delta(a: dict[str, float] | object, b: object) -> dict[str, float]:
    ea = a.energy_j  # type: ignore[attr-defined]
    eb = b.energy_j  # type: ignore[attr-defined]
    return {k: eb[k] - ea[k] for k in ea}


def test_implements_the_sensor_protocol(tree: FakePowercap) -> None:
    s = RaplSensor(tree.root)
    try:
        assert isinstance(s, Sensor)
        assert (s.name, s.method, s.machine_wide) == ("rapl", "measured", True)
        assert s.components == ("cpu", "dram")
        assert s.update_period_s == pytest.approx(0.001)
    finally:
        s.close()


def test_energy_matches_the_power_profile(tree: FakePowercap) -> None:
    s = RaplSensor(tree.root)
    r0 = s.read()
    tree.advance(2.5)
    r1 = s.read()
    s.close()
    d = delta(r0, r1)
    # package-0 at 35 W and its dram at 4 W for 2.5 s; psys (60 W), core (20 W), uncore
    # (3 W) and the MMIO copy of the package must not be added.
    assert d["cpu"] == pytest.approx(35.0 * 2.5, rel=0.01)
    assert d["dram"] == pytest.approx(4.0 * 2.5, rel=0.01)
    assert set(d) == {"cpu", "dram"}


def test_overlapping_and_duplicate_zones_are_skipped_and_reported(tree: FakePowercap) -> None:
    s = RaplSensor(tree.root)
    details = s.status().details
    s.close()
    used = {(z["zone"], z["name"]) for z in details["zones"]}  # type: ignore[union-attr]
    assert used == {("intel-rapl:0", "package-0"), ("intel-rapl:0:2", "dram")}
    skipped = {z["zone"]: z.get("name") for z in details["skipped"]}  # type: ignore[union-attr]
    assert skipped["intel-rapl:1"] == "psys"
    assert skipped["intel-rapl:0:0"] == "core"
    assert skipped["intel-rapl:0:1"] == "uncore"
    assert "intel-rapl-mmio:0" in skipped


def test_two_packages_with_dram_are_summed(tmp_path: Path) -> None:
    pc = FakePowercap(tmp_path)
    pc.zone("intel-rapl:0", "package-0", 80.0, start_uj=10_000_000)
    pc.zone("intel-rapl:0:0", "dram", 6.0, start_uj=20_000_000)
    pc.zone("intel-rapl:1", "package-1", 60.0, start_uj=30_000_000)
    pc.zone("intel-rapl:1:0", "dram", 5.0, start_uj=40_000_000)
    s = RaplSensor(tmp_path)
    r0 = s.read()
    pc.advance(1.0)
    pc.zones["intel-rapl:1"].power_w = 100.0
    pc.advance(1.0)
    r1 = s.read()
    d = delta(r0, r1)
    per_package = s.package_energy_j()
    s.close()
    pc.close()
    assert d["cpu"] == pytest.approx(80 * 2 + 60 + 100, rel=0.01)
    assert d["dram"] == pytest.approx((6 + 5) * 2, rel=0.01)
    assert per_package["package-1"]["cpu"] == pytest.approx(160.0, rel=0.01)
    assert per_package["package-0"]["dram"] == pytest.approx(12.0, rel=0.01)


def test_wraparound_inside_a_window(tmp_path: Path) -> None:
    pc = FakePowercap(tmp_path)
    # Range of 10 J; the counter starts 2 J below the top, so 3 s at 35 W (105 J) wraps
    # eleven times. Read every 0.1 s (3.5 J) it is never more than one wrap between reads.
    z = pc.zone("intel-rapl:0", "package-0", 35.0, max_range_uj=10_000_000, start_uj=8_000_000)
    s = RaplSensor(tmp_path)
    r0 = s.read()
    for _ in range(30):
        pc.advance(0.1)
        s.read()
    r1 = s.read()
    assert z.wraps == 11
    assert delta(r0, r1)["cpu"] == pytest.approx(105.0, rel=0.01)
    s.close()
    pc.close()


def test_a_single_wrap_between_two_reads_is_corrected(tmp_path: Path) -> None:
    pc = FakePowercap(tmp_path)
    z = pc.zone("intel-rapl:0", "package-0", 10.0, max_range_uj=50_000_000, start_uj=45_000_000)
    s = RaplSensor(tmp_path)
    r0 = s.read()
    pc.advance(2.0)  # 20 J: from 45 J past the 50 J top, to 15 J
    r1 = s.read()
    assert z.wraps == 1
    assert delta(r0, r1)["cpu"] == pytest.approx(20.0, rel=0.01)
    s.close()
    pc.close()


def test_reading_too_rarely_loses_wraps_which_is_why_the_sensor_asks_for_polling(
    tmp_path: Path,
) -> None:
    pc = FakePowercap(tmp_path)
    pc.zone(
        "intel-rapl:0",
        "package-0",
        35.0,
        max_range_uj=10_000_000,
        start_uj=0,
        max_power_uw=50_000_000,
    )
    s = RaplSensor(tmp_path)
    # 10 J at up to 50 W wraps in 0.2 s at the soonest: the sensor asks for a read every
    # 0.05 s.
    assert s.poll_interval_s == pytest.approx(10.0 / 50.0 / 4)
    r0 = s.read()
    pc.advance(1.0)  # 35 J: three wraps between two reads
    r1 = s.read()
    assert delta(r0, r1)["cpu"] < 35.0 * 0.5
    s.close()
    pc.close()


def test_poll_interval_uses_500_w_without_a_stated_maximum(tmp_path: Path) -> None:
    pc = FakePowercap(tmp_path)
    pc.zone("intel-rapl:0", "package-0", 35.0, max_range_uj=60_000_000_000)
    s = RaplSensor(tmp_path)
    assert s.poll_interval_s == pytest.approx(60_000 / ASSUMED_MAX_POWER_W / 4)
    s.close()
    pc.close()
    # A real Xeon's range at a stated 205 W wraps in about 21 minutes: poll every ~5.
    pc2 = FakePowercap(tmp_path / "x")
    pc2.zone("intel-rapl:0", "package-0", 35.0, max_power_uw=205_000_000)
    s2 = RaplSensor(pc2.root)
    assert s2.poll_interval_s == pytest.approx(262_143.32885 / 205 / 4)
    s2.close()
    pc2.close()
    # A huge range never needs polling.
    pc3 = FakePowercap(tmp_path / "y")
    pc3.zone("intel-rapl:0", "package-0", 35.0, max_range_uj=2**62)
    s3 = RaplSensor(pc3.root)
    assert s3.poll_interval_s is None
    s3.close()
    pc3.close()


def test_top_level_dram_zone_and_no_dram(tmp_path: Path) -> None:
    pc = FakePowercap(tmp_path / "a")
    pc.zone("intel-rapl:0", "package-0", 20.0)
    pc.zone("intel-rapl:1", "dram", 3.0, start_uj=77)
    s = RaplSensor(pc.root)
    r0 = s.read()
    pc.advance(1.0)
    d = delta(r0, s.read())
    assert d == pytest.approx({"cpu": 20.0, "dram": 3.0}, rel=0.01)
    s.close()
    pc.close()
    # AMD Zen: package-N with a core subzone and no DRAM.
    pc2 = FakePowercap(tmp_path / "b")
    pc2.zone("intel-rapl:0", "package-0", 50.0)
    pc2.zone("intel-rapl:0:0", "core", 40.0)
    s2 = RaplSensor(pc2.root)
    assert s2.components == ("cpu",)
    r0 = s2.read()
    pc2.advance(1.0)
    assert delta(r0, s2.read()) == pytest.approx({"cpu": 50.0}, rel=0.01)
    s2.close()
    pc2.close()


def test_amd_rapl_prefix_is_read(tmp_path: Path) -> None:
    pc = FakePowercap(tmp_path)
    pc.zone("amd-rapl:0", "package-0", 90.0)
    s = RaplSensor(tmp_path)
    r0 = s.read()
    pc.advance(0.5)
    assert delta(r0, s.read())["cpu"] == pytest.approx(45.0, rel=0.01)
    s.close()
    pc.close()


def test_mirrored_per_die_packages_are_counted_once(tmp_path: Path) -> None:
    pc = FakePowercap(tmp_path)
    pc.zone("intel-rapl:0", "package-0", 100.0, start_uj=424_242_424)
    pc.zone("intel-rapl:1", "package-0-die-1", 100.0, start_uj=424_242_424)
    s = RaplSensor(tmp_path)
    assert s.status().details["mirrored"] == {"intel-rapl:1": "intel-rapl:0"}
    r0 = s.read()
    pc.advance(1.0)
    assert delta(r0, s.read())["cpu"] == pytest.approx(100.0, rel=0.01)
    s.close()
    pc.close()


def test_no_powercap_root(tmp_path: Path) -> None:
    with pytest.raises(SensorUnavailable) as info:
        RaplSensor(tmp_path / "missing")
    assert "does not exist" in info.value.reason
    status = probe(tmp_path / "missing")
    assert not status.available and status.reason == info.value.reason


def test_empty_or_psys_only_tree_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(SensorUnavailable, match="no intel-rapl"):
        RaplSensor(tmp_path)
    pc = FakePowercap(tmp_path)
    pc.zone("intel-rapl:0", "psys", 30.0)
    with pytest.raises(SensorUnavailable, match="no RAPL package zone"):
        RaplSensor(tmp_path)
    pc.close()


def test_garbage_counter_is_unavailable_not_a_crash(tmp_path: Path) -> None:
    pc = FakePowercap(tmp_path)
    z = pc.zone("intel-rapl:0", "package-0", 30.0)
    (z.path / "max_energy_range_uj").write_text("lots\n")
    with pytest.raises(SensorUnavailable, match="cannot read"):
        RaplSensor(tmp_path)
    pc.close()


def test_read_after_close_is_an_error(tree: FakePowercap) -> None:
    s = RaplSensor(tree.root)
    s.close()
    s.close()  # idempotent
    with pytest.raises(SensorError):
        s.read()


def test_probe_describes_the_zones(tree: FakePowercap) -> None:
    status = probe(tree.root)
    assert status.available and status.method == "measured"
    assert status.components == ("cpu", "dram")
    assert status.to_json()["details"]["root"] == str(tree.root)  # type: ignore[index]


def _root_only_tree() -> tuple[FakePowercap, Path]:
    # A tree ordinary users can traverse, whose energy_uj is root-only like the kernel's.
    top = Path(tempfile.mkdtemp(prefix="pytest-carbon-rapl-"))
    top.chmod(0o755)
    pc = FakePowercap(top / "powercap")
    z = pc.zone("intel-rapl:0", "package-0", 35.0)
    for p in (pc.root, z.path):
        p.chmod(0o755)
    for f in ("name", "max_energy_range_uj"):
        (z.path / f).chmod(0o444)
    (z.path / "energy_uj").chmod(0o400 if os.geteuid() == 0 else 0o000)
    return pc, top


def test_unreadable_counter_says_how_to_grant_access() -> None:
    import shutil

    pc, top = _root_only_tree()
    try:
        if os.geteuid() == 0:
            # Root reads anything; drop the effective uid to nobody so the kernel's own
            # permission check applies, then take root back (the real uid stays 0).
            try:
                os.seteuid(65534)
            except PermissionError:
                pytest.skip("running as root without CAP_SETUID: cannot drop privileges")
            try:
                with pytest.raises(SensorUnavailable) as info:
                    RaplSensor(pc.root)
                status = probe(pc.root)
            finally:
                os.seteuid(0)
        else:
            with pytest.raises(SensorUnavailable) as info:
                RaplSensor(pc.root)
            status = probe(pc.root)
    finally:
        pc.close()
        (pc.root / "intel-rapl:0" / "energy_uj").chmod(stat.S_IRUSR | stat.S_IWUSR)
        shutil.rmtree(top)
    exc = info.value
    assert "root only" in exc.reason
    assert exc.fix is not None
    assert f"sudo chmod o+r {pc.root}/intel-rapl:*/energy_uj" in exc.fix
    assert 'SUBSYSTEM=="powercap"' in exc.fix
    assert "CVE-2020-8694" in exc.fix
    assert not status.available and status.fix == exc.fix
