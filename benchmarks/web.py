"""In-browser latency of an exported student: `edgegan web`'s page in headless Chromium (onnxruntime-web).

    python benchmarks/web.py --screenshot docs/web_demo.png   # the packaged demo model (its ONNX file)
    python benchmarks/web.py --model student.onnx --runs 100

Prints, per configuration, the median model call (session.run) and the median frame (pre + run + post) in
the page, next to onnxruntime's CPU provider in Python on the same file, and whether the browser offered
WebGPU. WASM threads need a cross-origin isolated page, which the built-in server provides. Needs
scripts/setup_web.sh (npm packages, Chromium).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SWIFTSHADER_WEBGPU = ["--enable-unsafe-webgpu", "--use-webgpu-adapter=swiftshader", "--enable-unsafe-swiftshader"]


def python_ms(model: Path, threads: int, runs: int) -> tuple[float, float]:
    """(median, fastest) ms of the same file in Python, through the runtime's loader (onnxruntime CPU)."""
    import numpy as np

    from edgegan.runtime.backends import load_backend
    from edgegan.runtime.timing import interleaved_times

    backend = load_backend(model, threads=threads, exact=True)
    info = backend.info
    x = info.preprocess(np.random.default_rng(0).integers(0, 256, (info.input_size, info.input_size, 3), np.uint8))
    (times,) = interleaved_times({0: lambda: backend(x)}, runs, warmup=3).values()
    return statistics.median(times), min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="demo", help="ONNX with EdgeGAN metadata, or demo[:VARIANT] [demo]")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--gap-ms", type=float, default=33.0,
                        help="Pause between timed calls, as a 30 fps camera would leave (0 = back to back).")
    parser.add_argument("--webgpu-swiftshader", action="store_true",
                        help="Also time WebGPU on SwiftShader (software: checks the path, not GPU speed).")
    parser.add_argument("--screenshot", type=Path, default=None,
                        help="Save a screenshot of the page running on a fake camera (a face photo) here.")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    import cv2
    from skimage import data

    from edgegan.runtime.formats import read_model_info
    from edgegan.runtime.packaged import resolve_model
    from edgegan.web import build_site
    from edgegan.web.browser import run_driver, served, write_y4m

    work = Path(tempfile.mkdtemp(prefix="edgegan_web_bench_"))
    model = resolve_model(args.model, formats=("onnx",), precision="fp32")  # what `edgegan web --model demo` ships
    info = read_model_info(model)
    site = build_site(model, work / "site")
    photo = data.astronaut()  # NASA, public domain
    clip = work / "camera.y4m"
    write_y4m(clip, [cv2.resize(photo[0:384, 64 + dx:576 + dx], (640, 480), interpolation=cv2.INTER_AREA)
                     for dx in (0, 3, 6, 3)])

    bench = {"runs": args.runs, "warmup": 5, "gapMs": args.gap_ms}
    pages = [{"name": "WASM (auto threads)", "url": "", "camera": "none", "query": "?camera=off&region=full",
              "benchmark": bench},
             {"name": "WASM (1 thread)", "url": "", "camera": "none", "query": "?camera=off&region=full&threads=1",
              "benchmark": bench}]
    if args.webgpu_swiftshader:
        pages.append({"name": "WebGPU (SwiftShader)", "url": "", "camera": "none", "args": SWIFTSHADER_WEBGPU,
                      "query": "?camera=off&region=full&backend=webgpu", "benchmark": {"runs": 5, "warmup": 2}})
    if args.screenshot:
        pages.append({"name": "camera", "url": "", "query": "", "waitFrames": 30, "waitFace": True,
                      "screenshot": str(work / "shot.png")})
    with served(site) as url:
        for page in pages:
            page["url"] = url + page.pop("query")
        report = run_driver(pages, fake_video=clip, timeout_s=600)["pages"]

    print(f"model: {model} ({info.model}, {info.input_size} px, {info.precision}); "
          f"{os.cpu_count()} CPUs; Chromium headless; browser calls {args.gap_ms:g} ms apart")
    # Medians, and the fastest call: on a shared machine the minimum is the better estimate of the cost.
    print(f"{'runtime':<34} {'model ms':>9} {'min ms':>7} {'frame ms':>9}  backend")
    for name, page in report.items():
        if "benchmark" not in page:
            continue
        b = page["benchmark"]
        print(f"{'browser ' + name:<34} {b['inferMs']:>9.2f} {b['minInferMs']:>7.2f} {b['prePostInferMs']:>9.2f}  "
              f"{b['backend']}")
    for threads in (1, 2):
        median, fastest = python_ms(model, threads, args.runs)
        print(f"{f'python onnxruntime CPU ({threads} thr.)':<34} {median:>9.2f} {fastest:>7.2f} {'':>9}  "
              "CPUExecutionProvider")
    first = next(iter(report.values()))
    print(f"WebGPU offered by this browser without flags: {'yes' if first.get('webgpuAvailable') else 'no'}")
    if args.screenshot:
        cam = report["camera"]
        args.screenshot.parent.mkdir(parents=True, exist_ok=True)
        args.screenshot.write_bytes((work / "shot.png").read_bytes())
        print(f"camera page: {cam['stats']['fps']:.1f} fps, {cam['stats']['frameMs']:.1f} ms/frame "
              f"(face {cam['detector']['status']}); screenshot: {args.screenshot}")


if __name__ == "__main__":
    main()
