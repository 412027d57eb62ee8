"""Option declarations and the frozen Settings built once per session.

Precedence, highest first: command line > environment (``PYTEST_CARBON_<NAME>``) > ini
(``[tool.pytest.ini_options]``) > default. Markers refine a few settings per test.
Every command-line option ``--carbon-x-y`` has the ini twin ``carbon_x_y``.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

# -- value parsers (argparse ``type=`` functions: they raise ArgumentTypeError) -------------


def closest(value: str, choices: Sequence[str]) -> str:
    """`` (did you mean X?)`` for the closest valid choice, else ``""``: every usage error
    names what was expected and the nearest valid value."""
    import difflib

    close = difflib.get_close_matches(value.strip().lower(), list(choices), n=1, cutoff=0.5)
    return f"; did you mean {close[0]}?" if close else ""


def _choice(value: str, choices: Sequence[str]) -> str:
    if value in choices:
        return value
    raise argparse.ArgumentTypeError(
        f"expected {', '.join(choices[:-1])} or {choices[-1]}, got {value!r}"
        + closest(value, choices)
    )


def _parse_number(
    value: str, kind: type[Any], low: float, *, inclusive: bool, high: float | None = None
) -> Any:
    noun = "an integer" if kind is int else "a number"
    try:
        v = kind(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {noun}, got {value!r}") from None
    if v != v or v in (float("inf"), float("-inf")):  # nan, inf
        raise argparse.ArgumentTypeError(f"expected a finite number, got {value!r}")
    if v < low or (v == low and not inclusive):
        bound = f"{'>=' if inclusive else '>'} {low:g}"
        nearest = low if inclusive else (1 if kind is int else None)
        hint = f"; the closest valid value is {nearest:g}" if nearest is not None else ""
        raise argparse.ArgumentTypeError(f"expected {noun} {bound}, got {value!r}{hint}")
    if high is not None and v > high:
        raise argparse.ArgumentTypeError(
            f"expected {noun} <= {high:g}, got {value!r}; the closest valid value is {high:g}"
        )
    return v


def parse_positive_float(value: str) -> float:
    return float(_parse_number(value, float, 0, inclusive=False))


def parse_nonnegative_float(value: str) -> float:
    return float(_parse_number(value, float, 0, inclusive=True))


def parse_fraction(value: str) -> float:
    """A fraction in (0, 1): ``0.05``, or ``5%``. A bare number >= 1 is a percentage given
    as a number (``5`` for 5%): an error that suggests the fraction, never ±500%."""
    text = value.strip()
    if text.endswith("%"):
        pct = float(_parse_number(text[:-1], float, 0, inclusive=False))
        if pct >= 100:
            raise argparse.ArgumentTypeError(
                f"expected a percentage below 100%, got {value!r}; e.g. 5% (= 0.05)"
            )
        return pct / 100
    v = float(_parse_number(text, float, 0, inclusive=False))
    if v >= 1:
        expected = f"expected a fraction between 0 and 1 (0.05 = ±5%), got {value!r}"
        if v < 100:
            raise argparse.ArgumentTypeError(
                f"{expected}: a percentage given as a number? did you mean {v / 100:g} (or {v:g}%)?"
            )
        raise argparse.ArgumentTypeError(f"{expected}; did you mean 0.05?")
    return v


def parse_interval_ms(value: str) -> float:
    """The sampler's interval in ms: 1 ms to 1 h (``0.1`` is probably seconds)."""
    v = float(_parse_number(value, float, 0, inclusive=False))
    if v < 1:
        raise argparse.ArgumentTypeError(
            f"expected milliseconds between 1 and 3600000, got {value!r} (seconds?); "
            f"did you mean {max(v * 1000, 1):g}?"
        )
    if v > 3_600_000:
        raise argparse.ArgumentTypeError(
            f"expected milliseconds between 1 and 3600000, got {value!r}; the closest "
            "valid value is 3600000"
        )
    return v


def parse_intensity(value: str) -> float:
    """Grid intensity in gCO2e/kWh: 0 to 2000 (the dirtiest grids are near 1,100)."""
    return float(_parse_number(value, float, 0, inclusive=True, high=2000))


