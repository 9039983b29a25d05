#!/usr/bin/env bash
# Regenerate the README's pictures of the packaged demo model (after scripts/train_demo_model.sh):
#   docs/demo_model.jpg       the astronaut photo (held out of the demo data): input | edgegan demo --model demo
#   docs/demo_group.jpg       a composed group photo (30 faces of 25-40 px), every face cartoonized
#   docs/demo_model_eval.png  edgegan eval --model demo: held-out demo photos / outputs / exact ground truth
#   docs/demo_window.png      the demo window under Xvfb (tests/test_window.py keeps its screenshot)
#   docs/web_demo.png         edgegan web's page in headless Chromium on a fake camera (benchmarks/web.py)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PY" - "$tmp" <<'PYEOF'
import sys
from pathlib import Path

import cv2

from edgegan.runtime.clip import face_photo, group_photo

tmp = Path(sys.argv[1])
cv2.imwrite(str(tmp / "astronaut.png"), face_photo())
cv2.imwrite(str(tmp / "group.png"), group_photo(n_faces=30, face_px=(25, 40), seed=0)[0])
PYEOF
"$PY" -m edgegan.cli demo --model demo --source "$tmp/astronaut.png" --mode side --headless --output docs/demo_model.jpg
"$PY" -m edgegan.cli demo --model demo --source "$tmp/group.png" --headless --output docs/demo_group.jpg
# the demo data the packaged model was scored on, as its manifest records it
data_args=$("$PY" -c "import json; from edgegan.runtime.packaged import read_manifest; \
d = read_manifest()['training']['data']; print(' '.join(f'--{k.replace(\"_\", \"-\")} {d[k]}' for k in ('size', 'n_train', 'n_test', 'seed')))")
# shellcheck disable=SC2086
"$PY" -m edgegan.cli data demo --out "$tmp/data" $data_args >/dev/null
"$PY" -m edgegan.cli eval --model demo --data "$tmp/data" --no-fid --out "$tmp/eval.json" --grid docs/demo_model_eval.png
EDGEGAN_ARTIFACTS=docs "$PY" -m pytest -q tests/test_window.py -k photo_stays
"$PY" benchmarks/web.py --runs 20 --screenshot docs/web_demo.png
