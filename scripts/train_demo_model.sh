#!/usr/bin/env bash
# Train, quantize, export and package the demo model that ships in edgegan/runtime/demo_model/.
# About 2 hours on 2 CPU cores (teacher ~90 min, student ~10, INT8 + exports ~2) plus ~25 min for the paired
# ceiling the manifest records; re-running resumes where it stopped (every stage checkpoints), so it can be
# spread over several runs. Needs `make .venv/.installed` (or the train, quantize, export, tflite, openvino and
# eval extras). OUT defaults to runs/demo-model.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-runs/demo-model}"
PY="${PY:-.venv/bin/python}"
"$PY" -m edgegan.cli quickstart --profile demo-model --out "$OUT" --no-progress
# the paired ceiling at the teacher's budget (the yardstick's upper end), one thread beside nothing else
OMP_NUM_THREADS=1 "$PY" benchmarks/convergence.py --profile demo-model --recipes "" --iters 5000 --every 1000 \
    --out "$OUT/ceiling" --json "$OUT/ceiling.json"
"$PY" scripts/package_demo_model.py --run "$OUT" --ceiling "$OUT/ceiling.json"
