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
