"""Plain data: how arguments and results cross between processes.

Arguments and results cross as plain data, in a tagged JSON form that preserves tuples,
sets, bytes, non-string dict keys and non-finite floats::

  None, bool, int (up to PLAIN_INT_BITS), finite float, str  ->  themselves
  list                                                       ->  [items]
  {"$": "tuple" | "set" | "frozenset", "v": [items]}
  {"$": "dict", "v": [[key, value], ...]}
  {"$": "float", "v": "nan" | "inf" | "-inf"}, {"$": "int", "v": hex}, {"$": "bytes", "v": hex}
Only exact built-in types are encoded: a subclass (an int whose ``__eq__`` is always
true) raises NotPlain, and no method of the candidate's runs during the encoding.
pytest's process decodes with the same functions
(``pytest_carbon.sandbox.child.plain``: this module imports nothing of the package).
"""

from __future__ import annotations

import math
from typing import Any, cast

#: Longest repr of a value sent back to the parent.
REPR_CHARS = 2000


class NotPlain(TypeError):
    """A value is not plain data; the message names it as a noun phrase ("a subclass of
    int (m.Fake)"), to follow "returned"."""


#: Deepest nesting encoded or decoded.
PLAIN_DEPTH = 100
#: Larger ints are tagged as hex (JSON's decimal form is limited in digits).
PLAIN_INT_BITS = 1024
_SCALARS = (type(None), bool, int, float, str)
_BASES = (bool, int, float, str, bytes, list, tuple, dict, set, frozenset)
PLAIN_TYPES = "exactly None, bool, int, float, str, bytes, list, tuple, dict, set or frozenset"
_TAGGED_SEQUENCES = {"tuple": tuple, "set": set, "frozenset": frozenset}
_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _type_name(value: object) -> str:
    cls = type(value)
    return f"{cls.__module__}.{cls.__qualname__}"


def encode_plain(value: object, _depth: int = 0) -> object:
    """``value`` in the tagged JSON form above; NotPlain for anything else. Only
    ``type(x) is ...`` tests and the built-in types' own methods run here."""
    if _depth > PLAIN_DEPTH:
        raise NotPlain(f"a value nested more than {PLAIN_DEPTH} levels deep")
    cls = type(value)
    if value is None or cls is bool or cls is str:
        return value
    if cls is int:
        if cast(int, value).bit_length() <= PLAIN_INT_BITS:
            return value
        return {"$": "int", "v": format(cast(int, value), "x")}
    if cls is float:
        v = cast(float, value)
        return v if math.isfinite(v) else {"$": "float", "v": repr(v)}
    if cls is list:
        return [encode_plain(v, _depth + 1) for v in cast("list[Any]", value)]
    if cls is tuple or cls is set or cls is frozenset:
        items = [encode_plain(v, _depth + 1) for v in cast("list[Any]", value)]
        return {"$": cls.__name__, "v": items}
    if cls is dict:
        pairs = []
        for k, v in cast("dict[Any, Any]", value).items():
            if type(k) not in (*_SCALARS, bytes, tuple, frozenset):
                raise NotPlain(f"a dict with a key of type {_type_name(k)}")
            pairs.append([encode_plain(k, _depth + 1), encode_plain(v, _depth + 1)])
        return {"$": "dict", "v": pairs}
    if cls is bytes:
        return {"$": "bytes", "v": cast(bytes, value).hex()}
    for base in _BASES:
        if isinstance(value, base):
            raise NotPlain(f"a subclass of {base.__name__} ({_type_name(value)})")
    raise NotPlain(f"a {_type_name(value)}")


def decode_plain(data: object, _depth: int = 0) -> Any:
    """The value that :func:`encode_plain` encoded; ValueError for anything that is not
    that form (an unknown tag, a stray object, an unhashable key, nesting deeper than
    :data:`PLAIN_DEPTH`)."""
    if _depth > PLAIN_DEPTH:
        raise ValueError(f"plain data nested more than {PLAIN_DEPTH} levels deep")
    cls = type(data)
    if data is None or cls is bool or cls is str or cls is int or cls is float:
        return data
    if cls is list:
        return [decode_plain(v, _depth + 1) for v in cast("list[Any]", data)]
    if cls is not dict or set(cast("dict[str, Any]", data)) != {"$", "v"}:
        raise ValueError(f"not plain data: a JSON {cls.__name__} outside the tagged form")
    tag, v = cast("dict[str, Any]", data)["$"], cast("dict[str, Any]", data)["v"]
    try:
        if tag in _TAGGED_SEQUENCES and type(v) is list:
            items = [decode_plain(x, _depth + 1) for x in v]
            return _TAGGED_SEQUENCES[tag](items)
        if tag == "dict" and type(v) is list:
            out = {}
            for pair in v:
                if type(pair) is not list or len(pair) != 2:
                    raise ValueError("not plain data: a dict entry is not a [key, value] pair")
                out[decode_plain(pair[0], _depth + 1)] = decode_plain(pair[1], _depth + 1)
            return out
        if tag == "float" and v in _NON_FINITE:
            return _NON_FINITE[v]
        if tag == "int" and type(v) is str:
            return int(v, 16)
        if tag == "bytes" and type(v) is str:
            return bytes.fromhex(v)
    except TypeError as exc:  # an unhashable key or set element
        raise ValueError(f"not plain data: {exc}") from None
    raise ValueError(f"not plain data: unknown tag {tag!r}")


def short_repr(value: object) -> str:
    try:
        text = repr(value)
    except Exception as exc:  # a broken __repr__ must not hide the verdict
        text = f"<unrepresentable {type(value).__name__}: {exc!r}>"
    if len(text) > REPR_CHARS:
        text = text[:REPR_CHARS] + f"... [{len(text) - REPR_CHARS} more characters]"
    return text
