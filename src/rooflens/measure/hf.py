"""Running Hugging Face ``transformers`` causal LMs: build from a config, prefill, decode a step.

One place for the library's API, which moves: the KV cache argument and output are
``past_key_values`` up to transformers 5.2x and ``cache`` after (the old name is deprecated).
Models are built from configs with random weights; nothing is downloaded and no remote code runs.
"""

from __future__ import annotations

import inspect
from typing import Any

from ..errors import RooflensError

TORCH_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def _libraries():
    try:
        import torch
        import transformers
    except ImportError:
        raise RooflensError(
            "running real models needs torch and transformers: pip install torch transformers"
        ) from None
    return torch, transformers


def build(config: dict[str, Any], device: str, dtype: str):
    """A causal LM with random weights, SDPA attention, in eval mode on ``device``."""
    torch, transformers = _libraries()
    fields = {
        k: v
        for k, v in config.items()
        if k not in ("architectures", "torch_dtype", "dtype", "transformers_version")
    }
    model_type = fields.pop("model_type")
    hf_config = transformers.AutoConfig.for_model(model_type, **fields)
    hf_config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    with torch.device(device):
        lm = transformers.AutoModelForCausalLM.from_config(
            hf_config, dtype=getattr(torch, TORCH_DTYPES[dtype])
        )
    return lm.eval()


def _cache_name(lm) -> str:
    return "cache" if "cache" in inspect.signature(lm.forward).parameters else "past_key_values"


def prefill(lm, ids):
    """One pass over the prompt keeping only the last logits; returns (next token, cache)."""
    out = lm(input_ids=ids, use_cache=True, logits_to_keep=1)
    return out.logits[:, -1:].argmax(-1), getattr(out, _cache_name(lm))


def decode_step(lm, token, cache):
    """One greedy decode step over the cache; returns (next token, cache)."""
    name = _cache_name(lm)
    out = lm(input_ids=token, use_cache=True, **{name: cache})
    return out.logits[:, -1:].argmax(-1), getattr(out, name)
