"""The frame pipeline: detect/track faces, crop, cartoonize, paste back; or the whole frame.

Modes:
- ``face``: each tracked face is cropped with margin, translated and blended back with a feathered
  mask; the frame keeps its size and everything else stays untouched.
- ``side``: the input next to the ``face`` result (twice the width).
- ``full``: the whole frame through the model, no detection.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from pathlib import Path

import cv2
import numpy as np

from edgegan.errors import EdgeGANError
from edgegan.runtime.backends import Backend
from edgegan.runtime.faces import Face, FaceTracker, crop_square, extract, feather_mask, paste
from edgegan.runtime.metadata import ModelInfo

MODES = ("face", "side", "full")
LIVE_MAX_FACES = 4  # video: the largest few faces keep the frame rate; a still image gets every face found
_MASK_SIDE = 256  # the feather mask is drawn once at this side and resized per face


@dataclass
class StageTimes:
    """Milliseconds per stage for one frame (``capture`` is filled in by whoever reads the frames)."""

    capture: float = 0.0
    detect: float = 0.0
    pre: float = 0.0
    infer: float = 0.0
    post: float = 0.0
    paste: float = 0.0

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def as_dict(self) -> dict[str, float]:
        return {n: getattr(self, n) for n in self.names()}


@dataclass
class FrameResult:
    image: np.ndarray  # (H, W, 3) uint8, the colour order of the input
    faces: list[Face] = field(default_factory=list)  # the faces that were cartoonized
    times: StageTimes = field(default_factory=StageTimes)
    detected: bool = False  # whether the detector ran on this frame (it runs every few frames)


def as_bgr(image, *, color: str = "BGR", where: str = "image") -> np.ndarray:
    """Any (H, W), (H, W, 3) or (H, W, 4) uint8 array -> contiguous (H, W, 3) BGR; one clear error otherwise."""
    a = np.asarray(image) if not isinstance(image, np.ndarray) else image
    if a.dtype != np.uint8 or a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (1, 3, 4)) \
            or min(a.shape[:2], default=0) < 1:
        raise EdgeGANError(f"{where}: expected an (H, W, 3) uint8 image array, got shape {a.shape} dtype {a.dtype}")
    if a.ndim == 2 or a.shape[2] == 1:
        return cv2.cvtColor(np.ascontiguousarray(a.reshape(a.shape[:2])), cv2.COLOR_GRAY2BGR)
    if a.shape[2] == 4:
        return cv2.cvtColor(np.ascontiguousarray(a), cv2.COLOR_BGRA2BGR if color == "BGR" else cv2.COLOR_RGBA2BGR)
    if color == "RGB":
        return cv2.cvtColor(np.ascontiguousarray(a), cv2.COLOR_RGB2BGR)
    return np.ascontiguousarray(a)


class Cartoonizer:
    """An exported model plus the face pipeline around it. Create with :func:`edgegan.runtime.load`."""

    def __init__(self, backend: Backend, detector=None, *, mode: str = "face", crop_scale: float = 1.8,
                 max_faces: int | None = None, min_face: int = 24, detect_every: int = 3):
        if mode not in MODES:
            raise EdgeGANError(f"--mode {mode}: choose from {', '.join(MODES)}")
        if detect_every < 1:
            raise EdgeGANError(f"--detect-every {detect_every}: must be at least 1")
        if crop_scale <= 0:
            raise EdgeGANError(f"--crop-scale {crop_scale}: must be positive")
        if max_faces is not None and max_faces < 1:
            raise EdgeGANError(f"--max-faces {max_faces}: must be at least 1")
        if min_face < 0:
            raise EdgeGANError(f"--min-face {min_face}: must be 0 or more")
        if detector is None and mode != "full":
            raise EdgeGANError(f"--mode {mode}: needs a face detector (use --mode full with --detector none)")
        self.backend = backend
        self.detector = detector
        self.mode = mode
        self.crop_scale = crop_scale
        self.max_faces = max_faces  # None: all in a still image, LIVE_MAX_FACES per video frame
        self.min_face = min_face  # faces smaller than this (pixels) are left as they are: too few pixels to restyle
        self.tracker = FaceTracker(detector, detect_every=detect_every) if detector is not None else None
        self._mask = feather_mask(_MASK_SIDE)

    @property
    def info(self) -> ModelInfo:
        return self.backend.info

    def __repr__(self) -> str:
        det = getattr(self.detector, "name", None) or "none"
        return f"Cartoonizer({self.backend.path.name}: {self.backend.label}, mode={self.mode}, detector={det})"

    # ---------------------------------------------------------------- public
    def cartoonize(self, image, *, color: str = "RGB") -> np.ndarray:
        """Cartoonize one still image (array or image file path) in the current mode.

        Detection runs on this image alone (no tracking state). Returns uint8 in the input's colour order
        (``color``, "RGB" or "BGR"); a path is read as RGB and returns RGB.
        """
        if isinstance(image, (str, Path)):
            from edgegan.data.images import load_rgb

            image, color = load_rgb(image), "RGB"
        if color not in ("RGB", "BGR"):
            raise EdgeGANError(f"color={color!r}: must be 'RGB' or 'BGR'")
        frame = as_bgr(image, color=color)
        faces, times = [], StageTimes()
        if self.mode != "full":
            faces = self._detect_still(frame, times)
        out = self._render(frame, faces, times)
        return cv2.cvtColor(out, cv2.COLOR_BGR2RGB) if color == "RGB" else out

    def process_frame(self, frame_bgr: np.ndarray, *, still: bool = False) -> FrameResult:
        """One frame (BGR, as OpenCV reads it) with per-stage timings. Video (default): faces tracked across
        calls, the detector every few frames. ``still``: a photo of its own, searched for every face."""
        frame = as_bgr(frame_bgr, where="frame")
        times = StageTimes()
        if self.mode == "full":
            return FrameResult(self._render(frame, [], times), [], times, False)
        if still:
            used = self._detect_still(frame, times)
            return FrameResult(self._render(frame, used, times), used, times, True)
        self._need_detector()
        t = time.perf_counter()
        faces, detected = self.tracker.update(frame)
        times.detect = (time.perf_counter() - t) * 1e3
        used = self._usable(faces, still=False)
        return FrameResult(self._render(frame, used, times), used, times, detected)

    def translate(self, rgb: np.ndarray) -> np.ndarray:
        """The bare model on one RGB image of any size (resized to the model's input and back)."""
        frame = as_bgr(rgb, color="RGB")
        return cv2.cvtColor(self._full(frame, StageTimes()), cv2.COLOR_BGR2RGB)

    def next_mode(self) -> str:
        """Cycle face -> side -> full (only full without a detector); returns the new mode."""
        if self.tracker is None:
            return self.mode
        self.mode = MODES[(MODES.index(self.mode) + 1) % len(MODES)]
        if self.mode != "full" and self.tracker is not None:
            self.tracker.reset()  # tracks from before a full-frame stretch would be stale
        return self.mode

    def reset(self) -> None:
        """Forget tracked faces (call between unrelated videos)."""
        if self.tracker is not None:
            self.tracker.reset()

    def close(self) -> None:
        self.backend.close()

    # ---------------------------------------------------------------- internals
    def _need_detector(self) -> None:
        if self.tracker is None:
            raise EdgeGANError(f"--mode {self.mode}: needs a face detector (use --mode full, or --detector auto)")

    def _detect_still(self, frame: np.ndarray, times: StageTimes) -> list[Face]:
        self._need_detector()
        t = time.perf_counter()
        search = getattr(self.detector, "search", None)
        faces = search(frame, min_face=self.min_face) if search else self.detector(frame)
        times.detect = (time.perf_counter() - t) * 1e3
        return self._usable(faces, still=True)

    def _usable(self, faces: list[Face], *, still: bool) -> list[Face]:
        big = [f for f in faces if f.size >= self.min_face]
        cap = self.max_faces or (None if still else LIVE_MAX_FACES)
        return sorted(big, key=lambda f: -f.size)[:cap]

    def _render(self, frame: np.ndarray, faces: list[Face], times: StageTimes) -> np.ndarray:
        if self.mode == "full":
            return self._full(frame, times)
        out = self._faces(frame, faces, times)
        return np.hstack([frame, out]) if self.mode == "side" else out

    def _run(self, crop_bgr: np.ndarray, times: StageTimes) -> np.ndarray:
        t0 = time.perf_counter()
        x = self.info.preprocess(crop_bgr[:, :, ::-1])
        t1 = time.perf_counter()
        y = self.backend(x)
        t2 = time.perf_counter()
        out = self.info.postprocess(y)[0]
        out = cv2.cvtColor(out, cv2.COLOR_RGB2BGR)
        t3 = time.perf_counter()
        times.pre += (t1 - t0) * 1e3
        times.infer += (t2 - t1) * 1e3
        times.post += (t3 - t2) * 1e3
        return out

    def _faces(self, frame: np.ndarray, faces: list[Face], times: StageTimes) -> np.ndarray:
        out = frame.copy()
        size = self.info.input_size
        for face in faces:
            t = time.perf_counter()
            x0, y0, side = crop_square(face.box, scale=self.crop_scale)
            crop = extract(frame, x0, y0, side, size)
            times.pre += (time.perf_counter() - t) * 1e3
            cartoon = self._run(crop, times)
            t = time.perf_counter()
            mask = cv2.resize(self._mask, (side, side), interpolation=cv2.INTER_LINEAR)
            paste(out, cartoon, x0, y0, mask)
            times.paste += (time.perf_counter() - t) * 1e3
        return out

    def _full(self, frame: np.ndarray, times: StageTimes) -> np.ndarray:
        h, w = frame.shape[:2]
        ih, iw = self.backend.input_hw(*_short_side(h, w, self.info.input_size))
        t = time.perf_counter()
        small = cv2.resize(frame, (iw, ih), interpolation=cv2.INTER_AREA if iw < w else cv2.INTER_LINEAR)
        times.pre += (time.perf_counter() - t) * 1e3
        out = self._run(small, times)
        t = time.perf_counter()
        out = cv2.resize(out, (w, h), interpolation=cv2.INTER_LINEAR)
        times.paste += (time.perf_counter() - t) * 1e3
        return out


def _short_side(h: int, w: int, side: int) -> tuple[int, int]:
    """(h, w) scaled so the shorter side is ``side``: a dynamic-size model sees faces near its training scale."""
    s = side / min(h, w)
    return max(1, round(h * s)), max(1, round(w * s))
