"""analyze(): model x hardware x workload -> Report. Pure functions of their inputs.

Phases:
- prefill: one pass over the prompt (``q = c = prompt``); it also yields the first generated token,
  so TTFT is its time. With a prefix shared by the batch, the prefix runs once (one sequence) and the
  rest of each prompt runs on top of it.
- decode: ``gen - 1`` steps; step ``t`` (1-based) feeds one token and attends over ``prompt + t``
  tokens. With the KV cache off, every step recomputes the whole sequence (``q = c = prompt + t``).
  With speculative decoding a step is a round: the draft proposes ``k`` tokens one by one, the target
  verifies ``k + 1`` in one pass, and ``(1 - a^(k+1)) / (1 - a)`` tokens are kept on average
  (acceptance rate ``a``); TPOT is the decode time over the ``gen - 1`` tokens.
All decode steps are evaluated at once with NumPy arrays over ``t``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from pydantic import ValidationError

from .errors import RooflensError, explain_validation
from .formats import FORMATS
from .hardware.catalog import HardwareLike, load_hardware
from .hardware.efficiency import EfficiencyProfile
from .hardware.spec import HardwareSpec, resolve_profile
from .layers import REGISTRY
from .memory import CacheShape, footprint, kv_cache_bytes, resident_weight_bytes, residual_bytes
from .model.catalog import ModelLike, load_model
from .model.spec import ModelSpec
from .ops.base import Op, Pass
from .ops.execution import Execution, shard
from .ops.heads import EAGLE_DRAFT_VOCAB, eagle3_fuse_op, eagle3_ops, head_weight_bytes, medusa_ops, mtp_ops
from .ops.model import build_ops, device_pass
from .ops.precision import Precision
from .report import Report
from .roofline import evaluate
from .settings import Settings, kv_preset, preset

# Settings that describe the weight format: giving any of them replaces the checkpoint's own.
FORMAT_SETTINGS = frozenset({"w_bits", "a_bits", "low_bit", "group_size", "symmetric"})


def precision_for(spec: ModelSpec, s: Settings) -> Precision:
    """The precision an analysis runs at: the settings', or the checkpoint's own quantization (its
    ``quantization_config``) when the settings name no weight format; ``expert_quant`` gives the
    routed experts a format of their own."""
    base = _checkpoint_precision(spec, s)
    if s.expert_quant is None:
        return base
    expert = make_settings(**{**s.model_dump(exclude={"expert_quant"}), **preset(s.expert_quant)})
    return replace(base, expert_format=expert.precision)


def wide_layers(spec: ModelSpec, s: Settings) -> int:
    """Outer layers kept at 16 bits: the settings' if given, else the checkpoint's own (its skip list
    names its first and last layers) when its format is the one analysed."""
    if "wide_layers" in s.model_fields_set:
        return s.wide_layers
    q = spec.quantization
    return q.wide_layers if q is not None and not FORMAT_SETTINGS & s.model_fields_set else 0


def _checkpoint_precision(spec: ModelSpec, s: Settings) -> Precision:
    base = s.precision
    q = spec.quantization
    if q is None or FORMAT_SETTINGS & s.model_fields_set:
        return base
    fmt = replace(
        base,
        w_bits=q.bits,
        a_bits=min(q.activations, base.a_bits),
        low_bit=q.number_format,
        group_size=q.group_size,
        block_rows=q.block_rows,
        scale_bits=q.scale_bits,
        symmetric=q.symmetric,
    )
    return replace(base, expert_format=fmt) if q.experts_only else fmt


def precision_note(spec: ModelSpec, s: Settings) -> str | None:
    """Where the weight format came from, when the checkpoint declares one."""
    if spec.quantization_unread:
        return (
            f"the checkpoint declares quantization method '{spec.quantization_unread}', which rooflens does "
            "not read: weights are analysed at the bit widths set (--quant / --w-bits)"
        )
    q = spec.quantization
    if q is None:
        return None
    if FORMAT_SETTINGS & s.model_fields_set:
        return f"weights: as set, overriding the checkpoint's {q.description}"
    acts = f"; activations in {q.activations}-bit {q.number_format}" if q.activations < 16 else ""
    return f"weights: {q.description} from the checkpoint{acts} (--quant / --w-bits override it)"


def with_formats(settings: dict[str, Any], quant: str | None, kv_format: str | None) -> dict[str, Any]:
    """Settings with a named weight format and KV-cache format filled in (explicit settings win)."""
    named = {**(preset(quant) if quant else {}), **(kv_preset(kv_format) if kv_format else {})}
    if settings.get("expert_quant"):
        preset(settings["expert_quant"])  # an unknown name is refused here, with the known ones
    return {**named, **settings}


def make_settings(**kwargs: Any) -> Settings:
    try:
        return Settings(**kwargs)
    except ValidationError as err:
        raise explain_validation(err, "analysis settings") from None


def analyze(
    model: ModelLike,
    hardware: HardwareLike,
    *,
    hub: bool = False,
    quant: str | None = None,
    kv_format: str | None = None,
    **settings: Any,
) -> Report:
    """Analyse ``model`` on ``hardware``.

    ``model``: catalog name, Hugging Face id known to the catalog, config.json path, dict or ModelSpec
    (``hub=True`` fetches the config from the Hugging Face Hub). ``hardware``: catalog name, YAML/JSON
    path, dict or HardwareSpec. Keyword settings are those of :class:`Settings` (batch, prompt, gen,
    w_bits, a_bits, kv_bits, flash_attention, kv_cache, tp, pp, ep, draft_model, ...). ``quant`` names a
    weight format (``q4_0``, ``fp8``, ``nvfp4``, ... see ``rooflens.formats``) and ``kv_format`` a
    KV-cache format (``fp8``, ``fp8-head``, ``nvfp4``, ...); settings given explicitly override them.
    """
    settings = with_formats(settings, quant, kv_format)
    return run(load_model(model, hub=hub), load_hardware(hardware), make_settings(**settings))


@dataclass(frozen=True)
class Speculation:
    """Speculative decoding: ``k`` draft tokens per round, ``accepted`` tokens kept on average.

    ``method`` is ``draft`` (a separate ``draft`` model) or a head on the target (``mtp``, ``eagle3``,
    ``medusa``: see ``ops/heads.py``); the target verifies ``verify_tokens`` per round (``k + 1``
    for a chain, more for a tree).
    """

    k: int
    rate: float
    method: str = "draft"
    draft: ModelSpec | None = None
    verify: int | None = None
    draft_vocab: int = EAGLE_DRAFT_VOCAB

    @property
    def accepted(self) -> float:
        """Tokens kept per round: the accepted run of a chain of drafts, plus the target's own next
        token, ``(1 - r^n) / (1 - r)`` for ``n = k + 1`` positions; a target that verifies fewer
        positions (``verify_tokens < k + 1``) keeps at most those, ``n = verify_tokens``."""
        n = min(self.k + 1, self.verify_tokens)
        if self.rate >= 1:
            return float(n)
        return (1 - self.rate**n) / (1 - self.rate)

    @property
    def verify_tokens(self) -> int:
        return self.verify or self.k + 1

    @property
    def label(self) -> str:
        return self.draft.name if self.draft is not None else f"{self.method} heads"

    def round_ops(
        self, spec: ModelSpec, prec: Precision, p: Pass, ex: Execution, draft_ex: Execution, prefill: bool
    ) -> list[Op]:
        """The drafting of one round (decode) or of the prompt (prefill), as ``draft``-block ops."""
        steps = 1 if prefill else self.k
        if self.method == "draft":
            return _as_draft(build_ops(self.draft, prec, p, draft_ex), steps)
        if self.method == "mtp":  # sharded and distributed like the model's own layers
            tokens = device_pass(p, ex).tokens
            return [
                replace(op, tokens=op.tokens if np.any(op.tokens) else tokens)
                for op in _as_draft(mtp_ops(spec, prec, p, ex), steps)
            ]
        # EAGLE-3 and Medusa heads: each tensor-parallel rank holds its slice, each expert-parallel
        # device its share of the sequences.
        local, mine = shard(spec, ex.tp), device_pass(p, ex)
        if self.method == "eagle3":
            fuse = _as_draft([eagle3_fuse_op(local, prec, mine)], 1)
            ops = fuse + _as_draft(eagle3_ops(local, prec, mine, self.draft_vocab), steps)
        else:
            mine = replace(mine, q=1.0)  # Medusa's heads read the last hidden state of each sequence
            ops = _as_draft(medusa_ops(local, prec, mine, self.k), 1)
        return [replace(op, tokens=mine.tokens) for op in ops]  # the efficiency tables' key

    def memory(self, spec: ModelSpec, prec: Precision, shape: CacheShape, ex: Execution, draft_ex) -> tuple:
        """(weights, KV cache) the drafting adds on one device."""
        if self.method == "draft":
            return resident_weight_bytes(self.draft, prec, draft_ex), kv_cache_bytes(
                self.draft, prec, shape, draft_ex
            )
        one = Pass(1, 1.0, 1.0)
        weights = head_weight_bytes(self.round_ops(spec, prec, one, ex, draft_ex, prefill=True))
        if self.method == "medusa":
            return weights, 0.0
        local = shard(spec, ex.tp)
        mixer = spec.layers[-1][0] if self.method == "mtp" else "full"
        per_token = REGISTRY[mixer].cache(local, prec).per_token
        tokens = math.ceil(shape.sequences / ex.ep) * (shape.prompt + shape.gen)
        return weights, per_token * tokens


def speculation(spec: ModelSpec, s: Settings) -> Speculation | None:
    if s.draft_model and s.spec_heads:
        raise RooflensError("give either a draft model or speculative heads (spec_heads), not both")
    if s.spec_heads == "mtp" and not spec.mtp_layers:
        raise RooflensError(
            f"{spec.name} ships no multi-token prediction layers (num_nextn_predict_layers); "
            "use spec_heads eagle3 or medusa, or a draft model"
        )
    if s.draft_model:
        draft = load_model(s.draft_model)
        return Speculation(s.draft_tokens, s.acceptance_rate, draft=draft, verify=s.verify_tokens)
    if s.spec_heads:
        return Speculation(
            s.draft_tokens,
            s.acceptance_rate,
            method=s.spec_heads,
            verify=s.verify_tokens,
            draft_vocab=s.draft_vocab or EAGLE_DRAFT_VOCAB,
        )
    return None


def executions(
    spec: ModelSpec, s: Settings, hw: HardwareSpec | None = None
) -> tuple[Execution, Execution, Execution]:
    """How the model is laid out and run: (base, prefill, decode) executions for these settings; the
    devices sharing the fast interconnect are the device's scale-up domain unless set."""
    base = Execution(
        tp=s.tp,
        ep=s.ep,
        pp=s.pp,
        devices_per_node=s.devices_per_node or (hw.scale_up_domain if hw else None) or 8,
        offload_weights=s.offload_weights,
        offload_experts=s.offload_experts,
        offload_kv=s.offload_kv,
        wide_layers=wide_layers(spec, s),
        kv_budget=s.kv_budget,
        keep_fraction=s.prompt_keep,
        keep_after=s.prompt_keep_after,
        prompt=s.prompt,
        routing_skew=s.routing_skew,
        identical=s.routing == "identical",
    )
    prefill_ex = replace(base, mla_absorb=s.mla_absorb == "always")
    decode_ex = replace(base, mla_absorb=s.mla_absorb != "never", layer_run=_layer_run(spec, s))
    return base, prefill_ex, decode_ex


