"""Command line: parse, call the Python API, render. No figure is computed here."""

from __future__ import annotations

import inspect
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

from . import analysis
from .errors import RooflensError
from .hardware import list_hardware, load_hardware
from .model import list_models
from .plots import KINDS as PLOT_KINDS
from .render import (
    FORMATS,
    HARDWARE_DROP,
    MODEL_DROP,
    print_report,
    print_rows,
    report_csv,
    report_markdown,
    rows_csv,
    to_json,
)
from .render.sweep import print_sweep_summary, write_frame
from .render.views import hardware_columns, model_columns

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
        output.write_text(text)


# Options several commands take with one meaning (one named format; compare and plan take lists).
QuantOption = Annotated[
    str | None,
    _option(
        "--quant",
        help="Named format: fp8, fp8-block, w8a8, awq, gptq, nvfp4, mxfp4, q4_0, ... (rooflens formats)",
    ),
]
WideOption = Annotated[
    bool,
    _option(
        "--wide",
        help="Tables with every column at full width, however narrow the terminal (else the columns "
        "that do not fit are left out, and named).",
    ),
]
KvFormatOption = Annotated[
    str | None,
    _option("--kv-format", help="KV-cache format: bf16, fp8, fp8-head, int8-head, nvfp4."),
]


@_command
def analyze(
    model: Annotated[
        str, _argument(help="Catalog name, Hugging Face id (with --hf), or path to a config.json.")
    ],
    hardware: Annotated[
        str, _option("--hardware", "-H", help="Catalog name or path to a YAML/JSON spec.")
    ] = "h100-sxm",
    batch: Annotated[int, _option("--batch", "-b", help="Sequences processed together.")] = 1,
    prompt: Annotated[int, _option("--prompt", "-p", help="Prompt tokens per sequence.")] = 1024,
    gen: Annotated[int, _option("--gen", "-g", help="Generated tokens per sequence.")] = 128,
    quant: QuantOption = None,
    w_bits: Annotated[int | None, _option("--w-bits", help="Weight bits: 4, 8, 16 or 32 [16].")] = None,
    a_bits: Annotated[int | None, _option("--a-bits", help="Activation bits: 4, 8, 16 or 32 [16].")] = None,
    kv_bits: Annotated[int | None, _option("--kv-bits", help="KV-cache bits: 4, 8, 16 or 32 [16].")] = None,
    flash_attention: Annotated[
        bool, _option("--flash-attention/--no-flash-attention", help="Fused attention.")
    ] = True,
    kv_cache: Annotated[
        bool, _option("--kv-cache/--no-kv-cache", help="Off: recompute the sequence every step.")
    ] = True,
    dtype: Annotated[str | None, _option("--dtype", help="16-bit float format: fp16 or bf16 [fp16].")] = None,
    low_bit: Annotated[
        str | None,
        _option("--low-bit", help="8/4-bit math as int (int8/int4) or float (fp8/fp4) [int]."),
    ] = None,
    group_size: Annotated[
        int | None, _option("--group-size", help="Quantization group size for weights [128].")
    ] = None,
    quantize_embeddings: Annotated[
        bool | None,
        _option(
            "--quantize-embeddings/--no-quantize-embeddings",
            help="Quantize the embedding table and LM head too (as llama.cpp does).",
        ),
    ] = None,
    symmetric: Annotated[
        bool | None,
        _option("--symmetric/--asymmetric", help="Quantization scales only, no zero points."),
    ] = None,
    engine: Annotated[
        str | None,
        _option(
            "--engine",
            help="Inference engine the estimate assumes: vllm, sglang, tensorrt-llm, llama.cpp, mlx, "
            "transformers, tgi (default: the device's; see README).",
        ),
    ] = None,
    tp: Annotated[int, _option("--tp", help="Tensor-parallel degree.")] = 1,
    pp: Annotated[int, _option("--pp", help="Pipeline-parallel stages.")] = 1,
    ep: Annotated[int, _option("--ep", help="Expert-parallel degree (MoE; attention data-parallel).")] = 1,
    micro_batches: Annotated[
        int | None, _option("--micro-batches", help="Pipeline micro-batches, for the bubble [pp].")
    ] = None,
    devices_per_node: Annotated[
        int | None,
        _option("--devices-per-node", help="Devices on the fast interconnect [the device's domain]."),
    ] = None,
    offload_weights: Annotated[
        float, _option("--offload-weights", help="Share of the weights kept in host memory (0-1).")
    ] = 0.0,
    offload_experts: Annotated[
        float, _option("--offload-experts", help="Share of the routed experts kept in host memory.")
    ] = 0.0,
    offload_kv: Annotated[
        float, _option("--offload-kv", help="Share of the KV cache kept in host memory (0-1).")
    ] = 0.0,
    kv_format: KvFormatOption = None,
    expert_quant: Annotated[
        str | None, _option("--expert-quant", help="A format for the routed experts only (e.g. mxfp4).")
    ] = None,
    wide_layers: Annotated[
        int, _option("--wide-layers", help="Keep the first and last N layers at 16 bits [0].")
    ] = 0,
    draft_model: Annotated[
        str | None, _option("--draft-model", help="Speculative decoding with this draft model.")
    ] = None,
    draft_tokens: Annotated[int, _option("--draft-tokens", help="Draft tokens per round.")] = 4,
    acceptance_rate: Annotated[
        float, _option("--acceptance-rate", help="Chance each draft token is accepted.")
    ] = 0.8,
    spec_heads: Annotated[
        str | None,
        _option("--spec-heads", help="Speculative decoding with heads on the model: mtp, eagle3 or medusa."),
    ] = None,
    verify_tokens: Annotated[
        int | None,
        _option("--verify-tokens", help="Tokens the target verifies per round (a tree) [draft+1]."),
    ] = None,
    exit_fraction: Annotated[
        float, _option("--exit-fraction", help="Early exit: share of layers run per decoded token.")
    ] = 1.0,
    exit_distribution: Annotated[
        str | None,
        _option("--exit-distribution", help="Early exit: comma-separated exit probability per layer."),
    ] = None,
    sparsity: Annotated[str | None, _option("--sparsity", help="N:M weight sparsity, e.g. 2:4.")] = None,
    prompt_keep: Annotated[
        float, _option("--prompt-keep", help="Prompt compression: share of prompt tokens kept.")
    ] = 1.0,
    prompt_keep_after: Annotated[
        int, _option("--prompt-keep-after", help="Layers that see the whole prompt before compression.")
    ] = 0,
    kv_budget: Annotated[
        int | None, _option("--kv-budget", help="Token eviction: cached tokens kept per layer.")
    ] = None,
    shared_prefix: Annotated[
        int, _option("--shared-prefix", help="Prompt tokens shared by every sequence of the batch.")
    ] = 0,
    prefix_reads_once: Annotated[
        bool, _option("--prefix-reads-once", help="Attention reads the shared prefix once per step.")
    ] = False,
    routing_skew: Annotated[
        float, _option("--routing-skew", help="MoE expert popularity skew (Zipf exponent; 0 uniform).")
    ] = 0.0,
    routing: Annotated[
        str | None,
        _option(
            "--routing",
            help="MoE routing: uniform, zipf (skew --routing-skew, default 1) or identical (identical "
            "prompts pick the same experts).",
        ),
    ] = None,
    mla_absorb: Annotated[
        str, _option("--mla-absorb", help="Latent attention path: auto, always or never.")
    ] = "auto",
    estimate: Annotated[
        bool, _option("--estimate/--no-estimate", help="Show the calibrated estimate beside the ideal.")
    ] = True,
    overhead_gib: Annotated[
        float | None,
        _option("--overhead-gib", help="Runtime memory overhead (CUDA context, allocator) in GiB."),
    ] = None,
    hf: Annotated[bool, _option("--hf", help="Fetch MODEL's config.json from the Hugging Face Hub.")] = False,
    fmt: Annotated[Format, _option("--format", "-f", help="Output format.")] = "table",
    wide: WideOption = False,
    per_layer: Annotated[
        bool, _option("--per-layer", help="List every layer's operators separately.")
    ] = False,
    output: Annotated[
        Path | None, _option("--output", "-o", help="Write to this file instead of stdout.")
    ] = None,
) -> None:
    """Roofline analysis of prefill and decode, operator by operator."""
    opts = {k: v for k, v in locals().items() if k not in _OUTPUT_OPTIONS}
    try:
        report = _report(**opts)
    except RooflensError as err:
        _fail(err)
        return
    kind = fmt.value
    if kind == "json":
        _emit(to_json(report.to_dict()), output)
    elif kind == "csv":
        _emit(report_csv(report), output)
    elif kind == "markdown":
        _emit(report_markdown(report, per_layer), output)
    elif output is not None:
        with output.open("w") as fh:
            print_report(report, _console(fh), per_layer, wide)
    else:
        print_report(report, _console(), per_layer, wide)


