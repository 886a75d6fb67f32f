"""Display rows built from a Report: shared by the rich table and the markdown writer.

Nothing here computes a figure; it selects, divides totals into per-step/per-layer views, and formats.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..layers import REGISTRY
from ..report import Report
from ..roofline import OpResult, PhaseResult
from ..units import fmt_bytes, fmt_flops, fmt_rate, fmt_si, fmt_time

BLOCK_TITLES = {
    "embed": "Embedding",
    "attention": "Attention",
    "mlp": "MLP",
    "head": "Output head",
    "draft": "Drafting (speculative decoding)",
    "offload": "Host memory (offloaded weights, experts, KV cache)",
}
OP_HEADER = ("Op", "×", "FLOP", "Weight B", "Act B", "KV B", "FLOP/B", "Bound", "Ideal", "Estimate", "Share")


@dataclass
class Section:
    title: str
    rows: list[tuple[str, ...]]


def header_lines(r: Report) -> list[str]:
    m, hw, s = r.model, r.hardware, r.settings
    prec = r.precision or s.precision
    peak, dtype = hw.peak(prec.matmul_dtype(prec.w_bits))
    moe = f", {m.num_experts} experts top-{m.experts_per_token}" if m.num_experts else ""
    active = f", {m.active_params / 1e9:.2f} B active" if m.num_experts else ""
    attention = "/".join(sorted(set(m.attention_kinds())))
    devices = f"{r.devices} x " if r.devices > 1 else ""
    split = f" (tp {s.tp}, pp {s.pp}, ep {s.ep}; figures per device)" if r.devices > 1 else ""
    lines = [
        f"Model     {m.name} ({m.model_type}, {m.num_params / 1e9:.2f} B params{active}, "
        f"{m.num_layers} layers, {m.num_heads} heads / {m.num_kv_heads} KV heads, "
        f"{attention} attention{moe})",
        f"Hardware  {devices}{hw.display_name}: {fmt_rate(peak, 'FLOP/s')} {dtype}, "
        f"{fmt_rate(hw.memory_bandwidth, 'B/s')}, "
        f"{fmt_bytes(hw.memory_bytes)}, ridge {peak / hw.memory_bandwidth:.0f} FLOP/B{split}",
        f"Workload  batch {s.batch}, prompt {s.prompt}, gen {s.gen}; {_bits(prec)}, "
        f"FlashAttention {'on' if s.flash_attention else 'off'}, KV cache {'on' if s.kv_cache else 'off'}",
    ]
    techniques = _techniques(r)
    if techniques:
        lines.append(f"Techniques {', '.join(techniques)}")
    return lines


def _techniques(r: Report) -> list[str]:
    s = r.settings
    out = []
    if r.speculation is not None:
        out.append(
            f"speculative decoding ({r.speculation.label}, {s.draft_tokens} tokens, "
            f"acceptance {s.acceptance_rate:.0%})"
        )
    if s.exit_distribution is not None or s.exit_fraction < 1:
        out.append("early exit")
    if s.sparsity:
        out.append(f"{s.sparsity} sparsity")
    if s.prompt_keep < 1:
        out.append(f"prompt kept {s.prompt_keep:.0%} after layer {s.prompt_keep_after}")
    if s.kv_budget is not None:
        out.append(f"KV budget {s.kv_budget} tokens")
    if s.shared_prefix:
        out.append(f"shared prefix {s.shared_prefix} tokens")
    if r.pipeline_bubble:
        out.append(f"pipeline bubble {r.pipeline_bubble:.0%} with {r.micro_batches} micro-batches")
    return out


SUMMARY_HEADER = ("Phase", "FLOPs", "Bytes", "Ideal time", "Estimate", "Bound", "Compute-bound share")


def summary_rows(r: Report) -> list[tuple[str, ...]]:
    rows = []
    for phase in r.phases():
        share = phase.compute_bound_time_s / phase.time_s if phase.time_s else 0.0
        label = "Prefill" if phase.name == "prefill" else f"Decode ({phase.steps} steps)"
        rows.append(
            (
                label,
                fmt_flops(phase.flops),
                fmt_bytes(phase.bytes),
                fmt_time(phase.time_s),
                fmt_time(phase.estimate_s),
                phase.bound or "-",
                f"{share:.0%}",
            )
        )
    return rows


def _with_estimate(ideal: str, estimate: float | None, fmt=fmt_time, span: list[float] | None = None) -> str:
    if estimate is None:
        return ideal
    within = "" if span is None else f" ({fmt(span[0])}-{fmt(span[1])})"
    return f"{ideal}  · estimate {fmt(estimate)}{within}"


def headline_lines(r: Report) -> list[str]:
    """Headline figures: the ideal bound, with the calibrated estimate beside it when there is one."""
    d = r.decode
    ttft = _with_estimate(fmt_time(r.ttft_s), r.ttft_estimate_s, span=r.ttft_estimate_range_s)
    lines = [f"TTFT            {ttft}"]
    if d.steps:
        ideal = (
            f"{fmt_time(r.tpot_s)} mean (first step {fmt_time(float(d.step_time_s[0]))}, "
            f"last {fmt_time(float(d.step_time_s[-1]))})"
        )
        lines.append(
            f"TPOT            {_with_estimate(ideal, r.tpot_estimate_s, span=r.tpot_estimate_range_s)}"
        )
        seqs = f"{r.settings.batch} sequence{'s' if r.settings.batch > 1 else ''}"
        lines.append(f"Decode speed    {r.decode_tokens_per_s:,.1f} tokens/s ({seqs})")
    total = _with_estimate(fmt_time(r.total_time_s), r.total_estimate_s, span=r.total_estimate_range_s)
    lines.append(f"End to end      {total}")
    tps, span = r.throughput_estimate_tokens_per_s, r.throughput_estimate_range_tokens_per_s
    lines.append(
        f"Throughput      {r.throughput_tokens_per_s:,.1f} generated tokens/s"
        + ("" if tps is None else f"  · estimate {tps:,.1f}")
        + ("" if tps is None or span is None else f" ({span[0]:,.1f}-{span[1]:,.1f})")
    )
    if r.profile is not None:
        lines.append(f"Estimate from   {r.profile.label}")
        if r.profile.scope:
            flag = "  EXTRAPOLATED: no measurement of this engine on this device" if r.extrapolated else ""
            lines.append(f"Profile         {r.profile.scope}; ranges are p10-p90{flag}")
    return lines


def _bits(prec) -> str:
    """W8A8 KV16, with the routed experts' width when they differ (W16 experts W4 A16 KV16)."""
    weights = f"W{prec.w_bits}"
    if prec.expert_format is not None and prec.expert_format.w_bits != prec.w_bits:
        weights += f" experts W{prec.expert_format.w_bits}"
    return (
        f"{weights} A{prec.a_bits} KV{prec.kv_bits}"
        if " " in weights
        else f"{weights}A{prec.a_bits} KV{prec.kv_bits}"
    )


