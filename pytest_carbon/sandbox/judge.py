"""The verdict on a candidate, given in pytest's process under one rule.

The candidate's process (``run_verify`` in ``child/verify.py``) knows the code and, one call
at a time, the arguments: never an expected value, never the check, never a verdict. It
answers each ``call`` with the returned value as plain data (``value``), the exception
(``raised``) or why the value is not plain (``unplain``). Everything else it could say is
ignored as a verdict: a message that is not the awaited answer to the call just sent (a
forged "passed", an answer for another call, a case index out of range) is a protocol
violation and fails the item.

Here, each value is decoded (exact built-in types only, bounded depth) and compared with
the case's ``expect`` by :func:`pytest_carbon.sandbox.equality.difference`, the one rule
for "equal". The task's ``check`` (trusted suite code) runs in a process of its own
(``run_check`` in ``child/verify.py``), with the reference's globals and a proxy
``candidate``: each call it makes is relayed here, run by the candidate's process, and
its plain result relayed back. So the check sees the candidate only through the values
it returned, and its assertions run in a process the candidate cannot reach.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from pytest_carbon.sandbox.child.plain import NotPlain, decode_plain, encode_plain, short_repr
from pytest_carbon.sandbox.equality import difference
from pytest_carbon.sandbox.safe_text import escape_controls

if TYPE_CHECKING:
    from collections.abc import Callable

#: The answers the candidate's process may give to a call.
ANSWERS = ("value", "raised", "unplain")
#: Longest call text in a message.
CALL_CHARS = 300


class Channel(Protocol):
    """What the judge needs of a sandboxed process (``isolation.Child``)."""

    timed_out: bool

    def recv(self) -> dict[str, Any] | None: ...

    def send(self, msg: dict[str, Any]) -> None: ...

    def stop_reason(self) -> str: ...

    def close(self) -> None: ...


def _reason(channel: Channel) -> str:
    channel.close()  # the exit status and the cgroup's counters say why it stopped
    return channel.stop_reason()


@dataclass
class Outcome:
    """The verdict: ``passed``, and when not, ``failed_case`` and a one-paragraph ``message``
    (see :class:`pytest_carbon.sandbox.verify.VerifyResult`)."""

    passed: bool
    failed_case: dict[str, Any] | None = None
    message: str = ""
    #: Every call relayed for the check that returned a value: (args, kwargs, value).
    recorded: list[tuple[list[Any], dict[str, Any], Any]] = field(default_factory=list)


class _Stop(Exception):
    def __init__(self, outcome: Outcome):
        self.outcome = outcome


def call_text(entry_point: str, args: list[Any], kwargs: dict[str, Any]) -> str:
    parts = [short_repr(a) for a in args] + [f"{k}={short_repr(v)}" for k, v in kwargs.items()]
    text = f"{entry_point}({', '.join(parts)})"
    return text if len(text) <= CALL_CHARS else text[:CALL_CHARS] + "...)"


def last_line(error: str) -> str:
    lines = [ln for ln in error.strip().splitlines() if ln.strip()]
    return lines[-1].strip() if lines else error


def _exit_note(msg: dict[str, Any]) -> str:
    if msg.get("exit"):
        return " A candidate must return its answer; calling sys.exit is a failure."
    return ""


def _violation(what: str) -> Outcome:
    error = f"the sandboxed process sent {what} (a forged control message?)"
    return Outcome(False, {"protocol": True, "error": error}, f"Protocol violation: {error}.")


class Judge:
    """Drives the candidate's process through the cases, then the check; judges every
    value it returns. ``tests`` as :func:`~pytest_carbon.sandbox.verify.verify` takes
    them; ``checker`` is the check's process, or None when the task has no check."""

    def __init__(
        self,
        candidate: Channel,
        entry_point: str,
        tests: list[dict[str, Any]],
        checker: Channel | None = None,
        *,
        on_setup_error: Callable[[str], BaseException] | None = None,
    ):
        self.candidate = candidate
        self.entry_point = entry_point
        self.tests = tests
        self.checker = checker
        self._on_setup_error = on_setup_error
        self._next_id = 0
        self._recorded: list[tuple[list[Any], dict[str, Any], Any]] = []

    # -- the whole verdict ------------------------------------------------------------
    def run(self) -> Outcome:
        try:
            self._defined()
            for i, case in enumerate(self.tests):
                self._case(i, case)
            if self.checker is not None:
                self._check(self.checker)
        except _Stop as stop:
            stop.outcome.recorded = self._recorded
            return stop.outcome
        return Outcome(True, recorded=self._recorded)

    def _defined(self) -> None:
        msg = self.candidate.recv()
        if msg is None:
            reason = _reason(self.candidate)
            raise _Stop(
                Outcome(
                    False, {"define": True, "error": reason}, f"{reason} while defining the code."
                )
            )
        kind = msg.get("type")
        if kind == "setup_error" and self._on_setup_error is not None:
            raise self._on_setup_error(str(msg.get("error")))
        if kind == "define_error":
            error = str(msg.get("error") or "")
            raise _Stop(
                Outcome(
                    False,
                    {"define": True, "error": error},
                    f"The code could not be defined: {last_line(error)}{_exit_note(msg)}",
                )
            )
        if kind != "defined":
            raise _Stop(_violation(f"{short_repr(kind)} before the code was defined"))

    # -- one call to the candidate ---------------------------------------------------
    def ask(self, args: list[Any], kwargs: dict[str, Any], where: Callable[[str], Outcome]) -> Any:
        """The candidate's answer to one call: the decoded value, or the answer message
        (``raised`` / ``unplain``) as a dict with ``"type"``. ``where(reason)`` builds the
        outcome when the process stops or times out instead of answering."""
        ident = self._next_id
        self._next_id += 1
        try:
            self.candidate.send(
                {
                    "type": "call",
                    "id": ident,
                    "args": encode_plain(list(args)),
                    "kwargs": encode_plain(dict(kwargs)),
                }
            )
        except NotPlain as exc:
            raise ValueError(f"test arguments must be plain data: {exc}") from None
        except Exception:  # gone: the recv below says why
            pass
        msg = self.candidate.recv()
        if msg is None:
            raise _Stop(where(_reason(self.candidate)))
        kind = msg.get("type")
        if kind not in ANSWERS or msg.get("id") != ident or type(msg.get("id")) is not int:
            raise _Stop(
                _violation(
                    f"{short_repr(kind)} for call {short_repr(msg.get('id'))} "
                    f"while the answer to call {ident} was awaited"
                )
            )
        if kind != "value":
            return {
                "type": kind,
                "error": str(msg.get("error") or ""),
                "exit": msg.get("exit") is True,
                "exc_type": msg.get("exc_type") if isinstance(msg.get("exc_type"), str) else None,
            }
        try:
            return _Value(decode_plain(msg.get("value")))
        except (ValueError, RecursionError) as exc:
            raise _Stop(_violation(f"a value that is not plain data ({exc})")) from None

    # -- the cases -------------------------------------------------------------------
    def case_dict(self, i: int, got: str | None, error: str | None, **extra: Any) -> dict[str, Any]:
        case = self.tests[i]
        return {
            "index": i,
            "args": list(case.get("args", [])),
            "kwargs": dict(case.get("kwargs", {})),
            "expect": case["expect"],
            "got": got,
            "error": error,
            **extra,
        }

    def _case(self, i: int, case: dict[str, Any]) -> None:
        args, kwargs = list(case.get("args", [])), dict(case.get("kwargs", {}))
        call = call_text(self.entry_point, args, kwargs)

        def stopped(reason: str) -> Outcome:
            return Outcome(
                False, self.case_dict(i, None, reason), f"{reason} during case {i}, {call}."
            )

        answer = self.ask(args, kwargs, stopped)
        if not isinstance(answer, _Value):
            error = answer["error"]
            if answer["type"] == "unplain":
                got = error
                raise _Stop(
                    Outcome(
                        False, self.case_dict(i, got, None), f"Case {i}: {call} returned {got}."
                    )
                )
            raise _Stop(
                Outcome(
                    False,
                    self.case_dict(i, None, error),
                    f"Case {i}: {call} raised {last_line(error)}.{_exit_note(answer)}",
                )
            )
        tol = case.get("tol")
        found = difference(answer.value, case["expect"], tol=float(tol) if tol else None)
        if found is None:
            return
        got = escape_controls(short_repr(answer.value))
        found = escape_controls(found)
        raise _Stop(
            Outcome(
                False,
                self.case_dict(i, got, None, difference=found),
                f"Case {i}: {call} returned {got}, expected {case['expect']!r} ({found}).",
            )
        )

    # -- the check -------------------------------------------------------------------
    def _check(self, checker: Channel) -> None:
        last_call = "the check"
        while True:
            msg = checker.recv()
            if msg is None:
                reason = _reason(checker)
                raise _Stop(
                    Outcome(
                        False,
                        {"check": True, "error": reason, "call": None},
                        f"The check's process stopped: {reason}",
                    )
                )
            kind = msg.get("type")
            if kind == "check_passed":
                return
            if kind == "check_failed":
                raise _Stop(self._check_failed(msg))
            if kind != "call":
                raise _Stop(
                    Outcome(
                        False,
                        {"check": True, "error": f"unknown message {short_repr(kind)}"},
                        "The check's process broke the protocol.",
                    )
                )
            try:
                args, kwargs = decode_plain(msg.get("args")), decode_plain(msg.get("kwargs"))
            except (ValueError, RecursionError) as exc:
                raise _Stop(
                    Outcome(False, {"check": True, "error": str(exc)}, f"The check failed: {exc}.")
                ) from None
            last_call = call_text(self.entry_point, list(args), dict(kwargs))

            def stopped(reason: str, call: str = last_call) -> Outcome:
                return Outcome(
                    False,
                    {"check": True, "error": reason, "call": call},
                    f"{reason} during the check, in {call}.",
                )

            answer = self.ask(args, kwargs, stopped)
            if isinstance(answer, _Value):
                self._recorded.append((list(args), dict(kwargs), answer.value))
                reply: dict[str, Any] = {"type": "value", "value": encode_plain(answer.value)}
            else:
                reply = answer
            with contextlib.suppress(Exception):  # gone: its recv says why
                checker.send(reply)

    def _check_failed(self, msg: dict[str, Any]) -> Outcome:
        stage = msg.get("stage")
        error = escape_controls(str(msg.get("error") or ""))
        case: dict[str, Any] = {"check": True, "error": error}
        if stage == "assertion" and isinstance(msg.get("assertion"), dict):
            a = msg["assertion"]
            source = escape_controls(str(a.get("source", "")))
            values = [escape_controls(str(v)) for v in a.get("values") or []]
            note = f" ({escape_controls(str(a['message']))})" if a.get("message") else ""
            case |= {"line": a.get("line"), "assertion": source, "values": values}
            shown = "; ".join(values)
            return Outcome(
                False,
                case,
                f"The check failed at line {a.get('line')}: `{source}`: {shown}{note}.",
            )
        if stage == "candidate":
            call = escape_controls(str(msg.get("call") or "the candidate"))
            case["call"] = call
            return Outcome(
                False,
                case,
                f"The check's call {call} failed: {last_line(error)}.{_exit_note(msg)}",
            )
        if stage == "setup":
            return Outcome(False, case, f"The check could not be run: {last_line(error)}.")
        return Outcome(False, case, f"The check failed: {last_line(error)}.")


@dataclass(frozen=True)
class _Value:
    """A value the candidate returned, decoded here (exact built-in types only)."""

    value: Any
