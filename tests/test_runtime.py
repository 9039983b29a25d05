"""edgegan.runtime: backends, face pipeline, capture, demo and bench (tiny models, short clips).

Test models are made here with torch (the runtime itself never imports it; see test_runtime_notorch.py):
a BatchNorm-folded ``mobile-s`` at width 0.25 and 64 px, exported to ONNX (fixed and dynamic size, QDQ INT8,
and an fp16-input graph) and to TFLite with an NHWC interface, each carrying its ``ModelInfo``.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data
from click.testing import CliRunner

from edgegan.cli import main
from edgegan.errors import EdgeGANError
from edgegan.runtime import load, load_backend
from edgegan.runtime.backends import ort_providers
from edgegan.runtime.capture import FrameSource, open_source
from edgegan.runtime.clip import clip_face_boxes, clip_frames, write_clip
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
from edgegan.runtime.metadata import ModelInfo
from edgegan.runtime.metadata_io import embed_onnx, embed_tflite
from tests.conftest import assert_one_line_error

SIZE = 64


# ------------------------------------------------------------------------------------------ models
def _student():
    import torch

    from edgegan.models import create_model
    from edgegan.models.mobile import fold_batchnorm

    torch.manual_seed(0)
    net = create_model("mobile-s", width=0.25, img_size=SIZE)
    with torch.no_grad():  # non-trivial BatchNorm statistics, so folding and the output are not flat
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return fold_batchnorm(net).eval()


def _export_onnx(net, path: Path, info: ModelInfo, *, dynamic: bool = False) -> Path:
    import onnx
    import torch

    x = torch.randn(1, 3, SIZE, SIZE)
    axes = {"image": {2: "h", 3: "w"}, "cartoon": {2: "h", 3: "w"}} if dynamic else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (x,), str(path), dynamo=False, input_names=["image"], output_names=["cartoon"],
                          opset_version=17, dynamic_axes=axes)
    model = onnx.load(str(path))
    onnx.save(embed_onnx(model, info), str(path))
    return path


@pytest.fixture(scope="module")
def student():
    return _student()


@pytest.fixture(scope="module")
def models(student, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    out = {"onnx": _export_onnx(student, root / "s.onnx", ModelInfo(model="mobile-s", input_size=SIZE,
                                                                      precision="fp32")),
           "dynamic": _export_onnx(student, root / "dyn.onnx",
                                   ModelInfo(model="mobile-s", input_size=SIZE, precision="fp32", dynamic_size=True),
                                   dynamic=True)}
    return out


@pytest.fixture(scope="module")
def tflite_model(student, tmp_path_factory) -> Path:
    import litert_torch
    import torch

    class NHWC(torch.nn.Module):  # the TFLite convention: channels last at the interface
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)

    root = tmp_path_factory.mktemp("tflite")
    edge = litert_torch.convert(NHWC(student).eval(), (torch.randn(1, SIZE, SIZE, 3),))
    edge.export(str(root / "raw.tflite"))
    info = ModelInfo(model="mobile-s", input_size=SIZE, precision="fp32", layout="NHWC")
    path = root / "s.tflite"
    path.write_bytes(embed_tflite((root / "raw.tflite").read_bytes(), info))
    return path


@pytest.fixture(scope="module")
def int8_model(models, tmp_path_factory) -> Path:
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    class Photos(CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(0)
            self.items = iter([{"image": rng.uniform(-1, 1, (1, 3, SIZE, SIZE)).astype(np.float32)}
                               for _ in range(4)])

        def get_next(self):
            return next(self.items, None)

    root = tmp_path_factory.mktemp("int8")
    path = root / "s_int8.onnx"
    quantize_static(str(models["onnx"]), str(path), Photos(), quant_format=QuantFormat.QDQ)
    model = onnx.load(str(path))
    onnx.save(embed_onnx(model, ModelInfo(model="mobile-s", input_size=SIZE, precision="int8")), str(path))
    return path


@pytest.fixture(scope="module")
def fp16_model(tmp_path_factory) -> Path:
    """A graph with float16 input and output (Tanh only): exercises the backend's dtype conversion."""
    import onnx
    from onnx import TensorProto, helper

    shape = [1, 3, SIZE, SIZE]
    graph = helper.make_graph([helper.make_node("Tanh", ["image"], ["cartoon"])], "fp16",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT16, shape)],
                              [helper.make_tensor_value_info("cartoon", TensorProto.FLOAT16, shape)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path_factory.mktemp("fp16") / "tanh16.onnx"
    onnx.save(embed_onnx(model, ModelInfo(model="tanh", input_size=SIZE, precision="fp16")), str(path))
    return path


# ------------------------------------------------------------------------------------------ images
def astronaut_bgr() -> np.ndarray:
    return cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)


