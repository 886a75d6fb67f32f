"""rooflens plan: only configurations that fit and meet the targets, ranked by cost, prices overridable."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import rooflens
from rooflens import RooflensError
from rooflens.cli import app
from rooflens.hardware.prices import bundled_prices, parse_price_overrides
from rooflens.plan import KV_FORMATS, QUANTS, plan

DEVICES = ["h100-sxm", "a100-sxm-80gb", "l4"]
SMALL = dict(hardware=DEVICES, tp=(1, 2), batches=(1, 4, 16, 64))


@settings(max_examples=25, deadline=None)
@given(
    ttft=st.floats(0.005, 3.0),
    tpot=st.floats(0.002, 0.2),
    prompt=st.sampled_from([128, 1024, 4096]),
    gen=st.sampled_from([2, 64, 512]),
)
def test_plan_never_returns_a_configuration_that_misses(ttft, tpot, prompt, gen):
    try:
        result = plan("llama-3-8b", prompt=prompt, gen=gen, ttft=ttft, tpot=tpot, every_batch=True, **SMALL)
    except RooflensError as err:
        # "Nothing meets" must be true: not even one sequence, on any device, TP degree and format of
        # the search, fits and meets both targets (batch 1 is the fastest for TTFT and TPOT alike).
        assert "meets" in str(err) or "fits" in str(err), err
        for hw in DEVICES:
            for t in SMALL["tp"]:
                for q in QUANTS:
                    for kv in KV_FORMATS:
                        r = rooflens.analyze(
                            "llama-3-8b", hw, prompt=prompt, gen=gen, tp=t, quant=q, kv_format=kv
                        )
                        meets = r.memory.fits and r.ttft_estimate_s <= ttft and r.tpot_estimate_s <= tpot
                        assert not meets, (hw, t, q, kv)
        return
    e = result.entries
    assert (e["ttft_s"] <= ttft).all() and (e["tpot_s"] <= tpot).all()
    capacity = [rooflens.load_hardware(h).memory_bytes for h in e["hardware"]]
    assert all(m <= c for m, c in zip(e["memory_per_device_bytes"], capacity, strict=True))
    assert list(e["usd_per_million_tokens"]) == sorted(e["usd_per_million_tokens"])
    if len(e):  # the winner, re-analysed on its own, meets the targets and fits
        w = e.iloc[0]
        r = rooflens.analyze("llama-3-8b", w.hardware, batch=int(w.batch), prompt=prompt, gen=gen,
                             tp=int(w.tp), quant=w.quant, kv_format=w.kv_format)  # fmt: skip
        assert r.memory.fits and r.ttft_estimate_s <= ttft and r.tpot_estimate_s <= tpot
        assert r.ttft_estimate_s == pytest.approx(w.ttft_s, rel=1e-9)


def test_cost_energy_and_replicas_by_hand():
    result = plan("llama-3-8b", prompt=1024, gen=256, ttft=1.0, tpot=0.05, rate=10.0, **SMALL)
    w = result.entries.iloc[0]
    r = rooflens.analyze("llama-3-8b", w.hardware, batch=int(w.batch), prompt=1024, gen=256, tp=int(w.tp),
                         quant=w.quant, kv_format=w.kv_format)  # fmt: skip
    tokens = w.batch * 256
    price = bundled_prices()[w.hardware]
    assert w.usd_per_million_tokens == pytest.approx(
        price / 3600 * w.devices * r.total_estimate_s / tokens * 1e6
    )
    assert w.joules_per_token == pytest.approx(r.hardware.tdp_watts * w.devices * r.total_estimate_s / tokens)
    assert w.replicas == math.ceil(10.0 * r.total_estimate_s / w.batch)
    assert w.usd_per_hour == pytest.approx(w.replicas * w.devices * price)
    assert any("bound" in line for line in result.explanation)


def test_price_overrides_change_the_ranking():
    base = plan("llama-3-8b", prompt=1024, gen=256, ttft=1.0, tpot=0.05, **SMALL)
    winner = base.entries.iloc[0].hardware
    other = next(h for h in DEVICES if h != winner and h in set(base.entries["hardware"]))
    cheap = plan("llama-3-8b", prompt=1024, gen=256, ttft=1.0, tpot=0.05, prices={other: 0.01}, **SMALL)
    assert cheap.entries.iloc[0].hardware == other
    dear = plan("llama-3-8b", prompt=1024, gen=256, ttft=1.0, tpot=0.05, prices={winner: 1000.0}, **SMALL)
    assert dear.entries.iloc[0].hardware != winner
    # The explanation's break-even price for the runner-up really makes it tie.
    line = next(s for s in base.explanation if s.startswith("Runner-up"))
    runner = line.split(": ")[1].split(" ")[0]
    tie = float(line.split("would tie at $")[1].split(" ")[0])
    tied = plan("llama-3-8b", prompt=1024, gen=256, ttft=1.0, tpot=0.05, prices={runner: tie}, **SMALL)
    top_two = tied.entries.iloc[:2]
    assert top_two.iloc[0].usd_per_million_tokens == pytest.approx(
        top_two.iloc[1].usd_per_million_tokens, rel=0.01
    )


def test_cost_latency_plot_shows_every_candidate_that_fits(tmp_path):
    from rooflens import plots

    result = plan("llama-3-8b", prompt=1024, gen=256, ttft=1.0, tpot=0.02, **SMALL)
    fig = plots.cost_latency(result.candidates, 0.02)
    solid = [t for t in fig.data if "misses" not in t.name]
    assert sum(len(t.x) for t in fig.data) == len(result.candidates)
    assert sum(len(t.x) for t in solid) == int(result.candidates["meets"].sum())
    assert all(x <= 0.02 for t in solid for x in t.x)
    out = tmp_path / "cost.html"
    args = ["plan", "llama-3-8b", "-H", "h100", "-H", "l4", "--tpot", "20ms", "--plot", str(out)]
    assert CliRunner().invoke(app, args).exit_code == 0 and out.stat().st_size > 1_000_000


def test_devices_without_price_are_left_out_and_said():
    result = plan("gpt2", prompt=128, gen=16, ttft=1, tpot=1, hardware=["h100", "mi300x"], tp=(1,))
    assert set(result.entries["hardware"]) == {"h100-sxm"} and result.excluded == ["mi300x"]
    with_price = plan("gpt2", prompt=128, gen=16, ttft=1, tpot=1, hardware=["mi300x"], prices={"mi300x": 2.0})
    assert set(with_price.entries["hardware"]) == {"mi300x"}


def test_prices_by_alias_and_repeated_names_count_once():
    """A price given under an alias ('h100', 'H100') is the device's; a format or TP degree named
    twice (or by a second name, 'FP8') is searched once and listed once."""
    kw = dict(prompt=128, gen=16, ttft=1.0, tpot=1.0, hardware=["h100"], kv_formats=["fp8"])
    one = plan("gpt2", **kw, quants=["fp8"], tp=[1], prices={"h100-sxm": 100.0})
    alias = plan("gpt2", **kw, quants=["fp8"], tp=[1], prices={"H100": 100.0})
    assert alias.entries.equals(one.entries)
    default = plan("gpt2", **kw, quants=["fp8"], tp=[1])
    # cost scales with the price: 100 $/h against the bundled one
    ratio = one.entries.iloc[0].usd_per_million_tokens / default.entries.iloc[0].usd_per_million_tokens
    assert ratio == pytest.approx(100.0 / bundled_prices()["h100-sxm"])
    twice = plan("gpt2", **{**kw, "kv_formats": ["fp8", "FP8"]}, quants=["fp8", "FP8", "fp8"], tp=[1, 1])
    assert twice.entries.equals(default.entries) and twice.considered == default.considered


def test_nothing_meets_says_why():
    result = plan("llama-3-70b", prompt=1024, gen=64, ttft=0.001, tpot=0.05, **SMALL)
    assert result.entries.empty and "fastest TTFT that fits" in result.explanation[0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"gen": 1}, "gen >= 2"),
        ({"ttft": 0}, "latency targets are positive, finite seconds"),
        ({"quants": ["w3"]}, "unknown format .w3."),
        ({"hardware": ["mi300x"]}, "no device with a price"),
        ({"rate": -1.0}, "--rate"),
        ({"rate": float("inf")}, "positive, finite"),  # JSON output once failed on it
        ({"rate": float("nan")}, "positive, finite"),  # once planned for `replicas: null`
        ({"ttft": float("nan")}, "positive, finite seconds"),
        ({"ttft": "1s"}, "positive, finite seconds"),  # a TypeError once
        ({"tp": [5]}, "--tp 5 does not divide gpt2.s 12 attention heads"),  # the reason, not only "none"
        # a price for a device that is no name nor alias would silently not apply
        ({"hardware": ["h100"], "prices": {"h100-sx": 3.0}}, "prices: unknown hardware 'h100-sx'"),
        ({"hardware": ["h100"], "prices": {"h100": 0.0}}, "price of 'h100' must be a positive"),
        ({"hardware": ["h100"], "prices": {"h100": float("inf")}}, "must be a positive"),
    ],
)
def test_bad_plans(kwargs, message):
    args = dict(prompt=128, gen=16, ttft=1.0, tpot=1.0) | kwargs
    with pytest.raises(RooflensError, match=message):
        plan("gpt2", **args)


def test_price_override_parsing():
    assert parse_price_overrides(["H100=2.5", "a100=1"]) == {"h100-sxm": 2.5, "a100-sxm-80gb": 1.0}
    for bad in ("H100", "H100=-1", "H100=x"):
        with pytest.raises(RooflensError, match="DEVICE=USD_PER_HOUR"):
            parse_price_overrides([bad])
    with pytest.raises(RooflensError, match="Did you mean"):
        parse_price_overrides(["H1000=2"])


def test_cli_plan_json_contract():
    args = ["plan", "llama-3-8b", "-p", "1024", "-g", "256", "--ttft", "800ms", "--tpot", "40ms",
            "-H", "h100", "-H", "l4", "--price", "L4=0.3", "-f", "json"]  # fmt: skip
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    first = data["entries"][0]
    required = {"hardware", "devices", "w_bits", "batch", "ttft_s", "tpot_s", "usd_per_million_tokens",
                "joules_per_token"}  # fmt: skip
    assert required <= set(first) and first["ttft_s"] <= 0.8 and first["tpot_s"] <= 0.04
    assert data["explanation"][0].startswith("Winner:")
    table = CliRunner().invoke(app, args[:-2])
    assert table.exit_code == 0 and "Cheapest set-ups" in table.output and "Winner:" in table.output
    plot = CliRunner().invoke(app, [*args[:-2], "--plot", "/dev/null/x.txt"])
    assert plot.exit_code == 2 and "use .html" in plot.output
    bad = CliRunner().invoke(app, ["plan", "gpt2", "--tpot", "fast"])
    assert bad.exit_code == 2 and "--tpot" in bad.output
