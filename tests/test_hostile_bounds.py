"""Everything the candidate can send is bounded, and a broken answer fails its own item.

Issue 19, item 5: the hostile answers in ``tests/hostile/bounds_*.py`` run through the
real sandbox (a deep message, a message with no end, a trickle, a forged case index, a
lone surrogate), then whole sessions through pytester: a bad file or a broken answer
fails its own item, the files beside it still run, every report is written, and
``complete`` is false only when pytest-carbon itself failed on an item.
"""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_carbon.sandbox.isolation import SandboxError
from pytest_carbon.sandbox.verify import verify
from pytest_carbon.sandbox.wire_limits import (
    MAX_MESSAGE_BYTES,
    MAX_MESSAGE_DEPTH,
    WireLimitError,
    clip_display,
    decode_message,
    exceeds_depth,
)

HOSTILE = Path(__file__).with_name("hostile")
ADD_CASES = [{"args": [1, 2], "expect": 3}]
#: Time a sandbox may take, on a busy machine, beyond its deadline to be killed and
#: cleaned up (the runs below were stopped by their deadline, not by this slack).
SLACK_S = 15.0


def hostile(name: str) -> str:
    return (HOSTILE / f"{name}.py").read_text()


def verdict(code: str, entry: str, tests: list[dict[str, Any]], timeout_s: float) -> str:
    """The failure's text, whether the sandbox raised it or gave it as a verdict."""
    try:
        r = verify(code, entry, tests, None, timeout_s=timeout_s)
    except SandboxError as exc:
        return str(exc)
    assert not r.passed, "a hostile answer passed"
    return r.message + "\n" + json.dumps(r.failed_case)


# -- the bounds, on their own -----------------------------------------------------------
def _nested(n: int) -> bytes:
    return b"[" * n + b"]" * n


@pytest.mark.parametrize(
    ("text", "deeper"),
    [
        (_nested(MAX_MESSAGE_DEPTH), False),
        (_nested(MAX_MESSAGE_DEPTH + 1), True),
        (b"[" * 100_000, True),  # never closed: a decoder would still descend
        (b'{"a": [' + b"1," * 10_000 + b'1], "b": {"c": []}}', False),
        (b'["' + b"[" * 1000 + b'"]', False),  # brackets inside a string do not count
        (b'["\\"' + b"{" * 1000 + b'"]', False),  # nor after an escaped quote
        (b"]" * 1000 + b"[" * 10, False),  # a decoder stops at the first stray bracket
    ],
)
def test_depth_is_measured_on_the_bytes(text: bytes, deeper: bool) -> None:
    assert exceeds_depth(text, MAX_MESSAGE_DEPTH) is deeper


def test_a_message_is_refused_before_json_sees_it() -> None:
    with pytest.raises(WireLimitError, match=f"nested deeper than {MAX_MESSAGE_DEPTH} levels"):
        decode_message(_nested(100_000))
    with pytest.raises(WireLimitError, match="over 16 MiB"):
        decode_message(b" " * (MAX_MESSAGE_BYTES + 1))
    with pytest.raises(ValueError):  # garbage, not a bound: the caller skips it
        decode_message(b"not json")
    assert decode_message(b'{"type": "got", "value": [[1], {"a": null}]}') == {
        "type": "got",
        "value": [[1], {"a": None}],
    }


def test_display_text_is_clipped_with_a_note() -> None:
    assert clip_display("short") == "short"
    clipped = clip_display("x" * 100_000)
    assert clipped.startswith("x" * 1000) and "more characters cut" in clipped
    assert len(clipped) < 100_000


# -- through the real sandbox -----------------------------------------------------------
def test_a_100000_deep_message_fails_the_answer_naming_the_bound() -> None:
    text = verdict(hostile("bounds_deep_json"), "add", ADD_CASES, timeout_s=20)
    assert f"nested deeper than {MAX_MESSAGE_DEPTH} levels" in text
    assert "RecursionError" not in text


def test_a_message_over_the_size_bound_fails_at_once() -> None:
    start = time.monotonic()
    text = verdict(hostile("bounds_huge_message"), "run", [{"args": [63, 0.001], "expect": 1}], 60)
    elapsed = time.monotonic() - start
    assert "message over 16 MiB without an end of line (MAX_MESSAGE_BYTES)" in text
    assert "timed out" not in text
    assert elapsed < 60, elapsed  # stopped by the bound, not by the run's deadline


@pytest.mark.slow  # waits out its 3 s deadline
def test_a_trickle_cannot_stretch_the_deadline() -> None:
    # Just under the bound, then a byte every 0.2 ms: only the deadline can stop it. (A
    # read loop that copied the buffer for each byte never saw its deadline again.)
    timeout_s = 3.0
    start = time.monotonic()
    text = verdict(
        hostile("bounds_huge_message"), "run", [{"args": [15, 0.0002], "expect": 1}], timeout_s
    )
    elapsed = time.monotonic() - start
    assert "timed out after 3 s" in text
    assert elapsed < timeout_s + SLACK_S, elapsed


