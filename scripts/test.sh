#!/usr/bin/env bash
# Set up (if needed), lint, and run the whole test suite offline.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .  # the linter: pyflakes, syntax and sorted imports (pyproject.toml [tool.ruff])
.venv/bin/python -m pytest -q "$@"
