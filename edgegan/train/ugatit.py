"""The U-GAT-IT trainer: read it top to bottom — networks, losses, one step, samples, the loop.

The photo2cartoon preset trains with it too: the preset names the generator (from the registry)
and turns on the face-ID loss; everything else (discriminators, resume, DDP, samples) is shared.

Speed choices (same losses and networks as the paper's code, less work per iteration):
- both generators run once per iteration; the discriminator update reuses their outputs
  detached (the reference recomputes them: identical values, since G has not changed yet);
- each generator translates its real input and its identity input in one batch;
- each discriminator scores real and fake in one batch;
- discriminator weights are frozen while the generator loss backpropagates through them;
- sampling runs under ``torch.no_grad()``; autocast and channels_last where they pay (CUDA).
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from edgegan.data.unpaired import UnpairedData
from edgegan.io_utils import write_json_atomic
from edgegan.models import create_model
from edgegan.models.layers import clip_rho_
from edgegan.models.photo2cartoon import clip_blend_weights_
from edgegan.train import samples
from edgegan.train.checkpoint import save_checkpoint
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
    weights_checksum,
)
from edgegan.train.config import TrainConfig
from edgegan.train.recipe import diff_augment, ema_decay_at, ema_update_, parse_policy

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- networks
class Generators(nn.Module):
    """Both translation directions; one forward gives everything the losses need."""

    def __init__(self, cfg: TrainConfig):
        super().__init__()
        kw = generator_kwargs(cfg)
        self.a2b = create_model(cfg.generator, **kw)
        self.b2a = create_model(cfg.generator, **kw)

    def forward(self, real_a: torch.Tensor, real_b: torch.Tensor) -> dict[str, torch.Tensor]:
        n = real_a.shape[0]
        # (translation, identity) in one batch per generator: (2B, 3, H, W)
        ab_bb, cam_ab_bb, _ = self.a2b(torch.cat([real_a, real_b]))
        ba_aa, cam_ba_aa, _ = self.b2a(torch.cat([real_b, real_a]))
        fake_ab, fake_bb = ab_bb[:n], ab_bb[n:]
        fake_ba, fake_aa = ba_aa[:n], ba_aa[n:]
        fake_aba = self.b2a(fake_ab)[0]
        fake_bab = self.a2b(fake_ba)[0]
        return {"fake_ab": fake_ab, "fake_bb": fake_bb, "fake_ba": fake_ba, "fake_aa": fake_aa,
                "fake_aba": fake_aba, "fake_bab": fake_bab,
                "cam_ab": cam_ab_bb[:n], "cam_bb": cam_ab_bb[n:], "cam_ba": cam_ba_aa[:n], "cam_aa": cam_ba_aa[n:]}


class Discriminators(nn.Module):
    """Global and local discriminators for each domain; ``forward(images_a, images_b)`` scores
    domain-A images with D_A (global, local) and domain-B images with D_B."""

    def __init__(self, cfg: TrainConfig):
        super().__init__()
        kw = {"ndf": cfg.ndf, "img_size": cfg.size}
        self.global_a = create_model("ugatit-disc-global", **kw)
        self.local_a = create_model("ugatit-disc-local", **kw)
        self.global_b = create_model("ugatit-disc-global", **kw)
        self.local_b = create_model("ugatit-disc-local", **kw)

    def forward(self, images_a: torch.Tensor, images_b: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [d(x)[:2] for d, x in ((self.global_a, images_a), (self.local_a, images_a),
                                      (self.global_b, images_b), (self.local_b, images_b))]


def generator_kwargs(cfg: TrainConfig) -> dict:
    kw = {"ngf": cfg.ngf, "n_res": cfg.n_res, "img_size": cfg.size}
    if cfg.skip:
        kw["skip"] = True
    if cfg.color_mlp:
        kw["color_mlp"] = cfg.color_mlp
    return kw


def model_specs(cfg: TrainConfig) -> dict:
    """How to rebuild each saved network from the registry, stored in every checkpoint."""
    gen = {"name": cfg.generator, "kwargs": generator_kwargs(cfg)}
    disc = {"kwargs": {"ndf": cfg.ndf, "img_size": cfg.size}}
    ema = {"gen_a2b_ema": gen, "gen_b2a_ema": gen} if cfg.ema_decay else {}
    return {"gen_a2b": gen, "gen_b2a": gen, **ema,
            **{f"disc_{kind}_{dom}": {"name": f"ugatit-disc-{kind}", **disc}
               for kind in ("global", "local") for dom in ("a", "b")}}


def translators(cfg: TrainConfig) -> dict[str, str]:
    """Which saved network translates each direction: the EMA copy when the run keeps one."""
    suffix = "_ema" if cfg.ema_decay else ""
    return {"A2B": f"gen_a2b{suffix}", "B2A": f"gen_b2a{suffix}"}


# ---------------------------------------------------------------- losses
def lsgan(x: torch.Tensor, target: float) -> torch.Tensor:
    return F.mse_loss(x.float(), torch.full_like(x, target, dtype=torch.float32))


def discriminator_loss(scores: list[tuple[torch.Tensor, torch.Tensor]], n_real: int) -> torch.Tensor:
    """LSGAN on patch and CAM logits; each score batch is [real (n_real), fake (rest)]."""
    return sum(lsgan(t[:n_real], 1.0) + lsgan(t[n_real:], 0.0) for pair in scores for t in pair)


def generator_adv_loss(scores: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    return sum(lsgan(t, 1.0) for pair in scores for t in pair)


def cam_bce(logit: torch.Tensor, target: float) -> torch.Tensor:
    logit = logit.float()
    return F.binary_cross_entropy_with_logits(logit, torch.full_like(logit, target))


# ---------------------------------------------------------------- one iteration
def train_step(gen: nn.Module, disc: nn.Module, disc_raw: Discriminators, opt_g: torch.optim.Optimizer,
               opt_d: torch.optim.Optimizer, real_a: torch.Tensor, real_b: torch.Tensor, cfg: TrainConfig,
               rt: Runtime, scalers: dict | None = None,
               face_id: nn.Module | None = None) -> dict[str, torch.Tensor]:
    """One D update then one G update (the paper's order). Returns the loss terms (0-dim tensors).

    ``face_id`` (photo2cartoon): a frozen ``FaceIDLoss`` added to G's loss with ``cfg.face_id_weight``,
    for photo -> cartoon and cartoon -> photo; it never enters the discriminator step.
    """
    n = real_a.shape[0]
    aug = parse_policy(cfg.diffaug)
    with rt.autocast():
        g = gen(real_a, real_b)

    # Discriminators, on detached fakes from the same generator weights; with DiffAugment, real and
    # fake go through the same random augmentations (each image its own draw).
    set_requires_grad([disc_raw], True)
    opt_d.zero_grad(set_to_none=True)
    with rt.autocast():
        images_a = diff_augment(torch.cat([real_a, g["fake_ba"].detach()]), aug)
        images_b = diff_augment(torch.cat([real_b, g["fake_ab"].detach()]), aug)
        scores = disc(images_a, images_b)
        d_loss = cfg.adv_weight * discriminator_loss(scores, n)
    backward_step(d_loss, opt_d, scalers and scalers["d"])

    # Generators: adversarial through the just-updated (frozen) Ds, cycle, identity, CAM.
    set_requires_grad([disc_raw], False)
    opt_g.zero_grad(set_to_none=True)
    with rt.autocast():
        g_adv = generator_adv_loss(disc_raw(diff_augment(g["fake_ba"], aug), diff_augment(g["fake_ab"], aug)))
    g_cycle = F.l1_loss(g["fake_aba"].float(), real_a) + F.l1_loss(g["fake_bab"].float(), real_b)
    g_identity = F.l1_loss(g["fake_aa"].float(), real_a) + F.l1_loss(g["fake_bb"].float(), real_b)
    g_cam = (cam_bce(g["cam_ab"], 1.0) + cam_bce(g["cam_bb"], 0.0)
             + cam_bce(g["cam_ba"], 1.0) + cam_bce(g["cam_aa"], 0.0))
    g_loss = (cfg.adv_weight * g_adv + cfg.cycle_weight * g_cycle + cfg.identity_weight * g_identity
              + cfg.cam_weight * g_cam)
    terms = {}
    if face_id is not None:
        with rt.autocast():
            g_face_id = face_id(real_a, g["fake_ab"]) + face_id(real_b, g["fake_ba"])
        g_loss = g_loss + cfg.face_id_weight * g_face_id
        terms["g_face_id"] = g_face_id.detach()
    backward_step(g_loss, opt_g, scalers and scalers["g"])
    clip_rho_(gen)
    clip_blend_weights_(gen)
    return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach(), "g_adv": g_adv.detach(),
            "g_cycle": g_cycle.detach(), "g_identity": g_identity.detach(), "g_cam": g_cam.detach(), **terms}


# ---------------------------------------------------------------- samples
@torch.no_grad()
def sample_grid(gen_raw: Generators, data: UnpairedData, cfg: TrainConfig, rt: Runtime):
    """Input / CAM heatmap / translation / cycle, for A->B next to B->A (from the EMA copy if kept)."""
    blocks = []
    for role, fwd, back in (("testA", gen_raw.a2b, gen_raw.b2a), ("testB", gen_raw.b2a, gen_raw.a2b)):
        x = torch.from_numpy(data.test_batch(role, cfg.n_samples)).to(rt.device)
        with rt.autocast():
            fake, _, heat = fwd(x)
            cycle = back(fake)[0]
        src, dst = ("A", "B") if role == "testA" else ("B", "A")
        real_u8 = samples.to_uint8(x)
        blocks.append(samples.grid([
            (f"input {src}", real_u8),
            ("CAM\nheatmap", samples.heatmap_overlay(real_u8, heat)),
            (f"{src}->{dst}", samples.to_uint8(fake)),
            (f"cycle\n{src}->{dst}->{src}", samples.to_uint8(cycle)),
        ]))
    return samples.side_by_side(*blocks)


# ---------------------------------------------------------------- the loop
def train(cfg: TrainConfig, *, resume: bool = False, progress: bool = True) -> Path:
    """Train (or resume) a U-GAT-IT run in ``cfg.out``; returns the final checkpoint's path."""
    rt = setup_runtime(cfg.device, cfg.precision, cfg.channels_last)
    out = Path(cfg.out)
    if rt.is_main:
        prepare_out_dir(out, resume=resume)
    _barrier(rt)
    ckpt = resume_point(out, resume=resume, warn=rt.is_main)

    torch.manual_seed(cfg.seed)
    data = UnpairedData(cfg.data, cfg.size, seed=cfg.seed, cache_mb=cfg.cache_mb,
                        progress=progress and rt.is_main)
    gen_raw, disc_raw = Generators(cfg), Discriminators(cfg)
    opt_g = adam(gen_raw.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    opt_d = adam(disc_raw.parameters(), lr=cfg.lr * cfg.d_lr_mult, betas=cfg.betas, weight_decay=cfg.weight_decay)
    gen_ema = copy.deepcopy(gen_raw).requires_grad_(False) if cfg.ema_decay else None
    modules = {"gen_a2b": gen_raw.a2b, "gen_b2a": gen_raw.b2a, "disc_global_a": disc_raw.global_a,
               "disc_local_a": disc_raw.local_a, "disc_global_b": disc_raw.global_b,
               "disc_local_b": disc_raw.local_b}
    if gen_ema is not None:
        modules |= {"gen_a2b_ema": gen_ema.a2b, "gen_b2a_ema": gen_ema.b2a}
    optimizers = {"opt_g": opt_g, "opt_d": opt_d}
    mem = torch.channels_last if rt.channels_last else torch.contiguous_format
    gen_raw.to(rt.device, memory_format=mem)
    disc_raw.to(rt.device, memory_format=mem)
    if gen_ema is not None:
        gen_ema.to(rt.device, memory_format=mem)
    face_id = None
    if cfg.face_id_weight == 0 and cfg.id_model != "dlib" and rt.is_main:
        log.warning("--id-model %s is not used: the face-ID loss is off (--face-id-weight 0)", cfg.id_model)
    if cfg.face_id_weight > 0:  # frozen and rebuilt from cfg.id_model on resume, never checkpointed
        from edgegan.models.face_id import FaceIDLoss, load_id_network

        face_id = FaceIDLoss(load_id_network(cfg.id_model), cfg.face_id_crop).to(rt.device)
    start = 0
    scalers = None
    if rt.dtype == torch.float16:
        scalers = {k: torch.amp.GradScaler("cuda") for k in ("g", "d")}
    if ckpt is not None:
        start = restore(ckpt, modules, optimizers)
        if scalers and "scalers" in ckpt.state:
            for k, s in scalers.items():
                s.load_state_dict(ckpt.state["scalers"][k])
    gen, disc = gen_raw, disc_raw
    if rt.distributed:
        ids = [rt.device.index] if rt.device.type == "cuda" else None
        gen = DistributedDataParallel(gen_raw, device_ids=ids)
        disc = DistributedDataParallel(disc_raw, device_ids=ids)

    metrics = None
    if rt.is_main:
        write_json_atomic(out / "config.json", cfg.to_dict())
        metrics = MetricsLog(out / "metrics.jsonl", resume_step=start if ckpt else None)

    def fetch(step: int):
        a, b = data.batch(step, cfg.batch, rank=rt.rank, world=rt.world)
        return (torch.from_numpy(a).to(rt.device, memory_format=mem),
                torch.from_numpy(b).to(rt.device, memory_format=mem))

    def save(step: int) -> Path:
        state = {"models": model_specs(cfg), "translators": translators(cfg)}
        if scalers:
            state["scalers"] = {k: s.state_dict() for k, s in scalers.items()}
        if rt.distributed:  # every rank's fingerprint goes into the checkpoint: they must agree
            sums = [None] * rt.world
            torch.distributed.all_gather_object(sums, weights_checksum(modules.values()))
            state["rank_checksums"] = sums
        path = None
        if rt.is_main:
            path = save_checkpoint(out / "checkpoints", step, modules=modules, optimizers=optimizers,
                                   config=cfg.to_dict(), state=state, keep=cfg.keep_checkpoints)
        _barrier(rt)
        return path

    last_path = ckpt.path if ckpt else None
    with (Prefetcher(fetch, start, cfg.iters) as batches,  # decodes the next batch while this one trains
          StepLog(metrics, start=start, iters=cfg.iters, log_every=cfg.log_every, desc=f"train {cfg.preset}",
                  progress=progress and rt.is_main, postfix={"d": "d_loss", "g": "g_loss"}) as steplog):
        for step in range(start, cfg.iters):
            lr = linear_decay_lr(step, cfg.iters, cfg.lr)
            set_lr([opt_g], lr)
            set_lr([opt_d], lr * cfg.d_lr_mult)
            real_a, real_b = batches.get(step)
            losses = train_step(gen, disc, disc_raw, opt_g, opt_d, real_a, real_b, cfg, rt, scalers, face_id)
            if gen_ema is not None:
                ema_update_(gen_ema, gen_raw, ema_decay_at(step, cfg.ema_decay))
            values = {k: float(v) for k, v in losses.items()}
            check_finite(values, ("d_loss", "g_loss"), step=step + 1, last_path=last_path)
            done = step + 1
            steplog.step(done, lr, values)
            if rt.is_main and due(done, cfg.sample_every, cfg.iters):
                samples.write_grid(out / "samples" / f"step_{done:07d}.png",
                                   sample_grid(gen_ema or gen_raw, data, cfg, rt))
            if due(done, cfg.save_every, cfg.iters):
                last_path = save(done)
    return last_path if last_path is not None else out / "checkpoints"


def _barrier(rt: Runtime) -> None:
    if rt.distributed:
        torch.distributed.barrier()
