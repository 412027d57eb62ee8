"""Option defaults live in one place: ``Opt.default`` in the OPTIONS table."""

from __future__ import annotations

import dataclasses

import pytest

from pytest_carbon.options import OPTIONS, Settings


def test_settings_has_one_field_per_option_and_no_default_of_its_own() -> None:
    fields = {f.name: f for f in dataclasses.fields(Settings) if f.name != "sources"}
    assert list(fields) == [o.name for o in OPTIONS]
    # A default written beside a field would be a second source of truth.
    assert [n for n, f in fields.items() if f.default is not dataclasses.MISSING] == []


def test_defaults_come_from_the_option_table() -> None:
    s = Settings()
    for o in OPTIONS:
        assert getattr(s, o.name) == o.default, o.name
    assert s.carbon is False and s.carbon_compare_fail == () and s.carbon_model == ()
    assert (s.carbon_pue, s.carbon_interval, s.carbon_idle, s.carbon_rounds) == (
        1.0,
        100.0,
        "auto",
        1,
    )
    assert s.interval_s == pytest.approx(0.1)


def test_given_values_win_and_unknown_names_are_refused() -> None:
    s = Settings(carbon_pue=1.4, carbon_model=("a",), sources={"carbon_pue": "cli"})
    assert (s.carbon_pue, s.carbon_model, s.carbon_rounds) == (1.4, ("a",), 1)
    assert s.sources == {"carbon_pue": "cli"}
    with pytest.raises(TypeError, match="no such option: carbon_nope"):
        Settings(carbon_nope=1)
