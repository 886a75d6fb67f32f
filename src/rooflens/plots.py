"""Plotly figures drawn from a Report (or a Comparison). A figure reads the report; it computes nothing.

Every builder returns a ``plotly.graph_objects.Figure``: ``roofline``, ``breakdown``, ``memory``,
``timeline``, ``block_graph`` (one transformer block as a graph of its operators) and ``comparison``.
``write_figure`` saves one as HTML (plotly.js embedded: works offline) or, through kaleido and a local
Chromium, as PNG/SVG/PDF.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import RooflensError
from .layers import REGISTRY
from .units import fmt_bytes, fmt_flops, fmt_plain, fmt_time

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from .compare import Comparison
    from .report import Report
    from .roofline import OpResult

BOUND_COLORS = {"compute": "#d62728", "memory": "#1f77b4", "comm": "#2ca02c"}
PHASE_SYMBOLS = {"prefill": "circle", "decode": "diamond"}
KIND_ORDER = ("matmul", "attention", "norm", "elementwise", "embedding", "comm")
MAX_TIMELINE_POINTS = 2000  # the timeline figure shows at most this many decode steps (evenly chosen)


def _go():
    try:
        import plotly.graph_objects as go
    except ImportError:
        raise RooflensError("plots need plotly: pip install 'rooflens[plot]'") from None
    return go


def _hover(op: OpResult, phase: str) -> str:
    return (
        f"<b>{op.name}</b> ({phase}, {op.block})<br>"
        f"FLOPs {fmt_flops(op.flops)}<br>bytes {fmt_bytes(op.bytes)}<br>"
        f"intensity {fmt_plain(op.intensity)} FLOP/B<br>time {fmt_time(op.time_s)}<br>bound: {op.bound}"
    )


# --- roofline ---------------------------------------------------------------------------------------


def roofline(report: Report) -> go.Figure:
    """The device's roofs and every operator (totals over layers and steps) as a point, log-log."""
    go = _go()
    hw = report.hardware
    bw = hw.memory_bandwidth
    points = [
        (phase.name, op)
        for phase in report.phases()
        for op in phase.ops
        if op.kind != "comm" and op.flops > 0 and op.time_s > 0 and op.bytes > 0
    ]
    roofs = sorted({(op.peak_dtype, op.peak_flops) for _, op in points}, key=lambda r: -r[1])
    fig = go.Figure()
    if points:
        lo = min(op.intensity for _, op in points) / 4
        hi = max(max(op.intensity for _, op in points), max(p for _, p in roofs) / bw) * 4
    else:
        lo, hi = 0.1, 1e4
    top_ridge = max((p / bw for _, p in roofs), default=hi)
    fig.add_trace(
        go.Scatter(
            x=[lo, top_ridge],
            y=[bw * lo, bw * top_ridge],
            mode="lines",
            name=f"memory roof ({bw / 1e12:.3g} TB/s)",
            line={"width": 2, "color": "#444"},
            hoverinfo="name",
        )
    )
    for dtype, peak in roofs:
        ridge = peak / bw
        fig.add_trace(
            go.Scatter(
                x=[ridge, hi],
                y=[peak, peak],
                mode="lines+markers",
                marker={"size": [8, 0]},
                name=f"{dtype} roof ({peak / 1e12:.3g} TFLOP/s, ridge {ridge:.3g} FLOP/B)",
                line={"width": 2},
                hoverinfo="name",
            )
        )
    for phase in ("prefill", "decode"):
        mine = [op for name, op in points if name == phase]
        if not mine:
            continue
        fig.add_trace(
            go.Scatter(
                x=[op.intensity for op in mine],
                y=[op.flops / op.time_s for op in mine],
                mode="markers",
                name=f"{phase} operators",
                marker={
                    "symbol": PHASE_SYMBOLS[phase],
                    "size": 10,
                    "color": [BOUND_COLORS[op.bound] for op in mine],
                    "line": {"width": 1, "color": "#333"},
                },
                text=[_hover(op, phase) for op in mine],
                hoverinfo="text",
            )
        )
    fig.update_layout(
        title={"text": f"Roofline: {report.model.name} on {hw.display_name}", "font": {"size": 15}},
        xaxis={"type": "log", "title": "arithmetic intensity (FLOP/byte)"},
        yaxis={"type": "log", "title": "attained FLOP/s (ideal)"},
        legend={"orientation": "h", "y": -0.22, "yanchor": "top"},
        height=520,
        margin={"t": 50, "b": 10},
    )
    return fig


