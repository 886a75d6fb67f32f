"""Parse Hugging Face ``config.json`` dicts into ModelSpec, one small function per model family.

Only architecture fields are read; nothing in a config is ever executed (no ``trust_remote_code``).
Each parser states the family's defaults explicitly, because configs omit fields whose
``transformers`` default applies (for example GPT-2 never says its embeddings are tied).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from ..errors import RooflensError, explain_validation
from .spec import ModelSpec

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


def _window_layers(r: _Reader, layers: int, sliding: list[bool]) -> dict[str, Any]:
    """layer_attention from the config's own ``layer_types`` when it has them, else from ``sliding``."""
    types = r.cfg.get("layer_types")
    if isinstance(types, list) and len(types) == layers:
        sliding = [t == "sliding_attention" for t in types]
    if not any(sliding):
        return {"sliding_window": None}
    return {"layer_attention": tuple("sliding" if s else "full" for s in sliding)}


def _qwen_window(r: _Reader) -> dict[str, Any]:
    """Qwen2/3: with use_sliding_window, layers from max_window_layers on use the window."""
    layers = r.int("num_hidden_layers")
    if not r.bool("use_sliding_window", False):
        return {"sliding_window": None}
    first = r.int("max_window_layers", default=0) if r.cfg.get("max_window_layers") else 0
    return {
        "sliding_window": r.int("sliding_window"),
        **_window_layers(r, layers, [i >= first for i in range(layers)]),
    }


def _moe(r: _Reader, layers: int, experts_key: str = "num_experts", **extra: Any) -> dict[str, Any]:
    """Routed-expert fields shared by the MoE families."""
    return dict(
        num_experts=r.int(experts_key),
        experts_per_token=r.int("num_experts_per_tok"),
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


def _mistral(r: _Reader) -> dict[str, Any]:
    return _llama_like(r, sliding_window=r.int("sliding_window", default=0) or None)


def _mixtral(r: _Reader) -> dict[str, Any]:
    layers = r.int("num_hidden_layers")
    moe = _moe(r, layers, "num_local_experts", moe_intermediate_size=r.int("intermediate_size"))
    return _llama_like(r, sliding_window=r.int("sliding_window", default=0) or None, **moe)


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
    first_dense = r.int("first_k_dense_replace", default=0) if r.cfg.get("first_k_dense_replace") else 0
    freq = r.int("moe_layer_freq", default=1)
    routed = r.int("n_routed_experts", default=0) if r.cfg.get("n_routed_experts") else 0
    kinds = tuple("moe" if routed and i >= first_dense and i % freq == 0 else "dense" for i in range(layers))
    moe = (
        _moe(
            r,
            layers,
            "n_routed_experts",
            moe_intermediate_size=r.int("moe_intermediate_size"),
            shared_experts=r.int("n_shared_experts", default=0) if r.cfg.get("n_shared_experts") else 0,
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
        q_lora_rank=r.int("q_lora_rank", default=0) if r.cfg.get("q_lora_rank") else 0,
        qk_nope_head_dim=nope,
        qk_rope_head_dim=rope,
        v_head_dim=r.int("v_head_dim"),
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
    return _llama_like(
        r,
        fused_qkv=True,
        fused_gate_up=True,
        sliding_window=r.int("sliding_window", default=0) or None,
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
}


def spec_from_config(cfg: Config, name: str | None = None, **meta: Any) -> ModelSpec:
    """Build a ModelSpec from a Hugging Face config dict (the contents of ``config.json``)."""
    if not isinstance(cfg, dict):
        raise RooflensError(f"a model config must be a JSON object, got {type(cfg).__name__}")
    model_type = cfg.get("model_type")
    if not model_type:
        raise RooflensError(
            "config.json has no 'model_type'; supported model types: " + ", ".join(sorted(FAMILIES))
        )
    parser = FAMILIES.get(model_type)
    if parser is None:
        raise RooflensError(
            f"model_type '{model_type}' is not supported yet; supported: " + ", ".join(sorted(FAMILIES))
        )
    fields = parser(_Reader(cfg, model_type))
    label = name or cfg.get("_name_or_path") or model_type
    try:
        return ModelSpec(name=str(label), model_type=model_type, **fields, **meta)
    except ValidationError as err:
        raise explain_validation(err, f"model config '{label}'") from None
