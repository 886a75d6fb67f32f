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
# The browser tests (Playwright) and static plot export (kaleido) drive Debian's Chromium; Playwright's
# own browser download does not work offline, so the system package is used.
if ! command -v chromium >/dev/null 2>&1; then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get install -y -qq chromium >/dev/null 2>&1 \
        || { $sudo apt-get update -qq && $sudo apt-get install -y -qq chromium >/dev/null; }
fi
export ROOFLENS_REQUIRE_BROWSER=1  # a missing browser now fails the browser tests instead of skipping
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/python -m pytest "$@"
