"""Text from generated code made safe to show: control characters written out as escapes.

Captured stdout and stderr, tracebacks and messages from the sandbox reach the terminal,
JSON, HTML and Markdown reports. Raw, an ANSI or OSC sequence there clears the screen,
sets the window title, moves the cursor to overwrite pytest's summary with a fake
"41 passed", or hides text; ``\\r`` rewrites a line; bidirectional overrides reorder
what is read. :func:`escape_controls` writes each such character as a visible escape
(``\\x1b``, ``\\r``, ``\\u202e``), so the text says what the code printed, and nothing
is lost. Newline and tab are kept: they are layout, not commands.

Lone surrogates (``\ud800``: what ``json`` decodes from an escape the sender never
paired, and what ``surrogateescape`` makes of undecodable bytes) are no characters at
all: no UTF-8 writer accepts them, so one of them in a traceback used to stop every
report of the run. :func:`escape_controls` writes them as escapes too, and
:func:`scrub_surrogates` does the same to every string of a record or report (keys
included) without touching anything else: it runs where records are stored
(``prompts/collect.py``), where reports are built and read (:mod:`..results.io`), and
file writers encode what may still slip through with ``backslashreplace``
(:mod:`..results.atomic`).
"""

from __future__ import annotations

import re
from typing import Any

#: C0 controls but tab and newline, DEL, C1 controls (8-bit CSI, OSC...), the Unicode
#: bidirectional and direction marks, and lone surrogates.
_CONTROL = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
_SURROGATE = re.compile("[\ud800-\udfff]")
_NAMED = {"\r": "\\r", "\x0b": "\\v", "\x0c": "\\f", "\x08": "\\b", "\x00": "\\0"}


def _escape(m: re.Match[str]) -> str:
    ch = m.group()
    named = _NAMED.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str) -> str:
    """``text`` with every control character (but ``\\n`` and ``\\t``) escaped."""
    return _CONTROL.sub(_escape, text)


def has_controls(text: str) -> bool:
    """Whether :func:`escape_controls` would change ``text``."""
    return _CONTROL.search(text) is not None


def escape_surrogates(text: str) -> str:
    """``text`` with each lone surrogate written as its escape (``\\udc80``)."""
    if _SURROGATE.search(text) is None:
        return text
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def scrub_surrogates(value: Any, _depth: int = 0) -> Any:
    """A copy of ``value`` (plain data: dicts, lists, tuples, strings, numbers) with every
    lone surrogate in its strings and keys escaped.

    Safe on any depth: below 200 levels the rest is kept as it is (records are never that
    deep; prompt data is bounded at 100 levels by the spec loader)."""
    if isinstance(value, str):
        return escape_surrogates(value)
    if _depth > 200:
        return value
    if isinstance(value, dict):
        return {
            escape_surrogates(k) if isinstance(k, str) else k: scrub_surrogates(v, _depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [scrub_surrogates(v, _depth + 1) for v in value]
    if isinstance(value, tuple):
        return tuple(scrub_surrogates(v, _depth + 1) for v in value)
    return value
