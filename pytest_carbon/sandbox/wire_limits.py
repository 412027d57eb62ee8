"""Bounds on everything the sandboxed process can send, checked before anything is parsed.

The child's control messages are JSON lines written by code we do not trust: the runner,
or the candidate writing to the runner's file descriptor directly. Python's ``json``
decoder recurses once per nesting level, so a 100,000-deep ``[[[[...`` raises
``RecursionError`` in pytest's process; a message that never ends grows the buffer
without bound. So, on pytest's side:

* the control buffer never holds more than :data:`MAX_MESSAGE_BYTES` (the protocol is
  lock-step: one message answers one request, so nothing legitimate is ever that far
  ahead of the reader);
* a message's nesting depth is measured on its bytes (:func:`exceeds_depth`, no
  recursion) and refused above :data:`MAX_MESSAGE_DEPTH` before ``json.loads`` sees it;
* reads honour the run's absolute deadline, however slowly the bytes trickle in (see
  ``Child.recv``), and one call reads at most :data:`READ_SLICE_BYTES` before the
  deadline is looked at again;
* text meant for people (tracebacks, reprs) is kept to :data:`MAX_DISPLAY_CHARS`.

The same depth bounds prompt files (:data:`MAX_DATA_DEPTH`, in :mod:`.spec`): an
expected value may be as deep as a message can carry, with room for the envelope.
"""

from __future__ import annotations

import json
import re
from array import array
from itertools import accumulate
from typing import Any

#: Largest control message accepted from the sandbox (and most unread bytes buffered).
MAX_MESSAGE_BYTES = 16 * 1024**2
#: Deepest nesting of a value in a prompt file (``expect``, ``args``, ``kwargs``).
MAX_DATA_DEPTH = 100
#: Deepest nesting of a control message: a value of :data:`MAX_DATA_DEPTH` plus the
#: message's own envelope (``{"type": "got", "value": ...}``, lists of results).
MAX_MESSAGE_DEPTH = MAX_DATA_DEPTH + 28
#: Most bytes one read of the control pipe takes before the deadline is checked again.
READ_SLICE_BYTES = 1024 * 1024
#: Longest text shown from a message (tracebacks, reprs); the rest is cut with a note.
MAX_DISPLAY_CHARS = 64 * 1024

#: A JSON string, quotes included (unrolled, so the regex engine does not backtrack).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
#: Every byte but the four brackets, for ``bytes.translate``.
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
#: Opening brackets to +1, closing ones to -1 (as signed bytes).
_STEP = bytes(1 if b in b"[{" else 255 if b in b"]}" else 0 for b in range(256))


class WireLimitError(ValueError):
    """A message from the sandbox broke one of the bounds; the text names the bound."""


def mib(n: int) -> str:
    return f"{n / 1024**2:g} MiB"


def exceeds_depth(data: bytes, limit: int) -> bool:
    """Whether the JSON text ``data`` nests deeper than ``limit`` (brackets inside strings
    do not count): the most brackets open at once, as a decoder would meet them.

    No recursion, and C-speed passes only (a regex, ``bytes.translate``, a running sum by
    ``itertools.accumulate``): about a second for 16 MiB of brackets on a busy machine,
    nothing for the usual message (fewer brackets than ``limit``). Text after a stray
    closing bracket may be miscounted, but a decoder never gets past that point.
    """
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    brackets = _STRING.sub(b"", data).translate(None, _NOT_BRACKETS).translate(_STEP)
    return max(accumulate(array("b", brackets)), default=0) > limit


def decode_message(line: bytes) -> Any:
    """The JSON value of one control line, within the bounds.

    Raises :class:`WireLimitError` (naming the bound) for a message too large or too
    deep, and ``ValueError`` for text that is not JSON.
    """
    if len(line) > MAX_MESSAGE_BYTES:
        raise WireLimitError(
            f"the sandbox sent a message over {mib(MAX_MESSAGE_BYTES)} "
            f"({len(line)} bytes; MAX_MESSAGE_BYTES)"
        )
    if exceeds_depth(line, MAX_MESSAGE_DEPTH):
        raise WireLimitError(
            f"the sandbox sent a message nested deeper than {MAX_MESSAGE_DEPTH} levels "
            "(MAX_MESSAGE_DEPTH)"
        )
    try:
        return json.loads(line)
    except RecursionError:  # pragma: no cover - the depth was checked above
        raise WireLimitError(
            "the sandbox sent a message too deeply nested to decode (MAX_MESSAGE_DEPTH)"
        ) from None


def overflow_reason(buffered: bytes | bytearray) -> str:
    """Why a control buffer over :data:`MAX_MESSAGE_BYTES` is refused."""
    if b"\n" in buffered:
        return (
            f"the sandbox sent over {mib(MAX_MESSAGE_BYTES)} of control messages that were "
            "not asked for (MAX_MESSAGE_BYTES)"
        )
    return (
        f"the sandbox sent a message over {mib(MAX_MESSAGE_BYTES)} without an end of line "
        "(MAX_MESSAGE_BYTES)"
    )


def clip_display(text: str) -> str:
    """``text`` cut to :data:`MAX_DISPLAY_CHARS`, with a note of what was cut."""
    if len(text) <= MAX_DISPLAY_CHARS:
        return text
    cut = len(text) - MAX_DISPLAY_CHARS
    return text[:MAX_DISPLAY_CHARS] + f"\n[pytest-carbon: {cut} more characters cut]"
