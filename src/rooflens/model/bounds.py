"""Bounds on a config.json, checked on the raw data before anything is built from it.

A config is data from outside: a file, a dict given to the Python API, a body posted to the server. Its
numbers decide how much work an analysis does (layers and experts are looped over), so they are checked
here first, against ranges that hold every real model with a wide margin:

- every number anywhere in the config is finite and at most ``MAX_MAGNITUDE`` in size (JSON's NaN,
  Infinity, 1e400 and 10**400 are refused wherever they appear);
- the architecture fields rooflens reads are numbers within ``LIMITS`` (null means absent);
- layer lists (``layer_types``, ``mlp_only_layers``, ...) have the right type and at most
  ``MAX_LAYERS`` entries;
- the document is at most ``MAX_DEPTH`` levels deep and ``MAX_NODES`` values large, and no string is
  longer than ``MAX_STRING`` characters.

Every refusal names the field's path and the allowed range and quotes at most a short excerpt of the
value. The checks cost one pass over the document: microseconds for a real config, and a bounded time
for a hostile one (the walk stops at the first node past a limit).
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import RooflensError, excerpt

MAX_LAYERS = 1024  # the deepest real decoder has under 200 layers
MAX_EXPERTS = 4096  # the widest real MoE has 384 routed experts
MAX_MAGNITUDE = 1e15  # the largest number a real config holds is a RoPE base of about 1e9
MAX_DEPTH = 16
MAX_NODES = 20_000  # values in the document: a real config.json has a few hundred
MAX_STRING = 10_000

_WIDTH = 131_072  # hidden sizes: the widest real model has 25,600
_FFN = 1 << 20  # MLP widths: the widest real one has 73,728 (GPT-3 size class x 6)
_HEADS = 4096  # attention heads: real models have at most 128
_HEAD_DIM = 16_384  # per-head width: real ones are at most 576 (MLA's latent + rope)
_POSITIONS = 1 << 24  # context lengths: Llama-4 Scout's 10M is the longest published
_RANK = 65_536  # MLA ranks: DeepSeek's are 512 and 1536

# Field -> inclusive (low, high) range of the architecture fields rooflens reads. Lower bounds are 0:
# whether a size may be absent (0) is the model family's call, made when the config is parsed.
LIMITS: dict[str, tuple[float, float]] = {
    **dict.fromkeys(("num_hidden_layers", "n_layer", "num_layers"), (0, MAX_LAYERS)),
    **dict.fromkeys(("hidden_size", "n_embd", "d_model", "word_embed_proj_dim"), (0, _WIDTH)),
    **dict.fromkeys(
        ("num_attention_heads", "n_head", "n_heads", "num_key_value_heads", "index_n_heads", "n_groups"),
        (0, _HEADS),
    ),
    **dict.fromkeys(("linear_num_key_heads", "linear_num_value_heads"), (0, _HEADS)),
    **dict.fromkeys(
        (
            "head_dim",
            "attention_head_dim",
            "v_head_dim",
            "qk_rope_head_dim",
            "qk_nope_head_dim",
            "index_head_dim",
            "linear_key_head_dim",
            "linear_value_head_dim",
            "rotary_dim",
        ),
        (0, _HEAD_DIM),
    ),
    **dict.fromkeys(
        (
            "intermediate_size",
            "n_inner",
            "ffn_dim",
            "moe_intermediate_size",
            "shared_expert_intermediate_size",
            "shared_intermediate_size",
            "intermediate_size_mlp",
        ),
        (0, _FFN),
    ),
    "vocab_size": (0, 1 << 23),
    **dict.fromkeys(
        ("num_local_experts", "n_routed_experts", "num_experts", "num_experts_per_tok", "experts_per_token"),
        (0, MAX_EXPERTS),
    ),
    "n_shared_experts": (0, MAX_EXPERTS),
    **dict.fromkeys(
        ("max_position_embeddings", "n_positions", "sliding_window", "attention_chunk_size", "index_topk"),
        (0, _POSITIONS),
    ),
    **dict.fromkeys(("kv_lora_rank", "q_lora_rank"), (0, _RANK)),
    **dict.fromkeys(
        (
            "num_nextn_predict_layers",
            "first_k_dense_replace",
            "moe_layer_freq",
            "decoder_sparse_step",
            "interleave_moe_layer_step",
            "full_attention_interval",
            "no_rope_layer_interval",
            "sliding_window_pattern",
            "max_window_layers",
        ),
        (0, MAX_LAYERS),
    ),
    **dict.fromkeys(("partial_rotary_factor", "rotary_pct"), (0, 1)),
    **dict.fromkeys(("d_state", "d_conv", "linear_conv_kernel_dim"), (0, _RANK)),
    "expand": (0, 64),
    "chunk_size": (0, _POSITIONS),
    **dict.fromkeys(("final_logit_softcapping", "attn_logit_softcapping"), (0, 1e6)),
}

# Per-layer lists: integer layer indices, or one string per layer.
INDEX_LISTS = ("mlp_only_layers", "moe_layers", "no_rope_layers", "attn_layer_indices")
STRING_LISTS = ("layer_types",)
PATTERNS = ("hybrid_override_pattern",)  # one character per layer
NESTED = ("text_config",)  # a multimodal wrapper's language model: checked like the top level


def _fail(path: str, problem: str, where: str) -> RooflensError:
    return RooflensError(f"{where} field '{path}' {problem}")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_config(cfg: Any, where: str = "config.json") -> None:
    """Refuse a config whose values are out of bounds (see the module docstring); return None if fine."""
    if not isinstance(cfg, dict):
        raise RooflensError(f"a model config must be a JSON object, got {type(cfg).__name__}")
    _fields(cfg, "", where)  # first: the fields that bound the work are checked in O(1) each
    for key in NESTED:
        inner = cfg.get(key)
        if isinstance(inner, dict):
            _fields(inner, f"{key}.", where)
    _walk(cfg, where)


def _walk(cfg: dict[str, Any], where: str) -> None:
    """Every value in the document: finite numbers of bounded size, bounded strings, depth and size."""
    stack: list[tuple[str, Any, int]] = [("", cfg, 0)]
    nodes = 0
    while stack:
        path, value, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise RooflensError(
                f"{where} holds more than {MAX_NODES:,} values; a real config.json has a few hundred"
            )
        if isinstance(value, dict):
            if depth >= MAX_DEPTH:
                raise _fail(path, f"nests deeper than {MAX_DEPTH} levels", where)
            for key, item in value.items():
                if not isinstance(key, str):
                    raise _fail(path, f"has a non-string key {excerpt(key)}", where)
                _string(f"{path}{key}", key, where, "key")
                stack.append((f"{path}{key}.", item, depth + 1))
        elif isinstance(value, list):
            if depth >= MAX_DEPTH:
                raise _fail(path.rstrip("."), f"nests deeper than {MAX_DEPTH} levels", where)
            for i, item in enumerate(value):
                stack.append((f"{path.rstrip('.')}[{i}].", item, depth + 1))
        elif isinstance(value, str):
            _string(path.rstrip("."), value, where, "value")
        elif _number(value):
            _finite(path.rstrip("."), value, where)


def _finite(path: str, value: float, where: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise _fail(path, f"must be a finite number, got {excerpt(value)}", where)
    if abs(value) > MAX_MAGNITUDE:
        raise _fail(
            path,
            f"is {excerpt(value, 24)}, beyond any real model "
            f"(numbers must be at most {MAX_MAGNITUDE:.0e} in size)",
            where,
        )


def _string(path: str, text: str, where: str, what: str) -> None:
    if len(text) > MAX_STRING:
        raise _fail(path, f"has a {what} of {len(text):,} characters (at most {MAX_STRING:,})", where)
    try:
        text.encode()
    except UnicodeEncodeError:
        raise _fail(path, f"has a {what} that is not valid Unicode: {excerpt(text)}", where) from None


def _fields(cfg: dict[str, Any], prefix: str, where: str) -> None:
    """The architecture fields rooflens reads: numbers within LIMITS, layer lists of the right shape."""
    for key, (low, high) in LIMITS.items():
        value = cfg.get(key)
        if value is None:
            continue
        if not _number(value):
            raise _fail(f"{prefix}{key}", f"must be a number, got {excerpt(value)}", where)
        _finite(f"{prefix}{key}", value, where)
        if not low <= value <= high:
            raise _fail(
                f"{prefix}{key}",
                f"is {excerpt(value, 24)}; allowed: {low:g} to {high:g} (real models are well inside)",
                where,
            )
    for key in (*INDEX_LISTS, *STRING_LISTS):
        value = cfg.get(key)
        if value is None:
            continue
        path = f"{prefix}{key}"
        if not isinstance(value, list):
            kind = "layer indices" if key in INDEX_LISTS else "strings, one per layer"
            raise _fail(path, f"must be a list of {kind}, got {excerpt(value)}", where)
        if len(value) > MAX_LAYERS:
            raise _fail(path, f"lists {len(value):,} layers (at most {MAX_LAYERS})", where)
        for i, item in enumerate(value):
            if key in INDEX_LISTS and not (isinstance(item, int) and not isinstance(item, bool)):
                raise _fail(f"{path}[{i}]", f"must be a whole-number layer index, got {excerpt(item)}", where)
            if key in INDEX_LISTS and not 0 <= item < MAX_LAYERS:
                raise _fail(f"{path}[{i}]", f"is {item}; layer indices run from 0 to {MAX_LAYERS - 1}", where)
            if key in STRING_LISTS and not isinstance(item, str):
                raise _fail(f"{path}[{i}]", f"must be a string (a layer type), got {excerpt(item)}", where)
    for key in PATTERNS:
        value = cfg.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise _fail(
                f"{prefix}{key}", f"must be a string, one character per layer, got {excerpt(value)}", where
            )
        if len(value) > MAX_LAYERS:
            raise _fail(f"{prefix}{key}", f"describes {len(value):,} layers (at most {MAX_LAYERS})", where)