# --- time breakdown ---------------------------------------------------------------------------------


def breakdown(report: Report) -> go.Figure:
    """Share of each phase's ideal time by operator kind, stacked; hover gives the seconds (decode:
    per generated token). The phase labels carry the share of time spent in memory-bound operators."""
    go = _go()
    phases = [p for p in report.phases() if p.steps and p.time_s]
    per_token = {p.name: (report.decode_tokens if p.name == "decode" else 1) or 1 for p in phases}
    labels = []
    for p in phases:
        share = p.memory_bound_time_s / p.time_s
        per = per_token[p.name]
        unit = f"{fmt_time(p.time_s / per)} per token" if p.name == "decode" else fmt_time(p.time_s)
        labels.append(f"{p.name}: {unit}<br>{share:.0%} memory-bound")
    fig = go.Figure()
    kinds = sorted({op.kind for p in phases for op in p.ops}, key=_kind_rank)
    for kind in kinds:
        times = [sum(op.time_s for op in p.ops if op.kind == kind) for p in phases]
        fig.add_trace(
            go.Bar(
                x=labels,
                y=[t / p.time_s for t, p in zip(times, phases, strict=True)],
                name=kind,
                customdata=[fmt_time(t / per_token[p.name]) for t, p in zip(times, phases, strict=True)],
                hovertemplate=f"{kind}: %{{y:.1%}} (%{{customdata}})<extra></extra>",
            )
        )
    fig.update_layout(
        barmode="stack",
        title="Where the time goes (ideal), by operator kind",
        yaxis={"title": "share of phase time", "tickformat": ".0%"},
        margin={"t": 50, "b": 10},
    )
    return fig


def _kind_rank(kind: str) -> int:
    return KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)


# --- memory -----------------------------------------------------------------------------------------


def memory(report: Report) -> go.Figure:
    """Per-device memory: weights, KV cache, activations and runtime overhead against the capacity."""
    go = _go()
    m = report.memory
    parts = [
        ("weights", m.weights_bytes),
        ("KV cache", m.kv_cache_bytes),
        ("activations", m.activations_bytes),
        ("runtime overhead", m.overhead_bytes),
    ]
    fig = go.Figure()
    for name, value in parts:
        fig.add_trace(
            go.Bar(
                x=[value / 1e9],
                y=["per device"],
                orientation="h",
                name=f"{name} ({fmt_bytes(value)})",
                hovertemplate=f"{name}: {fmt_bytes(value)}<extra></extra>",
            )
        )
    fits = "fits" if m.fits else "does not fit"
    fig.add_vline(x=m.capacity_bytes / 1e9, line={"color": "black", "dash": "dash"})
    fig.update_layout(
        barmode="stack",
        title=(
            f"Memory per device: {fmt_bytes(m.total_bytes)} of {fmt_bytes(m.capacity_bytes)} ({fits}; "
            f"largest batch {m.max_batch})"
        ),
        xaxis={"title": "GB (dashed line: device capacity)"},
        legend={"orientation": "h", "y": -0.35, "yanchor": "top"},  # hangs below the axis title
        height=300,
        margin={"t": 50, "b": 10},
    )
    return fig


# --- decode timeline --------------------------------------------------------------------------------


