"""Shared pieces of every importer: the task record, case extraction, and the YAML writer.

A new source is one small module exposing ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``read(args) -> Iterable[ImportedTask]``; :func:`write_tasks` does the rest.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA = "pytest-carbon/prompt/1"
#: Default repetition target for imported workloads: public benchmark inputs run in
#: microseconds, so the meter repeats them until this much time has been measured.
DEFAULT_MIN_TIME_S = 0.05
#: Absolute tolerance given to float results recorded from a reference run.
RECORDED_FLOAT_TOL = 1e-6


class ImporterError(Exception):
    """A source could not be read or converted (the message says why and what to do)."""


@dataclass
class ImportedTask:
    """One task in the prompt YAML contract, before it is written."""

    id: str
    prompt: str
    entry_point: str
    reference: str
    tests: list[dict[str, Any]]
    check: str | None = None
    #: ``[{"args": [...], "kwargs": {...}}, ...]``: every distinct test input, in turn.
    workload_calls: list[dict[str, Any]] = field(default_factory=list)
    min_time_s: float = DEFAULT_MIN_TIME_S
    timeout_s: float = 30.0
    source: str | None = None
    #: Graded references, slow to fast: ``[{"code": ..., "score": ...}, ...]`` (the last
    #: one is then the reference). Every one is vetted like the reference.
    references: list[dict[str, Any]] = field(default_factory=list)
    #: Inputs whose cases are recorded from the reference in the sandbox when ``tests``
    #: is empty (``[args, ...]``, each a list of positional arguments).
    test_inputs: list[list[Any]] = field(default_factory=list)
    #: Suite code run in the sandbox at import (never here) as a check against the
    #: reference: the calls it makes become the workload (a benchmark's input generator).
    workload_check: str | None = None
    #: Most workload calls kept from ``workload_check`` or heavy inputs.
    workload_limit: int = 8
    #: Absolute tolerance of float results recorded from ``test_inputs``.
    test_tol: float = 0.0

    def as_mapping(self) -> dict[str, Any]:
        # The schema key lets `pytest DIR` collect the file wherever DIR is (prompts/paths.py).
        data: dict[str, Any] = {"schema": SCHEMA, "id": self.id}
        if self.source:
            data["source"] = self.source
        data |= {"prompt": self.prompt, "entry_point": self.entry_point}
        if self.references:
            # Slow to fast; the fastest is the task's reference (the spec's default).
            data["references"] = [{"score": r["score"], "code": r["code"]} for r in self.references]
            if self.reference != self.references[-1]["code"]:
                data["reference"] = self.reference
        else:
            data["reference"] = self.reference
        data["tests"] = self.tests
        if self.check:
            data["check"] = self.check
        calls = self.workload_calls or [{"args": []}]
        data["workload"] = {"calls": calls, "min_time_s": self.min_time_s}
        data["timeout_s"] = self.timeout_s
        return data


def tidy(text: str) -> str:
    """Trailing spaces removed from every line, no leading blank lines, one final newline.

    Trailing spaces would force PyYAML to quote the text instead of writing a readable
    ``|`` block; in benchmark code they sit in docstrings, and the round-trip test proves
    that every imported reference still passes.
    """
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    return "\n".join(lines).strip("\n") + "\n"


def safe_id(raw: str) -> str:
    """``HumanEval/0`` -> ``HumanEval_0``: a file stem and pytest id without odd characters."""
    cleaned = re.sub(r"[^A-Za-z0-9_]+", "_", str(raw)).strip("_")
    if not cleaned:
        raise ImporterError(f"task id {raw!r} has no usable characters")
    return cleaned if not cleaned[0].isdigit() else f"task_{cleaned}"


# -- cases from assertions --------------------------------------------------------------

#: Bounds of constant arithmetic in suite files (evaluated on the host, so bounded): the
#: largest int result in bits and the longest repeated sequence or string.
CONST_INT_BITS = 4096
CONST_ITEMS = 100_000
_BINOPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.FloorDiv: lambda a, b: a // b,
    ast.Mod: lambda a, b: a % b,
    ast.Pow: lambda a, b: a**b,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.USub: lambda a: -a,
    ast.UAdd: lambda a: +a,
}


def constant_value(node: ast.expr) -> Any:
    """The value of a constant expression (literals and arithmetic on them, like ``2.0/3``).

    Raises ValueError for anything else: names, calls, comprehensions, and arithmetic
    whose result would be huge (``9**9**9``, ``"a" * 10**10``): suite files are data to
    this importer, and nothing in them runs on the host.
    """
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        pass
    try:
        return _evaluate(node, 0)
    except RecursionError:
        raise ValueError("a constant expression nested too deeply") from None


def _evaluate(node: ast.expr, depth: int) -> Any:
    if depth > 100:
        raise ValueError("a constant expression nested too deeply")
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        items = [_evaluate(e, depth + 1) for e in node.elts]
        return {ast.List: list, ast.Tuple: tuple, ast.Set: set}[type(node)](items)
    if isinstance(node, ast.Dict) and all(k is not None for k in node.keys):
        keys = [_evaluate(k, depth + 1) for k in node.keys if k is not None]
        return dict(zip(keys, [_evaluate(v, depth + 1) for v in node.values], strict=True))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        value = _evaluate(node.operand, depth + 1)
        if type(value) not in (int, float):
            raise ValueError("not a constant expression")
        return _UNARY[type(node.op)](value)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        left, right = _evaluate(node.left, depth + 1), _evaluate(node.right, depth + 1)
        _check_size(node.op, left, right)
        return _BINOPS[type(node.op)](left, right)
    raise ValueError("not a constant expression")


def _check_size(op: ast.operator, left: Any, right: Any) -> None:
    numbers = (int, float)
    if isinstance(op, ast.Pow) and isinstance(left, numbers) and isinstance(right, numbers):
        if abs(right) > CONST_INT_BITS or (
            isinstance(left, int)
            and abs(left) > 1
            and abs(left).bit_length() * right > CONST_INT_BITS
        ):
            raise ValueError("a constant power too large to evaluate")
    elif isinstance(op, ast.Mult):
        for seq, n in ((left, right), (right, left)):
            repeated = isinstance(seq, (str, bytes, list, tuple)) and isinstance(n, int)
            if repeated and len(seq) * n > CONST_ITEMS:
                raise ValueError("a repeated constant too long to evaluate")
        ints = isinstance(left, int) and isinstance(right, int)
        if ints and left.bit_length() + right.bit_length() > CONST_INT_BITS:
            raise ValueError("a constant product too large to evaluate")


def _json_like(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, str)):
        return True
    if isinstance(value, float):
        return value == value and value not in (float("inf"), float("-inf"))
    if isinstance(value, (list, tuple)):
        return all(_json_like(v) for v in value)
    if isinstance(value, dict):
        # The YAML contract's data is JSON-like: mapping keys are strings.
        return all(isinstance(k, str) and _json_like(v) for k, v in value.items())
    return False


def _plain(value: Any) -> Any:
    """Tuples become lists (the YAML contract compares them equal); sets are refused."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _callee_name(func: ast.expr) -> str | None:
    """``f`` for ``f(...)``, ``obj.m`` for ``obj.m(...)`` (EffiBench's ``solution.twoSum``)."""
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        return f"{func.value.id}.{func.attr}"
    return None


