"""Prompt suites end to end: YAML -> items -> generation (real HTTP) -> sandbox -> records."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from llm_server import LLMServer, Reply

from pytest_carbon.prompts.collect import safe_model_id
from pytest_carbon.prompts.paths import is_prompt_path

F = "```"


def task_yaml(task_id: str, marker: str | None = None, extra: str = "") -> str:
    """A tiny task: ``double(x)``; ``marker`` goes into the prompt so the server can route."""
    prompt = f"Write double(x). {marker or task_id}"
    return (
        textwrap.dedent(
            f"""\
        id: {task_id}
        prompt: "{prompt}"
        entry_point: double
        reference: |
          def double(x):
              return 2 * x
        tests:
          - {{args: [2], expect: 4}}
          - {{args: [-3], expect: -6}}
        workload: {{args: [21], min_time_s: 0.01}}
        timeout_s: 10
        """
        )
        + extra
    )


GOOD_ANSWER = f"Here you go:\n{F}python\ndef double(x):\n    return x + x\n{F}\n"
NOISY_ANSWER = (
    "<think>The user wants doubling. Maybe x*3? No.</think>\nSure! First, install nothing:\n"
    f"{F}bash\necho hi\n{F}\nThe function:\n~~~\ndef double(x):\n    return x << 1\n~~~\n"
    f"Example:\n{F}python\nprint(double(4))\n{F}\nHope this helps."
)
WRONG_ANSWER = f"{F}python\ndef double(x):\n    return x * 3\n{F}"


@pytest.fixture
def server() -> Iterator[LLMServer]:
    s = LLMServer()
    yield s
    s.close()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def records(pytester: pytest.Pytester, name: str = "out.json") -> dict[str, dict[str, Any]]:
    report = json.loads((pytester.path / name).read_text())
    return {r["nodeid"]: r for r in report["tests"]}


def run(pytester: pytest.Pytester, server: LLMServer | None, *args: str) -> pytest.RunResult:
    base = ["-p", "no:cacheprovider", "--carbon", "--carbon-idle=off", "--carbon-json=out.json"]
    if server is not None:
        base += [f"--carbon-base-url={server.url}", "--carbon-model=m"]
    return pytester.runpytest_subprocess(*base, *args, timeout=120)


@pytest.mark.usefixtures("clean_env")
def test_reference_suite_runs_offline_with_no_key(pytester: pytest.Pytester) -> None:
    (pytester.path / "prompts").mkdir()
    (pytester.path / "prompts" / "double.yaml").write_text(task_yaml("double"))
    (pytester.path / "prompts" / "sub").mkdir()
    (pytester.path / "prompts" / "sub" / "triple.yml").write_text(
        task_yaml(
            "triple",
            extra="variants:\n  slow: |\n    def double(x):\n"
            "        return sum(x for _ in range(2))\n",
        )
    )
    result = pytester.runpytest_subprocess(
        "prompts/",
        "--carbon",
        "--carbon-idle=off",
        "--carbon-json=out.json",
        "-p",
        "no:cacheprovider",
        "-v",
        timeout=120,
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*prompts/double.yaml::double?reference-plain-0? PASSED*",
            "*prompts/sub/triple.yml::triple?reference-plain-0? PASSED*",
        ]
    )
    recs = records(pytester)
    rec = recs["prompts/double.yaml::double[reference-plain-0]"]
    assert rec["energy_j"] > 0 and rec["rounds"] >= 1
    assert rec["prompt"]["task"] == "double" and rec["prompt"]["correct"] is True
    assert rec["prompt"]["reference_ratio"] == {"energy": 1.0, "duration": 1.0}
    assert rec["prompt"]["generation"]["method"] == "none"
    assert rec["prompt"]["generation"]["output_tokens"] == 0
    assert rec["per_call"]["energy_j"]["median"] > 0
    assert not (pytester.path / ".carbon" / "llm-cache").exists()  # no cache for built-ins


@pytest.mark.slow
@pytest.mark.usefixtures("clean_env")
def test_variants_fail_skip_and_measure_against_the_reference(pytester: pytest.Pytester) -> None:
    (pytester.path / "prompts").mkdir()
    (pytester.path / "prompts" / "t.yaml").write_text(
        task_yaml(
            "t",
            extra="variants:\n  wrong: |\n    def double(x):\n        return x * 3\n"
            "  slow: |\n    def double(x):\n        return sum(x for _ in range(2))\n",
        )
    )
    result = run(
        pytester,
        None,
        "prompts/",
        "--carbon-model=variant:wrong",
        "--carbon-model=variant:slow",
        "-rs",
    )
    # (A variant no task has is a usage error: tests/test_typos.py.)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*incorrect answer from 'variant:wrong' for task 't'*",
            "*first failing case:*",
            "*1 | def double(x):*",
            "*2 |     return x * 3*",
        ]
    )
    recs = records(pytester)
    wrong = recs["prompts/t.yaml::t[variant_wrong-plain-0]"]
    assert wrong["energy_j"] is None and wrong["prompt"]["correct"] is False
    assert wrong["prompt"]["failed_case"]["args"] == [2]
    slow = recs["prompts/t.yaml::t[variant_slow-plain-0]"]
    assert slow["prompt"]["reference_ratio"]["energy"] > 0
    assert slow["prompt"]["reference_ratio"]["duration"] > 0
    # Measured interleaved with the reference: the ratio is the median of the pairs'.
    comparison = slow["prompt"]["reference_comparison"]
    assert comparison["ratio"] == slow["prompt"]["reference_ratio"]["energy"]
    assert comparison["low"] <= comparison["ratio"] <= comparison["high"]
    assert comparison["pairs"] >= 1 and comparison["precision_target"] == 0.05
    assert comparison["stopped"] and comparison["checked_calls"] >= comparison["pairs"]
    assert len(slow["samples"]["energy_j"]) == slow["rounds"] == comparison["pairs"]
    result.stdout.fnmatch_lines(
        ["*ratio to the reference, per item*", "*t?variant:slow#0?: *× (95% CI *"]
    )
    # The reference's own item is not compared with itself.
    assert wrong["prompt"]["reference_comparison"] is None


@pytest.mark.slow
@pytest.mark.usefixtures("clean_env")
def test_a_timeout_while_measured_is_a_timeout_and_the_answer_is_not_correct(
    pytester: pytest.Pytester,
) -> None:
    (pytester.path / "prompts").mkdir()
    (pytester.path / "prompts" / "t.yaml").write_text(
        task_yaml(
            "t",
            extra="variants:\n  hangs: |\n    import time\n"
            "    def double(x):\n        if x > 2:  # the workload's input, not the tests'\n"
            "            time.sleep(60)\n        return 2 * x\n",
        ).replace("timeout_s: 10", "timeout_s: 2")
    )
    result = run(pytester, None, "prompts/", "--carbon-model=variant:hangs")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*workload timed out: the answer of 'variant:hangs'*"])
    rec = records(pytester)["prompts/t.yaml::t[variant_hangs-plain-0]"]
    # Correct means correct on every measured call too: pass@k counts it as a failure.
    assert rec["prompt"]["correct"] is False
    assert any("workload timed out" in w for w in rec["warnings"])


def write_endpoint_suite(pytester: pytest.Pytester) -> None:
    (pytester.path / "prompts").mkdir()
    body = "tasks:\n"
    for name in (
        "OK",
        "NOISE",
        "WRONG",
        "R429",
        "R500",
        "SLOW",
        "BADJSON",
        "EMPTY",
        "NOCODE",
        "NOTFOUND",
    ):
        body += textwrap.indent(task_yaml(name.lower(), f"TASK_{name}"), "  ").replace(
            "  id:", "- id:", 1
        )
    (pytester.path / "prompts" / "suite.yaml").write_text(body)


def script_endpoint(server: LLMServer) -> None:
    server.add(Reply(text=GOOD_ANSWER, usage=(50, 20)), prompt_contains="TASK_OK")
    server.add(Reply(text=NOISY_ANSWER), prompt_contains="TASK_NOISE")
    server.add(Reply(text=WRONG_ANSWER), prompt_contains="TASK_WRONG")
    server.add(
        Reply(status=429, headers={"retry-after": "0.05"}, error="slow down"),
        Reply(text=GOOD_ANSWER),
        prompt_contains="TASK_R429",
    )
    server.add(
        Reply(status=500, headers={"retry-after": "0"}, error="boom"), prompt_contains="TASK_R500"
    )
    server.add(Reply(text=GOOD_ANSWER, delay_s=3.0), prompt_contains="TASK_SLOW")
    server.add(Reply(body="{this is not json"), prompt_contains="TASK_BADJSON")
    server.add(Reply(text=""), prompt_contains="TASK_EMPTY")
    server.add(Reply(text="I would rather not write code today."), prompt_contains="TASK_NOCODE")
    server.add(
        Reply(status=404, error="The model `m` does not exist"), prompt_contains="TASK_NOTFOUND"
    )


@pytest.mark.slow
@pytest.mark.usefixtures("clean_env")
def test_every_endpoint_behaviour_ends_in_the_right_outcome(
    pytester: pytest.Pytester, server: LLMServer
) -> None:
    write_endpoint_suite(pytester)
    script_endpoint(server)
    result = run(pytester, server, "--carbon-llm-timeout=0.5", "--carbon-concurrency=4", "-v")
    result.assert_outcomes(passed=3, failed=1, errors=6)
    out = result.stdout.str()
    for name, outcome in [
        ("ok", "PASSED"),
        ("noise", "PASSED"),
        ("r429", "PASSED"),
        ("wrong", "FAILED"),
        ("r500", "ERROR"),
        ("slow", "ERROR"),
        ("badjson", "ERROR"),
        ("empty", "ERROR"),
        ("nocode", "ERROR"),
        ("notfound", "ERROR"),
    ]:
        assert f"suite.yaml::{name}[m-plain-0] {outcome}" in out, name
    result.stdout.fnmatch_lines_random(
        [
            "*pytest-carbon: generating 10 answer(s) from http://127.0.0.1:*",
            "*incorrect answer from 'm' for task 'wrong'*",
            "*kept failing: gave up after 5 attempt(s)*HTTP 500: boom*",
            "*no answer from http://127.0.0.1:* within 0.5 s (--carbon-llm-timeout)*",
            "*answered HTTP 200 with malformed JSON*",
            "*the model returned an empty answer*",
            "*no usable code in the answer*",
            "*I would rather not write code today.*",
            "*model 'm' or the API path was not found*does not exist*",
        ]
    )
    # 429 then success: two requests, the second after the Retry-After delay.
    first, second = server.completions("TASK_R429")
    assert second["time"] - first["time"] >= 0.05
    assert len(server.completions("TASK_R500")) == 5
    recs = records(pytester)
    ok = recs["prompts/suite.yaml::ok[m-plain-0]"]["prompt"]
    assert ok["generation"]["input_tokens"] == 50 and ok["generation"]["output_tokens"] == 20
    # An endpoint on this machine: the generation phase is measured with the session's
    # meter, the server's process (here the test process that serves) included, and
    # shared among the answers by the server's CPU time per request.
    assert ok["generation"]["method"] == "estimated" and ok["generation"]["energy_j"] >= 0
    assert ok["generation"]["server"].startswith("pid ")
    assert ok["generation"]["shared_by"] in ("server CPU time per request", "output tokens")
    assert not any(
        "own process tree only" in w for w in recs["prompts/suite.yaml::ok[m-plain-0]"]["warnings"]
    )
    assert ok["temperature"] == 0.0
    assert recs["prompts/suite.yaml::wrong[m-plain-0]"]["prompt"]["correct"] is False


@pytest.mark.slow
@pytest.mark.usefixtures("clean_env")
def test_the_cache_serves_reruns_and_the_modes_behave(
    pytester: pytest.Pytester, server: LLMServer
) -> None:
    (pytester.path / "prompts").mkdir()
    (pytester.path / "prompts" / "a.yaml").write_text(task_yaml("a", "TASK_A", "samples: 2\n"))
    server.add(Reply(text=GOOD_ANSWER, usage=(5, 6)))
    run(pytester, server).assert_outcomes(passed=2)
    assert len(server.completions()) == 2
    temps = {r["json"]["temperature"] for r in server.completions()}
    assert temps == {0.8}  # several samples need diversity
    cached = list((pytester.path / ".carbon" / "llm-cache").rglob("*.json"))
    assert len(cached) == 2

    again = run(pytester, server, "-v")
    again.assert_outcomes(passed=2)
    assert len(server.completions()) == 2  # served from the cache: no request
    assert "generating" not in again.stdout.str()  # quiet when all answers are cached
    rec = records(pytester)["prompts/a.yaml::a[m-plain-1]"]["prompt"]
    assert rec["generation"]["cached"] is True and rec["generation"]["output_tokens"] == 6

    run(pytester, server, "--carbon-llm-mode=live").assert_outcomes(passed=2)
    assert len(server.completions()) == 4  # live always calls

    replay = run(pytester, server, "--carbon-llm-mode=replay", "--carbon-llm-cache=empty-cache")
    replay.assert_outcomes(errors=2)
    replay.stdout.fnmatch_lines(["*replay mode: no cached answer for model 'm'*empty-cache*"])
    assert len(server.completions()) == 4


@pytest.mark.slow
@pytest.mark.usefixtures("clean_env")
def test_a_model_without_key_or_endpoint_says_what_to_set(pytester: pytest.Pytester) -> None:
    (pytester.path / "prompts").mkdir()
    (pytester.path / "prompts" / "a.yaml").write_text(task_yaml("a"))
    result = run(pytester, None, "--carbon-model=gpt-4o-mini", "--carbon-model=reference")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*no LLM endpoint is configured: set OPENAI_API_KEY*"])


BAD_FILES = {
    "unknown_key.yaml": (
        task_yaml("u").replace("timeout_s:", "timeout:"),
        11,
        "'timeout'",
        "unknown key",
    ),
    "wrong_type.yaml": (
        task_yaml("w").replace("min_time_s: 0.01", "min_time_s: fast"),
        10,
        "'workload.min_time_s'",
        "expected a number > 0, got 'fast'",
    ),
    "missing_key.yaml": (
        task_yaml("m").replace("entry_point: double\n", ""),
        1,
        "'entry_point'",
        "missing required key",
    ),
    "syntax.yaml": ("id: s\nprompt: [unclosed\nentry_point: f\n", 3, None, "invalid YAML"),
    "dup.yaml": (
        "tasks:\n"
        + "".join(
            textwrap.indent(task_yaml("same"), "  ").replace("  id:", "- id:", 1) for _ in "ab"
        ),
        13,
        "'tasks[1].id'",
        "duplicate id 'same' (first used on line 2)",
    ),
}


@pytest.mark.slow
@pytest.mark.usefixtures("clean_env")
def test_malformed_yaml_errors_name_file_line_and_problem(pytester: pytest.Pytester) -> None:
    prompts = pytester.path / "prompts"
    prompts.mkdir()
    for name, (text, *_rest) in BAD_FILES.items():
        (prompts / name).write_text(text)
    (prompts / "good.yaml").write_text(task_yaml("good"))
    result = run(pytester, None)
    result.assert_outcomes(passed=1, errors=len(BAD_FILES))
    out = result.stdout.str()
    for name, (_text, line, key, words) in BAD_FILES.items():
        where = f"prompts/{name}:{line}:"
        matching = [ln for ln in out.splitlines() if where in ln and words in ln]
        assert matching, f"{name}: expected {where} ... {words}"
        if key:
            assert f"key {key}" in matching[0]


@pytest.mark.slow
@pytest.mark.usefixtures("clean_env")
def test_yaml_outside_prompt_dirs_is_never_collected(pytester: pytest.Pytester) -> None:
    (pytester.path / "tests" / "data").mkdir(parents=True)
    (pytester.path / "tests" / "data" / "config.yaml").write_text("not: [a, prompt\n")
    pytester.makepyfile(test_a="def test_a():\n    pass\n")
    (pytester.path / "prompts").mkdir()
    (pytester.path / "prompts" / "p.yaml").write_text(task_yaml("p"))
    run(pytester, None, "tests", "test_a.py").assert_outcomes(passed=1)
    # Without --carbon a plain run leaves prompt suites alone; naming them runs them.
    plain = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=60)
    plain.assert_outcomes(passed=1)
    named = pytester.runpytest_subprocess("-p", "no:cacheprovider", "prompts", timeout=60)
    named.assert_outcomes(passed=1)


@pytest.mark.slow
@pytest.mark.usefixtures("clean_env")
def test_task_marks_become_pytest_marks(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nmarkers =\n    slow: slow tasks\n")
    (pytester.path / "prompts").mkdir()
    (pytester.path / "prompts" / "a.yaml").write_text(task_yaml("a", extra="marks: [slow]\n"))
    (pytester.path / "prompts" / "b.yaml").write_text(task_yaml("b"))
    result = run(pytester, None, "-m", "not slow", "--strict-markers")
    result.assert_outcomes(passed=1, deselected=1)


def test_prompt_paths_and_ids(tmp_path: Path) -> None:
    root = tmp_path
    assert is_prompt_path(root / "prompts" / "a.yaml", root, "prompts/**/*.yaml")
    assert is_prompt_path(root / "prompts" / "x" / "y" / "a.yaml", root, "prompts/**/*.yaml")
    assert is_prompt_path(root / "suites" / "a.yaml", root, "suites/*.yaml")
    assert not is_prompt_path(root / "suites" / "deep" / "a.yaml", root, "suites/*.yaml")
    assert is_prompt_path(root / "pkg" / "prompts" / "a.yml", root, "nothing/*.yaml")
    assert not is_prompt_path(root / "tests" / "data" / "a.yaml", root, "prompts/**/*.yaml")
    assert not is_prompt_path(root / "prompts" / "a.json", root, "prompts/**/*.yaml")
    assert safe_model_id("variant:naive") == "variant_naive"
    assert safe_model_id("meta-llama/Llama-3.1-8B") == "meta-llama_Llama-3.1-8B"
    assert safe_model_id("llama3.1:8b") == "llama3.1_8b"
