"""The footprint of generating an answer: tokens, energy and carbon of the LLM request.

Three cases, each labelled with its method:

* built-in models (``reference``, ``variant:NAME``): nothing generated; zero tokens,
  zero energy, method ``none``.
* an endpoint on this machine (``localhost``, ``127.0.0.1``, ``::1``): the generation
  window is measured with the session's meter and labelled with the meter's method. The
  meter sees this machine's counters (RAPL, NVML) or, with the estimate sensor, only
  pytest's own process tree, not the model server: the record says so in a warning.
* a remote endpoint: estimated from the output tokens and the model's active parameters
  following EcoLogits' published LLM-inference methodology (v1.0,
  https://ecologits.ai/latest/methodology/llm_inference/, GenAI Impact):

  - GPU energy per output token, a linear fit on the Hugging Face LLM-Perf leaderboard
    (A100 80 GB): ``E_gpu / T_out = alpha * P_active + beta`` Wh, alpha = 8.91e-5,
    beta = 1.43e-3, with ``P_active`` in billions.
  - GPUs needed to hold the model: ``ceil(1.2 * P_total * Q / 8 / 80 GB)`` with Q = 4 bits
    (EcoLogits assumes quantized production models).
  - generation latency ``dT = min(T_out * (A * P_active + B), request latency)``,
    A = 8.02e-4 s, B = 2.23e-2 s.
  - server without GPUs: 1 kW shared by 8 installed GPUs: ``dT * 1 kW * GPUs / 8``.
  - ``E_request = PUE * (E_server_without_gpu + GPUs * E_gpu)``, PUE = 1.2.
  - embodied: ``dT / 5 years * (GPUs / 8 * 3000 kgCO2e + GPUs * 143 kgCO2e)``.

  Simplifications, stated: the provider's grid intensity is unknown, so the session's
  intensity (``--carbon-country`` / ``--carbon-intensity``) converts energy to gCO2e; only
  carbon (GWP) is computed, not EcoLogits' other criteria (ADPe, PE); input tokens are
  counted but, as in EcoLogits v1.0, cost no energy.

An unknown model size gives ``energy_j: null`` and method ``unknown``: never a guess.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

from pytest_carbon.carbon.accounting import J_PER_KWH

J_PER_WH = 3600.0
SECONDS_PER_YEAR = 365.25 * 24 * 3600

# EcoLogits v1.0 constants (see the module docstring for the source).
ECOLOGITS_ENERGY_ALPHA_WH = 8.91e-5  # Wh per output token per billion active parameters
ECOLOGITS_ENERGY_BETA_WH = 1.43e-3  # Wh per output token
ECOLOGITS_LATENCY_ALPHA_S = 8.02e-4  # s per output token per billion active parameters
ECOLOGITS_LATENCY_BETA_S = 2.23e-2  # s per output token
ECOLOGITS_QUANTIZATION_BITS = 4
ECOLOGITS_MEMORY_OVERHEAD = 1.2
ECOLOGITS_GPU_MEMORY_GB = 80.0
ECOLOGITS_SERVER_POWER_W = 1000.0  # server without its GPUs
ECOLOGITS_INSTALLED_GPUS = 8
ECOLOGITS_PUE = 1.2
ECOLOGITS_SERVER_EMBODIED_KGCO2E = 3000.0  # AWS p4de.24xlarge without GPUs (BoaviztAPI)
ECOLOGITS_GPU_EMBODIED_KGCO2E = 143.0  # NVIDIA A100 80 GB (Boavizta)
ECOLOGITS_LIFETIME_S = 5 * SECONDS_PER_YEAR

#: Parameters of well-known open models, in billions: (active per token, total).
#: Dense models have active == total. Sources: the models' cards on Hugging Face.
#: Extend with the ini option ``carbon_model_params`` (lines ``name=ACTIVE`` or
#: ``name=ACTIVE/TOTAL``) or a task's ``model_params:`` mapping.
MODEL_PARAMS_B: dict[str, tuple[float, float]] = {
    "llama-3.1-8b": (8.03, 8.03),
    "llama-3.1-70b": (70.6, 70.6),
    "llama-3.1-405b": (405.0, 405.0),
    "llama-3.2-1b": (1.24, 1.24),
    "llama-3.2-3b": (3.21, 3.21),
    "mistral-7b": (7.25, 7.25),
    "mixtral-8x7b": (12.9, 46.7),
    "mixtral-8x22b": (39.1, 141.0),
    "qwen2.5-7b": (7.62, 7.62),
    "qwen2.5-coder-7b": (7.62, 7.62),
    "qwen2.5-coder-32b": (32.8, 32.8),
    "gemma-2-2b": (2.61, 2.61),
    "gemma-2-9b": (9.24, 9.24),
    "phi-3-mini": (3.82, 3.82),
    "codellama-7b": (6.74, 6.74),
    "deepseek-coder-v2-lite": (2.4, 15.7),
    "gpt-oss-20b": (3.6, 21.0),
    "gpt-oss-120b": (5.1, 117.0),
}

_SUFFIXES = ("-instruct", "-chat", "-it", "-hf", "-latest", "-base")
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0", "ip6-localhost"}


def normalize_model(name: str) -> str:
    """A model name reduced for table lookup: ``meta-llama/Llama-3.1-8B-Instruct`` and
    Ollama's ``llama3.1:8b`` both become ``llama318b``."""
    base = name.strip().lower().rsplit("/", 1)[-1]
    base = re.sub(r"-(q\d[\w]*|fp16|bf16|gguf|awq|gptq|int[48])$", "", base)
    changed = True
    while changed:
        changed = False
        for suffix in _SUFFIXES:
            if base.endswith(suffix):
                base = base[: -len(suffix)]
                changed = True
    return re.sub(r"[^a-z0-9]", "", base)


