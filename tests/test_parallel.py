"""Tensor, pipeline and expert parallelism: shards, collectives, per-device memory, errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import rooflens
from rooflens import RooflensError, load_model
from rooflens.cli import app
from rooflens.ops import Execution, Pass, Precision, build_ops

FP16 = Precision()


def ops_by_name(model, batch, q, c, **ex):
    out: dict[str, list] = {}
    for op in build_ops(load_model(model), FP16, Pass(batch, q, c), Execution(**ex)):
        out.setdefault(op.name, []).append(op)
    return out


def test_tp2_halves_layer_weights_and_adds_two_allreduces_per_layer():
    one = ops_by_name("llama-2-7b", 4, 1, 1000)
    two = ops_by_name("llama-2-7b", 4, 1, 1000, tp=2)
    for name in ("q_proj", "k_proj", "o_proj", "gate_proj", "down_proj"):
        assert two[name][0].weight_bytes == one[name][0].weight_bytes / 2
        assert two[name][0].flops == one[name][0].flops / 2
    assert two["lm_head"][0].weight_bytes == one["lm_head"][0].weight_bytes / 2  # vocabulary-parallel
    size = 4 * 4096 * 2  # 4 tokens x hidden x fp16
    for name in ("attn_allreduce", "mlp_allreduce"):
        (op,) = two[name]
        assert op.count == 32 and op.kind == "comm"
        assert op.link_bytes == pytest.approx(2 * (2 - 1) / 2 * size)  # ring: 2 (n-1)/n of the data
        assert op.messages == 2 and op.link == "intra"
    assert "attn_allreduce" not in one


def test_tp_time_of_a_collective():
    r = rooflens.analyze("llama-3-70b", "h100", batch=8, prompt=512, gen=16, tp=4)
    (op,) = [o for o in r.decode.ops if o.name == "attn_allreduce"]
    size = 8 * 8192 * 2
    per_step = 2 * 3 / 4 * size / 450e9 + 2 * 3 * 2e-6  # bandwidth term + 6 ring steps x 2 us
    assert op.time_s / r.decode.steps == pytest.approx(80 * per_step)


def test_kv_heads_replicate_when_fewer_than_tp():
    ops = ops_by_name("llama-3-8b", 1, 1, 100, tp=16, devices_per_node=16)
    assert ops["k_proj"][0].weight_bytes == 4096 * 128 * 2  # one KV head per rank (8 heads, 16 ranks)
    assert ops["q_proj"][0].weight_bytes == 4096 * 256 * 2  # two query heads per rank


def test_per_device_memory_under_tp():
    one = rooflens.analyze("llama-3-70b", "h100", batch=8, prompt=2048, gen=256)
    four = rooflens.analyze("llama-3-70b", "h100", batch=8, prompt=2048, gen=256, tp=4)
    assert four.memory.kv_cache_bytes == one.memory.kv_cache_bytes / 4  # 8 KV heads -> 2 per rank
    assert four.memory.weights_bytes == pytest.approx(one.memory.weights_bytes / 4, rel=0.01)
    assert not one.memory.fits and four.memory.fits
    d = four.to_dict()
    assert d["devices"] == 4 and d["parallel"]["tp"] == 4 and d["memory"]["scope"] == "per device"
    assert d["memory"]["all_devices_bytes"] == pytest.approx(4 * d["memory"]["total_bytes"])


def test_pipeline_splits_layers_keeps_latency_and_reports_the_bubble():
    one = rooflens.analyze("llama-3-70b", "b200", batch=4, prompt=1024, gen=64)
    four = rooflens.analyze("llama-3-70b", "b200", batch=4, prompt=1024, gen=64, pp=4, micro_batches=12)
    sends = [o for o in four.decode.ops if o.name == "pp_send"]
    assert sends and sends[0].count == 3
    assert four.decode.time_s == pytest.approx(one.decode.time_s + sends[0].time_s)
    assert four.memory.weights_bytes < 0.27 * one.memory.weights_bytes
    assert four.pipeline_bubble == pytest.approx(3 / (12 + 3))
    assert four.to_dict()["parallel"]["pipeline_bubble"] == pytest.approx(0.2)


def test_expert_parallel_splits_experts_and_sequences_and_adds_all_to_all():
    one = ops_by_name("qwen3-30b-a3b", 64, 1, 500)
    four = ops_by_name("qwen3-30b-a3b", 64, 1, 500, ep=4)
    assert four["q_proj"][0].flops == one["q_proj"][0].flops / 4  # 16 of the 64 sequences per device
    assert four["experts_down"][0].flops == pytest.approx(one["experts_down"][0].flops / 4)
    assert four["experts_down"][0].resident == one["experts_down"][0].resident / 4  # 32 of 128 experts
    routed = 16 * 8 * 2048 * 2  # 16 tokens x 8 experts each x hidden x fp16
    for name in ("moe_dispatch", "moe_combine"):
        (op,) = four[name]
        assert op.link_bytes == pytest.approx(3 / 4 * routed) and op.messages == 3 and op.count == 48
    r1 = rooflens.analyze("qwen3-30b-a3b", "h100", batch=64, prompt=500, gen=16)
    r4 = rooflens.analyze("qwen3-30b-a3b", "h100", batch=64, prompt=500, gen=16, ep=4)
    assert r4.memory.kv_cache_bytes == pytest.approx(r1.memory.kv_cache_bytes / 4)


def test_beyond_one_node_uses_the_network():
    ops = ops_by_name("llama-3.1-405b", 1, 1, 100, tp=16)
    assert ops["attn_allreduce"][0].link == "inter"
    r = rooflens.analyze("llama-3.1-405b", "h100", batch=1, prompt=512, gen=8, tp=16)
    assert r.decode.comm_time_s > 0
    with pytest.raises(RooflensError, match="no network link"):
        rooflens.analyze("llama-3-70b", "l40s", tp=16)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model": "llama-3-8b", "hardware": "m2-ultra", "tp": 2}, "lists no interconnect"),
        ({"model": "llama-3-8b", "hardware": "h100", "tp": 3}, "does not divide"),
        ({"model": "llama-3-8b", "hardware": "h100", "ep": 2}, "needs a mixture-of-experts model"),
        (
            {"model": "mixtral-8x7b", "hardware": "h100", "ep": 16, "devices_per_node": 16},
            "exceeds mixtral-8x7b's 8",
        ),
        ({"model": "gpt2", "hardware": "h100", "pp": 13}, "exceeds gpt2's 12 layers"),
        ({"model": "gpt2", "hardware": "h100", "tp": 0}, "tp: Input should be greater than or equal to 1"),
        # settings that would change nothing here: refused, not silently ignored
        ({"model": "llama-3-8b", "hardware": "h100", "micro_batches": 4}, "needs --pp 2 or more"),
        ({"model": "llama-3-8b", "hardware": "h100", "expert_quant": "mxfp4"}, "llama-3-8b is dense"),
        ({"model": "llama-3-8b", "hardware": "h100", "routing": "zipf"}, "shape how tokens pick experts"),
        ({"model": "llama-3-8b", "hardware": "h100", "routing_skew": 1.0}, "shape how tokens pick experts"),
        ({"model": "llama-3-8b", "hardware": "h100", "mla_absorb": "never"}, "llama-3-8b has none"),
        ({"model": "llama-3-8b", "hardware": "h100", "verify_tokens": 3}, "needs --draft-model or --spec"),
    ],
)
def test_impossible_parallel_setups(kwargs, message):
    kwargs = dict(kwargs)  # the parameter is shared between runs: never change it in place
    model, hardware = kwargs.pop("model"), kwargs.pop("hardware")
    with pytest.raises(RooflensError, match=message):
        rooflens.analyze(model, hardware, **kwargs)


def test_cli_parallel_flags_and_json_contract():
    result = CliRunner().invoke(
        app, ["analyze", "mixtral-8x7b", "-H", "h100", "--tp", "2", "--ep", "2", "-b", "8", "-f", "json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["devices"] == 4 and data["model"]["active_params"] < data["model"]["params"]
    assert {o["name"] for o in data["ops"]} >= {"attn_allreduce", "moe_dispatch", "moe_combine"}
    assert any(o["bound"] == "comm" for o in data["ops"])
    table = CliRunner().invoke(app, ["analyze", "deepseek-v3", "-H", "h200", "--tp", "8", "--quant", "fp8"])
    assert (
        table.exit_code == 0 and "8 x NVIDIA H200" in table.output and "MLP (moe, 58 layers)" in table.output
    )
