"""Text from generated code made safe to show: control characters written out as escapes.

Captured stdout and stderr, tracebacks and messages from the sandbox reach the terminal,
JSON, HTML and Markdown reports. Raw, an ANSI or OSC sequence there clears the screen,
sets the window title, moves the cursor to overwrite pytest's summary with a fake
"41 passed", or hides text; ``\\r`` rewrites a line; bidirectional overrides reorder
what is read. :func:`escape_controls` writes each such character as a visible escape
(``\\x1b``, ``\\r``, ``\\u202e``), so the text says what the code printed, and nothing
is lost. Newline and tab are kept: they are layout, not commands.
"""

from __future__ import annotations

import re

#: C0 controls but tab and newline, DEL, C1 controls (8-bit CSI, OSC...), and the
#: Unicode bidirectional and direction marks.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
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
