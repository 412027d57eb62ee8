"""Read and strictly validate prompt-suite YAML files (schema ``pytest-carbon/prompt/1``).

Every error names the file, the line and the key, and says what was expected, e.g.
``prompts/x.yaml:12: key 'workload.min_time_s': expected a number > 0, got 'fast'``.

PyYAML's safe loader is used at the node level (``compose``) so each value keeps its line.
Custom tags, anchors and aliases are refused: a prompt file is data, and an alias or merge
key makes "which line set this value" ambiguous.

Nesting is bounded (:data:`MAX_YAML_DEPTH`), checked on the parser's events before any
node is built: a composer and a converter that recurse once per level would otherwise
raise ``RecursionError`` on a 600-level list (or crash the interpreter, in C, on a far
deeper one), and that is no error with a file and a line. Values may nest
:data:`~pytest_carbon.sandbox.wire_limits.MAX_DATA_DEPTH` deep, what the sandbox's
messages carry back.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_carbon.sandbox.wire_limits import MAX_DATA_DEPTH

SCHEMA = "pytest-carbon/prompt/1"
#: Task ids and variant names: they appear in pytest node ids and file names.
ID_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")
MARK_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_MIN_TIME_S = 0.5
#: Deepest nesting of a prompt file: a value of MAX_DATA_DEPTH levels under the deepest
#: place the schema has for one (``tasks[i].workload.calls[j].args[k]``: 7 levels).
MAX_YAML_DEPTH = MAX_DATA_DEPTH + 7

# The standard tags the safe loader resolves plain YAML to; anything else is a custom tag.
_STD = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_STD + t for t in ("str", "int", "float", "bool", "null")}


class SpecError(Exception):
    """A prompt file is invalid. ``line`` is 1-based (None when unknown)."""

    def __init__(self, path: str | Path, line: int | None, key: str | None, message: str) -> None:
        self.path = str(path)
        self.line = line
        self.key = key
        self.message = message
        where = f"{self.path}:{line}" if line else self.path
        what = f" key '{key}':" if key else ""
        super().__init__(f"{where}:{what} {message}")


@dataclass(frozen=True)
class Call:
    """One workload call: ``entry_point(*args, **kwargs)``, arguments as plain data."""

    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Workload:
    """What is measured: every call of ``calls`` in turn, repeated until ``min_time_s``.

    ``calls`` always holds at least one call: the single ``args``/``kwargs`` form of the
    YAML is parsed into a one-call tuple, so consumers read ``calls`` only. Several distinct
    inputs keep an answer from serving a later call from what it remembered of an earlier
    one (a cache or a module-level dict).
    """

    calls: tuple[Call, ...] = field(default_factory=lambda: (Call(),))
    min_time_s: float = DEFAULT_MIN_TIME_S
    #: Python source defining ``generate(seed) -> {"args": [...], "kwargs": {...}}``:
    #: suite code, run in pytest's process only, giving each measured round fresh
    #: inputs (see :func:`pytest_carbon.sandbox.measure.generator`). ``calls`` then holds
    #: the inputs of seeds 0-5, for tools that read a fixed list.
    generate: str | None = None


@dataclass(frozen=True)
class GradedReference:
    """One of a task's graded references (``references:``): its code and its efficiency
    score on the benchmark's scale (higher: faster). See :mod:`pytest_carbon.compare.graded`."""

    code: str
    score: float


@dataclass(frozen=True, eq=False)
class Task:
    """One validated task. ``line`` is the 1-based line where the task starts."""

    id: str
    prompt: str
    entry_point: str
    reference: str
    tests: tuple[Mapping[str, Any], ...]
    workload: Workload
    check: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    models: tuple[str, ...] | None = None
    samples: int = 1
    marks: tuple[str, ...] = ()
    variants: Mapping[str, str] = field(default_factory=dict)
    #: model name -> (active, total) parameters in billions (see footprint.py).
    model_params: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    description: str | None = None
    source: str | None = None
    path: str = ""
    line: int = 1
    #: Graded references, slow to fast (empty: the task has one reference only).
    references: tuple[GradedReference, ...] = ()
    #: ``function`` (an entry point called with arguments) or ``program`` (stdin/stdout).
    kind: str = "function"
    #: The language the model is asked for (programs: see sandbox/languages.py).
    language: str = "python"
    #: A program task's trusted ``checker``: Python defining ``check(stdin, stdout)``.
    checker: str | None = None
    #: The reference's language, where it differs from ``language``.
    reference_language: str | None = None
    #: Variant name -> its language, where it differs from ``language``.
    variant_languages: Mapping[str, str] = field(default_factory=dict)

    def language_of(self, model: str) -> str:
        """The language of ``model``'s code: the reference's, a variant's, else the task's."""
        from pytest_carbon.prompts.llm import REFERENCE, VARIANT_PREFIX

        if model == REFERENCE:
            return self.reference_language or self.language
        if model.startswith(VARIANT_PREFIX):
            return self.variant_languages.get(model[len(VARIANT_PREFIX) :], self.language)
        return self.language


