"""The command line: every format, the catalogs, and one-line errors for bad input."""

from __future__ import annotations

import csv
import io
import json
import sys

import pytest
import rich.markup
import typer
from typer.testing import CliRunner

import rooflens
from rooflens.cli import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, list(args))


def test_table_output_has_phases_ops_and_memory():
    result = invoke("analyze", "llama-2-7b", "--hardware", "a100", "--prompt", "1024", "--gen", "64")
    assert result.exit_code == 0, result.output
    for text in (
        "TTFT",
        "TPOT",
        "Prefill",
        "Decode",
        "q_proj",
        "lm_head",
        "Largest batch that fits",
        "compute",
    ):
        assert text in result.output


def test_json_is_the_documented_contract_and_matches_the_api():
    args = dict(batch=4, prompt=2048, gen=256, w_bits=4, kv_bits=8)
    result = invoke(
        "analyze",
        "llama-3-8b",
        "-H",
        "h100",
        "-b",
        "4",
        "-p",
        "2048",
        "-g",
        "256",
        "--w-bits",
        "4",
        "--kv-bits",
        "8",
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    api = rooflens.analyze("llama-3-8b", "h100", **args).to_dict()
    assert data == json.loads(json.dumps(api))
    assert data["model"]["params"] == 8_030_261_248
    assert data["hardware"]["memory_bandwidth"] == 3.35e12
    for phase in ("prefill", "decode"):
        assert {"flops", "bytes", "time_s", "bound"} <= set(data[phase])
    assert {"tpot_s"} <= set(data["decode"])
    for key in ("total_time_s", "throughput_tokens_per_s"):
        assert data[key] > 0
    assert set(data["memory"]) >= {
        "weights_bytes",
        "kv_cache_bytes",
        "activations_bytes",
        "total_bytes",
        "fits",
    }
    op = data["ops"][0]
    assert set(op) >= {"name", "phase", "flops", "bytes", "intensity", "bound", "time_s"}
    assert sum(o["time_s"] for o in data["ops"] if o["phase"] == "decode") == pytest.approx(
        data["decode"]["time_s"]
    )


def test_csv_has_one_row_per_phase_and_op():
    result = invoke("analyze", "gpt2", "-H", "t4", "-p", "128", "-g", "16", "-f", "csv")
    assert result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(result.output)))
    report = rooflens.analyze("gpt2", "t4", prompt=128, gen=16)
    assert len(rows) == len(report.prefill.ops) + len(report.decode.ops)
    assert {r["phase"] for r in rows} == {"prefill", "decode"}


def test_markdown_and_per_layer(tmp_path):
    out = tmp_path / "report.md"
    result = invoke("analyze", "qwen2.5-0.5b", "-H", "l4", "-f", "markdown", "--per-layer", "-o", str(out))
    assert result.exit_code == 0
    text = out.read_text()
    assert "| Op |" in text and "**Layer 23**" in text and "**Layer 24**" not in text


def test_table_per_layer_lists_every_layer():
    result = invoke("analyze", "gpt2", "-H", "t4", "-p", "64", "-g", "4", "--per-layer")
    assert result.exit_code == 0
    assert "Layer 11" in result.output and "Layer 12" not in result.output


