#!/usr/bin/env bash
# Install AIDE (aideml, Weco's data-science agent), the `mlestar bench` competitor, into its own virtualenv
# .venv-aide at the repo root. aideml pins numpy/pandas/scipy/scikit-learn and pulls ~80 ML packages
# (torch, torchvision, torchaudio, transformers, fastai, streamlit, ...), so it never shares .venv.
# Idempotent: does nothing when the pinned version is already installed. About 3.1 GB on disk (247 packages, CPU-only torch).
#
#   bash bench/setup_aide.sh            # PYTHON=python3.11 to choose the interpreter (>= 3.10)
set -euo pipefail

AIDE_VERSION=0.2.2
TORCH_VERSION=2.13.0   # the CPU build on local disk; an unpinned torch would fetch a multi-GB CUDA build
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv-aide"
PY="${PYTHON:-python3}"

installed() {
    [ -x "$VENV/bin/python" ] && [ -x "$VENV/bin/aide" ] && "$VENV/bin/python" - "$AIDE_VERSION" "$TORCH_VERSION" <<'EOF' 2>/dev/null
import sys
from importlib.metadata import version
sys.exit(version("aideml") != sys.argv[1] or version("torch").split("+")[0] != sys.argv[2])
EOF
}

if installed; then
    echo "AIDE $AIDE_VERSION is already installed in $VENV"
    exit 0
fi

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
"${PIP[@]}" install --upgrade pip
# torch first, then keep it fixed while pip resolves aideml's unpinned torch/torchvision/torchaudio/torchtext.
"${PIP[@]}" install "torch==$TORCH_VERSION"
CONSTRAINTS="$(mktemp)"
trap 'rm -f "$CONSTRAINTS"' EXIT
echo "torch==$TORCH_VERSION" >"$CONSTRAINTS"
"${PIP[@]}" install -c "$CONSTRAINTS" "aideml==$AIDE_VERSION"

installed || { echo "AIDE install in $VENV failed the version check" >&2; exit 1; }
echo "AIDE $AIDE_VERSION installed in $VENV ($(du -sh "$VENV" | cut -f1))"
