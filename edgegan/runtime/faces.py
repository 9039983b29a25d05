"""Faces: detection (BlazeFace on LiteRT, or OpenCV's Haar cascade), tracking, crop and paste-back.

The detector weights ship with the install, never from the network:
- BlazeFace short/full-range ``.tflite`` (Apache-2.0, Google MediaPipe) inside this package
  (``edgegan/runtime/face_models/``, provenance and sha256 in its ``SOURCES.json``), run in LiteRT.
- Haar cascades inside opencv-python(-headless) 4.x (``cv2.data.haarcascades``): the fallback where
  LiteRT is not installed (Windows).

numpy + OpenCV only (no torch). Boxes are (x0, y0, x1, y1) floats in frame pixels.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edgegan.errors import EdgeGANError

log = logging.getLogger(__name__)

FACE_MODELS = Path(__file__).resolve().parent / "face_models"
DETECTORS = ("auto", "blazeface-dual", "blazeface", "blazeface-full", "haar", "none")


@dataclass(frozen=True)
class Face:
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in frame pixels
    score: float = 1.0

    @property
    def size(self) -> float:
        return max(self.box[2] - self.box[0], self.box[3] - self.box[1])


# ------------------------------------------------------------------------------ BlazeFace
# (input side, anchor count) -> [(stride, anchors per cell), ...]: MediaPipe's SSD anchor options for
# each published BlazeFace; layers sharing a stride are merged into one grid with their anchors summed.
_ANCHOR_LAYOUTS = {
    (128, 896): [(8, 2), (16, 6)],  # short range (front camera)
    (256, 896): [(16, 2), (32, 6)],  # back camera
    (192, 2304): [(4, 1)],  # full range
}


def blazeface_file(variant: str = "short") -> Path | None:
    """Path of the packaged BlazeFace ``.tflite`` (``short`` or ``full`` range), or None if the install lacks it."""
    path = FACE_MODELS / f"face_detection_{variant}_range.tflite"
    return path if path.is_file() else None


def ssd_anchors(size: int, layout: list[tuple[int, int]]) -> np.ndarray:
    """(N, 2) anchor centres in [0, 1], in the order the model emits its predictions."""
    out = []
    for stride, per_cell in layout:
        n = size // stride
        ys, xs = np.meshgrid((np.arange(n) + 0.5) / n, (np.arange(n) + 0.5) / n, indexing="ij")
        centres = np.stack([xs.ravel(), ys.ravel()], axis=1)
        out.append(np.repeat(centres, per_cell, axis=0))
    return np.concatenate(out).astype(np.float32)


class BlazeFace:
    """MediaPipe BlazeFace on LiteRT: letterboxed input, our own anchor decoding and weighted NMS."""

    def __init__(self, path: str | Path, *, min_score: float = 0.5, iou: float = 0.3, threads: int = 1):
        from edgegan.quiet import quiet_logs
        from edgegan.runtime.backends import litert_interpreter

        Interpreter, _ = litert_interpreter()
        self.path = Path(path)
        try:
            with quiet_logs(warnings_off=False, native_stderr=True):
                self.interp = Interpreter(model_path=str(self.path), num_threads=threads)
                self.interp.allocate_tensors()
        except (ValueError, RuntimeError) as err:
            raise EdgeGANError(f"{self.path}: LiteRT cannot load this face detector ({err})") from err
        (inp,) = self.interp.get_input_details()
        _, h, w, _ = (int(v) for v in inp["shape"])
        outs = {int(d["shape"][-1]): d for d in self.interp.get_output_details()}
        if h != w or set(outs) != {16, 1}:
            raise EdgeGANError(f"{self.path}: not a BlazeFace model (input {inp['shape']}, outputs {sorted(outs)})")
        n = int(outs[1]["shape"][1])
        if (h, n) not in _ANCHOR_LAYOUTS:
            raise EdgeGANError(f"{self.path}: unknown BlazeFace variant ({h} px input, {n} anchors)")
        self.size = h
        self.anchors = ssd_anchors(h, _ANCHOR_LAYOUTS[(h, n)])
        self.input_index = inp["index"]
        self.box_index, self.score_index = outs[16]["index"], outs[1]["index"]
        # score threshold in logit space: the sigmoid then runs on the few candidates only
        self.min_logit = math.log(min_score / (1 - min_score))
        self.iou = iou
        self.name = f"blazeface-{'full' if h == 192 else 'short'}"
        self._canvas = np.zeros((h, h, 3), np.float32)

    def __call__(self, frame_bgr: np.ndarray) -> list[Face]:
        fh, fw = frame_bgr.shape[:2]
        scale = self.size / max(fh, fw)  # letterbox: keep the aspect, pad bottom/right
        w, h = max(1, round(fw * scale)), max(1, round(fh * scale))
        small = cv2.resize(frame_bgr, (w, h), interpolation=cv2.INTER_AREA)
        canvas = self._canvas
        canvas.fill(0.0)  # -1..1 input range: 0 is mid grey
        canvas[:h, :w] = small[:, :, ::-1] * np.float32(1 / 127.5) - np.float32(1.0)
        self.interp.set_tensor(self.input_index, canvas[None])
        self.interp.invoke()
        logits = self.interp.get_tensor(self.score_index)[0, :, 0]
        keep = np.flatnonzero(logits > self.min_logit)
        if keep.size == 0:
            return []
        raw = self.interp.get_tensor(self.box_index)[0, keep, :4] / np.float32(self.size)
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits[keep], -100, 100)))
        cx = raw[:, 0] + self.anchors[keep, 0]
        cy = raw[:, 1] + self.anchors[keep, 1]
        boxes = np.stack([cx - raw[:, 2] / 2, cy - raw[:, 3] / 2, cx + raw[:, 2] / 2, cy + raw[:, 3] / 2], 1)
        boxes *= np.float32(self.size / scale)  # normalised letterbox -> frame pixels
        return [Face(tuple(float(v) for v in b), float(s)) for b, s in weighted_nms(boxes, scores, self.iou)]

    def search(self, frame_bgr: np.ndarray, *, min_face: int = 0) -> list[Face]:
        """Every face in a still image, small ones included (see ``search_tiles``)."""
        whole = [(np.array(f.box, np.float32), f.score) for f in self(frame_bgr)]
        return merge_faces(whole + search_tiles(self, frame_bgr, min_face=min_face))


# ------------------------------------------------------------------------------ photo search
# Still images are searched at a resolution that finds small faces, not only the frame shrunk to the model's
# input (BlazeFace full range sees 192 px: a 30 px face in a 1024 px group photo becomes 6 px, below what it
# detects). Levels of square tiles, from TILE_SIDE px (the full-range model's own input: pixels 1:1) doubling
# up to the frame, each tile overlapping its neighbours by a third, so a face up to a third of a tile is whole
# in at least one; then one merged NMS. A level whose largest whole face (a third of its side) is under
# --min-face is skipped. On the 1024x741 group photo of clip.group_photo: 30 of 30 faces of 25-40 px at 192,
# 29 at 256, 10 at 384 (benchmarks/runtime.py).
TILE_SIDE = 192
_EDGE_PX = 2  # a detection touching an inner tile edge is a cut face, found whole by a neighbouring tile


def tiles(height: int, width: int, side: int) -> list[tuple[int, int, int, int]]:
    """(x0, y0, x1, y1) squares of ``side`` (clipped to the frame) covering it with a third of overlap."""
    stride = max(1, side * 2 // 3)

    def starts(n: int) -> list[int]:
        if n <= side:
            return [0]
        return [*range(0, n - side, stride), n - side]

    return [(x, y, min(x + side, width), min(y + side, height)) for y in starts(height) for x in starts(width)]


def search_tiles(model, frame_bgr: np.ndarray, *, min_face: int = 0,
                 tile_side: int = TILE_SIDE) -> list[tuple[np.ndarray, float]]:
    """(box, score) of every face ``model`` finds in the tiles of each level, in frame pixels."""
    fh, fw = frame_bgr.shape[:2]
    found = []
    side = tile_side
    while side / 3 < min_face:
        side *= 2
    while side < max(fh, fw):
        for x0, y0, x1, y1 in tiles(fh, fw, side):
            for f in model(frame_bgr[y0:y1, x0:x1]):
                bx0, by0, bx1, by1 = f.box
                inner_cut = ((bx0 <= _EDGE_PX and x0 > 0) or (by0 <= _EDGE_PX and y0 > 0)
                             or (bx1 >= x1 - x0 - _EDGE_PX and x1 < fw) or (by1 >= y1 - y0 - _EDGE_PX and y1 < fh))
                if not inner_cut:
                    found.append((np.array([bx0 + x0, by0 + y0, bx1 + x0, by1 + y0], np.float32), f.score))
        side *= 2
    return found


def merge_faces(found: list[tuple[np.ndarray, float]], iou: float = 0.3) -> list[Face]:
    """One face per cluster of overlapping detections from every tile and level (weighted NMS)."""
    if not found:
        return []
    boxes = np.stack([b for b, _ in found]).astype(np.float32)
    scores = np.array([s for _, s in found], np.float32)
    merged = weighted_nms(boxes, scores, iou)
    # a small box inside a larger one is the same face seen at a coarser level: keep the larger
    keep = []
    for i, (b, s) in enumerate(merged):
        inside = any(j != i and _contains(m, b) for j, (m, _) in enumerate(merged))
        if not inside:
            keep.append(Face(tuple(float(v) for v in b), s))
    return keep


def _contains(outer: np.ndarray, inner: np.ndarray) -> bool:
    ix0, iy0 = max(outer[0], inner[0]), max(outer[1], inner[1])
    ix1, iy1 = min(outer[2], inner[2]), min(outer[3], inner[3])
    inter = max(0.0, ix1 - ix0) * max(0.0, iy1 - iy0)
    area = (inner[2] - inner[0]) * (inner[3] - inner[1])
    outer_area = (outer[2] - outer[0]) * (outer[3] - outer[1])
    return area > 0 and inter / area > 0.8 and outer_area > 1.5 * area


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) intersection-over-union of two (N, 4) box arrays."""
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[tuple[np.ndarray, float]]:
    """MediaPipe's blending NMS: each cluster becomes the score-weighted mean of its boxes (steadier than
    keeping the single best anchor, whose box jumps between neighbouring anchors from frame to frame)."""
    order = np.argsort(-scores)
    boxes, scores = boxes[order], scores[order]
    out = []
    alive = np.ones(len(scores), bool)
    overlaps = iou_matrix(boxes, boxes)
    for i in range(len(scores)):
        if not alive[i]:
            continue
        group = alive & (overlaps[i] > iou)
        group[i] = True
        w = scores[group]
        out.append(((boxes[group] * w[:, None]).sum(0) / w.sum(), float(scores[i])))
        alive &= ~group
    return out


