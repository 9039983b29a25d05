"""INT8 targets of the mobile student, in one run: size, quality and onnxruntime latency of PTQ and QAT.

    python benchmarks/quantize.py                        # ~4 minutes on 2 shared cores
    python benchmarks/quantize.py --student runs/quickstart/student --data runs/quickstart/data
    python benchmarks/quantize.py --threads 2 --runs 100

Without ``--student`` a stand-in student is trained first (cached in ``--work``): ``mobile-s`` fitted
for ``--fit-steps`` steps (L1, Adam) to the demo data's own stylisation (``edgegan.data.demo.cartoonize``)
of the ``trainA`` photos: the mapping a distilled student approximates, with real BatchNorm statistics,
so its activation ranges are those of a trained network (untrained weights quantize too well to
mean anything). Then, on the same student:

- PTQ and QAT with the shipped recipe (``edgegan.quantize.Recipe``), each through ``quantize_student``;
- recipe ablations, PTQ only: NNCF's defaults, no fp32 modules, fp32 head only, ``mixed`` preset;
- every ONNX file timed in onnxruntime (CPU EP, graph optimisation "all", batch 1, 256x256) in ONE
  interleaved loop: one call of each model in turn, median of ``--runs``; OpenVINO (fp32 precision
  hint) on the fp32, PTQ and all-INT8 files in the same loop, if it is installed (``pip install
  openvino``: NNCF's own runtime);
- the shipped recipe on mobile-s/m/l and on a what-if mobile-s without full-resolution convs;
- the targets: ORT INT8/fp32 latency <= 0.67, PSNR INT8 vs fp32 >= 35 dB (PTQ), QAT >= PTQ, size <= 30%.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgegan.data.images import list_images, load_rgb
from edgegan.data.unpaired import resize_square, to_model_range
from edgegan.errors import EdgeGANError

TARGETS = {"latency": 0.67, "psnr_ptq": 35.0, "size": 0.30}


def fit_student(data: Path, out: Path, *, size: int, steps: int, seed: int = 0) -> Path:
    """A stand-in trained student: mobile-s fitted to ``cartoonize`` of the trainA photos; returns its run dir."""
    from edgegan.data.demo import cartoonize
    from edgegan.models import create_model
    from edgegan.train.checkpoint import list_checkpoints, save_checkpoint

    if list_checkpoints(out / "checkpoints"):
        return out
    photos = np.stack([resize_square(load_rgb(f), size) for f in list_images(data / "trainA", role="trainA")])
    x_all = torch.from_numpy(to_model_range(photos))
    y_all = torch.from_numpy(to_model_range(np.stack([cartoonize(p) for p in photos])))
    torch.manual_seed(seed)
    model = create_model("mobile-s", img_size=size).train()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    rng = np.random.default_rng(seed)
    t = time.perf_counter()
    for step in range(steps):
        idx = torch.from_numpy(rng.integers(0, len(x_all), 8))
        x, y = x_all[idx], y_all[idx]
        if step % 2:
            x, y = x.flip(-1), y.flip(-1)
        loss = (model(x) - y).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (step + 1) % 100 == 0:
            print(f"  fit step {step + 1}/{steps}: L1 {loss.item():.4f} ({time.perf_counter() - t:.0f} s)")
    spec = {"name": "mobile-s", "kwargs": {"img_size": size}}
    save_checkpoint(out / "checkpoints", steps, modules={"student": model.eval()}, optimizers={},
                    config={"size": size, "stand_in": "mobile-s fitted to cartoonize(trainA)"},
                    state={"models": {"student": spec}, "translators": {"A2B": "student"}})
    return out


def ablation_onnx(student: Path, calib: Path, out: Path, recipes: dict) -> dict[str, Path]:
    """PTQ INT8 ONNX files of other recipes on the same student and calibration photos."""
    from edgegan.quantize import nncf_int8
    from edgegan.quantize.calibration import load_photos
    from edgegan.quantize.pipeline import _student

    fp32, _, size, _ = _student(student)
    photos = to_model_range(load_photos(calib, size).images)
    paths = {}
    for name, recipe in recipes.items():
        q = nncf_int8.ptq(fp32, photos, recipe)
        paths[name] = nncf_int8.export_onnx(q, out / f"{name.replace(' ', '_')}.onnx", size, qdq=True)
    return paths


class SubPixelTail(torch.nn.Module):
    """What-if, not a registered model: a student whose full-resolution tail (nearest x2, dw + pw convs
    at 256 px, the 3-channel 3x3 head) is replaced by a 3x3 conv to 12 channels at half resolution and
    PixelShuffle (DepthToSpace) -- no conv runs at full resolution."""

    def __init__(self, base: torch.nn.Module):
        super().__init__()
        self.stem, self.down, self.blocks, self.up1 = base.stem, base.down, base.blocks, base.up1
        self.head = torch.nn.Conv2d(base.up1.pw.conv.out_channels, 12, 3, padding=1)
        self.shuffle = torch.nn.PixelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.shuffle(self.head(self.up1(self.blocks(self.down(self.stem(x)))))))


def architecture_onnx(calib: Path, out: Path, size: int) -> dict[str, tuple[Path, Path]]:
    """(fp32, INT8) ONNX of each student architecture, shipped recipe; BatchNorm statistics from photos,
    weights untrained: for timing and size only."""
    from edgegan.models import create_model
    from edgegan.models.mobile import fold_batchnorm
    from edgegan.quantize import Recipe, nncf_int8
    from edgegan.quantize.calibration import load_photos

    photos = to_model_range(load_photos(calib, size, limit=32).images)
    torch.manual_seed(0)
    models = {name: create_model(name) for name in ("mobile-s", "mobile-m", "mobile-l")}
    models["mobile-s sub-pixel tail"] = SubPixelTail(create_model("mobile-s"))
    paths = {}
    for name, model in models.items():
        with torch.no_grad():
            for _ in range(3):
                model.train()(torch.from_numpy(photos))
        fp32 = fold_batchnorm(model)
        tag = name.replace(" ", "_")
        recipe = Recipe(fp32_modules=tuple(m for m in Recipe().fp32_modules if hasattr(fp32, m)))
        q = nncf_int8.ptq(fp32, photos, recipe)
        paths[name] = (nncf_int8.export_onnx(fp32, out / f"arch_{tag}_fp32.onnx", size, qdq=False),
                       nncf_int8.export_onnx(q, out / f"arch_{tag}_int8.onnx", size, qdq=True))
    return paths


def quality(paths: dict[str, Path], fp32: Path, images: np.ndarray) -> dict[str, float]:
    from edgegan.eval.metrics import paired_scores
    from edgegan.runtime.backends import load_backend

    ref = load_backend(fp32, exact=True).translate(images)
    return {k: paired_scores(list(load_backend(p, exact=True).translate(images)), list(ref))["psnr_mean"]
            for k, p in paths.items()}


def time_all(paths: dict[str, Path], size: int, threads: int, runs: int, image: np.ndarray, *,
             openvino: bool = True) -> dict[str, float]:
    from edgegan.runtime.backends import load_backend
    from edgegan.runtime.timing import time_interleaved

    x = to_model_range(resize_square(image, size)[None])
    runners = {}
    for key, path in paths.items():
        m = load_backend(path, threads=threads, exact=True)
        runners[f"ort {key}"] = lambda m=m: m(x)
    if openvino:
        for key in [k for k in ("fp32", "ptq", "all int8") if k in paths]:
            try:
                m = load_backend(paths[key], "openvino", threads=threads, exact=True)
            except EdgeGANError as err:
                print(f"(no OpenVINO column: {err})")
                break
            runners[f"openvino {key}"] = lambda m=m: m(x)
    return time_interleaved(runners, runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--student", type=Path, help="a trained student checkpoint [a stand-in is fitted]")
    ap.add_argument("--data", type=Path, help="demo-style data: trainA/ (calibration), testA/ testA_gt/ "
                    "[built in --work]")
    ap.add_argument("--work", type=Path, default=Path("runs/bench_quantize"))
    ap.add_argument("--size", type=int, default=64, help="stand-in student / demo data size")
    ap.add_argument("--fit-steps", type=int, default=600)
    ap.add_argument("--qat-steps", type=int, default=300)
    ap.add_argument("--latency-size", type=int, default=256)
    # 1 by default: on a 2-core machine shared with other jobs a second thread mostly waits its turn
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=60)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    torch.set_num_threads(args.threads)

    from edgegan.quantize import QATConfig, Recipe, quantize_student
    from edgegan.quantize.pipeline import format_report

    data = args.data
    if data is None:
        from edgegan.data.demo import build_demo_dataset

        data = args.work / "data"
        if not (data / "SOURCES.json").is_file():
            build_demo_dataset(data, size=args.size, n_train=200, n_test=24, seed=0, progress=False)
    student = args.student or fit_student(data, args.work / "student", size=args.size, steps=args.fit_steps)
    calib = data / "trainA"
    common = {"data": data, "latency_size": args.latency_size, "threads": args.threads, "runs": args.runs,
              "progress": False}
    t = time.perf_counter()
    ptq = quantize_student(student, calib, args.work / "ptq", method="ptq", **common)
    print(format_report(ptq), f"\n({time.perf_counter() - t:.0f} s)\n")
    t = time.perf_counter()
    qat = quantize_student(student, calib, args.work / "qat", method="qat", qat=QATConfig(steps=args.qat_steps),
                           resume=True, **common)
    print(format_report(qat), f"\n({time.perf_counter() - t:.0f} s)\n")

    recipes = {
        "all int8": Recipe(fp32_modules=()),
        "fp32 head only": Recipe(fp32_modules=("head",)),
        "mixed preset": Recipe(preset="mixed"),
        "per-tensor w": Recipe(per_channel_weights=False),
    }
    paths = {"fp32": Path(ptq["files"]["fp32_onnx"]), "ptq": Path(ptq["files"]["int8_onnx"]),
             "qat": Path(qat["files"]["int8_onnx"]), "nncf defaults": nncf_defaults_onnx(student, calib, args.work)}
    paths.update(ablation_onnx(student, calib, args.work, recipes))
    test = np.stack([resize_square(load_rgb(f), ptq["size"]) for f in list_images(data / "testA", role="testA")])
    psnr = quality({k: v for k, v in paths.items() if k != "fp32"}, paths["fp32"], test)
    ms = time_all(paths, args.latency_size, args.threads, args.runs, test[0])

    print(f"recipes on the student: onnxruntime CPU EP {args.latency_size}x{args.latency_size}, batch 1, "
          f"{args.threads} thread(s), median of {args.runs} interleaved calls; PSNR on {len(test)} testA photos")
    print(f"{'model':<16}{'KiB':>8}{'size':>7}{'ORT ms':>9}{'vs fp32':>9}{'OV ms':>8}{'PSNR vs fp32':>14}")
    for key, path in paths.items():
        ov = ms.get(f"openvino {key}")
        print(f"{key:<16}{path.stat().st_size / 1024:>8.1f}{path.stat().st_size / paths['fp32'].stat().st_size:>7.0%}"
              f"{ms[f'ort {key}']:>9.2f}{ms[f'ort {key}'] / ms['ort fp32']:>9.2f}{'' if ov is None else f'{ov:.2f}':>8}"
              f"{'' if key == 'fp32' else f'{psnr[key]:.2f}':>14}")

    arch = architecture_onnx(calib, args.work, args.size)
    runners = {f"{name} {p}": path for name, pair in arch.items() for p, path in zip(("fp32", "int8"), pair)}
    arch_ms = time_all(runners, args.latency_size, args.threads, args.runs, test[0], openvino=False)
    print("\nthe shipped recipe on each architecture (untrained weights, BatchNorm statistics from photos)")
    print(f"{'student':<26}{'fp32 ms':>9}{'INT8 ms':>9}{'INT8/fp32':>11}{'size':>7}")
    for name, (f, q) in arch.items():
        print(f"{name:<26}{arch_ms[f'ort {name} fp32']:>9.2f}{arch_ms[f'ort {name} int8']:>9.2f}"
              f"{arch_ms[f'ort {name} int8'] / arch_ms[f'ort {name} fp32']:>11.2f}"
              f"{q.stat().st_size / f.stat().st_size:>7.0%}")

    ratio = ms["ort ptq"] / ms["ort fp32"]
    size_ratio = paths["ptq"].stat().st_size / paths["fp32"].stat().st_size
    checks = [
        ("ORT INT8/fp32 latency <= 0.67", ratio <= TARGETS["latency"], f"{ratio:.2f}"),
        ("PSNR PTQ vs fp32 >= 35 dB", psnr["ptq"] >= TARGETS["psnr_ptq"], f"{psnr['ptq']:.2f} dB"),
        ("PSNR QAT >= PTQ", psnr["qat"] >= psnr["ptq"], f"{psnr['qat']:.2f} vs {psnr['ptq']:.2f} dB"),
        ("size INT8/fp32 <= 30%", size_ratio <= TARGETS["size"], f"{100 * size_ratio:.0f}%"),
    ]
    print("\ntargets (the student above)")
    for label, ok, value in checks:
        print(f"  [{'met' if ok else 'MISSED'}] {label}: {value}")


def nncf_defaults_onnx(student: Path, calib: Path, work: Path) -> Path:
    """NNCF with no recipe (per-channel activations, int8 activations kept, everything quantized)."""
    import onnx

    from edgegan.quantize import nncf_int8
    from edgegan.quantize.calibration import load_photos
    from edgegan.quantize.pipeline import _student

    nncf = nncf_int8.setup_nncf()
    from nncf.torch.quantization.layers import QuantizerExportMode

    fp32, _, size, _ = _student(student)
    samples = [torch.from_numpy(to_model_range(p[None])) for p in load_photos(calib, size).images]
    with nncf_int8._quiet(False):
        q = nncf.quantize(fp32, nncf.Dataset(samples), subset_size=len(samples))
    for m in nncf_int8.quantizers(q):
        m.set_export_mode(QuantizerExportMode.ONNX_QUANTIZE_DEQUANTIZE_PAIRS)
    path = work / "nncf_defaults.onnx"
    import io
    import warnings

    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(q, (torch.zeros(1, 3, size, size),), buf, dynamo=False, opset_version=17,
                          input_names=["image"], output_names=["cartoon"],
                          dynamic_axes={"image": {0: "b", 2: "h", 3: "w"}, "cartoon": {0: "b", 2: "h", 3: "w"}})
    onnx.save(onnx.load_from_string(buf.getvalue()), str(path))
    return path


if __name__ == "__main__":
    main()
