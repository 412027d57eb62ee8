"""The NVML sensor against a fake pynvml module (tests/fake_pynvml.py) and the real one."""

from __future__ import annotations

import builtins
import time
from pathlib import Path

import pytest
from fake_pynvml import NVML_ERROR_LIBRARY_NOT_FOUND, FakeGpu, FakeNvml

from pytest_carbon.measure.sensors.base import Sensor, SensorUnavailable
from pytest_carbon.measure.sensors.nvml import (
    ENERGY_COUNTER,
    POWER_INTEGRATION,
    NvmlSensor,
    probe,
    visible_indices,
)

UUIDS = [
    "GPU-aaaaaaaa-0000-0000-0000-000000000000",
    "GPU-bbbbbbbb-0000-0000-0000-000000000000",
    "GPU-bbbbcccc-0000-0000-0000-000000000000",
]


@pytest.fixture(autouse=True)
def _all_gpus_visible(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


def test_fake_only_uses_names_the_real_library_has() -> None:
    pynvml = pytest.importorskip("pynvml", reason="nvidia-ml-py is a dev dependency")
    fake = FakeNvml()
    names = [n for n in {*dir(type(fake)), *vars(fake)} if n.startswith(("nvml", "NVML"))]
    assert "nvmlDeviceGetTotalEnergyConsumption" in names
    missing = [n for n in names if not hasattr(pynvml, n)]
    assert missing == []
    assert fake.NVML_ERROR_NOT_SUPPORTED == pynvml.NVML_ERROR_NOT_SUPPORTED
    assert fake.NVML_ERROR_LIBRARY_NOT_FOUND == pynvml.NVML_ERROR_LIBRARY_NOT_FOUND


def test_real_library_without_a_driver_is_unavailable_not_a_crash() -> None:
    pynvml = pytest.importorskip("pynvml", reason="nvidia-ml-py is a dev dependency")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        pass
    else:
        pynvml.nvmlShutdown()
        pytest.skip("this machine has an NVIDIA driver")
    # No device node here: the bindings are not even imported.
    with pytest.raises(SensorUnavailable, match="no NVIDIA GPU: no /dev/nvidiactl"):
        NvmlSensor()
    assert probe().available is False


def test_real_library_is_tried_where_a_device_node_exists(tmp_path: Path) -> None:
    pynvml = pytest.importorskip("pynvml", reason="nvidia-ml-py is a dev dependency")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        pass
    else:
        pynvml.nvmlShutdown()
        pytest.skip("this machine has an NVIDIA driver")
    (tmp_path / "nvidiactl").write_text("")
    with pytest.raises(SensorUnavailable, match="no NVIDIA driver"):
        NvmlSensor(dev_root=str(tmp_path))


def test_missing_library(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real_import = builtins.__import__

    def no_pynvml(name: str, *args: object, **kwargs: object) -> object:
        if name == "pynvml":
            raise ImportError("No module named 'pynvml'")
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", no_pynvml)
    (tmp_path / "nvidia0").write_text("")
    with pytest.raises(SensorUnavailable) as info:
        NvmlSensor(dev_root=str(tmp_path))
    assert "not installed" in info.value.reason
    assert info.value.fix is not None and "nvidia-ml-py" in info.value.fix


def test_no_driver_in_the_fake() -> None:
    nv = FakeNvml([FakeGpu()], init_error=NVML_ERROR_LIBRARY_NOT_FOUND)
    with pytest.raises(SensorUnavailable, match="Shared Library Not Found"):
        NvmlSensor(nv)
    status = probe(nv)
    assert not status.available and status.name == "nvml"


def test_energy_counter_gpus() -> None:
    # A scripted clock: the counters advance only when the test says, so the energy of the
    # window is exact whatever the machine's load (real time read 50.48 J against a truth
    # of 50.55 J under load: the truth was read a moment after the sensor).
    now = [100.0]
    gpus = [
        FakeGpu(uuid=UUIDS[0], power_w=200.0, clock=lambda: now[0]),
        FakeGpu(uuid=UUIDS[1], power_w=50.0, clock=lambda: now[0]),
    ]
    nv = FakeNvml(gpus)
    s = NvmlSensor(nv)
    assert isinstance(s, Sensor)
    assert s.poll_interval_s is None  # counters: two reads bracket a window
    assert s.components == ("gpu",) and s.machine_wide and s.method == "measured"
    r0 = s.read()
    truth0 = sum(g.true_energy_j() for g in gpus)
    now[0] += 0.2
    r1 = s.read()
    truth1 = sum(g.true_energy_j() for g in gpus)
    assert r1.energy_j["gpu"] - r0.energy_j["gpu"] == pytest.approx(truth1 - truth0, abs=0.002)
    assert r1.energy_j["gpu"] - r0.energy_j["gpu"] == pytest.approx(250 * 0.2, abs=0.002)
    assert r1.power_w == {}
    assert [g["method"] for g in s.status().details["gpus"]] == [ENERGY_COUNTER] * 2  # type: ignore[index]
    s.close()
    assert nv.initialised == 0 and nv.calls["nvmlShutdown"] == 1
    s.close()
    assert nv.calls["nvmlShutdown"] == 1


def test_power_integration_with_the_trapezoid_rule() -> None:
    gpu = FakeGpu(uuid=UUIDS[0], power_w=100.0, energy_counter=False)
    nv = FakeNvml([gpu])
    s = NvmlSensor(nv, interval_s=0.05)
    assert s.poll_interval_s == 0.05
    details = s.status().details
    assert details["gpus"][0]["method"] == POWER_INTEGRATION  # type: ignore[index]
    r0 = s.read()
    time.sleep(0.1)
    r1 = s.read()
    gpu.set_power(300.0)  # a step: read on both sides of it, as the sampler would
    r2 = s.read()
    time.sleep(0.1)
    r3 = s.read()
    assert r1.power_w == {"gpu": 100.0} and r3.power_w == {"gpu": 300.0}
    e01 = r1.energy_j["gpu"] - r0.energy_j["gpu"]
    e23 = r3.energy_j["gpu"] - r2.energy_j["gpu"]
    assert e01 == pytest.approx(100.0 * (r1.time_s - r0.time_s), rel=0.02)
    assert e23 == pytest.approx(300.0 * (r3.time_s - r2.time_s), rel=0.02)
    s.close()


def test_mixed_gpus_report_total_power() -> None:
    gpus = [
        FakeGpu(uuid=UUIDS[0], power_w=150.0),
        FakeGpu(uuid=UUIDS[1], power_w=70.0, energy_counter=False),
    ]
    s = NvmlSensor(FakeNvml(gpus), interval_s=0.1)
    assert s.poll_interval_s == 0.1
    r = s.read()
    assert r.power_w == {"gpu": 220.0}
    s.close()


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (None, [0, 1, 2]),
        ("1", [1]),
        ("2,0", [2, 0]),
        ("GPU-aaaaaaaa", [0]),
        (f"{UUIDS[2]},1", [2, 1]),
        ("1,7,0", [1]),  # an invalid index hides the rest, as in CUDA
        ("GPU-bbbb", []),  # ambiguous prefix
        ("-1", []),
    ],
)
def test_cuda_visible_devices(env: str | None, expected: list[int]) -> None:
    chosen, note = visible_indices(env, UUIDS)
    assert chosen == expected
    assert (note is None) == (env is None or len(expected) == len(env.split(",")))