# -- node helpers ------------------------------------------------------------------------


class _Ctx:
    def __init__(self, path: str | Path, loader: Any) -> None:
        self.path = path
        self.loader = loader

    def err(self, node: Any, key: str | None, message: str) -> SpecError:
        return SpecError(self.path, _line(node), key, message)


def _line(node: Any) -> int | None:
    mark = getattr(node, "start_mark", None)
    return mark.line + 1 if mark is not None else None


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _kind(node: Any) -> str:
    import yaml

    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return repr(node.value) if len(node.value) <= 60 else repr(node.value[:57] + "...")


def _plain(ctx: _Ctx, node: Any, key: str) -> Any:
    """Convert a node to plain Python (str, int, float, bool, None, list, dict)."""
    import yaml

    if isinstance(node, yaml.ScalarNode):
        if node.tag not in _SCALAR_TAGS:
            raise ctx.err(node, key, f"YAML tag {node.tag!r} is not allowed (plain data only)")
        return ctx.loader.construct_object(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        if node.tag != _STD + "seq":
            raise ctx.err(node, key, f"YAML tag {node.tag!r} is not allowed (plain data only)")
        return [_plain(ctx, n, f"{key}[{i}]") for i, n in enumerate(node.value)]
    if isinstance(node, yaml.MappingNode):
        return {k: _plain(ctx, v, f"{key}.{k}") for k, (_, v) in _pairs(ctx, node, key).items()}
    raise ctx.err(node, key, "unsupported YAML node")  # pragma: no cover


def _pairs(ctx: _Ctx, node: Any, key: str | None) -> dict[str, tuple[Any, Any]]:
    """A mapping node's items as {key: (key_node, value_node)}; keys must be unique strings."""
    import yaml

    if not isinstance(node, yaml.MappingNode) or node.tag != _STD + "map":
        raise ctx.err(node, key, f"expected a mapping, got {_kind(node)}")
    out: dict[str, tuple[Any, Any]] = {}
    for knode, vnode in node.value:
        if not isinstance(knode, yaml.ScalarNode) or knode.tag != _STD + "str":
            raise ctx.err(knode, key, f"mapping keys must be plain strings, got {_kind(knode)}")
        name = knode.value
        full = f"{key}.{name}" if key else name
        if name in out:
            first = _line(out[name][0])
            raise ctx.err(knode, full, f"duplicate key (first set on line {first})")
        out[name] = (knode, vnode)
    return out


def _scalar(ctx: _Ctx, node: Any, key: str) -> Any:
    import yaml

    if not isinstance(node, yaml.ScalarNode):
        return _Unset  # callers turn this into an "expected ..." error
    return _plain(ctx, node, key)


class _UnsetType:
    pass


_Unset: Any = _UnsetType()


def _string(ctx: _Ctx, node: Any, key: str, *, nonempty: bool = True) -> str:
    value = _scalar(ctx, node, key)
    if not isinstance(value, str) or (nonempty and not value.strip()):
        got = _kind(node) if value is _Unset else _show(value)
        raise ctx.err(node, key, f"expected a {'non-empty ' if nonempty else ''}string, got {got}")
    return value


def _identifier(ctx: _Ctx, node: Any, key: str, regex: re.Pattern[str], what: str) -> str:
    value = _string(ctx, node, key)
    if not regex.match(value):
        raise ctx.err(node, key, f"expected {what}, got {_show(value)}")
    return value


def _number(ctx: _Ctx, node: Any, key: str) -> float:
    value = _scalar(ctx, node, key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        got = _kind(node) if value is _Unset else _show(value)
        raise ctx.err(node, key, f"expected a number > 0, got {got}")
    if value <= 0:
        raise ctx.err(node, key, f"expected a number > 0, got {_show(value)}")
    return float(value)


def _positive_int(ctx: _Ctx, node: Any, key: str) -> int:
    value = _scalar(ctx, node, key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        got = _kind(node) if value is _Unset else _show(value)
        raise ctx.err(node, key, f"expected an integer >= 1, got {got}")
    return value


def _list_node(ctx: _Ctx, node: Any, key: str) -> list[Any]:
    import yaml

    if not isinstance(node, yaml.SequenceNode):
        raise ctx.err(node, key, f"expected a list, got {_kind(node)}")
    return list(node.value)


# -- the schema --------------------------------------------------------------------------

TASK_KEYS = {
    "id",
    "prompt",
    "entry_point",
    "reference",
    "tests",
    "check",
    "workload",
    "timeout_s",
    "models",
    "samples",
    "marks",
    "variants",
    "model_params",
    "description",
    "source",
    "references",
    "kind",
    "language",
    "checker",
}
REQUIRED = ("prompt", "entry_point", "reference", "tests", "workload")
#: Keys a multi-task file's ``defaults:`` may set (shared by all its tasks).
DEFAULT_KEYS = TASK_KEYS - {
    "id",
    "prompt",
    "entry_point",
    "reference",
    "tests",
    "check",
    "references",
    "checker",
}
TEST_KEYS = {"args", "kwargs", "expect", "tol"}
WORKLOAD_KEYS = {"args", "kwargs", "calls", "min_time_s", "generate"}
CALL_KEYS = {"args", "kwargs"}


def _expected_keys(allowed: set[str]) -> str:
    return ", ".join(sorted(allowed))


def _check_unknown(
    ctx: _Ctx, pairs: dict[str, tuple[Any, Any]], allowed: set[str], prefix: str | None
) -> None:
    for name, (knode, _) in pairs.items():
        if name not in allowed:
            full = f"{prefix}.{name}" if prefix else name
            raise ctx.err(knode, full, f"unknown key; expected one of: {_expected_keys(allowed)}")


def _args(
    ctx: _Ctx, pairs: dict[str, tuple[Any, Any]], prefix: str
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = {}
    if "args" in pairs:
        node = pairs["args"][1]
        args = tuple(
            _plain(ctx, n, f"{prefix}.args[{i}]")
            for i, n in enumerate(_list_node(ctx, node, f"{prefix}.args"))
        )
    if "kwargs" in pairs:
        node = pairs["kwargs"][1]
        kwargs = {
            k: _plain(ctx, v, f"{prefix}.kwargs.{k}")
            for k, (_, v) in _pairs(ctx, node, f"{prefix}.kwargs").items()
        }
        for k, (knode, _) in _pairs(ctx, node, f"{prefix}.kwargs").items():
            if not k.isidentifier():
                raise ctx.err(knode, f"{prefix}.kwargs.{k}", "expected a Python identifier")
    return args, kwargs


def _tests(ctx: _Ctx, node: Any) -> tuple[dict[str, Any], ...]:
    items = _list_node(ctx, node, "tests")
    if not items:
        raise ctx.err(node, "tests", "expected at least one test case, got an empty list")
    out = []
    for i, tnode in enumerate(items):
        key = f"tests[{i}]"
        pairs = _pairs(ctx, tnode, key)
        _check_unknown(ctx, pairs, TEST_KEYS, key)
        if "expect" not in pairs:
            raise ctx.err(tnode, f"{key}.expect", "missing required key (the expected result)")
        args, kwargs = _args(ctx, pairs, key)
        expect = _plain(ctx, pairs["expect"][1], f"{key}.expect")
        case: dict[str, Any] = {"args": list(args), "kwargs": kwargs, "expect": expect}
        if "tol" in pairs:
            tol = _scalar(ctx, pairs["tol"][1], f"{key}.tol")
            if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not tol >= 0:
                raise ctx.err(
                    pairs["tol"][1],
                    f"{key}.tol",
                    f"expected an absolute float tolerance >= 0, got {_kind(pairs['tol'][1])}",
                )
            case["tol"] = float(tol)
        out.append(case)
    return tuple(out)


def _calls(ctx: _Ctx, node: Any) -> tuple[Call, ...]:
    import yaml

    if not isinstance(node, yaml.SequenceNode):
        raise ctx.err(
            node, "workload.calls", f"expected a list of calls {{args, kwargs}}, got {_kind(node)}"
        )
    if not node.value:
        raise ctx.err(node, "workload.calls", "expected at least one call, got an empty list")
    calls: list[Call] = []
    for i, cnode in enumerate(node.value):
        key = f"workload.calls[{i}]"
        pairs = _pairs(ctx, cnode, key)
        _check_unknown(ctx, pairs, CALL_KEYS, key)
        args, kwargs = _args(ctx, pairs, key)
        call = Call(args=list(args), kwargs=kwargs)
        # Equality as Python sees it (1 == 1.0 == True), like a cache keyed on the
        # arguments: a repeated input could be answered from memory, which is what the
        # list of calls is there to prevent.
        for j, earlier in enumerate(calls):
            if earlier == call:
                raise ctx.err(
                    cnode,
                    key,
                    f"same arguments as workload.calls[{j}]; each call must be a distinct "
                    "input, or an answer could serve it from memory",
                )
        calls.append(call)
    return tuple(calls)


def _workload(ctx: _Ctx, node: Any) -> Workload:
    pairs = _pairs(ctx, node, "workload")
    _check_unknown(ctx, pairs, WORKLOAD_KEYS, "workload")
    generate = None
    if "generate" in pairs:
        gnode = pairs["generate"][1]
        generate = _string(ctx, gnode, "workload.generate")
        for other in ("calls", "args", "kwargs"):
            if other in pairs:
                raise ctx.err(
                    pairs[other][0],
                    f"workload.{other}",
                    "not allowed next to 'workload.generate', which gives the inputs",
                )
        from pytest_carbon.sandbox.measure import GENERATED_CALLS, generator

        try:
            make = generator(generate)
            calls = tuple(Call(*make(seed)) for seed in range(GENERATED_CALLS))
        except (ValueError, TypeError) as exc:
            raise ctx.err(gnode, "workload.generate", str(exc)) from None
    elif "calls" in pairs:
        for single in ("args", "kwargs"):
            if single in pairs:
                raise ctx.err(
                    pairs[single][0],
                    f"workload.{single}",
                    "not allowed next to 'workload.calls' (line "
                    f"{_line(pairs['calls'][0])}); give each call its own args and kwargs "
                    "inside 'calls'",
                )
        calls = _calls(ctx, pairs["calls"][1])
    else:
        args, kwargs = _args(ctx, pairs, "workload")
        calls = (Call(args=list(args), kwargs=kwargs),)
    min_time_s = DEFAULT_MIN_TIME_S
    if "min_time_s" in pairs:
        min_time_s = _number(ctx, pairs["min_time_s"][1], "workload.min_time_s")
    return Workload(calls=calls, min_time_s=min_time_s, generate=generate)


def _string_list(
    ctx: _Ctx, node: Any, key: str, regex: re.Pattern[str] | None, what: str
) -> tuple[str, ...]:
    out = []
    for i, n in enumerate(_list_node(ctx, node, key)):
        value = (
            _identifier(ctx, n, f"{key}[{i}]", regex, what)
            if regex
            else _string(ctx, n, f"{key}[{i}]")
        )
        out.append(value)
    return tuple(out)


def parse_params_b(value: Any) -> tuple[float, float] | None:
    """``8`` (dense: active = total), ``"12.9/46.7"`` (active/total) or ``[12.9, 46.7]``.

    Billions of parameters. None when the value is not one of those forms.
    """

    def num(x: Any) -> float | None:
        if isinstance(x, bool):
            return None
        try:
            v = float(x)
        except (TypeError, ValueError):
            return None
        return v if math.isfinite(v) and v > 0 else None

    if isinstance(value, (list, tuple)) and len(value) == 2:
        a, t = num(value[0]), num(value[1])
    elif isinstance(value, str) and "/" in value:
        left, _, right = value.partition("/")
        a, t = num(left.strip()), num(right.strip())
    else:
        a = t = num(value)
    if a is None or t is None or a > t:
        return None
    return (a, t)


def _model_params(ctx: _Ctx, node: Any) -> dict[str, tuple[float, float]]:
    out = {}
    for name, (_, vnode) in _pairs(ctx, node, "model_params").items():
        parsed = parse_params_b(_plain(ctx, vnode, f"model_params.{name}"))
        if parsed is None:
            raise ctx.err(
                vnode,
                f"model_params.{name}",
                "expected active parameters in billions (a number > 0), or "
                f"'ACTIVE/TOTAL' for a mixture of experts, got {_kind(vnode)}",
            )
        out[name] = parsed
    return out


def _variants(ctx: _Ctx, node: Any) -> dict[str, str]:
    out = {}
    for name, (knode, vnode) in _pairs(ctx, node, "variants").items():
        if not ID_RE.match(name):
            raise ctx.err(
                knode,
                f"variants.{name}",
                "expected a variant name of letters, digits, '_', '-' or '.'",
            )
        out[name] = _string(ctx, vnode, f"variants.{name}")
    return out


def _task(
    ctx: _Ctx, node: Any, default_id: str | None, defaults: dict[str, tuple[Any, Any]], prefix: str
) -> Task:
    pairs = _pairs(ctx, node, prefix or None)
    _check_unknown(ctx, pairs, TASK_KEYS | ({"schema"} if not prefix else set()), prefix or None)
    merged = {**defaults, **pairs}

    def key(name: str) -> str:
        return f"{prefix}.{name}" if prefix else name

    kind = _task_kind(ctx, merged, key)
    for name in REQUIRED if kind == "function" else PROGRAM_REQUIRED:
        if name == "reference" and "references" in merged:
            continue  # the fastest graded reference is then the reference
        if name not in merged:
            what = (_PROGRAM_WHAT if kind == "program" else _WHAT).get(name, _WHAT[name])
            raise ctx.err(node, key(name), f"missing required key ({what})")

    if "id" in pairs:
        task_id = _identifier(
            ctx,
            pairs["id"][1],
            key("id"),
            ID_RE,
            "an id of letters, digits, '_', '-' or '.' (at most 100)",
        )
    elif default_id is not None:
        if not ID_RE.match(default_id):
            raise ctx.err(
                node,
                key("id"),
                f"the file name {default_id!r} is not a valid task "
                "id; add an 'id:' of letters, digits, '_', '-' or '.'",
            )
        task_id = default_id
    else:
        raise ctx.err(
            node, key("id"), "missing required key (each task of a 'tasks:' list needs an id)"
        )

    def n(name: str) -> Any:
        return merged[name][1]

    if kind == "program":
        return _program_task(ctx, node, task_id, merged, key)
    for name in ("language", "checker"):
        if name in merged:
            raise ctx.err(merged[name][0], key(name), "only a 'kind: program' task takes this key")
    entry_point = _entry_point(ctx, n("entry_point"), key("entry_point"))
    references: tuple[GradedReference, ...] = ()
    if "references" in merged:
        references = _references(ctx, n("references"), key("references"))
    return Task(
        id=task_id,
        prompt=_string(ctx, n("prompt"), key("prompt")),
        entry_point=entry_point,
        reference=_string(ctx, n("reference"), key("reference"))
        if "reference" in merged
        else references[-1].code,
        tests=_tests(ctx, n("tests")),
        workload=_workload(ctx, n("workload")),
        check=_string(ctx, n("check"), key("check")) if "check" in merged else None,
        variants=_variants(ctx, n("variants")) if "variants" in merged else {},
        references=references,
        **_shared_fields(ctx, node, merged, key),
    )


def _shared_fields(
    ctx: _Ctx, node: Any, merged: dict[str, tuple[Any, Any]], key: Any
) -> dict[str, Any]:
    """The Task fields every kind of task reads alike (models, samples, marks, ...)."""

    def n(name: str) -> Any:
        return merged[name][1]

    models = None
    if "models" in merged:
        models = _string_list(ctx, n("models"), key("models"), None, "a model name")
        if not models:
            raise ctx.err(n("models"), key("models"), "expected at least one model name")
    return {
        "timeout_s": _number(ctx, n("timeout_s"), key("timeout_s"))
        if "timeout_s" in merged
        else DEFAULT_TIMEOUT_S,
        "models": models,
        "samples": _positive_int(ctx, n("samples"), key("samples")) if "samples" in merged else 1,
        "marks": _string_list(ctx, n("marks"), key("marks"), MARK_RE, "a mark name (identifier)")
        if "marks" in merged
        else (),
        "model_params": _model_params(ctx, n("model_params")) if "model_params" in merged else {},
        "description": _string(ctx, n("description"), key("description"), nonempty=False)
        if "description" in merged
        else None,
        "source": _string(ctx, n("source"), key("source"), nonempty=False)
        if "source" in merged
        else None,
        "path": str(ctx.path),
        "line": _line(node) or 1,
    }


# -- entry points: a function or Class.method (issue 22, item 1) -------------------------
def _entry_point(ctx: _Ctx, node: Any, key: str) -> str:
    """``f`` (a function) or ``Class.method`` (the class instantiated afresh, without
    arguments, for every call, then the method called: see ``resolve_entry``)."""
    from pytest_carbon.sandbox.child.worker import entry_point_ok

    entry_point = _string(ctx, node, key)
    if not entry_point_ok(entry_point):
        raise ctx.err(
            node,
            key,
            "expected a Python identifier (a function) or Class.method (a public method "
            f"of a class), got {_show(entry_point)}",
        )
    return entry_point


# -- graded references (issue 22, item 3) ------------------------------------------------
REFERENCE_KEYS = {"code", "score"}


def _references(ctx: _Ctx, node: Any, key: str) -> tuple[GradedReference, ...]:
    """``references: [{code, score}, ...]``, slow to fast: scores strictly increasing,
    each in [0, 100] (the benchmark's efficiency scale, as EvalPerf's)."""
    items = _list_node(ctx, node, key)
    if not items:
        raise ctx.err(node, key, "expected at least one graded reference {code, score}")
    out: list[GradedReference] = []
    for i, rnode in enumerate(items):
        rkey = f"{key}[{i}]"
        pairs = _pairs(ctx, rnode, rkey)
        _check_unknown(ctx, pairs, REFERENCE_KEYS, rkey)
        for name in ("code", "score"):
            if name not in pairs:
                raise ctx.err(rnode, f"{rkey}.{name}", "missing required key")
        code = _string(ctx, pairs["code"][1], f"{rkey}.code")
        snode = pairs["score"][1]
        score = _scalar(ctx, snode, f"{rkey}.score")
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not 0 <= score <= 100:
            got = _kind(snode) if score is _Unset else _show(score)
            raise ctx.err(snode, f"{rkey}.score", f"expected a number from 0 to 100, got {got}")
        if out and not score > out[-1].score:
            raise ctx.err(
                snode,
                f"{rkey}.score",
                f"expected a score above {out[-1].score:g} (references go slow to fast, "
                "scores strictly increasing)",
            )
        out.append(GradedReference(code=code, score=float(score)))
    return tuple(out)


_WHAT = {
    "kind": "function (the default) or program",
    "prompt": "the text sent to the model",
    "entry_point": "the name of the function to test, or Class.method",
    "reference": "a canonical solution",
    "tests": "a list of test cases {args, kwargs, expect}",
    "workload": "what is measured: {calls: [{args, kwargs}, ...] or generate, min_time_s}",
}


# -- programs (kind: program): stdin/stdout, in any of sandbox/languages.py's languages ------

KINDS = ("function", "program")
_PROGRAM_WHAT = {
    "reference": "a canonical program, or {code, language}",
    "tests": "a list of test cases {stdin, expect_stdout}",
    "workload": "what is measured: {stdin: [TEXT, ...], min_time_s}",
}
#: A program task has no entry point: it reads stdin and writes stdout.
PROGRAM_REQUIRED = ("prompt", "reference", "tests", "workload")
PROGRAM_TEST_KEYS = {"stdin", "expect_stdout"}
PROGRAM_WORKLOAD_KEYS = {"stdin", "min_time_s"}
#: A reference or variant given as a mapping: its code and its own language.
CODE_KEYS = {"code", "language"}


def _task_kind(ctx: _Ctx, merged: dict[str, tuple[Any, Any]], key: Any) -> str:
    if "kind" not in merged:
        return "function"
    node = merged["kind"][1]
    kind = _string(ctx, node, key("kind"))
    if kind not in KINDS:
        raise ctx.err(node, key("kind"), f"expected one of {', '.join(KINDS)}, got {_show(kind)}")
    return kind


def _language(ctx: _Ctx, node: Any, key: str) -> str:
    from pytest_carbon.sandbox.languages import LANGUAGES, canonical

    value = _string(ctx, node, key)
    name = canonical(value)
    if name is None:
        raise ctx.err(node, key, f"expected one of {', '.join(LANGUAGES)}, got {_show(value)}")
    return name


def _code_and_language(ctx: _Ctx, node: Any, key: str) -> tuple[str, str | None]:
    """A reference or variant: its code as a string, or ``{code, language}``."""
    import yaml

    if not isinstance(node, yaml.MappingNode):
        return _string(ctx, node, key), None
    pairs = _pairs(ctx, node, key)
    _check_unknown(ctx, pairs, CODE_KEYS, key)
    if "code" not in pairs:
        raise ctx.err(node, f"{key}.code", "missing required key (the program's source)")
    language = (
        _language(ctx, pairs["language"][1], f"{key}.language") if "language" in pairs else None
    )
    return _string(ctx, pairs["code"][1], f"{key}.code"), language


def _program_tests(ctx: _Ctx, node: Any, key: str, checker: bool) -> tuple[dict[str, Any], ...]:
    items = _list_node(ctx, node, key)
    if not items:
        raise ctx.err(node, key, "expected at least one test case, got an empty list")
    out = []
    for i, tnode in enumerate(items):
        k = f"{key}[{i}]"
        pairs = _pairs(ctx, tnode, k)
        _check_unknown(ctx, pairs, PROGRAM_TEST_KEYS, k)
        if "stdin" not in pairs:
            raise ctx.err(tnode, f"{k}.stdin", "missing required key (the program's input)")
        case = {"stdin": _string(ctx, pairs["stdin"][1], f"{k}.stdin", nonempty=False)}
        if "expect_stdout" in pairs:
            case["expect_stdout"] = _string(
                ctx, pairs["expect_stdout"][1], f"{k}.expect_stdout", nonempty=False
            )
        elif not checker:
            raise ctx.err(
                tnode,
                f"{k}.expect_stdout",
                "missing required key (the expected output; optional only with a 'checker')",
            )
        out.append(case)
    return tuple(out)


def _program_workload(ctx: _Ctx, node: Any, key: str) -> Workload:
    import yaml

    pairs = _pairs(ctx, node, key)
    _check_unknown(ctx, pairs, PROGRAM_WORKLOAD_KEYS, key)
    if "stdin" not in pairs:
        raise ctx.err(node, f"{key}.stdin", "missing required key (a list of stdin texts)")
    snode = pairs["stdin"][1]
    texts = (
        [_string(ctx, n, f"{key}.stdin[{i}]") for i, n in enumerate(snode.value)]
        if isinstance(snode, yaml.SequenceNode)
        else [_string(ctx, snode, f"{key}.stdin")]
    )
    if not texts:
        raise ctx.err(snode, f"{key}.stdin", "expected at least one stdin text, got an empty list")
    for i, text in enumerate(texts):
        if text in texts[:i]:
            raise ctx.err(
                snode,
                f"{key}.stdin[{i}]",
                f"same text as {key}.stdin[{texts.index(text)}]; each input must be distinct",
            )
    min_time_s = DEFAULT_MIN_TIME_S
    if "min_time_s" in pairs:
        min_time_s = _number(ctx, pairs["min_time_s"][1], f"{key}.min_time_s")
    return Workload(calls=tuple(Call(args=[t]) for t in texts), min_time_s=min_time_s)


def _program_task(
    ctx: _Ctx, node: Any, task_id: str, merged: dict[str, tuple[Any, Any]], key: Any
) -> Task:
    """A ``kind: program`` task: the stdin/stdout schema (see docs/writing-prompt-suites.md)."""

    def n(name: str) -> Any:
        return merged[name][1]

    why = {
        "entry_point": "entry point",
        "check": "'check' (use 'checker')",
        "references": "graded references (they are for function tasks)",
    }
    for name, what in why.items():
        if name in merged:
            raise ctx.err(
                merged[name][0],
                key(name),
                "a 'kind: program' task reads stdin and writes stdout: no " + what,
            )
    language = _language(ctx, n("language"), key("language")) if "language" in merged else "python"
    checker = _string(ctx, n("checker"), key("checker")) if "checker" in merged else None
    if checker is not None:
        try:
            compile(checker, "<checker>", "exec")
        except SyntaxError as exc:
            raise ctx.err(n("checker"), key("checker"), f"does not compile: {exc.msg}") from None
    reference, ref_language = _code_and_language(ctx, n("reference"), key("reference"))
    variants: dict[str, str] = {}
    variant_languages: dict[str, str] = {}
    if "variants" in merged:
        for name, (knode, vnode) in _pairs(ctx, n("variants"), key("variants")).items():
            if not ID_RE.match(name):
                raise ctx.err(knode, key(f"variants.{name}"), "expected a variant name")
            code, vlang = _code_and_language(ctx, vnode, key(f"variants.{name}"))
            variants[name] = code
            if vlang is not None and vlang != language:
                variant_languages[name] = vlang
    return Task(
        id=task_id,
        prompt=_string(ctx, n("prompt"), key("prompt")),
        entry_point="",
        reference=reference,
        tests=_program_tests(ctx, n("tests"), key("tests"), checker is not None),
        workload=_program_workload(ctx, n("workload"), key("workload")),
        variants=variants,
        **_shared_fields(ctx, node, merged, key),
        kind="program",
        language=language,
        checker=checker,
        reference_language=ref_language if ref_language not in (None, language) else None,
        variant_languages=variant_languages,
    )


def _refuse_tags(ctx: _Ctx, node: Any) -> None:
    """Custom or Python tags anywhere (``!!python/object``, ``!foo``) are refused up front."""
    import yaml

    allowed = _SCALAR_TAGS | {_STD + "seq", _STD + "map", _STD + "timestamp"}
    stack = [node]
    while stack:
        n = stack.pop()
        if n.tag not in allowed:
            raise ctx.err(n, None, f"YAML tag {n.tag!r} is not allowed (plain data only)")
        if isinstance(n, yaml.SequenceNode):
            stack.extend(n.value)
        elif isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                stack.extend((k, v))


def _fast_loader() -> Any:
    """libyaml's safe loader when PyYAML was built with it: the same nodes and line marks,
    several times faster on the large text blocks of a workload's calls."""
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


#: Keys whose values are plain data of any shape (test values, call arguments).
_DATA_KEYS = frozenset({"expect", "args", "kwargs"})


class _Open:
    """A collection being parsed: its key path, and where plain data started in it."""

    __slots__ = ("data_depth", "data_key", "index", "key", "mapping", "pending")

    def __init__(self, mapping: bool, key: str, data_key: str, data_depth: int) -> None:
        self.mapping = mapping
        self.key = key
        self.index = 0  # next item of a list
        self.pending: str | None = None  # a mapping's key whose value comes next
        self.data_key = data_key  # the data field this collection lies in ("" if none)
        self.data_depth = data_depth  # its level inside that field (1: the field's value)

    def next_key(self) -> str:
        """The key path of the next item, and move past it."""
        if not self.mapping:
            self.index += 1
            return f"{self.key}[{self.index - 1}]"
        name, self.pending = self.pending or "?", None
        return f"{self.key}.{name}" if self.key else name


def _scan_events(path: str | Path, text: str) -> None:
    """Refuse anchors and aliases, and nesting deeper than :data:`MAX_DATA_DEPTH` in a
    value (``expect``, ``args``, ``kwargs``) or :data:`MAX_YAML_DEPTH` anywhere, from the
    parser's events (no recursion, no node built yet), naming the line and the key."""
    import yaml

    stack: list[_Open] = []
    for event in yaml.parse(text, Loader=_fast_loader()):
        line = event.start_mark.line + 1 if event.start_mark is not None else None
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise SpecError(
                path,
                line,
                None,
                "YAML anchors and aliases are not allowed in prompt files; "
                "repeat the value, or use a 'tasks:' file with 'defaults:'",
            )
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            parent = stack[-1] if stack else None
            key = parent.next_key() if parent else ""
            data_key, depth = "", 0
            if parent is not None and parent.data_depth:
                data_key, depth = parent.data_key, parent.data_depth + 1
            elif parent is not None and parent.mapping and key.rsplit(".", 1)[-1] in _DATA_KEYS:
                data_key, depth = key, 1
            if depth > MAX_DATA_DEPTH:
                raise SpecError(
                    path,
                    line,
                    data_key,
                    f"nested deeper than {MAX_DATA_DEPTH} levels (MAX_DATA_DEPTH)",
                )
            if len(stack) >= MAX_YAML_DEPTH:
                raise SpecError(
                    path,
                    line,
                    key if len(key) <= 80 else key[:77] + "...",
                    f"the file nests deeper than {MAX_YAML_DEPTH} levels (MAX_YAML_DEPTH)",
                )
            stack.append(_Open(isinstance(event, yaml.MappingStartEvent), key, data_key, depth))
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            stack.pop()
        elif isinstance(event, yaml.ScalarEvent) and stack:
            top = stack[-1]
            if top.mapping and top.pending is None:
                top.pending = event.value
            else:
                top.next_key()


def loads(text: str, path: str | Path = "<string>") -> list[Task]:
    """Parse and validate a prompt file's text. Raises SpecError."""
    import yaml

    try:
        _scan_events(path, text)
        loader = _fast_loader()(text)
        try:
            root = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = " ".join(p for p in (exc.context, exc.problem) if p) or str(exc)
        raise SpecError(path, line, None, f"invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise SpecError(path, None, None, f"invalid YAML: {exc}") from None
    if root is None:
        raise SpecError(path, 1, None, "empty file; expected a task (a mapping) or 'tasks:'")
    ctx = _Ctx(path, yaml.SafeLoader(""))
    _refuse_tags(ctx, root)
    pairs = _pairs(ctx, root, None)
    if "schema" in pairs:
        schema = _string(ctx, pairs["schema"][1], "schema")
        if schema != SCHEMA:
            raise ctx.err(pairs["schema"][1], "schema", f"expected {SCHEMA!r}, got {schema!r}")
    if "tasks" not in pairs:
        return [_task(ctx, root, Path(path).stem, {}, "")]

    _check_unknown(ctx, pairs, {"schema", "defaults", "tasks"}, None)
    defaults: dict[str, tuple[Any, Any]] = {}
    if "defaults" in pairs:
        defaults = _pairs(ctx, pairs["defaults"][1], "defaults")
        _check_unknown(ctx, defaults, DEFAULT_KEYS, "defaults")
    task_nodes = _list_node(ctx, pairs["tasks"][1], "tasks")
    if not task_nodes:
        raise ctx.err(pairs["tasks"][1], "tasks", "expected at least one task, got an empty list")
    tasks: list[Task] = []
    seen: dict[str, int] = {}
    for i, tnode in enumerate(task_nodes):
        task = _task(ctx, tnode, None, defaults, f"tasks[{i}]")
        if task.id in seen:
            id_node = _pairs(ctx, tnode, None)["id"][1]
            raise ctx.err(
                id_node,
                f"tasks[{i}].id",
                f"duplicate id {task.id!r} (first used on line {seen[task.id]})",
            )
        seen[task.id] = task.line
        tasks.append(task)
    return tasks


def load(path: str | Path) -> list[Task]:
    """Read and validate one prompt file. Raises SpecError (also for unreadable files)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(p, None, None, f"cannot read the file: {exc}") from None
    return loads(text, p)
