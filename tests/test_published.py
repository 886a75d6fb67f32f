"""Published measurements: the dataset, the split discipline, the fit, and the accuracy floors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from rooflens.cli import app
from rooflens.measure import published as pub

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def rows():
    return pub.load_rows(ROOT / "validation" / "published.csv")


def test_dataset_size_coverage_and_sources(rows):
    assert len(rows) >= 80
    assert len({r.hardware for r in rows}) >= 8
    assert {"Q4_0", "Q8_0"} <= {r.precision for r in rows}  # llama.cpp quantized rows
    assert all(r.source.strip() and r.value > 0 for r in rows)
    assert len({r.id for r in rows}) == len(rows)
    assert {r.split for r in rows} == {"calibration", "report"}
    assert sum(r.split == "report" for r in rows) >= 40


def test_rows_map_to_the_time_they_measure(rows):
    pp = next(r for r in rows if r.metric == "prefill_tokens_per_s")
    assert pp.measured_time() == pytest.approx(pp.batch * pp.prompt / pp.value)
    assert pp.analysis_settings()["gen"] == 1
    tg = next(r for r in rows if r.metric == "decode_tokens_per_s")
    assert tg.measured_time() == pytest.approx(tg.batch / tg.value)
    assert tg.analysis_settings()["gen"] == tg.gen + 1  # gen decode steps after the prefill
    q4 = next(r for r in rows if r.precision == "Q4_0" and r.engine == "llama.cpp-cuda")
    assert q4.analysis_settings()["a_bits"] == 8  # MMQ: int8 math


def test_multi_device_rows_run_split_and_price_their_collectives(rows):
    tp = next(r for r in rows if r.parallel == "tp" and r.devices == 4 and r.metric == "ttft_s")
    assert tp.analysis_settings()["tp"] == 4 and "pp" not in tp.analysis_settings()
    pp = next(r for r in rows if r.parallel == "pp")
    assert pp.analysis_settings()["pp"] == pp.devices
    # The fit keeps collectives at their ideal link time: they are neither scaled nor charged overheads.
    (phase,) = pub._phases(tp)
    report = pub.analyse_row(tp, profile=None)
    comm = sum(o.time_s for o in report.prefill.ops if o.kind == "comm")
    assert phase.comm_s == pytest.approx(comm) and comm > 0
    assert phase.ideal_s == pytest.approx(report.prefill.time_s - comm)
    with pytest.raises(ValueError, match="need a parallel mode"):
        pub.PublishedRow(**{**tp.model_dump(), "parallel": ""})
    with pytest.raises(ValueError, match="needs more than one device"):
        pub.PublishedRow(**{**tp.model_dump(), "devices": 1})


def test_the_split_is_the_recorded_hash_rule(rows):
    import hashlib

    for r in rows:
        key = "|".join(
            str(v)
            for v in (
                r.engine,
                r.hardware,
                r.model,
                r.precision,
                r.batch,
                r.prompt,
                r.gen,
                {True: "on", False: "off", None: ""}[r.flash_attention],
                r.metric,
            )
        )
        odd = hashlib.sha256(key.encode()).digest()[0] % 2
        assert r.split == ("report" if odd else "calibration"), r.id


def test_shipped_profiles_are_exactly_the_calibration_fit(rows):
    shipped = yaml.safe_load((ROOT / "src" / "rooflens" / "hardware" / "efficiency.yaml").read_text())
    assert json.loads(json.dumps(pub.fit_all(rows))) == json.loads(json.dumps(shipped))


def test_report_rows_cannot_move_the_fit(rows):
    changed = [r.model_copy(update={"value": r.value * 3}) if r.split == "report" else r for r in rows]
    assert pub.fit_all(changed) == pub.fit_all(rows)


def test_fit_recovers_known_parameters(rows):
    """Rows whose 'measured' times come from the model with known parameters are fitted back."""
    truth = np.log([0.6, 0.3, 8e-6])
    subset = [r for r in rows if r.engine == "llama.cpp-metal"][:20]
    synthetic = []
    for r in subset:
        t = pub._estimate(pub._phases(r), truth)
        value = {"prefill_tokens_per_s": r.batch * r.prompt / t, "decode_tokens_per_s": r.batch / t}[r.metric]
        synthetic.append(r.model_copy(update={"value": value}))
    assert np.exp(pub.fit_profile(synthetic)) == pytest.approx(np.exp(truth), rel=1e-3)


def test_accuracy_on_the_report_split_meets_the_floors(rows):
    summary = pub.error_summary(pub.evaluate_rows(r for r in rows if r.split == "report"))
    overall = {s["category"]: s for s in summary if s["engine"] == "all engines"}
    # Floors about a fifth above today's errors (decode 0.064, prefill 0.154, end-to-end 0.074): a change
    # that costs a fifth of the accuracy fails here. (A uniform error a refit can absorb, such as every
    # memory time off by 10%, is caught by the hand-derived roofline tests in test_physics.py instead.)
    assert overall["decode"]["estimate_median_abs_error"] <= 0.08
    assert overall["prefill"]["estimate_median_abs_error"] <= 0.18
    assert overall["end-to-end"]["estimate_median_abs_error"] <= 0.09
    # The estimate must improve on the ideal bound it stands beside, multi-device rows included.
    multi = next(s for s in summary if s["engine"] == "multi-device rows")
    assert multi["rows"] >= 10
    for s in [*overall.values(), multi]:
        assert s["estimate_median_abs_error"] < s["ideal_median_abs_error"]


def test_validate_published_cli():
    result = CliRunner().invoke(app, ["validate", "--published"])
    assert result.exit_code == 0, result.output
    assert "report split" in result.output and "all engines" in result.output
    data = json.loads(CliRunner().invoke(app, ["validate", "--published", "--format", "json"]).output)
    assert {"category", "engine", "rows", "estimate_median_abs_error"} <= set(data[0])
    bad = CliRunner().invoke(app, ["validate", "--published", "--split", "all"])
    assert bad.exit_code == 2 and "--split must be report or calibration" in bad.output


def test_the_readme_counts_match_the_file():
    # validation/README.md states the row, device and multi-device counts of published.csv.
    import csv
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "validation"
    rows = list(csv.DictReader((root / "published.csv").open()))
    readme = (root / "README.md").read_text()
    devices = {r["hardware"] for r in rows}
    multi = sum(int(r["devices"]) > 1 for r in rows)
    assert f"({len(rows)} rows, {len(devices)} devices, {multi} of them multi-device)" in readme
    # Every source is an original public one (a URL or a named public document), never a local file.
    assert all("shared/" not in r["source"] and r["source"].strip() for r in rows)
