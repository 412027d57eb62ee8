"""The verify mode: the candidate's process (:func:`run_verify`) and the check's process
(:func:`run_check`)."""

from __future__ import annotations

import ast
import builtins
import json
import linecache
import traceback
from collections.abc import Callable
from typing import Any, cast

from . import kernel
from .plain import PLAIN_TYPES, REPR_CHARS, NotPlain, decode_plain, encode_plain, short_repr
from .protocol import flush_and_exit, recv, send, send_line
from .worker import resolve_entry

#: Largest returned value sent to the parent to be judged (its JSON).
GOT_BYTES = 8 * 1024**2
PR_SET_DUMPABLE = 4


def tb_tail(exc: BaseException, lines: int = 12) -> str:
    if isinstance(exc, SystemExit):
        return f"SystemExit: the code called sys.exit({exc.code!r})"
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return "\n".join(text.rstrip().splitlines()[-lines:])


# -- verify: the candidate's side -------------------------------------------------------
def define(job: dict[str, Any]) -> tuple[dict[str, Any], Callable[..., Any]]:
    namespace: dict[str, Any] = {"__name__": "__candidate__", "__builtins__": builtins}
    code = compile(job["code"], "<candidate>", "exec")
    # Tracebacks show the candidate's lines.
    linecache.cache["<candidate>"] = (
        len(job["code"]),
        None,
        job["code"].splitlines(True),
        "<candidate>",
    )
    exec(code, namespace)
    # ``Class.method``: every call instantiates the class afresh (see resolve_entry).
    return namespace, cast(Callable[..., Any], resolve_entry(namespace, job["entry_point"]))


def _exception_fields(exc: BaseException) -> dict[str, Any]:
    cls = type(exc)
    return {
        "error": tb_tail(exc),
        "exit": isinstance(exc, SystemExit),
        # A built-in exception's name lets a check expecting it (``except ValueError``)
        # see one; anything else reaches the check as a generic error.
        "exc_type": cls.__name__ if cls.__module__ == "builtins" else None,
    }


def run_verify(job: dict[str, Any]) -> None:
    """The candidate's process: define the code, then answer ``call`` requests one at a
    time with the returned value as plain data (``value``), the exception (``raised``) or
    why the value is not plain (``unplain``). It knows nothing else: no expected value, no
    check, no verdict; pytest's process judges every value (``pytest_carbon/sandbox/judge.py``)."""
    try:
        _, fn = define(job)
    except BaseException as exc:
        send({"type": "define_error", **_exception_fields(exc)})
        return
    send({"type": "defined"})
    while True:
        msg = recv()
        if msg.get("type") != "call":
            return
        ident = msg.get("id")
        args, kwargs = decode_plain(msg["args"]), decode_plain(msg["kwargs"])
        try:
            got = fn(*args, **kwargs)
        except BaseException as exc:
            send({"type": "raised", "id": ident, **_exception_fields(exc)})
            continue
        try:
            value = encode_plain(got)
        except NotPlain as exc:
            # No repr of the value: that too would be the candidate's code.
            send(
                {"type": "unplain", "id": ident, "error": f"{exc}, not plain data ({PLAIN_TYPES})"}
            )
            continue
        text = json.dumps({"type": "value", "id": ident, "value": value})
        if len(text) > GOT_BYTES:
            what = f"a value of {len(text)} bytes of JSON, more than the sandbox passes back"
            send({"type": "unplain", "id": ident, "error": what})
            continue
        send_line(text)


# -- verify: the check's side ------------------------------------------------------------
# The task's ``check`` (trusted suite code) runs in a process of its own, never the
# candidate's: its ``candidate`` is a proxy that sends each call's arguments to pytest's
# process, which has the candidate's process run it and relays the plain result back.
class CandidateExit(BaseException):
    """The candidate called sys.exit during a call the check made."""


class CandidateNotPlain(BaseException):
    """The candidate returned something that is not plain data to the check."""


class CandidateError(Exception):
    """The candidate raised an exception that is not a built-in one."""


_EXPLAIN = "_carbon_explain_"
_LEFT = "_carbon_left_"
_RIGHT = "_carbon_right_"
_NO_RIGHT = object()


class _AssertExplainer(ast.NodeTransformer):
    """``assert L op R, msg`` -> ``assert (_l := L) op (_r := R), explain(n, _l, _r, msg)``:
    the values an assertion compared, evaluated once, are named in its failure."""

    def visit_Assert(self, node: ast.Assert) -> ast.Assert:
        test = node.test

        def named(name: str, value: ast.expr) -> ast.NamedExpr:
            return ast.NamedExpr(target=ast.Name(id=name, ctx=ast.Store()), value=value)

        right: ast.expr = ast.Name(id="_carbon_no_right_", ctx=ast.Load())
        if isinstance(test, ast.Compare) and len(test.ops) == 1:
            new: ast.expr = ast.Compare(
                left=named(_LEFT, test.left),
                ops=test.ops,
                comparators=[named(_RIGHT, test.comparators[0])],
            )
            right = ast.Name(id=_RIGHT, ctx=ast.Load())
        elif isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            new = ast.UnaryOp(op=ast.Not(), operand=named(_LEFT, test.operand))
        else:
            new = named(_LEFT, test)
        msg = ast.Call(
            func=ast.Name(id=_EXPLAIN, ctx=ast.Load()),
            args=[
                ast.Constant(node.lineno),
                ast.Name(id=_LEFT, ctx=ast.Load()),
                right,
                node.msg if node.msg is not None else ast.Constant(None),
            ],
            keywords=[],
        )
        return ast.copy_location(ast.Assert(test=new, msg=msg), node)


