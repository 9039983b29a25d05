"""``edgegan bench``: model latency on every backend that can run it here, then the whole pipeline.

1. Model only: each model file (one file, or every exported model in a folder) on each backend that
   can read it here — every onnxruntime execution provider available, LiteRT, CoreML, ncnn, MNN, ExecuTorch, and
   OpenVINO for ``.onnx`` and ``.xml`` files at fp32 and at its bf16 hint where the CPU has bf16 — timed in ONE
   interleaved loop (one call of each in turn, so a noisy machine slows all rows alike); median and
   p90 of ``runs`` calls after warm-up, input at the model's own size. Each row's parity: PSNR of its
   outputs on real face crops against the reference fp32 model (the fp32 file on onnxruntime's CPU
   provider, which ``edgegan export`` validated against PyTorch at >= 60 dB; no torch is needed here).
   The fastest row is named.
2. End to end: the face pipeline on the built-in test clip (``clip.py``: a real face photo with
   motion and scale change, 640x480) or on ``--source``, read by the threaded capture as the demo
   does; fps over wall time and mean milliseconds per stage (capture runs in its own thread).
"""

from __future__ import annotations

import importlib.util
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edgegan.errors import EdgeGANError
from edgegan.runtime.backends import ORT_PROVIDERS, backend_for, load_backend, ort_providers
from edgegan.runtime.capture import open_source
from edgegan.runtime.clip import write_clip
from edgegan.runtime.demo import RunStats
from edgegan.runtime.formats import MODEL_SUFFIXES
from edgegan.runtime.packaged import DEMO_DIR, NAME, resolve_model
from edgegan.runtime.quality import compare
from edgegan.runtime.timing import interleaved_times, p90

WARMUP = 5  # model calls before timing
PIPELINE_WARMUP = 3  # frames through the pipeline before timing (allocators, runtime caches, first detection)


@dataclass
class LatencyRow:
    model: str
    precision: str
    backend: str
    device: str
    input: str
    median_ms: float | None = None
    p90_ms: float | None = None
    note: str = ""
    psnr_db: float | None = None  # vs the reference fp32 model on the same photos
    hint: str = ""  # OpenVINO precision hint the row ran with
    at_size: bool = True  # False: a fixed-size model that could not run at the size asked for (not ranked)

    @property
    def fps(self) -> float | None:
        return 1000.0 / self.median_ms if self.median_ms else None


def model_files(path: str | Path) -> list[Path]:
    """``path`` itself, or the exported models directly inside a folder (sorted); ``demo``: every packaged file."""
    path = DEMO_DIR if path == NAME else resolve_model(path)
    if not path.exists():
        raise EdgeGANError(f"--model {path}: no such file or folder")
    if path.is_dir() and path.suffix.lower() not in MODEL_SUFFIXES:
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in MODEL_SUFFIXES and not p.name.startswith("."))
        if not files:
            raise EdgeGANError(f"--model {path}: folder holds no exported model ({', '.join(MODEL_SUFFIXES)})")
        return files
    backend_for(path)  # unknown suffix -> one-line error
    return [path]


def _openvino_hints(device: str | None, precision_hint: str | None) -> list[str]:
    """OpenVINO precision hints worth timing here: the one asked for, else f32 and (where the CPU computes
    bf16 natively) bf16; none when OpenVINO is not installed."""
    if precision_hint:
        return [precision_hint]
    if importlib.util.find_spec("openvino") is None:
        return []
    from edgegan.runtime.backends import openvino_core

    try:
        caps = openvino_core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    except RuntimeError:
        caps = []
    return ["f32", "bf16"] if "BF16" in caps and device in (None, "auto", "cpu", "CPU") else ["f32"]


def _configs(path: Path, provider: str | None, delegate: str | None, device: str | None = None,
             precision_hint: str | None = None) -> list[tuple[str, dict]]:
    kind = backend_for(path)
    ov = [("openvino", {"device": device, "precision_hint": h}) for h in _openvino_hints(device, precision_hint)]
    if kind == "onnxruntime":
        names = [provider] if provider else [k for k, v in ORT_PROVIDERS.items() if v in ort_providers()]
        return [("onnxruntime", {"provider": p}) for p in names] + ov
    if kind == "litert":
        return [("litert", {"delegate": delegate})] + ([("litert", {})] if delegate else [])
    if kind == "openvino":
        return ov or [("openvino", {"device": device})]  # not installed: its load error becomes the row's note
    return [(kind, {"device": device} if kind == "ncnn" else {})]  # one setting each: coreml, ncnn, mnn, ...


def parity_photos(size: int) -> np.ndarray:
    """4 real face crops (the clip's photo at 4 framings), (4, size, size, 3) uint8 RGB."""
    import cv2

    from edgegan.runtime.clip import face_photo

    rgb = face_photo()[..., ::-1]
    crops = [rgb, rgb[:256, 128:384], rgb[40:296, 150:406], rgb[0:384, 64:448]]
    return np.stack([cv2.resize(np.ascontiguousarray(c), (size, size), interpolation=cv2.INTER_AREA) for c in crops])