def test_catalog_listings():
    models = json.loads(invoke("models", "--format", "json").output)
    assert len(models) >= 20 and {"name", "params", "layers"} <= set(models[0])
    hardware = json.loads(invoke("hardware", "--format", "json").output)
    assert len(hardware) >= 20 and {"name", "memory_bandwidth", "peak_flops", "sources"} <= set(hardware[0])
    assert "llama-3.1-405b" in invoke("models").output
    assert "h100-sxm" in invoke("hardware").output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["analyze", "llama-2-7"], "unknown model 'llama-2-7'"),
        (["analyze", "gpt2", "-H", "h10"], "unknown hardware 'h10'"),
        (["analyze", "gpt2", "--batch", "0"], "batch: Input should be greater than or equal to 1"),
        (["analyze", "gpt2", "--prompt", "-3"], "prompt: Input should be greater than or equal to 1"),
        (["analyze", "gpt2", "--gen", "99999999999"], "gen: Input should be less than or equal to"),
        (["analyze", "gpt2", "--w-bits", "12"], "w_bits: Input should be 1, 2, 3, 4, 5, 6, 7, 8, 16 or 32"),
        (["analyze", "gpt2", "--dtype", "fp64"], "dtype: Input should be 'fp16' or 'bf16'"),
    ],
)
def test_bad_input_is_one_line_without_traceback(args, message):
    result = invoke(*args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert result.output.strip().startswith("error:") and result.output.strip().count("\n") == 0


def test_bad_files_are_one_line_errors(tmp_path):
    cases = {
        "broken.json": ("{oops", "is not valid JSON"),
        "partial.json": (json.dumps({"model_type": "llama", "hidden_size": 64}), "lacks required field"),
        "moe.json": (json.dumps({"model_type": "mamba"}), "model_type 'mamba' is not supported yet"),
    }
    for name, (text, message) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        result = invoke("analyze", str(path))
        assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    gpu = tmp_path / "gpu.yaml"
    gpu.write_text("name: x\nmemory_bytes: 8 GiB\npeak_flops: {fp16: 1e12}\n")
    result = invoke("analyze", "gpt2", "-H", str(gpu))
    assert result.exit_code == 2 and "memory_bandwidth: Field required" in result.output


def test_ops_frame_when_pandas_is_present():
    pd = pytest.importorskip("pandas")
    frame = rooflens.analyze("gpt2", "t4", prompt=32, gen=4).ops_frame()
    assert isinstance(frame, pd.DataFrame)
    assert {"name", "phase", "flops", "bytes", "time_s", "bound"} <= set(frame.columns)
    assert frame.groupby("phase")["time_s"].sum()["prefill"] == pytest.approx(
        rooflens.analyze("gpt2", "t4", prompt=32, gen=4).ttft_s
    )


def test_quant_presets_engines_and_estimate_switch():
    data = json.loads(
        invoke("analyze", "llama-2-7b", "-H", "m2-ultra", "--quant", "q4_0", "-f", "json").output
    )
    s = data["settings"]
    assert (s["w_bits"], s["group_size"], s["symmetric"], s["quantize_embeddings"]) == (4, 32, True, True)
    override = json.loads(
        invoke(
            "analyze", "llama-2-7b", "-H", "m2-ultra", "--quant", "q4_0", "--w-bits", "8", "-f", "json"
        ).output
    )
    assert override["settings"]["w_bits"] == 8 and override["settings"]["group_size"] == 32
    assert data["estimate"]["engine"] == "llama.cpp-metal" and data["ttft_estimate_s"] > data["ttft_s"]
    cuda = json.loads(
        invoke("analyze", "llama-2-7b", "-H", "rtx-4090", "--engine", "llama.cpp-cuda", "-f", "json").output
    )
    assert cuda["estimate"]["engine"] == "llama.cpp-cuda"
    bare = json.loads(invoke("analyze", "gpt2", "-H", "t4", "--no-estimate", "-f", "json").output)
    assert bare["estimate"] is None and bare["decode"]["tpot_estimate_s"] is None
    table = invoke("analyze", "llama-3-8b", "-H", "h100", "-p", "256", "-g", "8")
    assert "estimate" in table.output and "Estimate from" in table.output
    bad = invoke("analyze", "gpt2", "--quant", "q3_k")
    assert bad.exit_code == 2 and "unknown format 'q3_k'" in bad.output
    bad = invoke("analyze", "gpt2", "-H", "h100", "--engine", "nope")
    assert bad.exit_code == 2 and "unknown engine 'nope'; known engines: vllm, sglang" in bad.output


# --- User text is printed as written: rich markup is never read from it. ---


@pytest.mark.parametrize(
    ("module", "args", "hint"),
    [
        ("uvicorn", ["serve"], "pip install 'rooflens[web]'"),
        ("plotly", ["plot", "gpt2", "--out", "x.html"], "pip install 'rooflens[plot]'"),
        ("huggingface_hub", ["analyze", "acme/no-such-model", "--hf"], "pip install 'rooflens[hub]'"),
    ],
)
def test_install_hints_keep_their_extra(module, args, hint, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for name in [m for m in sys.modules if m == module or m.startswith(module + ".")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert hint in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("name", ["[/x]", "[bold]gpt2", "a [red]b[/red] c"])
def test_a_model_name_with_brackets_is_an_error_not_a_traceback(name):
    result = invoke("analyze", name)
    assert result.exit_code == 2
    assert f"unknown model '{name}'" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_hardware_file_with_brackets_in_its_name(tmp_path, monkeypatch):
    # The path 'gpu [/red].yaml' (a folder 'gpu [' holding 'red].yaml') reads as a closing markup tag.
    monkeypatch.chdir(tmp_path)
    path = "gpu [/red].yaml"
    result = invoke("analyze", "gpt2", "-H", path)
    assert result.exit_code == 2 and f"hardware file '{path}' does not exist" in result.output
    (tmp_path / "gpu [").mkdir()
    gpu = tmp_path / path
    gpu.write_text("name: [oops\n")
    result = invoke("analyze", "gpt2", "-H", path)
    assert result.exit_code == 2 and f"'{path}' is not valid YAML" in result.output
    gpu.write_text("name: gpu [/red]\nmemory_bytes: 8 GiB\npeak_flops: {fp16: 1e12}\n")
    result = invoke("analyze", "gpt2", "-H", path)  # a field is missing: the error names the file
    assert result.exit_code == 2 and "hardware file 'red].yaml'" in result.output
    assert "memory_bandwidth: Field required" in result.output and "Traceback" not in result.output
    gpu.write_text(
        "name: gpu [/red]\ndisplay_name: My [bold]GPU[/bold]\nmemory_bytes: 8 GiB\n"
        "memory_bandwidth: 500 GB/s\npeak_flops: {fp16: 100 TFLOPS}\n"
    )
    result = invoke("analyze", "gpt2", "-H", path, "-p", "64", "-g", "4")
    assert result.exit_code == 0, result.output
    assert "My [bold]GPU[/bold]" in result.output


def test_comparison_labels_and_catalog_titles_keep_their_brackets():
    result = invoke("compare", "gpt2", "-H", "t4", "--w-bits", "16", "--w-bits", "8", "--no-ops")
    assert result.exit_code == 0, result.output
    assert "[A] w_bits=16" in result.output and "[B] w_bits=8" in result.output


def _help(*args: str, columns: int = 400) -> str:
    result = runner.invoke(app, [*args, "--help"], env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    return result.output


def test_help_shows_bracketed_text():
    text = _help("analyze")
    for shown in ("[16]", "[fp16]", "[int]", "[128]", "[pp]", "[the device's domain]", "[draft+1]"):
        assert shown in text, shown
    assert "[engine's]" in _help("simulate") and "[the checkpoint's, else 16]" in _help("sweep")


def test_every_help_text_is_shown_as_written():
    group = typer.main.get_command(app)
    for name, command in group.commands.items():
        text = " ".join(_help(name).split())
        assert " ".join(rich.markup.render(command.help).plain.split()) in text, name
        for param in command.params:
            if param.help:
                written = rich.markup.render(param.help).plain  # the text as declared, unescaped
                assert " ".join(written.split()) in text, (name, param.name)