def engine_settings(s: Settings, profile: EfficiencyProfile | None) -> Settings:
    """The settings as the estimate's engine runs them: what its kernels do to the format's numbers
    where the settings leave them open (``engines.yaml`` ``kernels``): llama.cpp's CUDA kernels
    multiply quantized weights with 8-bit activations; TensorRT-LLM builds FP8/FP4 checkpoints with
    an FP8 KV cache."""
    from .engine import kernel_rules

    rules = kernel_rules(profile.engine) if profile is not None else {}
    update: dict[str, Any] = {}
    given = s.model_fields_set
    if "quantized_activation_bits" in rules and s.w_bits < 16 and "a_bits" not in given:
        update.update(a_bits=rules["quantized_activation_bits"], low_bit="int")
    low_float = s.low_bit == "float" and s.w_bits <= 8
    if "low_bit_kv" in rules and low_float and not given & {"kv_bits", "kv_scale", "kv_block"}:
        update.update(kv_preset(str(rules["low_bit_kv"])))
    return s.model_copy(update=update) if update else s


def run(spec: ModelSpec, hw: HardwareSpec, s: Settings) -> Report:
    _check(spec, hw, s)
    # The engine's profile, resolved once: its kernel rules apply to ideal-only analyses too.
    engine_profile = resolve_profile(hw, s.engine, spec.model_class)
    asked, s = s, engine_settings(s, engine_profile)
    prec = precision_for(spec, s)
    base, prefill_ex, decode_ex = executions(spec, s, hw)
    spec_dec = speculation(spec, s)
    draft_ex = Execution(ep=s.ep)  # the draft model runs whole on every device

    prefill_ops = _prefill_ops(spec, prec, s, prefill_ex)
    if spec_dec:
        draft_pass = Pass(s.batch, s.prompt, s.prompt, flash_attention=s.flash_attention)
        prefill_ops += spec_dec.round_ops(spec, prec, draft_pass, prefill_ex, draft_ex, prefill=True)
    context, decode_ops = _decode_ops(spec, prec, s, decode_ex, spec_dec, draft_ex)

    profile = engine_profile if s.estimate else None
    host = profile.host_cost(spec.model_type, spec.num_layers) if profile else None
    per_rank = math.ceil(s.batch / s.ep)  # sequences one device steps (attention is data-parallel)
    prefill = evaluate("prefill", prefill_ops, hw, 1, np.array([float(s.prompt)]), profile, host, per_rank)
    decode = evaluate("decode", decode_ops, hw, len(context), context, profile, host, per_rank)

    shape = CacheShape(s.batch, s.prompt, s.gen, s.shared_prefix)
    extra_weights = extra_kv = 0.0
    if spec_dec:
        extra_weights, extra_kv = spec_dec.memory(spec, prec, shape, base, draft_ex)
    memory = footprint(
        spec,
        prec,
        hw,
        shape=shape,
        residual_bytes=residual_bytes(spec, prec, math.ceil(s.batch / s.ep), s.prompt, s.gen, s.kv_cache),
        kv_cache=s.kv_cache,
        # Decode arrays hold every step, the last and largest included (none when gen == 1).
        phases=[[op for op in prefill_ops if op.block != "draft"], decode_ops]
        if len(context)
        else [prefill_ops],
        overhead_bytes=s.overhead_bytes,
        ex=base,
        extra_weights=extra_weights,
        extra_kv=extra_kv,
    )
    report = Report(
        spec,
        hw,
        s,
        prefill,
        decode,
        memory,
        notes=[],
        profile=profile,
        draft=spec_dec.draft if spec_dec else None,
        speculation=spec_dec,
        precision=prec,
    )
    report.notes.extend(_notes(report, spec_dec))
    changed = {k: v for k, v in s.model_dump().items() if getattr(asked, k) != v}
    if changed:
        engine = report.profile.engine if report.profile is not None else "the engine"
        what = ", ".join(f"{k} {v}" for k, v in changed.items())
        report.notes.append(f"{engine}'s kernels run this format with {what} (engines.yaml: kernels)")
    return report


