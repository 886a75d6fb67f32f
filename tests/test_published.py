"""Published measurements: the dataset, the split discipline, the fit, and the accuracy floors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rooflens.cli import app
from rooflens.errors import RooflensError
from rooflens.hardware.efficiency import EfficiencyProfile
from rooflens.measure import published as pub

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def rows():
    return pub.load_rows(ROOT / "validation" / "published.csv")


RESERVED = (
    "LLM-Inference-Bench",
    "lmdeploy",
    "mlperf",
    "dstack",
    "benchmark_vllm_060",
    "buildkite",
    "nightly-benchmarks",  # vLLM's nightly CI benchmark results (a nightly docker image is not that)
    "nightly benchmark",
    "scaling-ai-inference-performance-with-vllm-on-amd-instinct-mi355x",
)


def test_dataset_size_coverage_and_sources(rows):
    assert len(rows) >= 800
    assert len({r.source.split(" (")[0] for r in rows}) >= 12
    engines = {r.engine for r in rows}
    assert {"vllm", "sglang", "tensorrt-llm", "llama.cpp-cuda", "llama.cpp-metal", "mlx"} <= engines
    assert {"NVIDIA", "AMD", "Apple"} <= {pub.vendor(r) for r in rows}
    assert {"static", "offline", "serving"} == {r.mode for r in rows}
    assert {"deepseek-r1", "mixtral-8x7b", "llama-3.1-405b"} <= {r.model for r in rows}  # MLA, MoE, dense
    assert {"FP8", "NVFP4", "Q4_0", "Q8_0"} <= {r.precision for r in rows}
    assert all(r.source.strip() and r.value > 0 for r in rows)
    assert len({r.id for r in rows}) == len(rows)
    assert sum(r.split == "report" for r in rows) >= 300
    # Sources reserved for independent checks never enter the data.
    text = " ".join(f"{r.source} {r.notes}" for r in rows).lower()
    assert not [name for name in RESERVED if name.lower() in text]


def test_rows_map_to_the_time_they_measure(rows):
    pp = next(r for r in rows if r.metric == "prefill_tokens_per_s")
    assert pp.measured_time() == pytest.approx(pp.batch * pp.prompt / pp.value)
    assert pub.analyse_row(pp, profile=None).settings.gen == 1
    tg = next(r for r in rows if r.metric == "decode_tokens_per_s")
    assert tg.measured_time() == pytest.approx(tg.batch / tg.value)
    assert pub.analyse_row(tg, profile=None).settings.gen == tg.gen + 1  # gen decode steps after prefill
    q4 = next(r for r in rows if r.precision == "Q4_0" and r.engine == "llama.cpp-cuda")
    assert "a_bits" not in q4.base_settings()  # the row says the format; the engine's kernels ...
    assert pub.analyse_row(q4, profile=None).settings.a_bits == 8  # ... add MMQ's int8 math


def _serving(**kw) -> pub.PublishedRow:
    base = dict(
        id="X1", split="report", engine="vllm", hardware="h100-sxm", devices=2, parallel="tp2",
        model="llama-3-8b", precision="BF16", mode="serving", concurrency=8, prompt=1000, gen=101,
        flash_attention="", metric="output_tokens_per_s", value=500.0, source="synthetic",
    )  # fmt: skip
    return pub.PublishedRow(**{**base, **kw})


def test_serving_rows_are_the_steady_state_cycle():
    # C = 8 users, gen 101, 2 devices. Output tokens/s per device 500 -> the cycle of one request:
    # C x gen / (500 x 2) = 8 x 101 / 1000 = 0.808 s; measured_time() is that cycle over C: 0.101 s,
    # compared with (prefill of the 8 prompts + 100 decode steps of 8) / 8.
    row = _serving()
    assert row.measured_time() * pub.concurrency(row) == pytest.approx(8 * 101 / 1000)
    assert pub._weights(row, 100) == (1 / 8, 1 / 8, 0.0)
    # TTFT: half a decode step's wait, then the pass that carries the prompt (first_pass, below).
    assert pub._weights(_serving(metric="ttft_s", statistic="median"), 100) == (0.0, 0.5 / 100, 1.0)
    # A lone user (C = 1) finds no batch running: its TTFT is its prompt's prefill, and its TPOT the
    # decode phase over gen - 1 = 100 tokens.
    assert pub._weights(_serving(metric="ttft_s", statistic="median", concurrency=1), 100) == (0.0, 0.0, 1.0)
    lone = pub._weights(_serving(metric="tpot_s", statistic="median", concurrency=1), 100)
    assert lone == pytest.approx((1 / 100, 1 / 100, -1 / 100))
    # TPOT = (E2E - TTFT) / (gen - 1) = (P + D - P1 - 0.5 D / 100) / 100.
    w = pub._weights(_serving(metric="tpot_s", statistic="mean"), 100)
    assert w == pytest.approx((1 / 100, (1 - 0.5 / 100) / 100, -1 / 100))
    # The median ITL is a decode-only step of the running batch (prompt chunks make the tail); the
    # mean ITL is the TPOT.
    assert pub._weights(_serving(metric="itl_s", statistic="median"), 100) == (0.0, 1 / 100, 0.0)
    assert pub._weights(_serving(metric="itl_s", statistic="mean"), 100) == pytest.approx(w)
    # Rates, tails and offline latencies are kept but not predicted.
    assert not _serving(concurrency=None, request_rate=4.0).predicted
    assert not _serving(metric="ttft_s", statistic="p99").predicted
    assert not _serving(mode="offline", concurrency=None, metric="ttft_s").predicted
    assert _serving(mode="offline", concurrency=None).predicted
    # An offline run of no more requests than its batch limit is one wave, not a steady state: kept,
    # not predicted. More requests than the limit, or requests unstated: the steady state.
    assert not _serving(mode="offline", concurrency=1000, requests=1000).predicted
    assert _serving(mode="offline", concurrency=256, requests=1000).predicted
    assert _serving(mode="offline", concurrency=256).predicted


def test_a_served_prompt_rides_in_one_pass_with_the_running_decodes():
    # vLLM mixes prompt chunks into decode steps: at C = 8 the pass that yields a request's first token
    # carries its 1,000-token prompt and the other 7 users' next tokens, one pass of 1,007 tokens.
    row = _serving(devices=1, parallel="", metric="ttft_s", statistic="median")
    assert pub.riders(row) == 7
    first = pub.first_pass(row, profile=None)
    assert (first.settings.batch, first.settings.prompt) == (1, 1007)
    # None ride with a lone user, in a throughput figure (no first pass in it), or where a step with
    # prompts runs them alone while the decodes wait (mixed_steps off: SGLang's default, without
    # --enable-mixed-chunk, and TensorRT-LLM as modelled).
    assert pub.riders(row.model_copy(update={"concurrency": 1})) == 0
    assert pub.riders(row.model_copy(update={"metric": "output_tokens_per_s", "statistic": ""})) == 0
    for engine in ("sglang", "tensorrt-llm"):
        apart = row.model_copy(update={"engine": engine})
        assert not pub.scheduler_of(apart).mixed_steps and pub.riders(apart) == 0
        assert pub.first_pass(apart, profile=None).settings.prompt == 1000
    # A scheduler taking requests in every 4 steps (the row's scheduler column) at 64 users: k = 1 +
    # round(64 x 3 / 101) = 3 prompts arrive together, and the other 61 users' tokens ride with them,
    # ceil(61 / 3) = 21 tokens per prompt.
    wide = row.model_copy(update={"concurrency": 64, "scheduler": "recv_interval=4"})
    assert (pub.first_batch(wide), pub.riders(wide)) == (3, 61)
    wide_first = pub.first_pass(wide, profile=None)
    assert (wide_first.settings.batch, wide_first.settings.prompt) == (3, 1021)
    # The physics: a short prompt's pass is bandwidth-bound, and the decode tokens riding in it cost
    # little more than the weights it reads anyway, once -- not a prompt's pass plus a decode step's
    # (each reading the 16 GB of Llama-3-8B's weights) as two separate passes would.
    short = _serving(devices=1, parallel="", prompt=64, metric="ttft_s", statistic="median")
    alone = pub.analyse_row(short, profile=None, batch=1)
    pass_time = pub.first_pass(short, profile=None).prefill.time_s
    decode = pub.analyse_row(short, profile=None).decode
    step = decode.time_s / decode.steps  # one decode step of the 8 users
    assert alone.prefill.time_s <= pass_time < 1.05 * alone.prefill.time_s
    assert pass_time < 0.6 * (alone.prefill.time_s + step)
    ideal, _ = pub.predicted_times(
        short, pub.analyse_row(short, profile=None), pub.first_pass(short, profile=None)
    )
    assert ideal == pytest.approx(pass_time + 0.5 * step, rel=1e-6)


def test_a_closed_loop_ttft_with_its_requests_stated_is_simulated():
    fixed = dict(metric="ttft_s", statistic="median", requests=16, fixed_lengths="true")
    row = _serving(**fixed)
    assert row.simulated and row.predicted and not row.fitted  # predicted, but outside the fit
    # Wherever the source states the requests and describes the lengths (a stated spread is simulated
    # too); without them, the steady-state formula.
    assert _serving(**{**fixed, "fixed_lengths": "false"}).simulated
    assert not _serving(**{**fixed, "fixed_lengths": ""}).simulated
    assert _serving(**{**fixed, "fixed_lengths": "false", "length_spread": "0.15"}).simulated
    assert not _serving(**{**fixed, "requests": ""}).simulated
    # A capped run (a rate and a concurrency) is its closed loop, simulated with its arrivals; an open
    # loop (a rate alone) is not predicted.
    capped = _serving(**{**fixed, "request_rate": "25"})
    assert capped.simulated and _serving(request_rate="25").fitted
    assert not _serving(concurrency=None, request_rate="25").predicted
    assert not _serving(**{**fixed, "metric": "tpot_s"}).simulated  # the cycle's averages keep the formula
    assert not _serving(**{**fixed, "concurrency": 1, "requests": 1}).simulated  # a lone user: the formula
    assert not _serving(**{**fixed, "statistic": "p99"}).predicted
    assert _serving(**{**fixed, "requests": ""}).fitted
    with pytest.raises(ValueError, match="requests 4 < concurrency 8"):
        _serving(**{**fixed, "requests": 4})  # 8 users cannot send 4 requests
    with pytest.raises(ValueError, match="describe serving runs"):
        _serving(mode="static", batch=1, concurrency=None, fixed_lengths="true")
    with pytest.raises(ValueError, match="describe serving runs"):
        _serving(mode="offline", concurrency=None, fixed_lengths="false")
    with pytest.raises(ValueError, match="requests describes serving and offline runs"):
        _serving(mode="static", batch=1, concurrency=None, requests=10)
    with pytest.raises(ValueError, match="describe serving runs"):
        _serving(mode="static", batch=1, concurrency=None, length_spread="0.1")
    for bad in ("0", "1", "1.5", "-0.1"):
        with pytest.raises(ValueError, match="length_spread is a fraction above 0 and below 1"):
            _serving(**{**fixed, "fixed_lengths": "", "length_spread": bad})
    with pytest.raises(ValueError, match="contradicts fixed_lengths true"):
        _serving(**{**fixed, "length_spread": "0.1"})
    # What the simulation would refuse is refused on load, not halfway through a validation.
    with pytest.raises(ValueError, match="cannot use pp"):
        _serving(**{**fixed, "parallel": "pp2"})
    with pytest.raises(ValueError, match="exceed what one simulation takes"):
        _serving(**{**fixed, "requests": 20_000, "gen": 1000})
    assert _serving(**{**fixed, "parallel": "pp2", "requests": ""}).fitted  # the formula follows pp


def test_folds_hold_runs_out_whole_and_simulated_rows_enter_only_pinned(rows, monkeypatch):
    # Two figures of one run land in the same fold (whatever their ids), a simulated one with them;
    # the fit takes a simulated row only with a pinned device time (the second pass).
    run = [_serving(id=f"X{i}", metric=m, statistic=st) for i, (m, st) in
           enumerate((("output_tokens_per_s", ""), ("tpot_s", "median"), ("ttft_s", "median")))]  # fmt: skip
    simulated = _serving(id="X9", metric="ttft_s", statistic="median", requests=16, fixed_lengths="true")
    others = [r for r in rows if r.split == "calibration" and r.fitted][:40]
    folds = pub._folds([*others, *run, simulated], 5)
    assert sum(len(f) for f in folds) == len(others) + len(run) + 1
    assert [sum(r in f for r in [*run, simulated]) for f in folds].count(len(run) + 1) == 1
    seen: list[str] = []
    real = pub.Design

    def design(rs, pinned=None):
        seen.extend(r.id for r in rs)
        return real(rs, pinned)

    monkeypatch.setattr(pub, "Design", design)
    pub.fit_hierarchy([*others, *run, simulated], 0.1)
    assert "X9" not in seen and "X0" in seen
    pub.fit_hierarchy([*others, *run, simulated], 0.1, pinned={"X9": 0.05})
    assert "X9" in seen
    monkeypatch.undo()
    # A pinned row is its device time plus the request's fixed cost, whatever the efficiencies: with
    # the request cost at 0.02 s, 0.05 + 0.02 = 0.07 s, against a measured 0.1 s: log(0.7).
    with pytest.raises(ValueError, match="only with its pinned time"):
        pub.Design([simulated])
    d = pub.Design([simulated], {"X9": 0.05})
    x = pub.START.copy()
    x[pub.REQUEST] = np.log(0.02)
    assert d.predict(x)[0] == pytest.approx(0.07)
    assert d.residuals(x)[0] == pytest.approx(np.log(0.07 / simulated.measured_time()))
    x[0] += 1.0  # an efficiency moves nothing
    assert d.predict(x)[0] == pytest.approx(0.07)


def test_the_second_pass_pins_each_simulated_run_under_the_first(monkeypatch):
    # pinned_device_times: the row's run simulated under the first pass's profile for it, less that
    # profile's request cost. With the simulation stubbed to 0.3 s and the request cost at 0.02 s:
    # 0.28 s.
    row = _serving(id="X9", metric="ttft_s", statistic="median", requests=16, fixed_lengths="true")
    first = pub.fit_hierarchy([r for r in pub.load_rows() if r.split == "calibration"][:60], 0.1)
    first.root[pub.REQUEST] = np.log(0.02)
    used = {}

    def fake(r, hw=None):
        used["profile"] = hw.efficiency[0]
        return 0.1, 0.3

    monkeypatch.setattr(pub, "simulated_times", fake)
    assert pub.pinned_device_times([row], first) == {"X9": pytest.approx(0.28)}
    assert used["profile"].request_overhead_s == pytest.approx(0.02, rel=1e-3)
    assert used["profile"].engine == "vllm"


def test_every_shipped_simulated_row_simulates(rows):
    # Both splits: the calibration one is never otherwise evaluated by the tests.
    sims = [r for r in rows if r.simulated]
    assert {r.split for r in sims} == {"calibration", "report"}
    for r in sims:
        ideal, estimate = pub.simulated_times(r)
        assert 0 < ideal < estimate, r.id


def test_a_single_wave_of_fixed_prompts_waits_for_the_whole_wave():
    # Four users send one 512-token prompt each, together (requests = concurrency = 4): vLLM's step
    # budget of 8,192 tokens holds all 2,048 prompt tokens, so one step prefills the four and every
    # TTFT is that step. On the ideal basis that is the analysis's prefill of a batch of 4 (and the
    # steady-state formula's first pass, one prompt with three riders' tokens, is shorter).
    row = _serving(devices=1, parallel="", concurrency=4, requests=4, prompt=512, gen=16, metric="ttft_s",
                   statistic="median", fixed_lengths="true")  # fmt: skip
    ideal, estimate = pub.simulated_times(row)
    batch4 = pub.analyse_row(row, profile=None).prefill.time_s
    assert pub.analyse_row(row, profile=None).settings.batch == 4
    assert ideal == pytest.approx(batch4, rel=1e-6)
    one = pub.analyse_row(row, profile=None, batch=1)
    assert ideal > one.prefill.time_s * 3
    [result] = pub.evaluate_rows([row])
    assert (result.ideal_s, result.estimate_s) == (ideal, estimate)
    assert estimate > ideal
    # Past the first wave the TTFTs differ; the row's statistic picks the simulation's median or mean.
    from rooflens.serving import simulate

    longer = row.model_copy(update={"requests": 12, "prompt": 4096, "gen": 4})
    run = simulate("llama-3-8b", "h100-sxm", concurrency=4, requests=12, prompt=4096, gen=4, engine="vllm",
                   scheduler=pub.scheduler_of(longer), basis="ideal")  # fmt: skip
    ttft = run.summary["ttft"]
    assert ttft["p50"] != pytest.approx(ttft["mean"], rel=1e-3)
    assert pub.simulated_times(longer)[0] == ttft["p50"]
    assert pub.simulated_times(longer.model_copy(update={"statistic": "mean"}))[0] == ttft["mean"]
    # A capped run's requests arrive at its rate (Poisson, as vllm bench serve sends them), at most
    # C in flight.
    capped = longer.model_copy(update={"request_rate": 40.0})
    paced = simulate("llama-3-8b", "h100-sxm", rate=40.0, concurrency=4, requests=12, prompt=4096, gen=4,
                     engine="vllm", scheduler=pub.scheduler_of(capped), basis="ideal")  # fmt: skip
    assert pub.simulated_times(capped)[0] == paced.summary["ttft"]["p50"] != ttft["p50"]
    # A stated spread of lengths is simulated as the run drew them (vLLM's --random-range-ratio).
    spread = longer.model_copy(update={"fixed_lengths": False, "length_spread": 0.15})
    drawn = simulate("llama-3-8b", "h100-sxm", concurrency=4, requests=12, prompt=4096, gen=4, engine="vllm",
                     random_range_ratio=0.15, scheduler=pub.scheduler_of(spread), basis="ideal")  # fmt: skip
    assert pub.simulated_times(spread)[0] == drawn.summary["ttft"]["p50"] != ttft["p50"]


def test_a_scheduler_that_takes_requests_in_every_r_steps_delays_ttft():
    # SGLang with --scheduler-recv-interval 30 (the row's scheduler column): a request waits
    # (30 - 1) / 2 = 14.5 decode steps beyond the usual half step before it is taken in, and its prompt is
    # prefilled with the others that arrived in the same window: C (R - 1) / gen = 32 x 29 / 922 =
    # 1.01 others, so 1 + round(1.01) = 2 prompts.
    ttft = _serving(engine="sglang", metric="ttft_s", statistic="median", concurrency=32, gen=922,
                    scheduler="recv_interval=30")  # fmt: skip
    assert pub.scheduler_of(ttft).recv_interval == 30
    assert pub.intake_wait(ttft) == 14.5
    assert pub._weights(ttft, 100) == (0.0, (0.5 + 14.5) / 100, 1.0)
    assert pub.first_batch(ttft) == 2
    # The first pass prefills both, alone: SGLang runs a prefill batch without the decodes.
    assert pub.riders(ttft) == 0 and pub.row_phases(ttft)[2].sequences == 2
    # At 64 users the window holds 64 x 29 / 922 = 2.01 others: 3 prompts; never more than C.
    assert pub.first_batch(ttft.model_copy(update={"concurrency": 64})) == 3
    assert pub.first_batch(ttft.model_copy(update={"concurrency": 2, "gen": 2})) == 2
    # TPOT leaves the wait out; the cycle (throughput, E2E) takes it: 1 + 14.5 / 100 decode phases.
    tpot = ttft.model_copy(update={"metric": "tpot_s"})
    assert pub._weights(tpot, 100) == pytest.approx((1 / 921, (1 - 0.5 / 100) / 921, -1 / 921))
    assert pub.first_batch(tpot) == 1
    out = ttft.model_copy(update={"metric": "output_tokens_per_s", "statistic": ""})
    assert pub._weights(out, 100) == pytest.approx((1 / 32, 1.145 / 32, 0.0))
    # The engine's default (SGLang takes requests in every step) changes nothing.
    plain = ttft.model_copy(update={"scheduler": ""})
    assert pub._weights(plain, 100) == (0.0, 0.5 / 100, 1.0) and pub.first_batch(plain) == 1
    for bad in (
        "recv_interval", "recv_interval=x", "warp_speed=3", "mixed_steps=1", "recv_interval=true",
        "gpu_memory_utilization=most", "gpu_memory_utilization=true", "max_num_seqs=0.5",
    ):  # fmt: skip
        with pytest.raises(ValueError, match="scheduler takes name=value pairs"):
            _serving(scheduler=bad)
    for bad in ("1.5", "0", "-0.5", "nan", "inf"):  # a number, but no share of memory
        with pytest.raises(ValueError, match=r"gpu_memory_utilization must be in \(0, 1\]"):
            _serving(scheduler=f"gpu_memory_utilization={bad}")
    # A fraction for the memory share: vLLM's --gpu-memory-utilization 0.85.
    share = pub.PublishedRow(**_serving(scheduler="gpu_memory_utilization=0.85 max_num_seqs=64").model_dump())
    assert share.scheduler_overrides == {"gpu_memory_utilization": 0.85, "max_num_seqs": 64}
    assert pub.scheduler_of(share).gpu_memory_utilization == 0.85
    # An on/off field takes true or false: SGLang run with --enable-mixed-chunk mixes its steps, so
    # the first pass carries the other 32 - 2 users' tokens (15 per prompt), as vLLM's would.
    mixed = ttft.model_copy(update={"scheduler": "recv_interval=30 mixed_steps=true"})
    checked = pub.PublishedRow(**mixed.model_dump())
    assert checked.scheduler_overrides == {"recv_interval": 30, "mixed_steps": True}
    assert pub.scheduler_of(mixed).mixed_steps and pub.riders(mixed) == 30
    assert pub.row_phases(mixed)[2].sequences == 32
    with pytest.raises(ValueError, match="recv_interval must be in"):
        _serving(scheduler="recv_interval=0")
    # A lone user's request finds the scheduler idle: no wait, whatever the interval.
    lone = ttft.model_copy(update={"concurrency": 1})
    assert pub.intake_wait(lone) == 0.0 and pub.first_batch(lone) == 1


def test_a_served_request_pays_its_fixed_cost_outside_the_device():
    # The API server, tokenization and streaming cost a served request a fixed time: once in its
    # TTFT and its E2E, once per cycle of a closed-loop user (per request of the cycle: 1 / C with
    # C = 8), never in TPOT, a static batch or an offline run.
    assert pub.request_overheads(_serving(metric="ttft_s", statistic="median")) == 1.0
    assert pub.request_overheads(_serving(metric="e2e_latency_s", statistic="median")) == 1.0
    assert pub.request_overheads(_serving()) == 1 / 8
    assert pub.request_overheads(_serving(metric="tpot_s", statistic="median")) == 0.0
    assert pub.request_overheads(_serving(mode="offline", concurrency=None)) == 0.0
    static = _serving(mode="static", batch=4, concurrency=None, metric="e2e_latency_s")
    assert pub.request_overheads(static) == 0.0
    # The fit's formula adds exactly that many overheads: 30 ms more per request, 30 ms more TTFT
    # and 30 / 8 ms more per request of a throughput row.
    names = [p[0] for p in pub.PARAMS]
    at = names.index("request_overhead_s")
    for row, count in ((_serving(metric="ttft_s", statistic="median"), 1.0), (_serving(), 1 / 8)):
        design = pub.Design([row])
        low, high = pub.START.copy(), pub.START.copy()
        low[at], high[at] = np.log(0.01), np.log(0.04)
        assert design.predict(high)[0] - design.predict(low)[0] == pytest.approx(0.03 * count)


def test_offline_concurrency_is_the_engine_limit_or_the_kv_cache():
    # Llama-3-8B BF16 on one H100 with vLLM (limit 1024 sequences, 90% of memory): 2048 + 2048 tokens
    # of KV at 128 KiB per token are 512 MiB a sequence, so about (0.9 x 80 GiB - 15 GiB) / 0.5 GiB,
    # about a hundred, fit: the KV cache binds.
    long = _serving(mode="offline", concurrency=None, devices=1, parallel="", prompt=2048, gen=2048)
    c = pub.concurrency(long)
    assert 90 < c < 120
    # Short requests: the engine's 1024-sequence limit binds, or the run's own where the source says.
    short = long.model_copy(update={"prompt": 64, "gen": 64})
    assert pub.concurrency(short) == 1024
    assert pub.concurrency(short.model_copy(update={"concurrency": 1500})) == 1500
    # A stated limit above what the KV cache holds still stops at the cache (about a hundred).
    assert 90 < pub.concurrency(long.model_copy(update={"concurrency": 1500})) < 120
    # The run's own scheduler settings (the scheduler column) bind too: its max_num_seqs, and its
    # --gpu-memory-utilization. 0.5 instead of 0.9 of 80 GiB leaves 0.4 x 80 = 32 GiB less for the
    # cache: 32 / 0.5 = 64 sequences fewer.
    assert pub.concurrency(short.model_copy(update={"scheduler": "max_num_seqs=256"})) == 256
    half = long.model_copy(update={"scheduler": "gpu_memory_utilization=0.5"})
    assert pub.concurrency(half) == c - 64
    # A share that leaves no room for one sequence is refused, as serving.simulate refuses it: 0.2 of
    # 80 GiB is 16 GiB, about what the 15 GiB of weights and the activations take.
    with pytest.raises(RooflensError, match="no room in the KV cache for one sequence"):
        pub.concurrency(long.model_copy(update={"scheduler": "gpu_memory_utilization=0.2"}))
    # An offline run has one batch limit: its concurrency column, or its scheduler's max_num_seqs.
    with pytest.raises(ValueError, match="state one limit"):
        pub.PublishedRow(**{**long.model_dump(), "concurrency": 32, "scheduler": "max_num_seqs=64"})


def test_multi_device_rows_run_split_and_price_their_collectives(rows):
    tp = next(r for r in rows if r.parallel == "tp4" and r.metric == "ttft_s" and r.mode == "static")
    assert tp.degrees == {"tp": 4} and tp.base_settings()["tp"] == 4
    pp = next(r for r in rows if r.parallel.startswith("pp"))
    assert pp.base_settings()["pp"] == pp.devices
    ep = next(r for r in rows if r.parallel.startswith("ep"))
    assert ep.base_settings()["ep"] == ep.devices
    prefill, _, _ = pub.row_phases(tp)
    report = pub.analyse_row(tp, profile=None)
    comm = [o for o in report.prefill.ops if o.kind == "comm"]
    assert prefill.comm_bandwidth + prefill.comm_latency == pytest.approx(sum(o.time_s for o in comm))
    assert prefill.messages == pytest.approx(sum(o.messages for o in comm)) and prefill.messages > 0
    with pytest.raises(ValueError, match="need a parallel mode"):
        pub.PublishedRow(**{**tp.model_dump(), "parallel": ""})
    with pytest.raises(ValueError, match="does not multiply to"):
        pub.PublishedRow(**{**tp.model_dump(), "parallel": "tp2"})


def test_the_split_is_the_recorded_hash_rule(rows):
    import hashlib

    def blank(v) -> str:
        return "" if v is None else f"{v:g}" if isinstance(v, float) else str(v)

    fa = {True: "on", False: "off", None: ""}
    for r in rows:
        if int(r.id[1:]) <= 197:  # split once by measurement, before runs had several figures
            fields = (r.engine, r.hardware, r.model, r.precision, r.batch, r.prompt, r.gen,
                      fa[r.flash_attention], r.metric)  # fmt: skip
        else:  # every figure of one run on the same side: no metric, statistic, version or source
            fields = (r.engine, r.hardware, r.devices, r.parallel, r.model, r.precision, r.mode, r.batch,
                      r.concurrency, r.request_rate, r.prompt, r.gen, fa[r.flash_attention])  # fmt: skip
        key = "|".join(blank(v) for v in fields)
        odd = hashlib.sha256(key.encode()).digest()[0] % 2
        assert r.split == ("report" if odd else "calibration"), r.id
    # No run has figures on both sides.
    runs: dict[tuple, set[str]] = {}
    for r in rows[197:]:
        runs.setdefault((r.engine, r.hardware, r.devices, r.parallel, r.model, r.precision, r.mode, r.batch,
                         r.concurrency, r.request_rate, r.prompt, r.gen), set()).add(r.split)  # fmt: skip
    assert all(len(sides) == 1 for sides in runs.values())


@pytest.fixture(scope="module")
def shipped():
    return json.loads((ROOT / "src" / "rooflens" / "hardware" / "efficiency.json").read_text())


def test_shipped_profiles_are_exactly_the_calibration_fit(rows, shipped):
    assert json.loads(json.dumps(pub.fit_all(rows))) == json.loads(json.dumps(shipped))


def test_report_rows_cannot_move_the_fit(rows, shipped):
    # Every report row's value tripled: the fit (profiles, hyper-parameter, ranges) is the shipped one.
    changed = [r.model_copy(update={"value": r.value * 3}) if r.split == "report" else r for r in rows]
    assert json.loads(json.dumps(pub.fit_all(changed))) == json.loads(json.dumps(shipped))


def test_the_fit_formula_is_the_analysis(rows):
    # Design.predict (the fit's fast formula) equals the analysis's estimate with the fitted profile:
    # exactly for a prefill (one step), to within the mean-context approximation for decode.
    x = np.log([0.8, 0.5, 3e-6, 1e-3, 2e-5, 0.7, 0.6, 0.5, 0.3, 0.7, 0.8, 0.6, 4e-6, 0.03])
    profile = EfficiencyProfile(engine="x", **pub.profile_fields(x, "test"))
    for metric, tolerance in (
        ("prefill_tokens_per_s", 1e-3),
        ("ttft_s", 1e-3),
        ("output_tokens_per_s", 0.02),
    ):
        row = next(
            r
            for r in rows
            if r.metric == metric and r.mode == "static" and (r.devices > 1 or metric[0] == "p")
        )
        report = pub.analyse_row(row, profile=profile)
        _, estimate = pub.predicted_times(row, report)
        assert pub.Design([row]).predict(x)[0] == pytest.approx(estimate, rel=tolerance), metric
    moe = next(r for r in rows if r.model == "mixtral-8x7b" and r.mode == "offline")
    report = pub.analyse_row(moe, profile=profile)
    assert pub.Design([moe]).predict(x)[0] == pytest.approx(pub.predicted_times(moe, report)[1], rel=0.02)
    # Expert parallelism: each rank pays the per-sequence cost of its own share of the batch.
    ep = next(r for r in rows if r.parallel.startswith("ep") and r.predicted)
    report = pub.analyse_row(ep, profile=profile)
    assert pub.Design([ep]).predict(x)[0] == pytest.approx(pub.predicted_times(ep, report)[1], rel=0.02)
    # A served TTFT behind SGLang's intake interval: the prompts of one window prefilled together, the
    # wait in decode steps, and the request's fixed cost outside the device.
    ttft = next(r for r in rows if r.metric == "ttft_s" and r.predicted and pub.first_batch(r) > 1)
    report = pub.analyse_row(ttft, profile=profile)
    estimate = pub.predicted_times(ttft, report, pub.first_pass(ttft, profile))[1]
    assert pub.Design([ttft]).predict(x)[0] == pytest.approx(estimate, rel=0.02)
    # A vLLM TTFT at 180 users: the first pass carries 179 riders, each a sequence of that step with
    # its per-sequence cost (2e-5 s each here: 3.6 ms, 3% of this estimate), in both formulas.
    many = next(r for r in rows if r.metric == "ttft_s" and r.fitted and pub.riders(r) > 100)
    report = pub.analyse_row(many, profile=profile)
    estimate = pub.predicted_times(many, report, pub.first_pass(many, profile))[1]
    assert pub.Design([many]).predict(x)[0] == pytest.approx(estimate, rel=2e-3)


def test_fit_recovers_known_parameters(rows):
    """Rows whose 'measured' times come from the formula with known parameters are fitted back."""
    subset = [r for r in rows if r.engine == "tensorrt-llm" and r.predicted][:150]
    design = pub.Design(subset)
    truth = np.log([0.9, 0.6, 2e-6, 1e-3, 1e-5, 0.8, 0.5, 0.6, 0.3, 0.7, 0.7, 0.5, 5e-6, 0.05])
    design.measured = design.predict(truth)
    fitted = pub.fit_profile(design, pub.START, 1e-6)
    assert np.abs(design.residuals(fitted)).max() < 1e-3
    # The terms every row exercises are recovered (matmul efficiency, per-step cost).
    assert np.exp(fitted[[0, 1, 3]]) == pytest.approx(np.exp(truth[[0, 1, 3]]), rel=0.05)


def test_a_release_measured_on_some_devices_moves_its_profile_on_every_device(rows):
    """The fit's release level: an engine version's offset across devices (its API server's cost per
    request, say), fitted where the version has rows on no device often enough for an offset there."""
    lone = [r for r in rows if r.fitted and r.metric == "ttft_s" and r.engine == "vllm"]
    # The three devices with the most such rows, ties by name: a set's order changes with the hash
    # seed, and two devices tie at 10 rows (this test passed or failed by the seed once).
    devices = sorted({r.hardware for r in lone}, key=lambda d: (-sum(r.hardware == d for r in lone), d))[:3]
    assert len(devices) == 3
    truth = pub.START.copy()
    later = truth.copy()
    later[pub.REQUEST] = np.log(0.03)  # release 2.0 pays 30 ms per request outside the device, not 1 ms
    picked = []
    for d in devices:
        mine = [r for r in lone if r.hardware == d][:6]
        # Two rows at 2.0 on each of the first two devices (too few for an offset of 2.0 on either),
        # the others at versions the source does not name; the third device never ran 2.0.
        for i, r in enumerate(mine):
            release = "2.0" if d != devices[2] and i < 2 else ""
            picked.append(r.model_copy(update={"engine_version": release, "id": f"S{len(picked)}"}))
    design = pub.Design(picked)
    x = np.array([later if r.engine_version == "2.0" else truth for r in picked])
    times = design.predict(x)
    synthetic = [r.model_copy(update={"value": float(t)}) for r, t in zip(picked, times, strict=True)]
    fitted = pub.fit_hierarchy(synthetic, shrink=1e-3, loss="linear", versions=True)
    assert ("vllm", "2.0") in fitted.releases and not any(k[2] == "2.0" for k in fitted.versions)
    # On the device that never ran it, the rows at 2.0 move by a good share of what 2.0 costs, the others
    # stay as they were. Not exactly 2.0's cost: four rows of two kinds of TTFT (a lone user's pass; half
    # a decode step and a pass at 4 users) cannot tell the cost per request from the costs per pass,
    # operator and sequence, which the third device's runs (4-16 users) count differently; the offset
    # shares it among them, and how much reaches other rows depends on them (from a quarter to 1.7 times
    # the cost in trials with other rows; 0.49 to 0.70 on the A100 80 GB rows picked here).
    third = [r for r in synthetic if r.hardware == devices[2]]
    klass = pub.device_class_of(devices[2])
    at = pub.Design(third)
    before, after = at.predict(truth), at.predict(later)
    assert not np.allclose(after, before, rtol=0.1)  # the test can tell them apart
    moved = at.predict(fitted.compose("vllm", klass, devices[2], "2.0"))
    share = (moved - before) / (after - before)
    assert np.all(share > 0.25) and np.all(share < 1.75), share
    assert at.predict(fitted.compose("vllm", klass, devices[2], "")) == pytest.approx(before, rel=0.03)
    # Without the release level, nothing would tell the third device about 2.0.
    bare = pub.Fitted(fitted.root, fitted.classes, fitted.engines, fitted.pairs, fitted.devices,
                      fitted.seen, fitted.versions)  # fmt: skip
    assert np.allclose(
        bare.compose("vllm", klass, devices[2], "2.0"), fitted.compose("vllm", klass, devices[2])
    )
    # A release seen on one device only gets no offset across devices: there, what it does everywhere
    # and what it does on that device cannot be told apart.
    first = [r for r in synthetic if r.hardware == devices[0]]
    one = [
        r.model_copy(update={"engine_version": "2.0" if r in first[:3] else ""})
        if r.hardware in devices[:2]
        else r
        for r in synthetic
    ]
    alone = pub.fit_hierarchy(one, shrink=1e-3, loss="linear", versions=True)
    assert ("vllm", "2.0") not in alone.releases and ("vllm", devices[0], "2.0") in alone.versions


def test_accuracy_on_the_report_split_meets_the_floors(rows):
    summary = pub.error_summary(pub.evaluate_rows(r for r in rows if r.split == "report"))
    by = {(s["category"], s["engine"]): s for s in summary}
    # Floors a little above today's errors (validation/README.md has the table): a change that costs
    # a fifth of the accuracy fails here.
    floors = {
        ("decode", "all engines"): 0.085,
        ("prefill", "all engines"): 0.125,
        ("end-to-end", "all engines"): 0.057,
        ("throughput", "all engines"): 0.08,
        ("decode", "tensorrt-llm"): 0.07,
        ("prefill", "tensorrt-llm"): 0.115,
        ("throughput", "tensorrt-llm"): 0.085,
        ("decode", "sglang"): 0.092,  # 7.9% today (7.6% and 7.1% before the vLLM data of 2026-12-01)
        ("prefill", "sglang"): 0.113,
        ("throughput", "sglang"): 0.085,  # 7.5% today (7.2% and 6.4% before the vLLM data of 2026-12-01)
        # 4.9% today (4.8% before A100 FP4 math left the int8 peak; 3.6% before the RTX 4090 sweep's
        # lengths were corrected; 8.6% before the A100 data)
        ("decode", "vllm"): 0.058,
        # 7.6% today (7.3% before A100 FP4 math left the int8 peak; 8.7% before the RTX 4090 sweep's
        # corrected lengths and PR #27323's rows, 13.6% before the A100 vLLM data, 15.8% before that)
        ("throughput", "vllm"): 0.09,
        ("end-to-end", "vllm"): 0.031,
        ("decode", "vendor AMD"): 0.12,  # the goal itself: 9.2% today
        ("prefill", "vendor AMD"): 0.1,
        ("throughput", "vendor AMD"): 0.094,  # 7.3% today (7.8% before PR #27323's rows, 6.4% earlier)
    }
    for key, floor in floors.items():
        assert by[key]["estimate_median_abs_error"] <= floor, key
    # The goals, for every engine and for AMD wherever the report split has the rows: decode
    # at most 12%, prefill and serving throughput at most 15%. Not yet met: vLLM's prefill (36 rows,
    # 24.6%; 19.2% on the 33 rows before the A100 data of 2026-12-01: a fixed cost per request outside
    # the device that differs 5-50 ms between sources and releases, start-up queues, a PCIe TP4 MoE run;
    # README, "Accuracy, measured").
    goals = {"decode": 0.12, "prefill": 0.15, "throughput": 0.15}
    missed = {("prefill", "vllm")}
    for group in ("vllm", "sglang", "tensorrt-llm", "vendor AMD"):
        for category, goal in goals.items():
            if (category, group) in by and (category, group) not in missed:
                assert by[category, group]["estimate_median_abs_error"] <= goal, (category, group)
    # The p10-p90 range holds about 80% of the measurements.
    everything = pub.evaluate_rows(r for r in rows if r.split == "report")
    covered = [r.covered for r in everything if r.covered is not None]
    assert len(covered) >= 1400 and 0.75 <= np.mean(covered) <= 0.85
    # The estimate must improve on the ideal bound it stands beside, multi-device rows included.
    multi = by["all phases", "multi-device rows"]
    assert multi["rows"] >= 100
    for s in [*(by[c, "all engines"] for c in pub.CATEGORIES), multi]:
        assert s["estimate_median_abs_error"] < s["ideal_median_abs_error"]


def test_validate_serving_gives_free_lengths_a_spread():
    # benchmarks/validate_serving.py simulates a closed loop whose source leaves its lengths free at a
    # spread of FREE_SPREAD about the means (users out of step, as the run's were), never a run whose
    # source fixes or describes them: a fixed-length run (--ignore-eos) keeps 0, a stated spread is
    # the row's own, InferenceX's --random-range-ratio 0.8 draws [0.8 L, L]: 0.9 L +- 0.1 L, r = 1/9.
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "validate_serving.py"
    spec = importlib.util.spec_from_file_location("validate_serving", path)
    vs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(vs)
    free = _serving(metric="ttft_s", statistic="median", requests=40)
    assert vs.free(free) and vs.spread(free) == vs.FREE_SPREAD == 0.8
    assert vs.spread(free, free_spread=0.5) == 0.5
    fixed = free.model_copy(update={"fixed_lengths": True})
    stated = free.model_copy(update={"length_spread": 0.3})
    ix = free.model_copy(update={"notes": "InferenceX recipe, --random-range-ratio 0.8"})
    assert not any(vs.free(r) for r in (fixed, stated, ix))
    assert (vs.spread(fixed), vs.spread(stated), vs.spread(ix)) == (0.0, 0.3, pytest.approx(1 / 9))
    # Only report-split closed loops are its runs by default; --split calibration takes the others.
    rows = [free, free.model_copy(update={"id": "X2", "split": "calibration"})]
    assert [g[0].id for g in vs.runs(rows).values()] == ["X1"]
    assert [g[0].id for g in vs.runs(rows, "calibration").values()] == ["X2"]


def test_validate_published_cli():
    result = CliRunner().invoke(app, ["validate", "--published"])
    assert result.exit_code == 0, result.output
    assert "report split" in result.output and "all engines" in result.output
    assert "covers" in result.output
    data = json.loads(CliRunner().invoke(app, ["validate", "--published", "--format", "json"]).output)
    by = {(d["category"], d["engine"]) for d in data}
    assert {("decode", "MLA models"), ("throughput", "MoE models"), ("prefill", "dense models")} <= by
    assert {("throughput", "vendor AMD"), ("throughput", "vllm"), ("decode", "sglang")} <= by
    data = json.loads(CliRunner().invoke(app, ["validate", "--published", "--format", "json"]).output)
    assert {"category", "engine", "rows", "estimate_median_abs_error"} <= set(data[0])
    bad = CliRunner().invoke(app, ["validate", "--published", "--split", "all"])
    assert bad.exit_code == 2 and "--split must be report or calibration" in bad.output


def test_validate_published_data_and_plot(tmp_path):
    """--data takes a CSV of the dataset's columns; anything else is refused naming what is wrong
    (the header, the encoding, an empty file, the row and line), never a traceback. --plot writes the
    predicted-against-measured figure (it once failed after the whole run) and its path is checked
    before the run; a MODEL with --published is refused, not ignored."""
    header, *lines = pub.find_data().read_text().splitlines()
    llama = [line for line in lines if ",report,vllm," in line and "llama-3" in line][:4]
    files = {
        "small.csv": "\n".join([header, *llama]),
        "header.csv": "a,b\n1,2",
        "empty.csv": header,
        "engine.csv": "\n".join([header, llama[0].replace(",report,vllm,", ",report,vllmx,", 1)]),
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text + "\n")
    (tmp_path / "latin.csv").write_bytes(b"\xff\xfe\x00")
    assert ",report,vllm," in llama[0]  # the edit above changes the engine
    run = lambda *a: CliRunner().invoke(app, ["validate", "--published", *map(str, a)])  # noqa: E731
    for name, message in (
        ("header.csv", "missing columns id, split"),
        ("latin.csv", "not UTF-8 text"),
        ("empty.csv", "holds no row"),
        ("engine.csv", "line 2 (row P"),
    ):
        result = run("--data", tmp_path / name)
        assert result.exit_code == 2 and message in result.output, result.output
    assert "unknown engine 'vllmx'" in run("--data", tmp_path / "engine.csv").output
    figure = tmp_path / "scatter.html"
    result = run("--data", tmp_path / "small.csv", "--plot", figure)
    assert result.exit_code == 0 and figure.stat().st_size > 1_000_000, result.output
    assert "vllm" in figure.read_text()[-200_000:]  # the trace of the rows' engine
    for bad, message in ((tmp_path / "x.txt", "use .html"), (tmp_path / "no" / "x.html", "no folder")):
        result = run("--data", tmp_path / "header.csv", "--plot", bad)  # refused before the data is read
        assert result.exit_code == 2 and message in result.output, result.output
    result = CliRunner().invoke(app, ["validate", "llama-3-8b", "--published"])
    assert result.exit_code == 2 and "runs no MODEL" in result.output


def test_every_row_reads_at_80_columns(rows):
    """`validate --published --rows` fits an 80-column terminal: the run and workload wrap between
    words, names are never cut, and --wide brings back the id, ideal and range columns."""
    import io

    from rich.console import Console

    from rooflens.measure.published import evaluate_rows
    from rooflens.render.validation import print_published_rows

    picked = [r for r in rows if r.split == "report"][::150]
    picked.append(next(r for r in rows if r.simulated and r.split == "report"))
    results = evaluate_rows(picked)
    for wide in (False, True):
        out = io.StringIO()
        width = 250 if wide else 80  # --wide: a console as wide as the table wants
        print_published_rows(results, Console(file=out, width=width, color_system=None), wide=wide)
        text = out.getvalue()
        if not wide:
            assert max(len(line) for line in text.splitlines()) <= 80
        words = {w for line in text.splitlines() for w in line.replace("│", " ").split()}
        assert len(results) > 5
        for r in results:  # every name whole, on one line
            assert {r.row.engine, r.row.hardware, r.row.model} <= words, r.row.id
        assert (results[0].row.id in words) == wide
        assert f"N={picked[-1].requests}" in words and "simulated" in words  # the simulated row says so


def test_the_readme_counts_match_the_file():
    # validation/README.md states the row, device and multi-device counts of published.csv.
    import csv
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "validation"
    rows = list(csv.DictReader((root / "published.csv").open()))
    readme = (root / "README.md").read_text()
    devices = {r["hardware"] for r in rows}
    multi = sum(int(r["devices"]) > 1 for r in rows)
    assert f"({len(rows)} rows, {len(devices)} devices, {multi} of them multi-device)" in readme
    # Every source is an original public one (a URL or a named public document), never a local file.
    assert all("shared/" not in r["source"] and r["source"].strip() for r in rows)
