"""Prompt strategies and per-model settings: the factors of a study (see docs/studies.md).

A **strategy** is a named template that wraps a task's prompt (``{prompt}`` stands for
it) and may replace the system prompt. Two are built in: ``plain`` (the task's prompt as
it is, the default system prompt) and ``green`` (the prompt, then an instruction to write
the most energy-efficient solution). A suite defines its own in ``strategies.yaml``
(schema ``pytest-carbon/strategies/1``), found next to a prompt file or in the nearest
folder above it, up to the rootdir:

.. code-block:: yaml

    strategies:
      terse:
        template: "{prompt}\\n\\nAnswer with the code only."
        system: "You write Python."          # optional: replaces the system prompt
    models:                                  # optional: samples and temperature per model
      qwen2.5-coder:7b: {samples: 5, temperature: 0.8}

``--carbon-strategy=NAME`` (repeatable) selects strategies; the default is ``plain``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_carbon.prompts.paths import FILE_NAMES
from pytest_carbon.prompts.spec import SpecError

SCHEMA = "pytest-carbon/strategies/1"
DEFAULT = "plain"
PLACEHOLDER = "{prompt}"
#: No '-': an item id ``TASK[MODEL-STRATEGY-SAMPLE]`` reads from the right.
NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.]{0,63}$")

GREEN_INSTRUCTION = (
    "Write the most energy-efficient solution you can: choose the algorithm with the lowest "
    "time complexity, avoid needless copies, allocations and recomputation, and prefer the "
    "standard library's fast built-ins. Correctness still comes first."
)


@dataclass(frozen=True)
class Strategy:
    """``template`` holds ``{prompt}``; ``system`` replaces the system prompt when set."""

    name: str
    template: str = PLACEHOLDER
    system: str | None = None
    source: str = "built in"

    def wrap(self, prompt: str) -> str:
        # str.replace, not str.format: prompts hold code with braces.
        return self.template.replace(PLACEHOLDER, prompt)


BUILTIN: dict[str, Strategy] = {
    "plain": Strategy("plain"),
    "green": Strategy("green", PLACEHOLDER + "\n\n" + GREEN_INSTRUCTION),
}


@dataclass(frozen=True)
class ModelSettings:
    samples: int | None = None
    temperature: float | None = None


@dataclass(frozen=True)
class Factors:
    """The strategies and per-model settings a prompt file sees."""

    strategies: Mapping[str, Strategy] = field(default_factory=lambda: dict(BUILTIN))
    models: Mapping[str, ModelSettings] = field(default_factory=dict)
    path: str | None = None

    def select(self, names: tuple[str, ...]) -> list[Strategy]:
        """The strategies named (default ``plain``), in order. Raises StrategyError for an
        unknown name, with the closest valid one."""
        out = []
        for name in dict.fromkeys(names or (DEFAULT,)):
            if name not in self.strategies:
                raise StrategyError(unknown_message(name, list(self.strategies), self.path))
            out.append(self.strategies[name])
        return out


class StrategyError(ValueError):
    pass


def unknown_message(name: str, valid: list[str], path: str | None) -> str:
    close = difflib.get_close_matches(name, valid, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else "."
    where = (
        f" (built in, and {path})"
        if path
        else " (built in; a suite adds its own in strategies.yaml)"
    )
    return (
        f"--carbon-strategy: unknown strategy {name!r}{hint} Valid strategies{where}: "
        + ", ".join(valid)
    )


def find_file(prompt_file: Path, rootpath: Path) -> Path | None:
    """The nearest ``strategies.yaml`` from the prompt file's folder up to the rootdir."""
    folder = prompt_file.resolve().parent
    root = rootpath.resolve()
    while True:
        for name in FILE_NAMES:
            candidate = folder / name
            if candidate.is_file():
                return candidate
        if folder == root or folder.parent == folder or root not in folder.parents:
            return None
        folder = folder.parent


def load(path: Path) -> Factors:
    """Read a strategies file (strictly, as prompt files are). Raises SpecError."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(path, None, None, f"cannot read the file: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise SpecError(
            path, mark.line + 1 if mark else None, None, f"invalid YAML: {exc}"
        ) from None
    if not isinstance(data, dict):
        raise SpecError(path, 1, None, "expected a mapping with 'strategies' and/or 'models'")
    unknown = sorted(set(data) - {"schema", "strategies", "models"})
    if unknown:
        raise SpecError(path, None, unknown[0], "unknown key; expected schema, strategies, models")
    if "schema" in data and data["schema"] != SCHEMA:
        raise SpecError(path, None, "schema", f"expected {SCHEMA!r}, got {data['schema']!r}")
    strategies = dict(BUILTIN)
    for name, spec in (data.get("strategies") or {}).items():
        key = f"strategies.{name}"
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise SpecError(path, None, key, "expected a name of letters, digits, '_' or '.'")
        if not isinstance(spec, dict):
            raise SpecError(path, None, key, "expected a mapping {template, system}")
        bad = sorted(set(spec) - {"template", "system"})
        if bad:
            raise SpecError(path, None, f"{key}.{bad[0]}", "unknown key; expected template, system")
        template = spec.get("template", PLACEHOLDER)
        if not isinstance(template, str) or PLACEHOLDER not in template:
            raise SpecError(
                path, None, f"{key}.template", f"expected a string holding {PLACEHOLDER}"
            )
        system = spec.get("system")
        if system is not None and (not isinstance(system, str) or not system.strip()):
            raise SpecError(path, None, f"{key}.system", "expected a non-empty string")
        strategies[name] = Strategy(name, template, system, str(path))
    models = {}
    for name, spec in (data.get("models") or {}).items():
        key = f"models.{name}"
        if not isinstance(spec, dict) or set(spec) - {"samples", "temperature"}:
            raise SpecError(path, None, key, "expected a mapping {samples, temperature}")
        samples, temp = spec.get("samples"), spec.get("temperature")
        if samples is not None and (
            isinstance(samples, bool) or not isinstance(samples, int) or samples < 1
        ):
            raise SpecError(path, None, f"{key}.samples", "expected an integer >= 1")
        if temp is not None and (
            isinstance(temp, bool) or not isinstance(temp, (int, float)) or not 0 <= temp <= 2
        ):
            raise SpecError(path, None, f"{key}.temperature", "expected a number from 0 to 2")
        models[str(name)] = ModelSettings(samples, None if temp is None else float(temp))
    return Factors(strategies, models, str(path))


def factors_for(prompt_file: Path, rootpath: Path, cache: dict[Path, Any]) -> Factors:
    """The factors of a prompt file (each strategies file read once per run)."""
    path = find_file(prompt_file, rootpath)
    if path is None:
        return Factors()
    if path not in cache:
        try:
            cache[path] = load(path)
        except SpecError as exc:
            cache[path] = exc
    found = cache[path]
    if isinstance(found, SpecError):
        raise found
    assert isinstance(found, Factors)
    return found
