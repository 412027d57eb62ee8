"""Which YAML files of a folder named on the command line are prompt suites: those that
declare the prompt schema (as ``pytest-carbon import`` writes them)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

_SCHEMA_LINE = re.compile(r"^schema:\s*[\"']?pytest-carbon/prompt/", re.M)


def declares_prompt_schema(file_path: Path) -> bool:
    """The file's first lines declare ``schema: pytest-carbon/prompt/...`` (read as text:
    no YAML import for every YAML file of a project)."""
    try:
        with open(file_path, encoding="utf-8", errors="replace") as f:
            head = f.read(4096)
    except OSError:
        return False
    return _SCHEMA_LINE.search(head) is not None


def inside_named_dir(file_path: Path, config: pytest.Config) -> bool:
    """A directory holding the file was named on the command line."""
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        return False
    target = file_path.resolve()
    for arg in config.args:
        p = Path(config.invocation_params.dir, arg.split("::")[0]).resolve()
        if p.is_dir() and p in target.parents:
            return True
    return False
