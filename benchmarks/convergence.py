"""Convergence: training recipes side by side on the demo data, against the identity baseline and the
paired ceiling.

Every recipe trains the quickstart's teacher (U-GAT-IT light, 64 px, ngf 16) on the same data, seed and
iterations, unpaired, and is scored at each checkpoint on the 24 held-out testA photos: PSNR / SSIM
against the exact ground truth and KID×100 against testB. Two references frame the numbers:

- identity: output = input (what a model that learned nothing scores);
- paired ceiling: the edgegan recipe's generator (identity-start skip, colour path) trained with plain L1
  on the *pairs* (trainA -> cartoonize(trainA)) for the same iterations and batch: what the budget
  allows when the answer is given. "closed" is the share of the identity -> ceiling PSNR gap a recipe closes.

Seconds per iteration are printed next to each recipe, so equal wall time can be read off. Recipes run
as separate `edgegan train` processes, ``--jobs`` at a time with one thread each (on 2 cores, two jobs
give the same s/it to both).

    python benchmarks/convergence.py                                  # all recipes, 1500 iterations
    python benchmarks/convergence.py --recipes paper,edgegan --iters 3000 --every 500
    python benchmarks/convergence.py --plot docs/convergence.png --json docs/convergence.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from edgegan.data.demo import build_demo_dataset
from edgegan.quickstart import DEMO_DATA, TEACHER

# name -> (preset, extra `edgegan train` flags). "edgegan" is the shipped recipe; "-x" rows drop one
# of its pieces, "+x" rows add a candidate, so each piece is kept only if the table says so.
RECIPES: dict[str, tuple[str, list[str]]] = {
    "paper": ("ugatit-light", []),
    "paper CAM 10": ("ugatit-light", ["--cam-weight", "10"]),
    "edgegan": ("edgegan", []),
    "edgegan -skip": ("edgegan", ["--no-skip", "--color-mlp", "0"]),
    "edgegan -colour path": ("edgegan", ["--color-mlp", "0"]),
    "edgegan -EMA": ("edgegan", ["--ema-decay", "0"]),
    "edgegan -DiffAugment": ("edgegan", ["--diffaug", ""]),
    "edgegan CAM 1000": ("edgegan", ["--cam-weight", "1000"]),
    "edgegan identity 10": ("edgegan", ["--identity-weight", "10"]),
    "edgegan identity 0.3": ("edgegan", ["--identity-weight", "0.3"]),
    "edgegan identity 0": ("edgegan", ["--identity-weight", "0"]),
    "edgegan +TTUR (D lr x4)": ("edgegan", ["--d-lr-mult", "4"]),
    "edgegan +colour aug": ("edgegan", ["--diffaug", "color,translation,cutout"]),
    "edgegan lr 2e-4": ("edgegan", ["--lr", "2e-4"]),
}


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).strip("_").lower()


def use_profile(name: str) -> None:
    """Train and score at another quickstart profile's data and teacher sizes."""
    global DEMO_DATA, TEACHER
    from edgegan.quickstart import PROFILES

    DEMO_DATA, TEACHER = PROFILES[name].data, PROFILES[name].teacher


