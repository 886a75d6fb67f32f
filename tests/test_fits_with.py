"""fits_with: the ways out of "does not fit", checked against memory arithmetic done by hand."""

from __future__ import annotations

import pytest

import rooflens
from rooflens.analysis import fits_with

GB = 1e9


def test_llama_3_70b_on_one_h100_by_hand():
    # llama-3-70b at 16 bits: 68,451,041,280 linear weights, 1,050,673,152 each in the embedding and
    # the LM head, 1,318,912 in norms = 70,553,706,496 parameters x 2 B = 141.107 GB.
    # KV cache: 2 (K, V) x 80 layers x 8 KV heads x 128 dims x 2 B = 327,680 B per token, x 1,152
    # tokens (prompt 1,024 + gen 128) = 0.3775 GB. The h100-sxm entry: 80 GiB = 85.899 GB, with
    # 0.552 GB of runtime overhead. 141.1 GB alone is over 85.9 GB: it does not fit.
    weights, kv, overhead, capacity = 141.107e9, 0.37749e9, 0.5524e9, 85.899e9
    options = {o.kind: o for o in fits_with("llama-3-70b", "h100-sxm")}
    assert set(options) == {"tp", "quant", "offload"}

    # TP 2 halves the weights and the KV heads: 70.55 + 0.19 + 0.55 = 71.3 GB (+ activations, under
    # 0.2 GB) <= 85.9 GB, so 2 is the smallest degree.
    tp = options["tp"]
    assert tp.change == {"tp": 2} and tp.capacity_bytes == pytest.approx(capacity, rel=1e-4)
    assert tp.total_bytes == pytest.approx(weights / 2 + kv / 2 + overhead, abs=0.2 * GB)

    # FP8 (W8A8, per-row 16-bit scales) stores the 68.45e9 linear weights in 1 B each, while the
    # embedding and the LM head stay at 16 bits (2 x 1.0507e9 x 2 B = 4.20 GB): 72.65 GB, + 0.38 KV
    # + 0.55 = 73.6 GB on one device.
    q = options["quant"]
    assert q.change == {"quant": "fp8"}
    assert q.total_bytes == pytest.approx(68.451e9 + 4.203e9 + kv + overhead, abs=0.3 * GB)

    # Offload: over by 141.107 + 0.377 + 0.552 + ~0.19 - 85.899 = 56.3 GB = 0.399 of the weights,
    # so a share of 0.40 (in steps of 0.05): 0.6 x 141.107 = 84.66 GB on the device, 85.8 GB in all.
    off = options["offload"]
    assert off.change == {"offload_weights": 0.4}
    assert off.total_bytes == pytest.approx(0.6 * weights + kv + overhead, abs=0.2 * GB)
    assert off.total_bytes <= capacity


def test_each_option_fits_when_applied_and_the_next_smaller_does_not():
    for o in fits_with("llama-3-70b", "h100-sxm"):
        assert rooflens.analyze("llama-3-70b", "h100-sxm", **o.change).memory.fits, o
    assert not rooflens.analyze("llama-3-70b", "h100-sxm", offload_weights=0.35).memory.fits


def test_deepseek_v3_on_h200_needs_a_narrower_format_across_the_board():
    # 671e9 parameters (the catalog's count: 670.97e9) x 2 B = 1,342 GB; over 8 H200s (the scale-up
    # domain: 8) that is 167.8 GB each, more than 141 GiB = 151.4 GB: no TP alone fits. FP8 halves
    # it: 671 GB / 4 = 168 GB (no) and / 8 = 84 GB (fits), so FP8 on TP 8.
    options = {o.kind: o for o in fits_with("deepseek-v3", "h200")}
    assert "tp" not in options
    assert options["quant"].change == {"quant": "fp8", "tp": 8}
    assert options["quant"].total_bytes == pytest.approx(671e9 / 8, rel=0.03)
    # The mixture of experts: the same share of the experts and the rest goes to host memory.
    off = options["offload"].change
    assert set(off) == {"offload_weights", "offload_experts"} and off["offload_weights"] == 0.9


def test_what_is_not_offered():
    assert fits_with("llama-3-8b", "h100-sxm") == []  # it fits
    # A device with no interconnect and no host link: only a narrower format can help.
    device = {"name": "lone", "memory_bytes": 10e9, "memory_bandwidth": 1e12, "peak_flops": {"fp16": 1e14}}
    options = fits_with("llama-3-8b", device)
    assert [o.kind for o in options] == ["quant"] and options[0].change == {"quant": "fp8"}
    # Explicit bit widths are replaced by the suggested format, not left to override it.
    options = fits_with("llama-3-8b", device, w_bits=16, a_bits=16)
    assert options[0].change == {"quant": "fp8"}
    assert rooflens.analyze("llama-3-8b", device, quant="fp8").memory.fits
    # Nothing fits: a 70B model on a 10 GB device with nowhere to go.
    assert fits_with("llama-3-70b", device) == []


def test_the_cli_table_lists_the_checked_ways_out():
    """`rooflens analyze` prints fits_with's options under the table as the options that apply them
    (the report's note states the shortfall, not a guess at the way out)."""
    from typer.testing import CliRunner

    from rooflens.cli import app

    out = CliRunner().invoke(app, ["analyze", "llama-3-70b", "--hardware", "l40s", "--quant", "w16a16"])
    assert out.exit_code == 0, out.output
    lines = [line for line in out.output.splitlines() if line.startswith("fits with")]
    options = fits_with("llama-3-70b", "l40s", quant="w16a16")
    assert [o.kind for o in options] == ["tp", "quant", "offload"]
    assert lines == [
        f"fits with {' '.join(f'--{k.replace(chr(95), chr(45))} {v}' for k, v in o.change.items())}: "
        f"{o.total_bytes / 1e9:.1f} of {o.capacity_bytes / 1e9:.1f} GB per device"
        for o in options
    ]
    # It fits: nothing is listed; and machine-readable output carries no extra lines.
    assert "fits with" not in CliRunner().invoke(app, ["analyze", "llama-3-8b", "--hardware", "h100"]).output
    json_out = CliRunner().invoke(app, ["analyze", "llama-3-70b", "--hardware", "l40s", "--format", "json"])
    assert "fits with" not in json_out.output
