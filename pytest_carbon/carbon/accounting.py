"""Carbon accounting: grid intensity, PUE, gCO2e, embodied share, water, energy-delay products.

Every conversion of units happens here, once. Every default and formula, with its source,
is in ``docs/how-numbers-are-computed.md``. Grid intensities come from the data files that
codecarbon ships (read by :mod:`pytest_carbon.carbon.ccdata`, codecarbon is never imported).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

J_PER_KWH = 3.6e6
S_PER_H = 3600.0
H_PER_YEAR = 8760.0
#: 1 lb/MWh in g/kWh: 453.59237 g per lb (exact, international pound) / 1000 kWh per MWh.
G_PER_KWH_PER_LB_PER_MWH = 0.45359237

#: The world average when codecarbon's data cannot be read at all: the same 475 gCO2e/kWh
#: that codecarbon ships (IEA, Global Energy & CO2 Status Report 2019).
WORLD_AVERAGE_FALLBACK_G_PER_KWH = 475.0

#: Manufacturing footprint of one NVIDIA A100 GPU, kgCO2e (Luccioni, Viguier & Ligozat,
#: "Estimating the Carbon Footprint of BLOOM", 2022, arXiv:2211.02001).
GPU_EMBODIED_KGCO2E = 150.0

INTENSITY_HOOK = "pytest_carbon_intensity"

_USA_FILE = "private_infra/2023/usa_emissions.json"
_NORDIC_FILE = "private_infra/nordic_emissions.json"
_CANADA_FILE = "private_infra/2023/canada_energy_mix.json"
_CHINA_FILE = "private_infra/2023/china_provincial_emissions.json"
_MIX_FILE = "private_infra/global_energy_mix.json"
_PER_SOURCE_FILE = "private_infra/carbon_intensity_per_source.json"

_NORDIC_COUNTRY = {"SE": "SWE", "NO": "NOR", "FI": "FIN"}

# Canada's table gives each province's generation mix in percent, not an intensity. Its keys
# map onto codecarbon's per-source life-cycle factors; ``other`` and ``tidal`` have none.
_CANADA_SOURCE_KEYS = {
    "coal": "coal",
    "petroleum": "petroleum",
    "naturalGas": "natural_gas",
    "biomass": "biomass",
    "hydro": "hydroelectricity",
    "nuclear": "nuclear",
    "solar": "solar",
    "wind": "wind",
}

# Postal abbreviations of the provinces (Canada Post); codecarbon's table has names only.
_CANADA_CODES = {
    "alberta": "AB",
    "british columbia": "BC",
    "manitoba": "MB",
    "new brunswick": "NB",
    "newfoundland and labrador": "NL",
    "nova scotia": "NS",
    "northwest territories": "NT",
    "nunavut": "NU",
    "ontario": "ON",
    "prince edward island": "PE",
    "quebec": "QC",
    "saskatchewan": "SK",
    "yukon": "YT",
}


def kwh(energy_j: float) -> float:
    return energy_j / J_PER_KWH


def edp_js(energy_j: float, duration_s: float) -> float:
    """Energy-delay product, J.s: energy x time (Gonzalez & Horowitz, 1996)."""
    return energy_j * duration_s


def ed2p_js2(energy_j: float, duration_s: float) -> float:
    """Energy-delay-squared product, J.s^2: weights speed more (Martin et al., 2001)."""
    return energy_j * duration_s * duration_s


def combined_water_factor(
    onsite_wue_l_per_kwh: float, offsite_ewif_l_per_kwh: float, pue: float = 1.0
) -> float:
    """One water factor per kWh of IT energy, as ``--carbon-water`` expects.

    On-site cooling water (WUE) is counted per kWh of IT energy; the water evaporated at
    power plants (EWIF) per kWh drawn from the grid, which is PUE x the IT energy
    (Li et al., "Making AI Less Thirsty", 2023): ``WUE + PUE x EWIF``.
    """
    for name, v in (("WUE", onsite_wue_l_per_kwh), ("EWIF", offsite_ewif_l_per_kwh)):
        if not (math.isfinite(v) and v >= 0):
            raise ValueError(f"{name} must be a number >= 0 L/kWh, got {v!r}")
    _check_pue(pue)
    return onsite_wue_l_per_kwh + pue * offsite_ewif_l_per_kwh


# -- embodied defaults -------------------------------------------------------------------


@dataclass(frozen=True)
class EmbodiedProfile:
    """A machine's manufacturing footprint and the lifetime it is spread over."""

    kind: str
    kgco2e: float
    lifetime_h: float
    source: str


