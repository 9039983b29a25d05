"""Cartoon data: anime-face detection recall and background whitening, on the cartoons one can get offline.

No registry package we found ships anime pictures, so two sources stand in, both with an exact foreground mask:
- drawn: ``edgegan.data.drawn_faces.draw_anime_face`` (EdgeGAN's own OpenCV drawing of an anime face;
  its shape ranges were chosen so AnimeFace finds most of them: it tests the pipeline, it does not
  estimate recall on real anime);
- dicebear: DiceBear avatar styles (``pip install dicebear-core dicebear-styles cairosvg``; each style's
  licence is in dicebear_styles' LICENSE.md: CC BY 4.0, CC0 or free use), rendered with a transparent
  background, so the alpha channel is the mask. Western cartoon styles, none of them anime.

Negatives: ten scikit-image photos (astronaut, coffee, chelsea, rocket, camera, ...): a face found there is a
false positive. Each figure is put on three backgrounds (flat colour, vertical gradient, a natural photo from
scikit-image: coffee / rocket / chelsea crops, CC0 / public domain). Detection: the share of images
where AnimeFace finds a face. Whitening: on the 128-px crop that ``data prepare --kind cartoon`` makes
of each detected face, per method: "bg white" = share of true background pixels turned white, "fg kept"
= share of figure pixels left unchanged (within 8 levels), both measured 1 px away from the outline.

    python benchmarks/cartoon_data.py
    python benchmarks/cartoon_data.py --grid docs/cartoon_whitening.png --json docs/cartoon_data.json
"""

from __future__ import annotations

import argparse
import io
import json
import time
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

from edgegan.data.anime_detect import AnimeFaceDetector
from edgegan.data.cartoon import WHITEN_METHODS, CartoonWhitener, crop_square, crop_square_for
from edgegan.data.drawn_faces import anime_face_mask, draw_anime_face

DICEBEAR_STYLES = ("lorelei", "adventurer", "avataaars", "big-ears", "big-smile", "croodles", "micah", "miniavs",
                   "notionists", "open-peeps", "personas", "toon-head")
BACKGROUNDS = ("flat", "gradient", "photo")


