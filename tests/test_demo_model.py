"""The packaged demo model: ``demo`` works as a model name everywhere, without torch, from the package's own files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from edgegan.errors import EdgeGANError
from edgegan.runtime import packaged
from tests.conftest import TORCH_FREE_PRELUDE, subprocess_env

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = json.loads(packaged.MANIFEST.read_text())


@pytest.fixture
def demo_copy(tmp_path, monkeypatch):
    """The packaged folder copied to tmp_path and pointed at, so a test may damage it."""
    copy = tmp_path / "demo_model"
    shutil.copytree(packaged.DEMO_DIR, copy)
    monkeypatch.setattr(packaged, "DEMO_DIR", copy)
    monkeypatch.setattr(packaged, "MANIFEST", copy / "manifest.json")
    packaged.read_manifest.cache_clear()
    yield copy
    packaged.read_manifest.cache_clear()


def test_manifest_lists_every_file_with_its_hash_and_stays_small():
    files = packaged.packaged_models()
    assert {(m.format, m.precision) for m in files} == {(f, p) for f in ("onnx", "tflite", "openvino")
                                                        for p in ("fp32", "int8")}
    for m in files:
        assert packaged.files_sha256(m.path) == m.sha256, m.path
        assert sum(f.stat().st_size for f in packaged.companion_files(m.path)) == m.bytes
    on_disk = sum(f.stat().st_size for f in packaged.DEMO_DIR.iterdir())
    assert on_disk <= 2_000_000, on_disk
    assert MANIFEST["input_size"] >= 128
    assert MANIFEST["training"]["command"].startswith("scripts/train_demo_model.sh")


def test_recorded_scores_beat_the_identity_baseline():
    """The shipped files' own scores (recorded by scripts/package_demo_model.py): a filter, not a no-op."""
    identity = MANIFEST["scores"]["identity"]["psnr"]
    for f in MANIFEST["files"]:
        assert f["eval"]["psnr"] - identity >= 3.0, (f["file"], f["eval"]["psnr"], identity)
    assert MANIFEST["scores"]["int8_drop_db"] <= 0.5


@pytest.mark.parametrize("spec, fmt, precision", [
    ("demo:fp32", "onnx", "fp32"),
    ("demo:tflite", "tflite", "int8"),
    ("demo:tflite-fp32", "tflite", "fp32"),
    ("demo:openvino:fp32", "openvino", "fp32"),
    ("demo:onnx", "onnx", "int8"),
])
def test_variants_pick_the_named_file(spec, fmt, precision):
    m = packaged.select(spec)
    assert (m.format, m.precision) == (fmt, precision)
    assert packaged.resolve_model(spec) == m.path


def test_plain_demo_is_the_fastest_runnable_int8(monkeypatch):
    monkeypatch.setattr(packaged.platform, "machine", lambda: "x86_64")
    assert (packaged.select("demo").format, packaged.select("demo").precision) == ("onnx", "int8")
    monkeypatch.setattr(packaged, "_installed", lambda fmt: fmt != "onnx")
    assert (packaged.select("demo").format, packaged.select("demo").precision) == ("openvino", "int8")
    monkeypatch.setattr(packaged.platform, "machine", lambda: "aarch64")
    assert (packaged.select("demo").format, packaged.select("demo").precision) == ("tflite", "int8")
    monkeypatch.setattr(packaged, "_installed", lambda fmt: False)
    with pytest.raises(EdgeGANError, match="not installed"):
        packaged.select("demo")


def test_paths_are_not_the_packaged_model(tmp_path):
    assert packaged.resolve_model("./demo") == Path("./demo")
    assert packaged.resolve_model(tmp_path / "demo") == tmp_path / "demo"
    assert not packaged.is_packaged("demo.onnx")


