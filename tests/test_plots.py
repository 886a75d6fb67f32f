"""Figures show the report's own numbers, and `rooflens plot` writes them to files."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

import rooflens
from rooflens import plots
from rooflens.cli import app
from rooflens.compare import compare


@pytest.fixture(scope="module")
def report():
    return rooflens.analyze("mixtral-8x7b", "h100", batch=8, prompt=512, gen=65, tp=2)


def _trace(fig, prefix):
    return next(t for t in fig.data if (t.name or "").startswith(prefix))


def test_roofline_points_and_roofs_are_the_reports(report):
    fig = plots.roofline(report)
    decode = _trace(fig, "decode operators")
    ops = [o for o in report.decode.ops if o.kind != "comm" and o.flops > 0 and o.time_s > 0]
    assert list(decode.x) == [o.intensity for o in ops]
    assert list(decode.y) == pytest.approx([o.flops / o.time_s for o in ops])
    fp16 = _trace(fig, "fp16 roof")
    assert fp16.y[0] == report.hardware.peak_flops["fp16"]
    assert fp16.x[0] == pytest.approx(report.hardware.peak_flops["fp16"] / report.hardware.memory_bandwidth)
    memory_roof = _trace(fig, "memory roof")
    assert memory_roof.y[0] / memory_roof.x[0] == pytest.approx(report.hardware.memory_bandwidth)
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
    # Every point sits on or under its roof: the plot and the roofline agree.
    for x, y in zip(decode.x, decode.y, strict=True):
        assert y <= min(report.hardware.memory_bandwidth * x, report.hardware.peak_flops["fp16"]) * (1 + 1e-9)


def test_breakdown_shares_sum_to_one_and_name_the_memory_bound_share(report):
    fig = plots.breakdown(report)
    for i in range(2):
        assert sum(t.y[i] for t in fig.data) == pytest.approx(1.0)
    matmul = _trace(fig, "matmul")
    want = sum(o.time_s for o in report.decode.ops if o.kind == "matmul") / report.decode.time_s
    assert matmul.y[1] == pytest.approx(want)
    share = report.decode.memory_bound_time_s / report.decode.time_s
    assert f"{share:.0%} memory-bound" in matmul.x[1]


def test_memory_and_timeline(report):
    fig = plots.memory(report)
    assert _trace(fig, "KV cache").x[0] == pytest.approx(report.memory.kv_cache_bytes / 1e9)
    assert fig.layout.shapes[0].x0 == pytest.approx(report.memory.capacity_bytes / 1e9)
    tl = plots.timeline(report)
    assert list(_trace(tl, "ideal").y) == report.decode.step_time_s.tolist()
    assert list(_trace(tl, "ideal").x) == report.decode.context.tolist()
    long = rooflens.analyze("gpt2", "h100", gen=10_001)
    xs = plots.timeline(long).data[0].x
    assert len(xs) <= plots.MAX_TIMELINE_POINTS + 1 and xs[-1] == long.decode.context[-1]


def test_block_graph_rows_and_collectives(report):
    fig = plots.block_graph(report, "decode")
    nodes = next(t for t in fig.data if t.customdata is not None)
    names = list(nodes.text)
    assert names[:4] == ["attn_norm", "q_proj", "k_proj", "v_proj"]
    assert names.index("attn_allreduce") == names.index("o_proj") + 1  # drawn where it happens
    assert names.index("mlp_allreduce") == names.index("mlp_residual") - 1
    assert [report.decode.ops[i].name for i in nodes.customdata] == names
    rows = plots.block_rows([(i, o) for i, o in enumerate(report.decode.ops) if o.block == "attention"])
    assert [o.name for _, o in rows[1]] == ["q_proj", "k_proj", "v_proj"]  # one row: same input
    colors = dict(zip(names, nodes.marker.color, strict=True))
    ds = rooflens.analyze("deepseek-v3", "h200", tp=8, w_bits=8, gen=3)
    ds_nodes = next(t for t in plots.block_graph(ds).data if t.customdata is not None)
    assert "experts_gate_up" in ds_nodes.text  # the block of 58 MoE layers, not the 3 dense ones
    assert colors["attn_allreduce"] == plots.BOUND_COLORS["comm"]


def test_comparison_figure():
    a = rooflens.analyze("llama-3-8b", "h100", batch=4)
    b = rooflens.analyze("llama-3-8b", "h100", batch=4, w_bits=4)
    fig = plots.comparison(compare([a, b]))
    ideal = [t for t in fig.data if t.name == "ideal"]
    assert list(ideal[0].y) == [a.ttft_s, b.ttft_s] and list(ideal[1].y) == [a.tpot_s, b.tpot_s]


def test_cli_plot_writes_html_offline(tmp_path):
    out = tmp_path / "roof.html"
    res = CliRunner().invoke(
        app, ["plot", "llama-3-8b", "-H", "a100", "-b", "4", "--kind", "roofline", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    html = out.read_text()
    # plotly.js is inline (over a megabyte), not fetched: no script is loaded from anywhere.
    assert "Roofline: llama-3-8b" in html and "<script src=" not in html and len(html) > 1_000_000
    for kind in ("breakdown", "memory", "timeline", "block"):
        target = tmp_path / f"{kind}.html"
        assert CliRunner().invoke(app, ["plot", "gpt2", "--kind", kind, "--out", str(target)]).exit_code == 0
        assert target.stat().st_size > 1_000_000


def test_cli_plot_errors(tmp_path):
    res = CliRunner().invoke(app, ["plot", "llama-3-8b", "--out", str(tmp_path / "x.txt")])
    assert res.exit_code == 2 and "use .html or one of .png" in res.output
    res = CliRunner().invoke(app, ["plot", "llama-3-8x", "--out", str(tmp_path / "x.html")])
    assert res.exit_code == 2 and "Did you mean" in res.output
    res = CliRunner().invoke(app, ["plot", "gpt2", "--kind", "pie"])
    assert res.exit_code == 2 and "'roofline'" in res.output


def test_static_export_png_and_svg(tmp_path):
    """Through kaleido and the Chromium the test set-up installs (scripts/test.sh)."""
    png, svg = tmp_path / "r.png", tmp_path / "r.svg"
    res = CliRunner().invoke(app, ["plot", "gpt2", "--kind", "memory", "--out", str(png)])
    assert res.exit_code == 0, res.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    cmp = CliRunner().invoke(
        app, ["compare", "gpt2", "-H", "h100", "-H", "a100", "--no-ops", "--plot", str(svg)]
    )
    assert cmp.exit_code == 0, cmp.output
    assert "<svg" in svg.read_text()[:500]


def test_readable_numbers_in_figures(report):
    from rooflens.units import fmt_plain

    assert [fmt_plain(v) for v in (2290.4, 123_456, 99.94, 0.1254, float("inf"))] == [
        "2,290", "123,000", "99.9", "0.125", "-",
    ]  # fmt: skip
    hovers = [
        h for t in plots.roofline(report).data for h in (t.hovertext or t.text or []) if "intensity" in h
    ]
    assert hovers and not any("e+" in h for h in hovers)
    # The timeline keeps seconds in its data and shows them with SI prefixes (ms, µs) and an "s".
    tl = plots.timeline(report)
    assert tl.layout.yaxis.tickformat == "~s" and tl.layout.yaxis.ticksuffix == "s"
    assert "%{y:.3s}s" in _trace(tl, "ideal").hovertemplate
