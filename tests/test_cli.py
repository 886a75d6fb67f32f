"""The command line: every format, the catalogs, and one-line errors for bad input."""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from pathlib import Path

import pytest
import rich.markup
import typer
from rich.console import Console
from typer.testing import CliRunner

import rooflens
import rooflens.analysis
import rooflens.cli
from rooflens.cli import app
from rooflens.render.tables import Col, Row, cell, print_table
from rooflens.render.views import OP_HEADER, SUMMARY_HEADER

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
    # A device that lists no 16-bit peak shows none, not "0 FLOP/s" (its math falls back to fp32).
    gb10 = next(line for line in invoke("hardware", "--wide").output.splitlines() if "gb10" in line)
    assert "0 FLOP/s" not in gb10 and " - " in gb10


def test_formats_listing_is_the_one_table():
    """`rooflens formats` (which --quant's help names) lists every weight format with its aliases and
    every KV-cache format, as /api/formats does; each weight format runs with --quant."""
    from rooflens import formats

    rows = json.loads(invoke("formats", "--format", "json").output)
    weights = [r for r in rows if r["kind"] == "weights"]
    assert [r["name"] for r in weights] == list(formats.FORMATS)
    assert [r["name"] for r in rows if r["kind"] == "kv cache"] == list(formats.KV_FORMATS)
    awq = next(r for r in weights if r["name"] == "awq")
    # 4 bits a weight, and per group of 128 a 16-bit scale and a 4-bit zero point: 4 + 20 / 128
    assert awq["aliases"] == ["w4a16"] and awq["bits_per_value"] == pytest.approx(4 + 20 / 128)
    import typer

    analyze = typer.main.get_command(app).commands["analyze"]
    quant = next(p for p in analyze.params if p.name == "quant")
    assert "`rooflens formats`" in quant.help  # the command its help names exists
    assert "nvfp4" in invoke("formats").output


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


@pytest.mark.parametrize("workers", ["0", "-1", "1000"])
def test_serve_refuses_a_worker_count_out_of_range(workers, monkeypatch):
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("the server must not start"))
    result = invoke("serve", "--workers", workers)
    assert result.exit_code == 2
    assert f"--workers must be between 1 and 64 (got {workers})" in result.output
    assert "one per CPU core" in result.output and "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_serve_passes_uvicorn_the_app_or_the_factory_for_workers(monkeypatch):
    import uvicorn
    from fastapi import FastAPI

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: calls.append((a, k)))
    assert invoke("serve", "--port", "8123").exit_code == 0
    (app_arg,), kwargs = calls.pop()
    assert isinstance(app_arg, FastAPI)  # one process: the app object itself
    assert kwargs["port"] == 8123 and kwargs.get("workers", 1) == 1
    result = invoke("serve", "--workers", "4", "--host", "0.0.0.0", "--port", "8124")
    assert result.exit_code == 0, result.output
    (app_arg,), kwargs = calls.pop()
    # Several processes: uvicorn needs an import string, and create_app is a factory.
    assert app_arg == "rooflens.web:create_app"
    assert kwargs["factory"] is True and kwargs["workers"] == 4
    from rooflens.web.serving import NoDelayHTTP

    assert kwargs["http"] is NoDelayHTTP  # uvicorn's workers would leave Nagle on
    assert kwargs["host"] == "0.0.0.0" and kwargs["port"] == 8124
    import importlib

    module, name = app_arg.split(":")
    assert isinstance(getattr(importlib.import_module(module), name)(), FastAPI)


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
    for shown in ("[the format's, else 16]", "[fp16]", "[int]", "[128]", "[pp]", "[the device's domain]"):
        assert shown in text, shown
    simulate = _help("simulate")
    assert "[draft+1]" in text and "[engine's]" in simulate and "[the device's]" in simulate


def test_every_help_text_is_shown_as_written():
    group = typer.main.get_command(app)
    for name, command in group.commands.items():
        text = " ".join(_help(name).split())
        assert " ".join(rich.markup.render(command.help).plain.split()) in text, name
        for param in command.params:
            if param.help:
                written = rich.markup.render(param.help).plain  # the text as declared, unescaped
                assert " ".join(written.split()) in text, (name, param.name)


# --- Tables fit the terminal: columns are left out whole, never cut; --wide shows them all. ---