def timeline(report: Report) -> go.Figure:
    """Each decode step's time against the context it attends to."""
    go = _go()
    d = report.decode
    fig = go.Figure()
    if d.steps:
        stride = max(1, -(-d.steps // MAX_TIMELINE_POINTS))
        idx = list(range(0, d.steps, stride))
        if idx[-1] != d.steps - 1:
            idx.append(d.steps - 1)
        ctx = [float(d.context[i]) for i in idx]
        # Seconds in the data; ticks and hover in ms / µs (SI prefixes with an "s" suffix).
        hover = "context %{x:,.0f}: %{y:.3s}s<extra>%{fullData.name}</extra>"
        for name, series in (("ideal", d.step_time_s), ("estimate", d.step_estimate_s)):
            if series is not None:
                y = [float(series[i]) for i in idx]
                fig.add_trace(go.Scatter(x=ctx, y=y, mode="lines", name=name, hovertemplate=hover))
    fig.update_layout(
        title="Decode step time over the generation",
        xaxis={"title": "context (tokens attended)"},
        yaxis={"title": "time per step", "rangemode": "tozero", "tickformat": "~s", "ticksuffix": "s"},
        margin={"t": 50, "b": 10},
    )
    return fig


# --- transformer block as a graph -------------------------------------------------------------------

# Operators that read the same input and run side by side in one row of the block graph: each layer
# kind says which of its operators do.
SIBLINGS = tuple(group for kind in REGISTRY.values() for group in kind.siblings)
# Collectives are drawn where they happen: before the op named here (else at the end of the block).
COMM_BEFORE = {
    "attn_allreduce": ("post_attn_norm", "attn_residual"),
    "mlp_allreduce": ("post_mlp_norm", "mlp_residual"),
    "moe_dispatch": ("experts_gate_up",),
    "moe_combine": ("experts_combine",),
}


def block_rows(ops: list[tuple[int, OpResult]]) -> list[list[tuple[int, OpResult]]]:
    """One decoder block's operators (with their indices) in rows: data flows from row to row."""
    plain = [(i, op) for i, op in ops if op.name not in COMM_BEFORE]
    for i, op in ops:
        if op.name in COMM_BEFORE:
            names = [o.name for _, o in plain]
            at = next((names.index(n) for n in COMM_BEFORE[op.name] if n in names), len(plain))
            plain.insert(at, (i, op))
    rows: list[list[tuple[int, OpResult]]] = []
    for item in plain:
        name = item[1].name
        last = rows[-1][-1][1].name if rows else None
        if last and any(name in s and last in s for s in SIBLINGS):
            rows[-1].append(item)
        else:
            rows.append([item])
    return rows


def block_graph(report: Report, phase: str = "decode", group: str | None = None) -> go.Figure:
    """One transformer block drawn as its operators, coloured by bound; ``customdata`` is each op's
    index in ``report.<phase>.ops`` (the web page uses it to show the op's figures on click)."""
    go = _go()
    result = getattr(report, phase)
    layer_ops = [(i, op) for i, op in enumerate(result.ops) if op.block in ("attention", "mlp")]
    # By default the block most layers share (DeepSeek: an MoE layer, not one of its first dense ones).
    layers: dict[str, float] = {}
    for _, op in layer_ops:
        layers[op.group] = max(layers.get(op.group, 0.0), op.count)
    if group is not None and group not in layers:
        known = ", ".join(repr(g) for g in layers) or "none"
        raise RooflensError(f"no layer group {group!r} in {report.model.name}; its groups: {known}")
    chosen = max(layers, key=layers.__getitem__) if group is None and layers else group
    rows = block_rows([(i, op) for i, op in layer_ops if op.group == chosen])
    total = result.time_s or 1.0
    xs, ys, text, colors, hover, custom = [], [], [], [], [], []
    edge_x: list[float | None] = []
    edge_y: list[float | None] = []
    for r, row in enumerate(rows):
        for c, (i, op) in enumerate(row):
            x = c - (len(row) - 1) / 2
            xs.append(x)
            ys.append(-r)
            text.append(op.name)
            colors.append(BOUND_COLORS[op.bound])
            hover.append(_hover(op, phase) + f"<br>{op.time_s / total:.1%} of {phase}")
            custom.append(i)
            if r:
                prev = rows[r - 1]
                for pc in range(len(prev)):
                    edge_x += [pc - (len(prev) - 1) / 2, x, None]
                    edge_y += [-(r - 1), -r, None]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=edge_x, y=edge_y, mode="lines", line={"color": "#bbb"}, hoverinfo="skip", showlegend=False
        )
    )
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=ys,
            mode="markers+text",
            text=text,
            textposition="middle right",
            marker={"size": 16, "symbol": "square", "color": colors, "line": {"width": 1, "color": "#333"}},
            hovertext=hover,
            hoverinfo="text",
            customdata=custom,
            showlegend=False,
        )
    )
    for bound, color in BOUND_COLORS.items():  # legend entries for the colours
        fig.add_trace(
            go.Scatter(
                x=[None], y=[None], mode="markers", marker={"color": color, "symbol": "square"}, name=bound
            )
        )
    label = f" ({chosen} layers)" if chosen else ""
    fig.update_layout(
        title={"text": f"One decoder block{label}, {phase}: ops coloured by bound", "font": {"size": 15}},
        xaxis={"visible": False, "range": [-2, 3]},
        yaxis={"visible": False},
        height=max(320, 34 * len(rows) + 80),
        margin={"t": 50, "b": 10, "l": 10, "r": 10},
        hovermode="closest",
    )
    return fig


