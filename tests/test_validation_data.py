"""The committed real-run validation data agrees with today's code and records how it was made.

Each run folder (validation/cpu, validation/h100) keeps the measured timings and rooflens's ideal and
estimated predictions at the time. A change to the formulas or the estimate that moves a prediction
fails here until the run's results.csv is recomputed (and the README's table with it)."""

from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path

import pytest

from rooflens.measure.validate import Workload, accuracy_table, analysis_for

ROOT = Path(__file__).resolve().parents[1]
RUNS = [ROOT / "validation" / "cpu", ROOT / "validation" / "h100"]
README = (ROOT / "README.md").read_text()
PROVENANCE = ("rooflens_commit", "command", "date", "python", "torch", "transformers", "machine", "cpu")


def rows(folder: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((folder / "results.csv").open()))


@pytest.mark.parametrize("folder", RUNS, ids=lambda f: f.name)
def test_predictions_are_what_the_code_computes_today(folder):
    profile = str(folder / "profile.yaml")
    for r in rows(folder):
        report = analysis_for(
            r["model"], profile, r["dtype"], Workload(int(r["batch"]), int(r["prompt"]), int(r["gen"]))
        )
        predicted = {
            "ideal_ttft_s": report.ttft_s,
            "estimate_ttft_s": report.ttft_estimate_s,
            "ideal_tpot_s": report.tpot_s,
            "estimate_tpot_s": report.tpot_estimate_s,
            "predicted_memory_bytes": report.memory.total_bytes,
        }
        for column, value in predicted.items():
            assert float(r[column]) == pytest.approx(value, rel=1e-9), (r["model"], r["batch"], column)
        # The error columns follow from the measured ones.
        for phase in ("ttft", "tpot"):
            measured = float(r[f"measured_{phase}_s"])
            for kind in ("ideal", "estimate"):
                expected = predicted[f"{kind}_{phase}_s"] / measured - 1
                assert float(r[f"error_{phase}_{kind}"]) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("folder", RUNS, ids=lambda f: f.name)
def test_the_readme_table_is_the_results(folder):
    assert accuracy_table(rows(folder)) in README


@pytest.mark.parametrize("folder", RUNS, ids=lambda f: f.name)
def test_each_run_records_how_it_was_made(folder):
    env = json.loads((folder / "env.json").read_text())
    missing = [k for k in PROVENANCE if not str(env.get(k, "")).strip()]
    assert not missing, f"{folder.name}/env.json lacks {missing}"
    runs_file = folder / "runs.json"
    if not runs_file.exists():  # an older run says why its per-repeat timings are missing
        assert env.get("runs_not_recorded")
        return
    runs = json.loads(runs_file.read_text())
    for r in rows(folder):
        timed = runs[f"{r['model']} {r['batch']},{r['prompt']},{r['gen']}"]
        assert len(timed["ttft_s"]) == len(timed["tpot_s"]) == int(r["repeats"])
        assert statistics.median(timed["ttft_s"]) == pytest.approx(float(r["measured_ttft_s"]), rel=1e-12)
        assert statistics.median(timed["tpot_s"]) == pytest.approx(float(r["measured_tpot_s"]), rel=1e-12)
