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