ASTRO_FACE = np.array([178, 78, 272, 175], float)  # the face in the 512 px photo


def frame_with_faces(centres_sides, size=(640, 480), bg=110) -> tuple[np.ndarray, list[np.ndarray]]:
    """A grey frame with the astronaut photo pasted so its face has the given centre and side."""
    w, h = size
    frame = np.full((h, w, 3), bg, np.uint8)
    photo = astronaut_bgr()
    boxes = []
    for (cx, cy), side in centres_sides:
        s = side / (ASTRO_FACE[2] - ASTRO_FACE[0])
        fcx, fcy = (ASTRO_FACE[0] + ASTRO_FACE[2]) / 2, (ASTRO_FACE[1] + ASTRO_FACE[3]) / 2
        m = np.array([[s, 0, cx - fcx * s], [0, s, cy - fcy * s]], np.float32)
        # paste only the head and shoulders so two faces side by side do not cover each other
        region = np.zeros(photo.shape[:2], np.uint8)
        region[20:300, 130:330] = 1
        mask = cv2.warpAffine(region, m, (w, h)) > 0
        frame[mask] = cv2.warpAffine(photo, m, (w, h))[mask]
        boxes.append(np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2]))
    return frame, boxes


def changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.astype(np.int16) - b.astype(np.int16)).max(axis=2) > 0


