"""The distillation trainer: a frozen teacher (A->B) teaches a small student on photos of domain A.

Read it top to bottom — config, networks, loss, one step, samples, the loop — like the U-GAT-IT
trainer, whose loop machinery it shares (``edgegan.train.common``: resume, metrics, progress,
prefetch, NaN guard, cadence; ``edgegan.train.checkpoint``: atomic checkpoints).

The student learns the teacher's function, not the data (GAN Compression, Li et al., CVPR 2020):
- pixel: L1 between the student's and the teacher's translation of the same photo;
- feature: MSE between the teacher's intermediate features and the student's, mapped to the
  teacher's channels by learned 1x1 convs (trained with the student, dropped at export);
- adversarial, off by default: the teacher's own domain-B discriminators, frozen and in eval
  mode, LSGAN generator term on the student's outputs. No discriminator is trained.
The student trains with BatchNorm in train mode (hence batch 8, not U-GAT-IT's 1) and is saved
unfolded; ``fold_batchnorm`` merges the BN into the convs at export.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from edgegan.data.unpaired import UnpairedData
from edgegan.errors import CheckpointError, EdgeGANError
from edgegan.io_utils import write_json_atomic
from edgegan.models import create_model
from edgegan.models.ugatit import UGATITGenerator
from edgegan.train import samples
from edgegan.train.checkpoint import load_generator, load_weights, read_checkpoint, save_checkpoint
from edgegan.train.common import (
    MetricsLog,
    Prefetcher,
    Runtime,
    StepLog,
    adam,
    backward_step,
    check_finite,
    due,
    linear_decay_lr,
    prepare_out_dir,
    restore,
    resume_point,
    set_lr,
    set_requires_grad,
    setup_runtime,
)
from edgegan.train.config import DistillConfig, saved_run_config
from edgegan.train.ugatit import generator_adv_loss

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- config
# DistillConfig lives in edgegan.train.config (torch-free: the CLI's --help reads its defaults).
# Fields that define the networks and what they learn: a run only resumes under the same values.
ARCH_FIELDS = ("teacher", "student", "student_kwargs", "size")


def resolve_config(*, out: str, overrides: dict, resume: bool) -> DistillConfig:
    """The config a ``distill`` call means: on ``--resume`` the saved one (only non-architecture
    flags may change, e.g. ``--iters``); otherwise the defaults with ``overrides``. The teacher is
    pinned to one checkpoint folder, so a teacher run that trains on cannot change a resumed student."""
    overrides = dict(overrides)
    if overrides.get("teacher"):
        overrides["teacher"] = str(_teacher_checkpoint(overrides["teacher"]))
    if "student_kwargs" in overrides:  # compared with a saved run's as resolved, skip default included
        teacher = overrides.get("teacher") or (_saved_teacher(out) if resume else "")
        overrides["student_kwargs"] = default_student_skip(overrides["student_kwargs"], teacher)
    base = saved_run_config(DistillConfig, out, overrides, ARCH_FIELDS, verb="distilled") if resume else None
    if base is not None:
        return validate(dataclasses.replace(base, **overrides, out=out))
    cfg = DistillConfig(**{**overrides, "out": out})
    if not cfg.teacher:
        raise EdgeGANError("--teacher: required (a run folder or checkpoint with an A2B generator)")
    if not cfg.data:
        raise EdgeGANError("--data: required (a folder with trainA/)")
    cfg.student_kwargs = default_student_skip(cfg.student_kwargs, cfg.teacher)
    return validate(cfg)


def default_student_skip(student_kwargs: dict, teacher: str) -> dict:
    """``student_kwargs`` with ``skip=True`` added when the teacher has the identity-start skip and the
    user did not say: such a teacher passes full-resolution detail through its skip, and a student
    without one must rebuild it from 1/4 resolution, which caps how close it can get."""
    if "skip" in student_kwargs or not teacher or not teacher_skips(teacher):
        return dict(student_kwargs)
    return {**student_kwargs, "skip": True}


def _saved_teacher(out: str) -> str:
    import json

    try:
        return json.loads((Path(out) / "config.json").read_text()).get("teacher", "")
    except (OSError, ValueError):
        return ""


def teacher_skips(teacher: str) -> bool:
    """Whether the teacher's A2B generator has the identity-start skip (EdgeGAN's recipe)."""
    _, spec = read_checkpoint(teacher).generator_spec("A2B")
    return bool(spec.get("kwargs", {}).get("skip"))


def _teacher_checkpoint(path: str) -> Path:
    try:
        ckpt = read_checkpoint(path)
    except CheckpointError as err:
        raise CheckpointError(f"--teacher: {err}") from err
    if "A2B" not in (ckpt.state.get("translators") or {}):
        have = ", ".join(ckpt.state.get("translators") or {}) or "none"
        raise CheckpointError(f"--teacher: {ckpt.path} has no A2B generator (directions: {have})")
    return ckpt.path


def validate(cfg: DistillConfig) -> DistillConfig:
    checks = [
        (cfg.size == 0 or (cfg.size >= 32 and cfg.size % 4 == 0), "--size",
         f"must be a multiple of 4 and >= 32, got {cfg.size}"),
        (cfg.iters >= 1, "--iters", f"must be >= 1, got {cfg.iters}"),
        (cfg.batch >= 2, "--batch", f"must be >= 2 (the student trains BatchNorm), got {cfg.batch}"),
        (cfg.lr > 0, "--lr", f"must be > 0, got {cfg.lr}"),
        (min(cfg.pixel_weight, cfg.feature_weight, cfg.adv_weight) >= 0, "--pixel/feature/adv-weight",
         "must be >= 0"),
        (cfg.save_every >= 1, "--save-every", f"must be >= 1, got {cfg.save_every}"),
        (cfg.sample_every >= 0, "--sample-every", f"must be >= 0 (0 = off), got {cfg.sample_every}"),
        (cfg.log_every >= 1, "--log-every", f"must be >= 1, got {cfg.log_every}"),
        (cfg.precision in ("auto", "fp32", "bf16", "fp16"), "--precision",
         f"must be auto, fp32, bf16 or fp16, got {cfg.precision!r}"),
    ]
    for ok, flag, msg in checks:
        if not ok:
            raise EdgeGANError(f"{flag}: {msg}")
    student = _build_student(cfg)  # an unknown name fails here, before anything is written
    if cfg.feature_weight > 0 and not hasattr(student, "forward_features"):
        raise EdgeGANError(f"--student {cfg.student}: has no forward_features() to distil features into; "
                           "pass --feature-weight 0")
    return cfg


def _build_student(cfg: DistillConfig, size: int | None = None) -> nn.Module:
    try:
        return create_model(cfg.student, **student_kwargs(cfg, size or cfg.size or 256))
    except EdgeGANError as err:
        raise EdgeGANError(f"--student: {err}") from err


def student_kwargs(cfg: DistillConfig, size: int) -> dict:
    return {**cfg.student_kwargs, "img_size": size}


# ---------------------------------------------------------------- networks
# Which student feature learns which teacher feature (GAN Compression distils a few layers in the
# middle of the network). Student: MobileGenerator.feature_info entries; teacher: U-GAT-IT modules.
STUDENT_TAPS = (1, 2, 3)  # middle of the blocks (1/4), end of the blocks (1/4), first up-sampling (1/2)


def teacher_tap_modules(teacher: UGATITGenerator) -> list[nn.Module]:
    """The CAM-attended bottleneck (ngf*4, 1/4), the AdaLIN decoder's output (ngf*4, 1/4) and the
    first up-sampling block (ngf*2, 1/2): the teacher's layers matching ``STUDENT_TAPS``."""
    first_up_act = next(m for m in teacher.decoder if isinstance(m, nn.ReLU))
    return [teacher.cam, teacher.res_blocks[-1], first_up_act]