_OUTPUT_OPTIONS = ("fmt", "wide", "per_layer", "output")


def _report(
    model, hardware, hf, quant, kv_format, w_bits, a_bits, kv_bits, dtype, low_bit, group_size,
    quantize_embeddings, symmetric, overhead_gib, exit_distribution, routing, **settings
):  # fmt: skip
    """The analysis that analyze's options (also plot's) describe."""
    # Precision options left unset take the --quant preset's value, else the default.
    given = {
        "w_bits": w_bits, "a_bits": a_bits, "kv_bits": kv_bits, "dtype": dtype, "low_bit": low_bit,
        "group_size": group_size, "quantize_embeddings": quantize_embeddings, "symmetric": symmetric,
        "routing": routing,
    }  # fmt: skip
    return analysis.analyze(
        model,
        hardware,
        hub=hf,
        quant=quant,
        kv_format=kv_format,
        overhead_bytes=None if overhead_gib is None else overhead_gib * 2**30,
        exit_distribution=_floats(exit_distribution, "--exit-distribution"),
        **settings,
        **{k: v for k, v in given.items() if v is not None},
    )


PlotKind = Enum("PlotKind", {k: k for k in PLOT_KINDS}, type=str)  # type: ignore[misc]


def plot(
    kind: Annotated[
        PlotKind, _option("--kind", "-k", help="roofline, breakdown, memory, timeline or block.")
    ] = "roofline",  # type: ignore[assignment]
    out: Annotated[
        Path,
        _option("--out", help="File to write: .html (plotly.js inline, offline) or .png/.svg/.pdf."),
    ] = Path("rooflens.html"),
    **opts,
) -> None:
    """A figure of the analysis: the roofline, time by operator kind, memory, decode timeline or block."""
    from . import plots

    try:
        report = _report(**opts)
        fig = plots.KINDS[kind.value](report)
        plots.write_figure(fig, out)
    except RooflensError as err:
        _fail(err)
        return
    _console().print(f"wrote {out} ({kind.value} of {report.model.name} on {report.hardware.name})")


