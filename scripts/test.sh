#!/usr/bin/env bash
# Set up (if needed), lint, and run the whole test suite offline.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .  # the linter: pyflakes, syntax and sorted imports (pyproject.toml [tool.ruff])
.venv/bin/mypy  # the type checker: graph, nodes, runtime and prompts (pyproject.toml [tool.mypy])
.venv/bin/python -m pytest -q "$@"