def _call_args(call: ast.expr, callee: str) -> list[Any] | None:
    if not isinstance(call, ast.Call) or _callee_name(call.func) != callee:
        return None
    if call.keywords:
        return None
    if any(isinstance(a, ast.Starred) for a in call.args):
        return None
    try:
        args = [constant_value(a) for a in call.args]
    except (ValueError, TypeError, ZeroDivisionError, OverflowError, ArithmeticError):
        return None
    return _plain(args) if _json_like(args) else None


def cases_from_asserts(test_code: str, callee: str = "candidate") -> list[dict[str, Any]]:
    """Test cases from ``assert callee(<literals>) == <literal>`` lines (and close forms).

    Recognised: ``f(a) == v``, ``v == f(a)``, ``f(a) is True/False/None``,
    ``abs(f(a) - v) < tol`` (-> ``tol``), ``assert f(a)`` (-> True) and ``assert not f(a)``
    (-> False). Anything else stays in the check code only.
    """
    try:
        tree = ast.parse(test_code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return []
    cases: list[dict[str, Any]] = []
    seen: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Assert):
            continue
        case = _case_from_test(node.test, callee)
        if case is None or not _json_like(case["expect"]):
            continue
        case["expect"] = _plain(case["expect"])
        key = repr(case)
        if key not in seen:
            seen.add(key)
            cases.append(case)
    return cases


