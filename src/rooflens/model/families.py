"""Parse Hugging Face ``config.json`` dicts into ModelSpec, one small function per model family.

Only architecture fields are read; nothing in a config is ever executed (no ``trust_remote_code``).
Each parser states the family's defaults explicitly, because configs omit fields whose
``transformers`` default applies (for example GPT-2 never says its embeddings are tied).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from ..errors import RooflensError, explain_validation
from .bounds import check_config
from .spec import CheckpointQuant, ModelSpec

Config = dict[str, Any]


class _Reader:
    """Typed access to a config dict with errors that name the missing or malformed field."""

    def __init__(self, cfg: Config, model_type: str) -> None:
        self.cfg = cfg
        self.model_type = model_type

    def int(self, *keys: str, default: int | None = None) -> int:
        for key in keys:
            value = self.cfg.get(key)
            if value is None:
                continue
            # JSON has one number type; accept 4096.0 but not 4096.5, True or "4096".
            if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
                raise RooflensError(
                    f"config.json field '{key}' must be a whole number, got {value!r} "
                    f"(model_type '{self.model_type}')"
                )
            if value <= 0:
                raise RooflensError(f"config.json field '{key}' must be positive, got {value!r}")
            return int(value)
        if default is not None:
            return default
        raise RooflensError(
            f"config.json for model_type '{self.model_type}' lacks required field "
            + " / ".join(repr(k) for k in keys)
        )

    def count(self, key: str) -> int:
        """A whole number that may be absent, null or 0 (then 0): optional sizes and counts."""
        return self.int(key) if self.cfg.get(key) else 0

    def bool(self, key: str, default: bool) -> bool:
        value = self.cfg.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise RooflensError(f"config.json field '{key}' must be true or false, got {value!r}")
        return value

    def float(self, key: str) -> float | None:
        value = self.cfg.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise RooflensError(f"config.json field '{key}' must be a number, got {value!r}")
        return float(value)

    def str(self, *keys: str, default: str) -> str:
        for key in keys:
            value = self.cfg.get(key)
            if value is not None:
                if not isinstance(value, str):
                    raise RooflensError(f"config.json field '{key}' must be a string, got {value!r}")
                return value
        return default


def _llama_like(r: _Reader, **family: Any) -> dict[str, Any]:
    """Shared reading for the rotary, RMSNorm, gated-MLP families (Llama and its descendants)."""
    h = r.int("hidden_size")
    heads = r.int("num_attention_heads")
    head_dim = r.int("head_dim", default=h // heads if h % heads == 0 else 0) or None
    if head_dim is None:
        raise RooflensError(
            f"hidden_size {h} is not divisible by num_attention_heads {heads} "
            "and config.json gives no head_dim"
        )
    rotary_fraction = r.float("partial_rotary_factor") or 1.0
    fields = dict(
        hidden_size=h,
        num_layers=r.int("num_hidden_layers"),
        num_heads=heads,
        num_kv_heads=r.int("num_key_value_heads", default=heads),
        head_dim=head_dim,
        intermediate_size=r.int("intermediate_size"),
        vocab_size=r.int("vocab_size"),
        max_position_embeddings=r.int("max_position_embeddings", default=0) or None,
        activation=r.str("hidden_act", default="silu"),
        rotary_dim=max(1, int(head_dim * rotary_fraction)),
        tie_word_embeddings=r.bool("tie_word_embeddings", False),
    )
    fields.update(family)
    return fields


# What each ``layer_types`` entry of a config means, as a mixer kind of rooflens.layers.
LAYER_TYPES = {
    "full_attention": "full",
    "attention": "full",
    "sliding_attention": "sliding",
    "chunked_attention": "chunked",
    "linear_attention": "gdn",
    "mamba": "mamba2",
}


def _layer_types(r: _Reader, layers: int) -> list[str] | None:
    """The config's own ``layer_types`` as mixer kinds (None when it has none)."""
    types = r.cfg.get("layer_types")
    if types is None:
        return None
    if not isinstance(types, list) or len(types) != layers:
        raise RooflensError(
            f"config.json field 'layer_types' must list one type per layer ({layers}), got {str(types)[:80]}"
        )
    kinds = []
    for i, t in enumerate(types):
        if t not in LAYER_TYPES:
            raise RooflensError(
                f"config.json layer_types[{i}] is {str(t)[:40]!r}, a layer type rooflens does not know; "
                f"known: {', '.join(LAYER_TYPES)}"
            )
        kinds.append(LAYER_TYPES[t])
    return kinds


def _window_layers(r: _Reader, layers: int, sliding: list[bool]) -> dict[str, Any]:
    """layer_attention from the config's own ``layer_types`` when it has them, else from ``sliding``."""
    kinds = _layer_types(r, layers) or ["sliding" if s else "full" for s in sliding]
    if "sliding" not in kinds:
        return {
            "sliding_window": None,
            **({"layer_attention": tuple(kinds)} if set(kinds) != {"full"} else {}),
        }
    return {"layer_attention": tuple(kinds)}


