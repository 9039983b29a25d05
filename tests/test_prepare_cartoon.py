"""``edgegan data prepare --kind cartoon``: AnimeFace finds a drawn anime face (EdgeGAN's own OpenCV drawing,
``edgegan.data.drawn_faces``: no registry package we found ships anime pictures) and crops it; a picture
without a face is skipped, a near-duplicate dropped, a video file works as --src; whitening changes only
background pixels; bad input is one line.
"""

from __future__ import annotations

import json
import subprocess

import cv2
import numpy as np
import pytest

pytest.importorskip("animeface", reason="--kind cartoon needs animeface: pip install 'edgegan[prepare]'")

from edgegan.data.anime_detect import AnimeFaceDetector
from edgegan.data.cartoon import (
    CartoonWhitener,
    crop_square,
    crop_square_for,
    flood_background,
    hamming,
    phash,
    prepare_cartoons,
)
from edgegan.data.drawn_faces import anime_face_mask, draw_anime_face
from edgegan.data.images import load_rgb
from edgegan.errors import EdgeGANError
from tests.conftest import assert_one_line_error, edgegan_cmd, subprocess_env

FACE_AT = (60, 20)  # x, y of the drawn 200-px face inside a 320x240 frame


def frame_with_face(seed: int, *, backdrop=(90, 140, 200)) -> np.ndarray:
    """(240, 320, 3) RGB: a flat backdrop with one drawn anime face on it (the face's own background matches)."""
    frame = np.empty((240, 320, 3), np.uint8)
    frame[:] = backdrop
    x, y = FACE_AT
    frame[y:y + 200, x:x + 200] = draw_anime_face(200, seed, backdrop)
    return frame


def save(path, rgb: np.ndarray) -> None:
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])


def write_video(path, frames: list[np.ndarray], fps: float = 10.0):
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert writer.isOpened()
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


@pytest.fixture(scope="module")
def detector():
    return AnimeFaceDetector()


def test_detector_finds_the_drawn_face(detector):
    frame = frame_with_face(1)
    faces = detector.faces(frame)
    assert len(faces) == 1 and faces[0].score > 0.9
    left, top, right, bottom = faces[0].box
    x, y = FACE_AT
    # the box lies on the drawn head (200 px, centred at x + 100), eyes inside it, the skin colour right
    assert x + 40 < (left + right) / 2 < x + 160 and y + 40 < (top + bottom) / 2 < y + 180
    assert 50 < right - left < 160
    assert faces[0].eyes is not None and all(left <= ex <= right and top <= ey <= bottom for ex, ey in faces[0].eyes)
    assert faces[0].skin is not None
    assert detector.faces(np.full((240, 320, 3), 128, np.uint8)) == []


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the wrapper calls Image.getdata
def test_animeface_wrapper_is_blind_on_this_pillow_and_edgegan_is_not(detector):
    """Why anime_detect builds its own image struct: animeface 2.0.3 reads Pillow 4.2's private layout."""
    import animeface
    import PIL
    from PIL import Image

    if int(PIL.__version__.split(".")[0]) < 12:
        pytest.skip("the wrapper's own path works before Pillow 12")
    rgb = draw_anime_face(256, 0)
    assert animeface.detect(Image.fromarray(rgb)) == []
    assert len(detector.faces(rgb)) == 1


def test_crop_geometry():
    img = np.arange(64 * 64 * 3, dtype=np.uint8).reshape(64, 64, 3)
    assert np.array_equal(crop_square(img, 32, 32, 64, 64), img)  # identity
    assert np.array_equal(crop_square(img, 20, 30, 16, 16), img[22:38, 12:28])  # a plain sub-square
    cx, cy, side = crop_square_for((100, 100, 200, 200), None, 0.5)
    assert side == 200 and cx == 150
    # the eye line (0.3 of the box when the detector gives no eyes) lands where the photo crops have it
    assert abs((130 - (cy - side / 2)) / side - (0.2213 + 0.5) / 2) < 0.01


