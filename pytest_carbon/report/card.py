"""``pytest-carbon card IN.json``: a minimum environmental card, in Markdown, for a paper.

After the climate performance model card of Hershcovich, Webersinke, Kraus, Bingler and
Leippold (2022), "Towards Climate Awareness in NLP Research", EMNLP 2022
(arXiv:2205.05071). Its minimum card asks for the time taken, the energy (CPU/GPU) and the
location; its extended card for the energy mix, the CO2e emitted, and the CO2e of one
sample. Here the questions are answered for one measured run (tests or a prompt suite),
and every number says how it was obtained: ``measured`` (hardware counter),
``estimated`` (a model) or ``attributed`` (a CPU-time share of a machine-wide counter).
The card's questions about the model itself (is it public, what positive impact) are for
the authors to answer.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_carbon.carbon.accounting import J_PER_KWH
from pytest_carbon.report import format as fmt
from pytest_carbon.report.format import num as _num
from pytest_carbon.report.html.cards import _machines
from pytest_carbon.report.html.common import _components, _prompt, _sub
from pytest_carbon.report.totals import compute

CITATION = (
    "Hershcovich, D., Webersinke, N., Kraus, M., Bingler, J. A., Leippold, M. (2022). "
    "Towards Climate Awareness in NLP Research. EMNLP 2022. arXiv:2205.05071"
)


def _md(text: Any) -> str:
    """A table cell: text, never markup (see :mod:`.mdtext`); a node id cannot break it."""
    from pytest_carbon.report.mdtext import text as md_text

    return md_text(str(text).strip())


def _method_text(counts: Mapping[str, int]) -> str:
    if not counts:
        return "nothing measured"
    if len(counts) == 1:
        return f"{next(iter(counts))}"
    return ", ".join(f"{m} for {n} tests" for m, n in sorted(counts.items()))


def _hardware(report: Mapping[str, Any]) -> str:
    parts = []
    for m in _machines(report):
        cpu = m.get("cpu_model") or "unknown CPU"
        if m.get("cpu_count"):
            cpu += f" ({m['cpu_count']} logical CPUs)"
        bits = [cpu]
        if m.get("ram_gb"):
            bits.append(f"{m['ram_gb']} GB RAM")
        gpus = m.get("gpus") or []
        names = [
            str(g.get("name") or g.get("model") or g) if isinstance(g, dict) else str(g)
            for g in gpus
        ]
        bits.append(", ".join(names) if names else "no GPU")
        if m.get("virtualized"):
            bits.append("virtual machine")
        parts.append(", ".join(bits))
    return "; ".join(parts) or "not recorded"


def _sensors(report: Mapping[str, Any]) -> str:
    used = []
    for m in _machines(report):
        for s in m.get("sensors") or []:
            if isinstance(s, dict) and s.get("available", True):
                comps = ", ".join(str(c) for c in s.get("components") or [])
                used.append(f"{s.get('name')} ({s.get('method')}: {comps})")
    return "; ".join(dict.fromkeys(used)) or "not recorded"


def _components_text(records: Sequence[Mapping[str, Any]]) -> str:
    sums: dict[str, float] = {}
    methods: dict[str, set[str]] = {}
    for r in records:
        comp_methods = _sub(r, "component_methods")
        for comp, value in _components(r).items():
            sums[comp] = sums.get(comp, 0.0) + value
            methods.setdefault(comp, set()).add(
                str(comp_methods.get(comp) or r.get("method") or "unknown")
            )
    return "; ".join(
        f"{comp} {fmt.energy(v)} ({', '.join(sorted(methods[comp]))})" for comp, v in sums.items()
    )


def render_card(report: Mapping[str, Any]) -> str:
    """The card as Markdown."""
    records = [r for r in report.get("tests") or [] if isinstance(r, dict)]
    t = compute(records)
    acc = _sub(report, "accounting")
    method = _method_text(t.methods)
    measured = [r for r in records if _num(r.get("energy_j")) is not None]
    measured_time = sum(_num(r.get("duration_s")) or 0.0 for r in measured)
    energy = t.energy_j
    carbon = t.gco2e_g
    pue = _num(acc.get("pue"))
    intensity = _num(acc.get("intensity_g_per_kwh"))

    place = " / ".join(str(x) for x in (acc.get("country"), acc.get("region")) if x)
    location = place or "not given: the world-average intensity was assumed"
    mix = f"{fmt.plain(intensity)} gCO2e/kWh" if intensity is not None else "unknown"
    source = acc.get("intensity_source")
    if source:
        mix += f" ({source}" + (f", {acc['intensity_year']}" if acc.get("intensity_year") else "")
        mix += ")"
    if acc.get("intensity_is_default"):
        mix += "; a default, not the actual location's grid"

    energy_text = "nothing measured"
    if energy is not None:
        energy_text = f"{fmt.energy(energy)} = {fmt.plain(energy / J_PER_KWH)} kWh, {method}"
        comps = _components_text(measured)
        if comps:
            energy_text += f"; by component: {comps}"
    power_text = (
        f"{fmt.plain(energy / measured_time)} W mean while measured ({method})"
        if energy is not None and measured_time > 0
        else "not measured"
    )
    formula = "energy (kWh) x PUE"
    if pue is not None:
        formula += f" {fmt.setting(pue)}"
    formula += " x grid intensity"
    carbon_text = (
        f"{fmt.carbon(carbon)}: {formula}; energy {method}"
        if carbon is not None
        else "not measured"
    )
    per_item = (
        f"{fmt.carbon(carbon / len(measured))} per measured test, mean of {len(measured)}"
        if carbon is not None and measured
        else "not measured"
    )
    run = _sub(report, "run")
    time_text = f"{fmt.duration(measured_time)} measured in {len(measured)} tests (wall clock)"
    if (run_s := _num(run.get("duration_s"))) is not None:
        time_text += f"; whole run {fmt.duration(run_s)}"

    rows = [
        ("Minimum card", ""),
        ("Hardware", _hardware(report)),
        ("How much time did the measured work take?", time_text),
        ("What was the energy consumption (CPU/GPU/memory)?", energy_text),
        ("What was the mean power draw?", power_text),
        ("At which geo location were the computations performed?", location),
        ("Extended card", ""),
        ("What was the energy mix at the geo location?", mix),
        ("How much CO2e was emitted?", carbon_text),
        ("What is the average CO2e of one test (sample)?", per_item),
        (
            "Embodied emissions (manufacturing share)?",
            fmt.carbon(t.embodied_gco2e_g) + ", beside the CO2e above, not in it"
            if t.embodied_gco2e_g is not None
            else "not asked for (--carbon-embodied)",
        ),
        (
            "Water?",
            fmt.water(t.water_l) if t.water_l is not None else "not asked for (--carbon-water)",
        ),
        (
            "How were the numbers obtained?",
            f"{_sensors(report)}; PUE "
            + (
                fmt.setting(pue) + (" (default)" if acc.get("pue_is_default") else "")
                if pue is not None
                else "unknown"
            ),
        ),
        (
            "Tool",
            f"pytest-carbon {report.get('version', '?')}, report "
            f"{report.get('created', '?')}"
            + (
                ""
                if report.get("complete", True)
                else " (incomplete: "
                + str(report.get("incomplete_reason") or "the run was interrupted")
                + ")"
            ),
        ),
    ]
    lines = [
        "### Climate performance card",
        "",
        "Minimum card after Hershcovich et al. (2022), answered for one measured run.",
        "",
        "| Question | Answer |",
        "|---|---|",
    ]
    for question, answer in rows:
        if answer == "":
            lines.append(f"| **{question}** | |")
        else:
            lines.append(f"| {_md(question)} | {_md(answer)} |")
    model_lines = _model_lines(records)
    if model_lines:
        lines += ["", *model_lines]
    lines += [
        "",
        "Methods: *measured* = hardware energy counter (RAPL, NVML); *estimated* = model "
        "(CPU time x power per core, memory size x time); *attributed* = a CPU-time share "
        "of a machine-wide counter. Tests that measured nothing are left out, not counted "
        "as zero.",
        "",
        f"Card format: {CITATION}.",
        "",
    ]
    return "\n".join(lines)


def _model_lines(records: Sequence[Mapping[str, Any]]) -> list[str]:
    prompt_records = [r for r in records if _prompt(r)]
    if not prompt_records:
        return []
    from pytest_carbon.report.html.tables import model_rows

    rows = model_rows(prompt_records)
    lines = [
        "| Model | frugality (vs reference) | pass@1 | execution CO2e "
        "| generation CO2e | CO2e per correct answer |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        p1 = _num(r.get("pass_at_1"))
        exe_m = r.get("execution_method") or "not measured"
        gen_m = r.get("generation_method") or "unknown"
        low, high = _num(r.get("frugality_low")), _num(r.get("frugality_high"))
        ci = f" ({fmt.sig(low)}–{fmt.sig(high)})" if low is not None and high is not None else ""
        lines.append(
            "| "
            + " | ".join(
                _md(x)
                for x in (
                    r.get("model"),
                    fmt.ratio(r.get("frugality")) + ci,
                    f"{p1:.0%} ({r.get('correct')}/{r.get('items')})" if p1 is not None else "—",
                    f"{fmt.carbon(r.get('execution_gco2e_g'))} ({exe_m})",
                    f"{fmt.carbon(r.get('generation_gco2e_g'))} ({gen_m})",
                    fmt.carbon(r.get("gco2e_per_correct_g")),
                )
            )
            + " |"
        )
    return lines


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="pytest-carbon card",
        description="Print a minimum environmental card (Markdown) for a JSON report, after "
        "Hershcovich et al. (2022), 'Towards Climate Awareness in NLP Research'.",
    )
    parser.add_argument("report", help="a pytest-carbon JSON report (--carbon-json)")
    parser.add_argument("-o", "--output", help="write the card to this file instead of stdout")
    args = parser.parse_args(argv)
    from pytest_carbon.results.io import ReportError, load_report

    try:
        report = load_report(args.report)
    except ReportError as exc:
        print(f"pytest-carbon card: {exc}", file=sys.stderr)
        return 2
    text = render_card(report)
    if args.output:
        from pytest_carbon.results.atomic import write_text_atomic

        write_text_atomic(Path(args.output), text)
        print(f"card written to {args.output}")
    else:
        sys.stdout.write(text)
    return 0