class FrozenTeacher(nn.Module):
    """The teacher in eval mode without gradients; ``forward`` gives its image and tapped features."""

    def __init__(self, generator: nn.Module, *, taps: bool):
        super().__init__()
        self.generator = generator.eval()
        set_requires_grad([generator], False)
        if taps and not isinstance(generator, UGATITGenerator):
            raise EdgeGANError(f"--feature-weight: feature distillation needs a U-GAT-IT teacher, this one is a "
                               f"{type(generator).__name__}; pass --feature-weight 0")
        self.taps = teacher_tap_modules(generator) if taps else []

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        feats: list[torch.Tensor | None] = [None] * len(self.taps)

        def keep(i: int):
            def hook(_module, _inputs, output):
                feats[i] = output[0] if isinstance(output, tuple) else output
            return hook

        handles = [m.register_forward_hook(keep(i)) for i, m in enumerate(self.taps)]
        try:
            out = self.generator(x)
        finally:
            for h in handles:
                h.remove()
        return (out[0] if isinstance(out, tuple) else out), feats  # (B, 3, H, W), [(B, C_t, h, w)]

    def train(self, mode: bool = True) -> FrozenTeacher:  # stays in eval mode whatever the caller does
        return super().train(False)


def build_projections(student: nn.Module, teacher: FrozenTeacher, size: int) -> nn.ModuleList:
    """One learned 1x1 conv per tap, from the student's channels to the teacher's (GAN Compression)."""
    if not teacher.taps:
        return nn.ModuleList()
    x = torch.zeros(1, 3, size, size)
    _, t_feats = teacher(x)  # shapes only
    s_info = [student.feature_info[i] for i in STUDENT_TAPS]
    return nn.ModuleList([nn.Conv2d(info["channels"], t.shape[1], 1) for info, t in zip(s_info, t_feats)])