#: A server without GPUs: 2,500 kgCO2e, the figure Luccioni et al. (2022) used for an HPE
#: Apollo 6500 Gen10 Plus node minus its GPUs; a large server, so an upper figure for a small
#: one. Lifetime 4 years = 35,040 h, BoaviztAPI's default ``hours_life_time``.
SERVER_EMBODIED = EmbodiedProfile(
    "server",
    2500.0,
    4 * H_PER_YEAR,
    "server without GPUs 2,500 kgCO2e (Luccioni et al. 2022, BLOOM); "
    "lifetime 4 years = 35,040 h (BoaviztAPI default)",
)

#: A laptop: 170 kgCO2e to manufacture and a 5-year lifetime, ADEME's Base Empreinte
#: reference values for "ordinateur portable", as used by Green Algorithms.
LAPTOP_EMBODIED = EmbodiedProfile(
    "laptop",
    170.0,
    5 * H_PER_YEAR,
    "laptop 170 kgCO2e, lifetime 5 years = 43,800 h (ADEME Base Empreinte, via Green "
    "Algorithms hardware_impacts.csv)",
)


def detect_machine_kind(power_supply_root: str | Path = "/sys/class/power_supply") -> str:
    """``laptop`` when the kernel lists a battery, else ``server``."""
    root = Path(power_supply_root)
    try:
        entries = list(root.iterdir())
    except OSError:
        return "server"
    for entry in entries:
        try:
            if (entry / "type").read_text(encoding="ascii").strip() == "Battery":
                return "laptop"
        except (OSError, UnicodeDecodeError):
            continue
    return "server"


def embodied_profile(kind: str) -> EmbodiedProfile:
    profiles = {p.kind: p for p in (SERVER_EMBODIED, LAPTOP_EMBODIED)}
    try:
        return profiles[kind]
    except KeyError:
        raise ValueError(
            f"unknown machine kind {kind!r}; expected one of {', '.join(sorted(profiles))}"
        ) from None


# -- the accounting object ---------------------------------------------------------------