# ------------------------------------------------------------------------------ OpenCV cascade
class HaarCascade:
    """OpenCV's frontal-face Haar cascade on a downscaled grey frame: no LiteRT needed, lower recall."""

    # A Haar box starts at the forehead and stops above the chin; BlazeFace's runs brow to chin. Scaling
    # the Haar box makes both detectors frame the same crop (measured on skimage's astronaut photo).
    BOX_SCALE = 0.9

    def __init__(self, path: str | Path | None = None, *, work_side: int = 320, min_neighbors: int = 5):
        path = Path(path) if path else Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
        self.cascade = cv2.CascadeClassifier(str(path))
        if self.cascade.empty():
            raise EdgeGANError(f"{path}: OpenCV cannot load this cascade (note: opencv-python 5.x ships none)")
        self.work_side = work_side
        self.min_neighbors = min_neighbors
        self.name = "haar"

    def __call__(self, frame_bgr: np.ndarray) -> list[Face]:
        return self._detect(frame_bgr, self.work_side)

    def search(self, frame_bgr: np.ndarray, *, min_face: int = 0) -> list[Face]:
        """A still image at up to 1600 px (the cascade scans every scale itself)."""
        return self._detect(frame_bgr, max(self.work_side, 1600))

    def _detect(self, frame_bgr: np.ndarray, work_side: int) -> list[Face]:
        fh, fw = frame_bgr.shape[:2]
        scale = min(1.0, work_side / max(fh, fw))
        grey = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY)
        if scale < 1.0:
            grey = cv2.resize(grey, (max(1, round(fw * scale)), max(1, round(fh * scale))),
                              interpolation=cv2.INTER_AREA)
        grey = cv2.equalizeHist(grey)
        found = self.cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=self.min_neighbors,
                                              minSize=(20, 20))
        faces = []
        for x, y, w, h in np.asarray(found).reshape(-1, 4):
            cx, cy, half = (x + w / 2) / scale, (y + h / 2) / scale, max(w, h) / scale * self.BOX_SCALE / 2
            faces.append(Face((cx - half, cy - half, cx + half, cy + half), 1.0))
        return faces


