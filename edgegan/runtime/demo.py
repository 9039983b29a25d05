"""``edgegan demo``: a model on a camera, video, image folder or image, in a window or headless.

Window keys: q (or Esc) quit, s snapshot (PNG of the current result), m next mode (face, side, full).
Headless, the results go to a video file (written under a temporary name and renamed when complete), a
folder of PNGs, or one image. Ctrl-C ends a run cleanly: what was processed is kept.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edgegan.data.images import IMAGE_SUFFIXES, save_png_atomic
from edgegan.errors import EdgeGANError
from edgegan.io_utils import _default_file_mode, write_bytes_atomic
from edgegan.runtime.capture import VIDEO_SUFFIXES, Frame, FrameSource, open_source
from edgegan.runtime.pipeline import StageTimes

log = logging.getLogger(__name__)

WINDOW = "EdgeGAN"
_FOURCC = {".avi": "MJPG", ".mkv": "mp4v", ".mov": "mp4v", ".m4v": "mp4v", ".mp4": "mp4v"}
_WRITABLE_VIDEO = tuple(_FOURCC)


# ------------------------------------------------------------------------------------ outputs
class VideoSink:
    """Frames -> a video written under a temporary name in the target folder, renamed by ``finish``."""

    def __init__(self, path: Path, fps: float):
        self.path, self.fps = path, fps
        self.writer: cv2.VideoWriter | None = None
        self.size: tuple[int, int] | None = None
        self.tmp: Path | None = None
        self.frames = 0

    def write(self, image: np.ndarray, frame: Frame) -> None:
        h, w = image.shape[:2]
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.stem}.", suffix=self.path.suffix)
            os.close(fd)
            self.tmp, self.size = Path(tmp), (w, h)
            self.writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*_FOURCC[self.path.suffix.lower()]),
                                          self.fps, self.size)
            if not self.writer.isOpened():
                raise EdgeGANError(f"--output {self.path}: OpenCV cannot write {self.path.suffix} video here "
                                   "(try .mp4 or .avi)")
        if (w, h) != self.size:  # the mode changed mid-run (side-by-side is twice as wide)
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        self.writer.write(image)
        self.frames += 1

    def finish(self) -> Path | None:
        if self.writer is None:
            return None
        self.writer.release()
        os.chmod(self.tmp, _default_file_mode())  # mkstemp made it owner-only
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.release()
        if self.tmp is not None:
            self.tmp.unlink(missing_ok=True)


class FolderSink:
    """One PNG per frame, each written atomically; named after the input file, or by frame index."""

    def __init__(self, path: Path):
        self.path = path
        self.frames = 0

    def write(self, image: np.ndarray, frame: Frame) -> None:
        if self.frames == 0:
            self.path.mkdir(parents=True, exist_ok=True)
        name = frame.name or f"frame_{frame.index:06d}"
        save_png_atomic(self.path / f"{name}.png", image[:, :, ::-1])
        self.frames += 1

    def finish(self) -> Path | None:
        return self.path if self.frames else None

    def abort(self) -> None:
        pass  # every file already written is complete


class ImageSink:
    """A single image file (only for a single-image source)."""

    def __init__(self, path: Path):
        self.path = path
        self.frames = 0

    def write(self, image: np.ndarray, frame: Frame) -> None:
        if self.frames:
            raise EdgeGANError(f"--output {self.path}: the source has several frames; give a video (.mp4) or a folder")
        ok, buf = cv2.imencode(self.path.suffix.lower(), image)
        if not ok:
            raise EdgeGANError(f"--output {self.path}: OpenCV cannot encode {self.path.suffix} images")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(self.path, buf.tobytes())
        self.frames += 1

    def finish(self) -> Path | None:
        return self.path if self.frames else None

    def abort(self) -> None:
        pass


def open_sink(output: str | os.PathLike[str], source: FrameSource, fps: float | None = None):
    """The writer ``--output`` asks for: video by suffix, one image by suffix, else a folder."""
    path = Path(output).expanduser()
    suffix = path.suffix.lower()
    if path.is_dir() or not suffix:
        if path.exists() and not path.is_dir():
            raise EdgeGANError(f"--output {path}: exists and is not a folder")
        return FolderSink(path)
    if path.exists() and path.is_dir():
        return FolderSink(path)
    if suffix in _WRITABLE_VIDEO:
        return VideoSink(path, fps or source.fps)
    if suffix in VIDEO_SUFFIXES:
        raise EdgeGANError(f"--output {path}: OpenCV cannot write {suffix} here; use {', '.join(_WRITABLE_VIDEO)}")
    if suffix in IMAGE_SUFFIXES:
        if source.kind != "images" or source.count != 1:
            raise EdgeGANError(f"--output {path}: an image file holds one frame; the source {source.label} has "
                               "more: give a video (.mp4) or a folder")
        return ImageSink(path)
    raise EdgeGANError(f"--output {path}: unknown output type {suffix!r} (a video {', '.join(_WRITABLE_VIDEO)}, "
                       "an image .png/.jpg, or a folder)")


# ------------------------------------------------------------------------------------ statistics
@dataclass
class RunStats:
    """Per-stage totals over a run; ``fps`` is frames over wall time (stages overlap with capture)."""

    frames: int = 0
    faces: int = 0
    seconds: float = 0.0
    totals: dict[str, float] = field(default_factory=lambda: dict.fromkeys(StageTimes.names(), 0.0))
    skipped: list[str] = field(default_factory=list)  # unreadable inputs of a batch, one line each
    frames_with_faces: int = 0

    def add(self, times: StageTimes, n_faces: int) -> None:
        self.frames += 1
        self.faces += n_faces
        self.frames_with_faces += n_faces > 0
        for k, v in times.as_dict().items():
            self.totals[k] += v

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def stage_ms(self) -> dict[str, float]:
        return {k: v / max(1, self.frames) for k, v in self.totals.items()}

    def format(self) -> str:
        stages = " ".join(f"{k} {v:.2f}" for k, v in self.stage_ms().items())
        lines = [f"{self.frames} frames in {self.seconds:.1f} s: {self.fps:.1f} fps; per frame ms: {stages}",
                 f"faces: {self.faces} cartoonized, in {self.frames_with_faces} of {self.frames} frames"]
        if self.skipped:
            lines.append(f"processed {self.frames}, skipped {len(self.skipped)} unreadable file(s) (warnings above)")
        return "\n".join(lines)


def draw_overlay(image: np.ndarray, fps: float, times: StageTimes, mode: str, *, backend: str = "",
                 faces: int | None = None) -> np.ndarray:
    """FPS, mode, faces found, per-stage milliseconds and the backend in the top-left corner (on a copy)."""
    out = image.copy()
    lines = [f"{fps:5.1f} fps  mode {mode}" + (f"  faces {faces}" if faces is not None else ""),
             " ".join(f"{k} {v:.1f}" for k, v in times.as_dict().items()) + " ms"]
    if backend:
        lines.append(backend)
    scale = max(0.4, min(out.shape[1], 1280) / 1400)
    y = 4
    for text in lines:
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        cv2.rectangle(out, (4, y), (12 + tw, y + th + base + 6), (0, 0, 0), -1)
        cv2.putText(out, text, (8, y + th + 3), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
        y += th + base + 8
    return out


# ------------------------------------------------------------------------------------ the loop
@dataclass
class _Window:
    """The demo's OpenCV window, fitted to the frames it shows."""

    size: tuple[int, int] = (0, 0)  # the frame size the window was last fitted to

    def show(self, image: np.ndarray) -> None:
        h, w = image.shape[:2]
        if self.size != (w, h):  # first frame, or the mode changed the width: fit the window, at most 1600 px
            fit = min(1.0, 1600 / w, 1000 / h)
            cv2.resizeWindow(WINDOW, round(w * fit), round(h * fit))
            self.size = (w, h)
        cv2.imshow(WINDOW, image)


