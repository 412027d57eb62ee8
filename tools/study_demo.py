"""Run a small study of a prompt-suite folder against scripted models on a local server.

    python tools/study_demo.py prompts/algorithms OUT_DIR [pytest args...]

Starts ``tests/llm_server.py``'s OpenAI-compatible server on 127.0.0.1 with two scripted
models, then runs pytest on the folder with four models and two strategies:

* ``reference`` and ``variant:naive``: the suite's own solutions (built in);
* ``echo-coder``: answers every prompt with the task's reference (an A/A control: its
  cells must read 1.00x);
* ``loopy-coder``: answers with the naive variant, unless the prompt asks for
  energy-efficient code (the ``green`` strategy), when it answers with the reference.

The answers are scripted, not generated: the run shows what a study reports, with real
measurements of real code. Writes OUT_DIR/study.json (the JSON report) and study.html.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from llm_server import LLMServer, Reply  # noqa: E402

from pytest_carbon.prompts.spec import load  # noqa: E402
from pytest_carbon.prompts.strategies import BUILTIN  # noqa: E402

FENCE = "```"


def code(text: str) -> str:
    return f"Here is the solution:\n{FENCE}python\n{text}{FENCE}\n"


def main(argv: list[str]) -> int:
    folder, out = Path(argv[0]), Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    server = LLMServer()
    for path in sorted(folder.rglob("*.y*ml")):
        if path.name.startswith("strategies."):
            continue
        for task in load(path):
            marker = task.prompt.strip()[:60]
            naive = task.variants.get("naive", task.reference)
            server.add(Reply(text=code(task.reference)), model="echo-coder", prompt_contains=marker)
            # The green strategy appends its instruction to the prompt: the first rule
            # matches only a green request for this task, the second any other.
            green = BUILTIN["green"].wrap(task.prompt)[len(task.prompt) - 40 :]
            server.add(Reply(text=code(task.reference)), model="loopy-coder", prompt_contains=green)
            server.add(Reply(text=code(naive)), model="loopy-coder", prompt_contains=marker)
    args = [
        sys.executable,
        "-m",
        "pytest",
        str(folder),
        "-p",
        "no:cacheprovider",
        "-q",
        "--carbon",
        f"--carbon-base-url={server.url}",
        f"--carbon-llm-cache={out / 'llm-cache'}",
        f"--carbon-json={out / 'study.json'}",
        f"--carbon-html={out / 'study.html'}",
        "--carbon-model=reference",
        "--carbon-model=variant:naive",
        "--carbon-model=echo-coder",
        "--carbon-model=loopy-coder",
        "--carbon-strategy=plain",
        "--carbon-strategy=green",
        *argv[2:],
    ]
    try:
        return subprocess.call(args, cwd=ROOT)
    finally:
        server.close()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
