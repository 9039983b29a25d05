"""Runtime targets, in one run: model-only fps, end-to-end fps at 640x480 with face detection, per-stage ms,
memory over a long headless run, and the face-detector comparison that chose the default.

    OMP_NUM_THREADS=1 python benchmarks/runtime.py                  # ~3 minutes on 2 shared cores
    python benchmarks/runtime.py --student runs/quickstart/student --threads 2 --long-frames 3000

Models: the quickstart student (``--student``, a distilled run folder or checkpoint) exported by ``edgegan
export`` to ONNX and TFLite, fp32 and INT8 (NNCF), each validated against PyTorch there; without that package,
the quantizer's ONNX files (``--int8-dir``, ``edgegan quantize``) with ``ModelInfo`` embedded here. Torch is used
only to make those files; everything timed runs through ``edgegan.runtime`` (no torch).

Printed:
1. model only: median ms / fps per backend and precision, batch 1, at the model's size and at 256 px
   (the student is fully convolutional, the size a production student would use);
2. end to end: the built-in test clip (a real face photo panning and zooming, 640x480) through the threaded
   capture, BlazeFace detection every ``--detect-every`` frames with tracking, crop, model, feathered paste:
   fps over wall time and mean ms per stage, for fp32 and INT8 and with detection on every frame;
3. memory: resident set size sampled through a ``--long-frames`` headless demo run writing a video; flat
   means the last quarter's median RSS is within ``--rss-slack`` MB of the second quarter's;
4. face detectors: recall and false positives on real face photos (scikit-image's astronaut, NASA, public
   domain, pasted at 20-200 px in five positions upright and rotated 20 degrees + darkened; the cameraman,
   public domain; the 100 LFW faces of ``skimage.data.lfw_subset``, tight 25 px grey crops upscaled to 96
   and 48 px, 12 per frame), false positives on 25 face-free frames (LFW non-faces and scikit-image
   photos), and ms per 640x480 frame with one thread;
5. group photos: share of faces cartoonized in composed group photos (``clip.group_photo``) by the still-image
   search vs the shrunk whole frame, false positives, and the search's ms.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgegan.runtime import load_backend
from edgegan.runtime.bench import bench_pipeline
from edgegan.runtime.clip import group_photo, write_clip
from edgegan.runtime.faces import HaarCascade, create_detector, iou_matrix
from edgegan.runtime.metadata import ModelInfo
from edgegan.runtime.metadata_io import embed_onnx

TARGET_FPS = 60.0


# ------------------------------------------------------------------------------------------ models
def student_models(student: Path, int8_dir: Path, work: Path, *, tflite: bool) -> dict[str, Path]:
    """fp32 / INT8 ONNX and TFLite of the student, written by ``edgegan.export`` (validated against PyTorch);
    without that package, the quantizer's ONNX files with ModelInfo embedded here (ONNX only)."""
    try:
        from edgegan.export import export
    except ImportError:
        return _quantizer_onnx(student, int8_dir, work)
    targets = "onnx,tflite" if tflite else "onnx"
    results = export(str(student), targets, "fp32,int8", out=work / "exports", runs=5)
    out = {f"{r.target} {r.precision}": Path(r.path) for r in results if r.status == "ok"}
    for r in results:
        if r.status != "ok":
            print(f"export {r.target} {r.precision}: {r.status} {r.message}")
    return out


def _quantizer_onnx(student: Path, int8_dir: Path, work: Path) -> dict[str, Path]:
    import onnx

    from edgegan.train.checkpoint import load_generator, resolve_checkpoint

    ckpt_path = resolve_checkpoint(student)
    _, ckpt = load_generator(ckpt_path, "A2B")
    spec = ckpt.state["models"][ckpt.state["translators"]["A2B"]]
    size = int(spec["kwargs"].get("img_size", ckpt.config.get("size", 64)))
    report = int8_dir / "report.json"
    same = report.is_file() and (
        Path(json.loads(report.read_text())["student"]["checkpoint"]).resolve() == ckpt_path.resolve())
    if not same:
        from edgegan.quantize import quantize_student

        data = Path("runs/quickstart/data")
        print(f"quantizing {ckpt_path} -> {work / 'int8'} (edgegan quantize, PTQ)")
        quantize_student(str(ckpt_path), data / "trainA", work / "int8", method="ptq", data=data, progress=False)
        int8_dir = work / "int8"
    out = {}
    for precision in ("fp32", "int8"):
        info = ModelInfo(model=spec["name"], input_size=size, precision=precision, dynamic_size=True, stride=4,
                         source=str(ckpt_path))
        out[f"onnx {precision}"] = work / f"student_{precision}.onnx"
        model = onnx.load(str(int8_dir / f"student_{precision}.onnx"))
        onnx.save(embed_onnx(model, info), str(out[f"onnx {precision}"]))
    return out