def _outputs(backend, photos: np.ndarray) -> np.ndarray:
    """The backend's outputs on ``photos``, NCHW float32 in the model's output range."""
    info = backend.info
    ys = []
    for rgb in photos:
        y = backend(info.preprocess(rgb))
        ys.append(y.transpose(0, 3, 1, 2) if info.layout == "NHWC" else y)
    return np.concatenate(ys).astype(np.float32)


def bench_models(path: str | Path, *, threads: int | None = None, runs: int = 50, provider: str | None = None,
                 delegate: str | None = None, device: str | None = None,
                 precision_hint: str | None = None, size: int | None = None) -> list[LatencyRow]:
    """One row per (file, backend setting); ``size``: input side for models that accept any (a fixed-size
    model runs at its own, which its row's input column shows)."""
    if size is not None and size < 8:
        raise EdgeGANError(f"--size {size}: must be at least 8")
    rows, loaded = [], []
    try:
        for file in model_files(path):
            for backend, kwargs in _configs(file, provider, delegate, device, precision_hint):
                try:
                    b = load_backend(file, backend, threads=threads, **{k: v for k, v in kwargs.items() if v})
                except EdgeGANError as err:
                    rows.append(LatencyRow(file.name, "?", backend, str(kwargs.get("provider") or ""), "",
                                           note=str(err)))
                    continue
                h, w = b.input_hw(size or b.info.input_size, size or b.info.input_size)
                row = LatencyRow(file.name, b.info.precision, backend, b.device, f"{w}x{h}",
                                 hint=kwargs.get("precision_hint") or "",
                                 at_size=size is None or (h, w) == (size, size))
                if not row.at_size:
                    row.note = f"fixed-size model: runs at {w}x{h} only, not ranked"
                rows.append(row)
                loaded.append((row, b, (h, w)))
        _time_interleaved(loaded, runs)
        _parity(loaded)
    finally:
        for _, b, _ in loaded:
            b.close()
    return rows


def _time_interleaved(loaded: list, runs: int) -> None:
    inputs = [b.info.preprocess(np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8))
              for _, b, (h, w) in loaded]
    times = interleaved_times({i: (lambda b=b, x=x: b(x)) for i, ((_, b, _), x) in enumerate(zip(loaded, inputs))},
                              runs, warmup=WARMUP)
    times = [times[i] for i in range(len(loaded))]
    for (row, _, _), ts in zip(loaded, times):
        row.median_ms, row.p90_ms = statistics.median(ts), p90(ts)


def _parity(loaded: list) -> None:
    """PSNR of every row against the reference fp32 model on the same real photos (per input size)."""
    def rank(item):
        row, _, _ = item
        return (row.precision != "fp32", row.backend != "onnxruntime", "CPU" not in row.device)

    by_size: dict[int, list] = {}
    for item in loaded:
        by_size.setdefault(item[2][0], []).append(item)
    for size, items in by_size.items():
        ref_row, ref_b, _ = min(items, key=rank)
        if ref_row.precision != "fp32":
            continue  # no fp32 model of this size in the set: nothing to measure against
        photos = parity_photos(size)
        ref = _outputs(ref_b, photos)
        for row, b, _ in items:
            try:
                row.psnr_db = round(compare(_outputs(b, photos), ref).psnr_db, 2)
            except Exception as err:
                row.note = f"parity not measured: {type(err).__name__}"


def fastest(rows: list[LatencyRow]) -> LatencyRow | None:
    timed = [r for r in rows if r.median_ms is not None and r.at_size]
    return min(timed, key=lambda r: r.median_ms) if timed else None


def bench_pipeline(model: str | Path, *, source: str | None = None, frames: int = 150, threads: int | None = None,
                   backend: str | None = None, provider: str | None = None, delegate: str | None = None,
                   detector: str = "auto", mode: str = "face", detect_every: int = 3,
                   size: tuple[int, int] = (640, 480), device: str | None = None,
                   precision_hint: str | None = None) -> RunStats:
    """End-to-end statistics of the pipeline on ``source`` (default: the built-in clip at ``size``)."""
    from edgegan.runtime import load

    cartoonizer = load(model, backend, mode=mode, detector=detector, threads=threads, provider=provider,
                       delegate=delegate, detect_every=detect_every, device=device, precision_hint=precision_hint)
    try:
        with tempfile.TemporaryDirectory(prefix="edgegan-bench-") as tmp:
            if source is None:
                source = str(write_clip(Path(tmp) / "clip.mp4", n=frames + PIPELINE_WARMUP, size=size))
            return run_pipeline(cartoonizer, source, max_frames=frames)
    finally:
        cartoonizer.close()


