"""Command line: parse, call the Python API, render. No figure is computed here."""

from __future__ import annotations

import inspect
import io
import json
import os
import sys
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from . import analysis as analysis_api
from .errors import RooflensError
from .hardware import list_hardware, load_hardware
from .model import list_models
from .plots import KINDS as PLOT_KINDS
from .render import (
    FORMAT_DROP,
    FORMATS,
    HARDWARE_DROP,
    MODEL_DROP,
    fit_lines,
    flatten,
    print_report,
    print_rows,
    report_csv,
    report_markdown,
    rows_csv,
    to_json,
)
from .render.sweep import print_sweep_summary, write_frame
from .render.views import format_columns, hardware_columns, model_columns
from .userfiles import write_user_text

app = typer.Typer(
    name="rooflens",
    help="How an LLM runs on given hardware: memory, TTFT, TPOT, throughput, operator by operator.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

Format = Enum("Format", {f: f for f in FORMATS}, type=str)  # type: ignore[misc]
ListFormat = Enum("ListFormat", {f: f for f in ("table", "json", "csv")}, type=str)  # type: ignore[misc]


def _fail(err: Exception) -> None:
    # markup=False: the message quotes user text (a model name, a file name) and install hints such as
    # 'rooflens[web]'; rich would read their square brackets as markup and drop them, or fail.
    Console(stderr=True, markup=False).print(f"error: {err}", style="red", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _console(file=None) -> Console:
    """The console output goes through: markup off, and a width that tables fit.

    The width is the terminal's, or COLUMNS where it is set (also when stdout is a pipe); a pipe without
    COLUMNS, or a file (--output), gets 132 columns: rich would take 80, too few for the operator table.
    Markup is off: everything printed is data (names, file names, figures), never rich markup.
    """
    console = Console(file=file, markup=False)
    if file is not None or not (console.is_terminal or os.environ.get("COLUMNS", "").strip().isdigit()):
        console = Console(file=file, width=132, markup=False)
    return console


# Help text is shown through rich with markup on (typer's panels need it); escaping each text keeps its
# square brackets ('[16]', '[the device's]') as written instead of read as markup tags.
def _option(*decls: str, help: str | None = None, **kwargs) -> Any:
    return typer.Option(*decls, help=None if help is None else escape(help), **kwargs)


def _argument(*, help: str | None = None, **kwargs) -> Any:
    return typer.Argument(help=None if help is None else escape(help), **kwargs)


def _command(func: Callable) -> Callable:
    """Registers a command; its docstring is its help, shown as written."""
    return app.command(help=escape(inspect.getdoc(func) or ""))(func)


def _floats(text: str | None, flag: str) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise RooflensError(f"{flag} takes comma-separated numbers, got {text!r}") from None


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        write_user_text(output, text)


# Help panels: analyze takes some fifty options; each command's help groups its options under these.
WORKLOAD = "Workload"
PRECISION = "Precision"
PARALLELISM = "Parallelism and offload"
TECHNIQUES = "Techniques"
OUTPUT = "Output"
SCHEDULER = "Scheduler"
TARGETS = "Targets and search"

# Options several commands take, declared once: one flag, one type, one help text. Each takes text that
# the command reads: one value where it runs one analysis (analyze, plot, simulate, validate), several
# (repeated, or listed as 1,2,4; whole numbers also as a doubling range 1:64) where it compares or
# searches (compare, sweep, plan: their help says so). '_one'/'_one_int', '_many'/'_many_ints' read them.
Values = list[str] | None


def _values(*decls: str, metavar: str, help: str, panel: str) -> Any:
    return _option(*decls, metavar=metavar, help=help, rich_help_panel=panel)


HardwareOption = Annotated[
    Values,
    _values(
        "--hardware", "-H", metavar="DEVICE", panel=WORKLOAD,
        help="Catalog name (rooflens hardware) or a YAML/JSON spec, such as a rooflens calibrate profile.",
    ),
]  # fmt: skip
BatchOption = Annotated[
    Values, _values("--batch", "-b", metavar="N", panel=WORKLOAD, help="Sequences processed together.")
]
PromptOption = Annotated[
    Values,
    _values(
        "--prompt",
        "-p",
        metavar="TOKENS",
        panel=WORKLOAD,
        help="Prompt tokens per sequence (simulate: mean).",
    ),
]
GenOption = Annotated[
    Values,
    _values(
        "--gen",
        "-g",
        metavar="TOKENS",
        panel=WORKLOAD,
        help="Generated tokens per sequence (simulate: mean).",
    ),
]
EngineOption = Annotated[
    Values,
    _values(
        "--engine", "-e", metavar="ENGINE", panel=WORKLOAD,
        help="Inference engine: vllm, sglang, tensorrt-llm, llama.cpp, mlx, transformers, tgi "
        "[the device's].",
    ),
]  # fmt: skip
QuantOption = Annotated[
    Values,
    _values(
        "--quant", metavar="FORMAT", panel=PRECISION,
        help="Named format: fp8, fp8-block, w8a8, awq, gptq, nvfp4, mxfp4, q4_0, ... (`rooflens formats`).",
    ),
]  # fmt: skip
KvFormatOption = Annotated[
    Values,
    _values(
        "--kv-format",
        metavar="FORMAT",
        panel=PRECISION,
        help="KV-cache format: bf16, fp8, fp8-head, int8-head, nvfp4.",
    ),
]
_BITS = "1-8, 16 or 32 [the format's, else 16]"
WBitsOption = Annotated[
    Values, _values("--w-bits", metavar="BITS", panel=PRECISION, help=f"Weight bits: {_BITS}.")
]
ABitsOption = Annotated[
    Values, _values("--a-bits", metavar="BITS", panel=PRECISION, help=f"Activation bits: {_BITS}.")
]
KvBitsOption = Annotated[
    Values, _values("--kv-bits", metavar="BITS", panel=PRECISION, help=f"KV-cache bits: {_BITS}.")
]
TpOption = Annotated[
    Values,
    _values("--tp", metavar="N", panel=PARALLELISM, help="Tensor-parallel degree (devices per instance)."),
]
PpOption = Annotated[
    Values, _values("--pp", metavar="N", panel=PARALLELISM, help="Pipeline-parallel stages.")
]
EpOption = Annotated[
    Values,
    _values(
        "--ep", metavar="N", panel=PARALLELISM, help="Expert-parallel degree (MoE; attention data-parallel)."
    ),
]
DraftModelOption = Annotated[
    Values,
    _values(
        "--draft-model", metavar="MODEL", panel=TECHNIQUES,
        help="Speculative decoding with this draft model ('none': without).",
    ),
]  # fmt: skip
SparsityOption = Annotated[
    Values,
    _values(
        "--sparsity", metavar="N:M", panel=TECHNIQUES, help="N:M weight sparsity, e.g. 2:4 ('none': dense)."
    ),
]
KvBudgetOption = Annotated[
    Values,
    _values(
        "--kv-budget", metavar="TOKENS", panel=TECHNIQUES,
        help="Token eviction: cached tokens kept per layer ('none': no budget).",
    ),
]  # fmt: skip
SetOption = Annotated[
    list[str] | None,
    _option(
        "--set", metavar="KEY=VALUE", rich_help_panel=WORKLOAD,
        help="Any setting (rooflens.Settings), applied to every analysis (repeat for several).",
    ),
]  # fmt: skip
FormatOption = Annotated[Format, _option("--format", "-f", help="Output format.", rich_help_panel=OUTPUT)]
ListFormatOption = Annotated[
    ListFormat, _option("--format", "-f", help="Output format.", rich_help_panel=OUTPUT)
]
WideOption = Annotated[
    bool,
    _option(
        "--wide", rich_help_panel=OUTPUT,
        help="Tables with every column at full width, however narrow the terminal (else the columns "
        "that do not fit are left out, and named).",
    ),
]  # fmt: skip
DeviceOption = Annotated[str, _option("--device", help="cpu or cuda[:N].")]


def _either(yes: bool, no: bool, flag: str) -> bool | None:
    """A setting given as a flag and its --no- form: True, False, or None where neither is given."""
    if yes and no:
        raise RooflensError(f"give {flag} or {flag.replace('--', '--no-', 1)}, not both")
    return True if yes else False if no else None


def _items(values: Values, split: bool = True) -> list[str]:
    return [p.strip() for v in values or [] for p in (v.split(",") if split else [v]) if p.strip()]


def _one(values: Values, flag: str, split: bool = True) -> str | None:
    """The value of an option this command takes once ('none' reads as no value)."""
    items = _items(values, split)
    if len(items) > 1:
        raise RooflensError(
            f"{flag} takes one value here, got {len(items)} ({', '.join(items)}); to compare several "
            f"use rooflens compare (or sweep, plan)"
        )
    return None if not items or items[0].lower() == "none" else items[0]


def _one_int(values: Values, flag: str) -> int | None:
    text = _one(values, flag)
    try:
        return None if text is None else int(text)
    except ValueError:
        raise RooflensError(f"{flag} takes a whole number, got {text!r}") from None


def _many(values: Values, split: bool = True) -> list[str | None]:
    """Every value given ('none' reads as no value)."""
    return [None if v.lower() == "none" else v for v in _items(values, split)]


def _many_ints(values: Values, flag: str) -> list[int]:
    return [n for v in values or [] for n in _ints(v, flag)]


# The options of one analysis: analyze and plot take them all (each adds its own output options).
def _analysis_options(
    model: Annotated[
        str, _argument(help="Catalog name, Hugging Face id (with --hf), or path to a config.json.")
    ],
    hardware: HardwareOption = ("h100-sxm",),
    batch: BatchOption = ("1",),
    prompt: PromptOption = ("1024",),
    gen: GenOption = ("128",),
    engine: EngineOption = None,
    estimate: Annotated[
        bool,
        _option(
            "--estimate/--no-estimate",
            rich_help_panel=WORKLOAD,
            help="Show the calibrated estimate beside the ideal.",
        ),
    ] = True,
    overhead_gib: Annotated[
        float | None,
        _option(
            "--overhead-gib",
            rich_help_panel=WORKLOAD,
            help="Runtime memory overhead (CUDA context, allocator) in GiB.",
        ),
    ] = None,
    hf: Annotated[
        bool,
        _option(
            "--hf", rich_help_panel=WORKLOAD, help="Fetch MODEL's config.json from the Hugging Face Hub."
        ),
    ] = False,
    quant: QuantOption = None,
    w_bits: WBitsOption = None,
    a_bits: ABitsOption = None,
    kv_bits: KvBitsOption = None,
    kv_format: KvFormatOption = None,
    expert_quant: Annotated[
        str | None,
        _option(
            "--expert-quant",
            rich_help_panel=PRECISION,
            help="A format for the routed experts only (e.g. mxfp4).",
        ),
    ] = None,
    dtype: Annotated[
        str | None,
        _option("--dtype", rich_help_panel=PRECISION, help="16-bit float format: fp16 or bf16 [fp16]."),
    ] = None,
    low_bit: Annotated[
        str | None,
        _option(
            "--low-bit",
            rich_help_panel=PRECISION,
            help="8/4-bit math as int (int8/int4) or float (fp8/fp4) [int].",
        ),
    ] = None,
    group_size: Annotated[
        int | None,
        _option("--group-size", rich_help_panel=PRECISION, help="Quantization group size for weights [128]."),
    ] = None,
    # A pair of flags as two options: as one, the pair's two names overflow 80 columns' help.
    quantize_embeddings: Annotated[
        bool,
        _option(
            "--quantize-embeddings",
            rich_help_panel=PRECISION,
            help="Quantize the embedding table and LM head too (as llama.cpp does) [the --quant format's].",
        ),
    ] = False,
    no_quantize_embeddings: Annotated[
        bool,
        _option(
            "--no-quantize-embeddings",
            rich_help_panel=PRECISION,
            help="Keep the embedding table and LM head at 16 bits, whatever the --quant format does.",
        ),
    ] = False,
    symmetric: Annotated[
        bool | None,
        _option(
            "--symmetric/--asymmetric",
            rich_help_panel=PRECISION,
            help="Quantization scales only, no zero points.",
        ),
    ] = None,
    wide_layers: Annotated[
        int,
        _option(
            "--wide-layers",
            rich_help_panel=PRECISION,
            help="Keep the first and last N layers at 16 bits [0].",
        ),
    ] = 0,
    tp: TpOption = ("1",),
    pp: PpOption = ("1",),
    ep: EpOption = ("1",),
    micro_batches: Annotated[
        int | None,
        _option(
            "--micro-batches",
            rich_help_panel=PARALLELISM,
            help="Pipeline micro-batches, for the bubble [pp].",
        ),
    ] = None,
    devices_per_node: Annotated[
        int | None,
        _option(
            "--devices-per-node",
            rich_help_panel=PARALLELISM,
            help="Devices on the fast interconnect [the device's domain].",
        ),
    ] = None,
    offload_weights: Annotated[
        float,
        _option(
            "--offload-weights",
            rich_help_panel=PARALLELISM,
            help="Share of the weights kept in host memory (0-1).",
        ),
    ] = 0.0,
    offload_experts: Annotated[
        float,
        _option(
            "--offload-experts",
            rich_help_panel=PARALLELISM,
            help="Share of the routed experts kept in host memory.",
        ),
    ] = 0.0,
    offload_kv: Annotated[
        float,
        _option(
            "--offload-kv",
            rich_help_panel=PARALLELISM,
            help="Share of the KV cache kept in host memory (0-1).",
        ),
    ] = 0.0,
    flash_attention: Annotated[
        bool,
        _option(
            "--flash-attention/--no-flash-attention", rich_help_panel=TECHNIQUES, help="Fused attention."
        ),
    ] = True,
    kv_cache: Annotated[
        bool,
        _option(
            "--kv-cache/--no-kv-cache",
            rich_help_panel=TECHNIQUES,
            help="Off: recompute the sequence every step.",
        ),
    ] = True,
    draft_model: DraftModelOption = None,
    draft_tokens: Annotated[
        int, _option("--draft-tokens", rich_help_panel=TECHNIQUES, help="Draft tokens per round.")
    ] = 4,
    acceptance_rate: Annotated[
        float,
        _option("--acceptance-rate", rich_help_panel=TECHNIQUES, help="Chance each draft token is accepted."),
    ] = 0.8,
    spec_heads: Annotated[
        str | None,
        _option(
            "--spec-heads",
            rich_help_panel=TECHNIQUES,
            help="Speculative decoding with heads on the model: mtp, eagle3 or medusa.",
        ),
    ] = None,
    verify_tokens: Annotated[
        int | None,
        _option(
            "--verify-tokens",
            rich_help_panel=TECHNIQUES,
            help="Tokens the target verifies per round (a tree) [draft+1].",
        ),
    ] = None,
    exit_fraction: Annotated[
        float,
        _option(
            "--exit-fraction",
            rich_help_panel=TECHNIQUES,
            help="Early exit: share of layers run per decoded token.",
        ),
    ] = 1.0,
    exit_distribution: Annotated[
        str | None,
        _option(
            "--exit-distribution",
            rich_help_panel=TECHNIQUES,
            help="Early exit: comma-separated exit probability per layer.",
        ),
    ] = None,
    sparsity: SparsityOption = None,
    prompt_keep: Annotated[
        float,
        _option(
            "--prompt-keep",
            rich_help_panel=TECHNIQUES,
            help="Prompt compression: share of prompt tokens kept.",
        ),
    ] = 1.0,
    prompt_keep_after: Annotated[
        int,
        _option(
            "--prompt-keep-after",
            rich_help_panel=TECHNIQUES,
            help="Layers that see the whole prompt before compression.",
        ),
    ] = 0,
    kv_budget: KvBudgetOption = None,
    shared_prefix: Annotated[
        int,
        _option(
            "--shared-prefix",
            rich_help_panel=TECHNIQUES,
            help="Prompt tokens shared by every sequence of the batch.",
        ),
    ] = 0,
    prefix_reads_once: Annotated[
        bool,
        _option(
            "--prefix-reads-once",
            rich_help_panel=TECHNIQUES,
            help="Attention reads the shared prefix once per step.",
        ),
    ] = False,
    routing: Annotated[
        str | None,
        _option(
            "--routing",
            rich_help_panel=TECHNIQUES,
            help="MoE routing: uniform, zipf (skew --routing-skew, default 1) or identical (identical "
            "prompts pick the same experts).",
        ),
    ] = None,
    routing_skew: Annotated[
        float,
        _option(
            "--routing-skew",
            rich_help_panel=TECHNIQUES,
            help="MoE expert popularity skew (Zipf exponent; 0 uniform).",
        ),
    ] = 0.0,
    mla_absorb: Annotated[
        str,
        _option(
            "--mla-absorb", rich_help_panel=TECHNIQUES, help="Latent attention path: auto, always or never."
        ),
    ] = "auto",
) -> None:
    """Never called: its signature is the option list of analyze and plot (see _with_analysis_options)."""


_ANALYSIS_PARAMETERS = list(inspect.signature(_analysis_options, eval_str=True).parameters.values())


def _with_analysis_options(func: Callable) -> Callable:
    """``func`` takes every analysis option as keyword arguments (``**analysis``), before its own."""
    own = [p for p in inspect.signature(func, eval_str=True).parameters.values() if p.kind != p.VAR_KEYWORD]
    func.__signature__ = inspect.Signature([*_ANALYSIS_PARAMETERS, *own])  # type: ignore[attr-defined]
    return func


@_command
@_with_analysis_options
def analyze(
    fmt: FormatOption = "table",  # type: ignore[assignment]
    wide: WideOption = False,
    per_layer: Annotated[
        bool, _option("--per-layer", rich_help_panel=OUTPUT, help="List every layer's operators separately.")
    ] = False,
    output: Annotated[
        Path | None,
        _option("--output", "-o", rich_help_panel=OUTPUT, help="Write to this file instead of stdout."),
    ] = None,
    **analysis: Any,
) -> None:
    """Roofline analysis of prefill and decode, operator by operator."""
    try:
        model, hardware, args = _analysis_args(**analysis)
        report = analysis_api.analyze(model, hardware, **args)
    except RooflensError as err:
        _fail(err)
        return
    try:
        _write_report(report, fmt.value, per_layer, wide, output)
        if fmt.value == "table" and output is None and not report.memory.fits:
            args.pop("hub", None)
            options = analysis_api.fits_with(report.model, report.hardware, report=report, **args)
            for line in fit_lines(options) or ["no TP within the scale-up domain, format or offload fits"]:
                _console().print(line, style="green", markup=False, highlight=False)
    except RooflensError as err:
        _fail(err)


def _write_report(report, kind: str, per_layer: bool, wide: bool, output: Path | None) -> None:
    if kind == "json":
        _emit(to_json(report.to_dict()), output)
    elif kind == "csv":
        _emit(report_csv(report), output)
    elif kind == "markdown":
        _emit(report_markdown(report, per_layer), output)
    elif output is not None:
        buffer = io.StringIO()
        print_report(report, _console(buffer), per_layer, wide)
        write_user_text(output, buffer.getvalue())
    else:
        print_report(report, _console(), per_layer, wide)


def _report(**options: Any):
    """The analysis that the analysis options (analyze's, plot's) describe."""
    model, hardware, args = _analysis_args(**options)
    return analysis_api.analyze(model, hardware, **args)


def _analysis_args(
    model, hardware, batch, prompt, gen, engine, hf, quant, kv_format, w_bits, a_bits, kv_bits, dtype,
    low_bit, group_size, quantize_embeddings, no_quantize_embeddings, symmetric, tp, pp, ep, draft_model,
    sparsity, kv_budget, overhead_gib, exit_distribution, routing, **settings
):  # fmt: skip
    """The model, the device and the ``rooflens.analyze`` arguments the analysis options describe."""
    # Precision options left unset take the --quant preset's value, else the default.
    given = {
        "w_bits": _one_int(w_bits, "--w-bits"), "a_bits": _one_int(a_bits, "--a-bits"),
        "kv_bits": _one_int(kv_bits, "--kv-bits"), "dtype": dtype, "low_bit": low_bit,
        "group_size": group_size, "symmetric": symmetric, "routing": routing,
        "quantize_embeddings": _either(quantize_embeddings, no_quantize_embeddings, "--quantize-embeddings"),
    }  # fmt: skip
    return (
        model,
        _one(hardware, "--hardware", split=False),
        dict(
            hub=hf,
            batch=_one_int(batch, "--batch"),
            prompt=_one_int(prompt, "--prompt"),
            gen=_one_int(gen, "--gen"),
            engine=_one(engine, "--engine"),
            quant=_one(quant, "--quant"),
            kv_format=_one(kv_format, "--kv-format"),
            tp=_one_int(tp, "--tp"),
            pp=_one_int(pp, "--pp"),
            ep=_one_int(ep, "--ep"),
            draft_model=_one(draft_model, "--draft-model"),
            sparsity=_one(sparsity, "--sparsity"),
            kv_budget=_one_int(kv_budget, "--kv-budget"),
            overhead_bytes=None if overhead_gib is None else overhead_gib * 2**30,
            exit_distribution=_floats(exit_distribution, "--exit-distribution"),
            **settings,
            **{k: v for k, v in given.items() if v is not None},
        ),
    )


PlotKind = Enum("PlotKind", {k: k for k in PLOT_KINDS}, type=str)  # type: ignore[misc]


@_command
@_with_analysis_options
def plot(
    kind: Annotated[
        PlotKind,
        _option(
            "--kind", "-k", rich_help_panel=OUTPUT, help="roofline, breakdown, memory, timeline or block."
        ),
    ] = "roofline",  # type: ignore[assignment]
    out: Annotated[
        Path,
        _option(
            "--out",
            rich_help_panel=OUTPUT,
            help="File to write: .html (plotly.js inline, offline) or .png/.svg/.pdf.",
        ),
    ] = Path("rooflens.html"),
    **analysis: Any,
) -> None:
    """A figure of the analysis: the roofline, time by operator kind, memory, decode timeline or block."""
    from . import plots

    try:
        report = _report(**analysis)
        fig = plots.KINDS[kind.value](report)
        plots.write_figure(fig, out)
    except RooflensError as err:
        _fail(err)
        return
    _console().print(f"wrote {out} ({kind.value} of {report.model.name} on {report.hardware.name})")


def _listing(
    fmt: str, rows: list[dict], columns: list[tuple[str, str]], title: str, drop: dict[str, int], wide: bool
) -> None:
    if fmt == "json":
        _emit(to_json(rows), None)
    elif fmt == "csv":
        _emit(rows_csv(rows), None)
    else:
        print_rows(rows, columns, _console(), title, drop, wide)


@_command
def models(
    fmt: ListFormatOption = "table",  # type: ignore[assignment]
    wide: WideOption = False,
) -> None:
    """List the bundled model catalog."""
    rows = [m.summary() for m in list_models()]
    title = f"{len(rows)} bundled models (add your own: pass a config.json path)"
    _listing(fmt.value, rows, model_columns(rows), title, MODEL_DROP, wide)


@_command
def hardware(
    fmt: ListFormatOption = "table",  # type: ignore[assignment]
    wide: WideOption = False,
) -> None:
    """List the bundled hardware catalog (every figure has a source: see --format json)."""
    rows = [h.summary() for h in list_hardware()]
    title = f"{len(rows)} bundled devices (add your own: --hardware my_gpu.yaml)"
    _listing(fmt.value, rows, hardware_columns(rows), title, HARDWARE_DROP, wide)


@_command
def formats(
    fmt: ListFormatOption = "table",  # type: ignore[assignment]
    wide: WideOption = False,
) -> None:
    """List the number formats: weight formats for --quant (and --expert-quant), KV-cache formats
    for --kv-format."""
    from .formats import kv_rows, weight_rows

    rows = [{"kind": "weights", **r} for r in weight_rows()] + [{"kind": "kv cache", **r} for r in kv_rows()]
    title = f"{len(rows)} number formats (--quant NAME, --kv-format NAME)"
    _listing(fmt.value, rows, format_columns(rows), title, FORMAT_DROP, wide)


@_command
def calibrate(
    device: DeviceOption = "cpu",
    dtype: Annotated[
        list[str] | None, _option("--dtype", help="Dtypes to measure (repeatable): fp32, fp16, bf16.")
    ] = None,
    quick: Annotated[bool, _option("--quick", help="Tiny shapes: seconds, for smoke tests.")] = False,
    name: Annotated[str | None, _option("--name", help="Name of the profile (default: host name).")] = None,
    output: Annotated[Path, _option("--output", "-o", help="Profile file to write (YAML).")] = Path(
        "profile.yaml"
    ),
) -> None:
    """Measure this machine (PyTorch) and write a hardware profile that --hardware accepts."""
    import yaml
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from .measure.calibrate import calibrate as run_calibration
    from .measure.calibrate import fmt_summary

    try:
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}", markup=False),
            TimeElapsedColumn(),
            transient=True,
        ) as bar:
            task = bar.add_task("starting", total=None)
            profile = run_calibration(
                device,
                tuple(dtype) if dtype else None,
                quick,
                name,
                lambda msg: bar.update(task, description=msg),
            )
        load_hardware(profile)  # the profile must be a valid --hardware file
    except RooflensError as err:
        _fail(err)
        return
    try:
        write_user_text(output, yaml.safe_dump(profile, sort_keys=False, width=120))
    except RooflensError as err:
        _fail(err)
    console = _console()
    for line in fmt_summary(profile):
        console.print(line, highlight=False)
    console.print(f"wrote {output} (use it with --hardware {output})", highlight=False)


