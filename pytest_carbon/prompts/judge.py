"""The verdict on a candidate's answers, given in pytest's process, on the JSON that came
through the control pipe.

The runner converts each returned value to plain data (``plain()`` in ``_runner.py``) and
sends it; this side compares it with the case's ``expect`` (JSON round-tripped, so both
sides went through the same encoding) using the same ``matches()``, and tells the runner
to go on or not. No code of the candidate can run in the comparison: the value was
decoded by ``json`` here, and the functions that judge it live in this process, out of
the candidate's reach (in the child, it could patch the runner's own ``matches``).
"""

from __future__ import annotations

import json
from typing import Any

from pytest_carbon.prompts._runner import matches, short_repr


class Judge:
    """Judges the runner's ``got`` messages in order; vets its final ``result``."""

    def __init__(self, tests: list[dict[str, Any]]):
        # The child compares nothing; what it saw of ``expect`` is this JSON anyway.
        self._expect = json.loads(json.dumps([t["expect"] for t in tests], allow_nan=True))
        self._tols = [float(t.get("tol", 0.0) or 0.0) for t in tests]
        self.judged = 0

    def got(self, msg: dict[str, Any]) -> dict[str, Any] | None:
        """None when the value matches (the runner may go on), else the failing result."""
        index = msg.get("index")
        if index != self.judged or "value" not in msg:
            return self._violation(f"an answer for case {index!r} out of turn")
        value = msg["value"]
        if matches(value, self._expect[self.judged], self._tols[self.judged]):
            self.judged += 1
            return None
        return {
            "type": "result",
            "passed": False,
            "stage": "case",
            "index": self.judged,
            "got": short_repr(value),
        }

    def result(self, msg: dict[str, Any]) -> dict[str, Any]:
        """The runner's final word, unless it claims a pass before every case was judged."""
        if msg.get("passed") is True and self.judged < len(self._expect):
            return self._violation(
                f"success after {self.judged} of {len(self._expect)} cases were judged"
            )
        return msg

    @staticmethod
    def _violation(what: str) -> dict[str, Any]:
        return {
            "type": "result",
            "passed": False,
            "stage": "protocol",
            "error": f"the sandboxed process reported {what} (a forged control message?)",
        }
