"""Training speed and memory on this machine, EdgeGAN's step vs the reference algorithm.

Prints, for each config, seconds/iteration and peak RSS of
- ``edgegan``: the trainer's step (``edgegan.train.ugatit.train_step``), fp32;
- ``edgegan-bf16``: the same step under CPU bf16 autocast (``--precision bf16``);
- ``reference``: the same networks and losses computed the way the public U-GAT-IT code does:
  its order (the D step recomputes both fakes with autograd and backpropagates into G, every
  G/D call separate, D weights not frozen during the G step) and its AdaLIN/ILN formulation
  (separate instance and layer normalisations with ``torch.var``, then the affine);
each in a fresh subprocess, interleaved, so the ratios are measured under the same load.
Then parameters and MACs (``torch.utils.flop_counter``) of every network at each size.

    python benchmarks/train_speed.py                # tiny (64 px), photo2cartoon at 64 px, 256 px light
    python benchmarks/train_speed.py --configs tiny --repeats 3
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

CONFIGS = {
    "tiny": dict(size=64, ngf=16, ndf=16, n_res=4, iters=12, warmup=3),
    "256-light": dict(size=256, ngf=64, ndf=64, n_res=4, iters=3, warmup=1),
    # photo2cartoon's generator (hourglasses, Soft-AdaLIN) at the size the reference was timed at;
    # face-ID loss off on both sides, as in that timing (shared/README: 0.91 s/iter, 2 threads).
    "p2c-tiny": dict(size=64, ngf=16, ndf=16, n_res=4, iters=8, warmup=2, preset="photo2cartoon"),
}


def reference_step(gen, disc, opt_g, opt_d, real_a, real_b, cfg):
    """The public U-GAT-IT iteration: 8 generator passes, 16 discriminator passes."""
    import torch.nn.functional as F

    from edgegan.models.layers import clip_rho_
    from edgegan.models.photo2cartoon import clip_blend_weights_
    from edgegan.train.ugatit import cam_bce, lsgan

    g, d = gen, disc
    opt_d.zero_grad()
    fake_ab, _, _ = g.a2b(real_a)
    fake_ba, _, _ = g.b2a(real_b)
    d_loss = 0
    for dnet, real, fake in ((d.global_a, real_a, fake_ba), (d.local_a, real_a, fake_ba),
                             (d.global_b, real_b, fake_ab), (d.local_b, real_b, fake_ab)):
        r_logit, r_cam, _ = dnet(real)
        f_logit, f_cam, _ = dnet(fake)
        d_loss = d_loss + lsgan(r_logit, 1) + lsgan(f_logit, 0) + lsgan(r_cam, 1) + lsgan(f_cam, 0)
    (cfg.adv_weight * d_loss).backward()
    opt_d.step()

    opt_g.zero_grad()
    fake_ab, cam_ab, _ = g.a2b(real_a)
    fake_ba, cam_ba, _ = g.b2a(real_b)
    fake_aba, _, _ = g.b2a(fake_ab)
    fake_bab, _, _ = g.a2b(fake_ba)
    fake_aa, cam_aa, _ = g.b2a(real_a)
    fake_bb, cam_bb, _ = g.a2b(real_b)
    adv = 0
    for dnet, fake in ((d.global_a, fake_ba), (d.local_a, fake_ba), (d.global_b, fake_ab), (d.local_b, fake_ab)):
        logit, cam, _ = dnet(fake)
        adv = adv + lsgan(logit, 1) + lsgan(cam, 1)
    loss = (cfg.adv_weight * adv
            + cfg.cycle_weight * (F.l1_loss(fake_aba, real_a) + F.l1_loss(fake_bab, real_b))
            + cfg.identity_weight * (F.l1_loss(fake_aa, real_a) + F.l1_loss(fake_bb, real_b))
            + cfg.cam_weight * (cam_bce(cam_ba, 1) + cam_bce(cam_aa, 0) + cam_bce(cam_ab, 1) + cam_bce(cam_bb, 0)))
    loss.backward()
    opt_g.step()
    clip_rho_(g)
    clip_blend_weights_(g)


def reference_instance_layer_mix(x, rho, eps, gamma=None, beta=None):
    """AdaLIN/ILN as the public U-GAT-IT code computes them."""
    in_mean, in_var = x.mean(dim=(2, 3), keepdim=True), x.var(dim=(2, 3), keepdim=True)
    out_in = (x - in_mean) / (in_var + eps).sqrt()
    ln_mean, ln_var = x.mean(dim=(1, 2, 3), keepdim=True), x.var(dim=(1, 2, 3), keepdim=True)
    out_ln = (x - ln_mean) / (ln_var + eps).sqrt()
    rho = rho.clamp(0.0, 1.0).expand(x.shape[0], -1, -1, -1)
    out = rho * out_in + (1 - rho) * out_ln
    if gamma is not None:
        out = out * gamma
    if beta is not None:
        out = out + beta
    return out


def child(config: str, variant: str) -> None:
    """Time one variant in this process and print a JSON line."""
    import torch

    from edgegan.models import layers
    from edgegan.train.common import adam, setup_runtime
    from edgegan.train.config import preset_config
    from edgegan.train.ugatit import Discriminators, Generators, train_step

    c = CONFIGS[config]
    precision = "bf16" if variant == "edgegan-bf16" else "fp32"
    if variant == "reference":
        layers.instance_layer_mix = reference_instance_layer_mix
    cfg = preset_config(c.get("preset", "ugatit-light"), size=c["size"], ngf=c["ngf"], ndf=c["ndf"],
                        n_res=c["n_res"], device="cpu", precision=precision, face_id_weight=0.0)
    rt = setup_runtime("cpu", precision, "off")
    torch.manual_seed(0)
    gen, disc = Generators(cfg), Discriminators(cfg)
    # the trainer's optimizer (fused Adam) for EdgeGAN, the reference code's plain Adam for the reference
    make_opt = torch.optim.Adam if variant == "reference" else adam
    opt_g = make_opt(gen.parameters(), lr=1e-4, betas=(0.5, 0.999), weight_decay=1e-4)
    opt_d = make_opt(disc.parameters(), lr=1e-4, betas=(0.5, 0.999), weight_decay=1e-4)
    real_a = torch.rand(1, 3, c["size"], c["size"]) * 2 - 1
    real_b = torch.rand(1, 3, c["size"], c["size"]) * 2 - 1
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    for i in range(c["warmup"] + c["iters"]):
        t = time.perf_counter()
        if variant == "reference":
            reference_step(gen, disc, opt_g, opt_d, real_a, real_b, cfg)
        else:
            train_step(gen, disc, disc, opt_g, opt_d, real_a, real_b, cfg, rt)
        if i >= c["warmup"]:
            times.append(time.perf_counter() - t)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"median_s": statistics.median(times), "peak_rss_gb": peak / 2**20,
                      "train_rss_gb": (peak - rss0) / 2**20, "threads": torch.get_num_threads()}))


def count_models(sizes: list[int]) -> None:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from edgegan.models import create_model

    print("\nparameters and MACs per network (batch 1)")
    print(f"{'model':<22}{'size':>6}{'width':>7}{'params (M)':>12}{'GMACs':>9}")
    for size in sizes:
        for name, width in (("ugatit-light", 64), ("ugatit-light", 32), ("ugatit-light", 16),
                            ("ugatit-disc-global", 64), ("ugatit-disc-local", 64)):
            key = "ngf" if not name.startswith("ugatit-disc") else "ndf"
            model = create_model(name, img_size=size, **{key: width}).eval()
            with torch.no_grad(), FlopCounterMode(display=False) as counter:
                model(torch.zeros(1, 3, size, size))
            params = sum(p.numel() for p in model.parameters()) / 1e6
            print(f"{name:<22}{size:>6}{width:>7}{params:>12.3f}{counter.get_total_flops() / 2e9:>9.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", default="tiny,p2c-tiny,256-light")
    ap.add_argument("--repeats", type=int, default=1, help="interleaved repeats per variant")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], args.child[1])
        return
    print("CPU training step, batch 1, one fresh process per measurement")
    print(f"{'config':<11}{'variant':<14}{'s/iter':>8}{'peak RSS GB':>13}{'train RSS GB':>14}"
          f"{'÷ ref':>9}   (goal: edgegan fp32 <= 0.67 x reference)")
    sizes = []
    for config in args.configs.split(","):
        c = CONFIGS[config]
        sizes.append(c["size"])
        results: dict[str, list[dict]] = {"edgegan": [], "edgegan-bf16": [], "reference": []}
        for _ in range(args.repeats):
            for variant in results:  # interleaved: both see the same machine load
                out = subprocess.run([sys.executable, __file__, "--child", config, variant],
                                     capture_output=True, text=True, check=True)
                results[variant].append(json.loads(out.stdout.strip().splitlines()[-1]))
        med = {v: statistics.median(r["median_s"] for r in runs) for v, runs in results.items()}
        for variant, runs in results.items():
            print(f"{config:<11}{variant:<14}{med[variant]:>8.3f}{max(r['peak_rss_gb'] for r in runs):>13.2f}"
                  f"{max(r['train_rss_gb'] for r in runs):>14.2f}{med[variant] / med['reference']:>9.2f}")
    count_models(sorted(set(sizes)))


if __name__ == "__main__":
    main()
