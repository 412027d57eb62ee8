"""The ``pytest-carbon`` console script: a thin dispatcher to one module per subcommand.

Each subcommand lives in its own module as ``main(argv: list[str]) -> int`` and is
imported only when run, so ``pytest-carbon --help`` stays instant.
"""

from __future__ import annotations

import importlib
import sys

#: name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "sensors": (
        "pytest_carbon.measure.doctor",
        "list sensors: readable or not, method, fix",
    ),
    "measure": ("pytest_carbon.cli.measure", "run a command under the meter: measure -- CMD ARGS"),
    "compare": ("pytest_carbon.cli.compare", "compare two reports; exit 1 on a regression"),
    "merge": ("pytest_carbon.results.merge", "merge reports from shards or machines into one"),
    "study": ("pytest_carbon.cli.study", "rank models x prompt strategies from reports"),
    "report": ("pytest_carbon.cli.report", "render a JSON report as HTML, CSV or Markdown"),
    "card": ("pytest_carbon.report.card", "print a minimum environmental card (Markdown)"),
    "import": ("pytest_carbon.importers", "import a public benchmark as prompt YAML files"),
    "sandbox": ("pytest_carbon.cli.sandbox", "list the sandbox's protections: active or missing"),
}


def usage() -> str:
    lines = ["usage: pytest-carbon COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<9} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run `pytest-carbon COMMAND --help` for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        return 0 if args else 2
    if args[0] == "--version":
        from pytest_carbon import __version__

        print(f"pytest-carbon {__version__}")
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"pytest-carbon: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    result: int = module.main(rest)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
