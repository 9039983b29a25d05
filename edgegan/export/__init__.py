"""``edgegan export``: one call writes ONNX, TFLite, CoreML and OpenVINO models in fp32/fp16/int8, each checked.

Every written model carries :class:`edgegan.runtime.metadata.ModelInfo` (read back with
``edgegan.runtime.formats.read_model_info``) and has been validated on real photos: ONNX, TFLite and OpenVINO
run here and are compared with PyTorch (PSNR, max-abs; thresholds in :mod:`edgegan.export.validate`),
CoreML gets the structural checks possible off macOS and the numeric ones on a Mac. A model that
fails is moved to ``OUT/failed/`` and reported as failed; only validated models keep their name.

INT8 is NNCF's everywhere (the quantizer's output, or NNCF PTQ run here on calibration photos): QDQ in
ONNX, the same grids as int8 kernels in TFLite and as W8A8 in CoreML (:mod:`edgegan.export.qdq`) and as PT2E q/dq
in ExecuTorch. ncnn, MNN and RKNN cannot take NNCF's grids (symmetric per-tensor activations; MNN folds QDQ into
float ops; rknn-toolkit2 requantizes): they run their own quantizers on the same calibration photos and are held to
NNCF's result, as is ExecuTorch's own quantizer (``--executorch-quantizer xnnpack``). RKNN models run only on a
Rockchip NPU: their parity is measured in rknn-toolkit2's simulator (status ``simulated``).
"""

from __future__ import annotations

import difflib
import importlib.util
import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edgegan import __version__
from edgegan.errors import EdgeGANError
from edgegan.runtime.formats import FORMATS, Format

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class Target:
    """One export target: a format of the runtime's table (suffix, companions, reader), the extra that writes it,
    the packages that extra brings, and the precisions the format has."""

    name: str
    extra: str
    packages: tuple[str, ...]
    precisions: tuple[str, ...] = PRECISIONS

    @property
    def format(self) -> Format:
        return FORMATS[self.name]

    @property
    def install(self) -> str:
        if self.name == "rknn":
            from edgegan.export.rknn import SETUP

            return SETUP
        return f"pip install 'edgegan[{self.extra}]'"


TARGETS = {t.name: t for t in (
    Target("onnx", "export", ("onnx", "onnxruntime", "onnxscript", "onnxslim")),
    Target("tflite", "tflite", ("litert_torch", "ai_edge_litert", "ai_edge_quantizer")),
    Target("coreml", "coreml", ("coremltools",)),
    Target("openvino", "openvino", ("openvino", "onnx", "onnxslim")),
    Target("ncnn", "ncnn", ("pnnx", "ncnn", "onnx", "onnxslim")),
    Target("mnn", "mnn", ("MNN", "_tools", "onnx", "onnxslim")),  # _tools: the converter inside the MNN wheel
    Target("executorch", "executorch", ("executorch",)),
    # rknn-toolkit2 pins numpy/onnx/torch below edgegan's: it lives in an environment of its own (export/rknn.py)
    Target("rknn", "rknn", ("onnx", "onnxslim"), precisions=("fp16", "int8")),
)}
# what a row's status may be: ran here and matched PyTorch / matched PyTorch in the vendor's simulator (cannot
# run here) / structure checked (cannot run here) / did not match or did not convert / not attempted
STATUSES = ("ok", "simulated", "structure-ok", "failed", "skipped")
EXECUTORCH_QUANTIZERS = ("nncf", "xnnpack")
USABLE = ("ok", "simulated", "structure-ok")


@dataclass
class ExportResult:
    """One row of the result table."""

    target: str
    precision: str
    status: str  # one of STATUSES
    path: str = ""
    bytes: int = 0
    parity: dict = field(default_factory=dict)  # psnr_db, max_abs, n vs fp32 PyTorch; int8 also vs NNCF
    threshold_db: float | None = None
    latency_ms: float | None = None
    runtime: str = ""
    seconds: float = 0.0  # conversion + validation
    message: str = ""  # why it failed / was skipped / could not run here

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Job:
    """What a format module converts: the model(s), precision, size and the metadata to embed."""

    model: object  # fp32 nn.Module
    qmodel: object | None  # NNCF's quantized model (int8 only)
    precision: str
    size: int
    info: object  # ModelInfo; the format module fills in layout, names, extras
    path: Path
    calib: str | Path | None = None  # --calib, for targets whose INT8 is their own quantizer's (calibration_photos)
    photos: np.ndarray | None = None  # the validation photos, for targets checked in a simulator at conversion (RKNN)
    rknn_platform: str = "rk3588"
    executorch_quantizer: str = "nncf"  # int8 .pte: NNCF's grids, or ExecuTorch's own XNNPACKQuantizer ("xnnpack")


