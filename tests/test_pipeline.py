"""edgegan.runtime's Cartoonizer: the face pipeline on photos and frames, its inputs and its modes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data

from edgegan.errors import EdgeGANError
from edgegan.runtime import load
from tests.conftest import ASTRO_FACE, astronaut_bgr, changed, frame_with_faces


def test_face_pipeline_on_a_real_photo(models):
    cartoonizer = load(models["onnx"], threads=1)
    photo = skimage.data.astronaut()
    out = cartoonizer.cartoonize(photo)
    assert out.shape == photo.shape and out.dtype == np.uint8
    diff = changed(out, photo)
    x0, y0, x1, y1 = ASTRO_FACE.astype(int)
    assert diff[y0:y1, x0:x1].mean() > 0.9  # the face was replaced
    assert not diff[400:, :].any() and not diff[:, 400:].any()  # far from the face nothing changed
    # the same through the video path (BGR in, BGR out)
    result = cartoonizer.process_frame(cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    assert len(result.faces) == 1 and result.detected and result.image.shape == photo.shape
    assert result.times.infer > 0 and result.times.detect > 0


def test_cartoonize_accepts_paths_bgr_and_grey(models, tmp_path):
    cartoonizer = load(models["onnx"], threads=1)
    photo = skimage.data.astronaut()
    path = tmp_path / "a.png"
    cv2.imwrite(str(path), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    from_path = cartoonizer.cartoonize(path)
    from_bgr = cartoonizer.cartoonize(cv2.cvtColor(photo, cv2.COLOR_RGB2BGR), color="BGR")
    np.testing.assert_array_equal(from_path, from_bgr[:, :, ::-1])
    assert cartoonizer.cartoonize(photo[:, :, 0]).shape == photo.shape
    for bad in (photo.astype(np.float32), photo[:, :, :2], np.zeros((0, 5, 3), np.uint8), "no/such/file.png"):
        with pytest.raises(EdgeGANError):
            cartoonizer.cartoonize(bad)


def test_no_face_leaves_the_frame_untouched(models):
    cartoonizer = load(models["onnx"], threads=1)
    scene = cv2.cvtColor(cv2.resize(skimage.data.coffee(), (640, 480)), cv2.COLOR_RGB2BGR)
    for _ in range(4):  # detector every frame while nothing is tracked
        result = cartoonizer.process_frame(scene)
        assert result.faces == [] and result.detected
        np.testing.assert_array_equal(result.image, scene)


def test_two_faces_both_cartoonized(models):
    frame, boxes = frame_with_faces([((170, 220), 110), ((470, 240), 120)])
    cartoonizer = load(models["onnx"], threads=1)
    result = cartoonizer.process_frame(frame)
    assert len(result.faces) == 2 and result.image.shape == frame.shape
    diff = changed(result.image, frame)
    for x0, y0, x1, y1 in (b.astype(int) for b in boxes):
        assert diff[y0:y1, x0:x1].mean() > 0.8
    assert not diff[:, 300:330].any()  # between the faces
    cartoonizer.max_faces = 1
    cartoonizer.reset()
    assert len(cartoonizer.process_frame(frame).faces) == 1


def test_face_at_the_border_and_tiny_face(models):
    cartoonizer = load(models["onnx"], threads=1)
    frame, _ = frame_with_faces([((30, 200), 150)])  # face centre 30 px from the left edge
    result = cartoonizer.process_frame(frame)
    assert len(result.faces) == 1 and result.image.shape == frame.shape
    assert changed(result.image, frame)[150:250, :60].mean() > 0.8
    cartoonizer.reset()
    tiny, _ = frame_with_faces([((320, 240), 12)])
    result = cartoonizer.process_frame(tiny)
    assert result.faces == []  # below min_face (or not detected at all): left as it is
    np.testing.assert_array_equal(result.image, tiny)


def test_modes_side_and_full(models):
    frame = astronaut_bgr()[:480, :500]
    side = load(models["onnx"], mode="side", threads=1).process_frame(frame).image
    assert side.shape == (480, 1000, 3)
    np.testing.assert_array_equal(side[:, :500], frame)
    full = load(models["onnx"], mode="full", detector="none", threads=1)
    result = full.process_frame(frame)
    assert result.image.shape == frame.shape and result.times.detect == 0
    assert changed(result.image, frame).mean() > 0.9
    dynamic = load(models["dynamic"], mode="full", detector="none", threads=1)
    assert dynamic.backend.input_hw(64, 67) == (64, 68)  # any multiple of the stride
    assert dynamic.process_frame(frame).image.shape == frame.shape
    with pytest.raises(EdgeGANError, match="--mode face: needs a face detector"):
        load(models["onnx"], mode="face", detector="none")
    assert full.next_mode() == "full"  # nothing to cycle to without a detector
    with_detector = load(models["onnx"], mode="full", threads=1)
    assert [with_detector.next_mode() for _ in range(3)] == ["face", "side", "full"]