def _scalar(text: str) -> object:
    """A KEY=VALUE value: a JSON number, boolean or null if it reads as one, else the string.

    (Not YAML: YAML 1.1 reads '2:4' as the base-60 integer 124.)
    """
    text = text.strip()
    if text.lower() in ("none", "null"):
        return None
    try:
        return json.loads(text.lower() if text.lower() in ("true", "false") else text)
    except json.JSONDecodeError:
        return text


def _pairs(items: list[str] | None, flag: str) -> dict[str, object]:
    """KEY=VALUE settings; the settings model validates names and values."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise RooflensError(f"{flag} takes KEY=VALUE (a setting name such as w_bits=4), got {item!r}")
        out[key.strip().replace("-", "_")] = _scalar(value)
    return out


def _zip_variants(lists: dict[str, list]) -> list[dict[str, object]]:
    """Options given several times form the analyses; options given once apply to all of them."""
    given = {k: v for k, v in lists.items() if v}
    counts = {len(v) for v in given.values() if len(v) > 1}
    if len(counts) > 1:
        detail = ", ".join(f"{k} x{len(v)}" for k, v in given.items() if len(v) > 1)
        raise RooflensError(
            f"options repeated a different number of times ({detail}); repeat each the same number"
        )
    n = counts.pop() if counts else 1
    return [{k: (v[i] if len(v) > 1 else v[0]) for k, v in given.items()} for i in range(n)]


@_command
def compare(
    models: Annotated[list[str], _argument(help="Model(s): one is shared, several are compared.")],
    hardware: HardwareOption = ("h100-sxm",),
    batch: BatchOption = None,
    prompt: PromptOption = None,
    gen: GenOption = None,
    quant: QuantOption = None,
    kv_format: KvFormatOption = None,
    w_bits: WBitsOption = None,
    a_bits: ABitsOption = None,
    kv_bits: KvBitsOption = None,
    tp: TpOption = None,
    pp: PpOption = None,
    ep: EpOption = None,
    draft_model: DraftModelOption = None,
    sparsity: SparsityOption = None,
    kv_budget: KvBudgetOption = None,
    variant: Annotated[
        list[str] | None,
        _option(
            "--variant",
            rich_help_panel=WORKLOAD,
            help="One analysis as KEY=VALUE[;KEY=VALUE...] (repeat for several).",
        ),
    ] = None,
    setting: SetOption = None,
    fmt: ListFormatOption = "table",  # type: ignore[assignment]
    wide: WideOption = False,
    ops: Annotated[
        bool, _option("--ops/--no-ops", rich_help_panel=OUTPUT, help="Show the per-operator change.")
    ] = True,
    plot_out: Annotated[
        Path | None,
        _option(
            "--plot",
            rich_help_panel=OUTPUT,
            help="Also draw the comparison into this file (.html, .png, .svg).",
        ),
    ] = None,
) -> None:
    """Two or more analyses side by side, e.g. --w-bits 16 --w-bits 4 (or --w-bits 16,4), or --tp 1,4.

    Options given several values (repeated or listed) form the analyses; those given one apply to all.
    """
    from .compare import compare as line_up
    from .render.compare import print_comparison

    try:
        lists = {
            "model": models,
            "hardware": _many(hardware, split=False),
            "batch": _many_ints(batch, "--batch"),
            "prompt": _many_ints(prompt, "--prompt"),
            "gen": _many_ints(gen, "--gen"),
            "quant": _many(quant),
            "kv_format": _many(kv_format),
            "w_bits": _many_ints(w_bits, "--w-bits"),
            "a_bits": _many_ints(a_bits, "--a-bits"),
            "kv_bits": _many_ints(kv_bits, "--kv-bits"),
            "tp": _many_ints(tp, "--tp"),
            "pp": _many_ints(pp, "--pp"),
            "ep": _many_ints(ep, "--ep"),
            "draft_model": _many(draft_model),
            "sparsity": _many(sparsity),
            "kv_budget": _many(kv_budget),
        }
        variants = _zip_variants(lists)
        if variant:
            if len(variants) > 1:
                raise RooflensError("use either repeated options or --variant, not both")
            variants = [{**variants[0], **_pairs(v.split(";"), "--variant")} for v in variant]
        common = _pairs(setting, "--set")
        reports = []
        for v in variants:
            v = {**common, **v}
            reports.append(
                analysis_api.analyze(
                    v.pop("model"),
                    v.pop("hardware"),
                    quant=v.pop("quant", None),
                    kv_format=v.pop("kv_format", None),
                    **v,
                )
            )
        cmp = line_up(reports)
        if plot_out is not None:
            from .plots import comparison, write_figure

            write_figure(comparison(cmp), plot_out)
    except RooflensError as err:
        _fail(err)
        return
    if fmt.value == "json":
        _emit(to_json(cmp.to_dict()), None)
    elif fmt.value == "csv":
        rows = [
            {"metric": r["metric"], **dict(zip(cmp.names, r["values"], strict=True))}
            for r in cmp.metric_rows()
        ]
        _emit(rows_csv(rows), None)
    else:
        print_comparison(cmp, _console(), ops, wide)


def _workloads(batch: int, prompt: int, gen: int, specs: list[str] | None):
    from .measure.validate import Workload

    if not specs:
        return [Workload(batch, prompt, gen)]
    out = []
    for text in specs:
        parts = text.replace("x", ",").split(",")
        if len(parts) != 3 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
            raise RooflensError(
                f"workload '{text}' must be three positive integers BATCH,PROMPT,GEN (e.g. 1,128,32)"
            )
        out.append(Workload(*(int(p) for p in parts)))
    return out


@_command
def validate(
    model: Annotated[
        str | None, _argument(help="Model to run for real (catalog name or config.json).")
    ] = None,
    hardware: HardwareOption = ("profile.yaml",),
    device: DeviceOption = "cpu",
    dtype: Annotated[str, _option("--dtype", help="fp32, fp16 or bf16.")] = "fp32",
    batch: BatchOption = ("1",),
    prompt: PromptOption = ("128",),
    gen: GenOption = ("32",),
    workload: Annotated[
        list[str] | None,
        _option("--workload", "-w", help="BATCH,PROMPT,GEN (repeatable; overrides -b/-p/-g)."),
    ] = None,
    repeats: Annotated[int, _option("--repeats", help="Timed runs per workload (after one warm-up).")] = 3,
    ops: Annotated[
        bool, _option("--ops", help="Attribute time to operators with the PyTorch profiler.")
    ] = False,
    published: Annotated[
        bool,
        _option("--published", help="Compare with published measurements instead of running a model."),
    ] = False,
    split: Annotated[str, _option("--split", help="Published split: report or calibration.")] = "report",
    data: Annotated[Path | None, _option("--data", help="Published dataset (CSV).")] = None,
    rows: Annotated[
        bool, _option("--rows", rich_help_panel=OUTPUT, help="With --published: list every row.")
    ] = False,
    plot: Annotated[
        Path | None,
        _option(
            "--plot",
            rich_help_panel=OUTPUT,
            help="With --published: write estimated against measured time (HTML or image).",
        ),
    ] = None,
    fmt: ListFormatOption = "table",  # type: ignore[assignment]
    wide: WideOption = False,
    output: Annotated[
        Path | None, _option("--output", "-o", rich_help_panel=OUTPUT, help="Also write the results (CSV).")
    ] = None,
) -> None:
    """Compare rooflens with reality: a real model run here, or published measurements."""
    from .render.validation import print_published, print_published_rows, print_runs

    console = _console()
    try:
        if published:
            from .measure import published as pub

            if split not in ("report", "calibration"):
                raise RooflensError(f"--split must be report or calibration, not '{split}'")
            if model is not None:
                raise RooflensError(
                    f"--published compares the published dataset's own rows; it runs no MODEL "
                    f"('{model}'): leave it out, or drop --published to run it here"
                )
            if plot is not None:
                from .plots import check_figure_path

                check_figure_path(plot)  # before the minute the rows take, not after
            results = pub.evaluate_rows(r for r in pub.load_rows(data) if r.split == split)
            summary = pub.error_summary(results)
            table_rows = [pub.result_dict(r) for r in results]
            if fmt.value == "table":
                print_published(summary, console, split, wide)
                if rows:
                    print_published_rows(results, console, wide)
            if plot is not None:
                from .plots import published_scatter, write_figure

                write_figure(published_scatter(results), plot)
        else:
            if model is None:
                raise RooflensError(
                    "give a MODEL to run, or --published to compare with published measurements"
                )
            if plot is not None or rows or data is not None:
                raise RooflensError("--plot, --rows and --data go with --published")
            from .measure.validate import validate as run_validation

            workloads = _workloads(
                _one_int(batch, "--batch"), _one_int(prompt, "--prompt"), _one_int(gen, "--gen"), workload
            )
            results = run_validation(
                model, _one(hardware, "--hardware", split=False), workloads,
                device=device, dtype=dtype, repeats=repeats, with_ops=ops,
            )  # fmt: skip
            table_rows = [r.to_dict() for r in results]
            summary = table_rows
            if fmt.value == "table":
                print_runs(results, console, wide)
    except RooflensError as err:
        _fail(err)
        return
    if fmt.value == "json":
        _emit(to_json(summary if published else table_rows), None)
    elif fmt.value == "csv":
        _emit(rows_csv([{k: v for k, v in r.items() if k != "ops"} for r in table_rows]), None)
    if output is not None:
        try:
            write_user_text(
                output, rows_csv([{k: v for k, v in r.items() if k != "ops"} for r in table_rows])
            )
        except RooflensError as err:
            _fail(err)


def _ints(text: str, flag: str) -> list[int]:
    """'1,2,4' or a doubling range '1:1024' (1, 2, 4, ... 1024)."""
    try:
        if ":" in text:
            lo, hi = (int(v) for v in text.split(":"))
            if lo < 1 or hi < lo:
                raise ValueError
            return [lo * 2**i for i in range(64) if lo * 2**i <= hi]
        return [int(v) for v in text.split(",")]
    except ValueError:
        raise RooflensError(
            f"{flag} takes comma-separated integers (1,2,4) or a doubling range (1:1024), got {text!r}"
        ) from None


@_command
def sweep(
    model: Annotated[str, _argument(help="Catalog name or path to a config.json.")],
    hardware: HardwareOption = ("h100-sxm",),
    batch: BatchOption = ("1:256",),
    prompt: PromptOption = ("1024",),
    gen: GenOption = ("128",),
    w_bits: WBitsOption = None,
    a_bits: ABitsOption = None,
    kv_bits: KvBitsOption = None,
    tp: TpOption = ("1",),
    pp: PpOption = ("1",),
    setting: SetOption = None,
    out: Annotated[
        Path | None,
        _option(
            "--out", "-o", rich_help_panel=OUTPUT, help="Write every row: .csv or .parquet (else a summary)."
        ),
    ] = None,
    plot_out: Annotated[
        Path | None,
        _option(
            "--plot",
            rich_help_panel=OUTPUT,
            help="Throughput per device against per-user TPOT, the frontier marked.",
        ),
    ] = None,
    wide: WideOption = False,
) -> None:
    """Many configurations at once (vectorised): every combination of the listed values.

    Options take lists (1,8,64), whole numbers also doubling ranges (1:1024); repeat --hardware.
    """
    from rich.progress import Progress

    from .sweep import sweep as run_sweep

    try:
        axes = {
            name: _many_ints(values, flag)
            for name, values, flag in (
                ("batch", batch, "--batch"), ("prompt", prompt, "--prompt"), ("gen", gen, "--gen"),
                ("tp", tp, "--tp"), ("pp", pp, "--pp"), ("w_bits", w_bits, "--w-bits"),
                ("a_bits", a_bits, "--a-bits"), ("kv_bits", kv_bits, "--kv-bits"),
            )
            if values
        }  # fmt: skip
        fixed = _pairs(setting, "--set")
        clash = sorted(set(fixed) & {*axes, "hardware"})
        if clash:
            raise RooflensError(f"--set {', '.join(clash)}: use the sweep's own options for these axes")
        with Progress(console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("sweeping", total=None)
            result = run_sweep(
                model,
                hardware=_many(hardware, split=False),
                progress=lambda done, total: bar.update(task, completed=done, total=total),
                **axes,
                **fixed,
            )
        frame = result.to_frame()
        if out is not None:
            write_frame(frame, out)
        if plot_out is not None:
            from .plots import frontier, write_figure

            write_figure(frontier(frame), plot_out)
    except RooflensError as err:
        _fail(err)
        return
    console = _console()
    print_sweep_summary(frame, result.skipped, console, wide=wide)
    if out is not None:
        console.print(f"wrote {len(frame):,} rows to {out}")


def _seconds(text: str, flag: str) -> float:
    from .units import parse_quantity

    try:
        return parse_quantity(text, "seconds")
    except ValueError as err:
        raise RooflensError(f"{flag}: {err}") from None


@_command
def plan(
    model: Annotated[str, _argument(help="Catalog name or path to a config.json.")],
    prompt: PromptOption = ("1024",),
    gen: GenOption = ("256",),
    ttft: Annotated[
        str, _option("--ttft", rich_help_panel=TARGETS, help="TTFT target, e.g. 0.5s or 500ms.")
    ] = "1s",
    tpot: Annotated[str, _option("--tpot", rich_help_panel=TARGETS, help="TPOT target, e.g. 50ms.")] = "50ms",
    rate: Annotated[
        float | None,
        _option("--rate", rich_help_panel=TARGETS, help="Requests per second to serve (sizes replicas)."),
    ] = None,
    hardware: HardwareOption = None,
    price: Annotated[
        list[str] | None,
        _option(
            "--price", rich_help_panel=TARGETS, help="DEVICE=USD per device-hour, e.g. H100=2.5 (repeat)."
        ),
    ] = None,
    quant: QuantOption = ("w16a16,fp8,w8a8,w4a16,nvfp4",),
    kv_format: KvFormatOption = ("bf16,fp8",),
    tp: TpOption = ("1,2,4,8",),
    pp: PpOption = ("1",),
    ep: EpOption = ("1",),
    allow_offload: Annotated[
        bool,
        _option(
            "--allow-offload", rich_help_panel=TARGETS, help="Also try 25-75% of the weights in host memory."
        ),
    ] = False,
    ideal: Annotated[
        bool,
        _option("--ideal", rich_help_panel=TARGETS, help="Rank on the ideal roofline, not the estimate."),
    ] = False,
    every_batch: Annotated[
        bool,
        _option(
            "--every-batch",
            rich_help_panel=TARGETS,
            help="List every passing batch, not the cheapest per set-up.",
        ),
    ] = False,
    top: Annotated[int, _option("--top", min=1, rich_help_panel=OUTPUT, help="Rows in the table.")] = 10,
    fmt: ListFormatOption = "table",  # type: ignore[assignment]
    wide: WideOption = False,
    plot_out: Annotated[
        Path | None,
        _option(
            "--plot",
            rich_help_panel=OUTPUT,
            help="Cost against TPOT of every candidate that fits (.html/.png).",
        ),
    ] = None,
) -> None:
    """The cheapest hardware, device count, quantization and batch that meet latency targets.

    --quant, --kv-format, --tp, --pp and --ep list the values to try (1,2,4,8); repeat --hardware.
    """
    from .hardware.prices import parse_price_overrides
    from .plan import plan as make_plan
    from .render.sweep import print_plan

    try:
        result = make_plan(
            model,
            prompt=_one_int(prompt, "--prompt"),
            gen=_one_int(gen, "--gen"),
            ttft=_seconds(ttft, "--ttft"),
            tpot=_seconds(tpot, "--tpot"),
            rate=rate,
            hardware=_many(hardware, split=False) or None,
            prices=parse_price_overrides(price),
            quants=_many(quant),
            kv_formats=_many(kv_format),
            tp=_many_ints(tp, "--tp"),
            pp=_many_ints(pp, "--pp"),
            ep=_many_ints(ep, "--ep"),
            allow_offload=allow_offload,
            use_estimate=not ideal,
            every_batch=every_batch,
        )
        if plot_out is not None:
            from .plots import cost_latency, write_figure

            write_figure(cost_latency(result.candidates, _seconds(tpot, "--tpot")), plot_out)
    except RooflensError as err:
        _fail(err)
        return
    if fmt.value == "json":
        _emit(to_json(result.to_dict()), None)
    elif fmt.value == "csv":
        _emit(result.entries.to_csv(index=False), None)
    else:
        print_plan(result, _console(), top, wide)


@_command
def simulate(
    model: Annotated[str, _argument(help="Catalog name or path to a config.json.")],
    hardware: HardwareOption = ("h100-sxm",),
    rate: Annotated[
        float | None,
        _option(
            "--rate",
            "-r",
            rich_help_panel=WORKLOAD,
            help="Requests per second, open loop (Poisson) [4 without --concurrency]; with --concurrency, "
            "at most that many in flight.",
        ),
    ] = None,
    concurrency: Annotated[
        int | None,
        _option(
            "--concurrency",
            "-c",
            rich_help_panel=WORKLOAD,
            help="Closed loop: users each sending a request when theirs ends (with --rate: the cap on "
            "requests in flight).",
        ),
    ] = None,
    sweep: Annotated[
        str | None,
        _option(
            "--sweep",
            rich_help_panel=WORKLOAD,
            help="concurrency=1,2,4,8 (or 1:64): one closed-loop run per value.",
        ),
    ] = None,
    engine: EngineOption = None,
    prompt: PromptOption = ("1024",),
    gen: GenOption = ("256",),
    random_range_ratio: Annotated[
        float,
        _option(
            "--random-range-ratio",
            rich_help_panel=WORKLOAD,
            help="Lengths uniform in [L(1-r), L(1+r)], vLLM's random dataset.",
        ),
    ] = 0.0,
    requests: Annotated[
        int,
        _option("--requests", "-n", rich_help_panel=WORKLOAD, help="Requests to simulate (per sweep point)."),
    ] = 500,
    constant: Annotated[
        bool, _option("--constant", rich_help_panel=WORKLOAD, help="Evenly spaced arrivals, not Poisson.")
    ] = False,
    seed: Annotated[int, _option("--seed", rich_help_panel=WORKLOAD)] = 0,
    tp: TpOption = ("1",),
    replicas: Annotated[
        int, _option("--replicas", rich_help_panel=PARALLELISM, help="Instances sharing the traffic.")
    ] = 1,
    disaggregate: Annotated[
        str | None,
        _option(
            "--disaggregate", rich_help_panel=PARALLELISM, help="P:D prefill and decode instances, e.g. 1:2."
        ),
    ] = None,
    quant: QuantOption = None,
    kv_format: KvFormatOption = None,
    w_bits: WBitsOption = None,
    a_bits: ABitsOption = None,
    kv_bits: KvBitsOption = None,
    gpu_memory_utilization: Annotated[
        float | None,
        _option(
            "--gpu-memory-utilization",
            rich_help_panel=SCHEDULER,
            help="Share of device memory the engine may use [engine's].",
        ),
    ] = None,
    max_num_seqs: Annotated[
        int | None,
        _option("--max-num-seqs", rich_help_panel=SCHEDULER, help="Most sequences per step [engine's]."),
    ] = None,
    max_batched_tokens: Annotated[
        int | None,
        _option("--max-batched-tokens", rich_help_panel=SCHEDULER, help="Token budget per step [engine's]."),
    ] = None,
    chunked_prefill: Annotated[
        bool,
        _option(
            "--chunked-prefill",
            rich_help_panel=SCHEDULER,
            help="Split long prompts over steps within the token budget [engine's].",
        ),
    ] = False,
    no_chunked_prefill: Annotated[
        bool,
        _option(
            "--no-chunked-prefill",
            rich_help_panel=SCHEDULER,
            help="Prefill each prompt whole, in one step [engine's].",
        ),
    ] = False,
    mixed_steps: Annotated[
        bool,
        _option(
            "--mixed-steps",
            rich_help_panel=SCHEDULER,
            help="Carry the running decodes in steps with prompt tokens, as vLLM does [engine's].",
        ),
    ] = False,
    no_mixed_steps: Annotated[
        bool,
        _option(
            "--no-mixed-steps",
            rich_help_panel=SCHEDULER,
            help="Run prompts in steps of their own while decodes wait, as SGLang does [engine's].",
        ),
    ] = False,
    block_size: Annotated[
        int | None, _option("--block-size", rich_help_panel=SCHEDULER, help="KV tokens per block [engine's].")
    ] = None,
    cuda_graph_max_batch: Annotated[
        int | None,
        _option(
            "--cuda-graph-max-batch",
            rich_help_panel=SCHEDULER,
            help="Decode batches padded to CUDA-graph sizes up to this [engine's].",
        ),
    ] = None,
    recv_interval: Annotated[
        int | None,
        _option(
            "--recv-interval",
            rich_help_panel=SCHEDULER,
            help="Decode steps between intakes of new requests (SGLang's --scheduler-recv-interval).",
        ),
    ] = None,
    prefix_hit: Annotated[
        float,
        _option(
            "--prefix-hit", rich_help_panel=SCHEDULER, help="Share of each prompt found in the prefix cache."
        ),
    ] = 0.0,
    ideal: Annotated[
        bool, _option("--ideal", rich_help_panel=WORKLOAD, help="Step costs from the ideal roofline.")
    ] = False,
    fmt: ListFormatOption = "table",  # type: ignore[assignment]
    wide: WideOption = False,
    plot_out: Annotated[
        Path | None,
        _option(
            "--plot",
            rich_help_panel=OUTPUT,
            help="With --sweep: output tokens/s per device against tokens/s per user (.html/.png).",
        ),
    ] = None,
) -> None:
    """A continuous-batching server under load: batch, KV concurrency, queueing, latency percentiles."""
    from dataclasses import replace

    from .render.serving import print_concurrency_sweep, print_serving
    from .serving import scheduler_defaults, sweep_concurrency
    from .serving import simulate as run_simulation

    try:
        hardware_name, engine_name = _one(hardware, "--hardware", split=False), _one(engine, "--engine")
        bits = {
            "w_bits": (w_bits, "--w-bits"),
            "a_bits": (a_bits, "--a-bits"),
            "kv_bits": (kv_bits, "--kv-bits"),
        }
        given_bits = {k: _one_int(v, flag) for k, (v, flag) in bits.items()}
        split = None
        if disaggregate is not None:
            parts = disaggregate.split(":")
            if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
                raise RooflensError(
                    f"--disaggregate takes P:D instance counts such as 1:2, got {disaggregate!r}"
                )
            split = (int(parts[0]), int(parts[1]))
        knobs = {
            "gpu_memory_utilization": gpu_memory_utilization, "max_num_seqs": max_num_seqs,
            "max_num_batched_tokens": max_batched_tokens,
            "chunked_prefill": _either(chunked_prefill, no_chunked_prefill, "--chunked-prefill"),
            "mixed_steps": _either(mixed_steps, no_mixed_steps, "--mixed-steps"),
            "block_size": block_size, "cuda_graph_max_batch": cuda_graph_max_batch,
            "recv_interval": recv_interval, "prefix_cache_hit_rate": prefix_hit,
        }  # fmt: skip
        scheduler = replace(
            scheduler_defaults(hardware_name, engine_name),
            **{k: v for k, v in knobs.items() if v is not None},
        )
        common = dict(
            prompt=_one_int(prompt, "--prompt"), gen=_one_int(gen, "--gen"),
            random_range_ratio=random_range_ratio, requests=requests, seed=seed, replicas=replicas,
            disaggregate=split, engine=engine_name, scheduler=scheduler,
            basis="ideal" if ideal else "estimate",
            tp=_one_int(tp, "--tp"), quant=_one(quant, "--quant"), kv_format=_one(kv_format, "--kv-format"),
            **{k: v for k, v in given_bits.items() if v is not None},
        )  # fmt: skip
        if sweep is not None:
            key, sep, values = sweep.partition("=")
            if key.strip() != "concurrency" or not sep:
                raise RooflensError(
                    f"--sweep takes concurrency=LIST such as concurrency=1,2,4,8, got {sweep!r}"
                )
            if rate is not None or concurrency is not None or constant:
                raise RooflensError(
                    "--sweep sets the concurrency of each run; leave out --rate, --concurrency, --constant"
                )
            rows = sweep_concurrency(
                model, hardware_name, _ints(values.strip(), "--sweep concurrency"), **common
            )
            if plot_out is not None:
                from .plots import serving_sweep, write_figure

                write_figure(serving_sweep(rows), plot_out)
        else:
            if plot_out is not None:
                raise RooflensError("--plot draws a concurrency sweep; add --sweep concurrency=1,2,4,...")
            if rate is None and concurrency is None:
                rate = 4.0
            if rate is None and constant:
                raise RooflensError("--constant spaces arrivals at a rate; add --rate or leave it out")
            result = run_simulation(
                model, hardware_name, rate=rate, concurrency=concurrency,
                arrival="constant" if constant else "poisson", **common,
            )  # fmt: skip
    except RooflensError as err:
        _fail(err)
        return
    if sweep is not None:
        if fmt.value == "json":
            _emit(to_json(rows), None)
        elif fmt.value == "csv":  # one row per concurrency
            _emit(rows_csv([flatten(r) for r in rows]), None)
        else:
            print_concurrency_sweep(rows, _console(), wide)
            if plot_out is not None:
                _console().print(f"wrote {plot_out}", markup=False, highlight=False)
    elif fmt.value == "json":
        _emit(to_json(result.to_dict()), None)
    elif fmt.value == "csv":  # one row per request
        _emit(rows_csv(result.records()), None)
    else:
        print_serving(result.summary, _console(), wide)


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.", min=1, max=65535)] = 8000,
    workers: Annotated[
        int, typer.Option("--workers", help="Server processes (uvicorn workers); about one per CPU core.")
    ] = 1,
) -> None:
    """The web page and JSON API (OpenAPI docs at /docs). Needs the web extra."""
    import os

    from .web import APP_FACTORY, MAX_WORKERS

    if not 1 <= workers <= MAX_WORKERS:
        cores = os.cpu_count() or 1
        _fail(
            RooflensError(
                f"--workers must be between 1 and {MAX_WORKERS} (got {workers}); one per CPU core is "
                f"a good start (this machine has {cores}): --workers {min(cores, MAX_WORKERS)}"
            )
        )
        return
    try:
        import uvicorn

        from .web import create_app

        web_app = create_app()  # built here too when workers > 1: a missing extra fails once, here
    except ImportError:
        _fail(RooflensError("rooflens serve needs its extra: pip install 'rooflens[web]'"))
        return
    except RooflensError as err:
        _fail(err)
        return
    procs = f", {workers} workers" if workers > 1 else ""
    Console(stderr=True).print(
        f"rooflens: http://{host}:{port}/  (API docs: /docs{procs}; Ctrl-C stops)", markup=False
    )
    if workers == 1:
        uvicorn.run(web_app, host=host, port=port, log_level="warning")
    else:  # each worker process builds its own app from the import string
        from .web.serving import NoDelayHTTP  # uvicorn leaves Nagle on in its workers: see there

        uvicorn.run(
            APP_FACTORY,
            factory=True,
            workers=workers,
            http=NoDelayHTTP,
            host=host,
            port=port,
            log_level="warning",
        )


def main() -> None:
    app()


if __name__ == "__main__":
    main()