@dataclass(frozen=True)
class Accounting:
    """How joules become grams of CO2e: ``gCO2e = kWh x PUE x intensity``.

    Embodied emissions (``embodied_kgco2e`` set) and water (``water_l_per_kwh`` set) are
    opt-in and reported beside ``gco2e_g``, never added to it.
    """

    intensity_g_per_kwh: float
    intensity_source: str
    country: str | None = None
    region: str | None = None
    intensity_year: int | None = None
    is_default: bool = True
    pue: float = 1.0
    pue_is_default: bool = True
    #: Manufacturing footprint of the machine, kgCO2e (None: embodied not reported).
    embodied_kgco2e: float | None = None
    lifetime_h: float | None = None
    embodied_source: str | None = None
    #: Water per kWh of IT energy, L/kWh (None: water not reported).
    water_l_per_kwh: float | None = None
    water_source: str | None = None

    @property
    def embodied_enabled(self) -> bool:
        return self.embodied_kgco2e is not None and self.lifetime_h is not None

    @property
    def water_enabled(self) -> bool:
        return self.water_l_per_kwh is not None

    def gco2e_g(self, energy_j: float) -> float:
        return kwh(energy_j) * self.pue * self.intensity_g_per_kwh

    def embodied_gco2e_g(self, duration_s: float, share: float | None = None) -> float:
        """The machine's manufacturing footprint for ``duration_s`` of its lifetime,
        times ``share``, the part of the machine used (1 when None)."""
        if self.embodied_kgco2e is None or self.lifetime_h is None:
            raise ValueError("embodied emissions are not enabled (--carbon-embodied)")
        used = 1.0 if share is None else share
        return duration_s / (self.lifetime_h * S_PER_H) * self.embodied_kgco2e * 1000.0 * used

    def water_l(self, energy_j: float) -> float:
        """Water for ``energy_j`` of IT energy; the factor already holds any PUE term."""
        if self.water_l_per_kwh is None:
            raise ValueError("water is not enabled (--carbon-water)")
        return kwh(energy_j) * self.water_l_per_kwh

    def record_fields(
        self, energy_j: float, duration_s: float, *, share: float | None = None
    ) -> dict[str, Any]:
        """Carbon fields of a record for ``energy_j`` measured over ``duration_s``.

        ``share``: the part of the machine the work used, for the embodied share (the
        measurement's CPU-time share when attributed; 1 when None).
        """
        out: dict[str, Any] = {"gco2e_g": self.gco2e_g(energy_j)}
        if self.embodied_enabled:
            out["embodied_gco2e_g"] = self.embodied_gco2e_g(duration_s, share)
        if self.water_enabled:
            out["water_l"] = self.water_l(energy_j)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "country": self.country,
            "region": self.region,
            "intensity_g_per_kwh": self.intensity_g_per_kwh,
            "intensity_source": self.intensity_source,
            "intensity_year": self.intensity_year,
            "intensity_is_default": self.is_default,
            "pue": self.pue,
            "pue_is_default": self.pue_is_default,
            "formula": "gco2e_g = energy_j / 3.6e6 x pue x intensity_g_per_kwh",
            "embodied_kgco2e": self.embodied_kgco2e,
            "lifetime_h": self.lifetime_h,
            "embodied_source": self.embodied_source,
            "water_l_per_kwh": self.water_l_per_kwh,
            "water_source": self.water_source,
        }

    def describe(self) -> str:
        """One line for the terminal: the intensity, where it came from, and the PUE."""
        where = " / ".join(x for x in (self.country, self.region) if x)
        parts = [f"{self.intensity_g_per_kwh:g} gCO2e/kWh"]
        if where:
            parts.append(f"({where})")
        parts.append(f"from {self.intensity_source}")
        if self.is_default:
            parts.append("[default: set --carbon-country, --carbon-region or --carbon-intensity]")
        text = (
            " ".join(parts) + f"; PUE {self.pue:g}" + (" (default)" if self.pue_is_default else "")
        )
        if self.embodied_enabled:
            text += f"; embodied {self.embodied_kgco2e:g} kgCO2e over {self.lifetime_h:g} h"
        if self.water_enabled:
            text += f"; water {self.water_l_per_kwh:g} L/kWh"
        return text


# -- validation ------------------------------------------------------------------------


def _check_pue(pue: float) -> None:
    if not (isinstance(pue, (int, float)) and math.isfinite(pue) and pue >= 1.0):
        raise ValueError(f"PUE is total facility energy / IT energy, >= 1.0; got {pue!r}")


def _check_nonnegative(name: str, value: float, unit: str) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a number >= 0 {unit}, got {value!r}")


# -- codecarbon's tables -----------------------------------------------------------------


def _load(relative: str) -> Any:
    from pytest_carbon.carbon.ccdata import DataMissing, load_json

    try:
        return load_json(relative)
    except DataMissing as exc:
        raise ValueError(str(exc)) from None
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read codecarbon's {relative}: {exc}") from None


def _norm(name: str) -> str:
    return " ".join(name.replace("_", " ").casefold().split())


@dataclass(frozen=True)
class RegionIntensity:
    """One row of a regional table, converted to g/kWh."""

    country: str
    name: str
    intensity_g_per_kwh: float
    year: int | None
    source: str
    aliases: tuple[str, ...]


