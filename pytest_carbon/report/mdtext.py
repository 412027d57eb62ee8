"""Strings from a report as Markdown text that shows exactly them (GitHub-flavoured).

A report's strings come from outside: node ids, model and task names, a suite file's
values, reasons and warnings that quote generated code, machine facts. In Markdown they
must stay text: :func:`text` backslash-escapes every character that could start syntax
(CommonMark allows a backslash before any ASCII punctuation), :func:`code` makes a code
span that no backtick inside can close. Both flatten line breaks and escape control
characters and lone surrogates (:mod:`pytest_carbon.sandbox.safe_text`). Used by the
Markdown summary (:mod:`.markdown`) and the card (:mod:`.card`).

What remains: GitHub's renderer (cmark-gfm) makes a bare e-mail address a ``mailto:``
link whatever is escaped; its text is its target, so nothing is hidden behind it.
``tests/test_markdown.py`` renders hostile strings with cmark-gfm to check the rest.
"""

from __future__ import annotations

import re
from typing import Any

from pytest_carbon.sandbox.safe_text import escape_controls

#: What Markdown, GitHub or HTML could read as syntax inside a line of text (data never
#: starts a line here): code, emphasis, strike-through, links, images and link
#: definitions, tags and autolinks, entities, table pipes, math, mentions and issue
#: references; ``:`` before ``//`` and ``.`` after ``www`` (GitHub's autolinks of bare
#: URLs). CommonMark lets a backslash make each a literal character.
_SYNTAX = re.compile(
    r"[\\`*~\[\]<|&$#@]"
    r"|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])"  # an underscore inside a word is no emphasis
    r"|:(?=//)|(?i:(?<=www)\.)"
)
_BACKTICKS = re.compile("`+")


def flat(value: Any) -> str:
    """One line of safe characters: line breaks (of every kind) become spaces, control
    characters and lone surrogates are written as escapes."""
    return escape_controls(" ".join(str(value).splitlines()))


def text(value: Any) -> str:
    """A string from the report as Markdown that shows exactly it, in a table cell or in
    prose: every character of :data:`_SYNTAX` backslash-escaped."""
    return _SYNTAX.sub(lambda m: "\\" + m.group(), flat(value))


def code(value: Any, *, table: bool = True) -> str:
    """A code span showing ``value`` as it is: fenced by more backticks than its longest
    run, padded when it starts or ends with a backtick or a space; in a table, pipes are
    escaped (GitHub splits cells before it reads code spans)."""
    s = flat(value)
    if table:
        s = s.replace("|", "\\|")
    if not s.strip():
        return "` `" if not s else f"`{s}`"
    fence = "`" * (max((len(m) for m in _BACKTICKS.findall(s)), default=0) + 1)
    pad = " " if s[0] in "` " or s[-1] in "` " else ""
    return f"{fence}{pad}{s}{pad}{fence}"
