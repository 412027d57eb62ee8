"""Carbon accounting: grid intensity, PUE, gCO2e, and the energy-delay products.

Every conversion of units happens here, once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

J_PER_KWH = 3.6e6


def kwh(energy_j: float) -> float:
    return energy_j / J_PER_KWH


def edp_js(energy_j: float, duration_s: float) -> float:
    """Energy-delay product, J.s: energy x time (Gonzalez & Horowitz, 1996)."""
    return energy_j * duration_s


def ed2p_js2(energy_j: float, duration_s: float) -> float:
    """Energy-delay-squared product, J.s^2: weights speed more (Martin et al., 2001)."""
    return energy_j * duration_s * duration_s


@dataclass(frozen=True)
class Accounting:
    """How joules become grams of CO2e: ``gCO2e = kWh x PUE x intensity``."""

    intensity_g_per_kwh: float
    intensity_source: str
    country: str | None = None
    region: str | None = None
    intensity_year: int | None = None
    is_default: bool = True
    pue: float = 1.0

    def gco2e_g(self, energy_j: float) -> float:
        return kwh(energy_j) * self.pue * self.intensity_g_per_kwh

    def record_fields(self, energy_j: float, duration_s: float) -> dict[str, Any]:
        """Carbon fields of a record for ``energy_j`` measured over ``duration_s``."""
        return {"gco2e_g": self.gco2e_g(energy_j)}

    def to_json(self) -> dict[str, Any]:
        return {
            "country": self.country,
            "region": self.region,
            "intensity_g_per_kwh": self.intensity_g_per_kwh,
            "intensity_source": self.intensity_source,
            "intensity_year": self.intensity_year,
            "intensity_is_default": self.is_default,
            "pue": self.pue,
        }


def world_average() -> Accounting:
    from .ccdata import load_json

    data = load_json("private_infra/carbon_intensity_per_source.json")
    return Accounting(
        intensity_g_per_kwh=float(data["world_average"]),
        intensity_source="codecarbon carbon_intensity_per_source.json world_average "
        f"({data.get('world_average_source', 'IEA')})",
        is_default=True,
    )


def resolve_accounting(
    country: str | None = None,
    region: str | None = None,
    intensity_g_per_kwh: float | None = None,
    pue: float = 1.0,
) -> Accounting:
    """Resolve the intensity: explicit value > region > country > world average."""
    if pue < 1.0:
        raise ValueError(f"PUE must be >= 1.0, got {pue}")
    if intensity_g_per_kwh is not None:
        if intensity_g_per_kwh < 0:
            raise ValueError("intensity must be >= 0 g/kWh")
        return Accounting(
            intensity_g_per_kwh, "given (--carbon-intensity)", country, region, None, False, pue
        )
    if country:
        from .ccdata import load_json

        mix = load_json("private_infra/global_energy_mix.json")
        code = country.upper()
        if code not in mix:
            raise ValueError(f"unknown country code {country!r} (use ISO 3166-1 alpha-3)")
        row = mix[code]
        return Accounting(
            float(row["carbon_intensity"]),
            f"codecarbon global_energy_mix.json ({row.get('country_name', code)})",
            code,
            None,
            int(row["year"]) if row.get("year") else None,
            False,
            pue,
        )
    base = world_average()
    return Accounting(
        base.intensity_g_per_kwh, base.intensity_source, None, None, None, True, pue
    )