def test_a_forged_case_index_fails_the_answer() -> None:
    text = verdict(hostile("bounds_case_index"), "add", ADD_CASES, timeout_s=20)
    assert text  # a failure, whatever its words: not a pass, and no IndexError escaping


def test_a_lone_surrogate_in_an_exception_is_shown_escaped() -> None:
    r = verify(hostile("bounds_surrogate"), "add", ADD_CASES, None, timeout_s=20)
    assert not r.passed
    shown = json.dumps(r.failed_case, ensure_ascii=False) + r.message + r.stderr
    shown.encode("utf-8")  # no lone surrogate left: any writer can encode it
    assert "\\udc80" in r.message


# -- every writer survives any string ---------------------------------------------------
def test_every_writer_survives_lone_surrogates(tmp_path: Path) -> None:
    import factory

    from pytest_carbon.report.card import render_card
    from pytest_carbon.report.csvreport import write_csv
    from pytest_carbon.report.html import write_html
    from pytest_carbon.report.markdown import render_markdown
    from pytest_carbon.results.atomic import write_text_atomic
    from pytest_carbon.results.io import load_report, write_json

    bad = "bad \udc80 input \ud800"
    rec = factory.record("prompts/t.yaml::t[m\udfff-0]", [0.2, 0.3])
    rec["prompt"] = factory.prompt("t", "m\udfff", ratio=1.2)
    failed = factory.unmeasured(
        "prompts/t.yaml::u[m-0]",
        prompt=factory.prompt("u", "m", correct=False, failed_case={"error": bad}),
        reason=bad,
    )
    report = factory.report([rec, failed], warnings=[bad], complete=False)
    report["incomplete_reason"] = bad
    report["machine"]["cpu_model"] = bad

    # Each writer given the raw report (no scrubbing on the way) still writes its file.
    write_json(report, tmp_path / "r.json")
    write_csv(report, tmp_path / "r.csv")
    write_html(report, tmp_path / "r.html")
    write_text_atomic(tmp_path / "r.md", render_markdown(report))
    write_text_atomic(tmp_path / "card.md", render_card(report))
    for name in ("r.json", "r.csv", "r.html", "r.md", "card.md"):
        text = (tmp_path / name).read_text(encoding="utf-8")  # valid UTF-8, every one
        assert "udc80" in text, name
    # Read back, the report has no lone surrogate left for any later writer.
    loaded = load_report(tmp_path / "r.json")
    assert loaded["warnings"] == ["bad \\udc80 input \\ud800"]
    json.dumps(loaded, ensure_ascii=False).encode("utf-8")


# -- whole sessions ---------------------------------------------------------------------
def _task(task_id: str, extra: str = "", expect: str = "4") -> str:
    return (
        textwrap.dedent(
            f"""\
            id: {task_id}
            prompt: "Write double(x)."
            entry_point: double
            reference: |
              def double(x):
                  return 2 * x
            tests:
              - {{args: [2], expect: {expect}}}
            workload: {{args: [21], min_time_s: 0.01}}
            timeout_s: 20
            """
        )
        + extra
    )


def _variants(**answers: str) -> str:
    """A ``variants:`` block (``double`` renamed from the hostile answer's function)."""
    lines = ["variants:"]
    for name, code in answers.items():
        lines.append(f"  {name}: |")
        lines += [f"    {line}" for line in code.splitlines()]
    return "\n".join(lines) + "\n"


def _as_double(name: str, entry: str) -> str:
    """A hostile answer as ``double(x)``."""
    code = hostile(name)
    call = "add(x, x)" if entry == "add" else "run(63, 0.001)"
    return code + f"\n\ndef double(x):\n    return {call}\n"


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "--carbon",
        "--carbon-idle=off",
        "--carbon-json=out.json",
        "--carbon-html=out.html",
        "--carbon-markdown=out.md",
        "--carbon-csv=out.csv",
        *args,
        timeout=240,
    )