def _check(spec: ModelSpec, hw: HardwareSpec, s: Settings) -> None:
    """Settings that are valid alone but not for this model or device."""
    devices = s.tp * s.pp * s.ep
    if devices > 1 and hw.interconnect is None:
        raise RooflensError(
            f"{hw.name} lists no interconnect, so multi-device execution cannot be modelled on it"
        )
    per_node = s.devices_per_node or hw.scale_up_domain or 8
    if devices > per_node and hw.network is None:
        raise RooflensError(
            f"{devices} devices span more than one node of {per_node}, and {hw.name} lists no "
            "network link; add one or raise --devices-per-node"
        )
    if (s.offload_weights or s.offload_experts or s.offload_kv) and hw.host_link is None:
        raise RooflensError(
            f"offloading streams from host memory over the host link, and {hw.name} lists none; give the "
            "device a host_link (e.g. {name: PCIe 5.0 x16, bandwidth: 64 GB/s}) or drop the offload shares"
        )
    if s.offload_experts and not spec.num_experts:
        raise RooflensError(f"--offload-experts needs a mixture-of-experts model; {spec.name} is dense")
    if 2 * s.wide_layers > spec.num_layers:
        raise RooflensError(
            f"--wide-layers {s.wide_layers} keeps the first and last {s.wide_layers} layers at 16 bits, but "
            f"{spec.name} has {spec.num_layers}; use at most {spec.num_layers // 2}"
        )
    if s.pp > spec.num_layers:
        raise RooflensError(f"--pp {s.pp} exceeds {spec.name}'s {spec.num_layers} layers")
    if s.ep > 1 and not spec.num_experts:
        raise RooflensError(f"--ep needs a mixture-of-experts model; {spec.name} is dense")
    # Settings that would change nothing for this model: refused, not silently ignored.
    if not spec.num_experts and s.expert_quant:
        raise RooflensError(
            f"--expert-quant sets the routed experts' format; {spec.name} is dense (for all its weights: "
            "--quant)"
        )
    if not spec.num_experts and (s.routing != "uniform" or s.routing_skew):
        raise RooflensError(
            f"--routing and --routing-skew shape how tokens pick experts; {spec.name} is dense"
        )
    if s.mla_absorb != "auto" and not spec.is_mla:
        raise RooflensError(
            f"--mla-absorb applies to multi-head latent attention (DeepSeek-V2/V3 and kin); "
            f"{spec.name} has none"
        )
    if s.micro_batches is not None and s.pp == 1:
        raise RooflensError("--micro-batches splits the batch for a pipeline; it needs --pp 2 or more")
    if s.verify_tokens is not None and not (s.draft_model or s.spec_heads):
        raise RooflensError(
            "--verify-tokens sets how many tokens the target checks per speculative round; it needs "
            "--draft-model or --spec-heads"
        )
    if s.ep > max(spec.num_experts, 1):
        raise RooflensError(f"--ep {s.ep} exceeds {spec.name}'s {spec.num_experts} experts")
    if s.shared_prefix > s.prompt:
        raise RooflensError(f"shared_prefix ({s.shared_prefix}) cannot exceed the prompt ({s.prompt} tokens)")
    if s.prompt_keep < 1 and s.prompt * s.prompt_keep < 1:
        raise RooflensError(
            f"prompt_keep {s.prompt_keep:g} keeps less than one of the {s.prompt} prompt tokens; "
            f"keep at least {1 / s.prompt:.3g}"
        )
    if s.prompt_keep_after > spec.num_layers:
        raise RooflensError(
            f"prompt_keep_after ({s.prompt_keep_after}) exceeds {spec.name}'s {spec.num_layers} layers"
        )
    if s.exit_distribution is not None and len(s.exit_distribution) != spec.num_layers:
        raise RooflensError(
            f"exit_distribution needs one probability per layer ({spec.num_layers}), "
            f"got {len(s.exit_distribution)}"
        )
    if (s.draft_model or s.spec_heads) and not s.kv_cache:
        raise RooflensError("speculative decoding needs the KV cache")