class FallbackDetector:
    """Two BlazeFace models: the one that last found a face runs first, the other only on frames where it
    finds nothing. Close faces are found by the short-range model (fastest), smaller or more distant ones by
    the full-range model, and in steady state only one of them runs per detection."""

    def __init__(self, first, second):
        self.models = [first, second]
        self.name = f"{first.name}+{second.name}"

    def __call__(self, frame_bgr: np.ndarray) -> list[Face]:
        for i, model in enumerate(self.models):
            faces = model(frame_bgr)
            if faces:
                if i:
                    self.models.reverse()
                return faces
        return []

    def search(self, frame_bgr: np.ndarray, *, min_face: int = 0) -> list[Face]:
        """A still image: both models on the whole frame, the full-range one on every tile, one merged NMS."""
        found = [(np.array(f.box, np.float32), f.score) for m in self.models for f in m(frame_bgr)]
        full = next((m for m in self.models if m.name == "blazeface-full"), self.models[-1])
        return merge_faces(found + search_tiles(full, frame_bgr, min_face=min_face))


# Score thresholds, measured on real faces (benchmarks/runtime.py): the short-range model at MediaPipe's 0.5
# takes a small whole-body photo for a face now and then (scores 0.56-0.67); 0.6 halved those false positives
# for one missed face in 71, while the full-range model has none at 0.5 and loses recall above it.
MIN_SCORE = {"short": 0.6, "full": 0.5}