# --- comparison -------------------------------------------------------------------------------------


def comparison(cmp: Comparison) -> go.Figure:
    """Side by side: TTFT, TPOT (ideal and estimate) and memory per device of each analysis."""
    go = _go()
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=3, subplot_titles=("TTFT (s)", "TPOT (s)", "memory per device (GB)"))
    reports = cmp.reports
    for col, ideal, est in ((1, "ttft_s", "ttft_estimate_s"), (2, "tpot_s", "tpot_estimate_s")):
        for key, name, color in ((ideal, "ideal", "#1f77b4"), (est, "estimate", "#ff7f0e")):
            values = [getattr(r, key) for r in reports]
            if all(v is None for v in values):
                continue
            fig.add_trace(
                go.Bar(x=cmp.names, y=values, name=name, marker={"color": color}, showlegend=col == 1),
                row=1,
                col=col,
            )
    fig.add_trace(
        go.Bar(
            x=cmp.names,
            y=[r.memory.total_bytes / 1e9 for r in reports],
            name="memory",
            marker={"color": "#7f7f7f"},
            showlegend=False,
        ),
        row=1,
        col=3,
    )
    for i, r in enumerate(reports):  # each analysis's capacity, as a marker over its memory bar
        fig.add_trace(
            go.Scatter(
                x=[cmp.names[i]],
                y=[r.memory.capacity_bytes / 1e9],
                mode="markers",
                marker={"symbol": "line-ew-open", "size": 30, "color": "black"},
                name="capacity",
                showlegend=i == 0,
            ),
            row=1,
            col=3,
        )
    fig.update_layout(title="Comparison", barmode="group", margin={"t": 60, "b": 10})
    return fig


# --- sweeps -----------------------------------------------------------------------------------------