def _layer_run(spec: ModelSpec, s: Settings) -> tuple[float, ...] | None:
    """Probability each layer runs in a decode step under early exit (None: every layer runs).

    A batched step runs layer l while any of its sequences has not exited: with per-layer exit
    probabilities p (cumulative F), that is 1 - F(l-1)^batch. A plain exit fraction f runs the first
    f * L layers (the last one fractionally).
    """
    layers = spec.num_layers
    if s.exit_distribution is not None:
        exited = np.concatenate([[0.0], np.cumsum(s.exit_distribution)[:-1]])
        return tuple(float(v) for v in 1 - np.clip(exited, 0, 1) ** s.batch)
    if s.exit_fraction < 1:
        depth = s.exit_fraction * layers
        return tuple(float(np.clip(depth - i, 0, 1)) for i in range(layers))
    return None


def _prefill_ops(spec: ModelSpec, prec, s: Settings, ex: Execution) -> list[Op]:
    kw = dict(kv_cache=s.kv_cache, flash_attention=s.flash_attention)
    shared = s.shared_prefix if s.batch > 1 else 0
    if not shared:
        return build_ops(spec, prec, Pass(s.batch, s.prompt, s.prompt, **kw), ex)
    # The shared prefix is computed once; each sequence's own suffix then attends over it.
    prefix = build_ops(spec, prec, Pass(1, shared, shared, **kw), replace(ex, ep=1) if ex.ep > 1 else ex)
    ops = [replace(op, name=f"{op.name} [shared prefix]") for op in prefix]
    if s.prompt > shared:
        suffix = Pass(
            s.batch,
            s.prompt - shared,
            s.prompt,
            shared_prefix=shared,
            prefix_reads_once=s.prefix_reads_once,
            **kw,
        )
        ops += build_ops(spec, prec, suffix, ex)
    return ops


