"""The one rule for "equal": every verdict on a candidate's answer uses it.

Verification (a case's ``expect``), measurement (each measured call against the
reference's result) and ``tools/check_suite.py`` all call :func:`equal`. The values are
plain data decoded in pytest's process (``decode_plain`` in ``sandbox/child/plain.py``, or
YAML), so only the interpreter's own types reach this module; a value of any other type,
a subclass of a built-in type included, is never equal to anything and none of its
methods is called (``type(x) is ...`` tests only).

The rule, for ``equal(got, expect, tol=...)``:

* **bool is not a number.** ``True`` equals only ``True``; never ``1`` or ``1.0``.
* **int and float.** Two ints are equal when ``==``. An int and a float are equal only
  when the float is exactly that integer (``3 == 3.0``; ``3`` and ``3.0000001`` differ,
  and so do ``10**18`` and ``1e18 + 2.4e6``): the tolerance never applies to an int,
  so an int task cannot be answered with an approximate float.
* **Two floats** are equal when ``math.isclose(got, expect, rel_tol=1e-9, abs_tol=tol)``
  (``tol`` defaults to 0): a relative 1e-9 absorbs the last-bit differences of two
  correct computations (another summation order); the task's ``tol`` is absolute.
  ``NaN`` equals ``NaN`` (a task whose answer is NaN can be written); ``inf`` equals only
  ``inf`` of the same sign; ``-0.0`` equals ``0.0`` (and ``0``).
* **Sequences.** A list and a tuple are both sequences: equal when of the same length
  with equal items, in order. The YAML contract cannot write a tuple, so an ``expect``
  list must accept a tuple answer; a task for which the type matters checks it in its
  ``check`` (which sees tuples as tuples: the plain encoding preserves them).
* **Sets** (``set`` and ``frozenset`` alike) equal sets with the same elements, under
  this rule without the tolerance; a set never equals a sequence (it has no order).
* **Dicts** are equal when their keys pair up one to one and the paired values are
  equal. Keys pair under this rule without the tolerance (``1`` and ``1.0`` pair,
  ``True`` and ``1`` do not). YAML mapping keys are always strings, so a string key of
  ``expect`` also pairs with a number, bool or None key of ``got`` spelled that way in
  JSON (``"1"`` with ``1``, ``"true"`` with ``True``); never the other way round.
* ``None``, ``str`` and ``bytes`` equal only the same value of the same type.

:func:`difference` says where the first difference is, as a path from the top
(``[2]['k']: got 3.5 (float), expected 3 (int)``); :func:`equal` is ``difference(...)
is None``. Nesting deeper than :data:`MAX_DEPTH` is a difference.
"""

from __future__ import annotations

import json
import math
from collections.abc import Hashable
from typing import Any

#: Deeper values are not compared (a difference): decoded values are bounded anyway.
MAX_DEPTH = 400
#: Relative tolerance between two floats, always applied.
REL_TOL = 1e-9
#: Longest repr of a value in a difference text.
SHOWN_CHARS = 80

_SEQ = (list, tuple)
_SET = (set, frozenset)
_PLAIN = (type(None), bool, int, float, str, bytes, list, tuple, dict, set, frozenset)


def equal(got: object, expect: object, *, tol: float | None = None) -> bool:
    """Whether ``got`` equals ``expect`` under the one rule (see the module docstring)."""
    return difference(got, expect, tol=tol) is None


def difference(got: object, expect: object, *, tol: float | None = None) -> str | None:
    """None when ``got`` equals ``expect``; else the path and values of the first
    difference, e.g. ``[2]['k']: got 3.5 (float), expected 3 (int)``."""
    if tol is not None:
        if type(tol) not in (int, float) or not math.isfinite(tol) or tol < 0:
            raise ValueError(f"tol must be a finite number >= 0, not {tol!r}")
        tol = float(tol)
    return _diff(got, expect, tol or 0.0, "", 0)


def _shown(value: object) -> str:
    if type(value) not in _PLAIN:
        return f"<{_type_name(value)}>"
    try:
        text = repr(value)
    except (RecursionError, ValueError):  # too deep, or an int too long for decimal
        text = f"<a deeply nested {type(value).__name__}>"
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 3] + "..."


def _type_name(value: object) -> str:
    cls = type(value)
    if cls in _PLAIN:
        return cls.__name__
    return f"{cls.__module__}.{cls.__qualname__}"


def _got_expected(path: str, got: object, expect: object, note: str = "") -> str:
    where = f"{path}: " if path else ""
    return (
        f"{where}got {_shown(got)} ({_type_name(got)}), "
        f"expected {_shown(expect)} ({_type_name(expect)}){note}"
    )


