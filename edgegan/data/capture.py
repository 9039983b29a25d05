"""``edgegan data capture``: collect cartoon images from the screen or from a video file.

The method's author gathered anime faces with a hand-made wxPython + mss screen grabber; this is that
tool without wxPython. The screen mode shows a live, scaled copy of a monitor in an OpenCV window; a
square box follows the mouse there, a click saves the box's region of the frame on show at full
resolution, the wheel or the arrow keys resize it, Space pauses the view (to pick faces from one
frame of a playing video), Esc or q quits. ``--video`` takes every N-th frame of a file instead.

Saves are PNGs written atomically (temp file + rename), numbered after the highest number already in
``--out``, so two sessions into one folder never overwrite each other's captures.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgegan.data.images import save_png_atomic
from edgegan.errors import EdgeGANError

log = logging.getLogger(__name__)

WINDOW = "EdgeGAN capture"
_CAPTURE_EXTRA = "pip install 'edgegan[capture]' (mss)"
_NAME = re.compile(r"^capture_(\d+)\.png$")

# cv2.waitKeyEx codes of the arrow keys: Qt (opencv-python's Linux/macOS build), GTK, Win32
KEYS_UP = {0x1000013, 65362, 2490368}
KEYS_DOWN = {0x1000015, 65364, 2621440}
KEYS_QUIT = {27, ord("q")}


@contextlib.contextmanager
def removed_if_left_empty(folder: Path):
    """A folder this call creates is removed again when the call fails with nothing saved in it."""
    existed = folder.exists()
    try:
        yield
    except BaseException:
        if not existed and folder.is_dir() and not any(folder.iterdir()):
            shutil.rmtree(folder, ignore_errors=True)
        raise


def ensure_out_dir(out: Path) -> None:
    if out.is_file():
        raise EdgeGANError(f"--out {out}: is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise EdgeGANError(f"--out {out}: cannot create it ({err.strerror or err})") from err


# ---------------------------------------------------------------- video files
@dataclass(frozen=True)
class VideoInfo:
    frames: int  # as the container reports it (0 when unknown; may be approximate)
    fps: float
    width: int
    height: int


def open_video(path: Path) -> tuple[cv2.VideoCapture, VideoInfo]:
    """An opened capture whose first frame decodes, or one EdgeGANError naming the file."""
    path = Path(path)
    if not path.exists():
        raise EdgeGANError(f"{path}: no such file")
    if path.is_dir():
        raise EdgeGANError(f"{path}: is a folder, not a video file")
    from edgegan.quiet import quiet_logs

    with quiet_logs(warnings_off=False, native_stderr=True):  # FFmpeg prints its own reason; ours is one line
        cap = cv2.VideoCapture(str(path))
        ok = cap.isOpened()
        if ok:
            ok, frame = cap.read()
    if not ok:
        cap.release()
        raise EdgeGANError(f"{path}: not a readable video (OpenCV/FFmpeg could not decode a frame)")
    cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
    if cap.get(cv2.CAP_PROP_POS_FRAMES) != 0:  # some containers cannot seek: start again from the top
        cap.release()
        cap = cv2.VideoCapture(str(path))
    info = VideoInfo(max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT))), float(cap.get(cv2.CAP_PROP_FPS) or 0.0),
                     frame.shape[1], frame.shape[0])
    return cap, info


def iter_video_frames(path: Path, every: int, *, progress: bool = False, desc: str = "frames",
                      ) -> Iterator[tuple[int, np.ndarray]]:
    """(frame index, RGB frame) for frames 0, every, 2 * every, ... of a video file.

    Frames in between are grabbed but not decoded (``grab`` without ``retrieve``), which makes a
    large ``every`` several times cheaper than reading every frame.
    """
    if every < 1:
        raise EdgeGANError(f"--every: must be >= 1, got {every}")
    cap, info = open_video(path)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=info.frames or None, desc=desc, unit="frame", dynamic_ncols=True)
    try:
        index = 0
        while cap.grab():
            if index % every == 0:
                ok, frame = cap.retrieve()
                if ok:  # a damaged frame is skipped, the rest of the file still counts
                    yield index, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            index += 1
            if bar is not None:
                bar.update(1)
    finally:
        cap.release()
        if bar is not None:
            bar.close()


def capture_video(video: Path, out: Path, *, every: int = 30, progress: bool = True) -> list[Path]:
    """Save frames 0, every, 2 * every, ... of ``video`` as ``out/<stem>_f<index>.png``; returns the files.

    Names carry the frame index, so running it again rewrites the same files instead of adding copies.
    """
    video, out = Path(video), Path(out)
    if every < 1:
        raise EdgeGANError(f"--every: must be >= 1, got {every}")
    open_video(video)[0].release()  # a bad file fails here, before --out is created
    saved: list[Path] = []
    with removed_if_left_empty(out):
        ensure_out_dir(out)
        for index, rgb in iter_video_frames(video, every, progress=progress, desc="capture"):
            path = out / f"{video.stem}_f{index:06d}.png"
            save_png_atomic(path, rgb)
            saved.append(path)
    if not saved:
        raise EdgeGANError(f"{video}: no frame could be decoded")
    return saved


# ---------------------------------------------------------------- the screen
@dataclass
class CaptureBox:
    """The square the user aims with: its centre follows the mouse, its side changes with wheel/keys.

    All coordinates are in screen (monitor) pixels; ``scale`` is window pixels per screen pixel.
    """

    screen_w: int
    screen_h: int
    side: int = 256
    min_side: int = 32
    step: float = 1.1
    cx: float = 0.0
    cy: float = 0.0

    def __post_init__(self):
        self.side = self._clamp_side(self.side)
        self.cx, self.cy = self.screen_w / 2, self.screen_h / 2

    def _clamp_side(self, side: float) -> int:
        return int(max(self.min_side, min(round(side), self.screen_w, self.screen_h)))

    def grow(self, steps: int = 1) -> None:
        # at least one pixel per step, or a small box could never grow by 10%
        new = self.side * self.step ** steps
        self.side = self._clamp_side(new if abs(new - self.side) >= 1 else self.side + (1 if steps > 0 else -1))

    def move_to(self, cx: float, cy: float) -> None:
        self.cx, self.cy = cx, cy

    def region(self, centre: tuple[float, float] | None = None) -> tuple[int, int, int, int]:
        """left, top, right, bottom: the box around the centre (its own, or ``centre``), shifted to lie wholly
        on the screen."""
        cx, cy = centre or (self.cx, self.cy)
        left = int(round(cx - self.side / 2))
        top = int(round(cy - self.side / 2))
        left = min(max(0, left), self.screen_w - self.side)
        top = min(max(0, top), self.screen_h - self.side)
        return left, top, left + self.side, top + self.side


def wheel_delta(flags: int) -> int:
    """The signed wheel step in a mouse callback's ``flags`` (OpenCV's CV_GET_WHEEL_DELTA, which Python lacks)."""
    delta = (flags >> 16) & 0xFFFF
    return delta - 0x10000 if delta >= 0x8000 else delta


def next_capture_number(out: Path) -> int:
    """1 + the highest N of the ``capture_N.png`` files already in ``out`` (1 for none)."""
    numbers = [int(m.group(1)) for p in out.iterdir() if (m := _NAME.match(p.name))] if out.is_dir() else []
    return max(numbers, default=0) + 1


def _draw_overlay(view: np.ndarray, box: tuple[int, int, int, int], scale: float, saved: int, side: int,
                  paused: bool) -> None:
    x0, y0, x1, y1 = (int(round(v * scale)) for v in box)
    cv2.rectangle(view, (x0, y0), (x1 - 1, y1 - 1), (0, 0, 0), 3)  # dark under light: visible on any screen
    cv2.rectangle(view, (x0, y0), (x1 - 1, y1 - 1), (0, 255, 255), 1)
    lines = [f"saved {saved} | box {side} px{' | PAUSED' if paused else ''}",
             "click: save  wheel/arrows: size", "space: pause  esc: quit"]
    font, scale_px = cv2.FONT_HERSHEY_SIMPLEX, 0.45
    sizes = [cv2.getTextSize(line, font, scale_px, 1)[0] for line in lines]
    step = max(h for _, h in sizes) + 6
    cv2.rectangle(view, (4, 4), (12 + max(w for w, _ in sizes), 8 + step * len(lines)), (0, 0, 0), -1)
    for i, line in enumerate(lines):
        cv2.putText(view, line, (8, 4 + step * (i + 1)), font, scale_px, (255, 255, 255), 1, cv2.LINE_AA)


def _grabber(monitor_index: int):
    try:
        import mss
    except ImportError as err:
        raise EdgeGANError(f"data capture needs mss to grab the screen: {_CAPTURE_EXTRA}") from err
    try:
        sct = (mss.MSS if hasattr(mss, "MSS") else mss.mss)()
    except Exception as err:  # mss raises its own ScreenShotError (and others) when no X server answers
        raise EdgeGANError(f"cannot grab the screen ({' '.join(str(err).split()) or type(err).__name__}); "
                           "use --video FILE to take frames from a video instead") from err
    monitors = sct.monitors  # [0] is all monitors together, [1..] each one
    if not 1 <= monitor_index < len(monitors):
        sct.close()
        raise EdgeGANError(f"--monitor: {monitor_index} does not exist (this display has "
                           f"{len(monitors) - 1} monitor(s): 1..{len(monitors) - 1})")
    return sct, monitors[monitor_index]


def capture_screen(out: Path, *, side: int = 256, monitor: int = 1, view_scale: float | None = None,
                   max_view: int = 960, fps: float = 15.0) -> list[Path]:
    """Run the capture window until Esc/q (or the window is closed); returns the files saved."""
    out = Path(out)
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise EdgeGANError("no display ($DISPLAY is not set): use --video FILE to take frames from a video instead")
    if out.is_file():
        raise EdgeGANError(f"--out {out}: is a file, not a folder")
    if view_scale is not None and not 0.05 <= view_scale <= 1.0:
        raise EdgeGANError(f"--view-scale: must be in [0.05, 1], got {view_scale}")
    sct, mon = _grabber(monitor)
    origin_x, origin_y, screen_w, screen_h = mon["left"], mon["top"], mon["width"], mon["height"]
    scale = view_scale or min(1.0, max_view / max(screen_w, screen_h))
    box = CaptureBox(screen_w, screen_h, side=side)
    clicks: list[tuple[float, float]] = []

    # Callbacks run inside waitKeyEx, which hands back one key per call: a key pressed before a click can reach
    # Python after it. So a click records only where it was, and is cut once the keys before it are applied.
    def on_mouse(event, x, y, flags, _param):
        if event == cv2.EVENT_MOUSEWHEEL:  # the wheel's x, y are not the pointer's on every backend
            box.grow(1 if wheel_delta(flags) > 0 else -1)
            return
        box.move_to(x / scale, y / scale)
        if event == cv2.EVENT_LBUTTONDOWN:
            clicks.append((box.cx, box.cy))

    saved: list[Path] = []
    number = next_capture_number(out)
    try:
        # GUI_NORMAL: no Qt toolbar (it would shift the image under the mouse, and its wheel zooms)
        cv2.namedWindow(WINDOW, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)
    except cv2.error as err:
        sct.close()
        raise EdgeGANError("cannot open a window (OpenCV without GUI support: opencv-python-headless?); "
                           "use --video FILE, or install opencv-python") from err
    cv2.setMouseCallback(WINDOW, on_mouse)
    frame = None
    paused = shown = False
    period = 1.0 / fps
    try:
        while True:
            t0 = time.monotonic()
            if frame is None or not paused:
                frame = np.asarray(sct.grab(mon))[:, :, :3]  # BGRA -> BGR, full resolution
            view = cv2.resize(frame, (round(screen_w * scale), round(screen_h * scale)), interpolation=cv2.INTER_AREA)
            _draw_overlay(view, box.region(), scale, len(saved), box.side, paused)
            cv2.imshow(WINDOW, view)
            key = cv2.waitKeyEx(max(1, int((period - (time.monotonic() - t0)) * 1000)))
            if key in KEYS_QUIT:
                break
            if key in KEYS_UP or key in (ord("+"), ord("=")):
                box.grow(1)
            elif key in KEYS_DOWN or key == ord("-"):
                box.grow(-1)
            elif key == ord(" "):
                paused = not paused
            for centre in clicks:  # cut from the frame that was on show when the user clicked
                x0, y0, x1, y1 = box.region(centre)
                path = out / f"capture_{number:04d}.png"
                if not saved:
                    ensure_out_dir(out)
                save_png_atomic(path, cv2.cvtColor(np.ascontiguousarray(frame[y0:y1, x0:x1]), cv2.COLOR_BGR2RGB))
                log.info("saved %s (%dx%d at %d,%d)", path, x1 - x0, y1 - y0, x0 + origin_x, y0 + origin_y)
                saved.append(path)
                number += 1
            clicks.clear()
            visible = cv2.getWindowProperty(WINDOW, cv2.WND_PROP_VISIBLE) >= 1
            if shown and not visible:  # closed with the title bar's X (before its first map it is not shown yet)
                break
            shown = shown or visible
    finally:
        cv2.destroyAllWindows()
        sct.close()
    return saved