def teacher_discriminators(teacher_ckpt: Path) -> list[nn.Module]:
    """The teacher run's domain-B discriminators (global, local), frozen, eval mode."""
    ckpt = read_checkpoint(teacher_ckpt)
    specs = ckpt.state.get("models", {})
    names = ("disc_global_b", "disc_local_b")
    missing = [n for n in names if n not in specs]
    if missing:
        raise CheckpointError(f"--adv-weight: {ckpt.path} holds no {missing[0]} (a U-GAT-IT training run has "
                              "both domain-B discriminators); pass --adv-weight 0")
    discs = {n: create_model(specs[n]["name"], **specs[n]["kwargs"]) for n in names}
    load_weights(ckpt, discs)
    set_requires_grad(discs.values(), False)
    return [d.eval() for d in discs.values()]


# ---------------------------------------------------------------- loss and one step
def feature_loss(s_feats: list[torch.Tensor], t_feats: list[torch.Tensor], projections: nn.ModuleList) -> torch.Tensor:
    """Mean over taps of MSE(proj(student feature), teacher feature); resized if the strides differ."""
    total = 0.0
    for s, t, proj in zip(s_feats, t_feats, projections):
        p = proj(s)  # (B, C_t, h_s, w_s)
        if p.shape[-2:] != t.shape[-2:]:
            p = F.interpolate(p, size=t.shape[-2:], mode="bilinear", align_corners=False)
        total = total + F.mse_loss(p.float(), t.float())
    return total / max(1, len(projections))


def distill_step(student: nn.Module, projections: nn.ModuleList, teacher: FrozenTeacher, discs: list[nn.Module],
                 opt: torch.optim.Optimizer, x: torch.Tensor, cfg: DistillConfig, rt: Runtime,
                 scaler=None) -> dict[str, torch.Tensor]:
    """One student update on photos ``x`` (B, 3, H, W); returns the loss terms (0-dim tensors)."""
    with rt.autocast():
        t_img, t_feats = teacher(x)  # no_grad inside
        if projections:
            s_img, s_all = student.forward_features(x)
            s_feats = [s_all[i] for i in STUDENT_TAPS]
        else:
            s_img, s_feats = student(x), []
        feature = feature_loss(s_feats, t_feats, projections) if projections else torch.zeros((), device=x.device)
        adv = generator_adv_loss([d(s_img)[:2] for d in discs]) if discs else torch.zeros((), device=x.device)
    pixel = F.l1_loss(s_img.float(), t_img.float())
    loss = cfg.pixel_weight * pixel + cfg.feature_weight * feature + cfg.adv_weight * adv
    opt.zero_grad(set_to_none=True)
    backward_step(loss, opt, scaler)
    terms = {"loss": loss, "pixel": pixel, "feature": feature}
    if discs:
        terms["adv"] = adv
    return {k: v.detach() for k, v in terms.items()}


# ---------------------------------------------------------------- samples
@torch.no_grad()
def sample_grid(student: nn.Module, teacher: FrozenTeacher, data: UnpairedData, cfg: DistillConfig, rt: Runtime):
    """Input photo / teacher / student on the first test photos; the student in eval mode (BN statistics)."""
    x = torch.from_numpy(data.test_batch("testA", cfg.n_samples)).to(rt.device)
    was_training = student.training
    student.eval()
    try:
        with rt.autocast():
            t_img, _ = teacher(x)
            s_img = student(x)
    finally:
        student.train(was_training)
    t_u8, s_u8 = samples.to_uint8(t_img), samples.to_uint8(s_img)
    return samples.grid([("input A", samples.to_uint8(x)), ("teacher\nA->B", t_u8), ("student\nA->B", s_u8)])


