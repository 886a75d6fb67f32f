"""The serving simulation: a lone request is the single analysis; load, memory and engine knobs act as
they should."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import rooflens
from rooflens import RooflensError
from rooflens.cli import app
from rooflens.memory import CacheShape, kv_cache_bytes
from rooflens.serving import Engine, simulate


@pytest.mark.parametrize(
    ("model", "hw", "kwargs", "basis"),
    [
        ("llama-3-8b", "h100", {}, "ideal"),
        ("llama-3-8b", "h100", {}, "estimate"),
        ("mixtral-8x7b", "h100", {"tp": 2}, "ideal"),
        ("deepseek-v2-lite", "a100", {"w_bits": 8, "a_bits": 8}, "estimate"),
        ("gemma-2-2b", "l4", {"flash_attention": False}, "ideal"),
    ],
)
def test_at_a_very_low_rate_each_request_is_the_single_analysis(model, hw, kwargs, basis):
    result = simulate(model, hw, rate=1e-3, prompt=300, gen=17, requests=3, basis=basis, **kwargs)
    r = rooflens.analyze(model, hw, prompt=300, gen=17, **kwargs)
    ttft, tpot = (r.ttft_s, r.tpot_s) if basis == "ideal" else (r.ttft_estimate_s, r.tpot_estimate_s)
    s = result.summary
    assert s["ttft"]["p50"] == pytest.approx(ttft, rel=1e-9) and s["ttft"]["p99"] == pytest.approx(
        ttft, rel=1e-9
    )
    assert s["tpot"]["p50"] == pytest.approx(tpot, rel=1e-9)
    assert s["queue"]["p99"] == 0.0 and s["mean_batch"] == pytest.approx(1.0) and not s["saturated"]


def test_load_raises_the_batch_until_the_server_saturates():
    kw = dict(prompt=512, gen=128, requests=300, length_spread=0.5)
    light = simulate("llama-3-8b", "h100", rate=1, **kw).summary
    busy = simulate("llama-3-8b", "h100", rate=10, **kw).summary
    over = simulate("llama-3-8b", "h100", rate=200, **kw).summary
    assert light["mean_batch"] < busy["mean_batch"] < over["mean_batch"] <= 256
    assert not light["saturated"] and not busy["saturated"] and over["saturated"]
    assert light["output_tokens_per_s"] < busy["output_tokens_per_s"] < over["output_tokens_per_s"]
    assert over["queue"]["p99"] > 10 * busy["queue"]["p99"]


def test_kv_memory_limits_concurrency_and_preempts():
    engine = Engine(gpu_memory_utilization=0.3)
    s = simulate("llama-3-8b", "h100", rate=50, prompt=2048, gen=512, requests=120, engine=engine).summary
    assert s["peak_kv_use"] <= 1.0 and s["preemptions"] > 0
    per_token = kv_cache_bytes(rooflens.load_model("llama-3-8b"), rooflens.make_settings().precision,
                               CacheShape(1, 1, 0))  # fmt: skip
    capacity_tokens = s["kv_blocks_per_instance"] * 16
    assert capacity_tokens * per_token <= 0.3 * rooflens.load_hardware("h100").memory_bytes
    assert s["mean_batch"] <= capacity_tokens / 2048
    with pytest.raises(RooflensError, match="leaves no room for a KV cache"):
        simulate("llama-3-70b", "h100", rate=1, requests=2)


def test_prefix_cache_and_chunked_prefill():
    kw = dict(rate=8, prompt=2048, gen=256, requests=300, length_spread=0.3)
    plain = simulate("llama-3-8b", "h100", **kw).summary
    cached = simulate("llama-3-8b", "h100", engine=Engine(prefix_cache_hit_rate=0.5), **kw).summary
    assert cached["ttft"]["p50"] < plain["ttft"]["p50"] and cached["tpot"]["p50"] < plain["tpot"]["p50"]
    whole = simulate("llama-3-8b", "h100", engine=Engine(chunked_prefill=False), **kw).summary
    # Whole-prompt steps stall every running decode: the worst gaps between tokens grow.
    assert whole["itl"]["p99"] > 1.5 * plain["itl"]["p99"]
    lone = simulate("llama-3-8b", "h100", rate=1e-3, prompt=2048, gen=2, requests=1, basis="ideal",
                    engine=Engine(prefix_cache_hit_rate=0.5)).summary  # fmt: skip
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


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rate": 0}, "rate must be a positive"),
        ({"engine": "x"}, "engine takes the scheduler settings"),
        ({"draft_model": "llama-3.2-1b"}, "does not follow draft_model"),
        ({"batch": 4}, "sets these per request"),
        ({"disaggregate": (0, 1)}, "disaggregate takes"),
        ({"prompt": 0}, "prompt must be at least 1"),
        ({"length_spread": 1.5}, "spread must be in"),
    ],
)
def test_bad_simulations(kwargs, message):
    args = {"rate": 1.0, "requests": 2, **kwargs}
    with pytest.raises(RooflensError, match=message):
        simulate("gpt2", "h100", **args)
    with pytest.raises(RooflensError, match="gpu_memory_utilization must be in"):
        Engine(gpu_memory_utilization=1.5)


def test_cli_simulate():
    res = CliRunner().invoke(app, ["simulate", "llama-3-8b", "-H", "h100", "-r", "4", "-n", "50", "-g", "64"])
    assert res.exit_code == 0, res.output
    assert "Latency under load" in res.output and "arrival to first token" in res.output
    data = json.loads(CliRunner().invoke(app, ["simulate", "gpt2", "-n", "20", "-f", "json"]).output)
    assert {"ttft", "tpot", "itl", "e2e", "queue", "mean_batch", "saturated"} <= set(data)
    assert set(data["ttft"]) == {"mean", "p50", "p90", "p99"}
    bad = CliRunner().invoke(app, ["simulate", "gpt2", "--disaggregate", "2"])
    assert bad.exit_code == 2 and "P:D" in bad.output
