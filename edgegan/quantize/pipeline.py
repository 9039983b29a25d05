"""``edgegan quantize``: student checkpoint -> INT8 (PTQ or QAT) -> QDQ ONNX + report.

The output folder holds
    student_fp32.onnx           the BatchNorm-folded fp32 student (the reference; same exporter)
    student_int8.onnx           QDQ, int8 weights, uint8 activations: runs in onnxruntime (and OpenVINO)
    student_int8.safetensors    the quantized torch model (weights + quantizer scales, NNCF layout in
                                the metadata): ``load_quantized`` rebuilds it, the per-target exports
                                start from it or from student_int8.onnx
    report.json                 sizes, PSNR/SSIM (INT8 vs fp32, vs ground truth, vs teacher), latency
    checkpoints/ metrics.jsonl  QAT only: resumable fine-tuning
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import torch

from edgegan.data.unpaired import resize_square, to_model_range
from edgegan.errors import EdgeGANError
from edgegan.quantize.calibration import DEFAULT_IMAGES, load_photos
from edgegan.quantize.nncf_int8 import Recipe

log = logging.getLogger(__name__)

METHODS = ("ptq", "qat")
FILES = {"fp32": "student_fp32.onnx", "int8": "student_int8.onnx", "torch": "student_int8.safetensors",
         "report": "report.json"}


def _student(path: str | Path):
    from torch import nn

    from edgegan.models.mobile import fold_batchnorm
    from edgegan.train.checkpoint import load_generator

    if not Path(path).exists():
        raise EdgeGANError(f"--model {path}: no such file or folder (expected a student checkpoint)")
    net, ckpt = load_generator(path, "A2B")
    _, spec = ckpt.generator_spec("A2B")
    size = ckpt.trained_size("A2B")
    with torch.no_grad():
        y = net.eval()(torch.zeros(1, 3, size, size))
    if not isinstance(y, torch.Tensor):
        raise EdgeGANError(f"--model {path}: its A2B generator ({spec['name']}) returns {type(y).__name__}, not an "
                           "image; INT8 is for the distilled students (mobile-s/m/l)")
    if any(isinstance(m, (nn.InstanceNorm2d, nn.GroupNorm, nn.LayerNorm)) for m in net.modules()):
        log.warning("%s: per-image normalisation layers quantize badly and run slower in INT8 "
                    "(shared/README); quantize a distilled mobile student instead", path)
    return fold_batchnorm(net), {"name": spec["name"], "kwargs": spec["kwargs"]}, size, ckpt


def _model_info(spec: dict, size: int, precision: str, checkpoint: Path):
    """The metadata every EdgeGAN model file carries (so the runtime, eval and bench open these files too)."""
    from edgegan import __version__
    from edgegan.runtime.metadata import ModelInfo

    return ModelInfo(model=spec["name"], input_size=size, precision=precision, dynamic_size=True,
                     edgegan_version=__version__, source=str(checkpoint), extra={"kwargs": spec["kwargs"]})


def _eval_photos(data: Path | None, calib, size: int):
    """(names, uint8 photos, ground truth or None, where from): ``data/testA`` (+ ``testA_gt``) or calibration."""
    from edgegan.data.images import load_rgb

    if data is None:
        return calib.names, calib.images, None, f"{calib.folder} (calibration photos; pass --data for held-out ones)"
    data = Path(data)
    if not data.is_dir():
        raise EdgeGANError(f"--data {data}: not a folder (expected testA/ [testA_gt/])")
    test = load_photos(data / "testA", size, limit=10_000, min_images=1, role="testA")
    gt = None
    if (data / "testA_gt").is_dir():
        missing = [n for n in test.names if not (data / "testA_gt" / n).is_file()]
        if missing:
            raise EdgeGANError(f"testA_gt: {data / 'testA_gt'} has no ground truth for {missing[0]}")
        gt = np.stack([resize_square(load_rgb(data / "testA_gt" / n), size) for n in test.names])
    return test.names, test.images, gt, str(test.folder)


def _teacher_outputs(teacher: str | Path, images: np.ndarray, size: int) -> tuple[str, np.ndarray]:
    from edgegan.eval.evaluate import load_translator

    tr = load_translator(teacher, "A2B")
    x = images if tr.size == size else np.stack([resize_square(im, tr.size) for im in images])
    y = tr.run(x)
    if tr.size != size:
        y = np.stack([resize_square(im, size) for im in y])
    return tr.name, y


@torch.no_grad()
def _torch_outputs(model, images: np.ndarray, batch: int = 8) -> np.ndarray:
    from edgegan.train.samples import to_uint8

    return np.concatenate([to_uint8(model.eval()(torch.from_numpy(to_model_range(images[i:i + batch]))))
                           for i in range(0, len(images), batch)])


def quantize_student(
    model: str | Path, calib: str | Path, out: str | Path, *, method: str = "ptq", data: str | Path | None = None,
    teacher: str | Path | None = None, calib_images: int = DEFAULT_IMAGES, recipe: Recipe | None = None,
    qat=None, resume: bool = False, latency_size: int = 256, threads: int = 1, runs: int = 30,
    progress: bool = True,
) -> dict:
    """Quantize a student checkpoint to INT8 and write the models and the report into ``out``.

    Args:
        model: a student run folder / checkpoint (its A2B generator; BatchNorm is folded first).
        calib: a folder of real domain-A photos (e.g. the data's ``trainA/``).
        method: ``ptq`` (post-training) or ``qat`` (PTQ, then fine-tuning through fake-quant).
        data: a data folder whose ``testA/`` (and ``testA_gt/``) score the result; else the calibration photos.
        teacher: a teacher checkpoint to score the fp32 and INT8 students against.
        calib_images: how many calibration photos (spread over the folder) to use.
        qat: a :class:`edgegan.quantize.qat.QATConfig` (steps, batch, lr, ...).
        resume: QAT: continue from the newest checkpoint in ``out``.
        latency_size, threads, runs: the onnxruntime timing (batch 1, fp32 and INT8 interleaved, median).

    Returns:
        The report (also written to ``out/report.json``).
    """
    from edgegan.eval.metrics import paired_scores
    from edgegan.io_utils import write_json_atomic
    from edgegan.quantize import nncf_int8, onnx_qdq
    from edgegan.quantize.qat import QATConfig, train_qat
    from edgegan.runtime.backends import load_backend
    from edgegan.runtime.timing import time_interleaved
    from edgegan.train.common import prepare_out_dir, resume_point

    if method not in METHODS:
        raise EdgeGANError(f"--method: must be ptq or qat, got {method!r}")
    if latency_size < 4 or latency_size % 4:
        raise EdgeGANError(f"--latency-size: must be a positive multiple of 4, got {latency_size}")
    for flag, value in (("--threads", threads), ("--runs", runs)):
        if value < 1:
            raise EdgeGANError(f"{flag}: must be >= 1, got {value}")
    recipe = recipe or Recipe()
    qat = qat or QATConfig()
    if method == "qat" and (qat.steps < 1 or qat.batch < 1):
        raise EdgeGANError(f"--qat-steps and --qat-batch must be >= 1, got {qat.steps} and {qat.batch}")
    nncf_int8.setup_nncf()  # the missing-extra error before any work
    fp32, spec, size, ckpt = _student(model)
    photos = load_photos(calib, size, limit=calib_images)
    log.info("calibration: %d photos from %s at %d px", len(photos), calib, size)
    names, images, gt, where = _eval_photos(data, photos, size)
    if teacher is not None and not Path(teacher).exists():
        raise EdgeGANError(f"--teacher {teacher}: no such file or folder")
    # the teacher's outputs first: a teacher that cannot be read fails before calibration and before any write
    teacher_scored = _teacher_outputs(teacher, images, size) if teacher is not None else None
    out = Path(out)
    prepare_out_dir(out, resume=resume)  # only once the inputs are known to be usable
    resume_ckpt = resume_point(out, resume=resume) if method == "qat" else None
    if resume_ckpt is not None:
        if resume_ckpt.config.get("student") != str(ckpt.path):
            raise EdgeGANError(f"--resume: {out} fine-tunes {resume_ckpt.config.get('student')}, not {ckpt.path}; "
                               "choose another --out")
        recipe = Recipe(**resume_ckpt.config["recipe"])  # the structure in the checkpoint is this recipe's
        qmodel = nncf_int8.rebuild(spec, resume_ckpt.state["nncf"])
    else:
        qmodel = nncf_int8.ptq(fp32, to_model_range(photos.images), recipe, progress=progress)
    report: dict = {"method": method, "student": {"checkpoint": str(ckpt.path), **spec}, "size": size,
                    "recipe": recipe.to_dict(),
                    "calibration": {"folder": str(photos.folder), "n": len(photos), "skipped": len(photos.skipped)}}
    if method == "qat":
        qat_photos = load_photos(calib, round(size * 286 / 256), limit=calib_images).images
        config = {"method": "qat", "student": str(ckpt.path), "calib": str(calib), "size": size,
                  "recipe": recipe.to_dict(), "qat": qat.to_dict()}
        state = {"nncf": nncf_int8.nncf_config(qmodel), "student_spec": spec}
        report["qat"] = train_qat(qmodel, fp32, qat_photos, size, out, qat, resume_from=resume_ckpt,
                                  ckpt_config=config, ckpt_state=state, progress=progress)

    paths = {k: out / v for k, v in FILES.items()}
    nncf_int8.save_quantized(qmodel, paths["torch"], nncf_int8.QuantizedSpec(spec, size, recipe.to_dict()))
    for key, net in (("fp32", fp32), ("int8", qmodel)):
        nncf_int8.export_onnx(net, paths[key], size, qdq=key == "int8", info=_model_info(spec, size, key, ckpt.path))
    sizes = {k: paths[k].stat().st_size for k in ("fp32", "int8", "torch")}
    report["files"] = {"fp32_onnx": str(paths["fp32"]), "int8_onnx": str(paths["int8"]),
                       "int8_torch": str(paths["torch"]), "bytes": sizes,
                       "int8_vs_fp32_size": sizes["int8"] / sizes["fp32"]}
    # what onnxruntime makes of the QDQ graph: integer kernels (QLinearConv/QLinearAdd) vs float islands
    report["int8_graph_in_onnxruntime"] = onnx_qdq.op_counts(paths["int8"], optimized=True, threads=threads)

    # quality: everything through the runtime's loader (onnxruntime's CPU provider), on the same photos
    models = {k: load_backend(paths[k], threads=threads, exact=True) for k in ("fp32", "int8")}
    outs = {k: m.translate(images) for k, m in models.items()}
    quality = {"photos": where, "n": len(names),
               "int8_vs_fp32": paired_scores(list(outs["int8"]), list(outs["fp32"])),
               "int8_ort_vs_torch": paired_scores(list(outs["int8"]), list(_torch_outputs(qmodel, images)))}
    if gt is not None:
        quality["fp32_vs_gt"] = paired_scores(list(outs["fp32"]), list(gt))
        quality["int8_vs_gt"] = paired_scores(list(outs["int8"]), list(gt))
    if teacher is not None:
        quality["teacher"], t_out = teacher_scored
        quality["fp32_vs_teacher"] = paired_scores(list(outs["fp32"]), list(t_out))
        quality["int8_vs_teacher"] = paired_scores(list(outs["int8"]), list(t_out))
    report["quality"] = quality

    # latency: both sessions, one call each in turn, on a real photo
    x = to_model_range(resize_square(images[0], latency_size)[None])
    runners = {k: (lambda m=m: m(x)) for k, m in models.items()}
    ms = time_interleaved(runners, runs)
    for m in models.values():
        m.close()
    report["latency"] = {"runtime": "onnxruntime CPU EP", "graph_optimization": "all", "size": latency_size,
                         "batch": 1, "threads": threads, "runs": runs, "fp32_ms": ms["fp32"], "int8_ms": ms["int8"],
                         "int8_vs_fp32": ms["int8"] / ms["fp32"]}
    write_json_atomic(paths["report"], report)
    return report


def _f(x: float | None, digits: int = 2) -> str:
    if x is None:
        return "-"
    return "inf" if math.isinf(x) else f"{x:.{digits}f}"


def format_report(report: dict) -> str:
    """The printed table: size, quality and latency of INT8 next to fp32."""
    q, lat, files = report["quality"], report["latency"], report["files"]
    b = files["bytes"]
    lines = [(f"{report['method'].upper()} INT8 of {report['student']['checkpoint']} ({report['student']['name']}, "
             f"{report['size']} px); calibration: {report['calibration']['n']} photos"),
             f"quality on {q['n']} photos from {q['photos']}",
             f"{'':<26}{'PSNR dB':>9}{'SSIM':>8}"]

    def row(label: str, key: str) -> None:
        if key in q:
            lines.append(f"{label:<26}{_f(q[key]['psnr_mean']):>9}{_f(q[key]['ssim_mean'], 3):>8}")

    row("INT8 vs fp32", "int8_vs_fp32")
    row("fp32 vs ground truth", "fp32_vs_gt")
    row("INT8 vs ground truth", "int8_vs_gt")
    row("fp32 vs teacher", "fp32_vs_teacher")
    row("INT8 vs teacher", "int8_vs_teacher")
    row("INT8 ORT vs NNCF torch", "int8_ort_vs_torch")
    lines.append(f"size:     fp32 {b['fp32'] / 1024:.1f} KiB, INT8 {b['int8'] / 1024:.1f} KiB "
                 f"({100 * files['int8_vs_fp32_size']:.0f}% of fp32)")
    lines.append(f"latency:  onnxruntime CPU, 1x3x{lat['size']}x{lat['size']}, {lat['threads']} thread(s), median "
                 f"of {lat['runs']} interleaved: fp32 {lat['fp32_ms']:.2f} ms, INT8 {lat['int8_ms']:.2f} ms "
                 f"(INT8/fp32 {lat['int8_vs_fp32']:.2f})")
    if "qat" in report:
        t = report["qat"]
        lines.append(f"QAT:      {t['steps']} steps, L1 to fp32 on a fixed batch {t['l1_before']:.4f} -> "
                     f"{t['l1_after']:.4f}")
    lines.append(f"files:    {files['int8_onnx']}, {files['int8_torch']}, {files['fp32_onnx']}")
    return "\n".join(lines)
