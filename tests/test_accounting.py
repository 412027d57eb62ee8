"""Carbon accounting: intensities from codecarbon's files, precedence, PUE, embodied, water,
equivalences and the validation of the intensity hook's result."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path
from typing import Any

import pytest

from pytest_carbon.carbon.accounting import (
    GPU_EMBODIED_KGCO2E,
    J_PER_KWH,
    LAPTOP_EMBODIED,
    SERVER_EMBODIED,
    Accounting,
    HookResultError,
    accounting_from_settings,
    apply_intensity_hook,
    combined_water_factor,
    detect_machine_kind,
    ed2p_js2,
    edp_js,
    kwh,
    resolve_accounting,
)
from pytest_carbon.carbon.equivalences import (
    CAR_G_CO2_PER_KM,
    GOOGLE_SEARCH_J,
    LED_BULB_W,
    SMARTPHONE_G_CO2_PER_CHARGE,
    TREE_G_CO2_PER_MONTH,
    equivalences,
)
from pytest_carbon.options import Settings

ONE_KWH_J = 3.6e6


def codecarbon_file(relative: str) -> Any:
    """Read a codecarbon data file here, independently of pytest_carbon.carbon.ccdata."""
    spec = importlib.util.find_spec("codecarbon")
    assert spec is not None and spec.submodule_search_locations
    root = Path(next(iter(spec.submodule_search_locations))) / "data"
    return json.loads((root / relative).read_text(encoding="utf-8"))


MIX = "private_infra/global_energy_mix.json"
USA = "private_infra/2023/usa_emissions.json"
NORDIC = "private_infra/nordic_emissions.json"
PER_SOURCE = "private_infra/carbon_intensity_per_source.json"


# -- intensity from codecarbon's data --------------------------------------------------


def test_ratio_of_carbon_between_countries_is_ratio_of_file_intensities() -> None:
    mix = codecarbon_file(MIX)
    energy_j = 12_345.0
    pol = resolve_accounting(country="POL")
    fra = resolve_accounting(country="FRA")
    ratio = pol.gco2e_g(energy_j) / fra.gco2e_g(energy_j)
    expected = mix["POL"]["carbon_intensity"] / mix["FRA"]["carbon_intensity"]
    assert ratio == pytest.approx(expected, rel=1e-12)
    assert ratio > 5  # coal-heavy Poland against nuclear France
    assert pol.intensity_year == mix["POL"]["year"]
    assert "global_energy_mix.json" in pol.intensity_source and not pol.is_default


def test_one_kwh_at_country_intensity_is_that_many_grams() -> None:
    mix = codecarbon_file(MIX)
    acc = resolve_accounting(country="deu")  # case does not matter
    assert acc.country == "DEU"
    assert acc.gco2e_g(ONE_KWH_J) == pytest.approx(mix["DEU"]["carbon_intensity"])


@pytest.mark.parametrize("typo", ["FRANCE", "FRN", "france"])
def test_unknown_country_lists_close_matches(typo: str) -> None:
    with pytest.raises(ValueError, match=r"unknown country code") as exc:
        resolve_accounting(country=typo)
    assert "FRA (France)" in str(exc.value)


def test_unknown_country_without_close_match_still_explains() -> None:
    with pytest.raises(ValueError, match=r"ISO 3166-1 alpha-3") as exc:
        resolve_accounting(country="QQQ")
    assert "Did you mean" not in str(exc.value)


def test_default_is_world_average_and_says_so() -> None:
    acc = resolve_accounting()
    assert acc.intensity_g_per_kwh == codecarbon_file(PER_SOURCE)["world_average"]
    assert acc.is_default and acc.pue == 1.0 and acc.pue_is_default
    data = acc.to_json()
    assert data["intensity_is_default"] is True
    assert "world_average" in data["intensity_source"]
    assert "default" in acc.describe()


# -- precedence ------------------------------------------------------------------------


def test_precedence_intensity_over_region_over_country_over_default() -> None:
    mix = codecarbon_file(MIX)
    texas_lb = codecarbon_file(USA)["texas"]["emissions"]
    given = resolve_accounting(country="USA", region="TX", intensity_g_per_kwh=123.0)
    region = resolve_accounting(country="USA", region="TX")
    country = resolve_accounting(country="USA")
    default = resolve_accounting()
    assert given.intensity_g_per_kwh == 123.0
    assert given.intensity_source.startswith("given")
    assert (given.country, given.region) == ("USA", "TX")  # kept as labels
    assert region.intensity_g_per_kwh == pytest.approx(texas_lb * 0.45359237)
    assert country.intensity_g_per_kwh == mix["USA"]["carbon_intensity"]
    assert default.is_default and not (given.is_default or region.is_default)
    assert (
        len(
            {
                given.intensity_g_per_kwh,
                region.intensity_g_per_kwh,
                country.intensity_g_per_kwh,
                default.intensity_g_per_kwh,
            }
        )
        == 4
    )


def test_explicit_intensity_must_be_nonnegative_and_finite() -> None:
    for bad in (-1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="grid intensity"):
            resolve_accounting(intensity_g_per_kwh=bad)
    assert resolve_accounting(intensity_g_per_kwh=0.0).gco2e_g(1e9) == 0.0


# -- regions ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["california", "California", "CA", "ca"])
def test_us_state_by_name_or_code_converts_pounds_per_mwh(name: str) -> None:
    table = codecarbon_file(USA)
    acc = resolve_accounting(country="USA", region=name)
    assert acc.region == "california" and acc.country == "USA"
    # 1 lb/MWh = 453.59237 g / 1000 kWh
    assert acc.intensity_g_per_kwh == pytest.approx(table["california"]["emissions"] * 0.45359237)
    assert acc.intensity_year == table["_source"]["year"]
    assert "usa_emissions.json" in acc.intensity_source


def test_region_alone_infers_the_country() -> None:
    nordic = codecarbon_file(NORDIC)["data"]
    se1 = resolve_accounting(region="SE1")
    assert se1.country == "SWE" and se1.region == "SE1"
    assert se1.intensity_g_per_kwh == nordic["SE1"]["emission_factor"]
    assert se1.intensity_year == nordic["SE1"]["year"]
    assert resolve_accounting(region="NO4").country == "NOR"
    assert resolve_accounting(region="fi").country == "FIN"
    assert resolve_accounting(region="wyoming").country == "USA"


def test_nordic_zone_must_belong_to_the_country() -> None:
    with pytest.raises(ValueError, match=r"SE1, SE2, SE3, SE4"):
        resolve_accounting(country="SWE", region="NO1")


def test_unknown_region_lists_the_country_regions_and_close_matches() -> None:
    with pytest.raises(ValueError) as exc:
        resolve_accounting(country="USA", region="texs")
    msg = str(exc.value)
    assert "Did you mean: texas" in msg
    assert "california (CA)" in msg and "wyoming (WY)" in msg


def test_region_for_a_country_without_regional_data() -> None:
    with pytest.raises(ValueError, match=r"no regional intensities for FRA.*USA"):
        resolve_accounting(country="FRA", region="ile-de-france")


def test_unknown_region_without_country_names_the_countries_with_tables() -> None:
    with pytest.raises(ValueError, match=r"unknown region 'atlantis'.*SWE.*USA"):
        resolve_accounting(region="atlantis")


def test_canadian_province_from_its_generation_mix() -> None:
    mix = codecarbon_file("private_infra/2023/canada_energy_mix.json")
    factors = codecarbon_file(PER_SOURCE)
    names = {
        "coal": "coal",
        "petroleum": "petroleum",
        "naturalGas": "natural_gas",
        "biomass": "biomass",
        "hydro": "hydroelectricity",
        "nuclear": "nuclear",
        "solar": "solar",
        "wind": "wind",
    }
    row = mix["alberta"]
    expected = sum(row[k] * factors[v] for k, v in names.items()) / row["total"]
    alberta = resolve_accounting(region="AB")
    quebec = resolve_accounting(country="CAN", region="Quebec")
    assert alberta.country == "CAN" and alberta.region == "alberta"
    assert alberta.intensity_g_per_kwh == pytest.approx(expected)
    # Hydro-powered Quebec sits near the hydro life-cycle factor; gas-fired Alberta far above.
    assert quebec.intensity_g_per_kwh < 2 * factors["hydroelectricity"]
    assert alberta.intensity_g_per_kwh > 10 * quebec.intensity_g_per_kwh
    assert quebec.intensity_year is None and "not stated" in quebec.intensity_source


def test_chinese_province_by_name_or_code() -> None:
    data = codecarbon_file("private_infra/2023/china_provincial_emissions.json")["data"]
    assert (
        resolve_accounting(region="guangdong").intensity_g_per_kwh
        == (data["CN-GD"]["emission_factor"])
    )
    assert resolve_accounting(country="CHN", region="CN-BJ").region == "Beijing"


# -- PUE -------------------------------------------------------------------------------


def test_pue_scales_carbon_linearly() -> None:
    energy_j = 7_200.0
    base = resolve_accounting(country="FRA").gco2e_g(energy_j)
    for pue in (1.0, 1.1, 1.58, 2.0):
        acc = resolve_accounting(country="FRA", pue=pue)
        assert acc.gco2e_g(energy_j) == pytest.approx(base * pue)
        assert acc.gco2e_g(2 * energy_j) == pytest.approx(2 * acc.gco2e_g(energy_j))
    assert not resolve_accounting(pue=1.2).pue_is_default


def test_pue_below_one_is_rejected() -> None:
    with pytest.raises(ValueError, match="PUE"):
        resolve_accounting(pue=0.9)


# -- embodied --------------------------------------------------------------------------


def test_embodied_only_when_enabled_and_never_in_gco2e() -> None:
    off = resolve_accounting(country="FRA")
    on = resolve_accounting(country="FRA", embodied_kgco2e=2500.0, lifetime_h=35_040.0)
    assert "embodied_gco2e_g" not in off.record_fields(3600.0, 3600.0)
    fields = on.record_fields(3600.0, 3600.0)
    # One hour of a 2,500 kg machine that lives 35,040 hours.
    assert fields["embodied_gco2e_g"] == pytest.approx(2500e3 / 35_040)
    assert fields["gco2e_g"] == off.gco2e_g(3600.0)
    half = on.record_fields(3600.0, 3600.0, share=0.5)["embodied_gco2e_g"]
    assert half == pytest.approx(fields["embodied_gco2e_g"] / 2)
    with pytest.raises(ValueError, match="not enabled"):
        off.embodied_gco2e_g(1.0)


def test_embodied_needs_both_footprint_and_lifetime() -> None:
    with pytest.raises(ValueError, match="both"):
        resolve_accounting(embodied_kgco2e=100.0)
    with pytest.raises(ValueError, match="lifetime"):
        resolve_accounting(embodied_kgco2e=100.0, lifetime_h=0.0)


def _power_supplies(root: Path, types: list[str]) -> Path:
    for i, kind in enumerate(types):
        d = root / f"supply{i}"
        d.mkdir(parents=True)
        (d / "type").write_text(kind + "\n", encoding="ascii")
    return root


def test_machine_kind_from_power_supplies(tmp_path: Path) -> None:
    assert detect_machine_kind(_power_supplies(tmp_path / "a", ["Mains", "Battery"])) == "laptop"
    assert detect_machine_kind(_power_supplies(tmp_path / "b", ["Mains"])) == "server"
    assert detect_machine_kind(tmp_path / "missing") == "server"


def test_settings_embodied_defaults_follow_the_machine(tmp_path: Path) -> None:
    laptop_root = _power_supplies(tmp_path / "laptop", ["Battery"])
    server_root = _power_supplies(tmp_path / "server", ["Mains"])
    laptop = accounting_from_settings(Settings(carbon_embodied=True), power_supply_root=laptop_root)
    server = accounting_from_settings(
        Settings(carbon_embodied=True), power_supply_root=server_root, gpu_count=2
    )
    assert (laptop.embodied_kgco2e, laptop.lifetime_h) == (
        LAPTOP_EMBODIED.kgco2e,
        LAPTOP_EMBODIED.lifetime_h,
    )
    assert server.embodied_kgco2e == SERVER_EMBODIED.kgco2e + 2 * GPU_EMBODIED_KGCO2E
    assert server.lifetime_h == 35_040.0
    assert "ADEME" in (laptop.embodied_source or "")
    assert "BLOOM" in (server.embodied_source or "")


def test_settings_given_footprint_enables_embodied_and_keeps_values(tmp_path: Path) -> None:
    acc = accounting_from_settings(
        Settings(carbon_embodied_kgco2e=1000.0, carbon_lifetime_h=10_000.0),
        power_supply_root=tmp_path,
    )
    assert acc.embodied_enabled
    assert acc.record_fields(0.0, 3600.0)["embodied_gco2e_g"] == pytest.approx(100.0)
    off = accounting_from_settings(Settings(), power_supply_root=tmp_path)
    assert not off.embodied_enabled and off.to_json()["embodied_kgco2e"] is None


# -- water -----------------------------------------------------------------------------


def test_water_per_kwh_of_it_energy_without_pue() -> None:
    acc = resolve_accounting(pue=1.5, water_l_per_kwh=3.69)
    assert acc.record_fields(2 * ONE_KWH_J, 1.0)["water_l"] == pytest.approx(7.38)
    assert "water_l" not in resolve_accounting(pue=1.5).record_fields(ONE_KWH_J, 1.0)
    with pytest.raises(ValueError, match="water"):
        resolve_accounting(water_l_per_kwh=-0.1)


def test_combined_water_factor_counts_offsite_water_on_facility_energy() -> None:
    assert combined_water_factor(0.55, 3.14, pue=1.0) == pytest.approx(3.69)
    assert combined_water_factor(0.55, 3.14, pue=1.2) == pytest.approx(0.55 + 1.2 * 3.14)
    with pytest.raises(ValueError):
        combined_water_factor(-1.0, 3.14)


def test_settings_water_and_pue_flow_through() -> None:
    s = Settings(
        carbon_country="FRA", carbon_pue=1.3, carbon_water=1.8, sources={"carbon_pue": "cli"}
    )
    acc = accounting_from_settings(s)
    assert acc.country == "FRA" and acc.pue == 1.3 and not acc.pue_is_default
    assert acc.water_enabled and acc.to_json()["water_l_per_kwh"] == 1.8


def test_settings_errors_are_value_errors() -> None:
    with pytest.raises(ValueError, match="FRA"):
        accounting_from_settings(Settings(carbon_country="FRN"))
    with pytest.raises(ValueError, match="unknown region"):
        accounting_from_settings(Settings(carbon_country="USA", carbon_region="Bavaria"))


# -- energy-delay products and the JSON ---------------------------------------------------


def test_edp_and_ed2p() -> None:
    assert edp_js(10.0, 2.0) == 20.0
    assert ed2p_js2(10.0, 2.0) == 40.0
    assert kwh(J_PER_KWH) == 1.0


def test_to_json_has_the_contract_fields() -> None:
    data = resolve_accounting(country="SWE", region="SE3", pue=1.2).to_json()
    for key in (
        "country",
        "region",
        "intensity_g_per_kwh",
        "intensity_source",
        "intensity_year",
        "intensity_is_default",
        "pue",
    ):
        assert key in data
    assert (data["country"], data["region"], data["pue"]) == ("SWE", "SE3", 1.2)
    json.dumps(data)  # serialisable as is


# -- equivalences ----------------------------------------------------------------------


def test_equivalence_factors_are_the_cited_ones() -> None:
    assert abs(CAR_G_CO2_PER_KM - 251.0) <= 0.5  # Green Algorithms' figure
    assert SMARTPHONE_G_CO2_PER_CHARGE == 8.22
    assert abs(TREE_G_CO2_PER_MONTH - 917) <= 0.5
    assert math.isclose(GOOGLE_SEARCH_J, 1080.0)


def test_equivalences_scale_with_carbon_and_energy() -> None:
    gco2e_g = 10 * CAR_G_CO2_PER_KM
    energy_j = 3 * LED_BULB_W * 3600
    items = {e["unit"]: e for e in equivalences(gco2e_g, energy_j)}
    assert items["m"]["value"] == pytest.approx(10_000.0)
    assert items["charges"]["value"] == pytest.approx(gco2e_g / 8.22)
    assert items["months"]["value"] == pytest.approx(gco2e_g * 12 / 11_000)
    assert items["s"]["value"] == pytest.approx(3 * 3600.0)
    assert items["searches"]["value"] == pytest.approx(energy_j / 1080.0)
    for e in items.values():
        assert e["source"] and e["label"] and e["basis"] in ("gco2e", "energy")
    doubled = {e["unit"]: e["value"] for e in equivalences(2 * gco2e_g, 2 * energy_j)}
    assert all(doubled[u] == pytest.approx(2 * items[u]["value"]) for u in items)


# -- the intensity hook's result -------------------------------------------------------


def base() -> Accounting:
    return resolve_accounting(country="FRA", pue=1.2, water_l_per_kwh=1.0)


def test_hook_none_keeps_the_accounting() -> None:
    acc = base()
    assert apply_intensity_hook(acc, None) is acc


def test_hook_number_replaces_intensity_and_keeps_the_rest() -> None:
    acc = apply_intensity_hook(base(), 200)
    assert acc.intensity_g_per_kwh == 200.0
    assert acc.intensity_source == "hook: pytest_carbon_intensity"
    assert (acc.country, acc.pue, acc.water_l_per_kwh) == ("FRA", 1.2, 1.0)
    assert not acc.is_default and acc.intensity_year is None
    assert acc.gco2e_g(ONE_KWH_J) == pytest.approx(240.0)


def test_hook_mapping_with_source_and_year() -> None:
    acc = apply_intensity_hook(
        base(), {"intensity_g_per_kwh": 42.5, "source": "night tariff", "year": 2024}
    )
    assert (acc.intensity_g_per_kwh, acc.intensity_source, acc.intensity_year) == (
        42.5,
        "hook: night tariff",
        2024,
    )


@pytest.mark.parametrize(
    ("result", "match"),
    [
        ("300", r"pytest_carbon_intensity returned '300' \(str\)"),
        (True, r"pytest_carbon_intensity returned True \(bool\)"),
        ([300], r"\(list\)"),
        (-5, r"pytest_carbon_intensity returned intensity -5; expected a finite number >= 0"),
        (math.nan, r"finite number >= 0"),
        ({"intensity": 300}, r"unknown keys \['intensity'\]"),
        ({"source": "x"}, r"without 'intensity_g_per_kwh'"),
        ({"intensity_g_per_kwh": -1}, r">= 0"),
        ({"intensity_g_per_kwh": "1"}, r"expected a number"),
        ({"intensity_g_per_kwh": 1, "source": 3}, r"source 3; expected text"),
        ({"intensity_g_per_kwh": 1, "year": "2024"}, r"year '2024'; expected an integer"),
    ],
)
def test_hook_bad_results_name_the_hook(result: Any, match: str) -> None:
    with pytest.raises(HookResultError, match=match) as exc:
        apply_intensity_hook(base(), result)
    assert "pytest_carbon_intensity" in str(exc.value)
    assert isinstance(exc.value, ValueError)
