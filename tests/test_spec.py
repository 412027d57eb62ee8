"""Prompt YAML validation: good files load, bad ones name the file, line and key."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pytest_carbon.prompts.spec import Call, SpecError, load, loads

GOOD = textwrap.dedent(
    """\
    id: sum_primes
    prompt: |
      Write sum_primes(n).
    entry_point: sum_primes
    reference: |
      def sum_primes(n):
          return sum(p for p in range(2, n) if all(p % d for d in range(2, p)))
    tests:
      - {args: [10], expect: 17}
      - {args: [2], expect: 0}
    check: |
      assert candidate(100) == 1060
    workload:
      args: [2000]
      min_time_s: 0.25
    timeout_s: 20
    models: [reference, "variant:naive"]
    samples: 3
    marks: [slow]
    variants:
      naive: |
        def sum_primes(n): return 0
    """
)


def error_of(text: str, path: str = "prompts/x.yaml") -> SpecError:
    with pytest.raises(SpecError) as info:
        loads(text, path)
    return info.value


def test_a_complete_task_loads_with_every_field() -> None:
    (task,) = loads(GOOD, "prompts/sum_primes.yaml")
    assert task.id == "sum_primes"
    assert task.entry_point == "sum_primes"
    assert task.tests[0] == {"args": [10], "kwargs": {}, "expect": 17}
    # The single args/kwargs form is one call: consumers always read `calls`.
    assert task.workload.calls == (Call(args=[2000], kwargs={}),)
    assert task.workload.min_time_s == 0.25
    assert task.timeout_s == 20.0
    assert task.models == ("reference", "variant:naive")
    assert task.samples == 3
    assert task.marks == ("slow",)
    assert "naive" in task.variants
    assert task.check is not None and "candidate(100)" in task.check
    assert task.line == 1


def test_the_id_defaults_to_the_file_stem() -> None:
    text = GOOD.replace("id: sum_primes\n", "")
    (task,) = loads(text, "prompts/my_task.yaml")
    assert task.id == "my_task"


def test_several_tasks_with_defaults_keep_their_own_lines() -> None:
    text = textwrap.dedent(
        """\
        schema: pytest-carbon/prompt/1
        defaults:
          workload: {args: [5], min_time_s: 0.01}
          timeout_s: 5
        tasks:
          - id: a
            prompt: p
            entry_point: f
            reference: "def f(x): return x"
            tests: [{args: [1], expect: 1}]
          - id: b
            prompt: p
            entry_point: g
            reference: "def g(x): return x"
            tests: [{kwargs: {x: 1}, expect: 1}]
            timeout_s: 9
        """
    )
    a, b = loads(text, "p.yaml")
    assert (a.id, a.line, a.timeout_s, a.workload.calls) == ("a", 6, 5.0, (Call([5]),))
    assert (b.id, b.line, b.timeout_s) == ("b", 11, 9.0)
    assert b.tests[0]["kwargs"] == {"x": 1}


@pytest.mark.parametrize(
    ("edit", "line", "key", "words"),
    [
        (
            ("min_time_s: 0.25", "min_time_s: fast"),
            15,
            "workload.min_time_s",
            "expected a number > 0, got 'fast'",
        ),
        (("timeout_s: 20", "timeout_s: -1"), 16, "timeout_s", "expected a number > 0"),
        (("samples: 3", "samples: 2.5"), 18, "samples", "expected an integer >= 1"),
        (("tests:", "tsets:"), 8, "tsets", "unknown key"),
        (
            ("  - {args: [2], expect: 0}", "  - {args: [2], expected: 0}"),
            10,
            "tests[1].expected",
            "unknown key",
        ),
        (
            ("  - {args: [2], expect: 0}", "  - {args: 2, expect: 0}"),
            10,
            "tests[1].args",
            "expected a list",
        ),
        (
            ("entry_point: sum_primes", "entry_point: sum primes"),
            4,
            "entry_point",
            "expected a Python identifier",
        ),
        (("id: sum_primes", "id: ../etc"), 1, "id", "expected an id"),
        (("marks: [slow]", "marks: [not-a-mark]"), 19, "marks[0]", "expected a mark name"),
        (
            ('models: [reference, "variant:naive"]', "models: reference"),
            17,
            "models",
            "expected a list",
        ),
        (
            ("workload:\n  args: [2000]", "workload:\n  arg: [2000]"),
            14,
            "workload.arg",
            "unknown key",
        ),
    ],
)
def test_each_error_names_file_line_and_key(
    edit: tuple[str, str], line: int, key: str, words: str
) -> None:
    assert edit[0] in GOOD
    err = error_of(GOOD.replace(edit[0], edit[1], 1))
    assert (err.path, err.line, err.key) == ("prompts/x.yaml", line, key)
    assert str(err).startswith(f"prompts/x.yaml:{line}: key '{key}': ")
    assert words in str(err)


@pytest.mark.parametrize("missing", ["prompt", "entry_point", "reference", "tests", "workload"])
def test_a_missing_required_key_is_named(missing: str) -> None:
    lines = GOOD.splitlines(keepends=True)
    start = next(i for i, ln in enumerate(lines) if ln.startswith(f"{missing}:"))
    end = next(
        (j for j in range(start + 1, len(lines)) if not lines[j].startswith(" ")), len(lines)
    )
    err = error_of("".join(lines[:start] + lines[end:]))
    assert err.key == missing
    assert "missing required key" in str(err)


def test_empty_tests_are_refused() -> None:
    text = GOOD.replace("  - {args: [10], expect: 17}\n  - {args: [2], expect: 0}\n", "")
    text = text.replace("tests:\n", "tests: []\n")
    err = error_of(text)
    assert err.key == "tests" and "at least one test case" in str(err)


def test_a_test_case_without_expect_is_refused() -> None:
    err = error_of(GOOD.replace("{args: [10], expect: 17}", "{args: [10]}"))
    assert (err.line, err.key) == (9, "tests[0].expect")


def test_duplicate_ids_in_one_file_name_both_lines() -> None:
    task = (
        "  - {id: same, prompt: p, entry_point: f, reference: r, tests: [{expect: 1}], "
        "workload: {}}\n"
    )
    err = error_of("tasks:\n" + task + task)
    assert (err.line, err.key) == (3, "tasks[1].id")
    assert "duplicate id 'same' (first used on line 2)" in str(err)


def test_duplicate_keys_are_refused() -> None:
    err = error_of(GOOD + "timeout_s: 3\n")
    assert err.key == "timeout_s" and "duplicate key (first set on line 16)" in str(err)


def test_bad_yaml_syntax_gives_the_line() -> None:
    err = error_of("id: x\nprompt: [unclosed\nentry_point: f\n")
    assert err.line is not None and err.line >= 2
    assert "invalid YAML" in str(err)


@pytest.mark.parametrize(
    "text",
    [
        "prompt: &p hello\nentry_point: *p\n",
        "prompt: !!python/object/apply:os.system ['echo hi']\n",
        "prompt: !custom x\n",
    ],
)
def test_tags_anchors_and_aliases_are_refused(text: str) -> None:
    err = error_of(text)
    assert err.line == 1
    assert "not allowed" in str(err)


def test_a_list_at_top_level_or_an_empty_file_is_refused() -> None:
    assert "expected a mapping" in str(error_of("- a\n- b\n"))
    assert "empty file" in str(error_of(""))


def test_the_wrong_schema_is_refused() -> None:
    err = error_of("schema: pytest-carbon/prompt/9\n" + GOOD)
    assert err.key == "schema" and "pytest-carbon/prompt/1" in str(err)


def test_model_params_accept_dense_and_mixture_sizes() -> None:
    (task,) = loads(GOOD + "model_params: {my-model: 7, my-moe: '12.9/46.7'}\n")
    assert task.model_params == {"my-model": (7.0, 7.0), "my-moe": (12.9, 46.7)}
    err = error_of(GOOD + "model_params: {my-moe: 'big'}\n")
    assert err.key == "model_params.my-moe"


def test_load_reads_a_file_and_reports_its_path(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(GOOD.replace("id: sum_primes\n", ""))
    assert load(good)[0].id == "good"
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("samples: 3", "samples: many"))
    with pytest.raises(SpecError, match=rf"^{bad}:18: key 'samples'"):
        load(bad)
    with pytest.raises(SpecError, match="cannot read"):
        load(tmp_path / "missing.yaml")


CALLS = GOOD.replace(
    "workload:\n  args: [2000]\n",
    "workload:\n"
    "  calls:\n"
    "    - args: [2000]\n"
    "    - {args: [1990], kwargs: {}}\n"
    "    - kwargs: {n: 2010}\n",
)


def test_a_workload_with_several_calls_keeps_each_in_order() -> None:
    (task,) = loads(CALLS, "prompts/x.yaml")
    assert task.workload.calls == (
        Call(args=[2000], kwargs={}),
        Call(args=[1990], kwargs={}),
        Call(args=[], kwargs={"n": 2010}),
    )
    first = task.workload.calls[0]
    assert isinstance(first.args, list) and isinstance(first.kwargs, dict)
    assert task.workload.min_time_s == 0.25
    with pytest.raises(AttributeError):
        first.args = [1]  # type: ignore[misc]


def test_a_workload_without_arguments_is_one_call_with_none() -> None:
    (task,) = loads(GOOD.replace("  args: [2000]\n", ""))
    assert task.workload.calls == (Call(),)


@pytest.mark.parametrize(
    ("edit", "line", "key", "words"),
    [
        (
            ("    - {args: [1990], kwargs: {}}", "    - {args: 1990}"),
            16,
            "workload.calls[1].args",
            "expected a list, got '1990'",
        ),
        (
            ("    - {args: [1990], kwargs: {}}", "    - {argz: [1990]}"),
            16,
            "workload.calls[1].argz",
            "unknown key",
        ),
        (
            ("    - kwargs: {n: 2010}", "    - kwargs: [2010]"),
            17,
            "workload.calls[2].kwargs",
            "expected a mapping",
        ),
        (
            ("    - kwargs: {n: 2010}", "    - kwargs: {2x: 2010}"),
            17,
            "workload.calls[2].kwargs.2x",
            "expected a Python identifier",
        ),
        (
            ("    - kwargs: {n: 2010}", "    - [2010]"),
            17,
            "workload.calls[2]",
            "expected a mapping",
        ),
        (
            ("    - kwargs: {n: 2010}", "    - {args: [2000.0]}"),
            17,
            "workload.calls[2]",
            "same arguments as workload.calls[0]",
        ),
        (
            ("    - {args: [1990], kwargs: {}}", "    - {args: [!!python/name:os.system '']}"),
            16,
            None,
            "not allowed",
        ),
        (
            ("  calls:\n", "  args: [1]\n  calls:\n"),
            14,
            "workload.args",
            "not allowed next to 'workload.calls' (line 15)",
        ),
        (
            ("  calls:\n", "  kwargs: {n: 1}\n  calls:\n"),
            14,
            "workload.kwargs",
            "not allowed next to 'workload.calls'",
        ),
    ],
)
def test_each_error_in_calls_names_file_line_and_key(
    edit: tuple[str, str], line: int, key: str | None, words: str
) -> None:
    assert edit[0] in CALLS
    err = error_of(CALLS.replace(edit[0], edit[1], 1))
    assert (err.path, err.line, err.key) == ("prompts/x.yaml", line, key)
    if key is not None:
        assert str(err).startswith(f"prompts/x.yaml:{line}: key '{key}': ")
    assert words in str(err)


@pytest.mark.parametrize(
    ("calls", "words"),
    [("calls: []", "expected at least one call"), ("calls: 5", "expected a list of calls")],
)
def test_calls_must_be_a_non_empty_list(calls: str, words: str) -> None:
    err = error_of(GOOD.replace("  args: [2000]", "  " + calls))
    assert (err.line, err.key) == (14, "workload.calls")
    assert words in str(err)


def test_calls_in_file_defaults_are_shared_by_every_task() -> None:
    text = textwrap.dedent(
        """\
        defaults:
          workload:
            calls:
              - args: [1]
              - args: [2]
        tasks:
          - id: a
            prompt: p
            entry_point: f
            reference: "def f(x): return x"
            tests: [{args: [1], expect: 1}]
        """
    )
    (task,) = loads(text, "p.yaml")
    assert [c.args for c in task.workload.calls] == [[1], [2]]


# -- nesting is bounded before anything recurses -----------------------------------------
def _nested(n: int) -> str:
    return "[" * n + "]" * n


def test_a_value_may_nest_as_deep_as_max_data_depth() -> None:
    from pytest_carbon.sandbox.wire_limits import MAX_DATA_DEPTH

    text = GOOD.replace("expect: 17", f"expect: {_nested(MAX_DATA_DEPTH)}")
    expect = loads(text)[0].tests[0]["expect"]
    depth = 0
    while isinstance(expect, list):
        depth += 1
        expect = expect[0] if expect else None
    assert depth == MAX_DATA_DEPTH


@pytest.mark.parametrize("levels", [101, 600])
def test_an_expect_nested_deeper_is_a_spec_error_with_file_line_and_key(levels: int) -> None:
    text = GOOD.replace("expect: 17", f"expect: {_nested(levels)}")
    err = error_of(text)
    assert (err.path, err.line, err.key) == ("prompts/x.yaml", 9, "tests[0].expect")
    assert "nested deeper than 100 levels (MAX_DATA_DEPTH)" in str(err)


def test_a_100000_deep_expect_is_a_spec_error_not_a_recursion_error() -> None:
    # libyaml's scanner may refuse it first (its own limit, 1000 flow levels): either way
    # a SpecError with the file and the line, before any node is built.
    err = error_of(GOOD.replace("expect: 17", f"expect: {_nested(100_000)}"))
    assert (err.path, err.line) == ("prompts/x.yaml", 9)
    assert "nest" in str(err)


def test_deep_arguments_of_a_workload_call_name_their_key() -> None:
    text = GOOD.replace("  args: [2000]", f"  calls:\n    - args: [{_nested(150)}]")
    err = error_of(text)
    assert err.key == "workload.calls[0].args"
    assert "nested deeper than 100 levels" in str(err)


def test_deep_nesting_anywhere_else_is_bounded_too() -> None:
    # Not a value of the schema (an unknown key's): bounded by the file's own depth.
    err = error_of(GOOD + f"extra: {_nested(500)}\n")
    assert err.line == 23 and err.key is not None and err.key.startswith("extra[0][0]")
    assert "deeper than 107 levels (MAX_YAML_DEPTH)" in str(err)


def test_a_deep_block_style_value_is_refused_like_a_flow_one() -> None:
    lines = ["id: t", "prompt: p", "entry_point: f", "reference: r", "workload: {}", "tests:"]
    lines += ["  - expect:"]
    indent = "      "
    for _ in range(150):
        lines.append(f"{indent}- ")
        indent += "  "
    err = error_of("\n".join(lines[:-1]) + "\n" + lines[-1] + "1\n")
    assert err.key == "tests[0].expect"
    assert "nested deeper than 100 levels" in str(err)
