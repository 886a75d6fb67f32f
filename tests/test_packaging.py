"""What a built wheel ships: the published dataset and the fitted profiles travel with the package, so
``rooflens validate --published`` works from an ordinary install, in any directory."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from rooflens.errors import RooflensError
from rooflens.measure import published as pub

ROOT = Path(__file__).resolve().parents[1]
# What a checkout holds that is no input to a build (and would only slow the copy down).
NOT_SOURCE = (
    ".git",
    ".venv",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".*_cache",
    ".hypothesis",
    "mutants",
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    if importlib.util.find_spec("setuptools") is None:
        pytest.skip("setuptools is not installed: no wheel can be built without build isolation")
    import setuptools

    # setuptools builds wheels itself from 70.1 on; before, it needs the wheel package.
    own = tuple(int(p) for p in setuptools.__version__.split(".")[:2] if p.isdigit()) >= (70, 1)
    if not own and importlib.util.find_spec("wheel") is None:
        pytest.skip(f"setuptools {setuptools.__version__} needs the wheel package to build a wheel")
    tmp = tmp_path_factory.mktemp("wheel")
    # A clean copy of the checkout: building in place would leave build/ behind and could ship stale
    # files from an earlier build.
    source = tmp / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    out = tmp / "dist"
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            ".",
        ],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (path,) = out.glob("rooflens-*.whl")
    return path


@pytest.mark.slow  # builds a wheel (a few seconds)
def test_the_wheel_ships_the_dataset_and_the_fitted_profiles(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        packaged = z.read("rooflens/measure/published.csv")
    assert {
        "rooflens/measure/published.csv",
        "rooflens/hardware/efficiency.json",  # what `python -m rooflens.measure.published fit` writes
        "rooflens/hardware/catalog.yaml",
        "rooflens/engines.yaml",
        "rooflens/model/catalog/llama-3-8b.json",
    } <= names
    # The packaged copy is the repository's file, byte for byte (one home, copied at build time).
    assert packaged == (ROOT / "validation" / "published.csv").read_bytes()


@pytest.mark.slow  # builds a wheel and imports it in a fresh interpreter
def test_an_installed_wheel_finds_its_dataset_from_any_directory(wheel, tmp_path):
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)
    elsewhere = tmp_path / "elsewhere"  # no validation/ folder here or above
    elsewhere.mkdir()
    script = (
        "from rooflens.measure import published as pub\n"
        "from rooflens.hardware.efficiency import published_engines\n"
        "print(pub.__file__)\n"
        "print(pub.find_data().resolve())\n"
        "print(len(pub.load_rows()))\n"
        "print(len(published_engines()))\n"
    )
    # PYTHONPATH puts the unpacked wheel ahead of any editable install of the checkout.
    env = {**os.environ, "PYTHONPATH": str(site)}
    ran = subprocess.run(
        [sys.executable, "-c", script], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120
    )
    assert ran.returncode == 0, ran.stderr
    module, found, count, engines = ran.stdout.split()
    assert Path(module).resolve().is_relative_to(site.resolve())  # the wheel's code, not the checkout's
    assert Path(found) == (site / "rooflens" / "measure" / "published.csv").resolve()
    assert int(count) == len(pub.load_rows(ROOT / "validation" / "published.csv"))
    assert int(engines) >= 5  # the fitted profiles (vllm, sglang, tensorrt-llm, ...) load


def test_a_checkout_finds_the_repository_copy():
    # From the source tree (PYTHONPATH=src or an editable install) nothing is packaged next to the
    # module, and the dataset's home, validation/published.csv, is the one read.
    if pub.PACKAGED.is_file():
        pytest.skip("running from a built package")
    assert pub.find_data().resolve() == (ROOT / "validation" / "published.csv").resolve()


def test_a_missing_dataset_is_a_clear_error(tmp_path):
    with pytest.raises(RooflensError, match=r"no file at .*nope\.csv; pass --data an existing CSV"):
        pub.find_data(tmp_path / "nope.csv")


def test_the_cli_names_a_missing_dataset(tmp_path):
    from typer.testing import CliRunner

    from rooflens.cli import app

    result = CliRunner().invoke(app, ["validate", "--published", "--data", str(tmp_path / "nope.csv")])
    assert result.exit_code == 2 and "published dataset not found: no file at" in result.output
    assert "Traceback" not in result.output
