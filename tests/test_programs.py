"""``kind: program`` tasks: stdin/stdout programs in Python, C++, JavaScript (and C, Rust,
Java), compiled and run in the real sandbox, measured one process per input."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

from pytest_carbon.prompts.spec import SpecError, loads
from pytest_carbon.sandbox.languages import toolchain
from pytest_carbon.sandbox.programs import ProgramSide, check_cases

needs_gxx = pytest.mark.skipif(
    toolchain("cpp").missing is not None, reason=f"{toolchain('cpp').missing}"
)
needs_node = pytest.mark.skipif(
    toolchain("javascript").missing is not None, reason=f"{toolchain('javascript').missing}"
)

PY_TASK = """\
kind: program
prompt: Read n and print 1 + 2 + ... + n.
reference: |
  n = int(input())
  print(n * (n + 1) // 2)
variants:
  naive: |
    n = int(input())
    total = 0
    for i in range(n + 1):
        total += i
    print(total)
  wrong: |
    print(int(input()))
  sly: |
    n = int(input())
    print(n * (n + 1) // 2 if n < 1000 else 0)
tests:
  - {stdin: "10\\n", expect_stdout: "55\\n"}
  - {stdin: "1", expect_stdout: "1  \\n\\n"}
workload:
  stdin: ["300000\\n", "300001\\n", "299999\\n"]
  min_time_s: 0.05
timeout_s: 30
"""

CPP_TASK = """\
kind: program
language: cpp
prompt: Read n and print 1 + 2 + ... + n modulo 1000000007.
reference: |
  #include <cstdio>
  int main() {
    long long n, s = 0;
    if (scanf("%lld", &n) != 1) return 1;
    for (long long i = 1; i <= n; i++) s = (s + i) % 1000000007;
    printf("%lld\\n", s);
  }
variants:
  naive: |
    #include <cstdio>
    int main() {
      long long n, s = 0;
      if (scanf("%lld", &n) != 1) return 1;
      for (long long i = 1; i <= n; i++)
        for (int k = 0; k < 4; k++) s = (s + (k == 0 ? i : 0)) % 1000000007;
      printf("%lld\\n", s);
    }
  broken: |
    int main() { return undefined_name; }
tests:
  - {stdin: "10\\n", expect_stdout: "55\\n"}
workload:
  stdin: ["3000000\\n", "3000001\\n"]
  min_time_s: 0.05
timeout_s: 60
"""


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    base = ["-p", "no:cacheprovider", "-p", "no:randomly", "--carbon", "--carbon-idle=off"]
    return pytester.runpytest_subprocess(
        *base, "--carbon-json=out.json", "--carbon-max-time=2", *args, timeout=300
    )


def _records(pytester: pytest.Pytester) -> dict[str, dict[str, Any]]:
    report = json.loads((pytester.path / "out.json").read_text())
    return {r["nodeid"]: r for r in report["tests"]}


def _suite(pytester: pytest.Pytester, name: str, text: str) -> None:
    (pytester.path / "prompts").mkdir(exist_ok=True)
    (pytester.path / "prompts" / f"{name}.yaml").write_text(text)


def _assert_paired(rec: dict[str, Any]) -> dict[str, Any]:
    comparison: dict[str, Any] = rec["prompt"]["reference_comparison"]
    assert rec["prompt"]["correct"] is True
    assert comparison["pairs"] >= 1
    assert comparison["low"] <= comparison["ratio"] <= comparison["high"]
    assert rec["prompt"]["reference_ratio"]["energy"] == comparison["ratio"]
    assert comparison["checked_calls"] >= comparison["pairs"]
    return comparison


# -- end to end (fast tier: two runs) ---------------------------------------------------
def test_python_program_end_to_end(pytester: pytest.Pytester) -> None:
    _suite(pytester, "sums", PY_TASK)
    result = _run(
        pytester,
        "prompts/",
        "--carbon-model=variant:naive",
        "--carbon-model=variant:wrong",
        "--carbon-model=variant:sly",
    )
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*incorrect answer from 'variant:wrong'*", "*stdout differs*"])
    recs = _records(pytester)
    naive = recs["prompts/sums.yaml::sums[variant_naive-plain-0]"]
    _assert_paired(naive)
    assert naive["prompt"]["program"]["language"] == "python"
    # Nothing to compile: no compile window, and none in the ratio.
    assert naive["prompt"]["program"]["compile"]["candidate"]["energy_j"] is None
    wrong = recs["prompts/sums.yaml::sums[variant_wrong-plain-0]"]
    assert wrong["prompt"]["correct"] is False
    assert wrong["prompt"]["failed_case"]["got_stdout"] == "10"
    assert wrong["prompt"]["failed_case"]["expect_stdout"] == "55"
    # Right on the tests, wrong on a measured input: every measured output is judged.
    sly = recs["prompts/sums.yaml::sums[variant_sly-plain-0]"]
    assert sly["prompt"]["correct"] is False and sly["energy_j"] is None
    assert sly["prompt"]["failed_case"]["stdin"] in ("300000\n", "300001\n", "299999\n")
    result.stdout.fnmatch_lines(["*printed another output than the reference's*"])


@needs_gxx
def test_cpp_program_end_to_end_compile_reported_apart(pytester: pytest.Pytester) -> None:
    _suite(pytester, "cppsum", CPP_TASK)
    result = _run(
        pytester, "prompts/", "--carbon-model=variant:naive", "--carbon-model=variant:broken"
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*the cpp program does not compile*", "*undefined_name*"])
    broken = _records(pytester)["prompts/cppsum.yaml::cppsum[variant_broken-plain-0]"]
    assert broken["prompt"]["correct"] is False and broken["prompt"]["failed_case"]["compile"]
    assert broken["prompt"]["program"]["compile"]["candidate"]["ok"] is False
    rec = _records(pytester)["prompts/cppsum.yaml::cppsum[variant_naive-plain-0]"]
    _assert_paired(rec)
    program = rec["prompt"]["program"]
    assert program["language"] == "cpp"
    for side in ("candidate", "reference"):
        built = program["compile"][side]
        assert built["ok"] is True and built["energy_j"] > 0 and built["cpu_s"] > 0
        assert set(built["method"].values()) <= {"measured", "estimated", "attributed"}
    # The compile's energy is its own window's: the record's energy is the runs' only.
    rounds = rec["samples"]["energy_j"]
    assert len(rounds) == rec["rounds"] == rec["prompt"]["reference_comparison"]["pairs"]


@needs_node
@pytest.mark.slow
def test_javascript_program_end_to_end(pytester: pytest.Pytester) -> None:
    task = textwrap.dedent(
        """\
        kind: program
        language: javascript
        prompt: Read n and print 1 + ... + n.
        reference: |
          const n = Number(require("fs").readFileSync(0, "utf8"));
          console.log(String(n * (n + 1) / 2));
        variants:
          naive: |
            const n = Number(require("fs").readFileSync(0, "utf8"));
            let s = 0;
            for (let i = 0; i <= n; i++) s += i;
            console.log(String(s));
        tests:
          - {stdin: "10", expect_stdout: "55"}
        workload:
          stdin: ["30000000\\n", "30000001\\n"]
          min_time_s: 0.05
        """
    )
    _suite(pytester, "jssum", task)
    result = _run(pytester, "prompts/", "--carbon-model=variant:naive")
    result.assert_outcomes(passed=1)
    rec = _records(pytester)["prompts/jssum.yaml::jssum[variant_naive-plain-0]"]
    _assert_paired(rec)
    assert rec["prompt"]["program"]["language"] == "javascript"


# -- the sandbox's filesystem for compilers ---------------------------------------------
@needs_gxx
def test_a_compile_reading_outside_the_toolchain_mounts_fails(tmp_path: Path) -> None:
    from pytest_carbon.sandbox.isolation import isolation

    if not isinstance(isolation().notes.get("root"), dict):  # the doctor says why
        pytest.skip(f"the sandbox has no root filesystem of its own here: {isolation().missing}")
    secret = tmp_path / "secret.h"
    secret.write_text("int leaked = 42;\n")
    assert Path("/etc/passwd").exists()
    for path in ("/etc/shadow", str(secret), "/root/.bashrc", "/home/x.h"):
        code = f'#include "{path}"\nint main() {{ return 0; }}\n'
        side = ProgramSide("code", code, "cpp", meter=None, key="k", round_timeout_s=60,
                           total_timeout_s=120)  # fmt: skip
        try:
            built = side.compile()
        finally:
            side.close()
        assert built.ok is False, path
        assert "No such file or directory" in built.output, built.output
    # The same compile with a header the toolchain mounts show works.
    ok = ProgramSide("code", "#include <vector>\nint main() { return 0; }\n", "cpp", meter=None,
                     key="k", round_timeout_s=60, total_timeout_s=120)  # fmt: skip
    try:
        assert ok.compile().ok is True
    finally:
        ok.close()


def test_the_sandbox_command_lists_the_toolchain_mounts() -> None:
    from pytest_carbon.cli.sandbox import _toolchains

    rows = {row["language"]: row for row in _toolchains()}
    assert set(rows) == {"python", "cpp", "c", "javascript", "rust", "java"}
    if rows["cpp"]["available"]:
        assert "/usr/include" in rows["cpp"]["mounts"]
        assert "/usr/include" in rows["cpp"]["line"]
    for row in rows.values():
        assert row["available"] == (row["missing"] is None)


def test_a_missing_toolchain_skips_with_the_reason(pytester: pytest.Pytester) -> None:
    _suite(pytester, "cppsum", CPP_TASK)
    env_name = "PYTEST_CARBON_CPP"
    old = os.environ.get(env_name)
    os.environ[env_name] = "/nonexistent/bin/g++"
    try:
        result = pytester.runpytest_subprocess(
            "-p", "no:cacheprovider", "prompts/", "-rs", "--carbon-model=variant:naive",
            timeout=120,
        )  # fmt: skip
    finally:
        if old is None:
            del os.environ[env_name]
        else:
            os.environ[env_name] = old
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        ["*cpp toolchain unavailable: no g++ found (PYTEST_CARBON_CPP=/nonexistent/bin/g++)*"]
    )


@pytest.mark.slow
def test_a_checker_judges_outputs_in_a_sandbox_of_its_own() -> None:
    checker = textwrap.dedent(
        """\
        def check(stdin, stdout):
            n = int(stdin)
            a, b = map(int, stdout.split())
            return a + b == n and a >= 0 and b >= 0
        """
    )
    tests = [{"stdin": "10"}, {"stdin": "7"}]
    good = "n = int(input())\nprint(n // 2, n - n // 2)\n"
    other_good = "n = int(input())\nprint(0, n)\n"
    bad = "n = int(input())\nprint(1, n)\n"
    outcome = {}
    for name, code in (("good", good), ("other", other_good), ("bad", bad)):
        side = ProgramSide("code", code, "python", meter=None, key="k", round_timeout_s=30,
                           total_timeout_s=60)  # fmt: skip
        try:
            side.compile()
            outcome[name] = check_cases(side, tests, checker, 30)
        finally:
            side.close()
    assert outcome["good"] is None and outcome["other"] is None
    assert outcome["bad"] is not None
    assert "checker rejected" in outcome["bad"]["error"] and outcome["bad"]["got_stdout"] == "1 10"


def test_an_answer_s_program_is_the_block_in_its_language() -> None:
    from pytest_carbon.prompts.extract import ExtractError, extract_program

    f = "```"
    answer = f"Sure.\n{f}bash\ng++ main.cpp\n{f}\n{f}cpp\nint main() {{ return 0; }}\n{f}\n"
    assert extract_program(answer, "cpp") == "int main() { return 0; }\n"
    assert extract_program("console.log(1)", "javascript") == "console.log(1)\n"
    with pytest.raises(ExtractError, match="no rust code block"):
        extract_program(answer, "rust")


# -- the schema ---------------------------------------------------------------------------
def test_program_tasks_parse_languages_per_reference_and_variant() -> None:
    text = PY_TASK.replace(
        "variants:\n", "variants:\n  fast_cpp:\n    language: c++\n    code: int main(){}\n"
    )
    (task,) = loads(text, "t.yaml")
    assert task.kind == "program" and task.language == "python" and task.entry_point == ""
    assert task.variant_languages == {"fast_cpp": "cpp"}
    assert task.language_of("variant:fast_cpp") == "cpp"
    assert task.language_of("variant:naive") == "python"
    assert task.language_of("reference") == "python"
    assert [c.args[0] for c in task.workload.calls] == ["300000\n", "300001\n", "299999\n"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("language: cpp\n", "language: cobol\n"), "key 'language': expected one of python"),
        (("  - {stdin: \"10\\n\", expect_stdout: \"55\\n\"}", "  - {stdin: \"10\"}"),
         "expect_stdout': missing required key"),
        (("kind: program\n", "kind: program\nentry_point: f\n"), "no entry point"),
        (("kind: program\n", "kind: script\n"), "expected one of function, program"),
        (("  stdin: [\"3000000\\n\", \"3000001\\n\"]", "  stdin: [\"1\", \"1\"]"),
         "each input must be distinct"),
    ],
)  # fmt: skip
def test_program_schema_errors_name_the_key(change: tuple[str, str], message: str) -> None:
    old, new = change
    assert old in CPP_TASK
    with pytest.raises(SpecError, match=message.replace("(", r"\(")):
        loads(CPP_TASK.replace(old, new), "t.yaml")


def test_language_and_checker_belong_to_programs_only() -> None:
    text = textwrap.dedent(
        """\
        prompt: p
        entry_point: f
        language: cpp
        reference: "def f(): return 1"
        tests: [{args: [], expect: 1}]
        workload: {args: []}
        """
    )
    with pytest.raises(SpecError, match="only a 'kind: program' task takes this key"):
        loads(text, "t.yaml")


def test_the_shipped_language_suite_parses() -> None:
    from pytest_carbon.prompts.spec import load

    root = Path(__file__).resolve().parent.parent / "prompts" / "languages"
    tasks = [t for f in sorted(root.glob("*.yaml")) for t in load(f)]
    assert len(tasks) >= 6
    assert {t.language for t in tasks} >= {"cpp", "javascript"}
    assert all(t.kind == "program" and "naive" in t.variants for t in tasks)


# -- containment of runs ------------------------------------------------------------------
def _side(code: str, language: str = "python", timeout_s: float = 30) -> ProgramSide:
    return ProgramSide(
        "code", code, language, meter=None, key="k", round_timeout_s=timeout_s,
        total_timeout_s=4 * timeout_s,
    )  # fmt: skip


@pytest.mark.slow
def test_a_run_s_leftovers_are_killed_and_each_run_starts_afresh() -> None:
    from pytest_carbon.sandbox.isolation import run_processes

    code = textwrap.dedent(
        """\
        import os, sys, time
        seen = os.path.exists("/tmp/mark")
        open("/tmp/mark", "w").close()
        if os.fork() == 0:
            os.setsid()
            time.sleep(300)
            os._exit(0)
        print("seen" if seen else "fresh", sys.stdin.read().strip())
        """
    )
    side = _side(code)
    try:
        before = len(run_processes(side.run_id))
        runs = side.runs(["a", "b", "c"], digest=False)
        assert [r["stdout"] for r in runs] == ["fresh a", "fresh b", "fresh c"]
        assert all(r["ok"] for r in runs)
        # The forked sleepers were killed with their run: only the runner is left.
        assert len(run_processes(side.run_id)) == before
    finally:
        side.close()
    assert run_processes(side.run_id) == []


@pytest.mark.slow
def test_a_program_that_never_ends_times_out() -> None:
    from pytest_carbon.sandbox.measure import WorkloadTimeout

    side = _side("while True:\n    pass\n", timeout_s=2)
    try:
        with pytest.raises(WorkloadTimeout, match="timed out after 2 s"):
            check_cases(side, [{"stdin": "", "expect_stdout": ""}], None, 2)
    finally:
        side.close()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("language", "code"),
    [
        ("c", '#include <stdio.h>\nint main(void){long long n;scanf("%lld",&n);'
              'printf("%lld\\n",n*(n+1)/2);}\n'),
        ("rust", "use std::io::Read;\nfn main(){let mut s=String::new();"
                 "std::io::stdin().read_to_string(&mut s).unwrap();"
                 "let n:u64=s.trim().parse().unwrap();println!(\"{}\",n*(n+1)/2);}\n"),
        ("java", "import java.util.Scanner;\npublic class Main{public static void main("
                 "String[] a){long n=new Scanner(System.in).nextLong();"
                 "System.out.println(n*(n+1)/2);}}\n"),
        ("javascript", 'const n=Number(require("fs").readFileSync(0,"utf8"));'
                       "console.log(String(n*(n+1)/2));\n"),
    ],
)  # fmt: skip
def test_every_language_compiles_in_the_sandbox_and_runs(language: str, code: str) -> None:
    tc = toolchain(language)
    if tc.missing:
        pytest.skip(f"{language}: {tc.missing}")
    side = _side(code, language, timeout_s=120)
    try:
        built = side.compile()
        assert built.ok, built.output
        tests = [{"stdin": "10\n", "expect_stdout": "55"}, {"stdin": "3", "expect_stdout": "6"}]
        assert check_cases(side, tests, None, 120) is None
    finally:
        side.close()


@pytest.mark.slow
def test_a_checker_task_is_measured_with_every_output_judged(pytester: pytest.Pytester) -> None:
    task = textwrap.dedent(
        """\
        kind: program
        prompt: Read n and print two non-negative integers that sum to n.
        checker: |
          def check(stdin, stdout):
              a, b = map(int, stdout.split())
              return a >= 0 and b >= 0 and a + b == int(stdin)
        reference: |
          n = int(input())
          print(0, n)
        variants:
          other: |
            n = int(input())
            a = 0
            for _ in range(n):
                a += 1
            print(a, 0)
          late: |
            n = int(input())
            print(0, n if n < 100 else n + 1)
        tests:
          - {stdin: "10"}
          - {stdin: "0"}
        workload:
          stdin: ["200000", "200001", "199999"]
          min_time_s: 0.05
        """
    )
    _suite(pytester, "split", task)
    result = _run(
        pytester, "prompts/", "--carbon-model=variant:other", "--carbon-model=variant:late"
    )
    result.assert_outcomes(passed=1, failed=1)
    recs = _records(pytester)
    # Another output than the reference's, accepted by the checker, measured and paired.
    _assert_paired(recs["prompts/split.yaml::split[variant_other-plain-0]"])
    late = recs["prompts/split.yaml::split[variant_late-plain-0]"]
    assert late["prompt"]["correct"] is False
    result.stdout.fnmatch_lines(["*was rejected: check returned False*"])