def create_detector(name: str = "auto", *, threads: int = 1, min_score: float | None = None):
    """A face detector by name (see ``DETECTORS``); None for ``none``.

    ``auto`` is ``blazeface-dual`` (short-range, full-range when short finds nothing) when the BlazeFace
    files and LiteRT are installed, else OpenCV's Haar cascade with a warning naming the install command.
    """
    name = (name or "auto").lower()
    if name not in DETECTORS:
        raise EdgeGANError(f"--detector {name}: unknown (choose from {', '.join(DETECTORS)})")
    if name == "none":
        return None
    if name == "haar":
        return HaarCascade()
    variants = {"blazeface": ["short"], "blazeface-full": ["full"]}.get(name, ["short", "full"])
    paths = [blazeface_file(v) for v in variants]
    if all(paths):
        try:
            models = [BlazeFace(p, threads=threads, min_score=min_score or MIN_SCORE[v])
                      for p, v in zip(paths, variants)]
        except EdgeGANError as err:
            if name != "auto":
                raise
            log.warning("face detector: BlazeFace unavailable (%s); using OpenCV's Haar cascade", err)
            return HaarCascade()
        return models[0] if len(models) == 1 else FallbackDetector(*models)
    if name != "auto":
        raise EdgeGANError(f"--detector {name}: the BlazeFace weights are missing from {FACE_MODELS} "
                           "(reinstall edgegan)")
    log.warning("face detector: BlazeFace weights missing from %s (reinstall edgegan); using OpenCV's Haar cascade "
                "(slower, misses more faces)", FACE_MODELS)
    return HaarCascade()