def _case_from_test(test: ast.expr, callee: str) -> dict[str, Any] | None:
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        left, op, right = test.left, test.ops[0], test.comparators[0]
        if isinstance(op, (ast.Eq, ast.Is)):
            for call, other in ((left, right), (right, left)):
                args = _call_args(call, callee)
                if args is None:
                    continue
                try:
                    expect = constant_value(other)
                except (ValueError, TypeError, ArithmeticError):
                    return None
                if isinstance(op, ast.Is) and expect not in (True, False, None):
                    return None
                return {"args": args, "expect": expect}
        # abs(f(a) - v) < tol
        if isinstance(op, (ast.Lt, ast.LtE)) and isinstance(left, ast.Call):
            inner = left.args[0] if len(left.args) == 1 else None
            if (
                isinstance(left.func, ast.Name)
                and left.func.id == "abs"
                and isinstance(inner, ast.BinOp)
                and isinstance(inner.op, ast.Sub)
            ):
                args = _call_args(inner.left, callee)
                try:
                    expect = constant_value(inner.right)
                    tol = constant_value(right)
                except (ValueError, TypeError, ArithmeticError):
                    return None
                if args is not None and isinstance(tol, (int, float)):
                    return {"args": args, "expect": expect, "tol": float(tol)}
        return None
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        args = _call_args(test.operand, callee)
        return None if args is None else {"args": args, "expect": False}
    args = _call_args(test, callee)
    return None if args is None else {"args": args, "expect": True}


# -- cases recorded from the reference, in the sandbox ------------------------------------


class ReferenceFailed(ImporterError):
    """A task's reference fails its own tests or check: the task is skipped, not written."""


def record_cases(
    reference: str,
    entry_point: str,
    check: str,
    *,
    limit: int = 8,
    timeout_s: float = 60.0,
    tol: float = 0.0,
) -> list[dict[str, Any]]:
    """Cases for a task whose check holds no literal assertion, from its reference.

    The check runs in the sandbox (:func:`pytest_carbon.sandbox.verify.record_check`),
    against the reference run in a sandbox of its own: nothing of the suite runs on the
    host. Each call the check made without keyword arguments, whose arguments and result
    are YAML data (tuples written as lists; no sets, bytes or non-string keys), becomes
    a case ``{"args", "expect"}`` (float results get a small tolerance), up to ``limit``.
    Raises :class:`ReferenceFailed` when the reference fails its own check.
    """
    from pytest_carbon.sandbox.verify import record_check

    result, calls = record_check(reference, entry_point, check, timeout_s=timeout_s)
    if not result.passed:
        raise ReferenceFailed(f"the reference fails its own check: {result.message}")
    cases: list[dict[str, Any]] = []
    for args, kwargs, value in calls:
        if kwargs or len(cases) >= limit:
            continue
        if not (_json_like(args) and _json_like(value)):
            continue
        case: dict[str, Any] = {"args": _plain(args), "expect": _plain(value)}
        if _has_float(value):
            case["tol"] = max(RECORDED_FLOAT_TOL, tol)
        if case not in cases:
            cases.append(case)
    return cases