def _usa_rows() -> list[RegionIntensity]:
    data = _load(_USA_FILE)
    meta = data.get("_source", {})
    year = meta.get("year")
    source = f"codecarbon {_USA_FILE} ({meta.get('name', 'EPA eGRID')}, lb/MWh x 0.45359)"
    rows = []
    for name, row in data.items():
        code = str(row.get("regionCode", "")) if isinstance(row, dict) else ""
        # ``_unit``/``_source`` are metadata; ``usa`` is the national average, not a region.
        if name.startswith("_") or not isinstance(row, dict) or code.lower() == "usa":
            continue
        rows.append(
            RegionIntensity(
                "USA",
                name,
                float(row["emissions"]) * G_PER_KWH_PER_LB_PER_MWH,
                int(year) if year else None,
                source,
                (_norm(name), _norm(code)),
            )
        )
    return rows


def _nordic_rows() -> list[RegionIntensity]:
    data = _load(_NORDIC_FILE)
    rows = []
    for zone, row in data.get("data", {}).items():
        country = _NORDIC_COUNTRY.get(zone[:2].upper())
        if country is None:
            continue
        rows.append(
            RegionIntensity(
                country,
                zone,
                float(row["emission_factor"]),
                int(row["year"]) if row.get("year") else None,
                f"codecarbon {_NORDIC_FILE} ({row.get('description', zone)})",
                (_norm(zone),),
            )
        )
    return rows


def _canada_rows() -> list[RegionIntensity]:
    mix = _load(_CANADA_FILE)
    factors = _load(_PER_SOURCE_FILE)
    rows = []
    for province, shares in mix.items():
        total = float(shares.get("total") or 0.0)
        if total <= 0:
            continue
        intensity = (
            sum(
                float(shares.get(key, 0.0)) * float(factors[src])
                for key, src in _CANADA_SOURCE_KEYS.items()
                if src in factors
            )
            / total
        )
        code = _CANADA_CODES.get(province)
        rows.append(
            RegionIntensity(
                "CAN",
                province,
                intensity,
                None,
                f"codecarbon {_CANADA_FILE} generation mix x {_PER_SOURCE_FILE} "
                "life-cycle factors (year of the mix not stated; shipped under 2023/)",
                (_norm(province),) + ((_norm(code),) if code else ()),
            )
        )
    return rows


def _china_rows() -> list[RegionIntensity]:
    data = _load(_CHINA_FILE)
    meta = data.get("metadata", {})
    rows = []
    for code, row in data.get("data", {}).items():
        names = tuple(_norm(n) for n in row.get("names", ()))
        label = row.get("description", code)
        rows.append(
            RegionIntensity(
                "CHN",
                label,
                float(row["emission_factor"]),
                int(row["year"]) if row.get("year") else meta.get("year"),
                f"codecarbon {_CHINA_FILE} (MEE/NBS provincial factor, CO2 only)",
                (_norm(code), _norm(label), *names),
            )
        )
    return rows


_TABLE_LOADERS = {
    "USA": _usa_rows,
    "SWE": _nordic_rows,
    "NOR": _nordic_rows,
    "FIN": _nordic_rows,
    "CAN": _canada_rows,
    "CHN": _china_rows,
}


@functools.cache
def _country_regions(country: str) -> tuple[RegionIntensity, ...]:
    # Only the one file a country needs is read (the Nordic file serves three countries).
    return tuple(r for r in _TABLE_LOADERS[country]() if r.country == country)


def region_tables() -> dict[str, tuple[RegionIntensity, ...]]:
    """Every regional intensity codecarbon ships, by ISO3 country (cached per country)."""
    return {c: _country_regions(c) for c in sorted(_TABLE_LOADERS)}


def _region_label(row: RegionIntensity) -> str:
    extra = [a for a in row.aliases if a != _norm(row.name) and len(a) <= 5]
    return f"{row.name} ({extra[0].upper()})" if extra else row.name