def _with_size(src: Path, dst: Path, size: int) -> bool:
    """A copy of a dynamic-size ONNX model whose metadata asks for ``size`` px crops; False if it is fixed-size."""
    import onnx

    from edgegan.runtime.formats import read_model_info

    info = read_model_info(src)
    if not info.dynamic_size:
        return False
    info.input_size = size
    onnx.save(embed_onnx(onnx.load(str(src)), info), str(dst))
    return True


def model_only(models: dict[str, Path], threads: int, runs: int, rounds: int = 4) -> list[str]:
    """Median ms per model and input side. This CPU is shared and its load drifts, so the calls are spread over
    ``rounds`` rounds of short blocks, one block per model in turn (blocks, not single calls: onnxruntime's
    threads spin after each run and would slow down a different session called right after)."""
    entries = []
    for label, path in models.items():
        backend = load_backend(path, threads=threads)
        for side in [backend.info.input_size] + ([256] if backend.info.dynamic_size else []):
            rgb = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
            entries.append((label, side, backend, backend.info.preprocess(rgb), []))
    for _ in range(rounds):
        for _, _, backend, x, times in entries:
            for _ in range(3):
                backend(x)
            for _ in range(max(1, runs // rounds)):
                t = time.perf_counter()
                backend(x)
                times.append((time.perf_counter() - t) * 1e3)
    lines = [f"{'model':14s} {'backend':36s} {'input':>7s} {'median ms':>10s} {'fps':>8s}"]
    for label, side, backend, _, times in entries:
        med = statistics.median(times)
        lines.append(f"{label:14s} {backend.label:36s} {side:>4d} px {med:10.2f} {1000 / med:8.0f}")
    for backend in {id(e[2]): e[2] for e in entries}.values():
        backend.close()
    return lines


# ------------------------------------------------------------------------------------------ memory
def long_run(model: Path, frames: int, threads: int, work: Path) -> dict | None:
    """``edgegan demo --headless`` in its own (torch-free) process, its resident set sampled every 0.1 s."""
    import subprocess

    if not Path("/proc/self/statm").exists():
        return None  # RSS of another process without psutil: Linux only
    clip = write_clip(work / "long.mp4", n=frames, size=(640, 480))
    out = work / "long_out.mp4"
    cmd = [sys.executable, "-m", "edgegan.cli", "demo", "--model", str(model), "--source", str(clip), "--headless",
           "--output", str(out), "--threads", str(threads)]
    page = os.sysconf("SC_PAGE_SIZE") / 2**20
    samples = []
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[1])
    while proc.poll() is None:
        try:
            with open(f"/proc/{proc.pid}/statm") as f:
                samples.append(int(f.read().split()[1]) * page)
        except (OSError, IndexError, ValueError):
            pass
        time.sleep(0.1)
    stdout, stderr = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"memory run failed: {stderr.strip()[-500:]}")
    q = max(1, len(samples) // 4)
    return {"summary": stdout.strip().splitlines()[0], "seconds": time.perf_counter() - t,
            "rss_early": samples[len(samples) // 10], "rss_peak": max(samples),
            "rss_q2": statistics.median(samples[q : 2 * q]),
            "rss_q4": statistics.median(samples[-q:]), "samples": len(samples),
            "out_frames": int(cv2.VideoCapture(str(out)).get(cv2.CAP_PROP_FRAME_COUNT))}


# ------------------------------------------------------------------------------------------ detectors
def detector_sets() -> dict[str, list[tuple[str, np.ndarray, list[np.ndarray]]]]:
    import skimage.data as d

    w, h = 640, 480

    def bgr(im):
        if im.dtype != np.uint8:
            im = (im * 255).round().astype(np.uint8) if im.max() <= 1 else im.astype(np.uint8)
        return cv2.cvtColor(im, cv2.COLOR_GRAY2BGR) if im.ndim == 2 else cv2.cvtColor(im[..., :3], cv2.COLOR_RGB2BGR)

    backgrounds = [cv2.resize(bgr(getattr(d, n)()), (w, h)) for n in ("grass", "brick", "gravel", "coffee")]
    astro, astro_face = bgr(d.astronaut()), np.array([178, 78, 272, 175], float)

    def place(bg, side, cx, cy, angle, gain):
        s = side / (astro_face[2] - astro_face[0])
        fcx, fcy = (astro_face[0] + astro_face[2]) / 2, (astro_face[1] + astro_face[3]) / 2
        m = cv2.getRotationMatrix2D((fcx, fcy), angle, s)
        m[:, 2] += [cx - fcx, cy - fcy]
        mask = cv2.warpAffine(np.ones(astro.shape[:2], np.uint8), m, (w, h)) > 0
        out = bg.copy()
        out[mask] = cv2.warpAffine(astro, m, (w, h))[mask]
        out = np.clip(out.astype(np.float32) * gain, 0, 255).astype(np.uint8)
        return out, np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2])

    astronaut = []
    for side in (20, 28, 40, 60, 90, 140, 200):
        for cx, cy in ((320, 240), (side * 0.2, 240), (w - side * 0.3, 200), (300, side * 0.25), (150, 380)):
            for angle, gain in ((0, 1.0), (20, 0.6)):
                frame, box = place(backgrounds[len(astronaut) % 4], side, cx, cy, angle, gain)
                astronaut.append((f"{side}px", frame, [box]))
    camera = cv2.resize(bgr(d.camera()), (w, h))
    astronaut.append(("camera", camera, [np.array([195, 120, 265, 200]) * [w / 512, h / 512, w / 512, h / 512]]))

    lfw = (d.lfw_subset() * 255).round().astype(np.uint8)
    faces, nonfaces = lfw[:100], lfw[100:]
    lfw_set, negatives = [], []
    for side in (96, 48):
        for k in range(0, 100, 12):
            frame, boxes = backgrounds[k % 4].copy(), []
            for j, im in enumerate(faces[k : k + 12]):
                r, c = divmod(j, 4)
                x0, y0 = 80 + 160 * c - side // 2, 80 + 160 * r - side // 2
                frame[y0 : y0 + side, x0 : x0 + side] = cv2.resize(bgr(im), (side, side), interpolation=cv2.INTER_CUBIC)
                boxes.append(np.array([x0, y0, x0 + side, y0 + side], float))
            lfw_set.append((f"{side}px", frame, boxes))
            if side == 96:
                frame = backgrounds[k % 4].copy()
                for j, im in enumerate(nonfaces[k : k + 12]):
                    r, c = divmod(j, 4)
                    x0, y0 = 80 + 160 * c - 48, 80 + 160 * r - 48
                    frame[y0 : y0 + 96, x0 : x0 + 96] = cv2.resize(bgr(im), (96, 96))
                negatives.append(("lfw non-faces", frame, []))
    for name in ("chelsea", "coffee", "rocket", "coins", "hubble_deep_field", "immunohistochemistry", "horse",
                 "page", "text", "moon", "retina", "grass", "gravel", "brick", "clock", "cell"):
        negatives.append((name, cv2.resize(bgr(getattr(d, name)()), (w, h)), []))
    return {"astronaut": astronaut, "lfw": lfw_set, "negatives": negatives}


