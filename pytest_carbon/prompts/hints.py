"""Hints about model names: one named like a task's variant (``--carbon-model=naive``) is almost
surely ``variant:naive``: say so, instead of asking an LLM called "naive"."""

from __future__ import annotations

from typing import Any

from pytest_carbon.prompts.llm import VARIANT_PREFIX, is_builtin


def model_hint(task: Any, model: str) -> str | None:
    if is_builtin(model) or model not in getattr(task, "variants", {}):
        return None
    return (
        f"--carbon-model={model}: no built-in model has that name, and task {task.id!r} has "
        f"a variant {model!r}: did you mean --carbon-model={VARIANT_PREFIX}{model}?"
    )


def missing_variant(task: Any, model: str) -> str | None:
    """The skip reason of a ``variant:NAME`` model the task does not have, else None."""
    if not model.startswith(VARIANT_PREFIX):
        return None
    name = model[len(VARIANT_PREFIX) :]
    if name in task.variants:
        return None
    have = ", ".join(sorted(task.variants)) or "none"
    return f"task {task.id!r} has no variant {name!r} (its variants: {have})"
