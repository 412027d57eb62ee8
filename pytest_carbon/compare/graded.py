"""Graded references: a candidate placed on a task's scale of reference solutions.

A task may ship several references graded from slow to fast, each with an efficiency
score (``references: [{code, score}, ...]``, as EvalPerf grades its references). The
candidate is measured interleaved against **every** reference (one paired comparison
each, :func:`pytest_carbon.sandbox.measure.compare`), which gives one paired energy ratio
``candidate / reference_i`` with its 95% interval per reference.

The **energy percentile** is EvalPerf's differential performance score applied to energy:
the score of the fastest (highest-scored) reference the candidate is no costlier than
(ratio <= 1), and 0 when it is costlier than all of them. Its interval comes from the
ratios' intervals: the low end is the score with every ratio at the high end of its
interval, the high end the score with every ratio at its low end. The score only falls
when a ratio rises, so the interval holds whenever every ratio lies in its own interval
(each at 95%: a conservative bound, not a joint 95% level, said so in the record's
``method``). A comparison whose pairs were too few for a 95% interval (its ``coverage``
below its ``confidence``) bounds nothing: its ratio counts as anywhere from 0 to infinity
for the interval, and the record says ``intervals_reached: false``.

Standard library only; no measurement here (see :mod:`pytest_carbon.prompts.collect`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

#: The method string every percentile carries.
METHOD = (
    "EvalPerf's differential performance score on energy: the score of the highest-scored "
    "reference whose paired energy ratio (candidate / reference, median of interleaved "
    "pairs) is <= 1 or whose 95% interval contains 1 (indistinguishable counts as matched), "
    "else 0; interval: the same with every ratio at the high / low end of "
    "its own 95% interval"
)


def dps(scores: Sequence[float], ratios: Sequence[float]) -> float:
    """The score of the highest-scored reference with ``ratio <= 1`` (0 if none)."""
    if len(scores) != len(ratios):
        raise ValueError(f"{len(scores)} scores for {len(ratios)} ratios")
    beaten = [s for s, r in zip(scores, ratios, strict=True) if r <= 1.0]
    return max(beaten) if beaten else 0.0


def energy_percentile(
    scores: Sequence[float], comparisons: Sequence[Mapping[str, Any] | None]
) -> dict[str, Any] | None:
    """The record's ``prompt.energy_percentile`` from each reference's score and its
    paired comparison (``PairedRatio.to_json()``: ``ratio``, ``low``, ``high``); None
    when a comparison is missing (nothing measured)."""
    if not scores or len(scores) != len(comparisons):
        return None
    ratios, lows, highs, points = [], [], [], []
    reached = True
    for c in comparisons:
        if not isinstance(c, Mapping):
            return None
        try:
            ratio, low, high = float(c["ratio"]), float(c["low"]), float(c["high"])
            coverage = float(c.get("coverage", 1.0))
            confidence = float(c.get("confidence", 0.95))
        except (KeyError, TypeError, ValueError):
            return None
        # Indistinguishable from a reference (its 95% interval contains 1) counts as
        # matching it: the reference's own code places at its score, not one below it
        # half of the time. A range of too few pairs shows nothing: the ratio decides.
        if coverage + 1e-12 < confidence:  # too few pairs: the range bounds nothing
            reached, low, high = False, 0.0, math.inf
            points.append(ratio)
        else:
            points.append(1.0 if low <= 1.0 <= high else ratio)
        ratios.append(ratio)
        lows.append(low)
        highs.append(high)
    return {
        "value": dps(scores, points),
        "low": dps(scores, highs),
        "high": dps(scores, lows),
        "references": len(scores),
        "intervals_reached": reached,
        "method": METHOD,
    }


def describe(percentile: Mapping[str, Any]) -> str:
    """``60 (95% CI 40–80, 3 graded references)`` for people."""

    def num(x: Any) -> str:
        return f"{float(x):.4g}"

    text = (
        f"{num(percentile['value'])} (95% CI {num(percentile['low'])}–"
        f"{num(percentile['high'])}, {percentile.get('references', '?')} graded references"
    )
    if percentile.get("intervals_reached") is False:
        text += "; too few pairs against some: their ratios bound nothing"
    return text + ")"