def lookup_params(
    model: str, *extra: Mapping[str, tuple[float, float]]
) -> tuple[float, float] | None:
    """(active, total) billions for ``model``: later tables override earlier ones, the
    built-in table comes first. None when the size is unknown."""
    table: dict[str, tuple[float, float]] = {}
    for source in (MODEL_PARAMS_B, *extra):
        for k, v in source.items():
            table[normalize_model(k)] = v
    return table.get(normalize_model(model))


def parse_params_lines(lines: list[str]) -> tuple[dict[str, tuple[float, float]], list[str]]:
    """Parse ``name=ACTIVE`` / ``name=ACTIVE/TOTAL`` lines. Returns (table, problems)."""
    from pytest_carbon.prompts.spec import parse_params_b

    out: dict[str, tuple[float, float]] = {}
    problems: list[str] = []
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        parsed = parse_params_b(value.strip()) if sep else None
        if not name.strip() or parsed is None:
            problems.append(
                f"carbon_model_params: cannot read {raw!r}; expected NAME=ACTIVE_BILLIONS or "
                "NAME=ACTIVE/TOTAL (e.g. mixtral-8x7b=12.9/46.7)"
            )
            continue
        out[name.strip()] = parsed
    return out, problems


def ini_params(config: Any) -> tuple[dict[str, tuple[float, float]], list[str]]:
    """The ini option ``carbon_model_params`` (linelist), read defensively: an undeclared
    option (older plugin) is an empty table."""
    try:
        lines = config.getini("carbon_model_params")
    except (ValueError, KeyError):
        return {}, []
    if isinstance(lines, str):
        lines = lines.splitlines()
    return parse_params_lines(list(lines or []))


def is_local_endpoint(url: str | None) -> bool:
    if not url:
        return False
    host = (urlparse(url).hostname or "").lower()
    return host in _LOCAL_HOSTS or host.startswith("127.")


