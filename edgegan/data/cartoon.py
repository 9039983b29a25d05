"""``edgegan data prepare --kind cartoon``: anime frames or pictures -> square face crops, duplicates dropped,
optionally on white.

1. faces: AnimeFace (``edgegan.data.anime_detect``), every face of at least ``min_face`` px;
2. crop: a square around the face box with ``margin`` of its side on each side (the same convention as
   the photo side: with 0.5 the face box is the central half), eyes at the height the photo crops put
   them, so both domains are framed alike;
3. near-duplicates: a 64-bit perceptual hash (DCT) per crop; a crop within ``dup_threshold`` bits of
   one already kept is dropped (consecutive video frames of one shot);
4. optional background whitening (``whiten_method``): ``flood`` fills flat colour from the crop's border
   (crisp edges, cartoon backgrounds are often flat), ``segment`` runs MediaPipe's selfie segmentation
   (trained on people), ``both`` keeps the flood regions that the segmentation does not call person.
   What each does on drawn and packaged cartoons: ``benchmarks/cartoon_data.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgegan.data.anime_detect import AnimeFace
from edgegan.data.capture import ensure_out_dir, iter_video_frames, open_video, removed_if_left_empty
from edgegan.data.images import IMAGE_SUFFIXES, list_images, load_rgb, save_png_atomic
from edgegan.data.prepare import FACE_TEMPLATE_5
from edgegan.errors import EdgeGANError, ImageError
from edgegan.io_utils import write_json_atomic

log = logging.getLogger(__name__)

WHITEN_METHODS = ("flood", "segment", "both")
# where the photo side's crops put the eye line: the template's mean eye height (unit square)
TEMPLATE_EYE_Y = float(FACE_TEMPLATE_5[:4, 1].mean())
# the eye line's height in libnvxs' face box, used when it reports no plausible eyes (measured on 186
# detected drawn faces: 0.29 +- 0.12 of the box side; its eye boxes put the line within 0.07 (median))
BOX_EYE_Y = 0.30


# ---------------------------------------------------------------- crop geometry
def crop_square_for(box: tuple[int, int, int, int], eyes, margin: float) -> tuple[float, float, float]:
    """(centre x, centre y, side) in source pixels of the crop around a face box.

    Side: the box side times ``1 + 2 * margin``. Height: the eye line sits where the photo side's
    aligned crops have it, so a model sees both domains' faces at the same place.
    """
    left, top, right, bottom = box
    b = right - left
    side = b * (1.0 + 2.0 * margin)
    eye_y = (eyes[0][1] + eyes[1][1]) / 2 if eyes is not None else top + BOX_EYE_Y * b
    if not top <= eye_y <= top + 0.6 * b:  # eyes found below the box's upper part: not to be trusted
        eye_y = top + BOX_EYE_Y * b
    eye_frac = (TEMPLATE_EYE_Y + margin) / (1.0 + 2.0 * margin)
    return (left + right) / 2, eye_y + (0.5 - eye_frac) * side, side


def crop_square(rgb: np.ndarray, cx: float, cy: float, side: float, size: int) -> np.ndarray:
    """The ``side`` px square centred at (cx, cy), resampled to ``size`` px; edge pixels repeat past the image.

    Coordinates are continuous (pixel i spans [i, i + 1)), as the detector's boxes are.
    """
    h, w = rgb.shape[:2]
    if size / side < 0.5:  # bilinear warping aliases when shrinking more than 2x: area-average down first
        f = 2 * size / side
        rgb = cv2.resize(rgb, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
        fx, fy = rgb.shape[1] / w, rgb.shape[0] / h
        cx, cy, side = cx * fx, cy * fy, side * (fx + fy) / 2
    k = size / side
    # crop pixel u (centre u + 0.5) <- source pixel x (centre x + 0.5): u + 0.5 = k (x + 0.5 - cx) + size / 2
    m = np.array([[k, 0.0, k * (0.5 - cx) + size / 2 - 0.5],
                  [0.0, k, k * (0.5 - cy) + size / 2 - 0.5]])
    return cv2.warpAffine(rgb, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def box_in_crop(box, cx: float, cy: float, side: float, size: int) -> tuple[float, float, float, float]:
    """A source-pixel box (left, top, right, bottom) in the coordinates of ``crop_square(..., cx, cy, side, size)``."""
    k = size / side
    x0, y0 = cx - side / 2, cy - side / 2
    return ((box[0] - x0) * k, (box[1] - y0) * k, (box[2] - x0) * k, (box[3] - y0) * k)


# ---------------------------------------------------------------- near-duplicates
def phash(rgb: np.ndarray) -> int:
    """64-bit perceptual hash: signs of the 8x8 lowest DCT frequencies of the 32x32 grey image vs. their median."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    small = cv2.resize(grey, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    low = cv2.dct(small)[:8, :8].ravel()
    bits = low > np.median(low[1:])  # the DC term (overall brightness) stays out of the median
    return int(np.packbits(bits).view(">u8")[0])


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