def background(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "flat":
        return np.full((size, size, 3), rng.integers(0, 256, 3), np.uint8)
    if kind == "gradient":
        a, b = rng.integers(0, 256, 3).astype(np.float32), rng.integers(0, 256, 3).astype(np.float32)
        t = np.linspace(0, 1, size, dtype=np.float32)[:, None, None]
        return np.broadcast_to(a * (1 - t) + b * t, (size, size, 3)).round().astype(np.uint8).copy()
    from skimage import data

    photo = getattr(data, ["coffee", "rocket", "chelsea"][int(rng.integers(3))])()
    h, w = photo.shape[:2]
    side = int(rng.integers(min(h, w) // 3, min(h, w)))
    y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    return cv2.resize(photo[y:y + side, x:x + side], (size, size), interpolation=cv2.INTER_AREA)


def drawn_samples(n: int, size: int, bg: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    for s in range(n):
        yield f"drawn/{s}", draw_anime_face(size, s, background(bg, size, rng)), anime_face_mask(size, s)


def dicebear_samples(style: str, n: int, size: int, bg: str, seed: int = 0):
    import cairosvg
    import dicebear_styles
    from dicebear import Avatar
    from dicebear.style import Style
    from PIL import Image

    definition = json.loads((Path(next(iter(dicebear_styles.__path__))) / f"{style}.json").read_text())
    st = Style(definition)
    rng = np.random.default_rng(seed)
    for s in range(n):
        svg = Avatar(st, {"seed": f"edgegan-{s}", "size": size}).to_string()
        rgba = np.asarray(Image.open(io.BytesIO(cairosvg.svg2png(bytestring=svg.encode(), output_width=size,
                                                                  output_height=size))).convert("RGBA"))
        alpha = rgba[:, :, 3:4].astype(np.float32) / 255
        rgb = rgba[:, :, :3] * alpha + background(bg, size, rng) * (1 - alpha)
        yield f"{style}/{s}", rgb.round().astype(np.uint8), rgba[:, :, 3] == 255


def whitening_scores(crop: np.ndarray, out: np.ndarray, fg: np.ndarray) -> tuple[float, float]:
    kernel = np.ones((3, 3), np.uint8)
    fg_in = cv2.erode(fg.astype(np.uint8), kernel).astype(bool)
    bg_in = cv2.erode((~fg).astype(np.uint8), kernel).astype(bool)
    white = out.min(axis=2) >= 250
    kept = np.abs(out.astype(int) - crop).max(axis=2) <= 8
    return (float(white[bg_in].mean()) if bg_in.any() else float("nan"),
            float(kept[fg_in].mean()) if fg_in.any() else float("nan"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-drawn", type=int, default=100, help="drawn faces per background")
    ap.add_argument("--n-dicebear", type=int, default=20, help="avatars per style and background")
    ap.add_argument("--size", type=int, default=256, help="source image side")
    ap.add_argument("--crop", type=int, default=128, help="crop side (as --size of data prepare)")
    ap.add_argument("--grid", type=Path, help="before/after PNG: source crop, then each method")
    ap.add_argument("--json", type=Path, help="write the numbers here")
    args = ap.parse_args()

    detector = AnimeFaceDetector()
    whiteners = {m: CartoonWhitener(m) for m in WHITEN_METHODS}
    try:
        import cairosvg  # noqa: F401
        import dicebear_styles  # noqa: F401

        sets = [None, *DICEBEAR_STYLES]
    except ImportError:
        print("(dicebear rows skipped: pip install dicebear-core dicebear-styles cairosvg)")
        sets = [None]

    found = defaultdict(lambda: [0, 0])  # set -> [detected, total]
    scores = defaultdict(list)  # (set, bg, method) -> [(bg white, fg kept)]
    times = defaultdict(list)
    grid_rows: dict[tuple, np.ndarray] = {}
    for style in sets:
        label = "drawn" if style is None else f"dicebear {style}"
        for bg in BACKGROUNDS:
            samples = (drawn_samples(args.n_drawn, args.size, bg) if style is None
                       else dicebear_samples(style, args.n_dicebear, args.size, bg))
            for name, rgb, fg in samples:
                t0 = time.perf_counter()
                faces = detector.faces(rgb)
                times["detect"].append(time.perf_counter() - t0)
                found[label][1] += 1
                if not faces:
                    continue
                found[label][0] += 1
                geometry = crop_square_for(faces[0].box, faces[0].eyes, 0.5)
                crop = crop_square(rgb, *geometry, args.crop)
                fg_crop = crop_square(np.repeat(fg[:, :, None].astype(np.uint8) * 255, 3, 2), *geometry,
                                      args.crop)[:, :, 0] > 127
                row = [crop]
                for method, whitener in whiteners.items():
                    t0 = time.perf_counter()
                    _, out, _ = whitener.crop(rgb, geometry, args.crop, faces[0])
                    times[method].append(time.perf_counter() - t0)
                    scores[(label if style is None else "dicebear", bg, method)].append(
                        whitening_scores(crop, out, fg_crop))
                    row.append(out)
                if style in (None, "lorelei") and (style, bg) not in grid_rows and not name.endswith("/0"):
                    grid_rows[(style, bg)] = np.hstack(row)  # one row per source and background

    from skimage import data as skdata

    photos = ["astronaut", "coffee", "chelsea", "rocket", "camera", "hubble_deep_field", "immunohistochemistry",
              "retina", "colorwheel", "logo"]

    def as_rgb(img: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.repeat(img[:, :, None], 3, 2) if img.ndim == 2 else img[:, :, :3])

    false_hits = [name for name in photos if detector.faces(as_rgb(getattr(skdata, name)()))]
    found["scikit-image photos (no anime face; a hit is a false positive)"] = [len(false_hits), len(photos)]
    print("\nAnimeFace detection (share of images with a face found)")
    print("| source | found |\n|---|---|")
    for label, (hit, total) in found.items():
        print(f"| {label} | {hit}/{total} ({100 * hit / max(total, 1):.0f}%) |")
    print("\nWhitening on the detected crops: bg white / fg kept (mean over crops)")
    print("| source | background | n | " + " | ".join(WHITEN_METHODS) + " |")
    print("|---|---|---|" + "---|" * len(WHITEN_METHODS))
    table = []
    for label in dict.fromkeys(k[0] for k in scores):
        for bg in BACKGROUNDS:
            cells, n = [], 0
            for method in WHITEN_METHODS:
                vals = np.array(scores.get((label, bg, method), []), dtype=float)
                n = len(vals)
                if n == 0:
                    cells.append("-")
                    continue
                w, k = np.nanmean(vals[:, 0]), np.nanmean(vals[:, 1])
                cells.append(f"{100 * w:.0f}% / {100 * k:.1f}%")
                table.append({"source": label, "background": bg, "method": method, "n": n,
                              "bg_white": round(float(w), 4), "fg_kept": round(float(k), 4)})
            print(f"| {label} | {bg} | {n} | " + " | ".join(cells) + " |")
    print("\nms per call: " + ", ".join(f"{k} {1000 * np.median(v):.1f}" for k, v in times.items()))
    if args.json is not None:
        args.json.write_text(json.dumps({"detection": {k: v for k, v in found.items()}, "whitening": table,
                                         "ms": {k: round(1000 * float(np.median(v)), 2) for k, v in times.items()}},
                                        indent=2) + "\n")
    if args.grid is not None and grid_rows:
        header = np.full((24, args.crop * (1 + len(WHITEN_METHODS)), 3), 255, np.uint8)
        for i, title in enumerate(("crop", *WHITEN_METHODS)):
            cv2.putText(header, title, (i * args.crop + 6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1,
                        cv2.LINE_AA)
        grid = np.vstack([header, *grid_rows.values()])
        cv2.imwrite(str(args.grid), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
        print(f"grid ({', '.join(('crop',) + WHITEN_METHODS)} per row): {args.grid}")


if __name__ == "__main__":
    main()
