"""edgegan.runtime.faces: the BlazeFace and Haar detectors, the tracker, crop and paste, many and small faces."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest

from edgegan.errors import EdgeGANError
from edgegan.runtime import load_backend
from edgegan.runtime.clip import clip_face_boxes, clip_frames
from edgegan.runtime.faces import (
    BlazeFace,
    Face,
    FaceTracker,
    HaarCascade,
    blazeface_file,
    create_detector,
    extract,
    feather_mask,
    iou_matrix,
    paste,
    ssd_anchors,
)
from tests.conftest import ASTRO_FACE, assert_one_line_error, astronaut_bgr, changed, cli


# ------------------------------------------------------------------------------------------ detector
def test_blazeface_anchor_layouts():
    assert ssd_anchors(128, [(8, 2), (16, 6)]).shape == (896, 2)
    assert ssd_anchors(192, [(4, 1)]).shape == (2304, 2)
    a = ssd_anchors(128, [(8, 2), (16, 6)])
    np.testing.assert_allclose(a[0], [0.5 / 16, 0.5 / 16])  # first cell centre, x then y
    np.testing.assert_allclose(a[2], [1.5 / 16, 0.5 / 16])  # two anchors per cell, row-major


@pytest.mark.parametrize("variant", ["short", "full"])
def test_blazeface_finds_the_astronaut(variant):
    det = BlazeFace(blazeface_file(variant))
    faces = det(astronaut_bgr())
    assert len(faces) == 1
    assert iou_matrix(np.array([faces[0].box]), ASTRO_FACE[None])[0, 0] > 0.6, faces


def test_haar_fallback_finds_the_astronaut():
    faces = HaarCascade()(astronaut_bgr())
    best = iou_matrix(ASTRO_FACE[None], np.array([f.box for f in faces]).reshape(-1, 4)).max()
    assert best > 0.5


def test_missing_blazeface_files(monkeypatch, caplog):
    from edgegan.runtime import faces

    monkeypatch.setattr(faces, "blazeface_file", lambda variant="short": None)
    with pytest.raises(EdgeGANError, match="--detector blazeface: the BlazeFace weights are missing .*reinstall"):
        create_detector("blazeface")
    with caplog.at_level(logging.WARNING):
        det = create_detector("auto")
    assert isinstance(det, HaarCascade) and "reinstall edgegan" in caplog.text


def test_blazeface_ships_in_the_package_with_its_provenance():
    import hashlib
    import json

    from edgegan.runtime.faces import FACE_MODELS

    sources = json.loads((FACE_MODELS / "SOURCES.json").read_text())
    assert "Apache-2.0" in sources["licence"] and (FACE_MODELS / "LICENSE").is_file()
    for entry in sources["models"]:
        data = (FACE_MODELS / entry["file"]).read_bytes()
        assert len(data) == entry["bytes"] and hashlib.sha256(data).hexdigest() == entry["sha256"]
    assert {blazeface_file("short").name, blazeface_file("full").name, "selfie_segmentation.tflite"} == \
        {m["file"] for m in sources["models"]}
    with pytest.raises(EdgeGANError, match="--detector yolo: unknown"):
        create_detector("yolo")


# ------------------------------------------------------------------------------------------ tracker
def test_tracker_follows_the_moving_face_with_sparse_detection():
    det = create_detector("auto")
    calls = []

    def counted(frame):
        calls.append(1)
        return det(frame)

    n = 45  # the clip's whole path in 45 frames: up to ~20 px per frame
    truth = clip_face_boxes(n)
    tracker = FaceTracker(counted, detect_every=3)
    ious = []
    for i, frame in enumerate(clip_frames(n)):
        faces, _ = tracker.update(frame)
        assert len(faces) == 1
        ious.append(iou_matrix(truth[i : i + 1], np.array([faces[0].box]))[0, 0])
    assert len(calls) == 15  # every third frame
    assert np.mean(ious) > 0.7 and min(ious) > 0.2, ious


def test_tracker_drops_a_face_that_left():
    boxes = [[Face((100, 100, 200, 200), 0.9)]] * 3 + [[]] * 10
    it = iter(boxes)
    tracker = FaceTracker(lambda frame: next(it), detect_every=1, max_misses=2)
    counts = [len(tracker.update(None)[0]) for _ in range(8)]
    assert counts[:3] == [1, 1, 1] and counts[-1] == 0


# ------------------------------------------------------------------------------------------ crop and paste
def test_crop_and_paste_at_the_border_and_tiny():
    frame = np.zeros((48, 64, 3), np.uint8)
    frame[:, :32] = 200
    crop = extract(frame, -20, -10, 40, 16)  # mostly outside the frame: edge-replicated
    assert crop.shape == (16, 16, 3)
    out = frame.copy()
    paste(out, np.full((16, 16, 3), 50, np.uint8), 50, 40, feather_mask(30))  # hangs off bottom-right
    assert out.shape == frame.shape and changed(out, frame)[40:, 50:].any() and not changed(out, frame)[:40].any()
    paste(out, np.full((4, 4, 3), 50, np.uint8), 100, 100, feather_mask(3))  # entirely outside: no-op
    crop = extract(frame, 5, 5, 2, 8)  # a 2 px face still gives a model-size crop
    assert crop.shape == (8, 8, 3)


# ------------------------------------------------------------------------------------------ many and small faces
def test_tiny_faces_are_skipped_and_faces_capped(models):
    from edgegan.runtime import Cartoonizer

    frame = astronaut_bgr()
    faces = [Face((5, 5, 15, 15), 0.9), Face(tuple(ASTRO_FACE), 0.9), Face((300, 300, 360, 360), 0.8)]
    cartoonizer = Cartoonizer(load_backend(models["onnx"], threads=1), lambda f: faces, min_face=24, max_faces=1)
    result = cartoonizer.process_frame(frame)
    assert len(result.faces) == 1  # the largest; the 10 px one never
    assert iou_matrix(np.array([result.faces[0].box]), ASTRO_FACE[None])[0, 0] > 0.9
    assert not changed(result.image, frame)[:30, :30].any()
    assert not changed(result.image, frame)[330, 330]


def test_group_photo_small_faces_are_all_searched_in_a_still_but_capped_in_video(tmp_path):
    """30 faces of 25-40 px in a 1024x741 photo: the frame shrunk to BlazeFace's input finds ~none, the
    still-image search (tiles at the model's own resolution, one merged NMS) finds them (target: >= 80 %)."""
    from edgegan.runtime import load
    from edgegan.runtime.clip import group_photo

    photo, truth = group_photo(n_faces=30, face_px=(25, 40), seed=0)
    cartoonizer = load("demo", threads=1)
    still = cartoonizer.process_frame(photo, still=True).faces
    boxes = np.array([f.box for f in still]).reshape(-1, 4)
    found = iou_matrix(truth, boxes).max(axis=1) > 0.3
    assert found.mean() >= 0.8, found.mean()
    assert (iou_matrix(boxes, truth).max(axis=1) > 0.3).all()  # every face cartoonized is a real one
    assert len(cartoonizer.process_frame(photo).faces) <= 4  # live video keeps its frame rate
    five = load("demo", threads=1, max_faces=5)
    assert len(five.process_frame(photo, still=True).faces) == 5
    # the CLI prints the count for a photo
    cv2.imwrite(str(tmp_path / "group.png"), photo)
    code, out, err = cli("demo", "--source", tmp_path / "group.png", "--headless", "--output", tmp_path / "o.png",
                         "--threads", "1")
    assert code == 0, err
    assert f"faces: {len(still)} cartoonized, in 1 of 1 frames" in out
    code, _, err = cli("demo", "--source", tmp_path / "group.png", "--headless", "--output", tmp_path / "o.png",
                       "--max-faces", "0")
    assert_one_line_error(code, err, "--max-faces 0: must be at least 1")


def test_tiles_cover_the_frame_with_a_third_of_overlap():
    from edgegan.runtime.faces import tiles

    boxes = tiles(741, 1024, 192)
    covered = np.zeros((741, 1024), bool)
    for x0, y0, x1, y1 in boxes:
        assert x1 - x0 == 192 and y1 - y0 == 192
        covered[y0:y1, x0:x1] = True
    assert covered.all()
    assert tiles(100, 150, 192) == [(0, 0, 150, 100)]