# ------------------------------------------------------------------------------ tracking
class OneEuro:
    """One Euro filter (Casiez et al., CHI 2012) on a vector, time in frames: smooths jitter when the
    face is still, follows quickly when it moves. Its speed estimate also extrapolates between detections."""

    def __init__(self, x: np.ndarray, *, min_cutoff: float = 0.02, beta: float = 0.05, d_cutoff: float = 0.3):
        self.x = np.asarray(x, np.float64)
        self.dx = np.zeros_like(self.x)
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff

    @staticmethod
    def _alpha(cutoff, dt: float):
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def __call__(self, x: np.ndarray, dt: float = 1.0) -> np.ndarray:
        x = np.asarray(x, np.float64)
        a_d = self._alpha(self.d_cutoff, dt)
        self.dx = a_d * (x - self.x) / dt + (1 - a_d) * self.dx
        a = self._alpha(self.min_cutoff + self.beta * np.abs(self.dx), dt)
        self.x = a * x + (1 - a) * self.x
        return self.x


@dataclass
class Track:
    filt: OneEuro  # state: centre x, centre y, side (pixels)
    score: float
    last_seen: int  # frame index of the last matching detection
    misses: int = 0

    def box(self, frame_index: int) -> np.ndarray:
        # between detections the box moves on at the filter's last speed, for at most a few frames
        ahead = min(frame_index - self.last_seen, 4)
        cx, cy, side = self.filt.x + self.filt.dx * ahead
        return np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2])


def _state(box) -> np.ndarray:
    x0, y0, x1, y1 = box
    return np.array([(x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0)])


@dataclass
class FaceTracker:
    """Runs the detector every ``detect_every`` frames (every frame while nothing is tracked), matches
    detections to tracks by IoU, smooths each track, and predicts boxes on the frames in between."""

    detector: object
    detect_every: int = 3
    max_misses: int = 2  # detections a track may miss before it is dropped
    max_jump: float = 1.0  # largest centre move (in face sizes) between detections still matched to a track
    tracks: list[Track] = field(default_factory=list)
    frame_index: int = -1
    last_detect_index: int = -10**9

    def update(self, frame_bgr: np.ndarray, *, force: bool = False) -> tuple[list[Face], bool]:
        """(faces for this frame, whether the detector ran)."""
        self.frame_index += 1
        i = self.frame_index
        due = force or not self.tracks or i - self.last_detect_index >= self.detect_every
        if due:
            self._correct(self.detector(frame_bgr), i)
            self.last_detect_index = i
        return [Face(tuple(float(v) for v in t.box(i)), t.score) for t in self.tracks], due

    def reset(self) -> None:
        self.tracks.clear()
        self.frame_index, self.last_detect_index = -1, -10**9

    def _correct(self, faces: list[Face], i: int) -> None:
        det = np.array([_state(f.box) for f in faces], np.float64).reshape(-1, 3)
        pred = np.array([_state(t.box(i)) for t in self.tracks], np.float64).reshape(-1, 3)
        matched_t, matched_d = set(), set()
        if len(det) and len(pred):
            # centre distance in face sizes, not IoU: a fast face between two detections may not overlap
            # its prediction at all, and would otherwise become a second (duplicate) track
            scale = np.maximum(pred[:, None, 2], det[None, :, 2])
            dist = np.hypot(pred[:, None, 0] - det[None, :, 0], pred[:, None, 1] - det[None, :, 1]) / scale
            ratio = np.maximum(pred[:, None, 2], det[None, :, 2]) / np.maximum(
                np.minimum(pred[:, None, 2], det[None, :, 2]), 1e-6)
            dist[ratio > 2.0] = np.inf
            for flat in np.argsort(dist, axis=None):  # greedy, nearest first
                ti, di = divmod(int(flat), len(det))
                if dist[ti, di] > self.max_jump:
                    break
                if ti in matched_t or di in matched_d:
                    continue
                t = self.tracks[ti]
                t.filt(det[di], dt=float(i - t.last_seen) or 1.0)
                t.score, t.last_seen, t.misses = faces[di].score, i, 0
                matched_t.add(ti)
                matched_d.add(di)
        # An unmatched track coasts through a few missed detections (detectors flicker), unless this round
        # found a face no track claims: then that face is most likely this one, moved faster than predicted,
        # and keeping both would paste the same face twice.
        fresh = len(det) > len(matched_d)
        kept = []
        for ti, t in enumerate(self.tracks):
            if ti not in matched_t:
                if fresh:
                    continue
                t.misses += 1
                t.filt.dx[:] = 0.0  # a lost face should not drift off at its last speed
            if t.misses <= self.max_misses:
                kept.append(t)
        for di in range(len(det)):
            if di not in matched_d:
                kept.append(Track(OneEuro(det[di]), faces[di].score, i))
        self.tracks = kept