def none_footprint() -> dict[str, Any]:
    """A built-in model: nothing was generated."""
    return {
        "input_tokens": 0,
        "output_tokens": 0,
        "energy_j": 0.0,
        "gco2e_g": 0.0,
        "method": "none",
    }


def ecologits_estimate(
    output_tokens: int, active_b: float, total_b: float, request_latency_s: float | None = None
) -> dict[str, float]:
    """EcoLogits' energy of one request, in J, with its latency and embodied carbon.

    Returns ``energy_j`` (with PUE), ``latency_s`` (the modelled generation time),
    ``gpus`` and ``embodied_gco2e_g``.
    """
    memory_gb = ECOLOGITS_MEMORY_OVERHEAD * total_b * ECOLOGITS_QUANTIZATION_BITS / 8
    gpus = max(math.ceil(memory_gb / ECOLOGITS_GPU_MEMORY_GB), 1)
    gpu_wh = output_tokens * (ECOLOGITS_ENERGY_ALPHA_WH * active_b + ECOLOGITS_ENERGY_BETA_WH)
    latency_s = output_tokens * (ECOLOGITS_LATENCY_ALPHA_S * active_b + ECOLOGITS_LATENCY_BETA_S)
    if request_latency_s is not None and request_latency_s > 0:
        latency_s = min(latency_s, request_latency_s)
    share = gpus / ECOLOGITS_INSTALLED_GPUS
    server_wh = latency_s / 3600.0 * ECOLOGITS_SERVER_POWER_W * share
    energy_j = ECOLOGITS_PUE * (server_wh + gpus * gpu_wh) * J_PER_WH
    embodied_kg = share * ECOLOGITS_SERVER_EMBODIED_KGCO2E + gpus * ECOLOGITS_GPU_EMBODIED_KGCO2E
    embodied_g = latency_s / ECOLOGITS_LIFETIME_S * embodied_kg * 1000.0
    return {
        "energy_j": energy_j,
        "latency_s": latency_s,
        "gpus": float(gpus),
        "embodied_gco2e_g": embodied_g,
    }


def remote_footprint(
    model: str,
    input_tokens: int | None,
    output_tokens: int | None,
    intensity_g_per_kwh: float,
    *,
    latency_s: float | None = None,
    params: tuple[float, float] | None,
) -> dict[str, Any]:
    """The estimated footprint of a remote request (method ``estimated``), or ``unknown``
    with null energy when the model size or the token count is unknown."""
    fp: dict[str, Any] = {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "energy_j": None,
        "gco2e_g": None,
        "method": "unknown",
    }
    if params is None:
        fp["reason"] = (
            f"the size of model {model!r} is unknown; add it to the ini option "
            "carbon_model_params (NAME=ACTIVE_BILLIONS[/TOTAL])"
        )
        return fp
    if output_tokens is None:
        fp["reason"] = "the endpoint reported no token usage"
        return fp
    est = ecologits_estimate(output_tokens, params[0], params[1], latency_s)
    fp.update(
        energy_j=est["energy_j"],
        gco2e_g=est["energy_j"] / J_PER_KWH * intensity_g_per_kwh,
        method="estimated",
        embodied_gco2e_g=est["embodied_gco2e_g"],
        params_b={"active": params[0], "total": params[1]},
        model_latency_s=est["latency_s"],
        basis="EcoLogits v1.0 LLM inference methodology",
    )
    return fp


def measured_footprint(
    input_tokens: int | None,
    output_tokens: int | None,
    energy_j: float,
    method: str,
    gco2e_g: float,
) -> dict[str, Any]:
    """A local endpoint's generation window, measured with the session's meter."""
    fp: dict[str, Any] = {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "energy_j": energy_j,
        "gco2e_g": gco2e_g,
        "method": method,
    }
    if method in ("estimated", "attributed"):
        fp["warning"] = (
            "generation energy of a local endpoint was " + method + " from "
            "pytest's own process tree only: the model server's processes are "
            "not included; use a counter (RAPL/NVML) to see them"
        )
    return fp
