"""Capture sources and the ``edgegan demo`` and ``edgegan bench`` commands (tiny models, short clips)."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from edgegan.cli import main
from edgegan.errors import EdgeGANError
from edgegan.runtime.backends import ort_providers
from edgegan.runtime.capture import FrameSource, open_source
from edgegan.runtime.clip import write_clip
from tests.conftest import assert_one_line_error, astronaut_bgr, cli, count_frames


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
        for _frame in source:
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


# ------------------------------------------------------------------------------------------ demo
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


# ------------------------------------------------------------------------------------------ bench
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


def test_bench_on_one_photo_times_the_photo_path(models, tmp_path):
    cv2.imwrite(str(tmp_path / "photo.png"), astronaut_bgr())
    code, out, err = cli("bench", "--model", models["onnx"], "--source", tmp_path / "photo.png", "--runs", "2",
                         "--frames", "4", "--threads", "1")
    assert code == 0, err
    assert "4 frames, 1.00 faces/frame" in out, out
    fps = float(out.split("faces/frame: ")[1].split(" fps")[0])
    assert fps > 0


# ------------------------------------------------------------------------------------------ ctrl-c
def test_ctrl_c_hints_resume_only_where_there_is_one(monkeypatch):
    import edgegan.runtime.bench as bench_module

    monkeypatch.setattr(bench_module, "run_bench", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    result = CliRunner().invoke(main, ["bench"])
    assert result.exit_code == 130 and "--resume" in result.stderr and "has no --resume" in result.stderr
    from edgegan import cli as cli_module

    assert any(p.name == "resume" for p in cli_module.main.commands["train"].params)
