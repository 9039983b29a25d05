"""Frame sources for the demo and the benchmark: camera, video file or stream, image folder, one image.

A background thread reads (and decodes) while the main thread runs the model. From a live source
(camera, stream) it keeps only the newest frame, so a slow model shows the present, not a growing
backlog; from a file it hands over every frame in order (an output video keeps the input's count).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgegan.data.images import IMAGE_SUFFIXES, list_images, load_rgb
from edgegan.errors import EdgeGANError, ImageError

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv", ".gif"})
_STREAM_PREFIXES = ("rtsp://", "rtmp://", "http://", "https://", "udp://", "tcp://")


@dataclass
class Frame:
    image: np.ndarray  # (H, W, 3) uint8 BGR
    index: int  # position in the source (gaps where a live source dropped frames)
    capture_ms: float  # time spent reading and decoding this frame
    name: str = ""  # file stem for image sources


class FrameSource:
    """Iterate to get :class:`Frame` objects; use as a context manager so the reader thread always stops."""

    kind = "source"

    def __init__(self, label: str, *, fps: float = 30.0, count: int | None = None, live: bool = False):
        self.label, self.fps, self.count, self.live = label, fps, count, live
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._queue: queue.Queue = queue.Queue(maxsize=1 if live else 4)
        self._thread: threading.Thread | None = None
        self.skipped: list[str] = []  # one line per input that could not be read (a batch goes on without it)

    # subclasses: one frame (BGR) or None at the end; raise EdgeGANError for unreadable input
    def _read(self) -> tuple[np.ndarray, str] | None:
        raise NotImplementedError

    def _release(self) -> None:
        pass

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __iter__(self):
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"capture {self.label}", daemon=True)
            self._thread.start()
        while True:
            item = self._queue.get()
            if item is None:
                if self._error is not None:
                    raise self._error
                return
            yield item

    def _run(self) -> None:
        index = 0
        try:
            while not self._stop.is_set():
                t = time.perf_counter()
                got = self._read()
                if got is None:
                    break
                image, name = got
                frame = Frame(image, index, (time.perf_counter() - t) * 1e3, name)
                index += 1
                if self.live:
                    self._replace(frame)
                else:
                    self._put(frame)
        except BaseException as err:
            self._error = err
        finally:
            self._put(None)

    def _put(self, item) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue
        if item is None:  # stopping: make room so a consumer still waiting gets its end marker
            self._replace(None)

    def _replace(self, item) -> None:
        # newest-frame-wins: drop the unconsumed frame, if any, then offer this one
        try:
            self._queue.get_nowait()
        except queue.Empty:
            pass
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            pass

    def close(self) -> None:
        """Stop the reader thread and release the device/file (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        self._release()


class VideoSource(FrameSource):
    kind = "video"

    def __init__(self, spec: str | int, *, label: str, live: bool):
        cap = _quiet_open(spec)
        if not cap.isOpened():
            cap.release()
            if isinstance(spec, int):
                raise EdgeGANError(f"--source {spec}: cannot open camera {spec} (not connected, in use, or no "
                                   "permission)")
            raise EdgeGANError(f"--source {label}: cannot read it as a video (not a video file, corrupt, or an "
                               "unsupported codec)")
        ok, first = cap.read()
        if not ok or first is None:
            cap.release()
            what = f"camera {spec} delivers no frames" if isinstance(spec, int) else "no readable frames"
            raise EdgeGANError(f"--source {label}: {what}")
        fps = cap.get(cv2.CAP_PROP_FPS)
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if not live else None
        super().__init__(label, fps=fps if 1 <= fps <= 240 else 30.0, count=count if count and count > 0 else None,
                         live=live)
        self.kind = "camera" if isinstance(spec, int) else ("stream" if live else "video")
        self._cap, self._first = cap, first

    def _read(self):
        if self._first is not None:
            frame, self._first = self._first, None
            return frame, ""
        ok, frame = self._cap.read()
        return (frame, "") if ok and frame is not None else None

    def _release(self) -> None:
        self._cap.release()


def _quiet_open(spec: str | int) -> cv2.VideoCapture:
    # OpenCV logs a WARN line per backend it tries for a missing camera; our one-line error says it better
    logging = cv2.utils.logging
    old = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_SILENT)
    try:
        return cv2.VideoCapture(spec)
    finally:
        logging.setLogLevel(old)


class ImageSource(FrameSource):
    kind = "images"

    def __init__(self, files: list[Path], *, label: str):
        super().__init__(label, fps=5.0, count=len(files), live=False)
        self._files = list(files)
        self._next = 0
        # fail on an unreadable single image now, before any output is opened
        if len(files) == 1:
            self._first = load_rgb(files[0])
        else:
            self._first = None

    def _read(self):
        while self._next < len(self._files):
            path = self._files[self._next]
            self._next += 1
            try:
                rgb = self._first if self._first is not None else load_rgb(path)
            except ImageError as err:  # one bad photo in a folder: warn, go on, count it
                log.warning("skipped %s", err)
                self.skipped.append(str(err))
                continue
            self._first = None
            return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), path.stem
        return None


def _gif_frames(path: Path) -> int:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return int(getattr(im, "n_frames", 1))
    except (OSError, ValueError, SyntaxError) as err:
        raise EdgeGANError(f"--source {path}: not a readable GIF ({err})") from err


def open_source(source: str | int | os.PathLike[str]) -> FrameSource:
    """A camera index (``0``), video file, stream URL, folder of images or one image file."""
    text = str(source).strip()
    if text.isdigit():
        return VideoSource(int(text), label=text, live=True)
    if text.lower().startswith(_STREAM_PREFIXES):
        return VideoSource(text, label=text, live=True)
    path = Path(text).expanduser()
    if not path.exists():
        raise EdgeGANError(f"--source {text}: no such file or folder (a camera is a number, e.g. 0)")
    if path.is_dir():
        return ImageSource(list_images(path, role=f"--source {text}"), label=text)
    if path.suffix.lower() in IMAGE_SUFFIXES or (path.suffix.lower() == ".gif" and _gif_frames(path) == 1):
        return ImageSource([path], label=text)  # a still GIF is an image; an animated one plays as a video
    if path.stat().st_size == 0:
        raise EdgeGANError(f"--source {text}: empty file (0 bytes)")
    return VideoSource(str(path), label=text, live=False)
