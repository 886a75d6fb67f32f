"""The figures the README quotes, recomputed: a change that moves one must update the README too.

Each test names the README paragraph it checks; test_readme.py only runs the commands."""

from __future__ import annotations

import pytest

import rooflens
from rooflens.layers.moe import routed_load


def ms(x: float) -> float:
    return round(x * 1e3, 1)


def test_worked_example_llama_2_7b_on_a100():
    # "13.76 GB / 2.04 TB/s = 6.75 ms per token, 148 tokens/s"; "46 ms for 13.5 TFLOP".
    r = rooflens.analyze("llama-2-7b", "a100", prompt=1024, gen=256)
    step = rooflens.analyze("llama-2-7b", "a100", prompt=1023, gen=2).decode  # the step at context 1024
    assert round(step.bytes / 1e9, 2) == 13.76 and round(step.time_s * 1e3, 2) == 6.75
    assert round(1 / step.time_s) == 148
    assert round(r.prefill.time_s * 1e3) == 46 and round(r.prefill.flops / 1e12, 1) == 13.5
    b64 = rooflens.analyze("llama-2-7b", "a100", batch=64, prompt=1023, gen=2).decode
    assert ms(b64.time_s) == 23.7 and round(64 / b64.time_s, -2) == 2700


def test_mixture_of_experts_paragraph():
    # "Batch 1 reads 2 of 8 experts (TPOT 4.1 ms); batch 8 touches 7.2 (12.9 ms); batch 64 all 8 (15.2)".
    tpot = [
        ms(rooflens.analyze("mixtral-8x7b", "h100", tp=2, batch=b, prompt=512, gen=129).tpot_s)
        for b in (1, 8, 64)
    ]
    assert tpot == [4.1, 12.9, 15.2]
    assert round(float(routed_load(8, 2, 8.0, 1, 0.0)[0]), 1) == 7.2


def test_latent_attention_paragraph():
    # "DeepSeek-V3 caches 35 KB per token ... Llama-3.1-405B 258 KB, 32 KB per GPU ... 16.2 vs 19.4 ms".
    kw = dict(tp=8, quant="fp8", kv_format="fp8", batch=32, prompt=4096, gen=129)
    v3, big = rooflens.analyze("deepseek-v3", "h200", **kw), rooflens.analyze("llama-3.1-405b", "h200", **kw)
    tokens = 32 * (4096 + 129)
    assert round(v3.memory.kv_cache_bytes / tokens / 1e3) == 35
    assert round(big.memory.kv_cache_bytes * 8 / tokens / 1e3) == 258
    assert round(big.memory.kv_cache_bytes / tokens / 1e3) == 32
    assert (ms(v3.tpot_s), ms(big.tpot_s)) == (16.2, 19.4)


def test_sliding_window_paragraph():
    # "cuts TPOT from 15.3 to 9.1 ms and memory from 43.5 to 30.8 GB".
    kw = dict(batch=8, prompt=16000, gen=129)
    full, win = (
        rooflens.analyze("mistral-7b-v0.3", "a100", **kw),
        rooflens.analyze("mistral-7b-v0.1", "a100", **kw),
    )
    assert (ms(full.tpot_s), ms(win.tpot_s)) == (15.3, 9.1)
    assert (round(full.memory.total_bytes / 1e9, 1), round(win.memory.total_bytes / 1e9, 1)) == (43.5, 30.8)


def test_parallelism_paragraph():
    # "TP 2, 4, 8: TPOT 22.4, 12.9, 10.1 ms"; "PP 4 splits the 146 GB into 39 GB per device ... 42.5 ms
    # ... the bubble with 8 micro-batches is 27%".
    tpot = [
        ms(rooflens.analyze("llama-3-70b", "h100", tp=t, batch=8, prompt=2048, gen=129).tpot_s)
        for t in (2, 4, 8)
    ]
    assert tpot == [22.4, 12.9, 10.1]
    pp = rooflens.analyze("llama-3-70b", "h100", pp=4, micro_batches=8, batch=8)
    whole = rooflens.analyze("llama-3-70b", "h100", batch=8)
    assert round(whole.memory.total_bytes / 1e9) == 146 and round(pp.memory.total_bytes / 1e9) == 39
    assert round(pp.tpot_s * 1e3, 1) == 42.5 and round(pp.pipeline_bubble, 2) == 0.27