def _decode_ops(
    spec: ModelSpec, prec, s: Settings, ex: Execution, spec_dec: Speculation | None, draft_ex: Execution
) -> tuple[np.ndarray, list[Op]]:
    """(context of each decode step, the step operators as arrays over steps)."""
    kw = dict(
        flash_attention=s.flash_attention,
        shared_prefix=s.shared_prefix if s.batch > 1 else 0,
        prefix_reads_once=s.prefix_reads_once,
    )
    if s.gen <= 1:
        return np.zeros(0), build_ops(
            spec, prec, Pass(s.batch, 1.0, np.zeros(0), kv_cache=s.kv_cache, **kw), ex
        )
    if spec_dec is None:
        context = s.prompt + np.arange(1, s.gen, dtype=np.float64)
        q = 1.0 if s.kv_cache else context
        return context, build_ops(spec, prec, Pass(s.batch, q, context, kv_cache=s.kv_cache, **kw), ex)
    k, accepted, v = spec_dec.k, spec_dec.accepted, spec_dec.verify_tokens
    rounds = math.ceil((s.gen - 1) / accepted)
    context = s.prompt + 1 + accepted * np.arange(rounds, dtype=np.float64)  # pending token included
    verify = build_ops(spec, prec, Pass(s.batch, float(v), context + v - 1, **kw), ex)
    drafting = Pass(s.batch, 1.0, context + (k - 1) / 2, **kw)
    return context, verify + spec_dec.round_ops(spec, prec, drafting, ex, draft_ex, prefill=False)