def _find_region(region: str, rows: Iterable[RegionIntensity]) -> list[RegionIntensity]:
    key = _norm(region)
    return [r for r in rows if key in r.aliases]


def _close(word: str, candidates: Iterable[str], n: int = 5) -> list[str]:
    import difflib  # only on the error path

    return difflib.get_close_matches(word, list(candidates), n=n, cutoff=0.6)


def _region_error(region: str, country: str, rows: tuple[RegionIntensity, ...]) -> ValueError:
    labels = sorted(_region_label(r) for r in rows)
    alias_to_name = {a: r.name for r in rows for a in r.aliases}
    close = list(dict.fromkeys(alias_to_name[a] for a in _close(_norm(region), alias_to_name)))
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return ValueError(
        f"unknown region {region!r} for {country}.{hint} Regions available for {country}: "
        f"{', '.join(labels)}"
    )


def resolve_region(region: str, country: str | None = None) -> RegionIntensity:
    """A region's intensity; the country is inferred when the name is unique across tables."""
    if country:
        code = country.strip().upper()
        if code not in _TABLE_LOADERS:
            raise ValueError(
                f"no regional intensities for {code}; codecarbon ships regions for "
                f"{', '.join(sorted(_TABLE_LOADERS))}. Use --carbon-country alone, or "
                "--carbon-intensity."
            )
        rows = _country_regions(code)
        found = _find_region(region, rows)
        if not found:
            raise _region_error(region, code, rows)
        return found[0]
    tables = region_tables()
    every = [r for rows in tables.values() for r in rows]
    found = _find_region(region, every)
    if len(found) == 1:
        return found[0]
    if found:
        options = ", ".join(f"{r.name} in {r.country}" for r in found)
        raise ValueError(
            f"region {region!r} is ambiguous ({options}); add --carbon-country to choose"
        )
    alias_to_row = {a: r for r in every for a in r.aliases}
    close = list(
        dict.fromkeys(
            f"{alias_to_row[a].name} ({alias_to_row[a].country})"
            for a in _close(_norm(region), alias_to_row)
        )
    )
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise ValueError(
        f"unknown region {region!r}.{hint} Regional intensities exist for "
        f"{', '.join(sorted(tables))}; give --carbon-country to list a country's regions."
    )


def _country_error(country: str, mix: Mapping[str, Any]) -> ValueError:
    code = country.strip().upper()
    by_name = {_norm(str(row.get("country_name", k))): k for k, row in mix.items()}
    suggestions = [*_close(code, mix), *(by_name[n] for n in _close(_norm(country), by_name))]
    # A name typed in full ("France") is a clear hint even where difflib's ratio is low.
    if _norm(country) in by_name:
        suggestions.insert(0, by_name[_norm(country)])
    close = list(dict.fromkeys(suggestions))[:5]
    named = ", ".join(f"{c} ({mix[c].get('country_name', c)})" for c in close)
    hint = f" Did you mean: {named}?" if close else ""
    return ValueError(
        f"unknown country code {country!r} (ISO 3166-1 alpha-3, as in codecarbon's "
        f"global_energy_mix.json).{hint}"
    )


def world_average() -> Accounting:
    """The default intensity: codecarbon's world average, or its 475 g/kWh if unreadable."""
    try:
        data = _load(_PER_SOURCE_FILE)
        value = float(data["world_average"])
        source = (
            f"codecarbon {_PER_SOURCE_FILE} world_average "
            f"({data.get('world_average_source', 'IEA')})"
        )
    except (ValueError, KeyError, TypeError):
        value = WORLD_AVERAGE_FALLBACK_G_PER_KWH
        source = (
            "built-in world average (IEA 2019, as codecarbon ships); codecarbon data unreadable"
        )
    return Accounting(intensity_g_per_kwh=value, intensity_source=source, is_default=True)