def score_detector(det, sets) -> dict:
    w, h = 640, 480

    def clip(b):
        return np.array([max(b[0], 0), max(b[1], 0), min(b[2], w), min(b[3], h)])

    res, ms = {}, []
    for set_name, frames in sets.items():
        hits, total, fp, by_size = 0, 0, 0, {}
        for label, frame, truth in frames:
            t = time.perf_counter()
            found = det(frame)
            ms.append((time.perf_counter() - t) * 1e3)
            boxes = np.array([clip(f.box) for f in found]).reshape(-1, 4)
            gt = np.array([clip(g) for g in truth]).reshape(-1, 4)
            hit = np.zeros(len(gt), bool)
            if len(boxes) and len(gt):
                iou = iou_matrix(gt, boxes)
                hit = iou.max(1) >= 0.3
                fp += int((iou.max(0) < 0.3).sum())
            else:
                fp += len(boxes)
            hits, total = hits + int(hit.sum()), total + len(gt)
            a, b = by_size.get(label, (0, 0))
            by_size[label] = (a + int(hit.sum()), b + len(gt))
        res[set_name] = {"hits": hits, "total": total, "fp": fp, "by_size": by_size}
    res["ms"] = statistics.median(ms)
    return res


def detector_table() -> list[str]:
    sets = detector_sets()
    haar_alt2 = Path(cv2.data.haarcascades) / "haarcascade_frontalface_alt2.xml"
    candidates = {
        "blazeface-dual (auto)": create_detector("auto"),
        "blazeface short": create_detector("blazeface"),
        "blazeface full": create_detector("blazeface-full"),
        "haar default @320": HaarCascade(),
        "haar alt2 @320": HaarCascade(haar_alt2, min_neighbors=3),
    }
    header = (f"{'detector':22s} {'ms/frame':>8s}  {'astronaut all':>13s} {'>=90px':>7s} {'LFW 96px':>9s} "
              f"{'LFW 48px':>9s} {'FP on faces':>11s} {'FP on 25 empty':>14s}")
    lines = [header]
    for name, det in candidates.items():
        r = score_detector(det, sets)
        a, lf = r["astronaut"], r["lfw"]["by_size"]
        big = [v for k, v in a["by_size"].items() if k in ("90px", "140px", "200px", "camera")]
        big_hits, big_total = sum(v[0] for v in big), sum(v[1] for v in big)
        lines.append(f"{name:22s} {r['ms']:8.2f}  {a['hits']:>6d}/{a['total']:<6d} {big_hits:>3d}/{big_total:<3d} "
                     f"{lf['96px'][0]:>5d}/{lf['96px'][1]:<3d} {lf['48px'][0]:>5d}/{lf['48px'][1]:<3d} "
                     f"{a['fp'] + r['lfw']['fp']:>11d} {r['negatives']['fp']:>14d}")
    return lines


