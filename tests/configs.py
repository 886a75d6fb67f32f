"""Model configs the specification tests share, written out so their arithmetic can be followed."""

# A tiny Llama: hidden 64, 2 layers, 4 heads of 16 (q_dim 64), 2 KV heads (kv_dim 32), MLP 128,
# vocabulary 100.
TINY = {
    "model_type": "llama",
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "intermediate_size": 128,
    "vocab_size": 100,
}

# A tiny Mamba-2: hidden 16, inner 32 = 2 heads x 16, state 8, 1 group, kernel 4, chunks of 4.
TINY_MAMBA = {
    "model_type": "mamba2",
    "hidden_size": 16,
    "num_hidden_layers": 2,
    "num_heads": 2,
    "head_dim": 16,
    "state_size": 8,
    "n_groups": 1,
    "conv_kernel": 4,
    "chunk_size": 4,
    "expand": 2,
    "vocab_size": 10,
}

# A tiny Mixtral: hidden 8, 1 layer, 2 heads, 4 experts of width 4, top-2.
TINY_MOE = {
    "model_type": "mixtral",
    "hidden_size": 8,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 4,
    "vocab_size": 10,
    "num_local_experts": 4,
    "num_experts_per_tok": 2,
}
