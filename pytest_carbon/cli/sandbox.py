"""``pytest-carbon sandbox``: which protections the prompt-suite sandbox has here.

It probes the machine exactly as a prompt suite would (it starts the sandbox once) and
prints every protection, active or missing; a missing one comes with the reason the
machine gave. The same list of active protections is carried in every sandbox result.
``--json`` also gives what the code's root filesystem holds (``root``: read-only binds,
links, tmpfs, files of /etc), or why it could not be built.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pytest-carbon sandbox",
        description="Probe the sandbox that runs generated code and list its protections: "
        "active, or missing with the reason.",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument(
        "--strict",
        action="store_true",
        help="exit with status 1 when any protection is missing",
    )
    return p


def survey() -> dict[str, Any]:
    """The sandbox's protections on this machine, as a JSON-ready dict."""
    from pytest_carbon.sandbox.isolation import isolation

    iso = isolation()
    return {
        "schema": "pytest-carbon/sandbox/1",
        "mode": iso.mode,
        "network_cut": iso.network_cut,
        "detail": iso.detail,
        "protections": [p.to_json() for p in iso.protections],
        "active": list(iso.active),
        "missing": iso.missing,
        "root": iso.notes.get("root"),
        "toolchains": _toolchains(),
        "cgroup_parents": {
            "v2": iso.cgroups.v2 if iso.cgroups else None,
            "v1_memory": iso.cgroups.v1_memory if iso.cgroups else None,
            "v1_pids": iso.cgroups.v1_pids if iso.cgroups else None,
        },
    }


def _toolchains() -> list[dict[str, Any]]:
    """``kind: program`` languages: each toolchain's tool and the host directories its
    compiles and runs see read-only besides the system directories, or why it is missing."""
    from pytest_carbon.sandbox.languages import toolchains

    return [
        {
            "language": t.language,
            "available": t.missing is None,
            "tool": t.tool or None,
            "mounts": list(t.mounts),
            "missing": t.missing,
            "line": t.describe(),
        }
        for t in toolchains()
    ]


def _text(report: dict[str, Any]) -> str:
    lines = [
        f"pytest-carbon sandbox: mode {report['mode']} "
        f"(network {'cut' if report['network_cut'] else 'NOT cut'})",
        f"  {report['detail']}",
        "",
    ]
    width = max((len(p["name"]) for p in report["protections"]), default=10)
    for p in report["protections"]:
        state = "active " if p["active"] else "MISSING"
        lines.append(f"{p['name']:<{width}}  {state}  {p['detail']}")
    lines += ["", "toolchain mounts (programs; read-only, besides the system directories):"]
    lines += [f"  {t['line']}" for t in report.get("toolchains", [])]
    missing = report["missing"]
    lines.append("")
    if missing:
        lines.append(
            f"{len(report['active'])} protections active, {len(missing)} missing: "
            + ", ".join(missing)
            + ". Run prompt suites in a container or VM where these matter."
        )
    else:
        lines.append(f"All {len(report['active'])} protections are active.")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    report = survey()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(_text(report))
    sys.stdout.flush()
    return 1 if args.strict and report["missing"] else 0
