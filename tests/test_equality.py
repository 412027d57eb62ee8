"""The one rule for "equal" (pytest_carbon/sandbox/equality.py), on its own."""

from __future__ import annotations

import math
import sys
from typing import Any

import pytest

from pytest_carbon.sandbox.child import bench as child_bench
from pytest_carbon.sandbox.child import plain
from pytest_carbon.sandbox.child import verify as child_verify
from pytest_carbon.sandbox.child import worker as child_worker
from pytest_carbon.sandbox.equality import difference, equal

NAN = float("nan")
INF = float("inf")


def test_ints_and_floats_are_equal_only_when_exactly_the_same_number() -> None:
    assert equal(3, 3) and equal(3.0, 3) and equal(3, 3.0)
    assert not equal(3.0000001, 3) and not equal(3, 3.0000001)
    # The attack of issue 19: an int task answered with a float off by 2.4 million.
    big = 10**18
    assert not equal(float(big) + 2.4e6, big)
    assert not equal(float(2**53 + 1), 2**53 + 1)  # the float cannot hold it exactly
    # The tolerance is for floats only: it never makes an int equal an approximate float.
    assert not equal(3.0001, 3, tol=0.01) and not equal(3, 3.0001, tol=0.01)
    assert difference(3.5, 3) == "got 3.5 (float), expected 3 (int)"


def test_two_floats_within_rel_1e9_or_the_absolute_tol() -> None:
    assert equal(0.1 + 0.2, 0.3)  # the last bits of another computation
    assert equal(1e15 + 0.5, 1e15)  # relative 1e-9
    assert not equal(1.001, 1.0)
    assert equal(1.001, 1.0, tol=0.01) and not equal(1.02, 1.0, tol=0.01)
    assert equal(1e-12, 0.0, tol=1e-9) and not equal(1e-12, 0.0)
    with pytest.raises(ValueError, match="tol"):
        equal(1.0, 1.0, tol=-1.0)
    with pytest.raises(ValueError, match="tol"):
        equal(1.0, 1.0, tol=NAN)


def test_nan_inf_and_negative_zero() -> None:
    assert equal(NAN, NAN) and equal([NAN], [NAN])
    assert not equal(NAN, 1.0) and not equal(1.0, NAN) and not equal(NAN, 0)
    assert equal(INF, INF) and equal(-INF, -INF)
    assert not equal(INF, -INF) and not equal(INF, 1e308, tol=1e308)
    assert not equal(INF, 10**400) and not equal(10**400, INF)
    assert equal(-0.0, 0.0) and equal(0.0, -0.0) and equal(-0.0, 0)


def test_bool_is_not_a_number() -> None:
    assert equal(True, True) and not equal(True, False)
    for number in (1, 1.0):
        assert not equal(True, number) and not equal(number, True)
    assert not equal(False, 0) and not equal(0, False) and not equal([False], [0])
    assert difference(True, 1) == "got True (bool), expected 1 (int)"


def test_tuples_and_lists_are_equal_sequences() -> None:
    assert equal((1, 2), [1, 2]) and equal([1, 2], (1, 2)) and equal((1, (2,)), [1, [2]])
    assert not equal((1, 2), [1, 2, 3]) and not equal((1, 2), (2, 1))
    assert difference((1, 2), [1, 2, 3]) == (
        "got (1, 2) (tuple), expected [1, 2, 3] (list): 2 items, expected 3"
    )
    assert not equal("ab", ["a", "b"]) and not equal(b"ab", "ab")


def test_nested_values_name_the_path_of_the_first_difference() -> None:
    got = [1, 2, {"k": 3.5, "j": [True]}]
    expect = [1, 2, {"k": 3, "j": [True]}]
    assert difference(got, expect) == "[2]['k']: got 3.5 (float), expected 3 (int)"
    assert equal([1, 2, {"k": 3.0, "j": (True,)}], expect)
    assert difference([[[1]]], [[[2]]]) == "[0][0][0]: got 1 (int), expected 2 (int)"
    assert difference({"a": 1}, {"a": 1, "b": 2}) == "missing key 'b'"
    assert difference({"a": 1, "c": 2}, {"a": 1}) == "unexpected key 'c'"
    assert equal({"x": [0.1 + 0.2]}, {"x": [0.3]})
    assert equal({"x": [1.05]}, {"x": [1.0]}, tol=0.1)