# ------------------------------------------------------------------------------------------ backends
def test_onnx_backend_matches_torch(student, models):
    import torch

    backend = load_backend(models["onnx"], threads=1)
    assert backend.name == "onnxruntime" and backend.info.input_size == SIZE
    rgb = skimage.data.astronaut()[100:164, 190:254]
    x = backend.info.preprocess(rgb)
    with torch.no_grad():
        ref = student(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(backend(x), ref, atol=1e-4)
    assert backend.info.postprocess(backend(x)).shape == (1, SIZE, SIZE, 3)


def test_litert_backend_nhwc_matches_onnx(models, tflite_model):
    onnx_b = load_backend(models["onnx"], threads=1)
    lite = load_backend(tflite_model, threads=1)
    assert lite.name == "litert" and lite.info.layout == "NHWC"
    rgb = skimage.data.astronaut()[100:164, 190:254]
    a = onnx_b.info.postprocess(onnx_b(onnx_b.info.preprocess(rgb)))
    b = lite.info.postprocess(lite(lite.info.preprocess(rgb)))
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1  # same network, two runtimes: rounding only


def test_int8_and_fp16_models_run(models, int8_model, fp16_model):
    fp32 = load(models["onnx"], mode="full", detector="none", threads=1)
    int8 = load(int8_model, mode="full", detector="none", threads=1)
    assert int8.info.precision == "int8"
    rgb = cv2.resize(skimage.data.astronaut(), (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    diff = np.abs(fp32.translate(rgb).astype(int) - int8.translate(rgb).astype(int)).mean()
    assert diff < 12, diff  # quantization noise, not a different picture

    fp16 = load_backend(fp16_model)
    x = np.linspace(-2, 2, 3 * SIZE * SIZE, dtype=np.float32).reshape(1, 3, SIZE, SIZE)
    y = fp16(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, np.tanh(x), atol=2e-3)


def test_backend_choice_and_its_errors(models, tflite_model, tmp_path):
    assert load_backend(models["onnx"], "ort").name == "onnxruntime"
    with pytest.raises(EdgeGANError, match="--backend litert: cannot run s.onnx"):
        load_backend(models["onnx"], "litert")
    with pytest.raises(EdgeGANError, match="--backend tensorflow: unknown backend"):
        load_backend(models["onnx"], "tensorflow")
    with pytest.raises(EdgeGANError, match="unknown model type '.pt'"):
        load_backend(tmp_path / "model.pt")
    with pytest.raises(EdgeGANError, match="--provider cuda: execution providers are onnxruntime's"):
        load_backend(tflite_model, provider="cuda")
    with pytest.raises(EdgeGANError, match="--threads 0"):
        load_backend(models["onnx"], threads=0)


def test_ort_provider_priority_and_missing_provider(models):
    chosen = ort_providers()
    assert chosen[-1] == "CPUExecutionProvider" and "AzureExecutionProvider" not in chosen
    assert ort_providers("cpu") == ["CPUExecutionProvider"]
    assert "CPU" in load_backend(models["onnx"], provider="cpu").device
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        with pytest.raises(EdgeGANError, match=r"--provider cuda: CUDAExecutionProvider is not in this onnxruntime "
                                               r"build \(available: .*cpu\); pip install onnxruntime-gpu"):
            load_backend(models["onnx"], provider="cuda")
    with pytest.raises(EdgeGANError, match="--provider warp: unknown execution provider"):
        load_backend(models["onnx"], provider="warp")


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # ai_edge_litert's Delegate.__del__
def test_litert_missing_delegate_is_one_line(tflite_model):
    with pytest.raises(EdgeGANError, match="--delegate /nonexistent/libgpu.so: cannot load"):
        load_backend(tflite_model, delegate="/nonexistent/libgpu.so")


@pytest.mark.skipif(sys.platform == "darwin", reason="checks the message CoreML models give off macOS")
def test_coreml_off_macos_is_a_clear_message(tmp_path):
    package = tmp_path / "s.mlpackage"
    package.mkdir()
    with pytest.raises(EdgeGANError, match="CoreML models run only on macOS.*use the .onnx or .tflite export"):
        load(package)


@pytest.mark.skipif(sys.platform != "darwin", reason="CoreML prediction runs only on macOS")
def test_coreml_predicts_on_macos(student, tmp_path):
    import coremltools as ct
    import torch

    from edgegan.runtime.metadata_io import embed_coreml

    traced = torch.jit.trace(student, torch.randn(1, 3, SIZE, SIZE))
    ml = ct.convert(traced, inputs=[ct.TensorType(name="image", shape=(1, 3, SIZE, SIZE))],
                    outputs=[ct.TensorType(name="cartoon")], convert_to="mlprogram")
    path = tmp_path / "s.mlpackage"
    embed_coreml(ml, ModelInfo(model="mobile-s", input_size=SIZE, precision="fp32")).save(str(path))
    out = load(path, mode="full", detector="none").translate(skimage.data.astronaut())
    assert out.shape == (512, 512, 3)


@pytest.mark.parametrize("case", ["missing", "empty", "garbage", "no-metadata", "folder"])
def test_bad_model_files(case, models, tmp_path):
    import onnx

    path = tmp_path / "m.onnx"
    if case == "empty":
        path.write_bytes(b"")
    elif case == "garbage":
        path.write_bytes(b"\x08\x07garbage that is not a protobuf" * 10)
    elif case == "no-metadata":
        model = onnx.load(str(models["onnx"]))
        del model.metadata_props[:]
        onnx.save(model, str(path))
    elif case == "folder":
        path.mkdir()
    with pytest.raises(EdgeGANError) as err:
        load_backend(path)
    message = str(err.value)
    assert str(path) in message and "\n" not in message
    assert {"missing": "no such model file", "empty": "empty file", "no-metadata": "no EdgeGAN metadata",
            "folder": "is a folder"}.get(case, "") in message


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


# ------------------------------------------------------------------------------------------ pipeline
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


# ------------------------------------------------------------------------------------------ capture
class FastLive(FrameSource):
    """A live source that produces frames much faster than the consumer takes them."""

    def __init__(self, n):
        super().__init__("fake", live=True)
        self.n = n

    def _read(self):
        if self.n == 0:
            return None
        self.n -= 1
        time.sleep(0.001)
        return np.zeros((4, 4, 3), np.uint8), ""


def test_live_capture_keeps_the_newest_frame_and_stops_cleanly():
    before = threading.active_count()
    source = FastLive(200)
    seen = []
    with source:
        for frame in source:
            seen.append(frame.index)
            time.sleep(0.02)
    assert seen == sorted(seen) and len(seen) < 100  # frames were dropped, never reordered
    source = FastLive(10_000)
    with source:
        for frame in source:
            break  # leaving early must not leave the reader thread running
    assert threading.active_count() == before


@pytest.mark.parametrize("spec,needle", [("97", "cannot open camera 97"), ("nope.mp4", "no such file or folder"),
                                         ("garbage.mp4", "cannot read it as a video"),
                                         ("empty.mp4", "empty file"), ("emptydir", "holds no image files"),
                                         ("broken.png", "broken.png")])
def test_bad_sources(spec, needle, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("garbage.mp4").write_bytes(b"not a video at all" * 100)
    Path("empty.mp4").write_bytes(b"")
    Path("emptydir").mkdir()
    Path("broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(EdgeGANError, match=needle) as err:
        open_source(spec)
    assert "\n" not in str(err.value)


# ------------------------------------------------------------------------------------------ CLI
def cli(*args: str):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr.strip()


def count_frames(path: Path) -> tuple[int, tuple[int, int]]:
    cap = cv2.VideoCapture(str(path))
    n, size = 0, None
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        n, size = n + 1, frame.shape[:2]
    cap.release()
    return n, size


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", n=12, size=(320, 240))


def test_headless_video_in_video_out(models, clip, tmp_path):
    out = tmp_path / "out" / "cartoon.mp4"
    code, stdout, err = cli("demo", "--model", models["onnx"], "--source", clip, "--headless", "--output", out,
                            "--threads", "1", "--overlay")
    assert code == 0, err
    assert count_frames(out) == count_frames(clip) == (12, (240, 320))
    assert "12 frames" in stdout and "fps" in stdout
    assert sorted(p.name for p in out.parent.iterdir()) == ["cartoon.mp4"]  # no temp file left


def test_headless_tflite_side_by_side(tflite_model, clip, tmp_path):
    out = tmp_path / "side.avi"
    code, _, err = cli("demo", "--model", tflite_model, "--source", clip, "--headless", "--output", out,
                       "--mode", "side", "--max-frames", "5")
    assert code == 0, err
    assert count_frames(out) == (5, (240, 640))


def test_headless_folder_and_image(models, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "astro.jpg"), astronaut_bgr())
    cv2.imwrite(str(photos / "coffee.png"), cv2.resize(astronaut_bgr(), (200, 150)))
    code, _, err = cli("demo", "--model", models["onnx"], "--source", photos, "--headless", "--output",
                       tmp_path / "cartoons")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "cartoons").iterdir()) == ["astro.png", "coffee.png"]
    code, _, err = cli("demo", "--model", models["onnx"], "--source", photos / "astro.jpg", "--headless",
                       "--output", tmp_path / "one.jpg")
    assert code == 0, err
    assert cv2.imread(str(tmp_path / "one.jpg")).shape == (512, 512, 3)


def test_demo_bad_inputs(models, clip, tmp_path):
    m = models["onnx"]
    cases = [
        (["--source", clip, "--headless"], "--headless: needs --output"),
        (["--source", clip, "--headless", "--output", tmp_path / "x.xyz"], "unknown output type '.xyz'"),
        (["--source", clip, "--headless", "--output", tmp_path / "x.png"], "an image file holds one frame"),
        (["--source", clip, "--headless", "--output", tmp_path / "x.webm"], "cannot write .webm"),
        (["--source", "98", "--headless", "--output", tmp_path / "x.mp4"], "cannot open camera 98"),
        (["--source", tmp_path / "missing.mp4", "--headless", "--output", tmp_path / "x.mp4"], "no such file"),
        (["--source", clip, "--headless", "--output", tmp_path / "x.mp4", "--detect-every", "0"], "--detect-every 0"),
        (["--source", clip, "--headless", "--output", tmp_path / "x.mp4", "--max-frames", "0"], "--max-frames 0"),
        (["--source", clip, "--headless", "--output", tmp_path / "x.mp4", "--provider", "cuda"]
         if "CUDAExecutionProvider" not in ort_providers() else [], "--provider cuda"),
        (["--source", clip, "--headless", "--output", tmp_path / "x.mp4", "--detector", "yolo"], "--detector yolo"),
        (["--source", clip], "run with --headless"),
    ]
    for extra, needle in cases:
        if not extra:
            continue
        code, _, err = cli("demo", "--model", m, *extra)
        assert_one_line_error(code, err, needle)
    code, _, err = cli("demo", "--model", tmp_path / "model.pt", "--source", clip, "--headless", "--output",
                       tmp_path / "x.mp4")
    assert_one_line_error(code, err, "model.pt", "unknown model type")
    assert not list(tmp_path.glob("*.mp4")) and not list(tmp_path.glob(".*"))  # nothing half-written


def test_unreadable_files_in_a_folder_are_skipped_with_a_summary(models, tmp_path, caplog):
    caplog.set_level(logging.INFO)  # exporters elsewhere in the session raise the root level
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "a.png"), astronaut_bgr())
    (photos / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    cv2.imwrite(str(photos / "c.jpg"), astronaut_bgr())
    code, out, err = cli("demo", "--model", models["onnx"], "--source", photos, "--headless", "--output",
                         tmp_path / "cartoons")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "cartoons").iterdir()) == ["a.png", "c.png"]
    assert "skipped" in caplog.text and "b.png" in caplog.text
    assert "processed 2, skipped 1 unreadable file(s)" in out
    caplog.clear()
    # nothing readable at all: one-line error, nothing written
    (photos / "a.png").write_bytes(b"not a png")
    (photos / "c.jpg").write_bytes(b"")
    code, _, err = cli("demo", "--model", models["onnx"], "--source", photos, "--headless", "--output",
                       tmp_path / "out.mp4")
    assert_one_line_error(code, err, "none of its 3 files could be read")
    assert caplog.text.count("skipped") == 3, caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cartoons", "photos"]