# ---------------------------------------------------------------- background whitening
def colour_edges(rgb: np.ndarray, jump: int) -> np.ndarray:
    """(H, W) bool: pixels with a 4-neighbour more than ``jump`` levels away in some channel (both sides of
    every outline and colour border; not noise, nor a smooth gradient)."""
    cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    return (cv2.morphologyEx(rgb, cv2.MORPH_GRADIENT, cross).max(axis=2) > jump)


def border_regions(rgb: np.ndarray, tol: int = 6) -> tuple[np.ndarray, int]:
    """Flood fill from every border pixel: 4-connected, neighbour-to-neighbour steps <= ``tol`` per channel,
    never through a colour edge (``colour_edges(rgb, 3 * tol)``).

    The edges matter: a fill that only limits each step walks along an anti-aliased outline, whose
    coverage changes a little from pixel to pixel, from the backdrop into any figure colour.
    Returns (labels, n): labels (H, W) int32, 0 = not reached from the border, 1..n = one region each.
    """
    h, w = rgb.shape[:2]
    img = np.ascontiguousarray(rgb)
    mask = np.zeros((h + 2, w + 2), np.uint8)
    mask[1:-1, 1:-1] = colour_edges(img, 3 * tol)  # non-zero mask pixels stop floodFill
    labels = np.zeros((h, w), np.int32)
    n = 0
    border = ([(x, 0) for x in range(w)] + [(w - 1, y) for y in range(h)]
              + [(x, h - 1) for x in range(w - 1, -1, -1)] + [(0, y) for y in range(h - 1, -1, -1)])
    flags = 4 | cv2.FLOODFILL_MASK_ONLY | (2 << 8)
    for x, y in border:
        if mask[y + 1, x + 1]:
            continue
        before = mask[1:-1, 1:-1] == 2
        cv2.floodFill(img, mask, (x, y), 0, (tol,) * 3, (tol,) * 3, flags)
        n += 1
        labels[(mask[1:-1, 1:-1] == 2) & ~before] = n
    return labels, n


def face_core(box: tuple[float, float, float, float]) -> tuple[int, int, int, int]:
    """The middle 60 % of a face box's width (left, top, right, bottom): eyes, cheeks, nose, mouth.
    A backdrop never reaches it; a fill that leaked into the skin does."""
    left, top, right, bottom = box
    w = right - left
    return (round(left + 0.2 * w), round(top), round(right - 0.2 * w), round(bottom))


