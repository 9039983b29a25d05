"""``edgegan demo`` in a real X window: Xvfb (a real X server without a screen), keys sent with xdotool,
screenshots with mss. scripts/setup_gui.sh installs Xvfb and xdotool (``make test`` runs it); without them these
tests fail and say so, they never skip. ``EDGEGAN_ARTIFACTS=DIR`` keeps the window's screenshot in DIR."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgegan.runtime.clip import face_photo, write_clip
from tests.conftest import subprocess_env, xvfb

pytestmark = [pytest.mark.gui, pytest.mark.slow]


@pytest.fixture(scope="module")
def display():
    with xvfb(1280, 1024) as name:
        yield name


def xdotool(display: str, *args: str) -> str:
    return subprocess.run(["xdotool", *args], env={**os.environ, "DISPLAY": display}, capture_output=True,
                          text=True, timeout=30, check=False).stdout.strip()


def wait_for_window(display: str, proc: subprocess.Popen, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        found = xdotool(display, "search", "--onlyvisible", "--name", "^EdgeGAN$").split()
        if found:
            return found[0]
        time.sleep(0.1)
    raise AssertionError("no EdgeGAN window appeared")


def screenshot(display: str, window: str) -> np.ndarray:
    """The window's pixels as BGR, from the X server."""
    import mss

    geometry = dict(line.split("=") for line in xdotool(display, "getwindowgeometry", "--shell", window).split())
    box = {"left": int(geometry["X"]), "top": int(geometry["Y"]), "width": int(geometry["WIDTH"]),
           "height": int(geometry["HEIGHT"])}
    with (mss.MSS if hasattr(mss, "MSS") else mss.mss)(display=display) as grab:
        return np.ascontiguousarray(np.array(grab.grab(box))[:, :, :3])


def demo(display: str, *args) -> subprocess.Popen:
    env = {**subprocess_env(), "DISPLAY": display}
    return subprocess.Popen([sys.executable, "-m", "edgegan.cli", "demo", "--threads", "1", *map(str, args)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def settle(display: str, window: str, previous: np.ndarray | None = None, timeout: float = 10.0) -> np.ndarray:
    """A screenshot once the window shows something other than ``previous`` (drawing is asynchronous)."""
    deadline = time.monotonic() + timeout
    shot = screenshot(display, window)
    while time.monotonic() < deadline and (shot.max() == 0 or (previous is not None and previous.shape == shot.shape
                                                               and np.array_equal(previous, shot))):
        time.sleep(0.1)
        shot = screenshot(display, window)
    return shot


def test_photo_stays_on_screen_keys_work_and_the_face_is_cartoonized(display, tmp_path):
    from edgegan.runtime import load

    photo = face_photo()
    cv2.imwrite(str(tmp_path / "photo.png"), photo)
    proc = demo(display, "--model", "demo", "--source", tmp_path / "photo.png", "--snapshot-dir", tmp_path / "snaps")
    window = wait_for_window(display, proc)
    time.sleep(1.0)
    assert proc.poll() is None, "a photo must stay on screen until a key"
    shot = settle(display, window)
    view = cv2.resize(shot, (photo.shape[1], photo.shape[0]), interpolation=cv2.INTER_AREA)
    expected = load("demo", threads=1).cartoonize(photo, color="BGR")
    face = (slice(100, 170), slice(190, 260))  # below the overlay text
    diff_cartoon = np.abs(view[face].astype(int) - expected[face]).mean()
    diff_photo = np.abs(view[face].astype(int) - photo[face]).mean()
    assert diff_cartoon < 6 and diff_cartoon < diff_photo / 2, (diff_cartoon, diff_photo)
    assert (view[5:20, 10:100].mean(axis=2) < 40).mean() > 0.3  # the overlay's dark box
    # the screenshot is kept: in $EDGEGAN_ARTIFACTS if set (the README's docs/demo_window.png comes from here)
    artifacts = Path(os.environ.get("EDGEGAN_ARTIFACTS") or tmp_path)
    artifacts.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(artifacts / "demo_window.png"), shot)

    xdotool(display, "key", "--window", window, "s")  # snapshot, and the photo stays
    deadline = time.monotonic() + 10
    while not list((tmp_path / "snaps").glob("edgegan_*.png")) and time.monotonic() < deadline:
        time.sleep(0.1)
    snaps = list((tmp_path / "snaps").glob("edgegan_*.png"))
    assert len(snaps) == 1 and proc.poll() is None
    assert np.abs(cv2.imread(str(snaps[0])).astype(int) - expected).mean() < 1.0  # the result, no overlay

    xdotool(display, "key", "--window", window, "m")  # face -> side: the photo again, twice as wide
    side = settle(display, window, previous=shot)
    assert proc.poll() is None
    left, right = side[:, : side.shape[1] // 2], side[:, side.shape[1] // 2:]
    assert np.abs(left.astype(int) - right).mean() > 1.0  # input | result

    xdotool(display, "key", "--window", window, "q")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-3000:]
    assert "mode: side" in err and "faces: 1 cartoonized" in out


def test_video_plays_at_its_own_frame_rate(display, tmp_path):
    clip = write_clip(tmp_path / "clip.mp4", n=20, size=(320, 240), fps=10.0)
    t0 = time.monotonic()
    proc = demo(display, "--model", "demo", "--source", clip)
    wait_for_window(display, proc)
    out, err = proc.communicate(timeout=60)
    wall = time.monotonic() - t0
    assert proc.returncode == 0, err[-3000:]
    assert "20 frames in" in out
    shown = float(out.split("frames in ")[1].split(" s")[0])
    assert shown >= 1.8, (shown, wall)  # 20 frames at 10 fps: 2 s on screen, not as fast as the model runs


def test_no_display_says_use_headless(tmp_path):
    env = {k: v for k, v in subprocess_env().items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    cv2.imwrite(str(tmp_path / "photo.png"), face_photo())
    proc = subprocess.run([sys.executable, "-m", "edgegan.cli", "demo", "--source", str(tmp_path / "photo.png")],
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 2 and "no display" in proc.stderr and "--headless" in proc.stderr