def _qwen_window(r: _Reader) -> dict[str, Any]:
    """Qwen2/3: with use_sliding_window, layers from max_window_layers on use the window."""
    layers = r.int("num_hidden_layers")
    if not r.bool("use_sliding_window", False):
        return {"sliding_window": None}
    first = r.count("max_window_layers")
    return {
        "sliding_window": r.int("sliding_window"),
        **_window_layers(r, layers, [i >= first for i in range(layers)]),
    }


def _moe(r: _Reader, layers: int, experts_key: str = "num_experts", **extra: Any) -> dict[str, Any]:
    """Routed-expert fields shared by the MoE families."""
    return dict(
        num_experts=r.int(experts_key),
        experts_per_token=r.int("num_experts_per_tok", "experts_per_token"),
        layer_mlp=tuple(extra.pop("layer_mlp", ("moe",) * layers)),
        **extra,
    )


def _qwen_moe_layers(r: _Reader, layers: int) -> tuple[str, ...]:
    """Qwen-MoE: MoE where (i + 1) % decoder_sparse_step == 0, except mlp_only_layers."""
    step = r.int("decoder_sparse_step", default=1)
    dense = set(r.cfg.get("mlp_only_layers") or [])
    return tuple("moe" if (i + 1) % step == 0 and i not in dense else "dense" for i in range(layers))


def _llama(r: _Reader) -> dict[str, Any]:
    # transformers' LlamaConfig puts attention_bias on q, k, v and o alike.
    bias = r.bool("attention_bias", False)
    return _llama_like(r, qkv_bias=bias, o_bias=bias, mlp_bias=r.bool("mlp_bias", False))


def _config_window(r: _Reader) -> dict[str, Any]:
    """A window on every layer, unless the config's ``layer_types`` say which layers have it."""
    window = r.int("sliding_window", default=0) or None
    layers = r.int("num_hidden_layers")
    kinds = _layer_types(r, layers)
    if kinds is None:
        return {"sliding_window": window}
    return {"sliding_window": window if "sliding" in kinds else None, "layer_attention": tuple(kinds)}


def _mistral(r: _Reader) -> dict[str, Any]:
    return _llama_like(r, **_config_window(r))


def _mixtral(r: _Reader) -> dict[str, Any]:
    layers = r.int("num_hidden_layers")
    moe = _moe(r, layers, "num_local_experts", moe_intermediate_size=r.int("intermediate_size"))
    return _llama_like(r, **_config_window(r), **moe)


def _gpt_oss(r: _Reader) -> dict[str, Any]:
    """gpt-oss: banded (sliding 128) and full layers alternating per ``layer_types``, attention sinks,
    biases on attention, router and experts, every layer MoE."""
    layers = r.int("num_hidden_layers")
    bias = r.bool("attention_bias", True)
    moe = _moe(
        r,
        layers,
        "num_local_experts",
        moe_intermediate_size=r.int("intermediate_size"),
        moe_bias=True,
    )
    return _llama_like(r, qkv_bias=bias, o_bias=bias, attention_sinks=True, **_config_window(r), **moe)


def _qwen2(r: _Reader) -> dict[str, Any]:
    # Qwen2 always has q/k/v biases and an unbiased o_proj; its sliding window is off unless asked.
    return _llama_like(r, qkv_bias=True, **_qwen_window(r))


def _qwen3(r: _Reader) -> dict[str, Any]:
    bias = r.bool("attention_bias", False)
    return _llama_like(r, qkv_bias=bias, o_bias=bias, qk_norm=True, **_qwen_window(r))


def _qwen2_moe(r: _Reader) -> dict[str, Any]:
    fields = _qwen2(r)
    layers = fields["num_layers"]
    fields.update(
        _moe(
            r,
            layers,
            moe_intermediate_size=r.int("moe_intermediate_size"),
            shared_expert_intermediate_size=r.int("shared_expert_intermediate_size", default=0) or 0,
            shared_expert_gate=bool(r.cfg.get("shared_expert_intermediate_size")),
            layer_mlp=_qwen_moe_layers(r, layers),
        )
    )
    return fields


def _qwen3_moe(r: _Reader) -> dict[str, Any]:
    fields = _qwen3(r)
    layers = fields["num_layers"]
    fields.update(
        _moe(
            r,
            layers,
            moe_intermediate_size=r.int("moe_intermediate_size"),
            layer_mlp=_qwen_moe_layers(r, layers),
        )
    )
    return fields


def _olmoe(r: _Reader) -> dict[str, Any]:
    layers = r.int("num_hidden_layers")
    # OLMoE's q and k norms span the whole projections, not each head.
    moe = _moe(r, layers, moe_intermediate_size=r.int("intermediate_size"))
    return _llama_like(r, qk_norm=True, qk_norm_per_head=False, **moe)


