#!/usr/bin/env bash
# RKNN export: rknn-toolkit2 in an environment of its own, .venv-rknn/ (or $1).
# Its 2.5.0 wheel pins numpy<=1.26.4, onnx<=1.18 and torch<=2.4, so it cannot share edgegan's environment;
# uv's --override drops only the torch ceiling, so the toolkit reuses the torch build installed here first
# (on this CPU-only project that is the 1 GB CPU wheel, not torch 2.4 with its 2.5 GB of CUDA libraries).
# edgegan finds .venv-rknn/ in the working directory, or the Python named by $EDGEGAN_RKNN_PYTHON.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${1:-.venv-rknn}"
PYTHON="${PYTHON:-python3}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
if "$VENV/bin/python" -c "import rknn.api" 2>/dev/null; then
    exit 0
fi
test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
# pip first: it honours the machine's pip configuration (local wheels, mirrors) for torch and uv
"$VENV/bin/python" -m pip install -q "$TORCH_SPEC" uv
# setuptools < 81: the toolkit imports pkg_resources
"$VENV/bin/uv" pip install -q --python "$VENV/bin/python" --native-tls --override scripts/rknn-overrides.txt \
    "rknn-toolkit2==2.5.0" "setuptools<81"
"$VENV/bin/python" -c "import rknn.api" 2>/dev/null || { echo "setup_rknn: rknn-toolkit2 does not import in $VENV" >&2; exit 1; }