def memory_rows(r: Report) -> list[tuple[str, str]]:
    m = r.memory
    state = [(f"Recurrent state (× {r.settings.batch})", fmt_bytes(m.state_bytes))] if m.state_bytes else []
    return [
        ("Weights", fmt_bytes(m.weights_bytes)),
        (
            f"KV cache ({r.settings.prompt + r.settings.gen} tokens × {r.settings.batch})",
            fmt_bytes(m.kv_cache_bytes),
        ),
        *state,
        ("Peak activations", fmt_bytes(m.activations_bytes)),
        ("Runtime overhead", f"{fmt_bytes(m.overhead_bytes)} ({m.overhead_source})"),
        ("Total", f"{fmt_bytes(m.total_bytes)} of {fmt_bytes(m.capacity_bytes)} ({m.utilization:.0%})"),
        (
            "Fits",
            ("yes" if m.fits else "NO") + (f" (per device, {m.devices} devices)" if m.devices > 1 else ""),
        ),
        ("Largest batch that fits", f"{m.max_batch:,}"),
    ]


def _op_row(op: OpResult, scale: float, count_label: str, step_time: float) -> tuple[str, ...]:
    """One display row; ``scale`` divides totals into the view (per step, or per step and layer)."""
    time = op.time_s / scale
    return (
        op.name,
        count_label,
        fmt_si(op.flops / scale),
        fmt_si(op.weight_bytes / scale),
        fmt_si((op.act_in_bytes + op.act_out_bytes) / scale),
        fmt_si((op.kv_read_bytes + op.kv_write_bytes) / scale),
        f"{op.intensity:,.1f}" if op.bytes else "-",
        op.bound,
        fmt_time(time),
        fmt_time(None if op.estimate_s is None else op.estimate_s / scale),
        f"{time / step_time:.1%}" if step_time else "-",
    )


