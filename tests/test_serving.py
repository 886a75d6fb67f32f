"""The serving simulation: a lone request is the single analysis; load, memory and engine knobs act as
they should; the metrics are the benchmark tools' (vllm bench serve, InferenceMAX)."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import rooflens
from rooflens import RooflensError
from rooflens.analysis import make_settings
from rooflens.cli import app
from rooflens.engine import get_engine
from rooflens.memory import CacheShape, kv_cache_bytes
from rooflens.serving import (
    SATURATION_SHARE,
    SchedulerConfig,
    StepCost,
    backlog_growth,
    cuda_graph_sizes,
    saturated,
    scheduler_defaults,
    simulate,
    sweep_concurrency,
)

# Engines with a fitted efficiency profile today, for estimate-basis checks.
ESTIMATE_ENGINE = {"engine": "tensorrt-llm"}


@pytest.mark.parametrize(
    ("model", "hw", "kwargs", "basis"),
    [
        ("llama-3-8b", "h100", {}, "ideal"),
        ("llama-3-8b", "h100", ESTIMATE_ENGINE, "estimate"),
        ("mixtral-8x7b", "h100", {"tp": 2}, "ideal"),
        ("deepseek-v2-lite", "a100", {"w_bits": 8, "a_bits": 8, **ESTIMATE_ENGINE}, "estimate"),
        ("gemma-2-2b", "l4", {"flash_attention": False}, "ideal"),
    ],
)
def test_at_a_very_low_rate_each_request_is_the_single_analysis(model, hw, kwargs, basis):
    result = simulate(model, hw, rate=1e-3, prompt=300, gen=17, requests=3, basis=basis, **kwargs)
    r = rooflens.analyze(model, hw, prompt=300, gen=17, **kwargs)
    ttft, tpot = (r.ttft_s, r.tpot_s) if basis == "ideal" else (r.ttft_estimate_s, r.tpot_estimate_s)
    # On the estimate basis a served request also pays the fixed cost outside the device (API server,
    # streaming) before it reaches the engine: in TTFT and queue, never in TPOT.
    front = r.profile.request_overhead_s if basis == "estimate" else 0.0
    assert front > 0 or basis == "ideal"
    s = result.summary
    assert s["ttft"]["p50"] == pytest.approx(ttft + front, rel=1e-9)
    assert s["ttft"]["p99"] == pytest.approx(ttft + front, rel=1e-9)
    assert s["tpot"]["p50"] == pytest.approx(tpot, rel=1e-9)
    assert s["queue"]["p99"] == pytest.approx(front) and s["mean_batch"] == pytest.approx(1.0)
    assert not s["saturated"]


@pytest.mark.parametrize("basis", ["ideal", "estimate"])
def test_one_closed_loop_user_is_back_to_back_single_analyses(basis):
    # Concurrency 1: request k+1 is sent the instant request k finishes and finds the engine idle, so
    # each request's E2E is its own single analysis (TTFT + (gen - 1) x TPOT = total time), and the
    # run lasts the sum of them: N x the one total when every request has the same lengths.
    # On the estimate basis each request also reaches the engine the profile's request_overhead_s
    # after it is sent: E2E = that + the analysis's total; the run, N x (both).
    kw = {"basis": basis, **ESTIMATE_ENGINE}
    total = rooflens.analyze("llama-3-8b", "h100", prompt=300, gen=17, **ESTIMATE_ENGINE)
    front = total.profile.request_overhead_s if basis == "estimate" else 0.0
    one = front + (total.total_time_s if basis == "ideal" else total.total_estimate_s)
    fixed = simulate("llama-3-8b", "h100", concurrency=1, requests=5, prompt=300, gen=17, **kw)
    for r in fixed.requests:
        assert r.finished - r.arrival == pytest.approx(one, rel=1e-9)
    assert fixed.summary["duration_s"] == pytest.approx(5 * one, rel=1e-9)
    # Mixed lengths: each request still costs its own analysis; the run, their sum.
    mixed = simulate("llama-3-8b", "h100", concurrency=1, requests=4, prompt=300, gen=17,
                     random_range_ratio=0.5, seed=3, **kw)  # fmt: skip
    assert len({(r.prompt, r.gen) for r in mixed.requests}) > 1
    totals = []
    for r in mixed.requests:
        a = rooflens.analyze("llama-3-8b", "h100", prompt=r.prompt, gen=r.gen, **ESTIMATE_ENGINE)
        totals.append(front + (a.total_time_s if basis == "ideal" else a.total_estimate_s))
        assert r.finished - r.arrival == pytest.approx(totals[-1], rel=1e-9)
    assert mixed.summary["duration_s"] == pytest.approx(sum(totals), rel=1e-9)
    assert mixed.summary["mode"] == "closed" and mixed.summary["saturated"] is None


def _in_flight(requests) -> list[tuple[float, int]]:
    """(time, requests sent and not finished) after every instant at which something happens."""
    changes: dict[float, int] = {}
    for r in requests:
        changes[r.arrival] = changes.get(r.arrival, 0) + 1
        changes[r.finished] = changes.get(r.finished, 0) - 1
    count, out = 0, []
    for t in sorted(changes):
        count += changes[t]
        out.append((t, count))
    return out


def test_closed_loop_keeps_exactly_c_requests_in_flight_until_the_tail():
    c, n = 6, 40
    res = simulate("llama-3-8b", "h100", concurrency=c, requests=n, prompt=256, gen=32,
                   random_range_ratio=0.5, basis="ideal")  # fmt: skip
    reqs = res.requests
    assert sum(r.arrival == 0.0 for r in reqs) == c
    last_send = max(r.arrival for r in reqs)
    counts = _in_flight(reqs)
    # Until the last request is sent, every finish is matched by a send at the same instant: C in flight.
    assert all(k == c for t, k in counts if t <= last_send)
    # The tail: no more sends, the count only falls, to zero.
    tail = [k for t, k in counts if t > last_send]
    assert tail == sorted(tail, reverse=True) and tail[-1] == 0 and len(tail) == c
    # Each user's next request goes out when one finishes: sends after t=0 are finish times.
    finishes = sorted(r.finished for r in reqs)
    assert sorted(r.arrival for r in reqs)[c:] == finishes[: n - c]


def test_a_rate_with_a_concurrency_cap_sends_due_requests_as_slots_free():
    # vllm bench serve --request-rate R --max-concurrency C. s': one request alone (ideal basis:
    # 512-token prompt, 32 tokens out, llama-3-8b on an H100).
    run = dict(prompt=512, gen=32, requests=12, basis="ideal")
    one = simulate("llama-3-8b", "h100", concurrency=1, **run).requests[0]
    service = one.finished - one.arrival
    # A cap that never binds: a request due every 10 services finds the server idle, exactly as the
    # open loop at that rate (sends at the due times 0, 10 s', 20 s', ...).
    slow = 1 / (10 * service)
    capped = simulate("llama-3-8b", "h100", rate=slow, concurrency=2, arrival="constant", **run)
    opened = simulate("llama-3-8b", "h100", rate=slow, arrival="constant", **run)
    assert [(r.arrival, r.finished) for r in capped.requests] == [
        (r.arrival, r.finished) for r in opened.requests
    ]
    assert capped.summary["mode"] == "capped" and opened.summary["mode"] == "open"
    # A cap that always binds: a request due every half service, one slot. Request i is due at i s'/2,
    # before request i - 1 ends at i s', so it is sent then: one user's back-to-back requests. Its
    # latencies count from that send (as the tool's), so every E2E is one service, not a growing queue.
    fast = 2 / service
    bound = simulate("llama-3-8b", "h100", rate=fast, concurrency=1, arrival="constant", **run)
    loop = simulate("llama-3-8b", "h100", concurrency=1, **run)
    assert [t for r in bound.requests for t in (r.arrival, r.finished)] == pytest.approx(
        [t for r in loop.requests for t in (r.arrival, r.finished)], rel=1e-12
    )
    assert bound.summary["e2e"]["p99"] == pytest.approx(service, rel=1e-9)
    assert max(k for _, k in _in_flight(bound.requests)) == 1
    # Poisson arrivals at twice what 3 slots serve: never more than 3 in flight, and sends in order.
    poisson = simulate("llama-3-8b", "h100", rate=6 / service, concurrency=3, **run)
    assert max(k for _, k in _in_flight(poisson.requests)) == 3
    sends = [r.arrival for r in poisson.requests]
    assert sends == sorted(sends)


def test_throughput_per_device_and_per_user():
    res = simulate("llama-3-8b", "h100", concurrency=4, requests=24, prompt=200, gen=[1, 5, 9, 30],
                   tp=2, replicas=2, basis="ideal")  # fmt: skip
    s, reqs = res.summary, res.requests
    # Devices: tp 2 x pp 1 x ep 1 per instance, 2 instances = 4.
    assert s["devices"] == 4
    duration = max(r.finished for r in reqs) - min(r.arrival for r in reqs)
    assert s["duration_s"] == pytest.approx(duration, rel=1e-12)
    generated = sum(r.gen for r in reqs)
    assert s["output_tokens"] == generated and s["output_tokens_per_s"] == pytest.approx(generated / duration)
    assert s["output_tokens_per_s_per_device"] == pytest.approx(s["output_tokens_per_s"] / 4, rel=1e-12)
    prompts = sum(r.prompt for r in reqs)
    assert s["total_tokens_per_s"] == pytest.approx((prompts + generated) / duration)
    assert s["request_throughput"] == pytest.approx(24 / duration)
    # tok/s/user: the mean over requests of 1 / TPOT, TPOT = (e2e - ttft) / (tokens - 1); one-token
    # outputs have no TPOT and are left out, as vllm bench serve leaves them out.
    tpots = [(r.finished - r.first_token) / (r.gen - 1) for r in reqs if r.gen > 1]
    assert any(r.gen == 1 for r in reqs) and len(tpots) < len(reqs)
    assert s["tokens_per_s_per_user"] == pytest.approx(np.mean([1 / t for t in tpots]), rel=1e-12)
    assert s["tpot"]["mean"] == pytest.approx(np.mean(tpots), rel=1e-12)
    # ITL pools every gap of every request.
    gaps = [g for r in reqs for g in r.gaps]
    assert len(gaps) == sum(r.gen - 1 for r in reqs)
    assert s["itl"]["p95"] == pytest.approx(np.percentile(gaps, 95))


def test_random_range_ratio_is_vllms_and_reproducible():
    # vLLM's random dataset: uniform integers in [floor(L (1 - r)), ceil(L (1 + r))]. With L = 8 and
    # r = 0.5 prompts lie in [4, 12]; gen 4 -> [2, 6]. 400 draws over 9 values reach both ends.
    kw = dict(concurrency=64, requests=400, prompt=8, gen=4, random_range_ratio=0.5, basis="ideal")
    a = simulate("gpt2", "h100", seed=1, **kw).requests
    prompts, gens = [r.prompt for r in a], [r.gen for r in a]
    assert (min(prompts), max(prompts)) == (4, 12) and (min(gens), max(gens)) == (2, 6)
    assert set(prompts) == set(range(4, 13))
    again = simulate("gpt2", "h100", seed=1, **kw).requests
    assert [(r.prompt, r.gen) for r in again] == list(zip(prompts, gens, strict=True))
    other = simulate("gpt2", "h100", seed=2, **kw).requests
    assert [r.prompt for r in other] != prompts
    # L = 1000, r = 0.25: [750, 1250] exactly.
    wide = simulate("gpt2", "h100", concurrency=8, requests=60, prompt=1000, gen=2, random_range_ratio=0.25,
                    basis="ideal").requests  # fmt: skip
    assert all(750 <= r.prompt <= 1250 for r in wide)
    # Output lengths never drop to 0 (vLLM's floor of 1); a prompt that could is refused.
    tiny = simulate("gpt2", "h100", concurrency=4, requests=50, prompt=20, gen=1, random_range_ratio=0.9,
                    basis="ideal").requests  # fmt: skip
    assert min(r.gen for r in tiny) == 1 and max(r.gen for r in tiny) == 2
    with pytest.raises(RooflensError, match="can draw 0 tokens"):
        simulate("gpt2", "h100", rate=1, requests=2, prompt=1, random_range_ratio=0.5)


def test_saturation_is_judged_from_the_trend_not_the_run_length():
    # gpt2 on an H100 with at most 8 sequences per step completes about 2,600 such requests a second:
    # 5,000/s overloads it and 100/s does not, at 300 requests as at 3,000.
    kw = dict(
        prompt=128, gen=32, random_range_ratio=0.5, basis="ideal", scheduler=SchedulerConfig(max_num_seqs=8)
    )
    verdicts = {}
    for n in (300, 3000):
        for rate in (100, 5000):
            s = simulate("gpt2", "h100", rate=rate, requests=n, **kw).summary
            verdicts[n, rate] = s["saturated"]
            if rate == 5000:  # the backlog grows by what arrives less what completes
                assert s["backlog_growth_per_s"] > 0.3 * rate
            else:
                assert abs(s["backlog_growth_per_s"]) < 0.05 * rate
    assert verdicts == {(300, 100): False, (300, 5000): True, (3000, 100): False, (3000, 5000): True}


def test_one_load_gets_one_verdict_at_300_and_3000_requests():
    # Capacity by hand: gpt2 on an H100, at most 32 sequences per step (max_num_seqs=32), 64 output
    # tokens per request on average. A decode step of 32 sequences costs the analysis's TPOT at batch
    # 32, about 0.14 ms (mostly reading gpt2's 0.25 GB of weights at 3.35 TB/s, 74 us). A request needs
    # 64 steps and a step serves 32 of them: 32 / 64 = 0.5 completions per step, 0.5 / 0.14 ms, about
    # 3,600 requests/s (prompt chunks riding along lower the real ceiling a little).
    batch, gen = 32, 64
    step = rooflens.analyze("gpt2", "h100", batch=batch, prompt=128, gen=gen).tpot_s
    assert 0.1e-3 < step < 0.2e-3
    capacity = batch / (gen * step)
    kw = dict(
        prompt=128,
        gen=gen,
        random_range_ratio=0.5,
        basis="ideal",
        scheduler=SchedulerConfig(max_num_seqs=batch),
    )
    for share, seed, verdict in ((0.5, 0, False), (0.85, 4, False), (2.0, 0, True)):
        for n in (300, 3000):
            rate = share * capacity
            s = simulate("gpt2", "h100", rate=rate, requests=n, seed=seed, **kw).summary
            assert s["saturated"] is verdict, (share, n, s["backlog_growth_per_s"] / rate)
            if verdict:  # twice the capacity: completions lag far behind arrivals at either length
                assert s["achieved_rate"] < 0.6 * rate and s["backlog_growth_per_s"] > 0.3 * rate
            else:
                assert s["achieved_rate"] == pytest.approx(rate, rel=0.2)
            if (share, n) == (0.85, 300):
                # 150 arrivals in the judged half bunch by chance: the backlog's trend alone is 15% of
                # the rate (the old verdict: SATURATED), but that rise over the window is within 3
                # standard deviations of the count of requests in a steady system.
                assert s["backlog_growth_per_s"] > SATURATION_SHARE * rate


def test_saturation_needs_a_trend_above_the_noise_of_the_count():
    # 1,000 requests at 100/s, evenly; each spends 0.1 s in the engine: 10 in the system, always.
    arrivals = np.arange(1000) / 100
    assert not saturated(arrivals, arrivals, arrivals + 0.1, rate=100)
    # Served at 50/s instead (each waits in a queue, then 0.1 s in the engine): the backlog grows by
    # 50/s, half the rate; over the 5 s judged it rises by 250, against 3 sqrt(2 x 100 x 0.1) = 13.4.
    finished = np.arange(1000) / 50 + 0.1
    assert saturated(arrivals, finished - 0.1, finished, rate=100)
    assert backlog_growth(arrivals, finished) == pytest.approx(50, rel=0.02)
    # Ten arrivals, each staying 1 s in the engine: none finishes while the others arrive, so the
    # backlog grows at about the full 100/s, yet over the 0.04 s judged it rises by 4, far below the noise of
    # a steady count, 3 sqrt(2 x 100 x 1) = 42: steady, for lack of evidence.
    few = arrivals[:10]
    assert backlog_growth(few, few * 2 + 1) == pytest.approx(100, rel=0.1)  # a staircase of 5 steps
    assert not saturated(few, few * 2, few * 2 + 1, rate=100)


def test_load_raises_the_batch_until_the_server_saturates():
    kw = dict(prompt=512, gen=128, requests=300, random_range_ratio=0.5, basis="ideal")
    light = simulate("llama-3-8b", "h100", rate=1, **kw).summary
    busy = simulate("llama-3-8b", "h100", rate=10, **kw).summary
    over = simulate("llama-3-8b", "h100", rate=200, **kw).summary
    assert light["mean_batch"] < busy["mean_batch"] < over["mean_batch"] <= 1024
    assert not light["saturated"] and not busy["saturated"] and over["saturated"]
    assert light["output_tokens_per_s"] < busy["output_tokens_per_s"] < over["output_tokens_per_s"]
    assert over["queue"]["p99"] > 10 * busy["queue"]["p99"]


def test_engine_names_pick_the_scheduler_defaults():
    s = simulate("llama-3-8b", "h100", engine="vllm", basis="ideal", rate=1, requests=3, gen=4).summary
    vllm = get_engine("vllm").scheduler
    assert s["engine"] == "vllm" and s["scheduler"]["max_num_seqs"] == 1024 == vllm["max_num_seqs"]
    # engines.yaml, as it stands (vLLM's memory share is of all memory)
    assert s["scheduler"] == {
        **vllm,
        "prefix_cache_hit_rate": 0.0,
        "memory_share_of": "total",
        "recv_interval": 1,
    }
    assert (s["scheduler"]["max_num_batched_tokens"], s["scheduler"]["block_size"]) == (8192, 16)
    assert s["scheduler"]["cuda_graph_max_batch"] == 512
    # Aliases name the same engine; SGLang's pages hold one token.
    assert SchedulerConfig.for_engine("trtllm") == SchedulerConfig.for_engine("tensorrt-llm")
    assert SchedulerConfig.for_engine("sglang").block_size == 1
    # No engine named: the device's default engine (vLLM on NVIDIA), else the plain defaults.
    assert scheduler_defaults("h100") == SchedulerConfig.for_engine("vllm")
    assert scheduler_defaults("tpu-v5e") == SchedulerConfig()
    # scheduler= overrides the engine's defaults; the engine still names the profile.
    small = replace(SchedulerConfig.for_engine("vllm"), max_num_seqs=2)
    o = simulate("llama-3-8b", "h100", engine="vllm", scheduler=small, basis="ideal", concurrency=6,
                 requests=12, gen=8).summary  # fmt: skip
    assert o["scheduler"]["max_num_seqs"] == 2 and o["mean_batch"] <= 2
    with pytest.raises(RooflensError, match="unknown engine 'nope'; known engines: vllm, sglang"):
        simulate("gpt2", "h100", engine="nope", rate=1, requests=2)
    # The engine picks the efficiency profile too: llama.cpp's and TensorRT-LLM's steps differ.
    trt = simulate("llama-3-8b", "h100", engine="tensorrt-llm", rate=1e-3, requests=1, gen=4).summary
    cpp = simulate("llama-3-8b", "h100", engine="llama.cpp-cuda", rate=1e-3, requests=1, gen=4).summary
    est = rooflens.analyze("llama-3-8b", "h100", prompt=1024, gen=4, engine="llama.cpp-cuda")
    front = est.profile.request_overhead_s  # the served request's cost outside the device
    assert cpp["ttft"]["p50"] == pytest.approx(est.ttft_estimate_s + front, rel=1e-9) != trt["ttft"]["p50"]


def test_requests_are_taken_in_every_recv_interval_decode_steps():
    # Request 0 runs alone: step 1 is its prompt (a prompt step lets the next step take requests in),
    # step 2 takes them in, then every R decode steps: steps 2, 2 + R, 2 + 2R, ... With R = 5 a
    # request arriving during step 4 is taken in at the start of step 7, the end of step 6, when
    # request 0 emits its 6th token; with R = 1 at the end of step 4.
    kw = dict(prompt=64, gen=40, requests=2, arrival="constant", engine="sglang", basis="ideal")
    alone = simulate("llama-3.1-8b", "h100-sxm", rate=1e-3, **kw).requests[0]
    tokens = alone.first_token + np.concatenate([[0.0], np.cumsum(alone.gaps)])
    rate = 1 / ((tokens[2] + tokens[3]) / 2)  # request 1 arrives between tokens 3 and 4: in step 4
    defaults = scheduler_defaults("h100-sxm", "sglang")
    # R = 3: intakes at steps 2, 5, 8: the start of step 5, at request 0's 4th token.
    for r_interval, token in ((5, 6), (1, 4), (3, 4)):
        sched = replace(defaults, recv_interval=r_interval)
        _, r1 = simulate("llama-3.1-8b", "h100-sxm", rate=rate, scheduler=sched, **kw).requests
        assert r1.admitted == pytest.approx(tokens[token - 1]), r_interval
        assert r1.admitted - r1.arrival > 0
    with pytest.raises(RooflensError, match="recv_interval must be in"):
        SchedulerConfig(recv_interval=0)


def test_cuda_graphs_pad_decode_batches_to_the_captured_sizes():
    # vLLM's capture list: 1, 2, 4, multiples of 8 below 256, then multiples of 16.
    sizes = cuda_graph_sizes(512)
    assert sizes[:6] == [1, 2, 4, 8, 16, 24] and 248 in sizes and 256 in sizes and 264 not in sizes
    assert sizes[-2:] == [496, 512] and cuda_graph_sizes(0) == [] and cuda_graph_sizes(6) == [1, 2, 4]
    graphs = SchedulerConfig(cuda_graph_max_batch=512)
    assert [graphs.graph_batch(b) for b in (1, 3, 5, 9, 250, 257, 513)] == [1, 4, 8, 16, 256, 272, 513]
    assert SchedulerConfig(cuda_graph_max_batch=0).graph_batch(3) == 3
    # Three equal requests decoding together: each decode step of 3 runs the graph of 4, so its
    # context-free operators cost what 4 rows cost; attention is the 3 real sequences'.
    kw = dict(concurrency=3, requests=3, prompt=64, gen=4, basis="ideal")
    padded = simulate("llama-3-8b", "h100", scheduler=graphs, **kw).requests[0]
    plain = simulate("llama-3-8b", "h100", scheduler=SchedulerConfig(), **kw).requests[0]
    s = make_settings(batch=1, prompt=64, gen=4, estimate=False)
    cost = StepCost(rooflens.load_model("llama-3-8b"), rooflens.load_hardware("h100"), s, "ideal", 70)
    contexts = np.full(3, 64 + 1)  # the first decode step: every sequence holds its prompt and a token
    attention = cost.decode_context(contexts)
    assert padded.gaps[0] == pytest.approx(cost.dense(4, 4, "decode") + attention, rel=1e-12)
    assert plain.gaps[0] == pytest.approx(cost.dense(3, 3, "decode") + attention, rel=1e-12)
    assert padded.gaps[0] > plain.gaps[0]


def test_kv_memory_limits_concurrency_and_preempts():
    engine = SchedulerConfig(gpu_memory_utilization=0.3)
    s = simulate("llama-3-8b", "h100", rate=50, prompt=2048, gen=512, requests=120, scheduler=engine,
                 basis="ideal").summary  # fmt: skip
    assert s["peak_kv_use"] <= 1.0 and s["preemptions"] > 0
    per_token = kv_cache_bytes(rooflens.load_model("llama-3-8b"), rooflens.make_settings().precision,
                               CacheShape(1, 1, 0))  # fmt: skip
    capacity_tokens = s["kv_blocks_per_instance"] * 16
    assert capacity_tokens * per_token <= 0.3 * rooflens.load_hardware("h100").memory_bytes
    assert s["mean_batch"] <= capacity_tokens / 2048
    with pytest.raises(RooflensError, match="leaves no room for a KV cache"):
        simulate("llama-3-70b", "h100", rate=1, requests=2, basis="ideal")


def test_prefix_cache_and_chunked_prefill():
    kw = dict(rate=8, prompt=2048, gen=256, requests=300, random_range_ratio=0.3, basis="ideal")
    vllm = SchedulerConfig.for_engine("vllm")
    plain = simulate("llama-3-8b", "h100", **kw).summary
    cached = simulate("llama-3-8b", "h100", scheduler=replace(vllm, prefix_cache_hit_rate=0.5), **kw).summary
    assert cached["ttft"]["p50"] < plain["ttft"]["p50"] and cached["tpot"]["p50"] < plain["tpot"]["p50"]
    # With a 512-token budget chunked prefill spreads a 2,048-token prompt over four steps that carry
    # the decodes along; prefilled whole, the prompt makes one long step: the worst gaps between tokens
    # grow.
    small = replace(vllm, max_num_batched_tokens=512)
    chunked = simulate("llama-3-8b", "h100", scheduler=small, **kw).summary
    whole = simulate("llama-3-8b", "h100", scheduler=replace(small, chunked_prefill=False), **kw).summary
    assert whole["itl"]["p99"] > 1.5 * chunked["itl"]["p99"]
    # Prompts that run in steps of their own (SGLang's default) stall every running decode: a decode
    # waits out each prompt's steps, where vLLM's mixed steps carry it along.
    alone = simulate("llama-3-8b", "h100", scheduler=replace(vllm, mixed_steps=False), **kw).summary
    assert alone["itl"]["p99"] > 1.5 * plain["itl"]["p99"]
    assert not SchedulerConfig.for_engine("sglang").mixed_steps and vllm.mixed_steps
    lone = simulate("llama-3-8b", "h100", rate=1e-3, prompt=2048, gen=2, requests=1, basis="ideal",
                    scheduler=SchedulerConfig(prefix_cache_hit_rate=0.5)).summary  # fmt: skip
    assert lone["ttft"]["p50"] < 0.6 * rooflens.analyze("llama-3-8b", "h100", prompt=2048, gen=2).ttft_s


def test_disaggregation_pays_the_kv_transfer():
    s = simulate("llama-3-8b", "h100", rate=1e-3, prompt=1000, gen=3, requests=2, disaggregate=(1, 1),
                 basis="ideal")  # fmt: skip
    r = rooflens.analyze("llama-3-8b", "h100", prompt=1000, gen=3)
    hw = rooflens.load_hardware("h100")
    per_token = kv_cache_bytes(r.model, r.settings.precision, CacheShape(1, 1, 0))
    transfer = 1000 * per_token / hw.network.bandwidth + hw.network.latency_s
    assert s.summary["ttft"]["p50"] == pytest.approx(r.ttft_s, rel=1e-9)
    first_gap = s.requests[0].gaps[0]
    step = r.decode.step_time_s[0]
    assert first_gap == pytest.approx(transfer + step, rel=1e-9)
    assert s.summary["devices"] == 2  # one prefill and one decode instance of one device each


def test_request_longer_than_kv_cache_is_refused_before_it_runs():
    """Llama-3-8B keeps 32 layers x 8 KV heads x 128 x 2 (K and V) x 2 bytes = 128 KiB per token; an
    H100's 80 GB less 16 GB of weights hold under 500,000 tokens, so a 10**6-token request cannot fit.
    The refusal names the check made before the run (the run itself would decode ~450,000 steps first)."""
    with pytest.raises(RooflensError, match="does not fit one instance's KV cache"):
        simulate("llama-3-8b", "h100", concurrency=1, requests=1, prompt=16, gen=1_000_000)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rate": 0}, "rate takes requests per second from 1.15741e-05 \\(one a day\\) to 1e\\+06, got 0"),
        ({"rate": float("inf")}, "rate takes requests per second from"),
        ({"rate": float("nan")}, "rate takes requests per second from"),
        ({"rate": 5e-324}, "got 5e-324"),  # a denormal: arrival gaps would be infinite
        ({"rate": 1e7}, "rate takes requests per second from"),
        ({"rate": None}, "give rate .* or both"),
        ({"rate": None, "concurrency": 0}, "concurrency takes a whole number from 1 to 20,000"),
        ({"rate": None, "concurrency": 20_001}, "concurrency takes a whole number"),
        ({"rate": None, "concurrency": 2.5}, "concurrency takes a whole number"),
        ({"rate": None, "concurrency": 2, "arrival": "constant"}, "without rate leave it out"),
        ({"requests": 0}, "requests takes a whole number from 1 to 20,000"),
        ({"requests": 20_001}, "requests takes a whole number"),
        ({"requests": 10**30}, "requests takes a whole number"),
        ({"seed": -1}, "seed takes a whole number from 0"),
        # 20,000 x 256 = 5,120,000 generated tokens: past the 4,000,000 a run may take
        ({"requests": 20_000, "gen": 256}, "5,120,000 tokens to simulate; a run takes at most 4,000,000"),
        ({"replicas": 10**9}, "replicas takes a whole number from 1 to 1,024"),
        ({"replicas": 0}, "replicas takes a whole number from 1 to 1,024"),
        ({"engine": SchedulerConfig()}, "engine takes an engine name"),
        ({"scheduler": "vllm"}, "scheduler takes a rooflens.serving.SchedulerConfig"),
        ({"draft_model": "llama-3.2-1b"}, "does not follow draft_model"),
        ({"batch": 4}, "sets these per request"),
        ({"disaggregate": (0, 1)}, "disaggregate takes"),
        ({"disaggregate": (1, 1), "replicas": 4}, r"replicas \(4\) and disaggregate .* not both"),
        ({"rate": None, "concurrency": 8, "requests": 3}, r"give at least 8 requests \(16 or more"),
        ({"prompt": 0}, "prompt must be at least 1"),
        ({"random_range_ratio": 1.0}, r"random_range_ratio must be in \[0, 1\)"),
        ({"random_range_ratio": -0.1}, r"random_range_ratio must be in \[0, 1\)"),
        ({"gen": [4, 8], "random_range_ratio": 0.2}, "with length samples leave it 0"),
        ({"basis": "best"}, "basis takes 'ideal' or 'estimate'"),
    ],
)
def test_bad_simulations(kwargs, message):
    args = {"rate": 1.0, "requests": 2, **kwargs}
    with pytest.raises(RooflensError, match=message):
        simulate("gpt2", "h100", **args)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"gpu_memory_utilization": 1.5}, "gpu_memory_utilization must be in"),
        ({"max_num_seqs": 0}, "must be at least 1"),
        ({"max_num_seqs": 2.5}, "max_num_seqs takes a whole number"),
        ({"cuda_graph_max_batch": -1}, "cuda_graph_max_batch must be in"),
        ({"chunked_prefill": "yes"}, "chunked_prefill takes True or False"),
        ({"mixed_steps": 1}, "mixed_steps takes True or False"),
    ],
)
def test_bad_scheduler_configs(kwargs, message):
    with pytest.raises(RooflensError, match=message):
        SchedulerConfig(**kwargs)


def test_scheduler_values_are_read_by_field_type():
    # One reader for engines.yaml's typed values and a published row's text: whole numbers, true or
    # false, a word, else a number (a fraction's range is SchedulerConfig's to check, above).
    from rooflens.serving import scheduler_value

    assert scheduler_value("max_num_seqs", 1024) == 1024 and scheduler_value("max_num_seqs", "256") == 256
    assert scheduler_value("mixed_steps", True) is True
    assert scheduler_value("chunked_prefill", "false") is False
    assert scheduler_value("gpu_memory_utilization", "0.85") == 0.85
    assert scheduler_value("gpu_memory_utilization", 0.9) == 0.9
    assert scheduler_value("memory_share_of", "free") == "free"
    for name, value, kind in (
        ("max_num_seqs", "2.5", "a whole number"), ("max_num_seqs", True, "a whole number"),
        ("chunked_prefill", 1, "true or false"), ("chunked_prefill", "yes", "true or false"),
        ("gpu_memory_utilization", "most", "a number"), ("gpu_memory_utilization", True, "a number"),
    ):  # fmt: skip
        with pytest.raises(RooflensError, match=f"{name} takes {kind}"):
            scheduler_value(name, value)


def test_sweep_concurrency():
    rows = sweep_concurrency("llama-3-8b", "h100", [1, 4, 16], requests=32, prompt=256, gen=32,
                             engine="vllm", basis="ideal")  # fmt: skip
    assert [r["concurrency"] for r in rows] == [1, 4, 16]
    per_device = [r["output_tokens_per_s_per_device"] for r in rows]
    per_user = [r["tokens_per_s_per_user"] for r in rows]
    # More users: more tokens per device, fewer per user (the throughput-interactivity trade).
    assert per_device == sorted(per_device) and per_user == sorted(per_user, reverse=True)
    with pytest.raises(RooflensError, match="leave out rate"):
        sweep_concurrency("gpt2", "h100", [1], rate=2)
    with pytest.raises(RooflensError, match="concurrency takes a whole number"):
        sweep_concurrency("gpt2", "h100", [1, 0])
    with pytest.raises(RooflensError, match="takes 1 to 64 values"):
        sweep_concurrency("gpt2", "h100", [])


def test_cli_simulate(tmp_path):
    res = CliRunner().invoke(app, ["simulate", "llama-3-8b", "-H", "h100", "-r", "4", "-n", "50", "-g", "64",
                                   "--engine", "tensorrt-llm"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "Latency under load" in res.output and "arrival to first token" in res.output
    assert "scheduler of tensorrt-llm" in res.output
    data = json.loads(
        CliRunner().invoke(app, ["simulate", "gpt2", "-n", "20", "-f", "json", "--ideal"]).output
    )
    assert {"ttft", "tpot", "itl", "e2e", "queue", "mean_batch", "saturated"} <= set(data)
    assert set(data["ttft"]) == {"mean", "p50", "p90", "p95", "p99"} and data["offered_rate"] == 4.0
    closed = CliRunner().invoke(app, ["simulate", "gpt2", "-c", "3", "-n", "9", "--ideal",
                                      "--max-num-seqs", "2", "-f", "json"])  # fmt: skip
    closed_data = json.loads(closed.output)
    assert closed_data["concurrency"] == 3 and closed_data["scheduler"]["max_num_seqs"] == 2
    assert closed_data["scheduler"]["max_num_batched_tokens"] == 8192  # the rest: vLLM's, H100's default
    capped = CliRunner().invoke(app, ["simulate", "gpt2", "-r", "50", "-c", "3", "-n", "12", "--ideal"])
    assert capped.exit_code == 0 and "at most 3 in flight" in capped.output, capped.output
    lone = CliRunner().invoke(app, ["simulate", "gpt2", "-c", "3", "--constant"])
    assert lone.exit_code != 0 and "--constant spaces arrivals at a rate" in lone.output
    bad = CliRunner().invoke(app, ["simulate", "gpt2", "--disaggregate", "2"])
    assert bad.exit_code == 2 and "P:D" in bad.output
    # --recv-interval reaches the scheduler (SGLang's --scheduler-recv-interval): requests of uneven
    # lengths, which finish apart, now wait for the next intake; 0 is refused.
    every = ["simulate", "gpt2", "-c", "4", "-n", "40", "-g", "64", "--random-range-ratio", "0.5",
             "--ideal", "-f", "json", "--engine", "sglang"]  # fmt: skip
    lazy = json.loads(CliRunner().invoke(app, [*every, "--recv-interval", "20"]).output)
    eager = json.loads(CliRunner().invoke(app, every).output)
    assert lazy["scheduler"]["recv_interval"] == 20 and eager["scheduler"]["recv_interval"] == 1
    assert lazy["queue"]["mean"] > eager["queue"]["mean"]
    zero = CliRunner().invoke(app, [*every, "--recv-interval", "0"])
    assert zero.exit_code != 0 and "recv_interval must be in" in zero.output
    # --mixed-steps overrides SGLang's default (prompt steps alone); both forms at once are refused.
    assert not eager["scheduler"]["mixed_steps"]
    mixed = json.loads(CliRunner().invoke(app, [*every, "--mixed-steps"]).output)
    assert mixed["scheduler"]["mixed_steps"] and mixed["itl"]["p99"] < eager["itl"]["p99"]
    both = CliRunner().invoke(app, [*every, "--mixed-steps", "--no-mixed-steps"])
    assert both.exit_code != 0 and "not both" in both.output
    vllm = [*every[:-2], "--engine", "vllm", "--no-mixed-steps"]
    assert not json.loads(CliRunner().invoke(app, vllm).output)["scheduler"]["mixed_steps"]


def test_cli_concurrency_sweep(tmp_path):
    out = tmp_path / "sweep.html"
    args = ["simulate", "llama-3-8b", "-H", "h100", "--engine", "vllm", "--ideal", "-n", "24", "-g", "16",
            "--sweep", "concurrency=1,2,4,8"]  # fmt: skip
    res = CliRunner().invoke(app, [*args, "--plot", str(out)])
    assert res.exit_code == 0, res.output
    rows = [line for line in res.output.splitlines() if re.match(r"^│\s+\d+ │", line)]
    assert [int(r.split("│")[1]) for r in rows] == [1, 2, 4, 8]
    html = out.read_text()
    assert out.stat().st_size > 1_000_000 and "C=8" in html  # plotly.js inline: no CDN needed
    assert '<script src="https://cdn' not in html
    data = json.loads(CliRunner().invoke(app, [*args, "-f", "json"]).output)
    assert [d["concurrency"] for d in data] == [1, 2, 4, 8]
    for text, message in [
        ("concurrency=1,x", "--sweep concurrency takes comma-separated integers"),
        ("rate=1,2", "--sweep takes concurrency=LIST"),
        ("concurrency=0", "concurrency takes a whole number"),
    ]:
        bad = CliRunner().invoke(app, ["simulate", "gpt2", "--ideal", "--sweep", text])
        assert bad.exit_code == 2 and message in bad.output and "Traceback" not in bad.output, bad.output
    both = CliRunner().invoke(app, ["simulate", "gpt2", "--sweep", "concurrency=1", "-r", "2"])
    assert both.exit_code == 2 and "leave out --rate" in both.output
    lone_plot = CliRunner().invoke(app, ["simulate", "gpt2", "--ideal", "--plot", str(out)])
    assert lone_plot.exit_code == 2 and "add --sweep" in lone_plot.output


def test_serving_sweep_figure_shows_the_sweeps_numbers():
    from rooflens import plots

    rows = sweep_concurrency("gpt2", "h100", [1, 2, 4], requests=8, prompt=64, gen=8, basis="ideal")
    fig = plots.serving_sweep(rows)
    (trace,) = fig.data
    assert list(trace.x) == [r["tokens_per_s_per_user"] for r in rows]
    assert list(trace.y) == [r["output_tokens_per_s_per_device"] for r in rows]
    assert list(trace.text) == ["C=1", "C=2", "C=4"]


@settings(max_examples=25, deadline=None)
@given(
    c=st.integers(1, 6),
    n=st.integers(1, 12),
    prompt=st.integers(8, 64),
    gen=st.integers(1, 12),
    ratio=st.sampled_from([0.0, 0.5]),
    tp=st.sampled_from([1, 2]),
)
def test_throughput_and_percentile_invariants(c, n, prompt, gen, ratio, tp):
    n = max(n, c)  # each user sends at least one request
    s = simulate("gpt2", "h100", concurrency=c, requests=n, prompt=prompt, gen=gen, random_range_ratio=ratio,
                 tp=tp, basis="ideal").summary  # fmt: skip
    assert s["devices"] == tp
    assert s["output_tokens_per_s_per_device"] * s["devices"] == pytest.approx(
        s["output_tokens_per_s"], rel=1e-12
    )
    for key in ("ttft", "tpot", "itl", "e2e", "queue"):
        v = s[key]
        if v["p50"] is None:
            continue
        assert v["p50"] <= v["p90"] <= v["p95"] <= v["p99"]


def test_concurrency_needs_as_many_requests():
    with pytest.raises(RooflensError, match="concurrency 64 needs at least as many requests"):
        simulate("llama-3-8b", "h100", concurrency=64, requests=4, basis="ideal")


def test_engine_memory_share_and_smaller_gpu_defaults():
    # vLLM below 70 GiB (an L40S's 48 GB) takes its smaller server defaults: 256 sequences, 2048 tokens.
    small, large = scheduler_defaults("l40s", "vllm"), scheduler_defaults("h100", "vllm")
    assert (small.max_num_seqs, small.max_num_batched_tokens) == (256, 2048)
    assert (large.max_num_seqs, large.max_num_batched_tokens) == (1024, 8192)
    # TensorRT-LLM's 0.9 is a share of what the weights leave free; vLLM's of all memory:
    # 80 GB device, 20 GB used -> 0.9 x 60 = 54 GB against 0.9 x 80 - 20 = 52 GB.
    from rooflens.serving import kv_room

    trt = scheduler_defaults("h100", "tensorrt-llm")
    assert trt.memory_share_of == "free" and large.memory_share_of == "total"
    assert kv_room(80e9, 20e9, trt) == pytest.approx(54e9)
    assert kv_room(80e9, 20e9, large) == pytest.approx(52e9)


def test_a_run_counts_its_work_and_stops_past_a_budget():
    """The work of a run, by hand: a closed loop of 1 user, 10 requests of 1,024 + 20 tokens. Each
    request takes 20 steps of one sequence (its prompt, whose step samples the first token, then 19
    decode steps): 200 x (STEP_WORK 10 + 1) = 2,200. Step times built once: the prompt step and the
    one-sequence decode step (2 x BUILD_WORK = 2,000), the prompt chunk's attention (1,000 / 3) and
    the decode table of one sequence over contexts 1..1,045 (1,000 + 1,045 / 5 = 1,209)."""
    from rooflens.serving import BUILD_WORK, STEP_WORK, sweep_concurrency

    run = simulate("llama-3-8b", "h100-sxm", concurrency=1, requests=10, gen=20)
    assert (STEP_WORK, BUILD_WORK) == (10, 1000)
    assert run.work == pytest.approx(2200 + 2000 + 1000 / 3 + 1000 + 1045 / 5)
    # A budget above it changes nothing; below it, the run is refused, saying where it stopped.
    same = simulate("llama-3-8b", "h100-sxm", concurrency=1, requests=10, gen=20, max_work=run.work)
    assert same.summary == run.summary
    with pytest.raises(
        RooflensError, match=r"more than the 5,000 units of work allowed per run \(\d+ engine"
    ):
        simulate("llama-3-8b", "h100-sxm", concurrency=1, requests=10, gen=20, max_work=5000)
    # A sweep shares one budget among its points, in order.
    points = [simulate("llama-3-8b", "h100-sxm", concurrency=c, requests=8, gen=20).work for c in (1, 2)]
    kw = dict(requests=8, gen=20)
    assert len(sweep_concurrency("llama-3-8b", "h100-sxm", [1, 2], max_work=sum(points), **kw)) == 2
    with pytest.raises(RooflensError, match="units of work allowed"):
        sweep_concurrency("llama-3-8b", "h100-sxm", [1, 2], max_work=sum(points) - 1, **kw)


def test_simulate_csv_is_one_row_per_request_or_per_point():
    """--format csv: a run's requests, in arrival order, whose TTFTs average to the summary's mean;
    a sweep's points, one row each with the summary flattened (ttft.p50 as ttft_p50)."""
    import csv
    import io

    args = ["simulate", "llama-3-8b", "--requests", "12", "--gen", "16", "--rate", "2"]
    rows = list(csv.DictReader(io.StringIO(CliRunner().invoke(app, [*args, "-f", "csv"]).output)))
    summary = json.loads(CliRunner().invoke(app, [*args, "-f", "json"]).output)
    assert len(rows) == 12 and [float(r["arrival_s"]) for r in rows] == sorted(
        float(r["arrival_s"]) for r in rows
    )
    assert np.mean([float(r["ttft_s"]) for r in rows]) == pytest.approx(summary["ttft"]["mean"])
    assert np.mean([float(r["tpot_s"]) for r in rows]) == pytest.approx(summary["tpot"]["mean"])
    assert all(float(r["e2e_s"]) > float(r["ttft_s"]) > 0 for r in rows)
    sweep = ["simulate", "llama-3-8b", "--sweep", "concurrency=1,2", "--requests", "8", "--gen", "16"]
    points = list(csv.DictReader(io.StringIO(CliRunner().invoke(app, [*sweep, "-f", "csv"]).output)))
    assert [p["concurrency"] for p in points] == ["1", "2"] and "ttft_p50" in points[0]


def test_a_sweep_checks_every_point_before_the_first_runs(monkeypatch):
    """A concurrency above the requests per point is refused before any point is simulated (it was
    found only when the sweep reached it, 10 s in)."""
    import rooflens.serving

    def never(*args, **kwargs):
        raise AssertionError("no point should run")

    monkeypatch.setattr(rooflens.serving, "simulate", never)
    with pytest.raises(RooflensError, match=r"concurrency 512 needs at least as many requests \(got 500\)"):
        sweep_concurrency("llama-3-8b", "h100", [1, 2, 512, 1024])