def resolve_accounting(
    country: str | None = None,
    region: str | None = None,
    intensity_g_per_kwh: float | None = None,
    pue: float = 1.0,
    *,
    pue_is_default: bool | None = None,
    embodied_kgco2e: float | None = None,
    lifetime_h: float | None = None,
    embodied_source: str | None = None,
    water_l_per_kwh: float | None = None,
    water_source: str | None = None,
) -> Accounting:
    """Resolve the intensity: explicit value > region > country > world average.

    With an explicit intensity, ``country`` and ``region`` are kept as labels only.
    Embodied emissions are reported when both ``embodied_kgco2e`` and ``lifetime_h`` are
    given; water when ``water_l_per_kwh`` is.
    """
    _check_pue(pue)
    extra: dict[str, Any] = {
        "pue": float(pue),
        "pue_is_default": (pue == 1.0) if pue_is_default is None else pue_is_default,
    }
    if (embodied_kgco2e is None) != (lifetime_h is None):
        raise ValueError("embodied emissions need both a footprint (kgCO2e) and a lifetime (h)")
    if embodied_kgco2e is not None and lifetime_h is not None:
        _check_nonnegative("the embodied footprint", embodied_kgco2e, "kgCO2e")
        if not (math.isfinite(lifetime_h) and lifetime_h > 0):
            raise ValueError(f"the lifetime must be a number of hours > 0, got {lifetime_h!r}")
        extra.update(
            embodied_kgco2e=float(embodied_kgco2e),
            lifetime_h=float(lifetime_h),
            embodied_source=embodied_source or "given",
        )
    if water_l_per_kwh is not None:
        _check_nonnegative("the water factor", water_l_per_kwh, "L/kWh")
        extra.update(water_l_per_kwh=float(water_l_per_kwh), water_source=water_source or "given")
    code = country.strip().upper() if country else None

    if intensity_g_per_kwh is not None:
        _check_nonnegative("the grid intensity", intensity_g_per_kwh, "gCO2e/kWh")
        return Accounting(
            float(intensity_g_per_kwh),
            "given (--carbon-intensity)",
            code,
            region,
            None,
            False,
            **extra,
        )
    if region:
        row = resolve_region(region, code)
        return Accounting(
            row.intensity_g_per_kwh, row.source, row.country, row.name, row.year, False, **extra
        )
    if code:
        mix = _load(_MIX_FILE)
        if code not in mix:
            raise _country_error(country or code, mix)
        row_c = mix[code]
        return Accounting(
            float(row_c["carbon_intensity"]),
            f"codecarbon {_MIX_FILE} ({row_c.get('country_name', code)})",
            code,
            None,
            int(row_c["year"]) if row_c.get("year") else None,
            False,
            **extra,
        )
    base = world_average()
    return Accounting(
        base.intensity_g_per_kwh, base.intensity_source, None, None, None, True, **extra
    )


def embodied_requested(settings: Any) -> bool:
    """Embodied emissions are on with ``--carbon-embodied``, or a footprint or lifetime."""
    return (
        bool(settings.carbon_embodied)
        or settings.carbon_embodied_kgco2e is not None
        or settings.carbon_lifetime_h is not None
    )


