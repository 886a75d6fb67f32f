"""Every `rooflens` command the README shows runs (so the documentation cannot drift)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rooflens.cli import app

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
# Commands that need the network, a measured profile, real model runs or a user's own files.
SKIP = (
    "--hf",
    "calibrate",
    "validate gpt2",
    "me.yaml",
    "./config.json",
    "my_gpu.yaml",
    "validate_real",
    "bench_",
    "rooflens serve",  # starts a server that runs until stopped (tests/test_browser.py drives it)
)


def readme_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", README, flags=re.S)
    text = "\n".join(blocks).replace("\\\n", " ")
    commands = []
    for line in text.splitlines():
        line = line.split("  #")[0].strip()
        for part in line.split("&&"):
            part = part.strip()
            if part.startswith("rooflens ") and not any(s in part for s in SKIP):
                commands.append(part)
    return commands


def test_the_readme_shows_commands():
    assert len(readme_commands()) >= 15


@pytest.mark.parametrize("command", readme_commands())
def test_readme_command_runs(command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # plots are written to the current folder
    result = CliRunner().invoke(app, shlex.split(command)[1:])
    assert result.exit_code == 0, f"{command}\n{result.output}"


# --- ARCHITECTURE.md ----------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
# Where a bare file name in ARCHITECTURE.md may live (module paths there are relative to the package).
PLACES = (ROOT, ROOT / "src" / "rooflens", ROOT / "tests", ROOT / "benchmarks", ROOT / "scripts")
# Names that are no file of the checkout: any model's config, and the copy a built wheel holds.
NOT_FILES = {"config.json", "rooflens/measure/published.csv"}


def test_architecture_names_only_files_that_exist_and_every_test_file():
    text = (ROOT / "ARCHITECTURE.md").read_text()
    named = {
        m.split(":")[0] for m in re.findall(r"`([\w./*-]+\.(?:py|yaml|json|csv|md|toml)(?::\w+)?)`", text)
    }
    assert len(named) > 40
    missing = [n for n in sorted(named - NOT_FILES) if not any(list(place.glob(n)) for place in PLACES)]
    assert not missing, f"ARCHITECTURE.md names files that do not exist: {missing}"
    # Every test file and benchmark is placed somewhere in its layout.
    for folder in ("tests", "benchmarks"):
        for path in (ROOT / folder).glob("*.py"):
            assert path.name in text, f"ARCHITECTURE.md does not mention {folder}/{path.name}"
    # No document outside the repository is cited.
    assert "DESIGN.md" not in text and "shared/" not in text