def _diff(got: object, expect: object, tol: float, path: str, depth: int) -> str | None:
    if depth > MAX_DEPTH:
        return f"{path}: nested more than {MAX_DEPTH} levels deep, not compared"
    g, e = type(got), type(expect)
    if g not in _PLAIN:
        return f"{path + ': ' if path else ''}got a {_type_name(got)}, not plain data"
    if e not in _PLAIN:
        return f"{path + ': ' if path else ''}expected a {_type_name(expect)}, not plain data"
    if g is bool or e is bool:
        return None if g is e and got == expect else _got_expected(path, got, expect)
    if g in (int, float) and e in (int, float):
        return None if _numbers_equal(got, expect, tol) else _got_expected(path, got, expect)  # type: ignore[arg-type]
    if g in _SEQ and e in _SEQ:
        return _diff_seq(got, expect, tol, path, depth)  # type: ignore[arg-type]
    if g in _SET and e in _SET:
        return _diff_set(got, expect, path)  # type: ignore[arg-type]
    if g is dict and e is dict:
        return _diff_dict(got, expect, tol, path, depth)  # type: ignore[arg-type]
    if g is e and g in (type(None), str, bytes):
        return None if got == expect else _got_expected(path, got, expect)
    return _got_expected(path, got, expect)


def _numbers_equal(got: int | float, expect: int | float, tol: float) -> bool:
    if type(got) is int or type(expect) is int:
        # Python compares an int with a float exactly (no rounding of the int).
        return got == expect
    if math.isnan(got) and math.isnan(expect):
        return True
    return math.isclose(got, expect, rel_tol=REL_TOL, abs_tol=tol)


def _diff_seq(
    got: list[Any] | tuple[Any, ...],
    expect: list[Any] | tuple[Any, ...],
    tol: float,
    path: str,
    depth: int,
) -> str | None:
    if len(got) != len(expect):
        note = f": {len(got)} items, expected {len(expect)}"
        return _got_expected(path, got, expect, note)
    for i, (gv, ev) in enumerate(zip(got, expect, strict=True)):
        found = _diff(gv, ev, tol, f"{path}[{i}]", depth + 1)
        if found is not None:
            return found
    return None


def _canon(value: object, depth: int = 0) -> Hashable:
    """A hashable stand-in for a set element or dict key, equal exactly when the rule
    (without tolerance) says the values are equal. ValueError for anything else."""
    if depth > MAX_DEPTH:
        raise ValueError("nested too deep")
    t = type(value)
    if value is None:
        return ("none",)
    if t is bool:
        return ("bool", value)
    if t is int:
        return ("num", value)
    if t is float:
        # 1.0 == 1 and hash(1.0) == hash(1): an integral float pairs with its int.
        return ("nan",) if math.isnan(value) else ("num", value)  # type: ignore[arg-type]
    if t is str or t is bytes:
        return (t.__name__, value)
    if t is tuple:
        return ("seq", tuple(_canon(v, depth + 1) for v in value))  # type: ignore[attr-defined]
    if t is frozenset:
        return ("set", frozenset(_canon(v, depth + 1) for v in value))  # type: ignore[attr-defined]
    raise ValueError(f"a {_type_name(value)} cannot be compared as a set element or key")


def _diff_set(
    got: set[Any] | frozenset[Any], expect: set[Any] | frozenset[Any], path: str
) -> str | None:
    try:
        g = {_canon(v): v for v in got}
        e = {_canon(v): v for v in expect}
    except ValueError as exc:
        return f"{path + ': ' if path else ''}{exc}"
    if len(g) == len(got) and len(e) == len(expect) and g.keys() == e.keys():
        return None
    extra = [_shown(g[k]) for k in g.keys() - e.keys()][:3]
    missing = [_shown(e[k]) for k in e.keys() - g.keys()][:3]
    note = (f"; extra {', '.join(extra)}" if extra else "") + (
        f"; missing {', '.join(missing)}" if missing else ""
    )
    return _got_expected(path, got, expect, note)


def _diff_dict(
    got: dict[Any, Any], expect: dict[Any, Any], tol: float, path: str, depth: int
) -> str | None:
    try:
        by_canon = {_canon(k): k for k in expect}
        pairs: list[tuple[Any, Any]] = []
        taken: set[Hashable] = set()
        for gk in got:
            c = _canon(gk)
            if c not in by_canon and (gk is None or type(gk) in (bool, int, float)):
                # YAML writes only string keys: "1" in expect stands for 1 in got.
                spelled = ("str", json.dumps(gk))
                if spelled in by_canon and spelled not in taken:
                    c = spelled
            if c not in by_canon or c in taken:
                return f"{path + ': ' if path else ''}unexpected key {_shown(gk)}"
            taken.add(c)
            pairs.append((gk, by_canon[c]))
    except ValueError as exc:
        return f"{path + ': ' if path else ''}{exc}"
    missing = [k for c, k in by_canon.items() if c not in taken]
    if missing:
        return f"{path + ': ' if path else ''}missing key {_shown(missing[0])}"
    for gk, ek in pairs:
        found = _diff(got[gk], expect[ek], tol, f"{path}[{_shown(gk)}]", depth + 1)
        if found is not None:
            return found
    return None