def frontier(frame: Any) -> go.Figure:
    """Sweep rows that fit: throughput per device against per-user TPOT (estimate where there is one),
    one colour per device, and the frontier (best throughput at each latency or better) as a line."""
    go = _go()
    rows = frame[frame["fits"] & (frame["gen"] > 1)]
    estimated = len(rows) and rows["tpot_estimate_s"].notna().all()
    x_col, y_col = (
        ("tpot_estimate_s", "throughput_estimate_per_device")
        if estimated
        else ("tpot_s", "throughput_per_device")
    )
    fig = go.Figure()
    for hw, part in rows.groupby("hardware", sort=True):
        fig.add_trace(
            go.Scattergl(
                x=part[x_col],
                y=part[y_col],
                mode="markers",
                name=str(hw),
                marker={"size": 5, "opacity": 0.6},
                text=[
                    f"{r.hardware} x{r.devices}, W{r.w_bits}A{r.a_bits}KV{r.kv_bits}, batch {r.batch}, "
                    f"prompt {r.prompt}, gen {r.gen}"
                    for r in part.itertuples()
                ],
                hovertemplate="%{text}<br>TPOT %{x:.3s}s<br>%{y:,.0f} tokens/s/device<extra></extra>",
            )
        )
    ordered = rows.sort_values(x_col)
    edge = ordered[ordered[y_col] >= ordered[y_col].cummax()]
    fig.add_trace(
        go.Scatter(x=edge[x_col], y=edge[y_col], mode="lines", name="frontier",
                   line={"color": "black", "shape": "hv"})
    )  # fmt: skip
    label = "estimate" if estimated else "ideal"
    fig.update_layout(
        title=f"Throughput per device against per-user latency ({label})",
        xaxis={"type": "log", "title": f"TPOT, seconds ({label})"},
        yaxis={"type": "log", "title": "generated tokens/s per device"},
    )
    return fig


def cost_latency(candidates: Any, tpot_target: float | None = None) -> go.Figure:
    """Plan candidates that fit: dollars per million tokens against TPOT, one colour per device; those
    meeting every target drawn solid, the rest faint; the TPOT target as a dashed line."""
    go = _go()
    fig = go.Figure()
    for hw, part in candidates.groupby("hardware", sort=True):
        for meets, opacity in ((True, 0.9), (False, 0.15)):
            rows = part[part["meets"] == meets]
            if rows.empty:
                continue
            fig.add_trace(
                go.Scattergl(
                    x=rows["tpot_s"],
                    y=rows["usd_per_million_tokens"],
                    mode="markers",
                    name=f"{hw}" + ("" if meets else " (misses a target)"),
                    marker={"size": 6, "opacity": opacity},
                    text=[
                        f"{r.hardware} x{r.devices}, {r.quant}, batch {r.batch}" for r in rows.itertuples()
                    ],
                    hovertemplate="%{text}<br>TPOT %{x:.3s}s<br>$%{y:.3g} per 1M tokens<extra></extra>",
                )
            )
    if tpot_target is not None:
        fig.add_vline(x=tpot_target, line={"dash": "dash", "color": "black"})
    fig.update_layout(
        title="Cost against per-user latency (dashed: TPOT target)",
        xaxis={"type": "log", "title": "TPOT, seconds"},
        yaxis={"type": "log", "title": "US dollars per million generated tokens"},
    )
    return fig


# --- export -----------------------------------------------------------------------------------------

KINDS: dict[str, Callable[[Report], Any]] = {
    "roofline": roofline,
    "breakdown": breakdown,
    "memory": memory,
    "timeline": timeline,
    "block": block_graph,
}
STATIC_SUFFIXES = (".png", ".svg", ".pdf", ".jpg", ".jpeg", ".webp")


def check_figure_path(out: Path) -> None:
    """Refuse a figure path that cannot be written (an unknown suffix, a missing folder) before the
    work that makes the figure, not after it."""
    if out.suffix.lower() != ".html" and out.suffix.lower() not in STATIC_SUFFIXES:
        raise RooflensError(f"cannot write '{out.name}': use .html or one of {', '.join(STATIC_SUFFIXES)}")
    if not out.parent.is_dir():
        raise RooflensError(f"cannot write '{out}': no folder '{out.parent}'")


