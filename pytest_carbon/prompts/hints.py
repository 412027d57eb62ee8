"""A model named like one of the task's variants (``--carbon-model=naive``) is almost
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