def _deepseek(r: _Reader) -> dict[str, Any]:
    """DeepSeek-V2/V3: multi-head latent attention, shared + routed experts after dense layers."""
    layers = r.int("num_hidden_layers")
    heads = r.int("num_attention_heads")
    nope, rope = r.int("qk_nope_head_dim"), r.int("qk_rope_head_dim")
    first_dense = r.count("first_k_dense_replace")
    freq = r.int("moe_layer_freq", default=1)
    routed = r.count("n_routed_experts")
    kinds = tuple("moe" if routed and i >= first_dense and i % freq == 0 else "dense" for i in range(layers))
    moe = (
        _moe(
            r,
            layers,
            "n_routed_experts",
            moe_intermediate_size=r.int("moe_intermediate_size"),
            shared_experts=r.count("n_shared_experts"),
            layer_mlp=kinds,
        )
        if routed
        else {}
    )
    return dict(
        hidden_size=r.int("hidden_size"),
        num_layers=layers,
        num_heads=heads,
        num_kv_heads=heads,
        head_dim=nope + rope,
        intermediate_size=r.int("intermediate_size"),
        vocab_size=r.int("vocab_size"),
        max_position_embeddings=r.int("max_position_embeddings", default=0) or None,
        activation=r.str("hidden_act", default="silu"),
        rotary_dim=rope,
        tie_word_embeddings=r.bool("tie_word_embeddings", False),
        kv_lora_rank=r.int("kv_lora_rank"),
        q_lora_rank=r.count("q_lora_rank"),
        qk_nope_head_dim=nope,
        qk_rope_head_dim=rope,
        v_head_dim=r.int("v_head_dim"),
        index_heads=r.count("index_n_heads"),
        index_head_dim=r.count("index_head_dim"),
        index_topk=r.count("index_topk"),
        mtp_layers=r.int("num_nextn_predict_layers", default=0)
        if r.cfg.get("num_nextn_predict_layers")
        else 0,
        **moe,
    )


def _gemma(r: _Reader) -> dict[str, Any]:
    bias = r.bool("attention_bias", False)
    # Gemma's released configs say hidden_act "gelu" but the model runs the tanh approximation.
    return _llama_like(
        r,
        activation="gelu_pytorch_tanh",
        tie_word_embeddings=r.bool("tie_word_embeddings", True),
        qkv_bias=bias,
        o_bias=bias,
        embed_scale=True,
    )


def _gemma2(r: _Reader) -> dict[str, Any]:
    fields = _gemma(r)
    layers = fields["num_layers"]
    window = r.int("sliding_window", default=0) or None
    fields.update(
        norms_per_layer=4,
        sliding_window=window,
        attn_logit_softcap=r.float("attn_logit_softcapping"),
        final_logit_softcap=r.float("final_logit_softcapping"),
    )
    if window:  # Gemma-2 alternates: even layers use the local window, odd layers attend globally
        fields.update(_window_layers(r, layers, [i % 2 == 0 for i in range(layers)]))
    return fields


def _phi3(r: _Reader) -> dict[str, Any]:
    return _llama_like(r, fused_qkv=True, fused_gate_up=True, **_config_window(r))


# transformers' Gemma3TextConfig defaults, which the published Gemma-3 configs rely on.
_GEMMA3_DEFAULTS = {
    "vocab_size": 262_208,
    "num_attention_heads": 8,
    "num_key_value_heads": 4,
    "head_dim": 256,
    "max_position_embeddings": 131_072,
    "sliding_window": 4096,
    "sliding_window_pattern": 6,
}


def _gemma3(r: _Reader) -> dict[str, Any]:
    """Gemma-3: five local (windowed) layers to one global, QK-norm, Gemma-2's four norms per layer."""
    r = _Reader({**_GEMMA3_DEFAULTS, **r.cfg}, r.model_type)
    fields = _gemma(r)
    layers = fields["num_layers"]
    pattern = r.int("sliding_window_pattern")
    fields.update(
        norms_per_layer=4,
        qk_norm=True,
        sliding_window=r.int("sliding_window"),
        final_logit_softcap=r.float("final_logit_softcapping"),
        attn_logit_softcap=r.float("attn_logit_softcapping"),
    )
    fields.update(_window_layers(r, layers, [(i + 1) % pattern != 0 for i in range(layers)]))
    return fields