def test_dict_keys_pair_under_the_rule_and_yaml_string_keys_stand_for_numbers() -> None:
    assert equal({1: "a"}, {1.0: "a"}) and not equal({True: "a"}, {1: "a"})
    assert equal({(1, 2): 0}, {(1, 2): 0}) and not equal({(1, 2): 0}, {(2, 1): 0})
    # YAML writes only string keys: "1" in expect stands for 1 in got, never the reverse.
    assert equal({1: "a", None: 2, 2.5: 3}, {"1": "a", "null": 2, "2.5": 3})
    assert equal({True: 3}, {"true": 3}) and not equal({True: 3}, {"1": 3})
    assert not equal({"1": "a"}, {1: "a"})
    assert not equal({1: "a", "1": "b"}, {"1": "a"})  # one key of expect pairs once
    assert equal({1: "a", "1": "b"}, {1: "a", "1": "b"})


def test_sets_compare_as_sets_never_as_sequences() -> None:
    assert equal({1, 2}, {2, 1}) and equal(frozenset({1, 2}), {1, 2}) and equal({1.0}, {1})
    assert not equal({True}, {1}) and not equal({1, 2}, [1, 2]) and not equal([1, 2], {1, 2})
    assert equal({NAN}, {NAN})
    assert "extra 3" in (difference({1, 3}, {1, 2}) or "")
    assert "missing 2" in (difference({1, 3}, {1, 2}) or "")


def test_none_and_strings() -> None:
    assert equal(None, None) and not equal(None, 0) and not equal(None, "None")
    assert not equal([None], []) and equal("é", "é") and not equal("a", "A")


class _Always(int):
    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = int.__hash__


def test_values_of_other_types_are_never_equal_and_never_called() -> None:
    assert not equal(_Always(3), 3) and not equal([_Always(3)], [3])
    assert not equal(3, _Always(3)) and not equal(object(), object())
    assert "not plain data" in (difference(_Always(3), 3) or "")


def test_nesting_deeper_than_the_bound_is_a_difference_not_a_crash() -> None:
    deep: Any = []
    for _ in range(1000):
        deep = [deep]
    assert "nested more than" in (difference(deep, deep) or "")


@pytest.mark.parametrize(
    "value",
    [
        (1, [2, (3, 4.5)]),
        {"a": (1, 2), 3: {4}, (5, 6): frozenset({7}), None: b"\x00\xff"},
        [NAN, INF, -INF, -0.0, 10**400, -(10**400), True, None, ""],
        set(),
    ],
)
def test_values_crossing_the_sandbox_as_plain_data_stay_equal(value: Any) -> None:
    import json

    text = json.dumps(plain.encode_plain(value), allow_nan=False)
    back = plain.decode_plain(json.loads(text))
    assert equal(back, value) and type(back) is type(value)
    assert repr(back) == repr(value) or any(isinstance(v, float) and math.isnan(v) for v in value)


@pytest.mark.parametrize(
    "data",
    [
        {"a": 1},  # an object that is not a tag
        {"$": "evil", "v": []},
        {"$": "set", "v": [[1]]},  # an unhashable set element
        {"$": "dict", "v": [[1]]},
        {"$": "float", "v": "1e999999"},
    ],
)
def test_decoding_refuses_anything_but_the_tagged_form(data: Any) -> None:
    with pytest.raises(ValueError, match="not plain data"):
        plain.decode_plain(data)


def test_decoding_is_bounded_in_depth() -> None:
    data: Any = 1
    for _ in range(plain.PLAIN_DEPTH + 5):
        data = [data]
    with pytest.raises(ValueError, match="levels deep"):
        plain.decode_plain(data)


def test_every_correct_decision_uses_the_one_rule() -> None:
    import importlib.util
    from pathlib import Path

    from pytest_carbon.sandbox import measure

    path = Path(__file__).resolve().parent.parent / "tools" / "check_suite.py"
    spec = importlib.util.spec_from_file_location("check_suite_for_equality", path)
    assert spec is not None and spec.loader is not None
    check_suite = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = check_suite  # its dataclasses look their module up
    spec.loader.exec_module(check_suite)
    pairs: list[tuple[Any, Any, float | None]] = [
        (float(10**18) + 2.4e6, 10**18, None),
        (True, 1, None),
        ((1, 2), [1, 2], None),
        (0.1 + 0.2, 0.3, None),
        (1.05, 1.0, 0.1),
        (3.0001, 3, 0.01),
        (NAN, NAN, None),
        ({1: [2.0]}, {"1": [2]}, None),
    ]
    for got, expect, tol in pairs:
        want = equal(got, expect, tol=tol)
        assert check_suite.same(got, expect, tol) is want, (got, expect)
        assert measure.same(got, expect, tol or 0.0) is want, (got, expect)
    # Judgement left the sandbox's process: no module of the child compares values.
    for module in (child_bench, child_verify, child_worker, plain):
        assert not hasattr(module, "matches"), module.__name__