def flood_background(rgb: np.ndarray, face_box: tuple[float, float, float, float] | None = None,
                     skin: tuple[int, int, int] | None = None, *, tol: int = 6) -> np.ndarray:
    """(H, W) bool: the flat-colour backdrop, found by flood-filling from the border.

    Border regions that reach into the face (``face_core(face_box)``, crop pixels; default: the crop's
    centre) with skin-coloured pixels (``skin``: the detector's estimate), or that cover 15 % of it
    (bangs), are figure, not backdrop: a fill that leaked. The backdrop is the remaining region with the most
    contact with the upper border (top edge and upper 60 % of the sides: shoulders and clothes touch the
    bottom), plus every border region of its colour (the backdrop that hair or a neck cuts in two).
    No region with at least 10 % of the upper border: the crop shows no backdrop, nothing is returned.
    """
    h, w = rgb.shape[:2]
    labels, n = border_regions(rgb, tol)
    bg = np.zeros((h, w), bool)
    if n == 0:
        return bg
    if face_box is None:
        face_box = (w / 4, h / 4, 3 * w / 4, 3 * h / 4)
    cl, ct, cr, cb = face_core(face_box)
    core = labels[max(0, ct):max(0, cb), max(0, cl):max(0, cr)]
    size = max(1, core.size)
    in_core = np.bincount(core.ravel(), minlength=n + 1) > 0.15 * size
    if skin is not None:
        # the face box can be wider than a pointed chin: backdrop beside it is fine, skin is not
        skin_px = np.abs(rgb[max(0, ct):max(0, cb), max(0, cl):max(0, cr)].astype(int) - skin).max(axis=2) <= 3 * tol
        in_core |= np.bincount(core[skin_px], minlength=n + 1) > 0.02 * size
    upper = round(0.6 * h)
    upper_edge = np.concatenate([labels[0], labels[:upper, 0], labels[:upper, -1]])
    all_edge = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    upper_contact = np.bincount(upper_edge, minlength=n + 1).astype(float)
    contact = np.bincount(all_edge, minlength=n + 1)
    upper_contact[0] = -1
    upper_contact[in_core] = -1
    main = int(np.argmax(upper_contact))
    if upper_contact[main] < 0.1 * upper_edge.size:
        return bg
    area = np.bincount(labels.ravel(), minlength=n + 1)
    colours = np.stack([np.bincount(labels.ravel(), weights=rgb[:, :, c].ravel().astype(np.float64),
                                    minlength=n + 1) for c in range(3)], 1) / np.maximum(area, 1)[:, None]
    keep = (np.abs(colours - colours[main]).max(axis=1) <= 3 * tol) & (contact >= 0.01 * all_edge.size) & ~in_core
    keep[0] = False
    keep[main] = True
    bg = keep[labels]
    # the fill stops one pixel short of each edge (the edge mask covers both sides of a colour jump):
    # take in the edge pixels next to it that still have the backdrop's colour
    ring = cv2.dilate(bg.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))).astype(bool) & ~bg
    if ring.any():
        near = np.abs(rgb[ring].astype(np.float64) - colours[main]).max(axis=1) <= 3 * tol
        bg[np.flatnonzero(ring.ravel())[near] // w, np.flatnonzero(ring.ravel())[near] % w] = True
    return bg


def _to_white(rgb: np.ndarray, bg: np.ndarray) -> np.ndarray:
    out = rgb.copy()
    # one pixel of rim: the anti-aliased pixels between the filled colour and the figure's outline
    # are a blend of the two and would leave a halo of the old background colour
    rim = cv2.dilate(bg.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & ~bg
    if rim.any():
        grey = rgb[rim].astype(np.float32).mean(axis=1, keepdims=True)
        out[rim] = np.clip(np.maximum(rgb[rim], grey), 0, 255).astype(np.uint8)
    out[bg] = 255
    return out


@dataclass
class CartoonWhitener:
    """Whitens the background of a face crop; ``crop(rgb, geometry, size, face_box)`` makes and whitens it.

    Methods: ``flood`` (``flood_background``: crisp, flat backdrops only), run on a window twice the
    crop's side around it, so that hair and clothes, which the crop cuts, are whole figures there and
    the backdrop is what reaches the window's edge; ``segment`` (MediaPipe's selfie segmentation on the
    crop, soft edges; it was trained on photos of people, and where it finds no person at all the crop
    is left as it is); ``both``: the flood backdrop plus what the segmentation calls background where it
    does find a person.
    """

    method: str = "flood"
    tol: int = 6
    max_background: float = 0.9  # more than this is a fill that leaked into the face: left unwhitened
    min_person: float = 0.15  # the share of the crop the segmentation must call person to be used

    def __post_init__(self):
        if self.method not in WHITEN_METHODS:
            raise EdgeGANError(f"--whiten-method: one of {', '.join(WHITEN_METHODS)}, got {self.method!r}")
        self._segmenter = None
        if self.method in ("segment", "both"):
            from edgegan.data.prepare import BackgroundWhitener

            self._segmenter = BackgroundWhitener()

    def background(self, rgb: np.ndarray, geometry: tuple[float, float, float], size: int,
                   face: AnimeFace, crop: np.ndarray) -> np.ndarray:
        """(size, size) float32 in [0, 1]: how much of each crop pixel is background."""
        bg = np.zeros((size, size), np.float32)
        if self.method in ("flood", "both"):
            cx, cy, side = geometry
            pad = size // 2
            wide = size + 2 * pad
            wide_side = side * wide / size  # same scale as the crop: pixel u of the crop is pixel u + pad here
            window = crop_square(rgb, cx, cy, wide_side, wide)
            found = flood_background(window, box_in_crop(face.box, cx, cy, wide_side, wide), face.skin,
                                     tol=self.tol)
            bg = found[pad:pad + size, pad:pad + size].astype(np.float32)
        if self.method in ("segment", "both"):
            person = self._segmenter.mask(crop)
            # a segmenter that finds (almost) no person answers "all background" for any cartoon it
            # does not recognise: only an answer with a person in it counts
            if (person >= 0.5).mean() >= self.min_person:
                alpha = cv2.GaussianBlur(person, (0, 0), sigmaX=max(1.0, size / 256))
                bg = np.maximum(bg, 1.0 - np.clip(alpha, 0.0, 1.0))
        return bg

    def crop(self, rgb: np.ndarray, geometry: tuple[float, float, float], size: int,
             face: AnimeFace) -> tuple[np.ndarray, np.ndarray, float]:
        """(crop, whitened crop, background fraction) of ``crop_square(rgb, *geometry, size)``."""
        crop = crop_square(rgb, *geometry, size)
        bg = self.background(rgb, geometry, size, face, crop)
        frac = float(bg.mean())
        if frac > self.max_background:
            return crop, crop, frac
        hard = bg >= 1.0
        out = _to_white(crop, hard) if self.method != "segment" else crop.copy()
        out[hard] = 255
        soft = (bg > 0) & ~hard
        if soft.any():  # the segmentation's soft edge: blend towards white
            a = bg[soft][:, None]
            out[soft] = np.clip(out[soft] * (1.0 - a) + 255.0 * a, 0, 255).round().astype(np.uint8)
        return crop, out, frac


# ---------------------------------------------------------------- the batch
def _sources(src: Path, every: int) -> tuple[int, Iterator[tuple[str, np.ndarray | ImageError]]]:
    """(count for the progress bar, iterator of (name, RGB image or the error that made it unreadable))."""
    if src.is_dir():
        files = list_images(src, role="--src")

        def from_folder():
            for path in files:
                try:
                    yield path.name, load_rgb(path)
                except ImageError as err:
                    yield path.name, err

        return len(files), from_folder()
    if src.is_file() and src.suffix.lower() in IMAGE_SUFFIXES:
        raise EdgeGANError(f"--src {src}: a single image; pass the folder that holds it (or a video file)")
    cap, info = open_video(src)  # missing / unreadable: one line naming the file
    cap.release()

    def from_video():
        for index, rgb in iter_video_frames(src, every):
            yield f"{src.stem}_f{index:06d}.png", rgb

    return (info.frames + every - 1) // every if info.frames else 0, from_video()


def prepare_cartoons(src: str | Path, out: str | Path, *, size: int = 256, margin: float = 0.5,
                     whiten: bool = False, whiten_method: str = "flood", min_face: int = 64,
                     min_score: float = 0.5, every: int = 10, dup_threshold: int = 6, overwrite: bool = False,
                     progress: bool = True) -> dict:
    """Write a square crop of every anime face in ``src`` (a folder of images, or a video file) to ``out``.

    Returns the report also written to ``out/prepare.json``: settings, every crop written, every
    source skipped (unreadable, no face, faces too small) and every crop dropped as a near-duplicate.
    """
    src, out = Path(src), Path(out)
    if size < 32:
        raise EdgeGANError(f"--size: must be >= 32, got {size}")
    if not 0.0 <= margin <= 2.0:
        raise EdgeGANError(f"--margin: must be in [0, 2], got {margin}")
    if every < 1:
        raise EdgeGANError(f"--every: must be >= 1, got {every}")
    if not -1 <= dup_threshold <= 32:
        raise EdgeGANError(f"--dup-threshold: must be in [-1, 32] bits (-1 keeps duplicates), got {dup_threshold}")
    if not src.exists():
        raise EdgeGANError(f"--src: {src} does not exist")
    if out.resolve() == src.resolve():
        raise EdgeGANError(f"--out {out}: must differ from --src (the crops would replace the images)")
    if out.is_file():
        raise EdgeGANError(f"--out {out}: is a file, not a folder")
    if out.is_dir() and any(p.suffix == ".png" for p in out.iterdir()) and not overwrite:
        raise EdgeGANError(f"--out {out}: already holds images; pass --overwrite or choose another folder")
    total, sources = _sources(src, every)
    from edgegan.data.anime_detect import AnimeFaceDetector

    detector = AnimeFaceDetector(min_score=min_score)
    whitener = CartoonWhitener(whiten_method) if whiten else None

    written: list[dict] = []
    skipped: list[dict] = []
    duplicates: list[dict] = []
    hashes: list[tuple[int, str]] = []
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total or None, desc="prepare", unit="image", dynamic_ncols=True)
    with removed_if_left_empty(out):
        ensure_out_dir(out)
        try:
            for name, rgb in sources:
                if bar is not None:
                    bar.update(1)
                if isinstance(rgb, ImageError):
                    skipped.append({"file": name, "reason": f"unreadable: {rgb}"})
                    continue
                faces = detector.faces(rgb)
                if not faces:
                    skipped.append({"file": name, "reason": "no face found"})
                    continue
                usable = [f for f in faces if f.side >= min_face]
                if not usable:
                    skipped.append({"file": name, "reason": f"face(s) {max(f.side for f in faces)} px wide "
                                                            f"< --min-face {min_face}"})
                    continue
                for k, face in enumerate(usable):
                    geometry = crop_square_for(face.box, face.eyes, margin)
                    crop = crop_square(rgb, *geometry, size)
                    out_name = f"{Path(name).stem}.png" if k == 0 else f"{Path(name).stem}_{k + 1}.png"
                    h = phash(crop)  # of the crop as found: whitening must not hide a repeated shot
                    near = min(((hamming(h, g), other) for g, other in hashes), default=None)
                    if dup_threshold >= 0 and near is not None and near[0] <= dup_threshold:
                        duplicates.append({"file": name, "face": k + 1, "of": near[1], "distance": near[0]})
                        continue
                    entry = {"file": name, "out": out_name, "score": round(face.score, 3), "box": list(face.box)}
                    if whitener is not None:
                        _, crop, frac = whitener.crop(rgb, geometry, size, face)
                        entry["background"] = round(frac, 3)
                        if frac > whitener.max_background:
                            entry["whiten"] = f"skipped: {frac:.0%} of the crop looked like background"
                    save_png_atomic(out / out_name, crop)
                    hashes.append((h, out_name))
                    written.append(entry)
        finally:
            if bar is not None:
                bar.close()
        report = {"kind": "cartoon", "src": str(src), "size": size, "margin": margin, "whiten": whiten,
                  "whiten_method": whiten_method if whiten else None, "every": every if src.is_file() else None,
                  "dup_threshold": dup_threshold, "detector": "AnimeFace (libnvxs, animeface wheel)",
                  "written": len(written), "skipped": len(skipped), "duplicates": len(duplicates),
                  "crops": written, "skipped_files": skipped, "duplicate_files": duplicates}
        write_json_atomic(out / "prepare.json", report)
    for item in skipped:
        log.warning("%s: skipped (%s)", src / item["file"] if src.is_dir() else f"{src}[{item['file']}]",
                    item["reason"])
    if not written:
        raise EdgeGANError(f"--src {src}: no usable anime face found in any of its {len(skipped)} "
                           f"{'frame(s)' if src.is_file() else 'image(s)'} (details in {out / 'prepare.json'})")
    return report
