"""Stored runs: ``<root>/<machine_id>/NNNN_<name>.json``, laid out like pytest-benchmark's.

A run is saved atomically under the next id of its machine, with the git commit, branch
and dirty flag; ``find`` resolves ``latest``, an id or a path; ``history`` gives the most
recent runs of one machine, for the between-run noise of :mod:`pytest_carbon.compare.judge`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from pytest_carbon.results.io import ReportError, load_report

#: Past runs read from storage for noise levels (the most recent ones). A family of m
#: judgements needs about 20 x m / tests single-run excursions (compare/judge.py): 22
#: stored runs for one gated metric, 42 for two; 60 leaves room.
HISTORY_LIMIT = 60


def write_json_atomic(path: str | Path, data: Any) -> Path:
    """Write JSON atomically (see :func:`pytest_carbon.results.atomic.write_text_atomic`)."""
    from pytest_carbon.results.atomic import write_text_atomic

    return write_text_atomic(path, json.dumps(data, indent=1, allow_nan=False, default=str) + "\n")


def git_info(cwd: str | Path | None = None, timeout_s: float = 5.0) -> dict[str, Any] | None:
    """Commit, branch and dirty flag of the git work tree at ``cwd``; None outside git."""

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", *args],
                cwd=cwd,
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return None
    branch = git("rev-parse", "--abbrev-ref", "HEAD")
    if branch in (None, "HEAD"):
        # CI checks out pull requests on a detached HEAD; the runner names the branch.
        branch = os.environ.get("GITHUB_HEAD_REF") or os.environ.get("GITHUB_REF_NAME") or None
    status = git("status", "--porcelain", "--untracked-files=no")
    dirty = bool(status) if status is not None else None
    return {"commit": commit, "branch": branch, "dirty": dirty}


# -- storage -----------------------------------------------------------------------------

_RUN_FILE = re.compile(r"^(?P<id>\d{4,})_(?P<name>.+)\.json$")


def _safe_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.")
    return cleaned[:80] or "run"


class Storage:
    """Runs stored as ``<root>/<machine_id>/NNNN_<name>.json``, ids increasing per machine."""

    def __init__(self, root: str | Path = ".carbon") -> None:
        self.root = Path(root)

    def runs(self, machine_id: str | None = None) -> list[Path]:
        """Stored runs, oldest first: of one machine, or of all machines (by mtime)."""
        if machine_id is not None:
            return self._machine_runs(self.root / _safe_name(machine_id))
        if not self.root.is_dir():
            return []
        found = [p for d in self.root.iterdir() if d.is_dir() for p in self._machine_runs(d)]
        return sorted(found, key=lambda p: (p.stat().st_mtime, p.name))

    @staticmethod
    def _machine_runs(directory: Path) -> list[Path]:
        if not directory.is_dir():
            return []
        runs = []
        for p in directory.iterdir():
            m = _RUN_FILE.match(p.name)
            if m and p.is_file():
                runs.append((int(m["id"]), p))
        return [p for _, p in sorted(runs)]

    def save(self, report: dict[str, Any], name: str = "run") -> Path:
        """Store ``report`` under the next id of its machine and return the path.

        Adds ``report["run"]["git"]`` (commit, branch, dirty) when run inside git.
        The file appears complete or not at all; two processes saving at once get two ids.
        """
        machine_id = str((report.get("machine") or {}).get("machine_id") or "unknown-machine")
        run = report.setdefault("run", {})
        if isinstance(run, dict) and "git" not in run:
            git = git_info()
            if git is not None:
                run["git"] = git
        directory = self.root / _safe_name(machine_id)
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".saving.", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(report, f, indent=1, allow_nan=False, default=str)
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())
            while True:
                existing = self._machine_runs(directory)
                last = int(_RUN_FILE.match(existing[-1].name)["id"]) if existing else 0  # type: ignore[index]
                target = directory / f"{last + 1:04d}_{_safe_name(name)}.json"
                try:
                    # link() fails when the name exists: a concurrent saver took this id.
                    os.link(tmp, target)
                except FileExistsError:
                    continue
                except OSError:
                    # No hard links on this file system: rename (not race-free, still atomic).
                    if target.exists():
                        continue
                    os.replace(tmp, target)
                return target
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)

    def find(self, spec: str | None, machine_id: str) -> Path | None:
        """The stored run that ``spec`` names, or None.

        ``None``/``"latest"``: the latest run of this machine, else the latest of any machine.
        ``"NNNN"`` (or ``NNNN_name``): that id, on this machine first. Anything else: a path.
        """
        if spec is None or spec == "latest":
            own = self.runs(machine_id)
            if own:
                return own[-1]
            anywhere = self.runs()
            return anywhere[-1] if anywhere else None
        if re.fullmatch(r"\d+(_.*)?", spec):
            number, _, rest = spec.partition("_")
            mine = self.runs(machine_id)
            candidates = mine + [p for p in self.runs() if p not in mine]
            for p in candidates:
                m = _RUN_FILE.match(p.name)
                if m and int(m["id"]) == int(number) and (not rest or m["name"] == rest):
                    return p
            path = Path(spec)
            return path if path.is_file() else None
        path = Path(spec)
        if path.is_file():
            return path
        in_root = self.root / spec
        return in_root if in_root.is_file() else None

    def load(self, path: str | Path) -> dict[str, Any]:
        return load_report(path)

    def history(
        self, machine_id: str, limit: int = HISTORY_LIMIT, exclude: Path | None = None
    ) -> list[dict[str, Any]]:
        """The most recent stored runs of this machine (unreadable files are skipped)."""
        out = []
        for p in self.runs(machine_id)[-limit:]:
            if exclude is not None and p.resolve() == exclude.resolve():
                continue
            with contextlib.suppress(ReportError):
                out.append(load_report(p))
        return out