def _narrow(*args: str, columns: int = 80):
    result = runner.invoke(app, list(args), env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    return result.output


def _table_cells(text: str) -> list[list[str]]:
    """The cells of every table body line (│ a │ b │), stripped."""
    return [[c.strip() for c in line.split("│")[1:-1]] for line in text.splitlines() if line.startswith("│")]


PROSE_COLUMNS = {"Definition"}  # columns whose cells may wrap between words


def _assert_fitted(text: str, columns: int) -> None:
    assert max(len(line) for line in text.splitlines()) <= columns
    assert "…" not in text  # rich's mark of a cut cell
    headers: list[str] = []
    previous = ""
    for line in text.splitlines():
        if line.startswith("┃"):
            cells = [c.strip() for c in line.split("┃")[1:-1]]
            headers = (
                cells
                if not previous.startswith("┃")
                else [f"{a} {b}" for a, b in zip(headers, cells, strict=True)]
            )
        elif line.startswith("│"):
            cells = [c.strip() for c in line.split("│")[1:-1]]
            if not cells[0]:  # a continuation line: only prose may be there, never a figure or a name
                wrapped = {h for h, c in zip(headers, cells, strict=True) if c}
                assert wrapped <= PROSE_COLUMNS, (line, wrapped)
        previous = line


def test_analyze_fits_80_columns_and_keeps_every_operator_name_whole():
    text = _narrow("analyze", "llama-3-8b")
    _assert_fitted(text, 80)
    report = rooflens.analysis.analyze("llama-3-8b", "h100-sxm")  # the CLI's defaults
    names = {op.name for phase in report.phases() for op in phase.ops}
    first_cells = {cells[0] for cells in _table_cells(text)}
    assert names and names <= first_cells, names - first_cells
    assert "left out to fit 80 columns: Weight B, Act B, KV B" in text
    for header in ("Op", "Ideal", "Estimate", "Share", "Bound"):
        assert f"┃ {header} " in text


def test_wide_restores_every_column():
    text = _narrow("analyze", "llama-3-8b", "--wide")
    assert "left out" not in text
    for header in OP_HEADER + SUMMARY_HEADER:
        assert f"┃ {header} " in text, header
    assert max(len(line) for line in text.splitlines()) > 80  # full width, wider than the terminal
    assert "…" not in text


def test_a_pipe_without_columns_gets_132():
    result = runner.invoke(app, ["analyze", "llama-3-8b"], env={"COLUMNS": None})
    assert "left out" not in result.output and max(len(line) for line in result.output.splitlines()) <= 132


def test_compare_fits_80_columns():
    args = ("compare", "llama-3-8b", "--w-bits", "16", "--w-bits", "8", "--w-bits", "4", "--tp", "1")
    text = _narrow(*args, "--tp", "2", "--tp", "4")
    _assert_fitted(text, 80)
    report = rooflens.analysis.analyze("llama-3-8b", "h100-sxm")
    first_cells = {cells[0] for cells in _table_cells(text)}
    assert {op.name for op in report.prefill.ops} <= first_cells
    assert "[C] w_bits=4, tp=4" in text and "┃ C / A" in text
    narrow = _narrow(*args, "--tp", "2", "--tp", "4", columns=50)
    _assert_fitted(narrow, 50)
    assert "┃ C / A" not in narrow and "left out to fit 50 columns: B / A, C / A" in narrow


@pytest.mark.parametrize(
    "args",
    [
        ["models"],
        ["hardware"],
        ["simulate", "llama-3-8b", "-n", "40"],
        ["simulate", "llama-3-8b", "-n", "20", "--sweep", "concurrency=1,4"],
        ["sweep", "llama-3-8b", "-b", "1,8", "-H", "h100", "-H", "a100"],
        ["plan", "llama-3-8b", "-H", "h100", "-H", "a100"],
    ],
)
def test_other_tables_fit_80_columns(args):
    _assert_fitted(_narrow(*args), 80)
    assert "left out" not in _narrow(*args, "--wide")


def test_a_table_with_no_room_prints_whole_rather_than_cut():
    console = Console(file=io.StringIO(), width=24, markup=False)
    rows = [
        Row((cell("A section title that wraps", wrap=True),), section=True),
        ("a_long_operator_name", "1,234.5"),
    ]
    left_out = print_table(console, "t", [Col("Op"), Col("Value", 1), Col("Time")], rows)
    text = console.file.getvalue()
    assert left_out == ["Value"] and "left out to fit 24 columns: Value" in " ".join(text.split())
    assert "a_long_operator_name" in text and "1,234.5" not in text and "…" not in text
    assert max(len(line) for line in text.splitlines()) > 24  # the name needs more than the console has


# --- Help: options in panels, each shared option declared once. ---

COMMANDS = typer.main.get_command(app).commands


def _flags(command) -> list[str]:
    return [
        f for p in command.params if not p.hidden for f in (*p.opts, *p.secondary_opts) if f.startswith("-")
    ]


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_at_80_columns_shows_every_flag_name_whole(name):
    text = _help(name, columns=80)
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 80
    for flag in _flags(COMMANDS[name]):
        assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text), (name, flag)


