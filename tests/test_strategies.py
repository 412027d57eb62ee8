"""Prompt strategies and per-model settings: the strategies file, item ids carrying every
factor, cache keys, and a study of two fake models x two strategies over real HTTP."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from llm_server import LLMServer, Reply

from pytest_carbon.prompts.llm import cache_key, messages_for
from pytest_carbon.prompts.spec import SpecError
from pytest_carbon.prompts.strategies import (
    BUILTIN,
    GREEN_INSTRUCTION,
    Factors,
    StrategyError,
    find_file,
    load,
)

F = "```"
GOOD = f"{F}python\ndef double(x):\n    return x + x\n{F}\n"
WRONG = f"{F}python\ndef double(x):\n    return x * 3\n{F}\n"


def task_yaml(task_id: str) -> str:
    return textwrap.dedent(
        f"""\
        id: {task_id}
        prompt: "Write double(x). TASK_{task_id.upper()}"
        entry_point: double
        reference: |
          def double(x):
              return 2 * x
        tests:
          - {{args: [2], expect: 4}}
        workload:
          calls: [{{args: [21]}}, {{args: [22]}}]
          min_time_s: 0.01
        timeout_s: 10
        """
    )


# -- the strategies file ---------------------------------------------------------------------


def test_builtin_strategies_wrap_the_prompt_without_formatting_its_braces() -> None:
    prompt = "Return {'a': 1} as a dict."
    assert BUILTIN["plain"].wrap(prompt) == prompt
    assert BUILTIN["green"].wrap(prompt) == prompt + "\n\n" + GREEN_INSTRUCTION
    assert Factors().select(()) == [BUILTIN["plain"]]


def test_an_unknown_strategy_names_the_closest_valid_one() -> None:
    with pytest.raises(StrategyError, match="unknown strategy 'gren'; did you mean 'green'"):
        Factors().select(("plain", "gren"))


def test_a_suite_file_adds_strategies_and_per_model_settings(tmp_path: Path) -> None:
    suite = tmp_path / "prompts" / "algorithms"
    suite.mkdir(parents=True)
    (tmp_path / "prompts" / "strategies.yaml").write_text(
        textwrap.dedent(
            """\
            schema: pytest-carbon/strategies/1
            strategies:
              terse:
                template: "{prompt}\\n\\nCode only."
                system: "You write Python."
            models:
              qwen2.5-coder:7b: {samples: 5, temperature: 0.6}
            """
        )
    )
    path = find_file(suite / "a.yaml", tmp_path)
    assert path == tmp_path / "prompts" / "strategies.yaml"
    factors = load(path)
    terse = factors.strategies["terse"]
    assert terse.wrap("P") == "P\n\nCode only." and terse.system == "You write Python."
    assert "green" in factors.strategies  # built-ins stay
    assert factors.models["qwen2.5-coder:7b"].samples == 5
    assert factors.models["qwen2.5-coder:7b"].temperature == 0.6
    assert find_file(tmp_path / "elsewhere" / "b.yaml", tmp_path / "elsewhere") is None


@pytest.mark.parametrize(
    "text,key",
    [
        ("strategies:\n  bad-name: {template: '{prompt}'}\n", "strategies.bad-name"),
        ("strategies:\n  x: {template: 'no placeholder'}\n", "strategies.x.template"),
        ("strategies:\n  x: {tempalte: '{prompt}'}\n", "strategies.x.tempalte"),
        ("models:\n  m: {samples: 0}\n", "models.m.samples"),
        ("models:\n  m: {temperature: 7}\n", "models.m.temperature"),
        ("strategy: {}\n", "strategy"),
    ],
)
def test_a_bad_strategies_file_names_the_key(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "strategies.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        load(path)
    assert info.value.key == key and str(path) in str(info.value)


def test_cache_keys_carry_strategy_and_temperature_and_plain_keys_are_unchanged() -> None:
    msgs = messages_for("P")
    plain = cache_key("http://h/v1", "m", msgs, 0.0, 0)
    assert plain == cache_key("http://h/v1", "m", msgs, 0.0, 0, "plain")
    # The key of a plain request is the one recorded before strategies existed.
    import hashlib

    old = {"endpoint": "http://h/v1", "model": "m", "messages": msgs, "temperature": 0.0}
    old["sample"] = 0
    canonical = json.dumps(old, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert plain == hashlib.sha256(canonical.encode()).hexdigest()
    assert cache_key("http://h/v1", "m", msgs, 0.0, 0, "same_template") != plain
    assert cache_key("http://h/v1", "m", msgs, 0.7, 0) != plain
    assert messages_for("P", "S")[0] == {"role": "system", "content": "S"}


# -- a study over real HTTP -----------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[LLMServer]:
    s = LLMServer()
    yield s
    s.close()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def _records(pytester: pytest.Pytester) -> dict[str, dict[str, Any]]:
    report = json.loads((pytester.path / "out.json").read_text())
    return {r["nodeid"]: r for r in report["tests"]}


@pytest.mark.slow
@pytest.mark.usefixtures("clean_env")
def test_two_models_by_two_strategies_through_a_local_server(
    pytester: pytest.Pytester, server: LLMServer
) -> None:
    (pytester.path / "prompts").mkdir()
    for task in ("one", "two"):
        (pytester.path / "prompts" / f"{task}.yaml").write_text(task_yaml(task))
    # model-b gets it right only when asked for energy-efficient code.
    server.add(Reply(text=GOOD), model="model-a")
    server.add(Reply(text=GOOD), model="model-b", prompt_contains="energy-efficient")
    server.add(Reply(text=WRONG), model="model-b")
    args = [
        "-p",
        "no:cacheprovider",
        "--carbon",
        "--carbon-idle=off",
        "--carbon-json=out.json",
        f"--carbon-base-url={server.url}",
        "--carbon-max-time=0.3",
        "--carbon-model=reference",
        "--carbon-model=model-a",
        "--carbon-model=model-b",
        "--carbon-strategy=plain",
        "--carbon-strategy=green",
        "-v",
    ]
    result = pytester.runpytest_subprocess(*args, timeout=300)
    # Per task: reference once, model-a x 2 strategies, model-b x 2 (plain is wrong).
    result.assert_outcomes(passed=8, failed=2)
    recs = _records(pytester)
    assert sorted(n.split("::")[1] for n in recs if n.startswith("prompts/one.yaml")) == [
        "one[model-a-green-0]",
        "one[model-a-plain-0]",
        "one[model-b-green-0]",
        "one[model-b-plain-0]",
        "one[reference-plain-0]",
    ]
    green = recs["prompts/one.yaml::one[model-a-green-0]"]["prompt"]
    assert green["strategy"] == "green" and green["correct"] is True
    assert recs["prompts/one.yaml::one[model-b-plain-0]"]["prompt"]["correct"] is False

    # Each request went out once, wrapped by its strategy; cache keys differ by strategy.
    bodies = [r["json"] for r in server.completions()]
    assert len(bodies) == 8
    users = [b["messages"][1]["content"] for b in bodies]
    assert sum(GREEN_INSTRUCTION in u for u in users) == 4
    entries = [
        json.loads(p.read_text()) for p in (pytester.path / ".carbon" / "llm-cache").rglob("*.json")
    ]
    assert len(entries) == 8 and len({e["key"] for e in entries}) == 8
    for e in entries:
        req = e["request"]
        expected = cache_key(
            req["endpoint"],
            req["model"],
            req["messages"],
            req["temperature"],
            req["sample"],
            req["strategy"],
        )
        assert e["key"] == expected
        assert (GREEN_INSTRUCTION in req["messages"][1]["content"]) == (req["strategy"] == "green")

    # The leaderboard: every cell, with its pass rate and its counts of tasks.
    out = result.stdout.str()
    board = out[out.index("study: (model · strategy) cells") :]
    rows = {line.split()[1] + " " + line.split()[3]: line for line in board.splitlines()[2:7]}
    assert set(rows) == {
        "reference plain",
        "model-a plain",
        "model-a green",
        "model-b green",
        "model-b plain",
    }
    assert "2/2/2" in rows["model-a plain"] and "100%" in rows["model-a green"]
    assert "0/0/2" in rows["model-b plain"] and " 0%" in rows["model-b plain"]
    assert board.splitlines()[6].split()[1] == "model-b"  # no frugality: ranked last
    assert "with model-a, the green prompt changed energy by" in " ".join(board.split())

    # A second run is served from the cache: no request.
    again = pytester.runpytest_subprocess(*args, timeout=300)
    again.assert_outcomes(passed=8, failed=2)
    assert len(server.completions()) == 8


@pytest.mark.usefixtures("clean_env")
def test_a_suite_strategy_sets_the_system_prompt_and_a_typo_stops_the_run(
    pytester: pytest.Pytester, server: LLMServer
) -> None:
    (pytester.path / "prompts").mkdir()
    (pytester.path / "prompts" / "one.yaml").write_text(task_yaml("one"))
    (pytester.path / "prompts" / "two.yaml").write_text(task_yaml("two"))
    (pytester.path / "prompts" / "strategies.yaml").write_text(
        'strategies:\n  terse: {template: "{prompt} (code only)", system: "Be brief."}\n'
        "models:\n  m: {temperature: 0.3}\n"
    )
    server.add(Reply(text=GOOD))
    base = ["-p", "no:cacheprovider", f"--carbon-base-url={server.url}", "--carbon-model=m"]
    # A short interleaved comparison per item: this test is about the request, not the ratio.
    # In-process: the requests reach the server over real HTTP all the same.
    result = pytester.runpytest(
        *base, "prompts/", "--carbon-strategy=terse", "--carbon-max-time=0.3", "-v"
    )
    result.assert_outcomes(passed=2)  # strategies.yaml is not a prompt file
    result.stdout.fnmatch_lines(["*one.yaml::one[[]m-terse-0[]] PASSED*"])
    body = next(r["json"] for r in server.completions("TASK_ONE"))
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert body["messages"][1]["content"].endswith("TASK_ONE (code only)")
    assert body["temperature"] == 0.3

    # A usage error at start-up: in-process, no interpreter to start.
    typo = pytester.runpytest(*base, "prompts/", "--carbon-strategy=tersee")
    assert typo.ret != 0
    typo.stdout.fnmatch_lines(["*unknown strategy 'tersee'; did you mean 'terse'?*"])
    typo.assert_outcomes(errors=1)  # one error for the suite, not one per file
    assert len(server.completions()) == 2


def test_items_per_model_follow_the_suite_samples_and_the_reference_needs_one() -> None:
    from pytest_carbon.options import Settings
    from pytest_carbon.prompts.collect import _factors
    from pytest_carbon.prompts.spec import loads
    from pytest_carbon.prompts.strategies import ModelSettings

    (task,) = loads(task_yaml("one"))
    factors = Factors(models={"big": ModelSettings(samples=3, temperature=0.5)})
    strategies = factors.select(("plain", "green"))
    settings = Settings(carbon_model=("reference", "variant:naive", "big", "small"))
    items = [
        (m, s.name, i, n, t) for m, s, i, n, t in _factors(task, settings, factors, strategies)
    ]
    assert items == [
        ("reference", "plain", 0, 1, None),
        ("variant:naive", "plain", 0, 1, None),
        ("variant:naive", "green", 0, 1, None),
        *[("big", s, i, 3, 0.5) for s in ("plain", "green") for i in range(3)],
        ("small", "plain", 0, 1, None),
        ("small", "green", 0, 1, None),
    ]
    # --carbon-samples wins over the suite's file.
    settings = Settings(carbon_model=("big",), carbon_samples=2)
    assert [n for _, _, _, n, _ in _factors(task, settings, factors, strategies)] == [2] * 4