def test_phash_tells_duplicates_from_different_faces():
    a, b = draw_anime_face(128, 3), draw_anime_face(128, 4)
    shifted = np.roll(a, 2, axis=1)
    noisy = np.clip(a + np.random.default_rng(0).normal(0, 4, a.shape), 0, 255).astype(np.uint8)
    assert hamming(phash(a), phash(shifted)) <= 6 and hamming(phash(a), phash(noisy)) <= 6
    assert hamming(phash(a), phash(b)) > 12


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    src = tmp_path_factory.mktemp("cartoons")
    save(src / "a_face.jpg", frame_with_face(1))
    save(src / "b_same_face.jpg", np.roll(frame_with_face(1), 3, axis=1))  # a near-duplicate
    save(src / "c_other_face.jpg", frame_with_face(2, backdrop=(200, 220, 120)))
    save(src / "d_no_face.jpg", cv2.GaussianBlur(np.random.default_rng(0).integers(0, 255, (240, 320, 3),
                                                                                     np.uint8), (0, 0), 8))
    (src / "e_broken.png").write_bytes(b"not a png")
    return src


def test_prepare_folder_keeps_faces_skips_others_drops_duplicates(pictures, tmp_path):
    out = tmp_path / "crops"
    report = prepare_cartoons(pictures, out, size=96, progress=False)
    assert (report["written"], report["skipped"], report["duplicates"]) == (2, 2, 1)
    assert [c["out"] for c in report["crops"]] == ["a_face.png", "c_other_face.png"]
    dup = report["duplicate_files"][0]
    assert (dup["file"], dup["of"]) == ("b_same_face.jpg", "a_face.png") and dup["distance"] <= 6
    reasons = {s["file"]: s["reason"].split(":")[0] for s in report["skipped_files"]}
    assert reasons == {"d_no_face.jpg": "no face found", "e_broken.png": "unreadable"}
    assert sorted(p.name for p in out.iterdir()) == ["a_face.png", "c_other_face.png", "prepare.json"]
    assert json.loads((out / "prepare.json").read_text()) == report
    crop = load_rgb(out / "a_face.png")
    assert crop.shape == (96, 96, 3)
    # the face is in the crop: found again, near the centre, about half the side
    again = AnimeFaceDetector().faces(cv2.resize(crop, (192, 192), interpolation=cv2.INTER_LINEAR))
    assert again and abs((again[0].box[0] + again[0].box[2]) / 2 - 96) < 20


def test_dup_threshold_minus_one_keeps_duplicates(pictures, tmp_path):
    report = prepare_cartoons(pictures, tmp_path / "all", size=64, dup_threshold=-1, progress=False)
    assert (report["written"], report["duplicates"]) == (3, 0)


def test_whitening_changes_only_background_pixels(detector):
    seed, backdrop = 1, (90, 140, 200)
    rgb = draw_anime_face(256, seed, backdrop)
    figure = anime_face_mask(256, seed)
    face = detector.faces(rgb)[0]
    geometry = crop_square_for(face.box, face.eyes, 0.5)
    crop, white, frac = CartoonWhitener("flood").crop(rgb, geometry, 128, face)
    fig = crop_square(np.repeat(figure[:, :, None].astype(np.uint8) * 255, 3, 2), *geometry, 128)[:, :, 0]
    kernel = np.ones((3, 3), np.uint8)
    inside = cv2.erode((fig == 255).astype(np.uint8), kernel).astype(bool)  # wholly figure, 1 px from the rim
    outside = cv2.erode((fig == 0).astype(np.uint8), kernel).astype(bool)
    assert inside.sum() > 1000 and outside.sum() > 1000, (inside.sum(), outside.sum())
    assert np.array_equal(white[inside], crop[inside])  # not one figure pixel changed
    assert (white[outside].min(axis=1) == 255).mean() > 0.97
    assert 0.1 < frac < 0.9


def test_flood_leaves_a_crop_without_backdrop_alone():
    skin = np.full((64, 64, 3), (240, 210, 200), np.uint8)  # all face: no region reaches the upper border apart
    cv2.circle(skin, (32, 32), 8, (20, 20, 20), -1)
    assert not flood_background(skin, (16, 16, 48, 48), (240, 210, 200)).any()


def test_segment_finds_no_person_in_a_drawn_face_and_leaves_it(detector):
    """MediaPipe's selfie segmentation was trained on people: on a drawn anime face it finds none, and
    --whiten-method segment then leaves the crop unchanged rather than whitening everything."""
    pytest.importorskip("ai_edge_litert")
    rgb = draw_anime_face(256, 1, (90, 140, 200))
    face = detector.faces(rgb)[0]
    crop, white, frac = CartoonWhitener("segment").crop(rgb, crop_square_for(face.box, face.eyes, 0.5), 128, face)
    assert np.array_equal(crop, white)