def _llama4(r: _Reader) -> dict[str, Any]:
    """Llama-4: chunked local attention with rotary embedding on three of four layers, global NoPE
    attention on the fourth; MoE (one routed expert of E, plus a shared one) on every
    ``interleave_moe_layer_step``-th layer, dense MLPs of ``intermediate_size_mlp`` between."""
    layers = r.int("num_hidden_layers")
    interval = r.int("no_rope_layer_interval", default=4)
    rope = r.cfg.get("no_rope_layers") or [int((i + 1) % interval != 0) for i in range(layers)]
    if not isinstance(rope, list) or len(rope) != layers:
        raise RooflensError(
            f"config.json field 'no_rope_layers' must list 0 or 1 for each of the {layers} layers"
        )
    chunk = r.int("attention_chunk_size", default=0) or None
    local = "chunked" if chunk else "full"
    step = r.int("interleave_moe_layer_step", default=1)
    moe_layers = r.cfg.get("moe_layers") or list(range(step - 1, layers, step))
    expert = r.int("intermediate_size")
    bias = r.bool("attention_bias", False)
    return _llama_like(
        r,
        intermediate_size=r.int("intermediate_size_mlp", "intermediate_size"),
        qkv_bias=bias,
        o_bias=bias,
        attention_chunk=chunk,
        layer_attention=tuple(local if use else "full_nope" for use in rope),
        **_moe(
            r,
            layers,
            "num_local_experts",
            moe_intermediate_size=expert,
            shared_expert_intermediate_size=expert,
            layer_mlp=tuple("moe" if i in moe_layers else "dense" for i in range(layers)),
        ),
    )


def _qwen3_next(r: _Reader) -> dict[str, Any]:
    """Qwen3-Next: Gated DeltaNet layers with a gated full-attention layer every
    ``full_attention_interval``; MoE with a gated shared expert."""
    layers = r.int("num_hidden_layers")
    interval = r.int("full_attention_interval", default=4)
    kinds = _layer_types(r, layers) or ["full" if (i + 1) % interval == 0 else "gdn" for i in range(layers)]
    fields = _qwen2_moe(r)
    bias = r.bool("attention_bias", False)
    fields.update(
        qkv_bias=bias,
        o_bias=bias,
        qk_norm=True,
        attn_output_gate=True,
        layer_attention=tuple(kinds),
        linear_k_heads=r.int("linear_num_key_heads"),
        linear_v_heads=r.int("linear_num_value_heads"),
        linear_k_head_dim=r.int("linear_key_head_dim"),
        linear_v_head_dim=r.int("linear_value_head_dim"),
        linear_conv_kernel=r.int("linear_conv_kernel_dim", default=4),
    )
    return fields


