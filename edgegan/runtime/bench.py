"""``edgegan bench``: model latency on every backend that can run it here, then the whole pipeline.

1. Model only: each model file (one file, or every exported model in a folder) on each backend and
   onnxruntime execution provider available on this machine; median and p90 of ``runs`` calls after
   warm-up, input at the model's own size. Precision is what the file's metadata says.
2. End to end: the face pipeline on the built-in test clip (``clip.py``: a real face photo with
   motion and scale change, 640x480) or on ``--source``, read by the threaded capture as the demo
   does; fps over wall time and mean milliseconds per stage (capture runs in its own thread).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edgegan.errors import EdgeGANError
from edgegan.runtime.backends import BACKENDS, ORT_PROVIDERS, backend_for, load_backend, ort_providers
from edgegan.runtime.capture import open_source
from edgegan.runtime.clip import write_clip
from edgegan.runtime.demo import RunStats

WARMUP = 5  # model calls before timing
PIPELINE_WARMUP = 3  # frames through the pipeline before timing (allocators, runtime caches, first detection)
_MODEL_SUFFIXES = tuple(s for v in BACKENDS.values() for s in v)


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

    @property
    def fps(self) -> float | None:
        return 1000.0 / self.median_ms if self.median_ms else None


def model_files(path: str | Path) -> list[Path]:
    """``path`` itself, or the exported models directly inside a folder (sorted)."""
    path = Path(path)
    if not path.exists():
        raise EdgeGANError(f"--model {path}: no such file or folder")
    if path.is_dir() and path.suffix.lower() not in _MODEL_SUFFIXES:
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in _MODEL_SUFFIXES and not p.name.startswith("."))
        if not files:
            raise EdgeGANError(f"--model {path}: folder holds no exported model ({', '.join(_MODEL_SUFFIXES)})")
        return files
    backend_for(path)  # unknown suffix -> one-line error
    return [path]


def _configs(path: Path, provider: str | None, delegate: str | None) -> list[tuple[str, dict]]:
    kind = backend_for(path)
    if kind == "onnxruntime":
        names = [provider] if provider else [k for k, v in ORT_PROVIDERS.items() if v in ort_providers()]
        return [("onnxruntime", {"provider": p}) for p in names]
    if kind == "litert":
        return [("litert", {"delegate": delegate})] + ([("litert", {})] if delegate else [])
    return [("coreml", {})]


def time_backend(backend, runs: int) -> tuple[float, float]:
    """(median, p90) milliseconds of ``runs`` calls on a fixed random input at the model's size."""
    info = backend.info
    h, w = backend.input_hw(info.input_size, info.input_size)
    rgb = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    x = info.preprocess(rgb)
    for _ in range(WARMUP):
        backend(x)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        backend(x)
        times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(0.9 * len(times)))]


def bench_models(path: str | Path, *, threads: int | None = None, runs: int = 50, provider: str | None = None,
                 delegate: str | None = None) -> list[LatencyRow]:
    rows = []
    for file in model_files(path):
        for backend, kwargs in _configs(file, provider, delegate):
            try:
                b = load_backend(file, backend, threads=threads, **{k: v for k, v in kwargs.items() if v})
            except EdgeGANError as err:
                rows.append(LatencyRow(file.name, "?", backend, str(kwargs.get("provider") or ""), "", note=str(err)))
                continue
            try:
                med, p90 = time_backend(b, runs)
                h, w = b.input_hw(b.info.input_size, b.info.input_size)
                rows.append(LatencyRow(file.name, b.info.precision, backend, b.device, f"{w}x{h}", med, p90))
            finally:
                b.close()
    return rows


def bench_pipeline(model: str | Path, *, source: str | None = None, frames: int = 150, threads: int | None = None,
                   backend: str | None = None, provider: str | None = None, delegate: str | None = None,
                   detector: str = "auto", mode: str = "face", detect_every: int = 3,
                   size: tuple[int, int] = (640, 480)) -> RunStats:
    """End-to-end statistics of the pipeline on ``source`` (default: the built-in clip at ``size``)."""
    from edgegan.runtime import load

    cartoonizer = load(model, backend, mode=mode, detector=detector, threads=threads, provider=provider,
                       delegate=delegate, detect_every=detect_every)
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
    (allocator and runtime warm-up) are not counted."""
    stats = RunStats()
    with open_source(source) as frames:
        start = None
        for frame in frames:
            result = cartoonizer.process_frame(frame.image)
            if frame.index < warmup:
                continue
            start = start or time.perf_counter()
            result.times.capture = frame.capture_ms
            stats.add(result.times, len(result.faces))
            if max_frames and stats.frames >= max_frames:
                break
        stats.seconds = time.perf_counter() - start if start else 0.0
    return stats


def format_latency(rows: list[LatencyRow]) -> str:
    head = (f"{'model':28s} {'prec':5s} {'backend':12s} {'device':24s} {'input':9s} {'median':>9s} {'p90':>9s} "
            f"{'fps':>8s}")
    lines = [head, "-" * len(head)]
    for r in rows:
        if r.median_ms is None:
            lines.append(f"{r.model:28s} {r.precision:5s} {r.backend:12s} {r.device:24s} skipped: {r.note}")
        else:
            lines.append(f"{r.model:28s} {r.precision:5s} {r.backend:12s} {r.device:24s} {r.input:9s} "
                         f"{r.median_ms:7.2f}ms {r.p90_ms:7.2f}ms {r.fps:8.1f}")
    return "\n".join(lines)


def run_bench(model: str | Path, *, threads: int | None = None, runs: int = 50, frames: int = 150,
              source: str | None = None, provider: str | None = None, delegate: str | None = None,
              detector: str = "auto", mode: str = "face", pipeline_model: str | None = None) -> dict:
    """Both benchmarks; returns a JSON-able report (``format_bench`` prints it)."""
    rows = bench_models(model, threads=threads, runs=runs, provider=provider, delegate=delegate)
    runnable = [r for r in rows if r.median_ms is not None]
    if not runnable:
        raise EdgeGANError(f"--model {model}: no backend here can run it ({rows[0].note if rows else 'no model'})")
    e2e_model = Path(pipeline_model) if pipeline_model else _fastest_file(model, runnable)
    stats = bench_pipeline(e2e_model, source=source, frames=frames, threads=threads, provider=provider,
                           delegate=delegate, detector=detector, mode=mode)
    return {"latency": [asdict(r) | {"fps": r.fps} for r in rows], "pipeline_model": str(e2e_model),
            "pipeline": {"source": source or "built-in clip 640x480", "frames": stats.frames, "fps": stats.fps,
                         "faces_per_frame": stats.faces / max(1, stats.frames), "stage_ms": stats.stage_ms()},
            "python": sys.version.split()[0]}


def _fastest_file(model: str | Path, rows: list[LatencyRow]) -> Path:
    path = Path(model)
    best = min(rows, key=lambda r: r.median_ms)
    return path / best.model if path.is_dir() and path.suffix.lower() not in _MODEL_SUFFIXES else path


def format_bench(report: dict) -> str:
    rows = [LatencyRow(**{k: v for k, v in r.items() if k != "fps"}) for r in report["latency"]]
    p = report["pipeline"]
    stages = "  ".join(f"{k} {v:.2f}" for k, v in p["stage_ms"].items())
    return (f"model only (batch 1):\n{format_latency(rows)}\n\n"
            f"end to end: {Path(report['pipeline_model']).name} on {p['source']}, {p['frames']} frames, "
            f"{p['faces_per_frame']:.2f} faces/frame: {p['fps']:.1f} fps\n"
            f"per frame ms: {stages}")
