"""analyze(): model x hardware x workload -> Report. Pure functions of their inputs.

Phases:
- prefill: one pass over the prompt (``q = c = prompt``); it also yields the first generated token,
  so TTFT is its time;
- decode: ``gen - 1`` steps; step ``t`` (1-based) feeds one token and attends over ``prompt + t``
  tokens. With the KV cache off, every step recomputes the whole sequence (``q = c = prompt + t``).
All decode steps are evaluated at once with NumPy arrays over ``t``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import ValidationError

from .errors import explain_validation
from .hardware.catalog import HardwareLike, load_hardware
from .hardware.spec import HardwareSpec, resolve_profile
from .memory import footprint
from .model.catalog import ModelLike, load_model
from .model.spec import ModelSpec
from .ops.attention import Pass
from .ops.model import build_ops
from .report import Report
from .roofline import evaluate
from .settings import Settings, preset


def make_settings(**kwargs: Any) -> Settings:
    try:
        return Settings(**kwargs)
    except ValidationError as err:
        raise explain_validation(err, "analysis settings") from None


def analyze(
    model: ModelLike, hardware: HardwareLike, *, hub: bool = False, quant: str | None = None, **settings: Any
) -> Report:
    """Analyse ``model`` on ``hardware``.

    ``model``: catalog name, Hugging Face id known to the catalog, config.json path, dict or ModelSpec
    (``hub=True`` fetches the config from the Hugging Face Hub). ``hardware``: catalog name, YAML/JSON
    path, dict or HardwareSpec. Keyword settings are those of :class:`Settings` (batch, prompt, gen,
    w_bits, a_bits, kv_bits, flash_attention, kv_cache, ...). ``quant`` names a format preset
    (``q4_0``, ``fp8``, ... see ``settings.QUANT_PRESETS``); settings given explicitly override it.
    """
    if quant is not None:
        settings = {**preset(quant), **settings}
    return run(load_model(model, hub=hub), load_hardware(hardware), make_settings(**settings))


def run(spec: ModelSpec, hw: HardwareSpec, s: Settings) -> Report:
    prec = s.precision
    prefill_pass = Pass(s.batch, s.prompt, s.prompt, kv_cache=s.kv_cache, flash_attention=s.flash_attention)
    context = s.prompt + np.arange(1, s.gen, dtype=np.float64)
    q = 1.0 if s.kv_cache else context
    decode_pass = Pass(s.batch, q, context, kv_cache=s.kv_cache, flash_attention=s.flash_attention)

    prefill_ops = build_ops(spec, prec, prefill_pass)
    decode_ops = build_ops(spec, prec, decode_pass)
    profile = resolve_profile(hw, s.engine) if s.estimate else None
    host = profile.host_cost(spec.model_type, spec.num_layers) if profile else None
    prefill = evaluate(
        "prefill", prefill_ops, hw, 1, np.array([float(s.prompt)]), prefill_pass.tokens, profile, host
    )
    decode = evaluate("decode", decode_ops, hw, s.gen - 1, context, decode_pass.tokens, profile, host)

    memory = footprint(
        spec,
        prec,
        hw,
        batch=s.batch,
        context=s.prompt + s.gen,
        pass_tokens=s.prompt if s.kv_cache else s.prompt + s.gen - 1,
        kv_cache=s.kv_cache,
        # Decode arrays hold every step, the last and largest included (none when gen == 1).
        phases=[prefill_ops, decode_ops] if s.gen > 1 else [prefill_ops],
        overhead_bytes=s.overhead_bytes,
    )
    report = Report(spec, hw, s, prefill, decode, memory, notes=[], profile=profile)
    report.notes.extend(_notes(report))
    return report


def _notes(r: Report) -> list[str]:
    """Caveats the numbers depend on, said once, in words."""
    spec, hw, s = r.model, r.hardware, r.settings
    notes = []
    fallbacks = {**r.prefill.fallbacks, **r.decode.fallbacks}
    for wanted, used in fallbacks.items():
        what = "element-wise" if wanted == "vector" else wanted
        wanted_name = "fp32" if wanted == "vector" else wanted
        notes.append(f"{hw.name} lists no {wanted_name} peak: {what} math uses the {used} peak instead")
    length = s.prompt + s.gen
    if spec.max_position_embeddings and length > spec.max_position_embeddings:
        notes.append(
            f"prompt + gen = {length} tokens exceeds {spec.name}'s max_position_embeddings "
            f"({spec.max_position_embeddings}); figures assume the model could run that long"
        )
    if spec.sliding_window and length > spec.sliding_window:
        notes.append(
            f"{spec.name} declares a {spec.sliding_window}-token sliding window; this analysis attends "
            "over the full context (sliding-window attention is not modelled yet)"
        )
    if not r.memory.fits:
        notes.append(
            f"does not fit: needs {r.memory.total_bytes / 1e9:.1f} GB, {hw.name} has "
            f"{hw.memory_bytes / 1e9:.1f} GB (largest batch that fits here: {r.memory.max_batch})"
        )
    if not s.kv_cache:
        notes.append("KV cache off: every decode step recomputes the whole sequence")
    if s.gen == 1:
        notes.append("gen = 1: the prefill pass yields the only token; there are no decode steps")
    if r.profile is None and s.estimate:
        notes.append(
            f"no efficiency profile for {hw.name}: only the ideal roofline bound is shown "
            "(measure one with `rooflens calibrate`)"
        )
    return notes
