"""``edgegan eval``: translate the test photos and score them.

One code path scores every model: a :class:`Translator` maps uint8 RGB images to uint8 RGB images,
whatever runs underneath (a training checkpoint in PyTorch today; exported files through the
runtime as those stages land).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgegan.data.images import list_images, load_rgb
from edgegan.data.unpaired import resize_square
from edgegan.errors import EdgeGANError
from edgegan.eval.metrics import paired_scores

log = logging.getLogger(__name__)

DIRECTIONS = {"A2B": ("testA", "testA_gt", "testB"), "B2A": ("testB", "testB_gt", "testA")}


@dataclass
class Translator:
    """A model as the scorer sees it: (N, S, S, 3) uint8 RGB in, the same shape out."""

    name: str
    size: int
    run: Callable[[np.ndarray], np.ndarray]


def load_translator(path: str | Path, direction: str = "A2B", *, device: str = "cpu",
                    batch_size: int = 16) -> Translator:
    """A training checkpoint (run folder, ``checkpoints/``, ``step_*`` or its weights file), or an exported
    model (``.onnx``, ``.tflite``, ``.mlpackage``, OpenVINO ``.xml``) run by ``edgegan.runtime`` with the
    pre/post-processing in its metadata: one scorer for every format. ``demo[:VARIANT]``: the packaged demo model."""
    from edgegan.runtime.formats import MODEL_SUFFIXES
    from edgegan.runtime.packaged import resolve_model

    p = resolve_model(path)
    if not p.exists():
        raise EdgeGANError(f"--model {path}: no such file or folder")
    if p.suffix.lower() in MODEL_SUFFIXES:
        return _exported_translator(p, direction)
    import torch

    from edgegan.data.unpaired import to_model_range
    from edgegan.train.checkpoint import load_generator
    from edgegan.train.samples import to_uint8

    model, ckpt = load_generator(p, direction)
    model.to(device)
    _, spec = ckpt.generator_spec(direction)
    size = ckpt.trained_size(direction)

    @torch.no_grad()
    def run(images: np.ndarray) -> np.ndarray:
        outs = []
        for i in range(0, len(images), batch_size):
            x = torch.from_numpy(to_model_range(images[i:i + batch_size])).to(device)
            y = model(x)
            outs.append(to_uint8(y[0] if isinstance(y, tuple) else y))
        return np.concatenate(outs)

    return Translator(f"{ckpt.path} ({spec['name']}, {direction})", size, run)


def _exported_translator(path: Path, direction: str) -> Translator:
    from edgegan.runtime.backends import load_backend

    if direction != "A2B":
        raise EdgeGANError(f"--direction {direction}: exported models translate photo -> cartoon (A2B) only")
    backend = load_backend(path, exact=True)  # the file's own numbers, not an accelerator's or a bf16 hint's
    info = backend.info
    return Translator(f"{path} ({info.model}, {info.precision}, {backend.label})", info.input_size, backend.translate)


def _load_set(folder: Path, role: str, size: int, names: list[str] | None = None) -> tuple[list[str], np.ndarray]:
    if names is None:
        files = list_images(folder, role=role)
    else:
        files = [folder / n for n in names]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise EdgeGANError(f"{role}: {folder} has no ground truth for {missing[0]} "
                               f"({len(missing)} of {len(files)} missing)")
    images = np.stack([resize_square(load_rgb(f), size) for f in files])
    return [f.name for f in files], images


def evaluate(model: str | Path, data: str | Path, *, direction: str = "A2B", reference: str | Path | None = None,
             fid: bool = True, device: str = "cpu", grid_path: Path | None = None) -> dict:
    """Score ``model`` on ``data``'s test split; returns the report as a dict."""
    if direction not in DIRECTIONS:
        raise EdgeGANError(f"--direction: must be A2B or B2A, got {direction!r}")
    data = Path(data)
    if not data.is_dir():
        raise EdgeGANError(f"--data {data}: not a folder (expected testA/ testB/ [testA_gt/])")
    src_role, gt_role, target_role = DIRECTIONS[direction]
    translator = load_translator(model, direction, device=device)
    size = translator.size
    names, inputs = _load_set(data / src_role, src_role, size)
    outputs = translator.run(inputs)
    report: dict = {"model": translator.name, "direction": direction, "data": str(data), "n": len(names),
                    "size": size}

    gt = None
    if (data / gt_role).is_dir():
        _, gt = _load_set(data / gt_role, gt_role, size, names)
        report["paired"] = {"model": paired_scores(list(outputs), list(gt)),
                            "identity_baseline": paired_scores(list(inputs), list(gt))}
    else:
        log.info("%s: no %s/ folder, skipping paired PSNR/SSIM", data, gt_role)

    ref_out = None
    if reference is not None:
        ref = load_translator(reference, direction, device=device)
        if ref.size != size:
            log.warning("--reference runs at %d px, the model at %d px: comparing at %d px", ref.size, size, size)
        ref_in = inputs if ref.size == size else np.stack([resize_square(im, ref.size) for im in inputs])
        ref_out = ref.run(ref_in)
        if ref.size != size:
            ref_out = np.stack([resize_square(im, size) for im in ref_out])
        report["reference"] = {"model": ref.name, **paired_scores(list(outputs), list(ref_out))}

    if fid:
        if (data / target_role).is_dir():
            report["distribution"] = _distribution_scores(outputs, inputs, data / target_role, target_role, size)
        else:
            log.info("%s: no %s/ folder, skipping FID/KID", data, target_role)

    if grid_path is not None:
        rows = [("input", inputs), ("output", outputs)]
        if gt is not None:
            rows.append(("ground\ntruth", gt))
        if ref_out is not None:
            rows.append(("reference", ref_out))
        _write_grid(grid_path, rows)
        report["grid"] = str(grid_path)
    return report