def test_a_still_gif_is_an_image_and_an_animated_one_a_video(models, tmp_path):
    from PIL import Image

    rgb = astronaut_bgr()[:, :, ::-1]
    Image.fromarray(rgb).save(tmp_path / "still.gif")
    code, _, err = cli("demo", "--model", models["onnx"], "--source", tmp_path / "still.gif", "--headless",
                       "--output", tmp_path / "still.png")
    assert code == 0, err
    assert cv2.imread(str(tmp_path / "still.png")).shape == (512, 512, 3)
    frames = [Image.fromarray(np.roll(rgb, 8 * i, axis=1)) for i in range(3)]
    frames[0].save(tmp_path / "moving.gif", save_all=True, append_images=frames[1:], duration=100)
    code, _, err = cli("demo", "--model", models["onnx"], "--source", tmp_path / "moving.gif", "--headless",
                       "--output", tmp_path / "moving.mp4")
    assert code == 0, err
    assert count_frames(tmp_path / "moving.mp4")[0] == 3


def test_no_face_is_said(models, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    blank = tmp_path / "wall.png"
    cv2.imwrite(str(blank), np.full((240, 320, 3), 180, np.uint8))
    code, out, err = cli("demo", "--model", models["onnx"], "--source", blank, "--headless", "--output",
                         tmp_path / "out.png")
    assert code == 0, err
    assert "faces: 0 cartoonized, in 0 of 1 frames" in out and "no face found" in caplog.text


def test_bench_cli(models, int8_model, tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    for p in (models["onnx"], int8_model):
        (folder / p.name).write_bytes(p.read_bytes())
    code, stdout, err = cli("bench", "--model", folder, "--runs", "3", "--frames", "8", "--threads", "1",
                            "--json", tmp_path / "bench.json")
    assert code == 0, err
    assert "s.onnx" in stdout and "s_int8.onnx" in stdout and "int8" in stdout
    for stage in ("capture", "detect", "pre", "infer", "post", "paste"):
        assert stage in stdout
    import json

    report = json.loads((tmp_path / "bench.json").read_text())
    assert report["pipeline"]["frames"] == 8 and report["pipeline"]["fps"] > 0
    assert report["pipeline"]["faces_per_frame"] > 0.9  # the built-in clip always shows its face
    code, _, err = cli("bench", "--model", tmp_path / "bench.json")
    assert_one_line_error(code, err, "unknown model type")
    code, _, err = cli("bench", "--model", tmp_path / "nothing")
    assert_one_line_error(code, err, "--model", "no such file")


def test_metadata_that_contradicts_the_model(student, tmp_path):
    wrong = _export_onnx(student, tmp_path / "w.onnx", ModelInfo(model="mobile-s", input_size=SIZE, precision="fp32",
                                                                 layout="NHWC"))
    with pytest.raises(EdgeGANError, match=r"w.onnx: model input shape \(1, 3, 64, 64\) does not match its metadata"):
        load_backend(wrong)


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


def test_bench_on_one_photo_times_the_photo_path(models, tmp_path):
    cv2.imwrite(str(tmp_path / "photo.png"), astronaut_bgr())
    code, out, err = cli("bench", "--model", models["onnx"], "--source", tmp_path / "photo.png", "--runs", "2",
                         "--frames", "4", "--threads", "1")
    assert code == 0, err
    assert "4 frames, 1.00 faces/frame" in out, out
    fps = float(out.split("faces/frame: ")[1].split(" fps")[0])
    assert fps > 0


def test_ctrl_c_hints_resume_only_where_there_is_one(monkeypatch):
    import edgegan.runtime.bench as bench_module

    monkeypatch.setattr(bench_module, "run_bench", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    result = CliRunner().invoke(main, ["bench"])
    assert result.exit_code == 130 and "--resume" in result.stderr and "has no --resume" in result.stderr
    from edgegan import cli as cli_module

    assert any(p.name == "resume" for p in cli_module.main.commands["train"].params)
