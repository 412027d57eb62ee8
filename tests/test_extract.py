"""Code extraction from markdown answers: fences, prose, reasoning, bare code."""

from __future__ import annotations

import pytest

from pytest_carbon.prompts.extract import ExtractError, extract_code, fenced_blocks

F = "```"


def test_one_python_block_inside_prose() -> None:
    text = f"Sure! Here it is:\n\n{F}python\ndef f(x):\n    return x + 1\n{F}\n\nHope it helps."
    assert extract_code(text, "f") == "def f(x):\n    return x + 1\n"


@pytest.mark.parametrize("opening", ["```py", "```", "~~~python", "````python3", "```Python"])
def test_language_tags_and_fence_kinds(opening: str) -> None:
    closing = opening[0] * (len(opening) - len(opening.lstrip(opening[0])))
    text = f"{opening}\ndef f():\n    return 1\n{closing}\n"
    assert extract_code(text, "f") == "def f():\n    return 1\n"


def test_the_block_defining_the_entry_point_wins_over_usage_and_shell() -> None:
    text = (
        f"Install:\n{F}bash\npip install nothing\n{F}\n"
        f"{F}python\ndef f(n):\n    return n * 2\n{F}\n"
        f"Usage:\n{F}python\nprint(f(3))\n{F}\n"
    )
    assert extract_code(text, "f") == "def f(n):\n    return n * 2\n"


def test_the_last_defining_block_is_the_final_version() -> None:
    text = (
        f"{F}python\ndef f(n):\n    return sum(range(n))\n{F}\n"
        f"An optimized version:\n{F}python\ndef f(n):\n    return n * (n - 1) // 2\n{F}\n"
    )
    assert "n * (n - 1) // 2" in extract_code(text, "f")
    assert "sum(range" not in extract_code(text, "f")


def test_helpers_from_earlier_blocks_are_prepended() -> None:
    text = (
        f"First a helper:\n{F}python\nimport math\n\ndef is_prime(k):\n"
        f"    return k > 1 and all(k % d for d in range(2, math.isqrt(k) + 1))\n{F}\n"
        f"Then:\n{F}python\ndef f(n):\n    return [k for k in range(n) if is_prime(k)]\n{F}\n"
    )
    code = extract_code(text, "f")
    assert code.index("def is_prime") < code.index("def f")
    namespace: dict[str, object] = {}
    exec(compile(code, "<answer>", "exec"), namespace)  # our own literal test code
    assert namespace["f"](10) == [2, 3, 5, 7]  # type: ignore[operator]


def test_reasoning_blocks_are_stripped() -> None:
    text = (
        f"<think>Maybe\n{F}python\ndef f():\n    return 'draft'\n{F}\nno...</think>\n"
        f"{F}python\ndef f():\n    return 'final'\n{F}"
    )
    assert "final" in extract_code(text, "f") and "draft" not in extract_code(text, "f")


def test_an_unterminated_fence_runs_to_the_end() -> None:
    text = f"Here:\n{F}python\ndef f():\n    return 3\n"
    assert extract_code(text, "f") == "def f():\n    return 3\n"


def test_bare_code_is_accepted_when_it_defines_the_entry_point() -> None:
    text = "import math\n\ndef f(x):\n    return math.sqrt(x)\n"
    assert extract_code(text, "f") == text


def test_no_defining_block_falls_back_to_the_longest_python_block() -> None:
    text = f"{F}python\nx = 1\n{F}\n{F}python\ndef g():\n    return 'longer block'\n{F}\n"
    assert "def g" in extract_code(text, "f")


@pytest.mark.parametrize(
    "text",
    ["", "   ", "I cannot help with that.", f"{F}bash\nrm -rf /tmp/x\n{F}", "def f(:\n"],
)
def test_no_code_is_a_clear_error(text: str) -> None:
    with pytest.raises(ExtractError) as info:
        extract_code(text, "f")
    assert "empty" in str(info.value) or "no Python code block" in str(info.value)


def test_fenced_blocks_report_language_and_line() -> None:
    blocks = fenced_blocks(f"a\n{F}python extra\nx\n{F}\n~~~\ny\n~~~\n")
    assert [(b.lang, b.code, b.start_line) for b in blocks] == [
        ("python", "x\n", 2),
        ("", "y\n", 5),
    ]