def _report(pytester: pytest.Pytester) -> dict[str, Any]:
    return json.loads((pytester.path / "out.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


@pytest.mark.slow
def test_bad_files_and_broken_answers_fail_their_own_items_and_the_session_goes_on(
    pytester: pytest.Pytester,
) -> None:
    prompts = pytester.path / "prompts"
    prompts.mkdir()
    # 600 levels in a file: a RecursionError at collection used to interrupt the session.
    (prompts / "a_deep.yaml").write_text(_task("deep", expect="[" * 600 + "]" * 600))
    # A mark that cannot be used: a CollectError used to interrupt the session too.
    (prompts / "b_mark.yaml").write_text(_task("mark", extra="marks: [no_such_mark]\n"))
    hostile_answers = _variants(
        deepjson=_as_double("bounds_deep_json", "add"),
        flood=_as_double("bounds_huge_message", "run"),
        surrogate=_as_double("bounds_surrogate", "add"),
    )
    (prompts / "c_hostile.yaml").write_text(
        _task(
            "hostile",
            extra="models: [variant:deepjson, variant:flood, variant:surrogate]\n"
            + hostile_answers,
        )
    )
    (prompts / "d_good.yaml").write_text(_task("good"))
    result = _run(pytester, "prompts/", "--strict-markers")
    result.assert_outcomes(passed=1, failed=3, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*a_deep.yaml:8: key 'tests?0?.expect': nested deeper than 100 levels*",
            "*b_mark.yaml:1: key 'marks': mark 'no_such_mark' cannot be used*",
        ]
    )
    assert "Interrupted" not in result.stdout.str()
    report = _report(pytester)
    assert report["complete"] is True, report.get("incomplete_reason")
    recs = {r["nodeid"]: r for r in report["tests"]}
    good = recs["prompts/d_good.yaml::good[reference-plain-0]"]
    assert good["prompt"]["correct"] is True and good["energy_j"] is not None
    reasons = {}
    for variant in ("deepjson", "flood", "surrogate"):
        rec = recs[f"prompts/c_hostile.yaml::hostile[variant_{variant}-plain-0]"]
        assert rec["outcome"] == "failed" and rec["prompt"]["correct"] is False
        reasons[variant] = json.dumps(rec["prompt"]["failed_case"]) + " ".join(rec["warnings"])
    assert "nested deeper than 128 levels" in reasons["deepjson"]
    assert "over 16 MiB" in reasons["flood"]
    assert "\\\\udc80" in reasons["surrogate"]  # escaped, in JSON: a backslash, escaped
    # Every writer wrote its file, lone surrogate or not.
    assert "could not write" not in result.stdout.str()
    for name in ("out.html", "out.md", "out.csv"):
        text = (pytester.path / name).read_text(encoding="utf-8")
        assert "hostile" in text
    md = (pytester.path / "out.md").read_text(encoding="utf-8")
    assert "\\<b>bold\\</b>" in md and "\\[link\\]" in md  # the answer's markup stays text


@pytest.mark.slow
def test_a_forged_case_index_keeps_its_record_and_its_model_fails(
    pytester: pytest.Pytester,
) -> None:
    prompts = pytester.path / "prompts"
    prompts.mkdir()
    (prompts / "t.yaml").write_text(
        _task(
            "t",
            extra="models: [variant:forged]\n"
            + _variants(forged=_as_double("bounds_case_index", "add")),
        )
    )
    result = _run(pytester, "prompts/")
    result.assert_outcomes(failed=1)
    recs = {r["nodeid"]: r for r in _report(pytester)["tests"]}
    rec = recs["prompts/t.yaml::t[variant_forged-plain-0]"]
    assert rec["prompt"]["correct"] is False
    result.stdout.fnmatch_lines(["*variant:forged*0/1*0%*"])


@pytest.mark.slow
def test_a_crash_of_the_plugin_fails_its_item_and_makes_the_report_incomplete(
    pytester: pytest.Pytester,
) -> None:
    # A bug of pytest-carbon met on one answer: verify raises on code marked BOOM.
    pytester.makeconftest(
        """
        import pytest_carbon.sandbox.verify as sandbox

        _verify = sandbox.verify

        def verify(code, *args, **kwargs):
            if "BOOM" in code:
                raise KeyError("a bug met on this answer")
            return _verify(code, *args, **kwargs)

        sandbox.verify = verify
        """
    )
    prompts = pytester.path / "prompts"
    prompts.mkdir()
    boom = "def double(x):\n    return 2 * x  # BOOM\n"
    (prompts / "t.yaml").write_text(
        _task("t", extra="models: [variant:boom, reference]\n" + _variants(boom=boom))
    )
    result = _run(pytester, "prompts/")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*plugin error*KeyError*a bug met on this answer*"])
    report = _report(pytester)
    assert report["complete"] is False
    assert "pytest-carbon failed on 1 item(s)" in report["incomplete_reason"]
    assert "prompts/t.yaml::t[variant_boom-plain-0]" in report["incomplete_reason"]
    recs = {r["nodeid"]: r for r in report["tests"]}
    rec = recs["prompts/t.yaml::t[variant_boom-plain-0]"]
    assert rec["outcome"] == "failed" and rec["prompt"]["correct"] is False
    assert rec["prompt"]["failed_case"]["plugin_error"] is True
    # pass@1 counts it as a failure.
    result.stdout.fnmatch_lines(["*variant:boom*0/1*0%*"])
    assert recs["prompts/t.yaml::t[reference-plain-0]"]["prompt"]["correct"] is True
    assert "Incomplete run" in (pytester.path / "out.md").read_text(encoding="utf-8")
