"""Quantization-aware fine-tuning: the PTQ student learns to match the fp32 student through fake-quant.

Loss: L1 between the quantized student's output and the fp32 (BatchNorm-folded) student's output on
random crops/flips of the calibration photos. Weights and quantizer scales are trained together
(Adam, the U-GAT-IT schedule: constant, then linearly to 0 over the second half). Checkpoints use
the trainers' atomic format (``checkpoints/step_*``), so ``--resume`` continues an interrupted run;
batches are a pure function of (seed, step), so nothing about the data needs saving.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgegan.quantize.calibration import crop_batch
from edgegan.train.checkpoint import Checkpoint, save_checkpoint
from edgegan.train.common import MetricsLog, StepLog, check_finite, due, linear_decay_lr, restore, set_lr

MODULE = "student_int8"
OPTIMIZER = "qat"
PROBE_IMAGES = 16


@dataclass
class QATConfig:
    steps: int = 300
    batch: int = 8
    lr: float = 1e-4
    save_every: int = 100
    log_every: int = 10
    keep_checkpoints: int = 2
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def trainable(model: nn.Module) -> list[nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad and p.is_floating_point()]


@torch.no_grad()
def probe_l1(model: nn.Module, fp32: nn.Module, probe: torch.Tensor) -> float:
    """Mean |int8 - fp32| on a fixed batch of photos: the number QAT should lower."""
    return float(F.l1_loss(model.eval()(probe), fp32(probe)))


def centre_probe(photos: np.ndarray, size: int) -> torch.Tensor:
    """The first photos, centre-cropped to ``size``: float32 (B, 3, size, size) in [-1, 1]."""
    from edgegan.data.unpaired import to_model_range

    h, w = photos.shape[1:3]
    top, left = (h - size) // 2, (w - size) // 2
    return torch.from_numpy(to_model_range(photos[:PROBE_IMAGES, top:top + size, left:left + size]))


def train_qat(model: nn.Module, fp32: nn.Module, photos: np.ndarray, size: int, out: Path, cfg: QATConfig, *,
              resume_from: Checkpoint | None, ckpt_config: dict, ckpt_state: dict, progress: bool = True) -> dict:
    """Fine-tune ``model`` (an NNCF-quantized student) in place; returns ``{"l1_before", "l1_after", ...}``.

    Args:
        photos: uint8 (N, L, L, 3), L >= size: crops of ``size`` are drawn from them.
        resume_from: a checkpoint of this run to continue from (weights, Adam moments, step).
        ckpt_config, ckpt_state: written into every checkpoint (what rebuilds the model on resume).
    """
    fp32 = fp32.eval()
    for p in fp32.parameters():
        p.requires_grad_(False)
    opt = torch.optim.Adam(trainable(model), lr=cfg.lr)
    probe = centre_probe(photos, size)
    start, state = 0, dict(ckpt_state)
    if resume_from is not None:
        start = restore(resume_from, {MODULE: model}, {OPTIMIZER: opt})
        state["l1_before"] = resume_from.state.get("l1_before")
    else:
        state["l1_before"] = probe_l1(model, fp32, probe)
    last = resume_from.path if resume_from is not None else None
    metrics = MetricsLog(out / "metrics.jsonl", resume_step=start if resume_from is not None else None)
    with StepLog(metrics, start=start, iters=cfg.steps, log_every=cfg.log_every, desc="QAT", progress=progress,
                 postfix={"l1": "loss"}) as steplog:
        for step in range(start, cfg.steps):
            lr = linear_decay_lr(step, cfg.steps, cfg.lr)
            set_lr([opt], lr)
            x = torch.from_numpy(crop_batch(photos, size, step, cfg.batch, seed=cfg.seed))  # (B, 3, S, S)
            with torch.no_grad():
                target = fp32(x)
            model.train()
            loss = F.l1_loss(model(x), target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            done = step + 1
            values = {"loss": loss.item()}
            check_finite(values, ["loss"], step=done, last_path=last)
            steplog.step(done, lr, values)
            if due(done, cfg.save_every, cfg.steps):
                last = save_checkpoint(out / "checkpoints", done, modules={MODULE: model}, optimizers={OPTIMIZER: opt},
                                       config=ckpt_config, state=state, keep=cfg.keep_checkpoints)
    model.eval()
    return {"steps": cfg.steps, "resumed_at": start if resume_from is not None else None,
            "l1_before": state["l1_before"], "l1_after": probe_l1(model, fp32, probe),
            "checkpoint": str(last) if last else None, **{k: v for k, v in cfg.to_dict().items() if k != "steps"}}