def test_prepare_from_a_video(tmp_path):
    frames = [frame_with_face(1)] * 6 + [frame_with_face(2, backdrop=(200, 220, 120))] * 6 + \
        [np.full((240, 320, 3), (40, 90, 60), np.uint8)] * 6
    clip = write_video(tmp_path / "ep01.mp4", frames)
    out = tmp_path / "crops"
    report = prepare_cartoons(clip, out, size=64, every=3, whiten=True, progress=False)
    # frames 0, 3 (face 1), 6, 9 (face 2), 12, 15 (no face)
    assert report["written"] == 2 and report["duplicates"] == 2 and report["skipped"] == 2, report
    assert [c["out"] for c in report["crops"]] == ["ep01_f000000.png", "ep01_f000006.png"]
    assert {s["file"] for s in report["skipped_files"]} == {"ep01_f000012.png", "ep01_f000015.png"}
    assert all(c["background"] > 0.05 for c in report["crops"]) and report["whiten_method"] == "flood"


def test_bad_options_and_sources(pictures, tmp_path):
    with pytest.raises(EdgeGANError, match="--margin"):
        prepare_cartoons(pictures, tmp_path / "o", margin=5, progress=False)
    with pytest.raises(EdgeGANError, match="--dup-threshold"):
        prepare_cartoons(pictures, tmp_path / "o", dup_threshold=99, progress=False)
    with pytest.raises(EdgeGANError, match="--out .*must differ"):
        prepare_cartoons(pictures, pictures, progress=False)
    with pytest.raises(EdgeGANError, match="a single image"):
        prepare_cartoons(pictures / "a_face.jpg", tmp_path / "o", progress=False)
    with pytest.raises(EdgeGANError, match="--whiten-method"):
        prepare_cartoons(pictures, tmp_path / "o", whiten=True, whiten_method="magic", progress=False)
    assert not (tmp_path / "o").exists()


def run_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([*edgegan_cmd(), "data", "prepare", *map(str, args), "--no-progress"],
                          capture_output=True, text=True, env=subprocess_env(), timeout=300, check=False)


def test_cli_cartoon_writes_crops(pictures, tmp_path):
    proc = run_cli("--kind", "cartoon", "--src", pictures, "--out", tmp_path / "out", "--size", "64", "--whiten")
    assert proc.returncode == 0, proc.stderr
    assert "2 cartoon face crop(s) written" in proc.stdout and "1 near-duplicate(s) dropped" in proc.stdout
    assert "e_broken.png: skipped (unreadable" in proc.stderr  # a warning per skipped file, the batch goes on


def test_cli_one_line_errors(pictures, tmp_path):
    nothing = tmp_path / "nothing"
    nothing.mkdir()
    save(nothing / "grey.jpg", np.full((120, 160, 3), 128, np.uint8))
    proc = run_cli("--kind", "cartoon", "--src", nothing, "--out", tmp_path / "o1")
    assert_one_line_error(proc.returncode, proc.stderr.strip().splitlines()[-1], "--src", "no usable anime face found")
    assert json.loads((tmp_path / "o1" / "prepare.json").read_text())["skipped"] == 1  # the details stay

    bad = tmp_path / "ep.mp4"
    bad.write_bytes(b"\x00" * 2048)
    proc = run_cli("--kind", "cartoon", "--src", bad, "--out", tmp_path / "o2")
    assert_one_line_error(proc.returncode, proc.stderr.strip(), str(bad), "not a readable video")
    assert not (tmp_path / "o2").exists()

    proc = run_cli("--src", pictures, "--out", tmp_path / "o3", "--every", "5")
    assert_one_line_error(proc.returncode, proc.stderr.strip(), "--every", "only with --kind cartoon")


def test_faces_below_min_face_are_skipped_with_the_reason(pictures, tmp_path):
    with pytest.raises(EdgeGANError, match="no usable anime face found in any of its 5 image"):
        prepare_cartoons(pictures, tmp_path / "o", min_face=500, progress=False)
    report = json.loads((tmp_path / "o" / "prepare.json").read_text())
    reasons = {s["file"]: s["reason"] for s in report["skipped_files"]}
    assert reasons["a_face.jpg"].startswith("face(s)") and reasons["a_face.jpg"].endswith("px wide < --min-face 500")