def group_photo_table(seeds=(0, 1, 2)) -> list[str]:
    """Still-image search vs the shrunk whole frame on composed group photos (clip.group_photo: the
    astronaut's face, mirrored and re-lit, at random sizes and positions), 1 thread."""
    settings = [("30 faces 25-40 px, 1024x741", 30, (25, 40), (1024, 741)),
                ("12 faces 40-80 px, 1024x741", 12, (40, 80), (1024, 741)),
                ("40 faces 30-60 px, 1920x1080", 40, (30, 60), (1920, 1080))]
    det = create_detector("auto")
    lines = [f"{'photo (3 seeds)':30s} {'frame only':>18s} {'still search':>18s} {'search ms':>10s}",
             f"{'':30s} {'recall':>9s} {'FP':>8s} {'recall':>9s} {'FP':>8s}"]
    for label, n, px, size in settings:
        row = {"frame": [0, 0], "search": [0, 0]}
        total, ms = 0, []
        for seed in seeds:
            photo, truth = group_photo(n_faces=n, face_px=px, size=size, seed=seed)
            total += len(truth)
            for name, find in (("frame", det), ("search", lambda im: det.search(im, min_face=24))):
                t = time.perf_counter()
                faces = [f for f in find(photo) if f.size >= 24]  # what the pipeline cartoonizes (--min-face 24)
                if name == "search":
                    ms.append((time.perf_counter() - t) * 1e3)
                boxes = np.array([f.box for f in faces]).reshape(-1, 4)
                if len(boxes):
                    row[name][0] += int((iou_matrix(truth, boxes).max(axis=1) > 0.3).sum())
                    row[name][1] += int((iou_matrix(boxes, truth).max(axis=1) <= 0.3).sum())
        lines.append(f"{label:30s} {row['frame'][0] / total:9.0%} {row['frame'][1]:8d} "
                     f"{row['search'][0] / total:9.0%} {row['search'][1]:8d} {statistics.median(ms):10.0f}")
    return lines