def write_figure(fig: go.Figure, out: Path) -> None:
    """HTML carries plotly.js inline (no CDN); images need kaleido and a local Chromium."""
    check_figure_path(out)
    suffix = out.suffix.lower()
    if suffix == ".html":
        try:
            fig.write_html(out, include_plotlyjs=True, full_html=True)
        except OSError as err:
            raise RooflensError(f"cannot write '{out}': {err.strerror or err}") from None
        return
    # choreographer (kaleido's browser driver) logs harmless protocol chatter at error level.
    logging.getLogger("choreographer").setLevel(logging.CRITICAL)
    try:
        fig.write_image(out)
    except Exception as err:  # kaleido missing, or no Chromium it can start
        raise RooflensError(
            f"static export to {suffix} failed ({type(err).__name__}: {err}). It needs kaleido "
            "(pip install 'rooflens[plot]') and a Chromium (Debian: apt-get install chromium); "
            "an .html file needs neither."
        ) from None


def serving_sweep(rows: list[dict[str, Any]]) -> go.Figure:
    """A closed-loop concurrency sweep (``rooflens.serving.sweep_concurrency``): output tokens/s per
    device against tokens/s per user, one point per concurrency labelled C=..., joined in order."""
    go = _go()
    points = [
        r for r in rows
        if r.get("tokens_per_s_per_user") is not None and r.get("output_tokens_per_s_per_device") is not None
    ]  # fmt: skip
    engine = next((r["engine"] for r in rows if r.get("engine")), None)
    fig = go.Figure(
        go.Scatter(
            x=[r["tokens_per_s_per_user"] for r in points],
            y=[r["output_tokens_per_s_per_device"] for r in points],
            mode="lines+markers+text",
            name="concurrency sweep",
            text=[f"C={r['concurrency']}" for r in points],
            textposition="top center",
            customdata=[[r["ttft"]["p50"], r["tpot"]["p50"]] for r in points],
            hovertemplate="%{text}<br>%{x:,.1f} tokens/s per user<br>%{y:,.0f} tokens/s per device"
            "<br>TTFT p50 %{customdata[0]:.3s}s, TPOT p50 %{customdata[1]:.3s}s<extra></extra>",
        )
    )
    fig.update_layout(
        title="Throughput against interactivity (simulated" + (f", {engine})" if engine else ")"),
        xaxis={"title": "output tokens/s per user (mean of 1/TPOT)"},
        yaxis={"title": "output tokens/s per device"},
    )
    return fig


def published_scatter(results: list[Any]) -> go.Figure:
    """Predicted against measured time of published rows (log-log), one colour per engine, with the
    p10-p90 range as error bars and the line of perfect agreement."""
    go = _go()
    fig = go.Figure()
    engines = sorted({r.row.engine for r in results if r.estimate_s is not None})
    for engine in engines:
        mine = [r for r in results if r.row.engine == engine and r.estimate_s is not None]
        lo = [r.estimate_s - (r.low_s if r.low_s is not None else r.estimate_s) for r in mine]
        hi = [(r.high_s if r.high_s is not None else r.estimate_s) - r.estimate_s for r in mine]
        fig.add_trace(
            go.Scatter(
                x=[r.measured_s for r in mine],
                y=[r.estimate_s for r in mine],
                mode="markers",
                name=engine,
                error_y={"type": "data", "symmetric": False, "array": hi, "arrayminus": lo, "thickness": 1},
                text=[f"{r.row.id} {r.row.model} on {r.row.hardware} ({r.row.metric})" for r in mine],
                hovertemplate="%{text}<br>measured %{x:.3g} s<br>estimate %{y:.3g} s<extra></extra>",
            )
        )
    times = [t for r in results if r.estimate_s is not None for t in (r.measured_s, r.estimate_s)]
    if times:
        span = [min(times) / 1.5, max(times) * 1.5]
        fig.add_trace(
            go.Scatter(x=span, y=span, mode="lines", name="estimate = measured", line={"dash": "dot"})
        )
    fig.update_layout(
        title="Estimated against measured time (published rows)",
        xaxis={"title": "measured (s)", "type": "log"},
        yaxis={"title": "estimated (s)", "type": "log"},
    )
    return fig
