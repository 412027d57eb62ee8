"""The bench's wipe between workers never crosses into another mount, at any depth.

A virtual environment under /tmp is shown inside the sandbox at its own path, a bind
mount below the sandbox's /tmp tmpfs. The wipe once descended into it (``shutil.rmtree``
checked only the top-level entries' devices): every file of the environment was tried on
every round, seconds of CPU charged to the round, and a writable bind would have been
emptied. Run in a user and mount namespace of its own, so the bind is real.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = r"""
import ctypes, os, sys
sys.path.insert(0, sys.argv[1])
from pytest_carbon.sandbox.child.bench import _wipe
top, src = sys.argv[2], sys.argv[3]
libc = ctypes.CDLL(None, use_errno=True)
MS_BIND = 4096
if libc.mount(b"tmpfs", top.encode(), b"tmpfs", 0, b"size=1m"):  # as the sandbox's /tmp
    sys.exit(77)
os.makedirs(os.path.join(top, "deep", "er", "mnt"))
with open(os.path.join(top, "deep", "leftover"), "w") as f:
    f.write("x")
if libc.mount(src.encode(), os.path.join(top, "deep", "er", "mnt").encode(), None, MS_BIND, None):
    sys.exit(77)
_wipe([top])
print(sorted(os.listdir(src)), os.path.exists(os.path.join(top, "deep", "leftover")))
"""


def test_the_wipe_leaves_a_bind_mount_below_it_alone(tmp_path: Path) -> None:
    if shutil.which("unshare") is None:
        pytest.skip("no unshare(1): the bind mount needs a mount namespace of its own")
    top, src = tmp_path / "tmpfs", tmp_path / "host"
    top.mkdir()
    src.mkdir()
    for i in range(3):
        (src / f"f{i}").write_text("keep")
    root = str(Path(__file__).resolve().parents[1])
    proc = subprocess.run(
        ["unshare", "-rm", sys.executable, "-c", SCRIPT, root, str(top), str(src)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if proc.returncode == 77 or "unshare failed" in proc.stderr:
        pytest.skip(f"no user/mount namespace here: {proc.stderr.strip()[:200]}")
    assert proc.returncode == 0, proc.stderr
    # The host directory behind the bind keeps its files; what the round left is gone.
    assert proc.stdout.split() == ["['f0',", "'f1',", "'f2']", "False"]
