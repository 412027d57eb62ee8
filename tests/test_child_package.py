"""The sandbox's child side is a package of its own: standard library and relative imports
only, built into one zipapp that runs under ``python -I``."""

from __future__ import annotations

import ast
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from pytest_carbon.sandbox.isolation import CHILD_APP, CHILD_DIR, child_app

MODULES = sorted(CHILD_DIR.glob("*.py"))


def _imports(path: Path) -> list[tuple[int, str | None, int]]:
    """(line, module, level) of every import in ``path``, nested ones included."""
    found: list[tuple[int, str | None, int]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, 0) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.lineno, node.module, node.level))
    return found


def test_the_child_package_has_the_modules_the_zipapp_needs() -> None:
    names = {p.name for p in MODULES}
    assert {"__init__.py", "__main__.py", "protocol.py", "worker.py"} <= names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_a_child_module_imports_the_standard_library_and_its_own_package_only(
    path: Path,
) -> None:
    stdlib = sys.stdlib_module_names
    bad = []
    for line, module, level in _imports(path):
        if level == 0:
            top = (module or "").split(".")[0]
            if top != "__future__" and top not in stdlib:
                bad.append(f"line {line}: import {module} (not the standard library)")
        elif level > 1:
            bad.append(f"line {line}: a relative import out of child/ (level {level})")
        else:
            target = (module or "").split(".")[0]
            if target and not (CHILD_DIR / f"{target}.py").is_file():
                bad.append(f"line {line}: from .{module} (no such module in child/)")
    assert not bad, f"{path.name}: " + "; ".join(bad)


def test_the_worker_runs_alone_so_it_imports_nothing_relative() -> None:
    # The zygote runs worker.py's source as ``python -c``: no package around it.
    relative = [(line, m) for line, m, level in _imports(CHILD_DIR / "worker.py") if level]
    assert relative == []


def test_the_zipapp_holds_the_child_package_and_a_main() -> None:
    data = child_app()
    assert child_app() is data  # built once per process
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        names = set(z.namelist())
        main = z.read("__main__.py").decode()
    sources = {f"child/{p.name}" for p in MODULES}
    assert names == {"__main__.py"} | sources | {f"{n}c" for n in sources}
    assert "child.__main__" in main


def _write_app(tmp_path: Path) -> Path:
    app = tmp_path / CHILD_APP
    app.write_bytes(child_app())
    return app


def test_the_zipapp_refuses_bad_arguments_with_its_usage(tmp_path: Path) -> None:
    app = _write_app(tmp_path)
    for args in ([], ["3"], ["x", "4"]):
        r = subprocess.run(
            [sys.executable, "-I", str(app), *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 2, (args, r.stderr)
        assert "usage: python -I child.pyz CTL_OUT_FD CTL_IN_FD" in r.stderr


def test_the_zipapp_answers_a_probe_job_on_its_control_pipe(tmp_path: Path) -> None:
    """The plain (uncontained) probe: the zipapp starts under ``python -I``, reads its
    job, says ``setup`` and ``result``, and removes the job file."""
    app = _write_app(tmp_path)
    (tmp_path / "job.json").write_text(json.dumps({"mode": "probe", "contain": False}))
    out_r, out_w = os.pipe()
    in_r, in_w = os.pipe()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-I", str(app), str(out_w), str(in_r)],
            cwd=tmp_path,
            pass_fds=(out_w, in_r),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        os.close(out_w)
        os.close(in_r)
        with os.fdopen(out_r, "rb") as ctl:
            out_r = -1
            lines = ctl.read().splitlines()
        _, stderr = proc.communicate(timeout=60)
    finally:
        for fd in (out_r, in_w):
            if fd >= 0:
                os.close(fd)
    assert proc.returncode == 0, stderr.decode()
    messages = [json.loads(line) for line in lines]
    assert [m["type"] for m in messages] == ["setup", "result"]
    assert messages[1]["version"] == sys.version
    assert not (tmp_path / "job.json").exists()


def test_the_zygote_program_is_the_worker_module_and_compiles() -> None:
    from pytest_carbon.sandbox.child import bench

    program = bench.worker_program()
    assert program.startswith((CHILD_DIR / "worker.py").read_text())
    assert program.rstrip().endswith("bench_zygote()")
    compile(program, "<string>", "exec")


def test_tracebacks_from_the_sandbox_keep_the_runners_and_the_candidates_lines() -> None:
    """The runner's sources are cached before containment hides the zipapp; the
    candidate's lines come from the code it was sent."""
    from pytest_carbon.sandbox.verify import verify

    code = "def f(x):\n    return 1 / x\n"
    r = verify(code, "f", [{"args": [0], "expect": 1}], None, timeout_s=30)
    error = r.failed_case["error"] if r.failed_case else ""
    assert not r.passed
    assert 'File "child.pyz/child/verify.py"' in error and "got = fn(*args, **kwargs)" in error
    assert 'File "<candidate>", line 2, in f' in error and "return 1 / x" in error