# ------------------------------------------------------------------------------------------ main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--student", type=Path, default=Path("runs/quickstart/student"))
    ap.add_argument("--int8-dir", type=Path, default=Path("runs/quickstart/int8"),
                    help="edgegan quantize output for the same student (re-made here when absent or stale)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=200, help="timed model calls (median)")
    ap.add_argument("--frames", type=int, default=300, help="end-to-end frames per configuration")
    ap.add_argument("--long-frames", type=int, default=3000, help="frames of the memory run")
    ap.add_argument("--detect-every", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=2, help="end-to-end runs per configuration (best is shown)")
    ap.add_argument("--rss-slack", type=float, default=5.0, help="MB the memory may drift and still count as flat")
    ap.add_argument("--no-tflite", action="store_true")
    ap.add_argument("--no-detectors", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    t0 = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="edgegan-runtime-bench-") as tmp:
        work = Path(tmp)
        models = student_models(args.student, args.int8_dir, work, tflite=not args.no_tflite)
        print(f"\n== model only (batch 1, {args.threads} threads, median of {args.runs}) ==")
        print("\n".join(model_only(models, args.threads, args.runs)))

        print(f"\n== end to end: built-in clip 640x480, {args.frames} frames, {args.threads} threads, "
              f"detector every {args.detect_every} frames unless noted; best of {args.repeats} (all runs' fps) ==")
        header = f"{'config':32s} {'fps':>7s} {'faces':>6s}  " + "  ".join(f"{k:>7s}" for k in
                                                            ("capture", "detect", "pre", "infer", "post", "paste"))
        print(header)
        e2e = {}
        configs = [("onnx fp32", models["onnx fp32"], args.detect_every),
                   ("onnx int8", models["onnx int8"], args.detect_every),
                   ("onnx fp32, detect every frame", models["onnx fp32"], 1)]
        configs += [(label, models[label], args.detect_every) for label in ("tflite fp32", "tflite int8")
                    if label in models]
        for precision in ("fp32", "int8"):  # what a production-size student would cost: same net, 256 px crops
            big = work / f"student_{precision}_256.onnx"
            if _with_size(models[f"onnx {precision}"], big, 256):
                configs.append((f"onnx {precision}, 256 px face crops", big, args.detect_every))
        runs = {label: [] for label, _, _ in configs}
        for _ in range(args.repeats):  # alternating repeats, best kept: contention only ever slows a run down
            for label, path, every in configs:
                runs[label].append(bench_pipeline(path, frames=args.frames, threads=args.threads, detect_every=every))
        for label, stats_list in runs.items():
            stats = max(stats_list, key=lambda st: st.fps)
            e2e[label] = stats.fps
            print(f"{label:32s} {stats.fps:7.1f} {stats.faces / max(1, stats.frames):6.2f}  "
                  + "  ".join(f"{v:7.2f}" for v in stats.stage_ms().values())
                  + f"   ({', '.join(f'{st.fps:.0f}' for st in stats_list)})")
        best = max(e2e.values())
        print(f"target >= {TARGET_FPS:.0f} fps end to end on {args.threads} cores: "
              f"{'MET' if best >= TARGET_FPS else 'MISSED'} (best {best:.1f} fps; stage ms are per frame, capture "
              "runs in its own thread)")

        print(f"\n== memory: `edgegan demo --headless`, {args.long_frames} frames 640x480 in, video out, "
              "own process ==")
        mem = long_run(models["onnx fp32"], args.long_frames, args.threads, work)
        if mem is None:
            print("skipped: needs /proc (Linux)")
        else:
            drift = mem["rss_q4"] - mem["rss_q2"]
            print(f"{mem['summary']}\n{mem['out_frames']} frames written; RSS sampled {mem['samples']} times: at 10% "
                  f"{mem['rss_early']:.0f} MB, peak {mem['rss_peak']:.0f} MB; median of the 2nd quarter "
                  f"{mem['rss_q2']:.1f} MB -> last quarter {mem['rss_q4']:.1f} MB ({drift:+.1f} MB): "
                  f"{'FLAT' if abs(drift) <= args.rss_slack else 'GROWING'}")

    if not args.no_detectors:
        print("\n== face detectors: recall (IoU >= 0.3) / false positives, 640x480, 1 thread ==")
        print("\n".join(detector_table()))
        print("\n== group photos: faces cartoonized (recall at IoU > 0.3, >= 24 px) / false positives, "
              "blazeface-dual, 1 thread ==")
        print("\n".join(group_photo_table()))
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
