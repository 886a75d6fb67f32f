#!/usr/bin/env bash
# Installs everything the test suite needs into .venv and runs it (lint first).
# This is the README's test command; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# The CPU build of PyTorch first (a local wheel on these machines): with it installed, the test
# extra's "torch>=2.1" is already satisfied and pip never fetches a multi-GB CUDA build.
.venv/bin/python -m pip install --quiet torch==2.13.0
.venv/bin/python -m pip install --quiet -e '.[test]'
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/python -m pytest "$@"
