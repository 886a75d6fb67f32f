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


# --- labels of models given as config files ---------------------------------------------------------


def _config(folder, **fields):
    """A real config.json (Llama-3.2-1B's architecture) in ``folder``, with ``fields`` changed."""
    from rooflens.model.catalog import hf_config

    folder.mkdir(parents=True)
    path = folder / "config.json"
    path.write_text(json.dumps({**hf_config("llama-3.2-1b"), **fields}))
    return path


def test_config_files_are_named_by_their_folder_or_name_or_path(tmp_path):
    a = _config(tmp_path / "alpha")
    b = _config(tmp_path / "beta", num_hidden_layers=8)
    reports = [rooflens.analyze(str(p), "h100", prompt=64, gen=4) for p in (a, b)]
    assert compare(reports).names == ["alpha", "beta"]  # not "config" twice
    # transformers writes _name_or_path: a Hub id stays whole, a local path keeps its last folder.
    c = _config(tmp_path / "c", _name_or_path="someone/tiny-llama")
    d = _config(tmp_path / "d", _name_or_path="/data/checkpoints/tiny-llama-ft/", num_hidden_layers=8)
    reports = [rooflens.analyze(str(p), "h100", prompt=64, gen=4) for p in (c, d)]
    assert compare(reports).names == ["someone/tiny-llama", "tiny-llama-ft"]
    # A folder names its config too; a config file of another name keeps its stem.
    assert rooflens.load_model(tmp_path / "alpha").name == "alpha"
    other = tmp_path / "my-model.json"
    other.write_text(a.read_text())
    assert rooflens.load_model(str(other)).name == "my-model"


def test_labels_that_would_repeat_are_numbered(tmp_path):
    # Two configs naming the same model, one changed: the model is what differs, under one name.
    a = _config(tmp_path / "a", _name_or_path="someone/tiny-llama")
    b = _config(tmp_path / "b", _name_or_path="someone/tiny-llama", num_hidden_layers=8)
    reports = [rooflens.analyze(str(p), "h100", prompt=64, gen=4) for p in (a, b)]
    assert compare(reports).names == ["someone/tiny-llama #1", "someone/tiny-llama #2"]
    # Identical analyses: nothing differs, and the labels still tell them apart.
    same = [rooflens.analyze("gpt2", "t4", prompt=64, gen=4) for _ in range(3)]
    assert compare(same).names == ["same settings #1", "same settings #2", "same settings #3"]
    with pytest.raises(RooflensError, match="labels must differ; repeated: x"):
        compare(same[:2], names=["x", "x"])


def test_cli_labels_config_files_apart(tmp_path):
    a = _config(tmp_path / "alpha")
    b = _config(tmp_path / "beta", num_hidden_layers=8)
    result = CliRunner().invoke(
        app, ["compare", str(a), str(b), "-H", "h100", "-p", "64", "-g", "4", "-f", "json"]
    )
    assert result.exit_code == 0, result.output
    assert [x["label"] for x in json.loads(result.output)["analyses"]] == ["alpha", "beta"]
    # Two folders of one model: the CSV keeps one column per analysis (a repeated label lost one).
    c = _config(tmp_path / "c", _name_or_path="someone/tiny-llama")
    d = _config(tmp_path / "d", _name_or_path="someone/tiny-llama", num_hidden_layers=8)
    result = CliRunner().invoke(
        app, ["compare", str(c), str(d), "-H", "h100", "-p", "64", "-g", "4", "-f", "csv"]
    )
    assert result.exit_code == 0, result.output
    header = result.output.splitlines()[0].split(",")
    assert header == ["metric", "someone/tiny-llama #1", "someone/tiny-llama #2"]
    result = CliRunner().invoke(
        app, ["compare", str(a), str(b), "-H", "h100", "-p", "64", "-g", "4", "--no-ops"]
    )
    assert result.exit_code == 0 and "alpha" in result.output and "beta" in result.output


def test_cli_table_says_what_does_not_fit_and_each_analysis_notes():
    """The side-by-side table says which analysis fits (its times alone looked normal for a model
    8x the device's memory), and each analysis's notes follow it, a shared one once."""
    result = CliRunner().invoke(app, ["compare", "llama-3.1-8b", "deepseek-r1", "--no-ops"])
    assert result.exit_code == 0, result.output
    fits = next(line for line in result.output.splitlines() if "Fits in memory" in line)
    assert [c.strip() for c in fits.split("│")][2:4] == ["yes", "NO"]
    assert "note [B]: does not fit: needs 673.8 GB per device" in result.output
    assert "note [A]: does not fit" not in result.output
    assert result.output.count("API server a request also spends") == 1  # shared: "note (all)"
