"""Tries to delete files outside its sandbox: under the parent's working directory, under
$HOME, and anything named like the canary under /tmp (files removed, directories removed
as trees). Returns how many it deleted."""

import glob
import os
import shutil

MARKER = "pytest_carbon_canary"


def run():
    deleted = 0
    targets = set()
    parent_cwd = None
    try:
        parent_cwd = os.readlink(f"/proc/{os.getppid()}/cwd")
    except OSError as exc:
        print("parent cwd hidden:", exc)
    for root in (
        parent_cwd,
        os.environ.get("PWD"),
        os.environ.get("HOME"),
        os.getcwd(),
        os.path.dirname(os.getcwd()),
        "/tmp",
    ):
        if root:
            targets.update(glob.glob(os.path.join(root, "**", MARKER + "*"), recursive=True))
    for path in sorted(targets):
        try:
            if os.path.isdir(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
            deleted += 1
            print("deleted", path)
        except OSError as exc:
            print("cannot delete", path, exc)
    return deleted