def test_analyze_help_groups_its_options_in_panels():
    text = _help("analyze", columns=80)
    for panel in ("Workload", "Precision", "Parallelism and offload", "Techniques", "Output"):
        assert f"╭─ {panel} " in text, panel
    panels = {p.rich_help_panel for p in COMMANDS["analyze"].params if p.opts[0].startswith("--")}
    assert None not in panels  # every option sits in a panel (typer's own --help aside)


# One meaning, one declaration: these flags read the same in every command that takes them.
SHARED = ("--hardware", "--batch", "--prompt", "--gen", "--engine", "--quant", "--kv-format", "--w-bits",
          "--a-bits", "--kv-bits", "--tp", "--pp", "--ep", "--draft-model", "--sparsity", "--kv-budget",
          "--set", "--wide", "--device")  # fmt: skip
# Flags several commands take with different meanings (what is written, drawn or measured differs).
DIFFERENT = {"--format", "--output", "--out", "--plot", "--dtype", "--ops", "--rate", "--ideal", "--help"}


def _described(param) -> tuple:
    return (
        param.type_descriptor.annotation, param.multiple, param.is_flag, param.metavar, param.help,
        tuple(param.opts), tuple(param.secondary_opts), param.rich_help_panel,
    )  # fmt: skip


def test_shared_options_have_one_type_and_one_help_in_every_command():
    takers: dict[str, list[tuple[str, tuple]]] = {}
    for name, command in COMMANDS.items():
        for param in command.params:
            for flag in param.opts:
                if flag.startswith("--"):
                    takers.setdefault(flag, []).append((name, _described(param)))
    several = {flag for flag, users in takers.items() if len(users) > 1}
    assert set(SHARED) <= several
    for flag in several - DIFFERENT:  # the shared ones, and analyze's options that plot takes too
        first = takers[flag][0][1]
        for name, described in takers[flag][1:]:
            assert described == first, (flag, name, described, first)
    assert {"analyze", "compare", "sweep", "simulate"} <= {n for n, _ in takers["--w-bits"]}
    assert {"analyze", "compare", "plan", "simulate"} <= {n for n, _ in takers["--quant"]}
    assert {"analyze", "compare", "sweep", "plan", "simulate"} <= {n for n, _ in takers["--tp"]}


def test_shared_options_are_written_once_in_the_source():
    source = Path(rooflens.cli.__file__).read_text()
    for flag in SHARED:
        declared = re.findall(rf'(?:_values|_option|typer\.Option)\(\s*"{re.escape(flag)}"', source)
        assert len(declared) == 1, (flag, len(declared))
    assert "locals()" not in source


def test_one_value_or_several_by_command():
    bad = invoke("analyze", "gpt2", "-H", "t4", "--tp", "1,2")
    assert bad.exit_code == 2 and "--tp takes one value here, got 2 (1, 2)" in bad.output
    bad = invoke("analyze", "gpt2", "-H", "t4", "--batch", "x")
    assert bad.exit_code == 2 and "--batch takes a whole number, got 'x'" in bad.output
    listed = invoke("compare", "gpt2", "-H", "t4", "--w-bits", "16,8", "--no-ops")
    repeated = invoke("compare", "gpt2", "-H", "t4", "--w-bits", "16", "--w-bits", "8", "--no-ops")
    assert listed.exit_code == 0 and listed.output == repeated.output and "[B] w_bits=8" in listed.output
    sweep = invoke("sweep", "gpt2", "-H", "t4", "-b", "1", "--w-bits", "8", "--w-bits", "16")
    assert sweep.exit_code == 0 and "2 configurations" in sweep.output


def test_quantize_embeddings_and_its_no_form():
    def setting(*flags):
        result = invoke("analyze", "llama-2-7b", "-H", "m2-ultra", "--quant", "q4_0", *flags, "-f", "json")
        return json.loads(result.output)["settings"]["quantize_embeddings"]

    assert setting() is True and setting("--no-quantize-embeddings") is False
    assert setting("--quantize-embeddings") is True
    both = invoke("analyze", "gpt2", "--quantize-embeddings", "--no-quantize-embeddings")
    assert both.exit_code == 2 and "not both" in both.output


@pytest.mark.parametrize(
    "args",
    [
        ["compare", "[/x]"],
        ["sweep", "[/x]", "-b", "1"],
        ["plan", "[/x]"],
        ["simulate", "[/x]", "-n", "5"],
        ["plot", "[/x]", "--out", "x.html"],
        ["analyze", "gpt2", "--w-bits", "[/x]"],
        ["compare", "gpt2", "--variant", "[/x]"],
        ["sweep", "gpt2", "-b", "[/x]"],
        ["plan", "gpt2", "--tpot", "[/x]"],
        ["analyze", "gpt2", "--format", "[/x]"],
    ],
)
def test_brackets_in_any_argument_are_an_error_that_quotes_them(args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke(*args)
    assert result.exit_code == 2 and "[/x]" in result.output and "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