def _has_float(value: Any) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, (list, tuple)):
        return any(_has_float(v) for v in value)
    if isinstance(value, dict):
        return any(_has_float(v) for v in value.values())
    return False


def vet_reference(task: ImportedTask, *, timeout_s: float = 60.0) -> None:
    """Raise :class:`ReferenceFailed` unless the task's reference, and each of its graded
    references, passes the task's tests and check in the sandbox, exactly as a candidate's
    answer would be judged."""
    from pytest_carbon.sandbox.verify import verify

    codes = [("the reference", task.reference)]
    codes += [
        (f"graded reference {i} (score {r['score']:g})", str(r["code"]))
        for i, r in enumerate(task.references)
        if r["code"] != task.reference
    ]
    for what, code in codes:
        result = verify(
            code,
            task.entry_point,
            task.tests,
            task.check,
            reference=task.reference,
            timeout_s=timeout_s,
        )
        if not result.passed:
            raise ReferenceFailed(f"{what} fails its own tests: {result.message}")


def inputs_check(inputs: list[list[Any]]) -> str:
    """A check that calls the candidate once on each input (a list of positional
    arguments), for :func:`record_cases`: the data travels as JSON text."""
    text = json.dumps(inputs, allow_nan=False)
    return f"import json\nfor _args in json.loads({text!r}):\n    candidate(*_args)\n"


def record_workload(task: ImportedTask, *, timeout_s: float = 60.0) -> list[dict[str, Any]]:
    """The workload calls made by ``task.workload_check`` (a benchmark's generator, run
    in the sandbox against the reference): distinct, plain data, at most
    ``task.workload_limit``. Raises :class:`ReferenceFailed` when it fails."""
    from pytest_carbon.sandbox.verify import record_check

    assert task.workload_check is not None
    result, calls = record_check(
        task.reference, task.entry_point, task.workload_check, timeout_s=timeout_s
    )
    if not result.passed:
        raise ReferenceFailed(f"its workload generator fails: {result.message}")
    cases = [
        {"args": _plain(args), "kwargs": kwargs, "expect": None}
        for args, kwargs, _ in calls
        if _json_like(args) and _json_like(kwargs)
    ]
    return calls_from_cases(cases)[: task.workload_limit]


def prepare_tasks(
    tasks: Iterable[ImportedTask], *, jobs: int = 2, timeout_s: float = 60.0
) -> tuple[list[ImportedTask], list[tuple[ImportedTask, str]]]:
    """Complete and vet tasks in the sandbox: record cases for those that have none (from
    their check), then verify every reference against its tests and check. Returns the
    tasks to write, in order, and the skipped ones with the reason (never written as
    broken tasks). The sandbox must be available (SandboxError otherwise)."""
    from concurrent.futures import ThreadPoolExecutor

    def prepare(task: ImportedTask) -> str | None:
        try:
            if not task.tests and task.test_inputs:
                # The benchmark gives inputs, not outputs: the reference answers them.
                task.tests = record_cases(
                    task.reference,
                    task.entry_point,
                    inputs_check(task.test_inputs),
                    limit=len(task.test_inputs),
                    timeout_s=timeout_s,
                    tol=task.test_tol,
                )
                if not task.tests:
                    return "no test case could be recorded from its inputs"
            if not task.tests:
                if not task.check:
                    return "no test case and no check"
                task.tests = record_cases(
                    task.reference, task.entry_point, task.check, timeout_s=timeout_s
                )
                if not task.tests:
                    return "no test case could be recorded from its check"
            vet_reference(task, timeout_s=timeout_s)
            if task.workload_check:
                task.workload_calls = record_workload(task, timeout_s=timeout_s)
        except ReferenceFailed as exc:
            return str(exc)
        if not task.workload_calls:
            task.workload_calls = calls_from_cases(task.tests)
        return None

    todo = list(tasks)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        reasons = list(pool.map(prepare, todo))
    good = [t for t, r in zip(todo, reasons, strict=True) if r is None]
    skipped = [(t, r) for t, r in zip(todo, reasons, strict=True) if r is not None]
    return good, skipped