def _open_window() -> _Window:
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise EdgeGANError("no display ($DISPLAY is not set): run with --headless --output out.mp4")
    try:
        # resizable, aspect kept, no Qt toolbar/status bar: the frame is all the window shows
        cv2.namedWindow(WINDOW, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL)
    except cv2.error as err:
        raise EdgeGANError("this OpenCV has no window support (opencv-python-headless): run with --headless "
                           "--output out.mp4, or install opencv-python instead of opencv-python-headless") from err
    return _Window()


def run_demo(model: str | os.PathLike[str], source: str, *, headless: bool = False, output: str | None = None,
             mode: str = "face", backend: str | None = None, detector: str = "auto", threads: int | None = None,
             provider: str | None = None, delegate: str | None = None, detect_every: int = 3,
             max_frames: int | None = None, overlay: bool | None = None, snapshot_dir: str | os.PathLike[str] = ".",
             progress_every: float = 5.0, device: str | None = None,
             precision_hint: str | None = None, max_faces: int | None = None,
             min_face: int = 24) -> tuple[RunStats, Path | None]:
    """Run ``model`` on ``source``; returns the run's statistics and the written output (or None)."""
    from edgegan.runtime import load

    if headless and not output:
        raise EdgeGANError("--headless: needs --output (a video file such as out.mp4, or a folder)")
    if max_frames is not None and max_frames < 1:
        raise EdgeGANError(f"--max-frames {max_frames}: must be at least 1")
    overlay = (not headless) if overlay is None else overlay
    stats, sink, written, window, cartoonizer = RunStats(), None, None, None, None
    try:
        with open_source(source) as frames:  # first: a missing camera fails before the model loads
            sink = open_sink(output, frames) if output else None
            cartoonizer = load(model, backend, mode=mode, detector=detector, threads=threads, provider=provider,
                               delegate=delegate, detect_every=detect_every, device=device,
                               precision_hint=precision_hint, max_faces=max_faces, min_face=min_face)
            log.info("model %s on %s; detector %s", cartoonizer.backend.path.name, cartoonizer.backend.label,
                     getattr(cartoonizer.detector, "name", "none"))
            if not headless:
                window = _open_window()
            start = last = last_log = time.perf_counter()
            fps = 0.0
            label = f"{cartoonizer.backend.path.name}: {cartoonizer.backend.label}"
            # a window plays a video file at its own rate (a camera or stream paces itself) and keeps each
            # photo on screen until a key
            still = frames.kind == "images"  # photos: searched for every face, small ones too
            pace = 1.0 / frames.fps if window is not None and frames.kind == "video" else 0.0
            try:
                for frame in frames:
                    while True:
                        result = cartoonizer.process_frame(frame.image, still=still)
                        result.times.capture = frame.capture_ms
                        now = time.perf_counter()
                        fps = 0.9 * fps + 0.1 / max(now - last, 1e-6) if fps else 1.0 / max(now - last, 1e-6)
                        last = now
                        shown = (draw_overlay(result.image, fps, result.times, cartoonizer.mode, backend=label,
                                              faces=len(result.faces)) if overlay else result.image)
                        if window is None:
                            action = "next"
                            break
                        due = start + (stats.frames + 1) * pace if pace else 0.0
                        action = _show(window, shown, result.image, cartoonizer, snapshot_dir, hold=still, until=due)
                        if action != "again":  # m on a photo: the same photo again in the next mode
                            break
                    stats.add(result.times, len(result.faces))
                    if sink is not None:
                        sink.write(shown, frame)
                    if action == "quit" or (max_frames and stats.frames >= max_frames):
                        break
                    if headless and now - last_log >= progress_every:
                        log.info("frame %d: %.1f fps", stats.frames, stats.frames / (now - start))
                        last_log = now
            except KeyboardInterrupt:
                log.info("interrupted: keeping the %d frames processed", stats.frames)
            stats.seconds = time.perf_counter() - start
            stats.skipped = list(frames.skipped)
        if stats.frames == 0 and stats.skipped:
            raise EdgeGANError(f"--source {source}: none of its {len(stats.skipped)} files could be read "
                               f"(first: {stats.skipped[0]})")
        if stats.frames and not stats.faces and cartoonizer.mode != "full":
            log.warning("no face found in %d frame(s): the output is the input (try --mode full, or a larger face)",
                        stats.frames)
        if sink is not None:
            written = sink.finish()
    except BaseException:
        if sink is not None:
            sink.abort()
        raise
    finally:
        if cartoonizer is not None:
            cartoonizer.close()
        if window is not None:
            cv2.destroyAllWindows()
    return stats, written