# ------------------------------------------------------------------------------ crop and paste
def crop_square(box, *, scale: float = 1.8, lift: float = 0.08) -> tuple[int, int, int]:
    """(x0, y0, side) of the square crop around a face box: ``scale`` times its side (hair, chin and
    some background, as selfie->cartoon models are trained), centre raised by ``lift`` of the side."""
    cx, cy, side = _state(box)
    side = max(2, round(side * scale))
    cy -= lift * side
    return round(cx - side / 2), round(cy - side / 2), side


def extract(frame: np.ndarray, x0: int, y0: int, side: int, out: int) -> np.ndarray:
    """The square region (x0, y0, side) resized to ``out`` px; parts outside the frame are edge-replicated."""
    fh, fw = frame.shape[:2]
    ax0, ay0, ax1, ay1 = max(x0, 0), max(y0, 0), min(x0 + side, fw), min(y0 + side, fh)
    region = frame[ay0:ay1, ax0:ax1]
    if (ax0, ay0, ax1, ay1) != (x0, y0, x0 + side, y0 + side):
        region = cv2.copyMakeBorder(region, ay0 - y0, y0 + side - ay1, ax0 - x0, x0 + side - ax1,
                                    cv2.BORDER_REPLICATE)
    interp = cv2.INTER_AREA if side > out else cv2.INTER_LINEAR
    return cv2.resize(region, (out, out), interpolation=interp)


def feather_mask(side: int, *, inset: float = 0.06, blur: float = 0.12) -> np.ndarray:
    """(side, side) float32 weights: an ellipse filling the crop, edges blurred over ``blur`` of the side,
    so the corners (background) keep the original frame and no seam shows."""
    m = np.zeros((side, side), np.float32)
    c = (side - 1) / 2
    r = max(1, round(side * (0.5 - inset)))
    cv2.ellipse(m, (round(c), round(c)), (r, round(r * 1.05)), 0, 0, 360, 1.0, -1, cv2.LINE_AA)
    k = max(1, round(side * blur)) | 1
    return cv2.GaussianBlur(m, (k, k), 0)


def paste(frame: np.ndarray, patch: np.ndarray, x0: int, y0: int, mask: np.ndarray) -> None:
    """Blend a square ``patch`` (any size; resized to the mask's side) into ``frame`` at (x0, y0), in place;
    only the part inside the frame is written."""
    side = mask.shape[0]
    if patch.shape[0] != side:
        patch = cv2.resize(patch, (side, side), interpolation=cv2.INTER_LINEAR)
    fh, fw = frame.shape[:2]
    ax0, ay0, ax1, ay1 = max(x0, 0), max(y0, 0), min(x0 + side, fw), min(y0 + side, fh)
    if ax1 <= ax0 or ay1 <= ay0:
        return
    sy, sx = slice(ay0 - y0, ay1 - y0), slice(ax0 - x0, ax1 - x0)
    a = mask[sy, sx]
    roi = frame[ay0:ay1, ax0:ax1]
    roi[...] = cv2.blendLinear(patch[sy, sx], roi, a, 1.0 - a)
