"""Which YAML files are prompt suites (:func:`wants_file`), decided without importing the
prompt machinery: pytest offers the plugin every YAML file of the directories it walks
(a project's ``mkdocs.yml``, CI or data files), with or without ``--carbon``, and the
collection module costs tens of ms to import."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

#: A suite's strategies file, read by the prompt files beside it (prompts/strategies.py).
FILE_NAMES = ("strategies.yaml", "strategies.yml")

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


def _command_line_paths(config: pytest.Config) -> list[Path]:
    """The paths named on the command line, resolved (none when pytest took its
    arguments from ``testpaths`` or the current directory)."""
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        return []
    base = config.invocation_params.dir
    return [Path(base, arg.split("::")[0]).resolve() for arg in config.args]


def inside_named_dir(file_path: Path, config: pytest.Config) -> bool:
    """A directory holding the file was named on the command line."""
    target = file_path.resolve()
    return any(p.is_dir() and p in target.parents for p in _command_line_paths(config))


def _glob_regex(pattern: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def is_prompt_path(file_path: Path, rootpath: Path, glob: str) -> bool:
    """The settings' glob (relative to the rootdir), or any YAML file under a ``prompts``
    directory."""
    if file_path.suffix not in (".yaml", ".yml"):
        return False
    try:
        rel = file_path.resolve().relative_to(rootpath.resolve()).as_posix()
    except ValueError:
        rel = None
    if rel is not None and _glob_regex(glob).match(rel):
        return True
    return "prompts" in file_path.parent.parts


def _named_explicitly(file_path: Path, config: pytest.Config) -> bool:
    """The file, or a ``prompts`` directory holding it, was named on the command line."""
    target = file_path.resolve()
    for p in _command_line_paths(config):
        if p == target:
            return True
        if (
            p.is_dir()
            and p in target.parents
            and (
                p.name == "prompts"
                or "prompts" in target.relative_to(p).parts[:-1]
                or "prompts" in p.parts
            )
        ):
            return True
    return False


def wants_file(file_path: Path, parent: pytest.Collector) -> bool:
    """Whether a YAML file becomes a PromptFile: its path matches ``carbon_prompts``
    (default ``prompts/**/*.yaml``) or lies under a directory named ``prompts``, and either
    ``--carbon`` is on or the file (or its prompts directory) was named on the command
    line. ``pytest tests/`` never turns YAML data into tests, and a plain ``pytest`` never
    calls an LLM by surprise. A folder named on the command line may also hold files that
    declare the prompt schema (what ``pytest-carbon import`` writes)."""
    if file_path.name in FILE_NAMES:
        return False  # the suite's strategies, read by the prompt files beside it
    config = parent.config
    from pytest_carbon.session import get_session

    settings = get_session(config).settings
    explicit = parent.session.isinitpath(file_path)
    declared = False
    if not (explicit or is_prompt_path(file_path, config.rootpath, settings.carbon_prompts)):
        declared = inside_named_dir(file_path, config) and declares_prompt_schema(file_path)
        if not declared:
            return False
    return bool(settings.enabled or explicit or declared or _named_explicitly(file_path, config))
