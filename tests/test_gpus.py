"""The GPU count reaches the report's ``machine.gpus`` and the embodied emissions."""

from __future__ import annotations

import json

import pytest
from fake_pynvml import NVML_ERROR_LIBRARY_NOT_FOUND, FakeGpu, FakeNvml

from pytest_carbon.carbon.accounting import GPU_EMBODIED_KGCO2E, embodied_requested
from pytest_carbon.measure.sensors.nvml import visible_gpus
from pytest_carbon.options import Settings


@pytest.fixture(autouse=True)
def _all_gpus_visible(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


def test_visible_gpus_lists_each_gpu_nvml_sees() -> None:
    nv = FakeNvml([FakeGpu(), FakeGpu(name="NVIDIA H200", uuid="GPU-2", energy_counter=False)])
    gpus = visible_gpus(nv)
    assert [(g["index"], g["name"], g["uuid"]) for g in gpus] == [
        (0, "NVIDIA A100-SXM4-40GB", "GPU-00000000-1111-2222-3333-444444444444"),
        (1, "NVIDIA H200", "GPU-2"),
    ]
    assert [g["method"] for g in gpus] == ["energy-counter", "power-integration"]


def test_no_driver_means_no_gpu() -> None:
    assert visible_gpus(FakeNvml([FakeGpu()], init_error=NVML_ERROR_LIBRARY_NOT_FOUND)) == []


def test_embodied_is_requested_by_any_of_its_options() -> None:
    assert not embodied_requested(Settings())
    assert embodied_requested(Settings(carbon_embodied=True))
    assert embodied_requested(Settings(carbon_lifetime_h=1000.0))
    assert embodied_requested(Settings(carbon_embodied_kgco2e=100.0))


def test_a_run_reports_the_gpus_it_found(pytester: pytest.Pytester) -> None:
    """End to end on this machine: ``machine.gpus`` is what NVML sees here, and each GPU
    adds its embodied footprint (none on a machine without one)."""
    pytester.makepyfile("def test_a():\n    pass\n")
    result = pytester.runpytest("--carbon", "--carbon-embodied", "--carbon-json=r.json")
    result.assert_outcomes(passed=1)
    report = json.loads((pytester.path / "r.json").read_text())
    gpus = visible_gpus()
    assert report["machine"]["gpus"] == gpus
    source = report["accounting"]["embodied_source"]
    if gpus:
        assert f"+ {len(gpus)} GPU x {GPU_EMBODIED_KGCO2E:g} kgCO2e" in source
    else:
        assert "GPU x" not in source