def missing_packages(target: Target) -> list[str]:
    out = []
    if target.name == "rknn":
        from edgegan.export.rknn import converter_python

        python, why = converter_python()
        out += [why] if python is None else []
    for pkg in target.packages:
        try:
            found = importlib.util.find_spec(pkg) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            out.append(pkg)
    return out


def resolve_targets(names: str | list[str] | tuple[str, ...]) -> tuple[list[str], list[ExportResult]]:
    """(targets to export, rows for targets skipped because their extra is missing).

    Named targets must be installed (else one line naming the extra); ``all`` means every installed one.
    """
    names = [n.strip().lower() for n in ([names] if isinstance(names, str) else names) for n in n.split(",")]
    wanted: list[str] = []
    for n in names:
        if n == "all":
            wanted += [t for t in TARGETS if t not in wanted]
        elif n in TARGETS:
            wanted += [n] if n not in wanted else []
        else:
            close = difflib.get_close_matches(n, [*TARGETS, "all"], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise EdgeGANError(f"--target {n!r}: unknown{hint}; choose from {', '.join([*TARGETS, 'all'])}")
    skipped = []
    for name in list(wanted):
        missing = missing_packages(TARGETS[name])
        if not missing:
            continue
        why = f"{', '.join(missing)} not installed: {TARGETS[name].install}"
        if "all" not in names:
            raise EdgeGANError(f"--target {name}: {why}")
        wanted.remove(name)
        skipped.append(ExportResult(name, "-", "skipped", message=why))
    return wanted, skipped


def resolve_precisions(names: str | list[str] | tuple[str, ...]) -> list[str]:
    names = [n.strip().lower() for n in ([names] if isinstance(names, str) else names) for n in n.split(",")]
    out = []
    for n in names:
        if n == "all":
            out += [p for p in PRECISIONS if p not in out]
        elif n in PRECISIONS:
            out += [n] if n not in out else []
        else:
            raise EdgeGANError(f"--precision {n!r}: choose from {', '.join(PRECISIONS)} (or all)")
    return out


def _module(target: str):
    from edgegan.export import coreml, executorch, mnn, ncnn, onnx, openvino, rknn, tflite

    return {"onnx": onnx, "tflite": tflite, "coreml": coreml, "openvino": openvino, "ncnn": ncnn, "mnn": mnn,
            "executorch": executorch, "rknn": rknn}[target]


def export(
    model: str | Path, targets: str | list[str] = "all", precisions: str | list[str] = "fp32", *,
    size: int | None = None, out: str | Path = "exports", photos: str | Path | None = None,
    calib: str | Path | None = None, threads: int = 1, runs: int = 20, rknn_platform: str = "rk3588",
    executorch_quantizer: str = "nncf",
) -> list[ExportResult]:
    """Export ``model`` to every (target, precision), validate each, and write ``out/export.json``.

    Args:
        model: a teacher or student checkpoint (run folder, ``step_*``, weights file) or the quantizer's
            output (its folder or ``student_int8.safetensors``).
        targets: ``onnx``, ``tflite``, ``coreml`` or ``all`` (list or comma-separated).
        precisions: ``fp32``, ``fp16``, ``int8`` or ``all``.
        size: input side in pixels [the size the model was trained at]; a multiple of the network's stride.
        photos: a folder of photos to validate on [8 crops of the demo-data photos].
        calib: INT8 when the model is not already quantized: NNCF PTQ calibration photos
            [36 tiles of the demo-data photos].
        threads, runs: the latency measurement (batch 1, median of ``runs`` calls).
        rknn_platform: the Rockchip chip an RKNN export is compiled for.
        executorch_quantizer: INT8 ``.pte`` from NNCF's grids (``nncf``, as every format that can take them) or
            from ExecuTorch's own XNNPACKQuantizer on the calibration photos (``xnnpack``; held to NNCF's result).

    Returns:
        One :class:`ExportResult` per (target, precision), plus ``skipped`` rows for targets of ``all``
        whose packages are missing. Failed validations are rows with status ``failed``, not exceptions.
    """
    from edgegan.export import validate
    from edgegan.export.source import check_size, load_source

    wanted, results = resolve_targets(targets)
    precs = resolve_precisions(precisions)
    if "rknn" in wanted:
        from edgegan.export.rknn import PLATFORMS

        if rknn_platform not in PLATFORMS:
            raise EdgeGANError(f"--rknn-platform {rknn_platform!r}: choose from {', '.join(PLATFORMS)}")
    if executorch_quantizer not in EXECUTORCH_QUANTIZERS:
        raise EdgeGANError(f"--executorch-quantizer {executorch_quantizer!r}: choose from "
                           f"{', '.join(EXECUTORCH_QUANTIZERS)}")
    if wanted and not any(p in TARGETS[t].precisions for t in wanted for p in precs):
        raise EdgeGANError(f"--precision {','.join(precs)}: {', '.join(wanted)} has none of it (its precisions: "
                           f"{', '.join(TARGETS[wanted[0]].precisions)})")
    for flag, value in (("--threads", threads), ("--runs", runs)):
        if value < 1:
            raise EdgeGANError(f"{flag}: must be >= 1, got {value}")
    src = load_source(model)
    size = size or src.trained_size
    check_size(src, size)
    if "int8" in precs and wanted and src.quantized is None and _has_per_image_norm(src.model):
        raise EdgeGANError(f"--precision int8: {src.name} normalises per image (instance/layer norm), which INT8 "
                           "makes slower and worse and the converters cannot lower; export fp32/fp16, or INT8 a "
                           "distilled student (edgegan distill, then edgegan quantize)")
    if photos is not None:
        images = validate.folder_photos(photos, size, limit=32, min_images=1, role="--photos")
    else:
        images = validate.demo_photos(size)
    qmodel, int8_from = _int8_model(src, size, calib) if "int8" in precs and wanted else (None, "")

    import torch

    from edgegan.data.unpaired import to_model_range

    x = to_model_range(images)
    with torch.no_grad():
        ref = validate.run_batched(lambda b: src.model(torch.from_numpy(b)).numpy(), x)
        nncf_ref = validate.run_batched(lambda b: qmodel(torch.from_numpy(b)).numpy(), x) if qmodel else None
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise EdgeGANError(f"--out {out}: cannot create the folder ({err.strerror or err})") from err
    from edgegan.runtime.metadata import ModelInfo

    base = ModelInfo(model=src.name, input_size=size, precision="fp32", stride=src.stride,
                     edgegan_version=__version__, source=str(src.quantized_file or src.path),
                     source_sha256=src.sha256, extra={"kwargs": src.kwargs, "trained_size": src.trained_size})
    cache: dict = {}
    for target in wanted:
        for precision in precs:
            if precision not in TARGETS[target].precisions:
                results.append(ExportResult(target, precision, "skipped", message=f"{target} has no {precision} "
                                            f"(its precisions: {', '.join(TARGETS[target].precisions)})"))
                continue
            info = ModelInfo(**{**asdict(base), "precision": precision,
                                "extra": {**base.extra, **({"int8_from": int8_from} if precision == "int8" else {})}})
            job = Job(src.model, qmodel, precision, size, info, out / _file_name(src.name, size, precision, target),
                      calib, images, rknn_platform, executorch_quantizer)
            results.append(_export_one(target, job, images, ref, nncf_ref, threads, runs, cache))
    _write_report(out / "export.json", results, {
        "model": str(src.path), "name": src.name, "source_sha256": src.sha256, "size": size, "int8_from": int8_from,
        "threads": threads,
        "photos": str(photos) if photos else "demo photos (scikit-image)"})
    return results


def _write_report(path: Path, results: list[ExportResult], run: dict) -> None:
    """``export.json``: this run's rows, plus earlier rows whose models are still in the folder (so several
    calls into one folder, e.g. fp32 everywhere then INT8 for one target, leave one index of its files)."""
    import json

    from edgegan.io_utils import write_json_atomic

    rows = [{**r.to_dict(), **run} for r in results]
    done = {(r["target"], r["precision"]) for r in rows}
    try:
        earlier = json.loads(path.read_text()).get("results", [])
    except (OSError, ValueError, AttributeError):
        earlier = []
    kept = [r for r in earlier if isinstance(r, dict) and (r.get("target"), r.get("precision")) not in done
            and r.get("status") in USABLE and r.get("path") and Path(r["path"]).exists()]
    write_json_atomic(path, {"format": "edgegan-export-v1", "results": kept + rows})


def _has_per_image_norm(model) -> bool:
    from torch import nn

    from edgegan.models.layers import ILN, AdaLIN

    return any(isinstance(m, (nn.InstanceNorm2d, nn.GroupNorm, nn.LayerNorm, AdaLIN, ILN)) for m in model.modules())


def _file_name(name: str, size: int, precision: str, target: str) -> str:
    return f"{name}_{size}px_{precision}{FORMATS[target].suffix}"


def _int8_model(src, size: int, calib):
    """NNCF's INT8 model: the quantizer's, or PTQ here with the quantizer's default recipe."""
    if src.quantized is not None:
        return src.quantized, f"the quantizer's output {src.quantized_file}"
    from edgegan.data.unpaired import to_model_range
    from edgegan.quantize.nncf_int8 import Recipe, ptq, setup_nncf

    setup_nncf()  # the missing-extra message before any work
    photos, where = calibration_photos(size, calib)
    recipe = Recipe()
    children = dict(src.model.named_children())
    if not all(m in children for m in recipe.fp32_modules):
        recipe = Recipe(fp32_modules=())  # not a mobile student: quantize everything NNCF can
    log.info("INT8: NNCF PTQ (%s preset) on %d %s", recipe.preset, len(photos), where)
    return ptq(src.model, to_model_range(photos), recipe), f"NNCF PTQ here on {len(photos)} photos ({where})"


def calibration_photos(size: int, calib: str | Path | None) -> tuple[np.ndarray, str]:
    """(INT8 calibration photos, (N, size, size, 3) uint8 RGB; where they came from): ``--calib``'s folder, else
    the demo-photo tiles. NNCF's PTQ and the targets' own quantizers (ncnn, MNN, RKNN, ExecuTorch's) calibrate on
    these."""
    from edgegan.export import validate

    if calib is not None:
        return validate.folder_photos(calib, size, limit=300, min_images=8, role="--calib"), str(calib)
    return validate.demo_calibration(size), "demo-photo tiles"


def save_calibration_photos(job, folder: Path) -> tuple[list[Path], str]:
    """The calibration photos as PNG files in a new ``folder``, for converters that read images from disk (MNN's and
    rknn-toolkit2's quantizers): (their paths, where they came from)."""
    import cv2

    photos, where = calibration_photos(job.size, job.calib)
    folder.mkdir()
    paths = [folder / f"{i:04d}.png" for i in range(len(photos))]
    for path, rgb in zip(paths, photos):
        cv2.imwrite(str(path), rgb[..., ::-1])
    return paths, where


def _export_one(target: str, job: Job, images: np.ndarray, ref: np.ndarray, nncf_ref: np.ndarray | None,
                threads: int, runs: int, cache: dict) -> ExportResult:
    """Write one file, then check it the way users run it: opened by the runtime's loader (on the CPU, at the
    file's own precision), its outputs on the photos compared with PyTorch's, its latency timed."""
    from edgegan.export import validate
    from edgegan.runtime.backends import cannot_run_here, load_backend
    from edgegan.runtime.formats import read_model_info
    from edgegan.runtime.quality import compare
    from edgegan.runtime.timing import median_ms

    fmt = _module(target)
    companions = TARGETS[target].format.companions
    final = job.path
    job.path = final.with_name(f".{final.stem}.partial{final.suffix}")  # the suffix tells readers the format
    _remove(job.path, companions)
    result = ExportResult(target, job.precision, "failed", str(final))
    t0 = time.perf_counter()
    backend = None
    try:
        info = fmt.write(job, cache)
        problems = fmt.structure(job.path, job, info)
        if read_model_info(job.path) != info:
            problems.append("metadata read back differs from what was written")
        why_not = cannot_run_here(job.path)
        simulate = getattr(fmt, "simulated", None)
        y = None
        if why_not is None:
            backend = load_backend(job.path, threads=threads, exact=True)
            result.runtime = f"{backend.name} ({backend.device})"
            y = validate.run_batched(backend, info.preprocess(images))
            if info.layout == "NHWC":
                y = y.transpose(0, 3, 1, 2)
        elif simulate is not None:
            y, result.runtime = simulate(job, cache)
            result.message = f"parity in {result.runtime}: {why_not}"
        else:
            result.message = f"parity not run: {why_not} (structure checked here; parity runs where it can)"
        if y is not None:
            parity = compare(y, ref)
            result.parity = parity.to_dict()
            if job.precision == "int8":
                expected = compare(nncf_ref, ref)
                result.threshold_db = round(validate.int8_floor(expected), 2)
                result.parity["nncf_torch_psnr_db"] = expected.to_dict()["psnr_db"]
                result.parity["vs_nncf_torch"] = compare(y, nncf_ref).to_dict()
            else:
                result.threshold_db = validate.MIN_PSNR[job.precision]
            if parity.psnr_db < result.threshold_db:
                problems.append(f"PSNR {parity.psnr_db:.1f} dB vs PyTorch < {result.threshold_db:.1f} dB")
        if backend is not None:
            x1 = info.preprocess(images[:1])
            result.latency_ms = round(median_ms(lambda: backend(x1), runs, warmup=3), 3)
        if problems:
            raise EdgeGANError("; ".join(problems))
        if backend is not None:
            backend.close()  # before the move: some runtimes hold the file open
            backend = None
        _remove(final, companions)
        _move(job.path, final, companions)
        result.status = "ok" if why_not is None else "simulated" if y is not None else "structure-ok"
    except EdgeGANError as err:
        result.message = str(err)
    except Exception as err:
        result.message = f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"
    finally:
        if backend is not None:
            backend.close()
    if result.status == "failed":
        _remove(final, companions)  # never leave an older model under the name of one that just failed
        if job.path.exists():
            failed = final.parent / "failed" / final.name
            failed.parent.mkdir(exist_ok=True)
            _remove(failed, companions)
            _move(job.path, failed, companions)
            result.path = str(failed)
        else:
            result.path = ""
        log.warning("%s %s: FAILED: %s", target, job.precision, result.message)
    result.bytes = sum(_size(Path(result.path).with_suffix(s)) for s in (Path(result.path).suffix, *companions)) \
        if result.path else 0
    result.seconds = round(time.perf_counter() - t0, 2)
    job.path = final
    return result


def _remove(path: Path, companions: tuple[str, ...] = ()) -> None:
    for p in (path, *(path.with_suffix(s) for s in companions)):
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif p.exists() or p.is_symlink():
            p.unlink()


def _move(src: Path, dst: Path, companions: tuple[str, ...] = ()) -> None:
    """Companions first: a reader that finds the model file finds its weights next to it."""
    for suffix in companions:
        if src.with_suffix(suffix).exists():
            os.replace(src.with_suffix(suffix), dst.with_suffix(suffix))
    os.replace(src, dst)


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size if path.exists() else 0


def _fmt_bytes(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB" if n else "-"


def format_table(results: list[ExportResult]) -> str:
    """The result table: format, precision, status, size, parity, latency, path."""
    rows = [("format", "precision", "status", "size", "parity vs PyTorch", "latency", "path")]
    for r in results:
        if r.parity:
            psnr = r.parity.get("psnr_db")
            db = "inf" if psnr is None else f"{psnr:.1f}"
            parity = f"{db} dB (>= {r.threshold_db:.1f}), max {r.parity['max_abs']:.2g}"
        else:
            parity = "-"
        latency = f"{r.latency_ms:.2f} ms" if r.latency_ms is not None else "-"
        rows.append((r.target, r.precision, r.status, _fmt_bytes(r.bytes), parity, latency, r.path or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes = [f"{r.target} {r.precision}: {r.message}" for r in results if r.message]
    return "\n".join(lines + ([""] + notes if notes else []))