def test_speculative_decoding_paragraph():
    # "TPOT 12.4 ms plain, 4.6 ms at 80% acceptance, 15.4 ms at 0%".
    kw = dict(tp=4, batch=1, prompt=1024, gen=257)
    plain = rooflens.analyze("llama-3.1-70b", "h100", **kw)
    good = rooflens.analyze("llama-3.1-70b", "h100", **kw, draft_model="llama-3.2-1b", acceptance_rate=0.8)
    bad = rooflens.analyze("llama-3.1-70b", "h100", **kw, draft_model="llama-3.2-1b", acceptance_rate=0.0)
    assert (ms(plain.tpot_s), ms(good.tpot_s), ms(bad.tpot_s)) == (12.4, 4.6, 15.4)


def test_early_exit_sparsity_compression_and_prefix_paragraphs():
    # Early exit: "TPOT 6.6 to 4.0 ms at 60% of the layers; TTFT unchanged".
    a = rooflens.analyze("llama-2-7b", "a100", prompt=512, gen=129)
    b = rooflens.analyze("llama-2-7b", "a100", prompt=512, gen=129, exit_fraction=0.6)
    assert (ms(a.tpot_s), ms(b.tpot_s)) == (6.6, 4.0) and a.ttft_s == b.ttft_s
    # Sparsity: "TTFT 1.51 to 0.83 s ...; TPOT 15.3 to 12.5 ms".
    kw = dict(batch=16, prompt=2048, gen=129)
    dense, sparse = (
        rooflens.analyze("llama-2-7b", "a100", **kw),
        rooflens.analyze("llama-2-7b", "a100", **kw, sparsity="2:4"),
    )
    assert (round(dense.ttft_s, 2), round(sparse.ttft_s, 2)) == (1.51, 0.83)
    assert (ms(dense.tpot_s), ms(sparse.tpot_s)) == (15.3, 12.5)
    # Compression: "halves TTFT (784 to 351 ms)"; budget: "TPOT from 24.7 to 5.8 ms and memory from
    # 132 to 69 GB".
    full = rooflens.analyze("llama-3.1-8b", "h100", prompt=32000, gen=129)
    kept = rooflens.analyze(
        "llama-3.1-8b", "h100", prompt=32000, gen=129, prompt_keep=0.1, prompt_keep_after=13
    )
    assert (round(full.ttft_s * 1e3), round(kept.ttft_s * 1e3)) == (784, 351)
    kw = dict(batch=16, prompt=32000, gen=257)
    plain, budget = (
        rooflens.analyze("llama-3.1-8b", "h100", **kw),
        rooflens.analyze("llama-3.1-8b", "h100", **kw, kv_budget=2048),
    )
    assert (ms(plain.tpot_s), ms(budget.tpot_s)) == (24.7, 5.8)
    assert (round(plain.memory.total_bytes / 1e9), round(budget.memory.total_bytes / 1e9)) == (132, 69)
    # Shared prefix: "TTFT 1.08 s to 0.16 s, KV cache 9.1 to 1.8 GB (largest batch 144 to 730); TPOT
    # 7.2 ms, down to 5.1 ms only when the kernel reads the prefix once".
    kw = dict(batch=32, prompt=2048, gen=129)
    none = rooflens.analyze("llama-3-8b", "h100", **kw)
    shared = rooflens.analyze("llama-3-8b", "h100", **kw, shared_prefix=1800)
    once = rooflens.analyze("llama-3-8b", "h100", **kw, shared_prefix=1800, prefix_reads_once=True)
    assert (round(none.ttft_s, 2), round(shared.ttft_s, 2)) == (1.08, 0.16)
    assert (round(none.memory.kv_cache_bytes / 1e9, 1), round(shared.memory.kv_cache_bytes / 1e9, 1)) == (
        9.1,
        1.8,
    )
    assert (none.memory.max_batch, shared.memory.max_batch) == (144, 730)
    assert (ms(none.tpot_s), ms(shared.tpot_s), ms(once.tpot_s)) == (7.2, 7.2, 5.1)


@pytest.mark.parametrize(
    ("name", "count"),
    [("models", 73)],
)
def test_catalog_sizes_quoted(name, count):
    # "rooflens models  # 73 bundled models, 0.12 B to 1 T".
    models = rooflens.model.list_models()
    assert len(models) == count
    sizes = sorted(m.num_params for m in models)
    assert round(sizes[0] / 1e9, 2) == 0.12 and round(sizes[-1] / 1e12) == 1