def _as_draft(ops: list[Op], times: float) -> list[Op]:
    """A draft model's operators, run ``times`` per step, set apart in their own block."""
    return [replace(op, name=f"draft.{op.name}", block="draft", count=op.count * times) for op in ops]


# What fits_with tries, in order: narrower weight formats (names of rooflens.formats) and the step
# of a suggested offload share (a share a person would type: 0.05, 0.10, ...).
FIT_FORMATS = ("fp8", "nvfp4", "awq")
OFFLOAD_STEP = 0.05


@dataclass(frozen=True)
class FitOption:
    """One change that makes an analysis fit: ``change`` holds the analysis arguments to set
    (``tp``, ``quant``, ``offload_weights``, ``offload_experts``); ``total_bytes`` is the footprint
    per device with it, found by running the analysis with the change (not by extrapolation)."""

    kind: str  # "tp", "quant" or "offload"
    change: dict[str, Any]
    total_bytes: float
    capacity_bytes: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def fits_with(
    model: ModelLike,
    hardware: HardwareLike,
    *,
    quant: str | None = None,
    kv_format: str | None = None,
    report: Report | None = None,
    **settings: Any,
) -> list[FitOption]:
    """The ways out when an analysis (same arguments as :func:`analyze`) does not fit: at most one
    option of each kind, each verified by analysing with it. ``report``, the analysis with these
    arguments when the caller already has it, is not run again.

    - ``tp``: the smallest power-of-two tensor-parallel degree above the current one that fits, with
      all devices (tp x pp x ep) within the device's scale-up domain (``devices_per_node``, else the
      hardware's ``scale_up_domain``, else 8);
    - ``quant``: the first of FIT_FORMATS narrower than the current weights that fits at the current
      TP or at a larger one within the domain (the smallest; the change then sets both);
    - ``offload``: the smallest share (in OFFLOAD_STEP steps) of the weights in host memory that fits,
      the same share of non-expert weights and routed experts; only on a device with a host link.

    Empty when the analysis already fits.
    """
    spec, hw = load_model(model), load_hardware(hardware)
    base = report if report is not None else analyze(spec, hw, quant=quant, kv_format=kv_format, **settings)
    if base.memory.fits:
        return []
    s = base.settings
    domain = s.devices_per_node or hw.scale_up_domain or 8
    degrees = [tp for tp in (2**i for i in range(1, 11)) if tp > s.tp and tp * s.pp * s.ep <= domain]
    if hw.interconnect is None:
        degrees = []

    def fitting(**change: Any) -> Report | None:
        args = {"quant": quant, "kv_format": kv_format, **settings, **change}
        if "quant" in change:  # the format's own bit widths and layout replace the explicit ones
            for key in {k for f in FORMATS.values() for k in f.settings}:
                args.pop(key, None)
        try:
            r = analyze(spec, hw, **args)
        except RooflensError:
            return None  # a change this model or device cannot take (e.g. a format it refuses)
        return r if r.memory.fits else None

    def option(kind: str, change: dict[str, Any], r: Report) -> FitOption:
        return FitOption(kind, change, r.memory.total_bytes, r.memory.capacity_bytes)

    options = []
    for tp in degrees:
        if r := fitting(tp=tp):
            options.append(option("tp", {"tp": tp}, r))
            break
    bits = base.precision.w_bits if base.precision is not None else s.w_bits
    narrower = [name for name in FIT_FORMATS if FORMATS[name].bits_per_value < bits]
    found = False
    for name in narrower:  # the gentlest format first, at the fewest devices it fits on
        for tp in [s.tp, *degrees]:
            change = {"quant": name} if tp == s.tp else {"quant": name, "tp": tp}
            if r := fitting(**change):
                options.append(option("quant", change, r))
                found = True
                break
        if found:
            break
    if hw.host_link is not None:
        m = base.memory
        over = m.total_bytes - m.capacity_bytes
        weights = m.weights_bytes + m.host_bytes  # all of them, wherever they are now
        already = max(s.offload_weights, s.offload_experts if spec.num_experts else 0.0)
        share = max(already, math.ceil(round(over / weights / OFFLOAD_STEP, 9)) * OFFLOAD_STEP)
        while share <= 1.0 + 1e-9:
            share = round(min(share, 1.0), 2)
            change = {"offload_weights": share}
            if spec.num_experts:
                change["offload_experts"] = share
            if r := fitting(**change):
                options.append(option("offload", change, r))
                break
            share += OFFLOAD_STEP
    return options