def _show(window: _Window, shown: np.ndarray, clean: np.ndarray, cartoonizer, snapshot_dir, *,
          hold: bool = False, until: float = 0.0) -> str:
    """Show a frame and act on keys: "quit", "next", or "again" (a held photo switched mode). ``hold``: wait
    for a key (q quits, s saves and keeps waiting, m changes mode, any other key goes on); else wait until
    ``until`` (perf_counter seconds; a video's frame time), at least one event-loop turn."""
    while True:
        # shown every turn, not once: a frame drawn before the window is first exposed is lost (Qt), and a held
        # photo would stay black until a key
        window.show(shown)
        wait = 100 if hold else max(1, round((until - time.perf_counter()) * 1e3))
        key = cv2.waitKey(wait) & 0xFF
        if cv2.getWindowProperty(WINDOW, cv2.WND_PROP_VISIBLE) < 1 or key in (ord("q"), 27):
            return "quit"
        if key == ord("s"):
            folder = Path(snapshot_dir)
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"edgegan_{time.strftime('%Y%m%d_%H%M%S')}_{time.perf_counter_ns() % 1000:03d}.png"
            save_png_atomic(path, clean[:, :, ::-1])
            log.info("snapshot: %s", path)
        elif key == ord("m"):
            log.info("mode: %s", cartoonizer.next_mode())
            if hold:
                return "again"
        elif hold and key != 0xFF:
            return "next"
        if not hold and (key != 0xFF or time.perf_counter() >= until):
            return "next"

