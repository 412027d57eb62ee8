"""Read codecarbon's shipped data files without importing codecarbon.

``import codecarbon`` costs ~60 ms and initialises NVML; ``importlib.resources`` would
import the package too. ``find_spec`` locates it without running it.
"""

from __future__ import annotations

import csv
import functools
import importlib.util
import json
from pathlib import Path
from typing import Any


class DataMissing(RuntimeError):
    """codecarbon (whose data files we read) is not installed."""


def package_dir(name: str) -> Path | None:
    """The folder of an installed package, found without importing (running) it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


@functools.lru_cache(maxsize=1)
def data_dir() -> Path:
    found = package_dir("codecarbon")
    if found is None:
        raise DataMissing(
            "codecarbon is not installed; pytest-carbon reads its data files "
            "(pip install codecarbon)"
        )
    return found / "data"


@functools.cache
def load_json(relative: str) -> Any:
    """Parse a JSON file under codecarbon's ``data/`` folder (cached)."""
    with open(data_dir() / relative, encoding="utf-8") as f:
        return json.load(f)


@functools.lru_cache(maxsize=1)
def cpu_power_table() -> dict[str, float]:
    """codecarbon's ``hardware/cpu_power.csv``: CPU name -> TDP in watts."""
    table: dict[str, float] = {}
    with open(data_dir() / "hardware" / "cpu_power.csv", encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            try:
                table[row["Name"].strip()] = float(row["TDP"])
            except (KeyError, TypeError, ValueError):
                continue
    return table