def _notes(r: Report, spec_dec: Speculation | None) -> list[str]:
    """Caveats the numbers depend on, said once, in words."""
    spec, hw, s = r.model, r.hardware, r.settings
    notes = [n for n in [precision_note(spec, s)] if n]
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
    kinds = spec.attention_kinds()
    for name in dict.fromkeys(kinds):
        window, chunk = REGISTRY[name].window(spec)
        limit = window or chunk
        if limit and length > limit:
            how = f"a {limit}-token window" if window else f"chunks of {limit} tokens"
            notes.append(
                f"{kinds.count(name)} of {spec.num_layers} layers attend over {how}, and their KV cache is "
                "sized to it (a rolling cache; some engines keep the whole context)"
            )
    if r.memory.state_bytes:
        recurrent = [n for n in kinds if REGISTRY[n].recurrent]
        names = ", ".join(sorted(set(recurrent)))
        notes.append(
            f"{len(recurrent)} of {spec.num_layers} layers are recurrent ({names}): "
            f"each sequence keeps {r.memory.state_bytes / math.ceil(s.batch / s.ep) / 1e6:.1f} MB of state "
            "per device "
            "instead of a growing KV cache"
        )
    if not r.memory.fits:
        notes.append(
            f"does not fit: needs {r.memory.total_bytes / 1e9:.1f} GB per device, {hw.name} has "
            f"{hw.memory_bytes / 1e9:.1f} GB (largest batch that fits here: {r.memory.max_batch}); "
            "fits_with lists the smallest TP, format and offload that fit, each checked by analysing "
            "with it (under `rooflens analyze`'s table, POST /api/fit, the page's buttons)"
        )
    if r.memory.host_bytes:
        notes.append(
            f"{r.memory.host_bytes / 1e9:.1f} GB per device in host memory, streamed over "
            f"{hw.host_link.name if hw.host_link else 'the host link'} every pass (host_transfer)"
        )
    if not s.kv_cache:
        notes.append("KV cache off: every decode step recomputes the whole sequence")
    if s.gen == 1:
        notes.append("gen = 1: the prefill pass yields the only token; there are no decode steps")
    if r.devices > 1:
        notes.append(
            f"{r.devices} devices (tp {s.tp}, pp {s.pp}, ep {s.ep}): memory is per device; collectives are "
            "ring/all-to-all over the interconnect and do not overlap computation"
        )
    if s.sparsity and not (s.sparsity == "2:4" and hw.sparse_2_4):
        notes.append(f"{hw.name} has no {s.sparsity} sparse tensor cores: weights shrink but math runs dense")
    if spec_dec:
        notes.append(
            f"speculative decoding with {spec_dec.label}: {spec_dec.k} draft tokens per round, "
            f"acceptance {spec_dec.rate:.0%} -> {spec_dec.accepted:.2f} tokens per target pass of "
            f"{spec_dec.verify_tokens} tokens (a decode step is a round)"
        )
        if spec_dec.draft is not None and spec_dec.draft.vocab_size != spec.vocab_size:
            notes.append(
                f"{spec_dec.draft.name}'s vocabulary differs from {spec.name}'s; real drafts share one"
            )
    p = r.profile
    if p is not None and p.version and p.version not in p.versions:
        measured = ", ".join(p.versions[-6:]) or "none recorded"
        notes.append(
            f"no calibration row of {p.engine} {p.version}: its profile pools the measured versions "
            f"({measured}), so the estimate is marked extrapolated"
        )
    if p is not None and p.model_classes and r.model.model_class not in p.model_classes:
        notes.append(
            f"{p.engine}'s calibration rows on {r.hardware.name} are of {', '.join(p.model_classes)} models "
            f"only: for a {r.model.model_class} model the estimate is an extrapolation (marked, with a "
            "wider range)"
        )
    if p is not None and p.request_overhead_s > 0:
        notes.append(
            f"served through {p.engine}'s API server a request also spends about "
            f"{p.request_overhead_s * 1e3:.3g} ms outside the device (tokenization, scheduling, streaming; "
            "fitted on serving benchmarks): in its TTFT and end-to-end time, as `rooflens simulate` counts it"
        )
    if r.profile is None and s.estimate:
        notes.append(
            f"no efficiency profile for {hw.name}: only the ideal roofline bound is shown "
            "(measure one with `rooflens calibrate`)"
        )
    return notes