def calls_from_cases(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every distinct test input, in order, as workload calls ``{"args": [...]}`` (with
    ``"kwargs"`` when there are any).

    Public benchmark inputs are tiny: one alone measures interpreter overhead, and a single
    repeated input can be answered from a cache. All of them in turn are a fairer picture of
    the function's work. Inputs equal as Python sees them (``1 == 1.0``) are kept once, as
    the spec requires distinct calls.
    """
    calls: list[dict[str, Any]] = []
    seen: list[tuple[list[Any], dict[str, Any]]] = []
    for case in cases:
        args, kwargs = list(case.get("args", [])), dict(case.get("kwargs", {}))
        if (args, kwargs) in seen:
            continue
        seen.append((args, kwargs))
        calls.append({"args": args, "kwargs": kwargs} if kwargs else {"args": args})
    return calls


# -- reading published files ------------------------------------------------------------


def read_rows(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """The rows of a benchmark file the user downloaded, each with where it came from
    (``FILE:LINE`` or ``FILE[i]``): a JSON array (or an object of rows, keyed by id), or
    JSON Lines; ``.gz`` for either. Raises ImporterError naming the file and line."""
    import gzip

    if not path.is_file():
        raise ImporterError(f"{path}: no such file")
    opener: Any = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ImporterError(f"{path}: cannot read: {exc}") from None
    stripped = text.lstrip()
    rows: list[tuple[str, Any]] = []
    if stripped.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ImporterError(f"{path}:{exc.lineno}: not JSON: {exc.msg}") from None
        rows = [(f"{path}[{i}]", row) for i, row in enumerate(data)]
    else:
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append((f"{path}:{lineno}", json.loads(line)))
            except json.JSONDecodeError as exc:
                if lineno == 1 and stripped.startswith("{"):  # one JSON object of rows
                    try:
                        data = json.loads(text)
                    except json.JSONDecodeError:
                        raise ImporterError(f"{path}:{lineno}: not JSON: {exc.msg}") from None
                    return [(f"{path}[{k!r}]", dict(v)) for k, v in data.items()]
                raise ImporterError(f"{path}:{lineno}: not JSON: {exc.msg}") from None
    for where, row in rows:
        if not isinstance(row, dict):
            raise ImporterError(f"{where}: expected a JSON object, got {type(row).__name__}")
    return rows


def need(row: dict[str, Any], where: str, *fields: str) -> None:
    """ImporterError unless ``row`` has every field."""
    missing = sorted(set(fields) - set(row))
    if missing:
        raise ImporterError(f"{where}: missing fields {missing}")


def heaviest(inputs: list[Any], limit: int) -> list[list[Any]]:
    """The ``limit`` largest distinct inputs (by their JSON size), largest first: the
    benchmark's heavy inputs, so that a workload measures the algorithm, not the
    interpreter's call overhead. Inputs that are not JSON data are left out."""
    sized: list[tuple[int, str, list[Any]]] = []
    seen: set[str] = set()
    for args in inputs:
        if not isinstance(args, (list, tuple)) or not _json_like(list(args)):
            continue
        text = json.dumps(_plain(list(args)), sort_keys=True)
        if text not in seen:
            seen.add(text)
            sized.append((len(text), text, _plain(list(args))))
    sized.sort(key=lambda t: (-t[0], t[1]))
    return [args for _, _, args in sized[:limit]]


def strip_fence(code: str) -> str:
    """Code without a Markdown fence around it (EffiBench wraps some solutions)."""
    text = code.strip("\n")
    if text.lstrip().startswith("```"):
        body = text.lstrip().split("\n", 1)[1] if "\n" in text else ""
        return body.rsplit("```", 1)[0]
    return code


def add_common_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    """``--input FILE`` (or FILE given first) and ``--workload-calls N`` for the published
    formats."""
    parser.add_argument(
        "--input", type=Path, help=f"the {what} file to import (or give it before DEST)"
    )
    parser.add_argument(
        "--workload-calls",
        type=int,
        default=8,
        metavar="N",
        help="heavy inputs kept per task as workload calls (default 8)",
    )
    parser.add_argument("--prefix", default="", help="prepended to every task id")


#: What a LeetCode-style class task's reference runs with (EffiBench and Mercury run
#: their solutions with these names already imported); a candidate imports its own.
LEETCODE_PRELUDE = (
    "from typing import *\n"
    "import bisect, collections, functools, heapq, itertools, math, operator, re, string\n"
    "from bisect import bisect_left, bisect_right\n"
    "from collections import Counter, OrderedDict, defaultdict, deque\n"
    "from functools import cache, lru_cache, reduce\n"
    "from heapq import heapify, heappop, heappush\n"
    "from itertools import accumulate, combinations, permutations, product\n"
    "from math import ceil, comb, factorial, floor, gcd, inf, isqrt, sqrt\n"
)


def leetcode_prompt(description: str, entry_point: str, starter: str | None) -> str:
    """The prompt of a LeetCode-style class task: the problem, then what to write."""
    cls, _, method = entry_point.partition(".")
    text = description.strip() + "\n\n"
    text += (
        f"Write it in Python as `class {cls}` with the method `{method}`; each call uses a "
        "new instance. Import what you use."
    )
    if starter and starter.strip():
        text += f"\n\nStart from:\n\n{starter.rstrip()}\n"
    return tidy(text)


# -- the writer --------------------------------------------------------------------------


def _dumper() -> Any:
    import yaml

    class Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            # Every value is written out in full: a reader never meets &anchors/*aliases
            # (the spec parser refuses them).
            return True

    def text(dumper: Any, value: str) -> Any:
        # Code and prompts read best as literal blocks; PyYAML falls back to quoting by
        # itself when a string cannot be a block (trailing spaces, tabs, control chars).
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    def sequence(dumper: Any, value: list[Any]) -> Any:
        # Short data lists (test args, results) stay on one line.
        flat = all(not isinstance(v, (dict, list)) or not v for v in value)
        short = len(json.dumps(value, default=str)) < 80
        return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flat and short)

    def mapping(dumper: Any, value: dict[str, Any]) -> Any:
        # A test case reads best on one line: `- {args: [1, 2], expect: 3}`.
        flow = "expect" in value and len(repr(value)) < 90
        return dumper.represent_mapping("tag:yaml.org,2002:map", value, flow_style=flow)

    Dumper.add_representer(str, text)
    Dumper.add_representer(dict, mapping)
    Dumper.add_representer(list, sequence)
    return Dumper


def dump_task(task: ImportedTask) -> str:
    """One task as YAML text, keys in contract order, code as ``|`` blocks."""
    import yaml

    header = f"# Imported by `pytest-carbon import` (schema {SCHEMA}).\n"
    body: str = yaml.dump(
        task.as_mapping(),
        Dumper=_dumper(),
        sort_keys=False,
        allow_unicode=True,
        width=100,
        default_flow_style=False,
    )
    return header + body


def write_tasks(tasks: Iterable[ImportedTask], dest: Path, *, force: bool = False) -> list[Path]:
    """Write one ``DEST/<id>.yaml`` per task; refuse to overwrite unless ``force``."""
    dest.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for task in tasks:
        path = dest / f"{task.id}.yaml"
        if path.exists() and not force:
            raise ImporterError(f"{path} exists; pass --force to overwrite")
        tmp = path.with_suffix(".yaml.tmp")
        tmp.write_text(dump_task(task), encoding="utf-8")
        tmp.replace(path)
        written.append(path)
    return written