# ---------------------------------------------------------------- the references
def train_paired(data: Path, out: Path, *, iters: int, every: int, batch: int, lr: float, seed: int) -> list[Path]:
    """The paired ceiling: the edgegan preset's generator, L1 to cartoonize(trainA).

    Written as ordinary EdgeGAN checkpoints (generator as ``gen_a2b``), so `edgegan eval` scores it
    through the same code as the recipes.
    """
    import torch
    import torch.nn.functional as F

    from edgegan.data.demo import cartoonize
    from edgegan.data.images import list_images, load_rgb
    from edgegan.data.unpaired import to_model_range
    from edgegan.models import create_model
    from edgegan.train.checkpoint import list_checkpoints, save_checkpoint

    done = list_checkpoints(out / "checkpoints")
    if len(done) >= iters // every:
        return done
    torch.manual_seed(seed)
    photos = np.stack([load_rgb(f) for f in list_images(data / "trainA", role="trainA")])
    x_all = torch.from_numpy(to_model_range(photos))
    y_all = torch.from_numpy(to_model_range(np.stack([cartoonize(p) for p in photos])))
    from edgegan.train.config import preset_config
    from edgegan.train.ugatit import generator_kwargs

    kwargs = generator_kwargs(preset_config("edgegan", size=DEMO_DATA["size"], ngf=TEACHER["ngf"],
                                            n_res=TEACHER["n_res"]))
    net = create_model("ugatit-light", **kwargs)
    opt = torch.optim.Adam(net.parameters(), lr=lr, betas=(0.5, 0.999))
    rng = np.random.default_rng(seed)
    spec = {"name": "ugatit-light", "kwargs": kwargs}
    for step in range(1, iters + 1):
        idx = rng.integers(0, len(x_all), batch)
        x, y = x_all[idx], y_all[idx]
        if rng.random() < 0.5:  # the same flip for photo and target
            x, y = x.flip(3), y.flip(3)
        loss = F.l1_loss(net(x)[0], y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % every == 0 or step == iters:
            save_checkpoint(out / "checkpoints", step, modules={"gen_a2b": net}, optimizers={"opt": opt},
                            config={"paired_ceiling": True, "lr": lr, "batch": batch},
                            state={"models": {"gen_a2b": spec}, "translators": {"A2B": "gen_a2b"}},
                            keep=10_000)
    return list_checkpoints(out / "checkpoints")


# ---------------------------------------------------------------- the recipes
def train_recipe(name: str, data: Path, out: Path, *, iters: int, every: int, seed: int) -> Path:
    preset, flags = RECIPES[name]
    run = out / slug(name)
    cmd = [sys.executable, "-m", "edgegan.cli", "train", "--preset", preset, "--data", str(data), "--out", str(run),
           "--size", str(DEMO_DATA["size"]), "--ngf", str(TEACHER["ngf"]), "--ndf", str(TEACHER["ndf"]),
           "--n-res", str(TEACHER["n_res"]), "--iters", str(iters), "--save-every", str(every),
           "--sample-every", str(every), "--keep-checkpoints", "10000", "--seed", str(seed), "--device", "cpu",
           "--no-progress", *flags]
    from edgegan.train.checkpoint import list_checkpoints, read_checkpoint

    done = list_checkpoints(run / "checkpoints")
    if done and read_checkpoint(done[-1]).step >= iters:
        return run
    if done:
        cmd.append("--resume")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    log = run.parent / f"{run.name}.log"
    run.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as f:
        proc = subprocess.run(cmd, env=env, stdout=f, stderr=subprocess.STDOUT)
    if proc.returncode:
        raise SystemExit(f"{name}: `edgegan train` failed (exit {proc.returncode}); see {log}")
    return run


def sec_per_iter(run: Path) -> float | None:
    from edgegan.train.common import read_metrics

    path = run / "metrics.jsonl"
    if not path.is_file():
        return None
    values = [r["sec_per_iter"] for r in read_metrics(path) if "sec_per_iter" in r][1:]  # first has start-up
    return float(np.median(values)) if values else None


# ---------------------------------------------------------------- scoring
def _scores(report: dict, key: str = "model") -> dict:
    paired = report["paired"][key]
    out = {"psnr": paired["psnr_mean"], "ssim": paired["ssim_mean"]}
    if "distribution" in report:
        out["kid_x100"] = report["distribution"][key]["kid_x100_mean"]
    return out


def score_checkpoints(checkpoints: list[Path], data: Path) -> tuple[dict[int, dict], dict]:
    """Scores of every checkpoint {step: scores}, and the identity baseline (reported with each)."""
    from edgegan.eval.evaluate import evaluate
    from edgegan.train.checkpoint import read_checkpoint

    scores, identity = {}, {}
    for ckpt in checkpoints:
        report = evaluate(ckpt, data, fid=True)
        scores[read_checkpoint(ckpt).step] = _scores(report)
        identity = _scores(report, "identity_baseline")
    return scores, identity


def closed(psnr: float, identity: float, ceiling: float) -> float:
    return (psnr - identity) / (ceiling - identity) if ceiling > identity else float("nan")


# ---------------------------------------------------------------- output
def print_table(results: dict, identity: dict, ceiling_name: str) -> None:
    ceiling = results[ceiling_name]["scores"]
    final_step = max(ceiling)
    print(f"\nscores on the {DEMO_DATA['n_test']} held-out testA photos (seed {DEMO_DATA['seed']}, "
          f"{DEMO_DATA['size']} px, U-GAT-IT light ngf {TEACHER['ngf']}); closed = share of the identity -> "
          "paired-ceiling PSNR gap, at the same step")
    steps = sorted(ceiling)
    head = f"{'recipe':<26}{'s/it':>7}" + "".join(f"{'@' + str(s):>15}" for s in steps)
    print(head)
    print(f"{'':<33}" + "".join(f"{'PSNR  closed':>15}" for _ in steps))
    print(f"{'identity (output = input)':<33}" + "".join(f"{identity['psnr']:>9.2f}{'0%':>6}" for _ in steps))
    for name, r in results.items():
        spi = f"{r['sec_per_iter']:.3f}" if r.get("sec_per_iter") else "-"
        cells = ""
        for s in steps:
            sc = r["scores"].get(s)
            if sc is None:
                cells += f"{'-':>15}"
                continue
            share = closed(sc["psnr"], identity["psnr"], ceiling[s]["psnr"])
            cells += f"{sc['psnr']:>9.2f}{share:>6.0%}"
        print(f"{name:<26}{spi:>7}{cells}")
    print(f"\nat step {final_step}: PSNR / SSIM / KID×100 (lower KID is better)")
    print(f"{'identity (output = input)':<34}{identity['psnr']:>7.2f}{identity['ssim']:>7.3f}"
          f"{identity.get('kid_x100', float('nan')):>8.2f}")
    for name, r in results.items():
        sc = r["scores"].get(final_step)
        if sc:
            print(f"{name:<34}{sc['psnr']:>7.2f}{sc['ssim']:>7.3f}{sc.get('kid_x100', float('nan')):>8.2f}")


def plot(results: dict, identity: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_psnr, ax_kid) = plt.subplots(1, 2, figsize=(12, 5.5))
    for name, r in results.items():
        steps = sorted(r["scores"])
        style = "k--" if r.get("paired") else ("-" if name.startswith("edgegan") else ":")
        width = 2.5 if name in ("edgegan", "paper") or r.get("paired") else 1.2
        ax_psnr.plot(steps, [r["scores"][s]["psnr"] for s in steps], style, lw=width, label=name, marker=".")
        if "kid_x100" in r["scores"][steps[0]]:
            ax_kid.plot(steps, [r["scores"][s]["kid_x100"] for s in steps], style, lw=width, label=name, marker=".")
    for ax, key, label in ((ax_psnr, "psnr", "PSNR vs ground truth (dB)"), (ax_kid, "kid_x100", "KID×100 vs testB")):
        if key in identity:
            ax.axhline(identity[key], color="grey", lw=1.5, label="identity (output = input)")
        ax.set_xlabel("iteration")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    ax_psnr.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0.0, -0.14), ncol=4)
    fig.suptitle(f"U-GAT-IT light ngf {TEACHER['ngf']} on the demo data ({DEMO_DATA['size']} px, seed "
                 f"{DEMO_DATA['seed']}): recipes vs identity and the paired ceiling")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, path)
    print(f"plot: {path}")