def _mamba_fields(r: _Reader, prefix: str, hidden: int, **names: str) -> dict[str, Any]:
    """Mamba-2 mixer fields; ``prefix`` is how the family names them ('mamba_' for the hybrids)."""

    def key(name: str) -> str:
        return names.get(name, prefix + name)

    expand = r.int(key("expand"), default=2)
    inner = expand * hidden
    if r.cfg.get(key("head_dim")) == "auto":  # Bamba / Granite: inner width over the head count
        heads = r.int(key("n_heads"))
        if inner % heads:
            raise RooflensError(f"mamba_expand x hidden_size ({inner}) is not divisible by {heads} heads")
        head_dim = inner // heads
    else:
        head_dim = r.int(key("head_dim"), default=64)
        heads = r.int(key("n_heads"), default=inner // head_dim)
    return dict(
        ssm_heads=heads,
        ssm_head_dim=head_dim,
        ssm_state_size=r.int(key("d_state")),
        ssm_groups=r.int(key("n_groups"), default=1),
        ssm_conv_kernel=r.int(key("d_conv"), default=4),
        ssm_chunk_size=r.int(key("chunk_size"), default=256),
        ssm_bias=r.bool(key("proj_bias"), False),
        ssm_conv_bias=r.bool(key("conv_bias"), True),
    )


def _mamba2(r: _Reader) -> dict[str, Any]:
    """A pure Mamba-2 model (Mamba-Codestral): every layer a Mamba-2 mixer, no MLP, no attention."""
    h = r.int("hidden_size")
    layers = r.int("num_hidden_layers")
    ssm = _mamba_fields(
        r,
        "",
        h,
        n_heads="num_heads",
        d_state="state_size",
        d_conv="conv_kernel",
        proj_bias="use_bias",
        conv_bias="use_conv_bias",
    )
    return dict(
        hidden_size=h,
        num_layers=layers,
        # No attention: the head fields describe the Mamba heads (shown in listings only).
        num_heads=ssm["ssm_heads"],
        num_kv_heads=ssm["ssm_heads"],
        head_dim=ssm["ssm_head_dim"],
        intermediate_size=ssm["ssm_heads"] * ssm["ssm_head_dim"],
        vocab_size=r.int("vocab_size"),
        position="none",
        rotary_dim=0,
        tie_word_embeddings=r.bool("tie_word_embeddings", False),
        layer_attention=("mamba2",) * layers,
        layer_mlp=("no_ffn",) * layers,
        **ssm,
    )


# Nemotron-H's hybrid_override_pattern: one character per layer.
_NEMOTRON_BLOCKS = {"M": ("mamba2", "no_ffn"), "*": ("full", "no_ffn"), "-": ("no_mixer", "dense")}


def _nemotron_h(r: _Reader) -> dict[str, Any]:
    """Nemotron-H: each layer is one block, a Mamba-2 mixer (M), attention without positions (*) or
    a squared-ReLU MLP (-), as ``hybrid_override_pattern`` spells it."""
    h, layers = r.int("hidden_size"), r.int("num_hidden_layers")
    pattern = r.str("hybrid_override_pattern", default="")
    if len(pattern) != layers:
        raise RooflensError(
            f"config.json field 'hybrid_override_pattern' must have one character per layer ({layers}), "
            f"got {len(pattern)}"
        )
    blocks = []
    for i, char in enumerate(pattern):
        if char not in _NEMOTRON_BLOCKS:
            raise RooflensError(
                f"layer {i} of hybrid_override_pattern is {char!r}; "
                "known: M (Mamba-2), * (attention), - (MLP)"
            )
        blocks.append(_NEMOTRON_BLOCKS[char])
    heads = r.int("num_attention_heads")
    return dict(
        hidden_size=h,
        num_layers=layers,
        num_heads=heads,
        num_kv_heads=r.int("num_key_value_heads", default=heads),
        head_dim=r.int("attention_head_dim", "head_dim", default=h // heads),
        intermediate_size=r.int("intermediate_size"),
        vocab_size=r.int("vocab_size"),
        max_position_embeddings=r.int("max_position_embeddings", default=0) or None,
        gated_mlp=False,
        activation=r.str("mlp_hidden_act", default="relu2"),
        position="none",
        rotary_dim=0,
        tie_word_embeddings=r.bool("tie_word_embeddings", False),
        qkv_bias=r.bool("attention_bias", False),
        o_bias=r.bool("attention_bias", False),
        mlp_bias=r.bool("mlp_bias", False),
        layer_attention=tuple(b[0] for b in blocks),
        layer_mlp=tuple(b[1] for b in blocks),
        **_mamba_fields(
            r,
            "",
            h,
            n_heads="mamba_num_heads",
            head_dim="mamba_head_dim",
            d_state="ssm_state_size",
            d_conv="conv_kernel",
            proj_bias="use_bias",
            conv_bias="use_conv_bias",
        ),
    )


def _mamba_hybrid(r: _Reader, mixers: list[str], **family: Any) -> dict[str, Any]:
    """Attention or Mamba-2 as each layer's mixer, then an MLP (Bamba, Granite-4.0-H)."""
    fields = _llama_like(r, **family)
    ssm = _mamba_fields(r, "mamba_", fields["hidden_size"], head_dim="mamba_d_head")
    fields.update(layer_attention=tuple(mixers), **ssm)
    return fields


def _bamba(r: _Reader) -> dict[str, Any]:
    layers = r.int("num_hidden_layers")
    attention = set(r.cfg.get("attn_layer_indices") or [])
    mixers = ["full" if i in attention else "mamba2" for i in range(layers)]
    h, heads = r.int("hidden_size"), r.int("num_attention_heads")
    rotary = r.int("attn_rotary_emb", default=h // heads)
    return _mamba_hybrid(r, mixers, rotary_dim=rotary)


def _granite_hybrid(r: _Reader) -> dict[str, Any]:
    """Granite-4.0-H: Mamba-2 and attention layers per ``layer_types``, each followed by a shared MLP
    and, in the MoE sizes, routed experts beside it."""
    layers = r.int("num_hidden_layers")
    mixers = _layer_types(r, layers) or ["mamba2"] * layers
    shared = r.int("shared_intermediate_size")
    experts = r.count("num_local_experts")
    nope = r.str("position_embedding_type", default="rope") == "nope"
    family: dict[str, Any] = {"position": "none", "rotary_dim": 0} if nope else {}
    if experts:
        family.update(
            intermediate_size=shared,
            **_moe(
                r,
                layers,
                "num_local_experts",
                moe_intermediate_size=r.int("intermediate_size"),
                shared_expert_intermediate_size=shared,
            ),
        )
    else:
        family["intermediate_size"] = shared
    family["tie_word_embeddings"] = r.bool("tie_word_embeddings", True)
    return _mamba_hybrid(r, mixers, **family)


def _glm4_moe(r: _Reader) -> dict[str, Any]:
    """GLM-4.5/4.6: GQA with biases and partial rotary, optional QK-norm, DeepSeek-style shared and
    routed experts after ``first_k_dense_replace`` dense layers."""
    layers = r.int("num_hidden_layers")
    first_dense = r.count("first_k_dense_replace")
    return _llama_like(
        r,
        qkv_bias=r.bool("attention_bias", False),
        qk_norm=r.bool("use_qk_norm", False),
        **_moe(
            r,
            layers,
            "n_routed_experts",
            moe_intermediate_size=r.int("moe_intermediate_size"),
            shared_experts=r.count("n_shared_experts"),
            layer_mlp=tuple("moe" if i >= first_dense else "dense" for i in range(layers)),
        ),
        mtp_layers=r.int("num_nextn_predict_layers", default=0)
        if r.cfg.get("num_nextn_predict_layers")
        else 0,
    )


def _classic(r: _Reader, hidden: int, heads: int, **family: Any) -> dict[str, Any]:
    """The pre-Llama layout shared by GPT-2, GPT-NeoX and OPT: MHA, LayerNorm, plain MLP, biases."""
    if hidden % heads:
        raise RooflensError(f"hidden size {hidden} is not divisible by the {heads} attention heads")
    fields = dict(
        hidden_size=hidden,
        num_heads=heads,
        num_kv_heads=heads,
        head_dim=hidden // heads,
        vocab_size=r.int("vocab_size"),
        gated_mlp=False,
        norm="layernorm",
    )
    fields.update(family)
    return fields


def _gpt2(r: _Reader) -> dict[str, Any]:
    h = r.int("n_embd", "hidden_size")
    positions = r.int("n_positions", "max_position_embeddings")
    return _classic(
        r,
        h,
        r.int("n_head", "num_attention_heads"),
        num_layers=r.int("n_layer", "num_hidden_layers"),
        intermediate_size=r.int("n_inner", default=4 * h),
        max_position_embeddings=positions,
        activation=r.str("activation_function", default="gelu_new"),
        position="learned",
        learned_positions=positions,
        tie_word_embeddings=r.bool("tie_word_embeddings", True),
        qkv_bias=True,
        o_bias=True,
        mlp_bias=True,
        fused_qkv=True,
    )


def _gpt_neox(r: _Reader) -> dict[str, Any]:
    h, heads = r.int("hidden_size"), r.int("num_attention_heads")
    bias = r.bool("attention_bias", True)
    rotary_dim = int(h // heads * (r.float("rotary_pct") or 0.25)) if h % heads == 0 else 0
    return _classic(
        r,
        h,
        heads,
        num_layers=r.int("num_hidden_layers"),
        intermediate_size=r.int("intermediate_size"),
        max_position_embeddings=r.int("max_position_embeddings", default=0) or None,
        activation=r.str("hidden_act", default="gelu"),
        rotary_dim=max(1, rotary_dim),
        tie_word_embeddings=r.bool("tie_word_embeddings", False),
        qkv_bias=bias,
        o_bias=bias,
        mlp_bias=True,
        fused_qkv=True,
        parallel_residual=r.bool("use_parallel_residual", True),
    )


def _gptj(r: _Reader) -> dict[str, Any]:
    """GPT-J: attention and MLP side by side from one LayerNorm, rotary on the first ``rotary_dim``
    channels of each head, unbiased attention projections, a biased MLP."""
    h, heads = r.int("n_embd", "hidden_size"), r.int("n_head", "num_attention_heads")
    rotary = r.int("rotary_dim", default=h // heads if h % heads == 0 else 1)
    return _classic(
        r,
        h,
        heads,
        num_layers=r.int("n_layer", "num_hidden_layers"),
        intermediate_size=r.int("n_inner", default=4 * h),
        max_position_embeddings=r.int("n_positions", "max_position_embeddings", default=0) or None,
        activation=r.str("activation_function", default="gelu_new"),
        rotary_dim=rotary,
        tie_word_embeddings=r.bool("tie_word_embeddings", False),
        mlp_bias=True,
        parallel_residual=True,
        norms_per_layer=1,
    )


def _opt(r: _Reader) -> dict[str, Any]:
    h = r.int("hidden_size")
    if r.int("word_embed_proj_dim", default=h) != h or not r.bool("do_layer_norm_before", True):
        raise RooflensError(
            "OPT variants with word_embed_proj_dim != hidden_size or post-layer norm (opt-350m) are not "
            "supported; every other OPT size is"
        )
    positions = r.int("max_position_embeddings")
    bias = r.bool("enable_bias", True)
    return _classic(
        r,
        h,
        r.int("num_attention_heads"),
        num_layers=r.int("num_hidden_layers"),
        intermediate_size=r.int("ffn_dim"),
        max_position_embeddings=positions,
        activation=r.str("activation_function", default="relu"),
        position="learned",
        # OPT's learned position table carries two extra rows (an offset kept from fairseq).
        learned_positions=positions + 2,
        tie_word_embeddings=r.bool("tie_word_embeddings", True),
        qkv_bias=bias,
        o_bias=bias,
        mlp_bias=bias,
    )


FAMILIES: dict[str, Callable[[_Reader], dict[str, Any]]] = {
    "llama": _llama,
    "mistral": _mistral,
    "qwen2": _qwen2,
    "qwen3": _qwen3,
    "gemma": _gemma,
    "gemma2": _gemma2,
    "phi3": _phi3,
    "gpt2": _gpt2,
    "gpt_neox": _gpt_neox,
    "opt": _opt,
    "mixtral": _mixtral,
    "qwen2_moe": _qwen2_moe,
    "qwen3_moe": _qwen3_moe,
    "olmoe": _olmoe,
    "deepseek_v2": _deepseek,
    "deepseek_v3": _deepseek,
    "deepseek_v32": _deepseek,
    "kimi_k2": _deepseek,
    "gpt_oss": _gpt_oss,
    "gemma3_text": _gemma3,
    "llama4_text": _llama4,
    "qwen3_next": _qwen3_next,
    "mamba2": _mamba2,
    "nemotron_h": _nemotron_h,
    "bamba": _bamba,
    "granitemoehybrid": _granite_hybrid,
    "glm4_moe": _glm4_moe,
    "gptj": _gptj,
}

# Multimodal wrappers: the language model is described by their ``text_config``.
TEXT_CONFIG_OF = {"gemma3": "gemma3_text", "llama4": "llama4_text", "mistral3": "mistral"}


# Fields every decoder family reads (under one of these names), to say what an unknown config lacks.
_CORE_FIELDS = (
    ("hidden_size", "n_embd", "d_model"),
    ("num_hidden_layers", "n_layer"),
    ("num_attention_heads", "n_head"),
    ("vocab_size",),
)


def _unsupported(model_type: str, cfg: Config) -> RooflensError:
    import difflib

    known = sorted(FAMILIES) + sorted(TEXT_CONFIG_OF)
    near = difflib.get_close_matches(model_type.lower(), known, n=3, cutoff=0.5)
    prefix = [k for k in known if k.split("_")[0] == model_type.lower().split("_")[0] and k not in near]
    nearest = near + prefix[: max(0, 3 - len(near))]
    missing = [names[0] for names in _CORE_FIELDS if not any(n in cfg for n in names)]
    message = f"model_type '{model_type}' is not supported yet; supported: {', '.join(known)}."
    if nearest:
        message += f" Nearest: {', '.join(nearest)}."
    if missing:
        message += f" The config also lacks {', '.join(missing)}, which every family needs."
    else:
        message += (
            ' If it is a Llama-like decoder, set "model_type": "llama" in a copy of its config.json '
            "to analyse it as one."
        )
    return RooflensError(message)


def _wide_layers(skipped: tuple[str, ...], layers: int) -> int:
    """N when the unconverted modules are exactly those of the first and last N decoder layers (as FP8
    checkpoints that keep their outer layers in bf16 list them), else 0."""
    found = {int(m.group(1)) for name in skipped if (m := re.search(r"layers\.(\d+)(\.|$)", name))}
    for n in range(1, layers // 2 + 1):
        if found == set(range(n)) | set(range(layers - n, layers)):
            return n
    return 0


def checkpoint_quant(cfg: Config) -> CheckpointQuant | str | None:
    """The weight format a config's ``quantization_config`` declares (None: none declared; a string:
    a method rooflens does not read, named so the analysis can say so)."""
    q = cfg.get("quantization_config")
    if q is None:
        return None
    if not isinstance(q, dict):
        raise RooflensError(f"config.json field 'quantization_config' must be an object, got {str(q)[:60]}")
    method = str(q.get("quant_method", "")).lower()
    skipped = [str(m) for m in q.get("modules_to_not_convert") or q.get("ignore") or []]
    # Attention left unconverted while the experts are (gpt-oss): only the routed experts are quantized.
    experts_only = any("attn" in m for m in skipped)
    if method == "fp8":
        block = q.get("weight_block_size")
        act = 8 if q.get("activation_scheme", "dynamic") in ("dynamic", "static") else 16
        if isinstance(block, list) and len(block) == 2 and all(isinstance(b, int) and b > 0 for b in block):
            rows, cols = block
            return CheckpointQuant(
                method="fp8",
                bits=8,
                number_format="float",
                group_size=cols,
                block_rows=rows,
                scale_bits=32,
                activations=act,
                experts_only=experts_only,
                skipped=tuple(skipped),
                description=f"FP8 (E4M3) with one fp32 scale per {rows}x{cols} block",
            )
        return CheckpointQuant(
            method="fp8",
            bits=8,
            number_format="float",
            group_size=1 << 20,
            block_rows=1 << 20,
            scale_bits=32,
            activations=act,
            experts_only=experts_only,
            skipped=tuple(skipped),
            description="FP8 (E4M3) with one fp32 scale per tensor",
        )
    if method == "mxfp4":
        return CheckpointQuant(
            method="mxfp4",
            bits=4,
            number_format="float",
            group_size=32,
            scale_bits=8,
            experts_only=experts_only,
            skipped=tuple(skipped),
            description="MXFP4 (E2M1 values, one E8M0 scale per 32)"
            + (" on the routed experts only" if experts_only else ""),
        )
    if method in ("awq", "gptq"):
        bits = q.get("bits", q.get("w_bit", 4))
        group = q.get("group_size", q.get("q_group_size", 128))
        if not isinstance(bits, int) or not 1 < bits <= 8 or not isinstance(group, int):
            raise RooflensError(
                f"quantization_config of method {method} needs integer bits (2-8) and group_size, "
                f"got bits={str(bits)[:20]}, group_size={str(group)[:20]}"
            )
        symmetric = bool(q.get("sym", False)) if method == "gptq" else not q.get("zero_point", True)
        per_channel = group <= 0
        return CheckpointQuant(
            method=method,
            bits=bits,
            number_format="int",
            group_size=1 << 20 if per_channel else group,
            symmetric=symmetric,
            experts_only=experts_only,
            skipped=tuple(skipped),
            description=f"{method.upper()} INT{bits}, "
            + ("one scale per output channel" if per_channel else f"groups of {group}"),
        )
    if method == "compressed-tensors":
        return _compressed_tensors(q, experts_only, tuple(skipped))
    return method or "an unnamed method"


def _compressed_tensors(q: Config, experts_only: bool, skipped: tuple[str, ...]) -> CheckpointQuant | str:
    groups = q.get("config_groups") or {}
    first = next(iter(groups.values()), None) if isinstance(groups, dict) else None
    weights = first.get("weights") if isinstance(first, dict) else None
    if not isinstance(weights, dict) or not isinstance(weights.get("num_bits"), int):
        return "compressed-tensors without weight settings"
    bits, kind = weights["num_bits"], weights.get("type", "int")
    strategy = weights.get("strategy", "tensor")
    acts = first.get("input_activations") if isinstance(first, dict) else None
    act_bits = acts.get("num_bits", 16) if isinstance(acts, dict) else 16
    group = weights.get("group_size") if strategy == "group" else None
    block = weights.get("block_structure") if strategy == "block" else None
    rows = 1
    if isinstance(block, list) and len(block) == 2:
        rows, group = block
    if not isinstance(group, int) or group <= 0:
        group, rows = (1 << 20, 1) if strategy == "channel" else (1 << 20, 1 << 20)
    nvfp4 = kind == "float" and bits == 4 and group == 16
    return CheckpointQuant(
        method="compressed-tensors",
        bits=bits,
        number_format="float" if kind == "float" else "int",
        group_size=group,
        block_rows=rows,
        scale_bits=8 if nvfp4 else 32 if kind == "float" else 16,
        symmetric=bool(weights.get("symmetric", True)),
        activations=act_bits if isinstance(act_bits, int) else 16,
        experts_only=experts_only,
        skipped=tuple(skipped),
        description=f"compressed-tensors {kind.upper()}{bits} ({strategy}"
        + (f", groups of {group}" if strategy == "group" else "")
        + ")",
    )


def config_name(cfg: Config) -> str | None:
    """The name a config.json gives its model: ``_name_or_path`` (which transformers writes), or None.
    A Hub id (``org/model``) is kept whole; a local path (``/data/ckpt/llama``, ``./out``) is cut to
    its last folder, which names the model where the full path only names a machine."""
    value = cfg.get("_name_or_path")
    if not isinstance(value, str) or not value.strip():
        return None
    value = value.strip().rstrip("/\\")
    if value.startswith(("/", "~", ".")) or "\\" in value or value.count("/") > 1:
        value = value.replace("\\", "/").rsplit("/", 1)[-1]
    return None if value in ("", ".", "..", "~") else value


def spec_from_config(cfg: Config, name: str | None = None, **meta: Any) -> ModelSpec:
    """Build a ModelSpec from a Hugging Face config dict (the contents of ``config.json``), after
    checking its values against ``bounds`` (nothing is built from an out-of-bounds config)."""
    check_config(cfg)
    model_type = cfg.get("model_type")
    if not model_type:
        raise RooflensError(
            "config.json has no 'model_type'; supported model types: " + ", ".join(sorted(FAMILIES))
        )
    if not isinstance(model_type, str):
        raise RooflensError(f"config.json field 'model_type' must be a string, got {str(model_type)[:40]}")
    label = name or config_name(cfg) or model_type
    quant = checkpoint_quant(cfg)
    if model_type in TEXT_CONFIG_OF:  # a multimodal wrapper: analyse its language model
        text = cfg.get("text_config")
        if not isinstance(text, dict):
            raise RooflensError(f"config.json of model_type '{model_type}' needs a 'text_config' object")
        model_type = str(text.get("model_type") or TEXT_CONFIG_OF[model_type])
        cfg = text
        quant = checkpoint_quant(cfg) or quant
    parser = FAMILIES.get(model_type)
    if parser is None:
        raise _unsupported(model_type, cfg)
    fields = parser(_Reader(cfg, model_type))
    if isinstance(quant, str):
        meta = {**meta, "quantization_unread": quant}
    elif quant is not None:
        # A skip list naming attention means "experts only" in an MoE checkpoint (gpt-oss); a dense
        # model that leaves a few modules unconverted is quantized throughout (to within them).
        if quant.experts_only and not fields.get("num_experts"):
            quant = quant.model_copy(update={"experts_only": False})
        wide = _wide_layers(quant.skipped, int(fields.get("num_layers") or len(fields.get("layers") or ())))
        fields["quantization"] = quant.model_copy(update={"wide_layers": wide})
    try:
        return ModelSpec(name=str(label), model_type=model_type, **fields, **meta)
    except ValidationError as err:
        raise explain_validation(err, f"model config '{label}'") from None
