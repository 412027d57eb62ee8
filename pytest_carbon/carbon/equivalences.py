"""Everyday equivalents of an amount of carbon and energy, each factor with its source.

For orientation only: these compare orders of magnitude, they are not offsets. The factors
and their sources are listed again in ``docs/how-numbers-are-computed.md``.
"""

from __future__ import annotations

from typing import Any

from pytest_carbon.carbon.accounting import J_PER_KWH

#: gCO2 per gallon of gasoline burned (US EPA, "Greenhouse Gas Emissions from a Typical
#: Passenger Vehicle", EPA-420-F-23-014, 2023).
GASOLINE_G_CO2_PER_GALLON = 8887.0
#: Average fuel economy of a US passenger vehicle on the road, miles per gallon (same EPA
#: fact sheet: about 22.0 mpg, 11,500 miles a year, about 4.6 tCO2 a year).
CAR_MILES_PER_GALLON = 22.0
KM_PER_MILE = 1.609344
#: Tailpipe gCO2 per km of an average US passenger car: 8,887 / 22.0 / 1.609344 = 251 g/km,
#: the same figure Green Algorithms uses (``passengerCar_US_perkm``, citing the EPA page).
CAR_G_CO2_PER_KM = GASOLINE_G_CO2_PER_GALLON / CAR_MILES_PER_GALLON / KM_PER_MILE

#: gCO2 per smartphone charge: 8.22e-6 metric tons (US EPA, Greenhouse Gas Equivalencies
#: Calculator, "Calculations and References": 0.012 kWh per charge x 1,562.4 lb CO2/MWh).
#: EPA later revised it with newer grid data; this is the widely quoted value.
SMARTPHONE_G_CO2_PER_CHARGE = 8.22

#: gCO2 one tree sequesters in a month: 11 kgCO2 a year / 12 (Green Algorithms,
#: ``treeYear`` = 11,000 g and ``tree_month`` = 917 g in its referenceValues.csv, which
#: cites Environmental Pollution article pii S0269749101002640; we did not read that paper).
TREE_G_CO2_PER_YEAR = 11000.0
TREE_G_CO2_PER_MONTH = TREE_G_CO2_PER_YEAR / 12

#: Energy of one Google search, J: 0.0003 kWh = about 1 kJ (U. Hoelzle, "Powering a Google
#: search", Official Google Blog, 11 January 2009). An old figure, kept for its familiarity.
GOOGLE_SEARCH_J = 0.0003 * J_PER_KWH

#: Power of an LED bulb giving the light of a 60 W incandescent (800 lumens): about 9-10 W
#: (US DOE Energy Saver, lighting choices; ENERGY STAR). We take 10 W.
LED_BULB_W = 10.0


def equivalences(gco2e_g: float, energy_j: float) -> list[dict[str, Any]]:
    """Everyday equivalents, in units a person reads: metres driven, seconds of a 10 W
    bulb, smartphone charges first (the three a report shows), then a tree's uptake and
    web searches.

    Each item: ``label``, ``value``, ``unit`` (a base unit: ``m``, ``s``, ``charges``,
    ``months``, ``searches``; reports add the SI prefix), ``basis`` (``gco2e`` or
    ``energy``), ``factor`` (the constant used, with its unit) and ``source``.
    """
    return [
        {
            "label": "driving an average passenger car",
            "value": gco2e_g / CAR_G_CO2_PER_KM * 1000.0,
            "unit": "m",
            "basis": "gco2e",
            "factor": f"{CAR_G_CO2_PER_KM:.0f} gCO2/km",
            "source": "US EPA EPA-420-F-23-014 (8,887 gCO2/gallon, 22.0 mpg)",
        },
        {
            "label": "a 10 W LED bulb",
            "value": energy_j / LED_BULB_W,
            "unit": "s",
            "basis": "energy",
            "factor": f"{LED_BULB_W:g} W",
            "source": "US DOE Energy Saver: an 800 lm LED bulb draws about 9-10 W",
        },
        {
            "label": "a smartphone's battery",
            "value": gco2e_g / SMARTPHONE_G_CO2_PER_CHARGE,
            "unit": "charges",
            "basis": "gco2e",
            "factor": f"{SMARTPHONE_G_CO2_PER_CHARGE:g} gCO2/charge",
            "source": "US EPA Greenhouse Gas Equivalencies Calculator (8.22 gCO2/charge)",
        },
        {
            "label": "one tree's CO2 uptake",
            "value": gco2e_g / TREE_G_CO2_PER_MONTH,
            "unit": "months",
            "basis": "gco2e",
            "factor": f"{TREE_G_CO2_PER_MONTH:.0f} gCO2/tree-month",
            "source": "Green Algorithms (Lannelongue et al. 2021): 11 kgCO2/tree/year",
        },
        {
            "label": "Google web search",
            "value": energy_j / GOOGLE_SEARCH_J,
            "unit": "searches",
            "basis": "energy",
            "factor": f"{GOOGLE_SEARCH_J:g} J/search",
            "source": "Google, 'Powering a Google search' (2009): 0.0003 kWh",
        },
    ]