def test_cuda_visible_devices_selects_the_sensors_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    gpus = [FakeGpu(uuid=u, power_w=10.0 * (i + 1)) for i, u in enumerate(UUIDS)]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-bbbbcccc")
    s = NvmlSensor(FakeNvml(gpus))
    assert [g["uuid"] for g in s.status().details["gpus"]] == [UUIDS[2]]  # type: ignore[index]
    s.close()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    nv = FakeNvml(gpus)
    with pytest.raises(SensorUnavailable, match="CUDA_VISIBLE_DEVICES is empty"):
        NvmlSensor(nv)
    assert nv.initialised == 0  # shut down again after failing
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5")
    with pytest.raises(SensorUnavailable, match="no GPU selected"):
        NvmlSensor(FakeNvml(gpus))


def test_no_gpus_at_all() -> None:
    with pytest.raises(SensorUnavailable, match="reports no GPU"):
        NvmlSensor(FakeNvml([]))


def test_a_lost_gpu_keeps_its_last_value_and_is_reported() -> None:
    gpu = FakeGpu(uuid=UUIDS[0], power_w=100.0)
    s = NvmlSensor(FakeNvml([gpu]))
    time.sleep(0.02)
    before = s.read().energy_j["gpu"]
    gpu.lost = True
    after = s.read().energy_j["gpu"]
    assert after == before
    assert "GPU is lost" in s.status().details["errors"][0]  # type: ignore[index]
    s.close()
