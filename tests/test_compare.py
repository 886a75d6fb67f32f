"""rooflens compare: analyses side by side through the API and the CLI."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import rooflens
from rooflens import RooflensError
from rooflens.cli import app
from rooflens.compare import compare


def test_api_lines_up_metrics_and_ops_against_the_baseline():
    a = rooflens.analyze("llama-2-7b", "a100", prompt=1024, gen=65)
    b = rooflens.analyze("llama-2-7b", "a100", prompt=1024, gen=65, w_bits=4)
    cmp = compare([a, b])
    assert cmp.names == ["w_bits=16", "w_bits=4"]
    tpot = next(r for r in cmp.metric_rows() if r["metric"] == "tpot_s")
    assert tpot["values"] == [a.tpot_s, b.tpot_s] and tpot["ratio_to_first"][1] == pytest.approx(
        b.tpot_s / a.tpot_s
    )
    q = next(r for r in cmp.op_rows("decode") if r["op"] == "q_proj")
    assert q["values"][0] == pytest.approx(sum(o.time_s for o in a.decode.ops if o.name == "q_proj") / 64)
    assert q["ratio_to_first"][1] < 0.35
    data = cmp.to_dict()
    assert [x["label"] for x in data["analyses"]] == cmp.names and data["ops"]["prefill"]


def test_labels_name_models_and_devices_when_they_differ():
    a = rooflens.analyze("llama-3-8b", "h100", prompt=128, gen=8)
    b = rooflens.analyze("qwen2.5-7b", "a100", prompt=128, gen=8)
    assert compare([a, b]).names == ["llama-3-8b, h100-sxm", "qwen2.5-7b, a100-sxm-80gb"]
    with pytest.raises(RooflensError, match="at least two"):
        compare([a])


def test_cli_zips_repeated_options():
    result = CliRunner().invoke(
        app, ["compare", "llama-3-70b", "-H", "h100", "--tp", "4", "--tp", "8", "-f", "json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [a["devices"] for a in data["analyses"]] == [4, 8]
    devices = next(m for m in data["metrics"] if m["metric"] == "devices")
    assert devices["ratio_to_first"] == [1.0, 2.0]


def test_cli_variants_sets_and_techniques_on_and_off():
    result = CliRunner().invoke(
        app,
        [
            "compare",
            "llama-3-8b",
            "-H",
            "h100",
            "--draft-model",
            "none",
            "--draft-model",
            "llama-3.2-1b",
            "--set",
            "gen=65",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "draft.q_proj" in result.output and "Side by side" in result.output
    result = CliRunner().invoke(
        app,
        [
            "compare",
            "gpt2",
            "-H",
            "t4",
            "--variant",
            "kv_bits=16",
            "--variant",
            "kv_bits=8;flash_attention=false",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "kv_bits=8" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["compare", "gpt2", "--w-bits", "16", "--w-bits", "8", "--tp", "1", "--tp", "2", "--tp", "4"],
            "repeated a different number of times",
        ),
        (["compare", "gpt2"], "at least two analyses"),
        (["compare", "gpt2", "--set", "bits4"], "KEY=VALUE"),
        (
            ["compare", "gpt2", "--variant", "w_bits=12", "--variant", "w_bits=4"],
            "w_bits: Input should be 1, 2, 3, 4, 5, 6, 7, 8, 16",
        ),
    ],
)
def test_cli_errors(args, message):
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
