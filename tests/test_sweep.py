"""The vectorised sweep equals single analyses, configuration by configuration."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from typer.testing import CliRunner

import rooflens
from rooflens import RooflensError
from rooflens.cli import app
from rooflens.sweep import sweep

CHECKED = {
    "ttft_s": lambda r: r.ttft_s,
    "tpot_s": lambda r: r.tpot_s,
    "total_time_s": lambda r: r.total_time_s,
    "throughput_tokens_per_s": lambda r: r.throughput_tokens_per_s,
    "ttft_estimate_s": lambda r: r.ttft_estimate_s,
    "tpot_estimate_s": lambda r: r.tpot_estimate_s,
    "total_estimate_s": lambda r: r.total_estimate_s,
    "weights_bytes": lambda r: r.memory.weights_bytes,
    "kv_cache_bytes": lambda r: r.memory.kv_cache_bytes,
    "activations_bytes": lambda r: r.memory.activations_bytes,
    "total_bytes": lambda r: r.memory.total_bytes,
    "fits": lambda r: r.memory.fits,
    "max_batch": lambda r: r.memory.max_batch,
}


def assert_rows_equal_analyses(model, frame: pd.DataFrame, **fixed) -> None:
    for row in frame.itertuples():
        r = rooflens.analyze(
            model, row.hardware, batch=row.batch, prompt=row.prompt, gen=row.gen, w_bits=row.w_bits,
            a_bits=row.a_bits, kv_bits=row.kv_bits, tp=row.tp, pp=row.pp, ep=row.ep, **fixed,
        )  # fmt: skip
        for column, get in CHECKED.items():
            want, got = get(r), getattr(row, column)
            if want is None:
                assert math.isnan(got), (column, row)
            else:
                assert got == pytest.approx(want, rel=1e-9), (column, row)


@pytest.mark.parametrize(
    ("model", "axes", "fixed"),
    [
        ("llama-3-8b", dict(hardware=["h100", "a100"], tp=[1, 2], w_bits=[16, 4], batch=[1, 16]), {}),
        ("mistral-7b-v0.1", dict(hardware=["l40s"], batch=[2], prompt=[3000, 5000]), {}),  # window 4096
        ("mixtral-8x7b", dict(hardware=["h100"], tp=[2], ep=[1, 2], batch=[1, 64]), {}),
        ("deepseek-v2-lite", dict(hardware=["h200"], batch=[4], kv_bits=[8, 16]), {}),
        ("gpt2", dict(hardware=["t4", "m2-ultra"], batch=[1, 3]), {"kv_cache": False}),
        ("llama-3-8b", dict(hardware=["h100"], batch=[8]), {"exit_fraction": 0.6, "kv_budget": 700}),
        ("qwen2.5-7b", dict(hardware=["rtx-4090"], pp=[1, 2], batch=[1, 4]), {"flash_attention": False}),
        ("llama-3-8b", dict(hardware=["h100"], w_bits=[8, 4], batch=[1, 8]), {"wide_layers": 2}),
        # Devices with other engines (llama.cpp on Apple), none (TPU) and a long decode (attention
        # varies over 1,500 steps while the matmuls are steady) in one array evaluation.
        (
            "llama-3-8b",
            dict(
                hardware=["h100", "tpu-v5e", "m2-ultra", "mi300x"],
                batch=[2],
                prompt=[100, 900],
                gen=[1, 1500],
            ),
            {},
        ),
    ],
)
def test_sweep_equals_single_analyses_cell_by_cell(model, axes, fixed):
    grid = {"prompt": [1, 100, 1024], "gen": [1, 2, 65], **axes}
    frame = sweep(model, **grid, **fixed).to_frame()
    expected = math.prod(len(v) for v in grid.values())
    assert len(frame) == expected
    assert_rows_equal_analyses(model, frame, **fixed)


def test_impossible_combinations_are_skipped_with_the_reason():
    result = sweep("llama-3-8b", hardware=["h100"], tp=[1, 3], batch=[1], prompt=[128], gen=[8])
    assert len(result) == 1
    ((point, reason),) = result.skipped
    assert point["tp"] == 3 and "does not divide" in reason
    with pytest.raises(RooflensError, match="no configuration of this sweep"):
        sweep("llama-3-8b", tp=[3])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prompt_keep": 0.5}, "cannot vary per prompt with prompt_keep"),
        ({"draft_model": "llama-3.2-1b"}, "draft_model"),
        ({"batch": [0, 1]}, "takes positive integers"),
        ({"gen": []}, "is empty"),
        ({"hardware": ["h1000"]}, "unknown hardware"),
    ],
)
def test_sweep_rejects_what_it_cannot_vectorise(kwargs, message):
    with pytest.raises(RooflensError, match=message):
        sweep("gpt2", **kwargs)


def test_cli_sweep_writes_every_row(tmp_path):
    out, plot = tmp_path / "s.csv", tmp_path / "s.html"
    args = ["sweep", "llama-3-8b", "-H", "h100", "-H", "l40s", "-b", "1:64", "-p", "512,2048",
            "--w-bits", "16,4", "--out", str(out), "--plot", str(plot)]  # fmt: skip
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    frame = pd.read_csv(out)
    assert len(frame) == 2 * 7 * 2 * 1 * 2 and "Highest throughput per device" in res.output
    row = frame.iloc[5]
    r = rooflens.analyze("llama-3-8b", row.hardware, batch=int(row.batch), prompt=int(row.prompt), gen=128,
                         w_bits=int(row.w_bits))  # fmt: skip
    assert row.tpot_s == pytest.approx(r.tpot_s, rel=1e-9)
    assert "frontier" in plot.read_text()[-200_000:]
    bad = CliRunner().invoke(app, ["sweep", "gpt2", "-b", "1:x"])
    assert bad.exit_code == 2 and "doubling range (1:1024)" in bad.output
    parquet = tmp_path / "s.parquet"
    assert CliRunner().invoke(app, [*args[:-4], "--out", str(parquet)]).exit_code == 0
    pd.testing.assert_frame_equal(pd.read_parquet(parquet), frame, check_dtype=False)
    bad = CliRunner().invoke(app, ["sweep", "gpt2", "--set", "batch=4"])
    assert bad.exit_code == 2 and "use the sweep's own options" in bad.output
    fixed = CliRunner().invoke(app, ["sweep", "gpt2", "-b", "2", "--set", "flash_attention=false"])
    assert fixed.exit_code == 0, fixed.output
    bad = CliRunner().invoke(app, ["sweep", "gpt2", "--out", str(tmp_path / "s.xlsx")])
    assert bad.exit_code == 2 and "use .csv or .parquet" in bad.output


def test_progress_reports_every_configuration():
    seen = []
    sweep("gpt2", hardware=["h100", "a100"], batch=[1, 2, 4], prompt=[8, 16], gen=[4],
          progress=lambda d, t: seen.append((d, t)))  # fmt: skip
    assert seen == [(6, 12), (12, 12)]


@pytest.mark.parametrize("scheduler", ["threads", "processes"])
def test_dask_backend_gives_the_local_results(scheduler):
    grid = dict(hardware=["h100", "l40s"], tp=[1, 2, 3], w_bits=[16, 4], batch=[1, 32], prompt=[64, 2048],
                gen=[1, 129])  # fmt: skip
    local = sweep("llama-3-8b", **grid)
    remote = sweep("llama-3-8b", backend="dask", scheduler=scheduler, **grid)
    pd.testing.assert_frame_equal(local.to_frame(), remote.to_frame())
    assert local.skipped == remote.skipped and len(local.skipped) == 2 * 2 * 2  # tp 3 does not divide
    with pytest.raises(RooflensError, match="unknown sweep backend 'ray'"):
        sweep("gpt2", backend="ray")


def test_a_memo_shared_across_devices_changes_no_number():
    """plan() hands one memo to the sweeps of every device: operators built for an H100 are placed on
    a B200 (same layout, other peaks, bandwidth and calibration), so its rows must equal a fresh sweep's."""
    grid = dict(batch=[1, 32], prompt=[512, 2048], gen=[2, 200], quant="fp8", kv_format="fp8")
    memo: dict = {}
    sweep("qwen3-30b-a3b", hardware=["h100"], memo=memo, **grid)
    assert memo, "the first sweep should have filled the memo"
    shared = sweep("qwen3-30b-a3b", hardware=["b200"], memo=memo, **grid).to_frame()
    fresh = sweep("qwen3-30b-a3b", hardware=["b200"], **grid).to_frame()
    pd.testing.assert_frame_equal(shared, fresh)
    assert_rows_equal_analyses("qwen3-30b-a3b", fresh.iloc[::3], quant="fp8", kv_format="fp8")


def test_devices_swept_together_equal_each_swept_alone():
    """The local sweep evaluates the devices of a (parallelism, precision) combination together;
    each device's rows, skipped points and stop must be those of a sweep of it alone."""
    devices = ["h100", "l4", "m2-ultra", "tpu-v5e", "rtx-4090"]
    grid = dict(tp=[1, 2], batch=[1, 8, 64, 512], prompt=[4096], gen=[64])

    def stop(block):  # devices stop at different batches: the smaller ones run out of memory first
        return not block["fits"].all()

    together = sweep("qwen2.5-7b", hardware=devices, stop=stop, **grid)
    alone = [sweep("qwen2.5-7b", hardware=[d], stop=stop, **grid) for d in devices]
    pd.testing.assert_frame_equal(
        together.to_frame(), pd.concat([a.to_frame() for a in alone], ignore_index=True)
    )
    assert together.skipped == [point for a in alone for point in a.skipped]
    rows = together.to_frame().groupby("hardware").size()
    assert rows.nunique() > 1, "the stop should end the devices' batches at different points"