def accounting_from_settings(
    settings: Any,
    *,
    machine_kind: str | None = None,
    gpu_count: int = 0,
    power_supply_root: str | Path = "/sys/class/power_supply",
) -> Accounting:
    """The session's Accounting from the frozen ``options.Settings`` (errors: ValueError).

    Embodied emissions are on with ``--carbon-embodied`` or when a footprint or lifetime
    is given. Missing values come from the machine's profile (a battery means a laptop),
    plus :data:`GPU_EMBODIED_KGCO2E` per GPU.
    """
    sources = getattr(settings, "sources", {}) or {}
    kg = settings.carbon_embodied_kgco2e
    life = settings.carbon_lifetime_h
    embodied_on = embodied_requested(settings)
    embodied_source = None
    if embodied_on:
        profile = embodied_profile(machine_kind or detect_machine_kind(power_supply_root))
        parts = []
        if kg is None:
            kg = profile.kgco2e + GPU_EMBODIED_KGCO2E * gpu_count
            parts.append(f"default {profile.kind}")
            if gpu_count:
                parts.append(f"+ {gpu_count} GPU x {GPU_EMBODIED_KGCO2E:g} kgCO2e (BLOOM)")
        else:
            parts.append(f"given {kg:g} kgCO2e")
        if life is None:
            life = profile.lifetime_h
            if settings.carbon_embodied_kgco2e is not None:
                parts.append(f"default lifetime {life:g} h")
        else:
            parts.append(f"given lifetime {life:g} h")
        uses_profile = settings.carbon_embodied_kgco2e is None or settings.carbon_lifetime_h is None
        embodied_source = ", ".join(parts) + (f": {profile.source}" if uses_profile else "")
    water = settings.carbon_water
    return resolve_accounting(
        country=settings.carbon_country,
        region=settings.carbon_region,
        intensity_g_per_kwh=settings.carbon_intensity,
        pue=settings.carbon_pue,
        pue_is_default=sources.get("carbon_pue", "default") == "default",
        embodied_kgco2e=kg if embodied_on else None,
        lifetime_h=life if embodied_on else None,
        embodied_source=embodied_source,
        water_l_per_kwh=water,
        water_source=None if water is None else f"given ({water:g} L per kWh of IT energy)",
    )


# -- the intensity hook ------------------------------------------------------------------


class HookResultError(ValueError):
    """A plugin hook returned a value of the wrong type or range."""


_HOOK_KEYS = {"intensity_g_per_kwh", "source", "year"}


def _hook_number(value: Any, what: str, hook: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise HookResultError(
            f"{hook} returned {what} {value!r} ({type(value).__name__}); expected a number of "
            "gCO2e/kWh"
        )
    v = float(value)
    if not math.isfinite(v) or v < 0:
        raise HookResultError(f"{hook} returned {what} {value!r}; expected a finite number >= 0")
    return v


def apply_intensity_hook(
    accounting: Accounting, hook_result: Any, hook: str = INTENSITY_HOOK
) -> Accounting:
    """The Accounting with the intensity a ``pytest_carbon_intensity`` hook returned.

    ``None`` keeps ``accounting``. A number is g/kWh. A mapping holds
    ``intensity_g_per_kwh`` and optionally ``source`` (text) and ``year`` (int). The new
    Accounting keeps location, PUE, embodied and water, and says ``hook: <source>``.
    """
    if hook_result is None:
        return accounting
    year: int | None = None
    if isinstance(hook_result, Mapping):
        unknown = set(map(str, hook_result)) - _HOOK_KEYS
        if unknown:
            raise HookResultError(
                f"{hook} returned unknown keys {sorted(unknown)}; expected "
                "intensity_g_per_kwh and optionally source and year"
            )
        if "intensity_g_per_kwh" not in hook_result:
            raise HookResultError(f"{hook} returned a mapping without 'intensity_g_per_kwh'")
        value = _hook_number(hook_result["intensity_g_per_kwh"], "intensity_g_per_kwh", hook)
        source = hook_result.get("source") or hook
        if not isinstance(source, str):
            raise HookResultError(f"{hook} returned source {source!r}; expected text")
        raw_year = hook_result.get("year")
        if raw_year is not None:
            if isinstance(raw_year, bool) or not isinstance(raw_year, int):
                raise HookResultError(f"{hook} returned year {raw_year!r}; expected an integer")
            year = raw_year
    elif isinstance(hook_result, (int, float)) and not isinstance(hook_result, bool):
        value = _hook_number(hook_result, "intensity", hook)
        source = hook
    else:
        raise HookResultError(
            f"{hook} returned {hook_result!r} ({type(hook_result).__name__}); expected None, a "
            "number of gCO2e/kWh, or a mapping {'intensity_g_per_kwh': x, 'source': '...'}"
        )
    return replace(
        accounting,
        intensity_g_per_kwh=value,
        intensity_source=f"hook: {source}",
        intensity_year=year,
        is_default=False,
    )