# plot takes every option analyze takes (bar the output ones): one list of options, two commands.
plot.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [
        *(
            p
            for p in inspect.signature(analyze, eval_str=True).parameters.values()
            if p.name not in _OUTPUT_OPTIONS
        ),
        *list(inspect.signature(plot, eval_str=True).parameters.values())[:2],
    ]
)
_command(plot)


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
    fmt: Annotated[ListFormat, _option("--format", "-f", help="Output format.")] = "table",
    wide: WideOption = False,
) -> None:
    """List the bundled model catalog."""
    rows = [m.summary() for m in list_models()]
    title = f"{len(rows)} bundled models (add your own: pass a config.json path)"
    _listing(fmt.value, rows, model_columns(rows), title, MODEL_DROP, wide)


@_command
def hardware(
    fmt: Annotated[ListFormat, _option("--format", "-f", help="Output format.")] = "table",
    wide: WideOption = False,
) -> None:
    """List the bundled hardware catalog (every figure has a source: see --format json)."""
    rows = [h.summary() for h in list_hardware()]
    title = f"{len(rows)} bundled devices (add your own: --hardware my_gpu.yaml)"
    _listing(fmt.value, rows, hardware_columns(rows), title, HARDWARE_DROP, wide)


@_command
def calibrate(
    device: Annotated[str, _option("--device", help="cpu or cuda[:N].")] = "cpu",
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
    output.write_text(yaml.safe_dump(profile, sort_keys=False, width=120))
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
    hardware: Annotated[
        list[str] | None, _option("--hardware", "-H", help="Device (repeat to compare).")
    ] = None,
    batch: Annotated[list[int] | None, _option("--batch", "-b")] = None,
    prompt: Annotated[list[int] | None, _option("--prompt", "-p")] = None,
    gen: Annotated[list[int] | None, _option("--gen", "-g")] = None,
    quant: Annotated[list[str] | None, _option("--quant", help="Named format (repeat to compare).")] = None,
    kv_format: Annotated[
        list[str] | None, _option("--kv-format", help="Named KV-cache format (repeat to compare).")
    ] = None,
    w_bits: Annotated[list[int] | None, _option("--w-bits")] = None,
    a_bits: Annotated[list[int] | None, _option("--a-bits")] = None,
    kv_bits: Annotated[list[int] | None, _option("--kv-bits")] = None,
    tp: Annotated[list[int] | None, _option("--tp")] = None,
    pp: Annotated[list[int] | None, _option("--pp")] = None,
    ep: Annotated[list[int] | None, _option("--ep")] = None,
    draft_model: Annotated[list[str] | None, _option("--draft-model", help="'none' for no draft.")] = None,
    sparsity: Annotated[list[str] | None, _option("--sparsity", help="'none' for dense.")] = None,
    kv_budget: Annotated[list[str] | None, _option("--kv-budget", help="'none' for no budget.")] = None,
    variant: Annotated[
        list[str] | None,
        _option("--variant", help="One analysis as KEY=VALUE[;KEY=VALUE...] (repeat for several)."),
    ] = None,
    setting: Annotated[
        list[str] | None, _option("--set", help="KEY=VALUE applied to every analysis (any setting).")
    ] = None,
    fmt: Annotated[ListFormat, _option("--format", "-f", help="Output format.")] = "table",
    wide: WideOption = False,
    ops: Annotated[bool, _option("--ops/--no-ops", help="Show the per-operator change.")] = True,
    plot_out: Annotated[
        Path | None,
        _option("--plot", help="Also draw the comparison into this file (.html, .png, .svg)."),
    ] = None,
) -> None:
    """Two or more analyses side by side, e.g. --w-bits 16 --w-bits 4, or --tp 1 --tp 4."""
    from .compare import compare as line_up
    from .render.compare import print_comparison

    try:
        none = lambda v: None if isinstance(v, str) and v.lower() == "none" else v  # noqa: E731
        lists = {
            "model": models,
            "hardware": hardware or ["h100-sxm"],
            "batch": batch,
            "prompt": prompt,
            "gen": gen,
            "quant": quant,
            "kv_format": kv_format,
            "w_bits": w_bits,
            "a_bits": a_bits,
            "kv_bits": kv_bits,
            "tp": tp,
            "pp": pp,
            "ep": ep,
            "draft_model": [none(v) for v in draft_model or []],
            "sparsity": [none(v) for v in sparsity or []],
            "kv_budget": [none(v) for v in kv_budget or []],
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
                analysis.analyze(
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
    hardware: Annotated[
        str, _option("--hardware", "-H", help="Profile from `rooflens calibrate`, or a catalog device.")
    ] = "profile.yaml",
    device: Annotated[str, _option("--device", help="cpu or cuda[:N].")] = "cpu",
    dtype: Annotated[str, _option("--dtype", help="fp32, fp16 or bf16.")] = "fp32",
    batch: Annotated[int, _option("--batch", "-b")] = 1,
    prompt: Annotated[int, _option("--prompt", "-p")] = 128,
    gen: Annotated[int, _option("--gen", "-g")] = 32,
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
    rows: Annotated[bool, _option("--rows", help="With --published: list every row.")] = False,
    plot: Annotated[
        Path | None,
        _option("--plot", help="With --published: write estimated against measured time (HTML or image)."),
    ] = None,
    fmt: Annotated[ListFormat, _option("--format", "-f", help="Output format.")] = "table",
    wide: WideOption = False,
    output: Annotated[Path | None, _option("--output", "-o", help="Also write the results (CSV).")] = None,
) -> None:
    """Compare rooflens with reality: a real model run here, or published measurements."""
    from .render.validation import print_published, print_published_rows, print_runs

    console = _console()
    try:
        if published:
            from .measure import published as pub

            if split not in ("report", "calibration"):
                raise RooflensError(f"--split must be report or calibration, not '{split}'")
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
            from .measure.validate import validate as run_validation

            results = run_validation(
                model, hardware, _workloads(batch, prompt, gen, workload),
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
        output.write_text(rows_csv([{k: v for k, v in r.items() if k != "ops"} for r in table_rows]))


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
    hardware: Annotated[
        list[str] | None, _option("--hardware", "-H", help="Device (repeat for several).")
    ] = None,
    batch: Annotated[str, _option("--batch", "-b", help="Batches: 1,8,64 or 1:1024.")] = "1:256",
    prompt: Annotated[str, _option("--prompt", "-p", help="Prompt lengths.")] = "1024",
    gen: Annotated[str, _option("--gen", "-g", help="Generation lengths.")] = "128",
    w_bits: Annotated[
        str | None, _option("--w-bits", help="Weight bit widths [the checkpoint's, else 16].")
    ] = None,
    a_bits: Annotated[str | None, _option("--a-bits", help="Activation bit widths.")] = None,
    kv_bits: Annotated[str | None, _option("--kv-bits", help="KV-cache bit widths [16].")] = None,
    tp: Annotated[str, _option("--tp", help="Tensor-parallel degrees.")] = "1",
    pp: Annotated[str, _option("--pp", help="Pipeline stages.")] = "1",
    setting: Annotated[
        list[str] | None, _option("--set", help="KEY=VALUE applied to every configuration.")
    ] = None,
    out: Annotated[
        Path | None, _option("--out", "-o", help="Write every row: .csv or .parquet (else a summary).")
    ] = None,
    plot_out: Annotated[
        Path | None,
        _option("--plot", help="Throughput per device against per-user TPOT, the frontier marked."),
    ] = None,
    wide: WideOption = False,
) -> None:
    """Many configurations at once (vectorised): every combination of the listed values."""
    from rich.progress import Progress

    from .sweep import sweep as run_sweep

    try:
        axes = {
            "batch": _ints(batch, "--batch"), "prompt": _ints(prompt, "--prompt"), "gen": _ints(gen, "--gen"),
            "tp": _ints(tp, "--tp"), "pp": _ints(pp, "--pp"),
        }  # fmt: skip
        for name, given, flag in (("w_bits", w_bits, "--w-bits"), ("a_bits", a_bits, "--a-bits"),
                                  ("kv_bits", kv_bits, "--kv-bits")):  # fmt: skip
            if given is not None:
                axes[name] = _ints(given, flag)
        fixed = _pairs(setting, "--set")
        clash = sorted(set(fixed) & {*axes, "hardware"})
        if clash:
            raise RooflensError(f"--set {', '.join(clash)}: use the sweep's own options for these axes")
        with Progress(console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("sweeping", total=None)
            result = run_sweep(
                model,
                hardware=hardware or ["h100-sxm"],
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
    prompt: Annotated[int, _option("--prompt", "-p", help="Prompt tokens per request.")] = 1024,
    gen: Annotated[int, _option("--gen", "-g", help="Generated tokens per request.")] = 256,
    ttft: Annotated[str, _option("--ttft", help="TTFT target, e.g. 0.5s or 500ms.")] = "1s",
    tpot: Annotated[str, _option("--tpot", help="TPOT target, e.g. 50ms.")] = "50ms",
    rate: Annotated[
        float | None, _option("--rate", help="Requests per second to serve (sizes replicas).")
    ] = None,
    hardware: Annotated[
        list[str] | None, _option("--hardware", "-H", help="Only these devices (repeat).")
    ] = None,
    price: Annotated[
        list[str] | None, _option("--price", help="DEVICE=USD per device-hour, e.g. H100=2.5 (repeat).")
    ] = None,
    quant: Annotated[
        str, _option("--quant", help="Weight formats to try (rooflens formats).")
    ] = "w16a16,fp8,w8a8,w4a16,nvfp4",
    kv_format: Annotated[str, _option("--kv-format", help="KV-cache formats to try.")] = "bf16,fp8",
    tp: Annotated[str, _option("--tp", help="Tensor-parallel degrees to try.")] = "1,2,4,8",
    pp: Annotated[str, _option("--pp", help="Pipeline stages to try.")] = "1",
    ep: Annotated[str, _option("--ep", help="Expert-parallel degrees to try (MoE).")] = "1",
    allow_offload: Annotated[
        bool, _option("--allow-offload", help="Also try 25-75% of the weights in host memory.")
    ] = False,
    ideal: Annotated[bool, _option("--ideal", help="Rank on the ideal roofline, not the estimate.")] = False,
    every_batch: Annotated[
        bool, _option("--every-batch", help="List every passing batch, not the cheapest per set-up.")
    ] = False,
    top: Annotated[int, _option("--top", help="Rows in the table.")] = 10,
    fmt: Annotated[ListFormat, _option("--format", "-f", help="table, json or csv.")] = "table",
    wide: WideOption = False,
    plot_out: Annotated[
        Path | None,
        _option("--plot", help="Cost against TPOT of every candidate that fits (.html/.png)."),
    ] = None,
) -> None:
    """The cheapest hardware, device count, quantization and batch that meet latency targets."""
    from .hardware.prices import parse_price_overrides
    from .plan import plan as make_plan
    from .render.sweep import print_plan

    try:
        result = make_plan(
            model,
            prompt=prompt,
            gen=gen,
            ttft=_seconds(ttft, "--ttft"),
            tpot=_seconds(tpot, "--tpot"),
            rate=rate,
            hardware=hardware,
            prices=parse_price_overrides(price),
            quants=[q.strip() for q in quant.split(",")],
            kv_formats=[k.strip() for k in kv_format.split(",")],
            tp=_ints(tp, "--tp"),
            pp=_ints(pp, "--pp"),
            ep=_ints(ep, "--ep"),
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
    hardware: Annotated[str, _option("--hardware", "-H", help="Device of every instance.")] = "h100-sxm",
    rate: Annotated[
        float | None,
        _option("--rate", "-r", help="Requests per second, open loop (Poisson) [4 without --concurrency]."),
    ] = None,
    concurrency: Annotated[
        int | None,
        _option("--concurrency", "-c", help="Closed loop: users each sending a request when theirs ends."),
    ] = None,
    sweep: Annotated[
        str | None,
        _option("--sweep", help="concurrency=1,2,4,8 (or 1:64): one closed-loop run per value."),
    ] = None,
    engine: Annotated[
        str | None,
        _option(
            "--engine",
            "-e",
            help="vllm, sglang, tensorrt-llm, llama.cpp, mlx, transformers "
            "[the device's default]: scheduler defaults and efficiency profile.",
        ),
    ] = None,
    prompt: Annotated[int, _option("--prompt", "-p", help="Mean prompt tokens.")] = 1024,
    gen: Annotated[int, _option("--gen", "-g", help="Mean generated tokens.")] = 256,
    random_range_ratio: Annotated[
        float,
        _option("--random-range-ratio", help="Lengths uniform in [L(1-r), L(1+r)], vLLM's random dataset."),
    ] = 0.0,
    requests: Annotated[
        int, _option("--requests", "-n", help="Requests to simulate (per sweep point).")
    ] = 500,
    constant: Annotated[bool, _option("--constant", help="Evenly spaced arrivals, not Poisson.")] = False,
    seed: Annotated[int, _option("--seed")] = 0,
    tp: Annotated[int, _option("--tp", help="Devices per instance (tensor parallel).")] = 1,
    replicas: Annotated[int, _option("--replicas", help="Instances sharing the traffic.")] = 1,
    disaggregate: Annotated[
        str | None, _option("--disaggregate", help="P:D prefill and decode instances, e.g. 1:2.")
    ] = None,
    quant: QuantOption = None,
    kv_format: KvFormatOption = None,
    w_bits: Annotated[int | None, _option("--w-bits", help="[the checkpoint's, else 16]")] = None,
    a_bits: Annotated[int | None, _option("--a-bits")] = None,
    kv_bits: Annotated[int | None, _option("--kv-bits")] = None,
    gpu_memory_utilization: Annotated[
        float | None,
        _option("--gpu-memory-utilization", help="Share of device memory the engine may use [engine's]."),
    ] = None,
    max_num_seqs: Annotated[
        int | None, _option("--max-num-seqs", help="Most sequences per step [engine's].")
    ] = None,
    max_batched_tokens: Annotated[
        int | None, _option("--max-batched-tokens", help="Token budget per step [engine's].")
    ] = None,
    chunked_prefill: Annotated[
        bool | None,
        _option(
            "--chunked-prefill/--no-chunked-prefill", help="Mix prompt chunks into decode steps [engine's]."
        ),
    ] = None,
    block_size: Annotated[int | None, _option("--block-size", help="KV tokens per block [engine's].")] = None,
    cuda_graph_max_batch: Annotated[
        int | None,
        _option(
            "--cuda-graph-max-batch", help="Decode batches padded to CUDA-graph sizes up to this [engine's]."
        ),
    ] = None,
    recv_interval: Annotated[
        int | None,
        _option(
            "--recv-interval",
            help="Decode steps between intakes of new requests (SGLang's --scheduler-recv-interval).",
        ),
    ] = None,
    prefix_hit: Annotated[
        float, _option("--prefix-hit", help="Share of each prompt found in the prefix cache.")
    ] = 0.0,
    ideal: Annotated[bool, _option("--ideal", help="Step costs from the ideal roofline.")] = False,
    fmt: Annotated[ListFormat, _option("--format", "-f", help="table or json.")] = "table",
    wide: WideOption = False,
    plot_out: Annotated[
        Path | None,
        _option(
            "--plot", help="With --sweep: output tokens/s per device against tokens/s per user (.html/.png)."
        ),
    ] = None,
) -> None:
    """A continuous-batching server under load: batch, KV concurrency, queueing, latency percentiles."""
    from dataclasses import replace

    from .render.serving import print_concurrency_sweep, print_serving
    from .serving import scheduler_defaults, sweep_concurrency
    from .serving import simulate as run_simulation

    try:
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
            "max_num_batched_tokens": max_batched_tokens, "chunked_prefill": chunked_prefill,
            "block_size": block_size, "cuda_graph_max_batch": cuda_graph_max_batch,
            "recv_interval": recv_interval, "prefix_cache_hit_rate": prefix_hit,
        }  # fmt: skip
        scheduler = replace(
            scheduler_defaults(hardware, engine), **{k: v for k, v in knobs.items() if v is not None}
        )
        common = dict(
            prompt=prompt, gen=gen, random_range_ratio=random_range_ratio, requests=requests, seed=seed,
            replicas=replicas, disaggregate=split, engine=engine, scheduler=scheduler,
            basis="ideal" if ideal else "estimate", tp=tp, quant=quant, kv_format=kv_format,
            **{k: v for k, v in (("w_bits", w_bits), ("a_bits", a_bits), ("kv_bits", kv_bits))
               if v is not None},
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
            rows = sweep_concurrency(model, hardware, _ints(values.strip(), "--sweep concurrency"), **common)
            if plot_out is not None:
                from .plots import serving_sweep, write_figure

                write_figure(serving_sweep(rows), plot_out)
        else:
            if plot_out is not None:
                raise RooflensError("--plot draws a concurrency sweep; add --sweep concurrency=1,2,4,...")
            if rate is None and concurrency is None:
                rate = 4.0
            if concurrency is not None and constant:
                raise RooflensError("--constant spaces open-loop arrivals; with --concurrency leave it out")
            result = run_simulation(
                model, hardware, rate=rate, concurrency=concurrency,
                arrival="constant" if constant else "poisson", **common,
            )  # fmt: skip
    except RooflensError as err:
        _fail(err)
        return
    if sweep is not None:
        if fmt.value == "json":
            _emit(to_json(rows), None)
        else:
            print_concurrency_sweep(rows, _console(), wide)
            if plot_out is not None:
                _console().print(f"wrote {plot_out}", markup=False, highlight=False)
    elif fmt.value == "json":
        _emit(to_json(result.to_dict()), None)
    else:
        print_serving(result.summary, _console(), wide)


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.", min=1, max=65535)] = 8000,
) -> None:
    """The web page and JSON API (OpenAPI docs at /docs). Needs the web extra."""
    try:
        import uvicorn

        from .web import create_app

        web_app = create_app()
    except ImportError:
        _fail(RooflensError("rooflens serve needs its extra: pip install 'rooflens[web]'"))
        return
    except RooflensError as err:
        _fail(err)
        return
    Console(stderr=True).print(f"rooflens: http://{host}:{port}/  (API docs: /docs; Ctrl-C stops)")
    uvicorn.run(web_app, host=host, port=port, log_level="warning")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