def run_all(args: argparse.Namespace, ceiling_name: str) -> tuple[dict, dict]:
    """Train the paired ceiling and every recipe (resuming what is there), then score every checkpoint."""
    names = [n.strip() for n in args.recipes.split(",") if n.strip()]
    unknown = [n for n in names if n not in RECIPES]
    if unknown:
        raise SystemExit(f"unknown recipe {unknown[0]!r}; choose from: {', '.join(RECIPES)}")

    data = args.out / "data"
    if not (data / "SOURCES.json").is_file():
        build_demo_dataset(data, progress=False, overwrite=True, **DEMO_DATA)
    batch = 1
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        import torch

        torch.set_num_threads(1)
        paired = pool.submit(train_paired, data, args.out / "paired", iters=args.iters, every=args.every,
                             batch=batch, lr=2e-4, seed=args.seed)
        runs = {n: pool.submit(train_recipe, n, data, args.out, iters=args.iters, every=args.every, seed=args.seed)
                for n in names}
        paired_ckpts = paired.result()
        runs = {n: f.result() for n, f in runs.items()}
    print(f"trained in {time.perf_counter() - t0:.0f} s")

    from edgegan.train.checkpoint import list_checkpoints

    results: dict[str, dict] = {}
    scores, identity = score_checkpoints(paired_ckpts, data)
    results[ceiling_name] = {"scores": scores, "paired": True}
    for n, run in runs.items():
        scores, _ = score_checkpoints(list_checkpoints(run / "checkpoints"), data)
        results[n] = {"scores": scores, "sec_per_iter": sec_per_iter(run), "preset": RECIPES[n][0],
                      "flags": RECIPES[n][1]}
    return results, identity


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("runs/convergence"))
    ap.add_argument("--recipes", default=",".join(RECIPES), help="comma-separated names from RECIPES")
    ap.add_argument("--iters", type=int, default=1500)
    ap.add_argument("--every", type=int, default=300, help="checkpoint (and score) interval")
    ap.add_argument("--jobs", type=int, default=2, help="recipes trained at once, one thread each")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--profile", default=None,
                    help="data and teacher size of this edgegan quickstart profile [quick]; e.g. demo-model with "
                         "--recipes '' measures the packaged model's paired ceiling")
    ap.add_argument("--plot", type=Path, help="write the curves as a PNG here")
    ap.add_argument("--json", type=Path, help="write the results as JSON here")
    ap.add_argument("--from-json", type=Path, help="re-print, re-plot and re-write from a saved --json, no training")
    ap.add_argument("--reference-out", type=Path,
                    help="write the paired ceiling's and each recipe's scores per step here, for the quickstart's "
                         "scorecard (edgegan/data/demo_reference_scores.json)")
    args = ap.parse_args()
    if args.profile:
        use_profile(args.profile)
    ceiling_name = "paired ceiling (L1 on pairs)"
    if args.from_json:
        saved = json.loads(args.from_json.read_text())
        identity = saved["identity"]
        results = {n: {**r, "scores": {int(k): v for k, v in r["scores"].items()}} for n, r in saved["results"].items()}
        command, measured = saved["command"], saved.get("measured")
    else:
        results, identity = run_all(args, ceiling_name)
        command = " ".join(["python", "benchmarks/convergence.py", *sys.argv[1:]])
        measured = time.strftime("%Y-%m-%d")
    runs = [n for n in results if n != ceiling_name]
    print_table(results, identity, ceiling_name)
    if args.plot:
        plot(results, identity, args.plot)
    if args.json:
        payload = {"identity": identity, "results": results, "iters": args.iters, "every": args.every,
                   "data": DEMO_DATA, "teacher": {k: TEACHER[k] for k in ("size", "ngf", "ndf", "n_res")},
                   "command": command, "measured": measured}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=1, default=str))
        print(f"results: {args.json}")
    if args.reference_out:
        steps = sorted(results[ceiling_name]["scores"])
        names = {ceiling_name: "paired ceiling", **{n: n for n in runs}}
        ref = {"data": DEMO_DATA, "teacher": {k: TEACHER[k] for k in ("size", "ngf", "ndf", "n_res")},
               "measured": measured, "command": command,
               "identity": identity,
               "scores": {str(step): {short: results[long]["scores"][step] for long, short in names.items()
                                      if step in results[long]["scores"]} for step in steps}}
        args.reference_out.write_text(json.dumps(ref, indent=1) + "\n")
        print(f"reference scores: {args.reference_out}")


if __name__ == "__main__":
    main()
