"""Extract the Python code from a model's markdown answer.

Rules, in order:

1. Reasoning blocks (``<think>...</think>``, ``<thinking>...</thinking>``) are removed; an
   unclosed one runs to the end of the answer.
2. Fenced blocks are found line by line: backtick or tilde fences of three or more, with an
   optional language tag (``python``, ``py``, ``python3`` or none). A closing fence must
   use the same character and be at least as long. An unterminated fence runs to the end.
   Blocks tagged with another language (``bash``, ``text``, ``json`` ...) are ignored.
3. Among the blocks, the **last one that parses and defines the entry point** wins: models
   often show a first attempt, then "an improved version". Helpers it uses but does not
   define are taken from earlier blocks that hold only imports, definitions and constant
   assignments (and define those names); such blocks are prepended in their order.
4. With no block defining the entry point, the longest Python block is returned (the
   sandbox then reports the missing function as an incorrect answer, with the code).
5. With no fence at all, the whole answer is accepted when it parses and defines the entry
   point (some models answer with bare code).

Nothing found raises ExtractError.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

_THINK = re.compile(r"<(think|thinking|reasoning)>.*?(?:</\1>|\Z)", re.DOTALL | re.IGNORECASE)
_OPEN = re.compile(r"^[ \t]{0,3}(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`\n]*)$")
_PYTHON_TAGS = {"", "python", "py", "python3", "py3", "pycon", "ipython", "sage"}


class ExtractError(ValueError):
    """No usable code in the answer."""


@dataclass(frozen=True)
class Block:
    lang: str
    code: str
    start_line: int  # 1-based line of the opening fence


def strip_reasoning(text: str) -> str:
    return _THINK.sub("", text)


def fenced_blocks(text: str) -> list[Block]:
    """Every fenced block, in order (unterminated fences run to the end)."""
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = _OPEN.match(lines[i])
        if not m or (m.group("fence")[0] == "`" and "`" in m.group("info")):
            i += 1
            continue
        fence = m.group("fence")
        info = m.group("info").strip()
        lang = info.split()[0].lower().lstrip("{.").rstrip("}") if info else ""
        body: list[str] = []
        j = i + 1
        while j < len(lines):
            stripped = lines[j].strip()
            if (
                stripped
                and set(stripped) == {fence[0]}
                and len(stripped) >= len(fence)
                and len(lines[j]) - len(lines[j].lstrip()) <= 3
            ):
                break
            body.append(lines[j])
            j += 1
        blocks.append(Block(lang, "\n".join(body).strip("\n") + "\n", i + 1))
        i = j + 1
    return blocks


def _parse(code: str) -> ast.Module | None:
    try:
        return ast.parse(code)
    except (SyntaxError, ValueError):
        return None


def _defined(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def _used(tree: ast.Module) -> set[str]:
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _library_only(tree: ast.Module) -> bool:
    """Only imports, definitions and assignments at top level: safe to prepend."""
    allowed = (
        ast.Import,
        ast.ImportFrom,
        ast.FunctionDef,
        ast.AsyncFunctionDef,
        ast.ClassDef,
        ast.Assign,
        ast.AnnAssign,
    )
    return all(
        isinstance(node, allowed)
        or (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))
        for node in tree.body
    )


def extract_code(text: str, entry_point: str) -> str:
    """The code to run, from a model's answer. Raises ExtractError when there is none."""
    if not text or not text.strip():
        raise ExtractError("the answer is empty")
    body = strip_reasoning(text)
    # ``Solution.divideArray``: the block that defines the class.
    entry_point = entry_point.partition(".")[0]
    blocks = [b for b in fenced_blocks(body) if b.lang in _PYTHON_TAGS and b.code.strip()]
    parsed = [(b, _parse(b.code)) for b in blocks]
    defining = [(b, t) for b, t in parsed if t is not None and entry_point in _defined(t)]
    if defining:
        chosen, tree = defining[-1]
        missing = _used(tree) - _defined(tree)
        helpers: list[str] = []
        for b, t in parsed:
            if b is chosen:
                break
            if t is not None and _library_only(t) and (_defined(t) & missing):
                helpers.append(b.code)
                missing -= _defined(t)
        return "\n\n".join([*helpers, chosen.code])
    if blocks:
        return max(blocks, key=lambda b: len(b.code)).code
    bare = _parse(body)
    if bare is not None and entry_point in _defined(bare):
        return body.strip("\n") + "\n"
    snippet = " ".join(body.split())[:120]
    raise ExtractError(
        f"no Python code block in the answer and the answer itself is not code defining "
        f"{entry_point!r} (answer starts: {snippet!r})"
    )


#: Fence tags that name each program language (``kind: program`` tasks).
PROGRAM_TAGS = {
    "python": _PYTHON_TAGS,
    "cpp": {"cpp", "c++", "cxx", "cc", "hpp"},
    "c": {"c", "h"},
    "javascript": {"javascript", "js", "node", "mjs", "cjs"},
    "rust": {"rust", "rs"},
    "java": {"java"},
}


def extract_program(text: str, language: str) -> str:
    """A program's source from a model's answer: the longest fenced block tagged with its
    language (or untagged), else the answer itself when it has no fence. Raises
    ExtractError when there is none."""
    if not text or not text.strip():
        raise ExtractError("the answer is empty")
    body = strip_reasoning(text)
    tags = PROGRAM_TAGS.get(language, {language}) | {""}
    blocks = [b for b in fenced_blocks(body) if b.lang in tags and b.code.strip()]
    if blocks:
        return max(blocks, key=lambda b: len(b.code)).code
    if not fenced_blocks(body):
        return body.strip("\n") + "\n"
    raise ExtractError(f"no {language} code block in the answer")