def test_bad_variant_and_damaged_install_fail_in_one_line(demo_copy):
    with pytest.raises(EdgeGANError, match="unknown variant 'gpu'"):
        packaged.select("demo:gpu")
    with pytest.raises(EdgeGANError, match="no packaged file matches"):
        packaged.select("demo:tflite", formats=("onnx",))
    (demo_copy / "demo_fp32.onnx").write_bytes(b"not a model")
    with pytest.raises(EdgeGANError, match="does not match its manifest"):
        packaged.select("demo:onnx-fp32")
    (demo_copy / "demo_int8.bin").unlink()
    with pytest.raises(EdgeGANError, match="demo_int8.bin: packaged demo model file is missing"):
        packaged.select("demo:openvino-int8")
    (demo_copy / "manifest.json").unlink()
    packaged.read_manifest.cache_clear()
    with pytest.raises(EdgeGANError, match="no packaged demo model"):
        packaged.select("demo")


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory) -> Path:
    """The demo data the packaged model was scored on, rebuilt from the manifest's parameters."""
    from edgegan.data.demo import build_demo_dataset

    data = MANIFEST["training"]["data"]
    out = tmp_path_factory.mktemp("demo_model") / "data"
    build_demo_dataset(out, progress=False, **{k: data[k] for k in ("size", "n_train", "n_test", "seed")})
    return out


SCRIPT = TORCH_FREE_PRELUDE + """
import numpy as np
from edgegan.runtime import load
from edgegan.runtime.clip import face_photo

photo = face_photo()
for spec in ("demo", "demo:fp32", "demo:tflite", "demo:openvino-fp32"):
    cartoonizer = load(spec, threads=1)
    out = cartoonizer.cartoonize(photo, color="BGR")
    changed = (np.abs(out.astype(int) - photo).max(axis=2) > 8)
    assert changed[110:170, 200:260].mean() > 0.3, (spec, changed[110:170, 200:260].mean())
    assert changed[:8].mean() < 0.01 and changed[300:].mean() < 0.01, spec  # only the face is restyled

run_cli(["demo", "--source", PHOTO, "--headless", "--output", OUT, "--threads", "1"],  # --model demo by default
        ["bench", "--runs", "2", "--frames", "3", "--threads", "1"],
        ["eval", "--model", "demo", "--data", DATA, "--out", REPORT],
        ["web", "--model", "demo", "--out", SITE])

assert_torch_not_loaded()
print("DEMO-WITHOUT-TORCH-OK")
"""


@pytest.mark.slow
def test_demo_model_everywhere_without_torch(tmp_path, demo_data):
    import cv2

    from edgegan.runtime.clip import face_photo

    photo = tmp_path / "photo.jpg"
    cv2.imwrite(str(photo), face_photo())
    paths = dict(PHOTO=photo, OUT=tmp_path / "out.png", DATA=demo_data, REPORT=tmp_path / "eval.json",
                 SITE=tmp_path / "site")
    code = "".join(f"{k} = {str(v)!r}\n" for k, v in paths.items())
    proc = subprocess.run([sys.executable, "-c", code + textwrap.dedent(SCRIPT)], capture_output=True, text=True,
                          env=subprocess_env(), timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "DEMO-WITHOUT-TORCH-OK" in proc.stdout
    assert "FID/KID skipped" in proc.stdout

    out = cv2.imread(str(paths["OUT"]))
    assert out is not None and out.shape == face_photo().shape
    # edgegan eval --model demo prints the scores the manifest recorded for the file it picked
    report = json.loads(paths["REPORT"].read_text())
    picked = packaged.select("demo")
    recorded = next(f for f in MANIFEST["files"] if f["file"] == picked.path.name)
    assert report["model"].startswith(str(picked.path))
    assert abs(report["paired"]["model"]["psnr_mean"] - recorded["eval"]["psnr"]) < 0.05
    assert abs(report["paired"]["identity_baseline"]["psnr_mean"] - MANIFEST["scores"]["identity"]["psnr"]) < 0.05
    site_models = [p for p in (paths["SITE"]).rglob("*.onnx")]
    assert [p.read_bytes() for p in site_models] == [packaged.select("demo:onnx-fp32").path.read_bytes()]


def test_bench_at_a_size_ranks_only_models_that_ran_at_it():
    from edgegan.runtime.bench import bench_models, fastest

    rows = bench_models("demo", size=96, runs=1, threads=1, precision_hint="f32")
    by_file = {}
    for r in rows:
        by_file.setdefault(r.model, []).append(r)
    assert all(r.input == "96x96" and r.at_size for r in by_file["demo_fp32.onnx"])
    tflite = by_file["demo_int8.tflite"][0]
    size = MANIFEST["input_size"]
    assert (tflite.input, tflite.at_size) == (f"{size}x{size}", False) and "fixed-size" in tflite.note
    assert fastest(rows).input == "96x96"
    assert all(r.psnr_db is not None for r in rows)