def _distribution_scores(outputs, inputs, target_dir: Path, target_role: str, size: int) -> dict:
    from edgegan.eval.inception import fid_kid_from_features, inception_features

    _, real = _load_set(target_dir, target_role, size)
    real_f = inception_features(list(real))  # once, for both scores
    return {"model": fid_kid_from_features(inception_features(list(outputs)), real_f),
            "identity_baseline": fid_kid_from_features(inception_features(list(inputs)), real_f)}


def _write_grid(path: Path, rows: list[tuple[str, np.ndarray]], max_cols: int = 8) -> None:
    from edgegan.data.grid import grid
    from edgegan.data.images import save_png_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    save_png_atomic(path, grid([(label, imgs[:max_cols]) for label, imgs in rows]))


def _fmt(x: float | None, digits: int = 2) -> str:
    if x is None:
        return "-"
    return "inf" if math.isinf(x) else f"{x:.{digits}f}"


def format_report(report: dict) -> str:
    """A small table: model vs the identity baseline (output = input) and vs the reference."""
    lines = [f"{report['model']}  on {report['data']} ({report['n']} images, {report['size']} px)"]
    lines.append(f"{'':<22}{'PSNR dB':>9}{'SSIM':>8}{'FID':>9}{'KIDx100':>14}")
    for who in ("model", "identity_baseline"):
        p = report.get("paired", {}).get(who, {})
        d = report.get("distribution", {}).get(who, {})
        kid = f"{_fmt(d.get('kid_x100_mean'))}±{_fmt(d.get('kid_x100_std'))}" if d else "-"
        label = "model vs ground truth" if who == "model" else "identity baseline"
        lines.append(f"{label:<22}{_fmt(p.get('psnr_mean')):>9}{_fmt(p.get('ssim_mean'), 3):>8}"
                     f"{_fmt(d.get('fid')):>9}{kid:>14}")
    if "reference" in report:
        r = report["reference"]
        lines.append(f"{'model vs reference':<22}{_fmt(r.get('psnr_mean')):>9}{_fmt(r.get('ssim_mean'), 3):>8}")
    return "\n".join(lines)
