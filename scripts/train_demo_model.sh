#!/usr/bin/env bash
# Train, quantize, export and package the demo model that ships in edgegan/runtime/demo_model/.
# About 2 hours on 2 CPU cores; re-running resumes where it stopped (every stage checkpoints), so it can be
# spread over several runs. Needs `make .venv/.installed` (or the train, quantize, export, tflite, openvino and
# eval extras). OUT defaults to runs/demo-model.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-runs/demo-model}"
PY="${PY:-.venv/bin/python}"
"$PY" -m edgegan.cli quickstart --profile demo-model --out "$OUT" --no-progress
"$PY" scripts/package_demo_model.py --run "$OUT"