def run_pipeline(cartoonizer, source: str, *, max_frames: int | None = None,
                 warmup: int = PIPELINE_WARMUP) -> RunStats:
    """Every frame of ``source`` through ``cartoonizer`` with nothing written; the first ``warmup`` frames
    (allocator and runtime warm-up) are not counted. Images are photos (the still-image face search, as
    ``edgegan demo`` runs them), read again pass after pass until ``max_frames`` are timed, so one photo gives
    figures too."""
    stats = RunStats()
    start, seen = None, 0
    while True:
        with open_source(source) as frames:
            still, before = frames.kind == "images", seen
            for frame in frames:
                result = cartoonizer.process_frame(frame.image, still=still)
                seen += 1
                if seen <= warmup:
                    continue
                start = start or time.perf_counter()
                result.times.capture = frame.capture_ms
                stats.add(result.times, len(result.faces))
                if max_frames and stats.frames >= max_frames:
                    break
        done = not still or seen == before or not max_frames or stats.frames >= max_frames
        if done:
            break
    stats.seconds = time.perf_counter() - start if start else 0.0
    return stats


def format_latency(rows: list[LatencyRow]) -> str:
    head = (f"{'model':28s} {'prec':5s} {'backend':12s} {'device':24s} {'input':9s} {'median':>9s} {'p90':>9s} "
            f"{'fps':>8s} {'PSNR':>8s}")
    lines = [head, "-" * len(head)]
    for r in rows:
        if r.median_ms is None:
            lines.append(f"{r.model:28s} {r.precision:5s} {r.backend:12s} {r.device:24s} skipped: {r.note}")
        else:
            psnr = "-" if r.psnr_db is None else "inf" if r.psnr_db == float("inf") else f"{r.psnr_db:.1f}"
            lines.append(f"{r.model:28s} {r.precision:5s} {r.backend:12s} {r.device:24s} {r.input:9s} "
                         f"{r.median_ms:7.2f}ms {r.p90_ms:7.2f}ms {r.fps:8.1f} {psnr:>8s}"
                         + (f"  ({r.note})" if r.note else ""))
    best = fastest(rows)
    if best is not None:
        lines.append(f"fastest here: {best.model} on {best.backend} ({best.device}), {best.median_ms:.2f} ms"
                     + (f", {best.psnr_db:.1f} dB vs the fp32 reference" if best.psnr_db not in (None, float("inf"))
                        else ""))
    lines.append("(interleaved timing; PSNR of each row's outputs vs the fp32 model on onnxruntime CPU, real photos)")
    return "\n".join(lines)


def run_bench(model: str | Path, *, threads: int | None = None, runs: int = 50, frames: int = 150,
              source: str | None = None, provider: str | None = None, delegate: str | None = None,
              detector: str = "auto", mode: str = "face", pipeline_model: str | None = None,
              device: str | None = None, precision_hint: str | None = None, size: int | None = None) -> dict:
    """Both benchmarks; returns a JSON-able report (``format_bench`` prints it). ``size`` sets the model-only
    input side (the pipeline feeds face crops at the model's own size)."""
    rows = bench_models(model, threads=threads, runs=runs, provider=provider, delegate=delegate, device=device,
                        precision_hint=precision_hint, size=size)
    runnable = [r for r in rows if r.median_ms is not None]
    if not runnable:
        raise EdgeGANError(f"--model {model}: no backend here can run it ({rows[0].note if rows else 'no model'})")
    best = fastest(runnable) or min(runnable, key=lambda r: r.median_ms)
    e2e_model = Path(pipeline_model) if pipeline_model else _file_of(model, best)
    # the end-to-end run uses the fastest row's runtime and settings (unless a model was named for it)
    on = best.backend if not pipeline_model else None
    stats = bench_pipeline(e2e_model, source=source, frames=frames, threads=threads, backend=on,
                           provider=provider if on in (None, "onnxruntime") else None,
                           delegate=delegate if on in (None, "litert") else None, detector=detector, mode=mode,
                           device=device if on == "openvino" else None,
                           precision_hint=(best.hint or precision_hint) if on == "openvino" else None)
    return {"latency": [asdict(r) | {"fps": r.fps} for r in rows], "pipeline_model": str(e2e_model),
            "pipeline_backend": on or "auto",
            "pipeline": {"source": source or "built-in clip 640x480", "frames": stats.frames, "fps": stats.fps,
                         "faces_per_frame": stats.faces / max(1, stats.frames), "stage_ms": stats.stage_ms()},
            "python": sys.version.split()[0]}


def _file_of(model: str | Path, best: LatencyRow) -> Path:
    path = DEMO_DIR if model == NAME else resolve_model(model)
    return path / best.model if path.is_dir() and path.suffix.lower() not in MODEL_SUFFIXES else path


def format_bench(report: dict) -> str:
    rows = [LatencyRow(**{k: v for k, v in r.items() if k != "fps"}) for r in report["latency"]]
    p = report["pipeline"]
    stages = "  ".join(f"{k} {v:.2f}" for k, v in p["stage_ms"].items())
    return (f"model only (batch 1):\n{format_latency(rows)}\n\n"
            f"end to end: {Path(report['pipeline_model']).name} ({report.get('pipeline_backend', 'auto')}) "
            f"on {p['source']}, {p['frames']} frames, "
            f"{p['faces_per_frame']:.2f} faces/frame: {p['fps']:.1f} fps\n"
            f"per frame ms: {stages}")