def _explainer(source: str, tree: ast.Module) -> tuple[Callable[..., str], dict[str, Any]]:
    """The function named in rewritten assertions, and the record of the last failure."""
    asserts = {n.lineno: n for n in ast.walk(tree) if isinstance(n, ast.Assert)}
    failed: dict[str, Any] = {}

    def explain(lineno: int, left: object, right: object, message: object) -> str:
        node = asserts.get(lineno)
        text = (ast.get_source_segment(source, node) if node is not None else None) or ""
        parts = {"line": lineno, "source": text[:REPR_CHARS]}
        test = node.test if node is not None else None
        if isinstance(test, ast.Compare) and len(test.ops) == 1:
            sides = [(test.left, left), (test.comparators[0], right)]
        elif isinstance(test, ast.UnaryOp):
            sides = [(test.operand, left)]
        else:
            sides = [(test, left)] if test is not None else []
        shown = []
        for expr, value in sides:
            src = (ast.get_source_segment(source, expr) or "?")[:200]
            shown.append(f"{src} is {short_repr(value)} ({type(value).__name__})")
        parts["values"] = shown
        if message is not None:
            parts["message"] = short_repr(message) if not isinstance(message, str) else message
        failed.clear()
        failed.update(parts)
        detail = "; ".join(shown)
        return f"line {lineno}: {text}: {detail}" + (f" ({message})" if message is not None else "")

    return explain, failed


def _raise_from(reply: dict[str, Any]) -> BaseException:
    if reply.get("exit"):
        return CandidateExit(reply.get("error"))
    if reply.get("type") == "unplain":
        return CandidateNotPlain(reply.get("error"))
    cls = getattr(builtins, str(reply.get("exc_type") or ""), None)
    text = str(reply.get("error") or "")
    if isinstance(cls, type) and issubclass(cls, Exception) and cls is not CandidateError:
        try:
            return cast(BaseException, cls(text))
        except Exception:
            pass
    return CandidateError(text)


def _bind_entry(scope: dict[str, Any], entry_point: str, candidate: Callable[..., Any]) -> None:
    """The entry point's name, in the check's globals, bound to the proxy: a function
    name is the proxy itself; for ``Class.method`` the class name is a stand-in class
    whose instances' ``method`` is the proxy (``Class().method(x)`` in a check calls the
    candidate, which instantiates its own class afresh for that call)."""
    name, dot, method = entry_point.partition(".")
    if not dot:
        scope[entry_point] = candidate
        return

    def init(self: object, *args: Any, **kwargs: Any) -> None:
        pass

    scope[name] = type(name, (), {"__init__": init, method: staticmethod(candidate)})


def run_check(job: dict[str, Any]) -> None:
    """The check's process: run the task's ``check`` against a proxy ``candidate``.

    The check's globals are those of the task's reference (``context``: helper functions
    such as HumanEval's ``poly``), never the candidate's; ``candidate`` and the entry
    point's name are the proxy. Reports ``check_passed`` or ``check_failed`` (with the
    failing assertion's line, text and compared values)."""
    # Where the sandbox has no namespaces, the candidate's process runs as the same user:
    # undumpable, this one's pipes cannot be opened through /proc nor itself traced.
    kernel.libc().prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    source = job["check"]
    namespace: dict[str, Any] = {"__name__": "__check__", "__builtins__": builtins}
    raised: list[BaseException] = []
    calls: dict[str, Any] = {"n": 0, "last": ""}  # how many calls, the last one as text

    def candidate(*args: Any, **kwargs: Any) -> Any:
        try:
            msg = {"type": "call", "args": encode_plain(list(args)), "kwargs": encode_plain(kwargs)}
        except NotPlain as exc:
            raise TypeError(
                f"the check passed {exc} to the candidate: only plain data crosses to its sandbox"
            ) from None
        shown = [short_repr(a) for a in args] + [f"{k}={short_repr(v)}" for k, v in kwargs.items()]
        calls["n"] += 1
        calls["last"] = f"candidate({', '.join(shown)})"[:300]
        send(msg)
        reply = recv()
        if reply.get("type") == "quit":  # the verdict is already given
            flush_and_exit(0)
        if reply.get("type") == "value":
            return decode_plain(reply.get("value"))
        error = _raise_from(reply)
        raised.append(error)
        raise error

    def failed(stage: str, exc: BaseException, **extra: Any) -> None:
        send({"type": "check_failed", "stage": stage, "error": tb_tail(exc), **extra})

    try:
        tree = ast.parse(source, "<check>")
        explain, assertion = _explainer(source, tree)
        tree = ast.fix_missing_locations(_AssertExplainer().visit(tree))
        code = compile(tree, "<check>", "exec")
        linecache.cache["<check>"] = (len(source), None, source.splitlines(True), "<check>")
        if job.get("context"):
            exec(compile(job["context"], "<reference>", "exec"), namespace)
    except BaseException as exc:
        failed("setup", exc)
        return
    scope = dict(namespace)
    scope.update({"candidate": candidate, _EXPLAIN: explain, "_carbon_no_right_": _NO_RIGHT})
    _bind_entry(scope, job["entry_point"], candidate)
    try:
        exec(code, scope)
        checker = scope.get("check")
        if callable(checker) and checker is not namespace.get("check"):
            checker(candidate)
    except BaseException as exc:
        if raised and exc is raised[-1]:
            failed("candidate", exc, call=calls["last"], exit=isinstance(exc, CandidateExit))
        elif isinstance(exc, AssertionError) and assertion:
            failed("assertion", exc, assertion=dict(assertion))
        else:
            failed("check", exc, call=calls["last"] or None)
        return
    send({"type": "check_passed", "calls": calls["n"]})