# ---------------------------------------------------------------- the loop
def distill(cfg: DistillConfig, *, resume: bool = False, progress: bool = True) -> Path:
    """Distil (or resume distilling) ``cfg.teacher`` into ``cfg.student`` in ``cfg.out``; returns the
    final checkpoint's path. ``load_generator(out, "A2B")`` rebuilds the student from it."""
    rt = setup_runtime(cfg.device, cfg.precision, cfg.channels_last)
    if rt.distributed:
        raise EdgeGANError("distill runs in one process (the student is small); launch it without torchrun")
    out = Path(cfg.out)
    prepare_out_dir(out, resume=resume)
    ckpt = resume_point(out, resume=resume)

    generator, teacher_ckpt = load_generator(cfg.teacher, "A2B")
    size = cfg.size or teacher_ckpt.trained_size("A2B")
    teacher = FrozenTeacher(generator, taps=cfg.feature_weight > 0)
    discs = teacher_discriminators(teacher_ckpt.path) if cfg.adv_weight > 0 else []

    torch.manual_seed(cfg.seed)
    data = UnpairedData(cfg.data, size, seed=cfg.seed, cache_mb=cfg.cache_mb, progress=progress,
                        domains=("trainA",))
    student = _build_student(cfg, size).train()
    projections = build_projections(student, teacher, size)
    params = [*student.parameters(), *projections.parameters()]
    opt = adam(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    modules = {"student": student, "projections": projections}
    optimizers = {"opt": opt}
    mem = torch.channels_last if rt.channels_last else torch.contiguous_format
    for m in (student, projections, teacher, *discs):
        m.to(rt.device, memory_format=mem)
    scaler = torch.amp.GradScaler("cuda") if rt.dtype == torch.float16 else None
    start = 0
    if ckpt is not None:
        start = restore(ckpt, modules, optimizers)
        if scaler is not None and "scaler" in ckpt.state:
            scaler.load_state_dict(ckpt.state["scaler"])

    write_json_atomic(out / "config.json", cfg.to_dict())
    metrics = MetricsLog(out / "metrics.jsonl", resume_step=start if ckpt else None)

    def fetch(step: int) -> torch.Tensor:
        a = data.domain_batch("trainA", step, cfg.batch)  # (B, 3, H, W), a pure function of (seed, step)
        return torch.from_numpy(a).to(rt.device, memory_format=mem)

    def save(step: int) -> Path:
        state = {"models": {"student": {"name": cfg.student, "kwargs": student_kwargs(cfg, size)}},
                 "translators": {"A2B": "student"}, "teacher": str(teacher_ckpt.path)}
        if scaler is not None:
            state["scaler"] = scaler.state_dict()
        return save_checkpoint(out / "checkpoints", step, modules=modules, optimizers=optimizers,
                               config=cfg.to_dict(), state=state, keep=cfg.keep_checkpoints)

    last_path = ckpt.path if ckpt else None
    with (Prefetcher(fetch, start, cfg.iters) as batches,
          StepLog(metrics, start=start, iters=cfg.iters, log_every=cfg.log_every, desc=f"distill {cfg.student}",
                  progress=progress, postfix={"pix": "pixel", "feat": "feature"}) as steplog):
        for step in range(start, cfg.iters):
            lr = linear_decay_lr(step, cfg.iters, cfg.lr)
            set_lr(optimizers.values(), lr)
            x = batches.get(step)
            losses = distill_step(student, projections, teacher, discs, opt, x, cfg, rt, scaler)
            values = {k: float(v) for k, v in losses.items()}
            check_finite(values, ("loss",), step=step + 1, last_path=last_path)
            done = step + 1
            steplog.step(done, lr, values)
            if due(done, cfg.sample_every, cfg.iters):
                grid = sample_grid(student, teacher, data, cfg, rt)
                samples.write_grid(out / "samples" / f"step_{done:07d}.png", grid)
            if due(done, cfg.save_every, cfg.iters):
                last_path = save(done)
    return last_path if last_path is not None else out / "checkpoints"
