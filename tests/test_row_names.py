"""Row names stay distinct at 80 columns: the part that tells rows apart survives."""

from __future__ import annotations

from pytest_carbon.report.rows import shorten, shorten_all
from pytest_carbon.report.terminal import table_lines

FILE = "jsonschema/tests/test_jsonschema_test_suite.py"
KINDS = ("nested_tuple", "adjacent_contains", "prefix_items", "with_if_then", "ignored")
IDS = [f"{FILE}::TestDraft2019::test_unevaluated_items_{k}_evaluated_items" for k in KINDS]


def test_names_that_collide_when_cut_keep_what_tells_them_apart() -> None:
    # Cut each on its own, all five read the same (issue 23, jsonschema at 80 columns).
    assert len({shorten(n, 24) for n in IDS}) == 1
    short = shorten_all([*IDS, f"{FILE}::TestDraft2020::test_ref_remote"], 24)
    assert len(set(short)) == 6
    assert all(len(s) <= 24 for s in short)
    for kind, s in zip(KINDS, short, strict=False):
        assert kind in s, (kind, s)
    # A name that collided with nothing is shortened as before.
    assert short[-1] == shorten(f"{FILE}::TestDraft2020::test_ref_remote", 24)


def test_parameters_that_differ_at_the_end_survive() -> None:
    ids = [f"t.py::test_x[{'a' * 40}-{i}]" for i in range(12)]
    short = shorten_all(ids, 20)
    assert len(set(short)) == 12 and all(len(s) <= 20 for s in short)


def test_the_terminal_table_at_80_columns_has_distinct_rows() -> None:
    recs = [
        {"nodeid": n, "energy_j": 1.0 + i, "method": "estimated", "outcome": "passed"}
        for i, n in enumerate(IDS)
    ]
    lines = table_lines(recs, width=80, limit=None)
    rows = [line.split("  ")[0] for line in lines[2 : 2 + len(IDS)]]
    assert len(set(rows)) == len(IDS)
    assert all(len(line) <= 80 for line in lines)


def test_parameters_every_row_shares_are_cut_before_the_names() -> None:
    # A prompt run of one model: every id ends in [reference-plain-0], which tells no row
    # apart; at 24 columns the task names must survive whole.
    ids = [
        "prompts/languages/js_sum_primes.yaml::js_sum_primes[reference-plain-0]",
        "prompts/numeric/longest_collatz.yaml::longest_collatz[reference-plain-0]",
        "prompts/numeric/lru_hits.yaml::lru_hits[reference-plain-0]",
    ]
    short = shorten_all(ids, 24)
    assert short == [
        "js_sum_primes[reference…",
        "longest_collatz[referen…",
        "lru_hits[reference-plai…",
    ]
    # Different parameters tell rows apart: they are kept (cut in their middle if needed).
    mixed = shorten_all(["a.py::t[reference-plain-0]", "a.py::t[variant_naive-plain-0]"], 24)
    assert len(set(mixed)) == 2