def parse_pue(value: str) -> float:
    v = parse_positive_float(value)
    if v < 1.0:
        raise argparse.ArgumentTypeError(
            f"PUE is total facility / IT energy, >= 1.0; got {value}; the closest valid "
            "value is 1.0"
        )
    if v > 5.0:
        raise argparse.ArgumentTypeError(
            f"PUE is total facility / IT energy, between 1.0 and 5.0 (typical data centres: "
            f"1.1-1.6); got {value}; the closest valid value is 5.0"
        )
    return v


def parse_positive_int(value: str) -> int:
    return int(_parse_number(value, int, 1, inclusive=True))


def parse_idle(value: str) -> str | float:
    """``auto`` (measure once per session), ``off``, or a power in watts."""
    v = value.strip().lower()
    if v in ("auto", "off"):
        return v
    try:
        w = float(v.removesuffix("w"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--carbon-idle takes auto, off or WATTS, got {value!r}"
            + closest(value, ("auto", "off"))
        ) from None
    if w < 0 or w != w or w == float("inf"):
        raise argparse.ArgumentTypeError(
            f"idle power must be a number of W >= 0, got {value!r}; the closest valid value is 0"
        )
    return w


def parse_sensors(value: str) -> str:
    from pytest_carbon.measure.sensors.discover import parse_sensor_names

    try:
        return ",".join(parse_sensor_names(value))
    except ValueError as exc:
        from pytest_carbon.measure.sensors.discover import ALL_SENSORS

        bad = [n.strip() for n in value.split(",") if n.strip() not in (*ALL_SENSORS, "auto")]
        hint = closest(bad[0], ("auto", *ALL_SENSORS)) if bad else ""
        raise argparse.ArgumentTypeError(str(exc) + hint) from None


def parse_llm_mode(value: str) -> str:
    return _choice(value, ("auto", "replay", "live"))


def parse_screen(value: str) -> str:
    return _choice(value, ("auto", "off"))


def parse_attribution(value: str) -> str:
    return _choice(value, ("auto", "machine", "process"))


def parse_country(value: str) -> str:
    v = value.strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", v):
        raise argparse.ArgumentTypeError(
            f"expected an ISO 3166-1 alpha-3 country code such as FRA or USA, got {value!r}"
            + _country_hint(value)
        )
    return v


def _country_hint(value: str) -> str:
    """ " Did you mean: FRA (France)?" from codecarbon's country table (error path only,
    the same words as ``pytest-carbon measure --country``)."""
    try:
        from pytest_carbon.carbon.accounting import _MIX_FILE, _country_error, _load

        text = str(_country_error(value, _load(_MIX_FILE)))
    except (ImportError, OSError, ValueError, KeyError):  # a courtesy: never hide the error
        return ""
    _, found, hint = text.partition(" Did you mean:")
    return f". Did you mean:{hint}" if found else ""


#: Compiled when first used (``re`` caches it), not at every pytest start.
_COMPARE_FAIL = (
    r"^(?P<metric>energy|dynamic_energy|duration|gco2e|edp):(?P<value>[0-9]*\.?[0-9]+)(?P<pct>%?)$"
)


def parse_compare_fail(value: str) -> str:
    """``METRIC:N%`` or ``METRIC:N`` (absolute, in the metric's unit)."""
    if not re.match(_COMPARE_FAIL, value.strip()):
        metric = value.strip().partition(":")[0]
        raise argparse.ArgumentTypeError(
            f"expected METRIC:N% or METRIC:N with METRIC one of energy, dynamic_energy, "
            f"duration, gco2e, edp; got {value!r}"
            + closest(metric, ("energy", "dynamic_energy", "duration", "gco2e", "edp"))
        )
    return value.strip()


# -- the option table ----------------------------------------------------------------------


@dataclass(frozen=True)
class Opt:
    """One option: its name (dest and ini twin), help, parser, default and kind."""

    name: str  # dest and ini name, e.g. carbon_json
    help: str
    parse: Callable[[str], Any] | None = None
    default: Any = None
    kind: str = "value"  # value | flag | append | optional (nargs='?')
    const: Any = None
    metavar: str | None = None

    def __post_init__(self) -> None:
        # A flag is off and a repeatable option empty unless given: their defaults are
        # implied by the kind, so the table need not spell them out.
        if self.kind == "flag" and self.default is None:
            object.__setattr__(self, "default", False)
        elif self.kind == "append":
            object.__setattr__(self, "default", tuple(self.default or ()))

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


OPTIONS: tuple[Opt, ...] = (
    Opt("carbon", "measure the energy and carbon of every test's call phase", kind="flag"),
    Opt(
        "carbon_json",
        "write the JSON report (schema pytest-carbon/report/1) to PATH",
        metavar="PATH",
    ),
    Opt(
        "carbon_csv",
        "write a CSV report (codecarbon emissions.csv columns) to PATH",
        metavar="PATH",
    ),
    Opt(
        "carbon_html",
        "write a self-contained HTML report to PATH (needs the [html] extra)",
        metavar="PATH",
    ),
    Opt(
        "carbon_markdown",
        "write a Markdown summary (e.g. $GITHUB_STEP_SUMMARY) to PATH",
        metavar="PATH",
    ),
    Opt(
        "carbon_country",
        "ISO3 country for grid intensity (default: world average)",
        parse_country,
        metavar="ISO3",
    ),
    Opt(
        "carbon_region",
        "region within the country, e.g. a US state or a Nordic zone",
        metavar="NAME",
    ),
    Opt(
        "carbon_intensity",
        "grid intensity in gCO2e/kWh (0-2000), overrides country and region",
        parse_intensity,
        metavar="G_PER_KWH",
    ),
    Opt(
        "carbon_pue",
        "power usage effectiveness of the facility (default: 1.0)",
        parse_pue,
        1.0,
        metavar="X",
    ),
    Opt(
        "carbon_embodied", "also report embodied (manufacturing) emissions, separately", kind="flag"
    ),
    Opt(
        "carbon_embodied_kgco2e",
        "manufacturing footprint of the machine, kgCO2e",
        parse_nonnegative_float,
        metavar="KG",
    ),
    Opt(
        "carbon_lifetime_h",
        "service lifetime of the machine in hours",
        parse_positive_float,
        metavar="HOURS",
    ),
    Opt(
        "carbon_water",
        "water use factor in L/kWh, to report water (off by default)",
        parse_nonnegative_float,
        metavar="L_PER_KWH",
    ),
    Opt(
        "carbon_sensors",
        "sensors: auto, or a comma list of rapl, nvml, estimate",
        parse_sensors,
        "auto",
        metavar="LIST",
    ),
    Opt(
        "carbon_rapl_root",
        "powercap sysfs root (default: /sys/class/powercap)",
        default="/sys/class/powercap",
        metavar="DIR",
    ),
    Opt(
        "carbon_interval",
        "sampler interval for power-only sensors, in ms (1-3600000; default: 100)",
        parse_interval_ms,
        100.0,
        metavar="MS",
    ),
    Opt(
        "carbon_idle",
        "idle baseline: auto (measured once), off, or a power in W",
        parse_idle,
        "auto",
        metavar="auto|off|WATTS",
    ),
    Opt(
        "carbon_min_time",
        "minimum measured time of the carbon fixture, s (default: 0.2)",
        parse_positive_float,
        0.2,
        metavar="SECONDS",
    ),
    Opt(
        "carbon_rounds",
        "repeat each test's call phase N times (default: 1)",
        parse_positive_int,
        1,
        metavar="N",
    ),
    Opt(
        "carbon_top",
        "rows in the terminal table (default: 20; -v shows all)",
        parse_positive_int,
        20,
        metavar="N",
    ),
    Opt(
        "carbon_save",
        "save this run in the storage, with an optional NAME",
        kind="optional",
        const="run",
        metavar="NAME",
    ),
    Opt("carbon_autosave", "save every run in the storage", kind="flag"),
    Opt(
        "carbon_storage",
        "where runs are stored (default: .carbon)",
        default=".carbon",
        metavar="DIR",
    ),
    Opt(
        "carbon_compare",
        "compare with a stored run: latest, an ID or a PATH",
        kind="optional",
        const="latest",
        metavar="ID|PATH",
    ),
    Opt(
        "carbon_compare_fail",
        "fail on a regression, e.g. energy:10% (repeatable)",
        parse_compare_fail,
        kind="append",
        metavar="METRIC:N%",
    ),
    Opt(
        "carbon_model",
        "model for prompt suites (repeatable; default: reference)",
        kind="append",
        metavar="NAME",
    ),
    Opt(
        "carbon_strategy",
        "prompt strategy for prompt suites (repeatable; default: plain; see strategies.yaml)",
        kind="append",
        metavar="NAME",
    ),
    Opt("carbon_base_url", "OpenAI-compatible endpoint (default: $OPENAI_BASE_URL)", metavar="URL"),
    Opt(
        "carbon_llm_cache",
        "LLM answer cache (default: .carbon/llm-cache)",
        default=".carbon/llm-cache",
        metavar="DIR",
    ),
    Opt(
        "carbon_llm_mode",
        "auto (cache, then endpoint), replay (cache only) or live",
        parse_llm_mode,
        "auto",
        metavar="MODE",
    ),
    Opt(
        "carbon_llm_timeout",
        "timeout of one LLM request, s (default: 120)",
        parse_positive_float,
        120.0,
        metavar="SECONDS",
    ),
    Opt(
        "carbon_samples",
        "samples per (task, model) (default: the task's, else 1)",
        parse_positive_int,
        metavar="N",
    ),
    Opt(
        "carbon_concurrency",
        "concurrent LLM requests while prefetching (default: 4)",
        parse_positive_int,
        4,
        metavar="N",
    ),
    Opt(
        "carbon_prompts",
        "glob of prompt-suite files (default: **/*.yaml under prompts/)",
        default="prompts/**/*.yaml",
        metavar="GLOB",
    ),
    Opt(
        "carbon_precision",
        "prompt items and --carbon-compare-ref: keep adding interleaved pairs until the "
        "energy ratio's 95% interval is within +-this fraction, 0 to 1, or N% "
        "(default: 0.05)",
        parse_fraction,
        0.05,
        metavar="FRACTION",
    ),
    Opt(
        "carbon_max_time",
        "most seconds of interleaved measuring per prompt item (calibration included) or "
        "per test under --carbon-compare-ref (default: 10)",
        parse_positive_float,
        10.0,
        metavar="SECONDS",
    ),
    Opt(
        "carbon_compare_ref",
        "run each test interleaved against git REF (a temporary worktree) and judge "
        "the paired energy ratio head/base",
        metavar="REF",
    ),
    Opt(
        "carbon_compare_screen",
        "--carbon-compare-ref: auto (screen groups first: the suite, then files, then "
        "tests, descending only where a group may have changed) or off (every test)",
        parse_screen,
        "auto",
        metavar="auto|off",
    ),
    Opt(
        "carbon_compare_budget",
        "--carbon-compare-ref: most seconds for the whole comparison (the base's start, "
        "the screen and the tests examined alone); tests still to examine when it is "
        "spent are inconclusive, never a regression; 0: no limit (default: 50)",
        parse_nonnegative_float,
        50.0,
        metavar="SECONDS",
    ),
    Opt(
        "carbon_attribution",
        "how a machine-wide counter is charged to a test: auto and process (own dynamic "
        "energy + idle per CPU x own CPU time; the wall time's idle, beside, split among "
        "workers or by CPU share) or machine (the whole counter)",
        parse_attribution,
        "auto",
        metavar="auto|machine|process",
    ),
)


#: Per option kind: its argparse arguments and its ini type.
_KINDS: dict[str, tuple[dict[str, Any], str]] = {
    "flag": ({"action": "store_true"}, "bool"),
    "append": ({"action": "append"}, "linelist"),
    "optional": ({"nargs": "?"}, "string"),
    "value": ({}, "string"),
}


def add_options(parser: Any) -> None:
    """Declare every option in one group, each with its ini twin."""
    group = parser.getgroup("carbon", "energy and carbon measurement (pytest-carbon)")
    for o in OPTIONS:
        # argparse %-formats help strings ("%(default)s"); a literal % must be doubled or
        # `pytest --help` crashes for every project in the environment. Ini help is not
        # %-formatted, so it keeps the plain text.
        help_text = o.help.replace("%", "%%")
        argparse_kind, ini_type = _KINDS[o.kind]
        # default=None everywhere: build_settings tells "not given" from a given value.
        kwargs: dict[str, Any] = {"dest": o.name, "default": None, "help": help_text}
        kwargs.update(argparse_kind)
        if o.kind != "flag":
            kwargs.update(type=o.parse, metavar=o.metavar)
        if o.kind == "optional":
            kwargs["const"] = o.const
        group.addoption(o.flag, **kwargs)
        parser.addini(o.name, o.help, type=ini_type, default=None)
    # A table, so ini only (no command-line twin): model sizes for generation footprints.
    parser.addini(
        "carbon_model_params",
        "model sizes for generation footprints, one per line: NAME=ACTIVE_BILLIONS or "
        "NAME=ACTIVE/TOTAL (e.g. mixtral-8x7b=12.9/46.7)",
        type="linelist",
        default=[],
    )


@dataclass(frozen=True, init=False)
class Settings:
    """Every option, resolved. Field names are the option names; the types are declared
    here, the defaults only in :data:`OPTIONS` (``Opt.default``): ``Settings(**values)``
    fills every option not given from there."""

    carbon: bool
    carbon_json: str | None
    carbon_csv: str | None
    carbon_html: str | None
    carbon_markdown: str | None
    carbon_country: str | None
    carbon_region: str | None
    carbon_intensity: float | None
    carbon_pue: float
    carbon_embodied: bool
    carbon_embodied_kgco2e: float | None
    carbon_lifetime_h: float | None
    carbon_water: float | None
    carbon_sensors: str
    carbon_rapl_root: str
    carbon_interval: float
    carbon_idle: str | float
    carbon_min_time: float
    carbon_rounds: int
    carbon_top: int
    carbon_save: str | None
    carbon_autosave: bool
    carbon_storage: str
    carbon_compare: str | None
    carbon_compare_fail: tuple[str, ...]
    carbon_model: tuple[str, ...]
    carbon_strategy: tuple[str, ...]
    carbon_base_url: str | None
    carbon_llm_cache: str
    carbon_llm_mode: str
    carbon_llm_timeout: float
    carbon_samples: int | None
    carbon_concurrency: int
    carbon_prompts: str
    carbon_precision: float
    carbon_max_time: float
    carbon_compare_ref: str | None
    carbon_compare_screen: str
    carbon_compare_budget: float
    carbon_attribution: str
    #: Where each value came from: cli, env, ini or default.
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    def __init__(self, *, sources: dict[str, str] | None = None, **values: Any) -> None:
        unknown = sorted(set(values) - _OPTION_NAMES)
        if unknown:
            raise TypeError(f"Settings: no such option: {', '.join(unknown)}")
        for o in OPTIONS:
            object.__setattr__(self, o.name, values.get(o.name, o.default))
        object.__setattr__(self, "sources", dict(sources or {}))

    @property
    def enabled(self) -> bool:
        """True when anything asks for measurement or a report."""
        return bool(self.carbon)

    @property
    def interval_s(self) -> float:
        return self.carbon_interval / 1000.0


_OPTION_NAMES = frozenset(o.name for o in OPTIONS)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class OptionError(ValueError):
    """A value from the environment or ini could not be parsed."""


def _convert(o: Opt, raw: Any, origin: str) -> Any:
    try:
        if o.kind == "flag":
            if isinstance(raw, bool):
                return raw
            s = str(raw).strip().lower()
            if s in _TRUE:
                return True
            if s in _FALSE:
                return False
            raise argparse.ArgumentTypeError(f"expected true or false, got {raw!r}")
        if o.kind == "append":
            items = raw if isinstance(raw, (list, tuple)) else str(raw).replace(",", " ").split()
            return tuple(o.parse(str(x)) if o.parse else str(x) for x in items)
        if o.parse is not None and isinstance(raw, str):
            return o.parse(raw)
        return raw
    except argparse.ArgumentTypeError as exc:
        raise OptionError(f"{origin}: {exc}") from None


def build_settings(config: Any, environ: dict[str, str] | None = None) -> Settings:
    """Resolve every option once: CLI > environment > ini > default."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for o in OPTIONS:
        cli = config.getoption(o.name, default=None)
        if cli is not None:
            values[o.name] = tuple(cli) if o.kind == "append" else cli
            sources[o.name] = "cli"
            continue
        env_name = "PYTEST_" + o.name.upper()
        if env.get(env_name) not in (None, ""):
            values[o.name] = _convert(o, env[env_name], f"${env_name}")
            sources[o.name] = "env"
            continue
        try:
            ini = config.getini(o.name)
        except (ValueError, KeyError):
            ini = None
        if ini not in (None, "", []):
            values[o.name] = _convert(o, ini, f"ini option {o.name}")
            sources[o.name] = "ini"
            continue
        sources[o.name] = "default"
    return Settings(**values, sources=sources)