def op_sections(r: Report, phase: PhaseResult, per_layer: bool = False) -> list[Section]:
    """Ops grouped by block; decode figures are per step (mean). ``per_layer`` lists each layer."""
    steps = max(phase.steps, 1)
    step_time = phase.time_s / steps
    by_block: dict[str, list[OpResult]] = {}
    for op in phase.ops:
        by_block.setdefault(op.block, []).append(op)

    def rows(ops: list[OpResult], per_occurrence: bool) -> list[tuple[str, ...]]:
        return [
            _op_row(
                o,
                steps * (o.count if per_occurrence else 1),
                "1" if per_occurrence else f"{o.count:g}",
                step_time,
            )
            for o in ops
        ]

    sections = [Section(BLOCK_TITLES["embed"], rows(by_block.get("embed", []), False))]
    layer_ops = by_block.get("attention", []) + by_block.get("mlp", [])
    if per_layer:
        for i in range(r.model.num_layers):
            mine = [o for o in layer_ops if i in o.layers]
            sections.append(Section(f"Layer {i}", rows(mine, True)))
    else:
        for block in ("attention", "mlp"):
            groups: dict[tuple[str, tuple[int, ...]], list[OpResult]] = {}
            for o in by_block.get(block, []):
                traits = [t for t in o.group.split(", ") if t and t not in _OTHER_BLOCK_TRAITS[block]]
                groups.setdefault((", ".join(traits), o.layers), []).append(o)
            for (traits, layers), ops in groups.items():
                n = len(layers)
                size = f"all {n} layers" if n == r.model.num_layers else f"{n} layers"
                # A recurrent mixer (Mamba-2, Gated DeltaNet) is not attention: name the block by it.
                name = (
                    BLOCK_TITLES[block]
                    if block != "attention" or not _RECURRENT & set(traits.split(", "))
                    else "Mixer"
                )
                title = f"{name} ({traits + ', ' if traits else ''}{size})"
                sections.append(Section(title, rows(ops, False)))
    for block in ("head", "draft", "offload"):
        sections.append(Section(BLOCK_TITLES[block], rows(by_block.get(block, []), False)))
    return [sec for sec in sections if sec.rows]


_RECURRENT = {k.label for k in REGISTRY.values() if k.recurrent}
# Layer-group traits that describe the other half of the layer (not shown in this block's title).
_OTHER_BLOCK_TRAITS = {
    "attention": {k.label for k in REGISTRY.values() if k.role == "ffn"},
    "mlp": {k.label for k in REGISTRY.values() if k.role == "mixer"},
}


def phase_title(phase: PhaseResult) -> str:
    if phase.name == "prefill":
        return "Prefill: one pass over the prompt"
    return f"Decode: per step, mean over {phase.steps} steps"


def model_columns(rows: list[dict]) -> list[tuple[str, str]]:
    """Adds display fields to catalog rows (in place) and names the table's columns."""
    for row in rows:
        row["params_b"] = f"{row['params'] / 1e9:.2f} B"
        row["heads"] = f"{row['num_heads']}/{row['num_kv_heads']}"
    return [
        ("Name", "name"),
        ("Type", "model_type"),
        ("Params", "params_b"),
        ("Layers", "layers"),
        ("Hidden", "hidden_size"),
        ("Heads/KV", "heads"),
        ("FFN", "intermediate_size"),
        ("Vocab", "vocab_size"),
        ("Context", "max_position_embeddings"),
        ("Hugging Face id", "hf_id"),
    ]


def hardware_columns(rows: list[dict]) -> list[tuple[str, str]]:
    """Adds display fields to catalog rows (in place) and names the table's columns."""
    for row in rows:
        peaks = row["peak_flops"]
        row["mem"] = fmt_bytes(row["memory_bytes"])
        row["bw"] = fmt_rate(row["memory_bandwidth"], "B/s")
        half = peaks.get("bf16", peaks.get("fp16"))
        row["f16"] = "-" if half is None else fmt_rate(half, "FLOP/s")  # none listed: not 0 FLOP/s
        row["low"] = ", ".join(
            f"{k} {v / 1e12:,.0f}T" for k, v in peaks.items() if k in ("fp8", "int8", "int4", "fp4")
        )
        row["tdp"] = f"{row['tdp_watts']:.0f} W" if row["tdp_watts"] else "-"
        row["ridge"] = f"{row['ridge_point_fp16']:.0f}"
    return [
        ("Name", "name"),
        ("Device", "display_name"),
        ("Memory", "mem"),
        ("Bandwidth", "bw"),
        ("16-bit peak", "f16"),
        ("8/4-bit peaks", "low"),
        ("Ridge FLOP/B", "ridge"),
        ("TDP", "tdp"),
    ]


def format_columns(rows: list[dict]) -> list[tuple[str, str]]:
    """Adds display fields to format rows (in place) and names the table's columns."""
    for row in rows:
        bits = row.get("bits_per_value", row.get("kv_bits"))
        row["bits"] = f"{bits:.3g}"
        row["also"] = ", ".join(row.get("aliases", []))
    return [
        ("Name", "name"),
        ("Kind", "kind"),
        ("Bits", "bits"),
        ("Also", "also"),
        ("What it is", "description"),
    ]