def test_planning_answer():
    # "1 x B300, NVFP4 ... FP8 KV cache, batch 64 at $0.198 per million tokens, TTFT 423 ms, TPOT 5.0 ms,
    # one replica ...; then 2 x RTX PRO 6000 (TP 2, NVFP4, FP8 cache, batch 32, $0.240, 3 replicas, TTFT
    # 472 ms) and 1 x B200 (NVFP4, FP8 cache, batch 32, 2 replicas, $0.257 ...) ... memory-bound
    # (100% ...); at 128 ... TTFT to 844 ms; ... tie at $1.68 per device-hour instead of $2.04 ...
    # ttft_estimate_range_s".
    from rooflens.plan import plan

    p = plan("llama-3-8b", prompt=2048, gen=512, ttft=0.5, tpot=0.03, rate=20)
    top = p.entries.iloc[0]
    got = (top.hardware, top.devices, top.quant, top.kv_format, top.batch, top.replicas)
    assert got == ("b300", 1, "nvfp4", "fp8", 64, 1)
    assert round(top.usd_per_million_tokens, 3) == 0.198 and round(top.ttft_s * 1e3) == 423
    assert round(top.tpot_s * 1e3, 1) == 5.0
    second, third = p.entries.iloc[1], p.entries.iloc[2]
    got = (second.hardware, second.devices, second.tp, second.quant, second.kv_format, second.batch)
    assert got == ("rtx-pro-6000", 2, 2, "nvfp4", "fp8", 32) and second.replicas == 3
    assert round(second.usd_per_million_tokens, 3) == 0.240 and round(second.ttft_s * 1e3) == 472
    got = (third.hardware, third.devices, third.quant, third.kv_format, third.batch, third.replicas)
    assert got == ("b200", 1, "nvfp4", "fp8", 32, 2) and round(third.usd_per_million_tokens, 3) == 0.257
    fourth = p.entries.iloc[3]  # "1 x RTX PRO 6000 at batch 16 follows, $0.260"
    assert (fourth.hardware, fourth.devices, fourth.batch) == ("rtx-pro-6000", 1, 16)
    assert round(fourth.usd_per_million_tokens, 3) == 0.260
    # "at 64 its [the B200's] TTFT, 578 ms, misses the target"
    b200 = plan("llama-3-8b", prompt=2048, gen=512, ttft=5.0, tpot=0.03, rate=20, hardware=["b200"],
                tp=(1,), quants=("nvfp4",), kv_formats=("fp8",), batches=(64,))  # fmt: skip
    assert round(b200.entries.iloc[0].ttft_s * 1e3) == 578
    text = " ".join(p.explanation)
    assert "100%" in text and "844 ms" in text and "$1.68 " in text and "$2.04" in text and "NVFP4" in text
    low, high = p.to_dict()["entries"][0]["ttft_estimate_range_s"]
    assert low < top.ttft_s < high


def test_serving_paragraph():
    # "keeps up: 7.8 completions/s ..., a decode batch of 26, TTFT p50 96 ms (p10-p90 range 43-148 ms
    # ...) / p99 201 ms, TPOT p50 13 ms (9-13 ms) ... p99 ITL 51 ms ... 1 prefill : 1 decode ... TPOT
    # 9 ms, ITL p99 10 ms, TTFT p99 187 ms ... 143 output tokens/s per GPU at 148 tokens/s per user at
    # concurrency 1, 1,760 at 128 per user at 16, 3,887 at 85 at 64".
    from rooflens.serving import simulate, sweep_concurrency

    kw = dict(rate=8, prompt=2048, gen=256, random_range_ratio=0.3, requests=1000)
    s = simulate("llama-3-8b", "h100", **kw).summary
    assert round(float(s["achieved_rate"]), 1) == 7.8 and round(s["mean_batch"]) == 26
    assert not s["saturated"]
    whole = [round(v * 1e3) for v in (s["ttft"]["p50"], s["ttft"]["p99"], s["tpot"]["p50"], s["itl"]["p99"])]
    assert whole == [96, 201, 13, 51]
    ranges = s["estimate_ranges"]
    assert [round(v * 1e3) for v in ranges["ttft_p50_estimate_range_s"]] == [43, 148]
    assert [round(v * 1e3) for v in ranges["tpot_p50_estimate_range_s"]] == [9, 13]
    d = simulate("llama-3-8b", "h100", disaggregate=(1, 1), **kw).summary
    assert [round(d[k][p] * 1e3) for k, p in (("tpot", "p50"), ("itl", "p99"), ("ttft", "p99"))] == [
        9,
        10,
        187,
    ]
    rows = sweep_concurrency("llama-3-8b", "h100", [1, 16, 64], prompt=1024, gen=256, requests=200)
    got = [(round(r["output_tokens_per_s_per_device"]), round(r["tokens_per_s_per_user"])) for r in rows]
    assert got == [(143, 148), (1760, 128), (3887, 85)]
