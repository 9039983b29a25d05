"""edgegan web: the static site and its errors, then the page in real headless Chromium against the Python runtime.

The end-to-end test needs Node.js, the npm packages and Debian's Chromium: scripts/setup_web.sh installs them
(CI runs it). Without them it fails and says so; it never skips.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from edgegan.errors import EdgeGANError
from edgegan.runtime.metadata import METADATA_KEY, ModelInfo
from edgegan.web import build_site
from edgegan.web.build import ORT_FILES, SITE_MARKER
from tests.conftest import edgegan_cmd, subprocess_env

SIZE = 64
# Chromium's WebGPU on SwiftShader (software Vulkan): the WebGPU code path runs here without a GPU.
SWIFTSHADER_WEBGPU = ["--enable-unsafe-webgpu", "--use-webgpu-adapter=swiftshader", "--enable-unsafe-swiftshader"]


def _export(model, path: Path, info: ModelInfo | None) -> Path:
    import onnx
    import torch

    torch.onnx.export(model, (torch.randn(1, 3, SIZE, SIZE),), str(path), dynamo=False, opset_version=17,
                      input_names=["image"], output_names=["cartoon"])
    proto = onnx.load(str(path))
    if info is not None:
        entry = proto.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, info.to_json()
    onnx.save(proto, str(path))
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """A tiny folded mobile-s student with metadata, the same without, and a model no runtime can run."""
    import onnx
    import torch
    from onnx import TensorProto, helper

    from edgegan.models import create_model
    from edgegan.models.mobile import fold_batchnorm

    root = tmp_path_factory.mktemp("web_models")
    torch.manual_seed(0)
    net = create_model("mobile-s", width=0.25, img_size=SIZE).eval()
    with torch.no_grad():
        # An untrained student answers near mid-grey everywhere (zero BatchNorm shifts, a gentle head);
        # random shifts and a steeper head spread its output over the whole 0..255 range, so the page's
        # rounding and clipping are exercised too.
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.bias.normal_(0, 0.5)
        net = fold_batchnorm(net)
        net.head.weight.mul_(16.0)
    info = ModelInfo(model="mobile-s", input_size=SIZE, precision="fp32")
    out = {"student": _export(net, root / "student.onnx", info), "nometa": _export(net, root / "nometa.onnx", None)}

    shape = [1, 3, SIZE, SIZE]
    node = helper.make_node("NoSuchOp", ["image"], ["cartoon"], domain="com.example.missing")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("image", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("cartoon", TensorProto.FLOAT, shape)])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("com.example.missing", 1)])
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, info.to_json()
    onnx.save(proto, str(root / "unsupported.onnx"))
    out["unsupported"] = root / "unsupported.onnx"
    return out


def test_build_site_writes_a_self_contained_site(models, tmp_path):
    site = build_site(models["student"], tmp_path / "site")
    for name in ("index.html", "app.js", "style.css", "model.onnx", SITE_MARKER):
        assert (site / name).is_file(), name
    for name in ORT_FILES:
        assert (site / "ort" / name).is_file(), name
    assert (site / "model.onnx").read_bytes() == models["student"].read_bytes()
    # Nothing on the page may come from the network: every import and fetch is relative.
    page = (site / "index.html").read_text() + (site / "app.js").read_text()
    assert "http://" not in page.replace("http://localhost", "") and "https://" not in page

    (site / "stale.txt").write_text("from an older build")
    build_site(models["student"], site, face_detector=False)
    assert not (site / "stale.txt").exists() and not (site / "face").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]  # no temp or backup folders left


def test_build_site_refuses_bad_input(models, tmp_path):
    with pytest.raises(EdgeGANError, match=r"^--model .*no such model file"):
        build_site(tmp_path / "missing.onnx", tmp_path / "a")
    with pytest.raises(EdgeGANError, match=r"^--model .*no EdgeGAN metadata"):
        build_site(models["nometa"], tmp_path / "a")
    with pytest.raises(EdgeGANError, match=r"^--model .*runs ONNX models"):
        build_site(tmp_path / "student.tflite", tmp_path / "a")
    with pytest.raises(EdgeGANError, match=r"^--ort-dist .*no ort.min.mjs"):
        build_site(models["student"], tmp_path / "a", ort_dist=tmp_path)
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("keep me")
    with pytest.raises(EdgeGANError, match=r"^--out .*not written by edgegan web"):
        build_site(models["student"], tmp_path / "foreign")
    assert (tmp_path / "foreign" / "notes.txt").read_text() == "keep me"
    assert not (tmp_path / "a").exists()


def test_cli_web_errors_are_one_line(models, tmp_path):
    for args, expected in [(["--model", str(tmp_path / "nope.onnx")], "error: --model "),
                           (["--model", "demo:tflite", "--out", str(tmp_path / "s")], "error: --model demo:tflite"),
                           (["--serve", "--out", str(tmp_path)], "error: --out ")]:
        proc = subprocess.run([*edgegan_cmd(), "web", *args], check=False, capture_output=True, text=True,
                              env=subprocess_env())
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.startswith(expected) and proc.stderr.count("\n") == 1, proc.stderr


def test_build_and_serve_never_import_torch(models, tmp_path):
    code = (f"import sys; from edgegan.web import build_site, make_server; import edgegan.cli; "
            f"build_site({str(models['student'])!r}, {str(tmp_path / 's')!r}); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, env=subprocess_env())


def test_server_sends_isolation_headers_and_types(models, tmp_path):
    from edgegan.web.browser import served

    site = build_site(models["student"], tmp_path / "site")
    with served(site) as url:
        for path, mime in [("", "text/html"), ("app.js", "text/javascript"), ("ort/ort.min.mjs", "text/javascript"),
                           ("ort/ort-wasm-simd-threaded.jsep.wasm", "application/wasm")]:
            with urllib.request.urlopen(url + path) as r:
                assert r.headers["Content-Type"].startswith(mime), path
                # Without these two, browsers withhold SharedArrayBuffer: one WASM thread only.
                assert r.headers["Cross-Origin-Opener-Policy"] == "same-origin"
                assert r.headers["Cross-Origin-Embedder-Policy"] == "require-corp"


def _fake_camera_clip(path: Path) -> np.ndarray:
    """A 320x240 y4m clip of a real face (skimage's astronaut, public domain), drifting a few pixels."""
    import cv2
    from skimage import data

    from edgegan.web.browser import write_y4m

    photo = data.astronaut()
    frames = [cv2.resize(photo[0:384, 64 + dx:576 + dx], (320, 240), interpolation=cv2.INTER_AREA)
              for dx in (0, 4, 8, 4)]
    write_y4m(path, frames)
    return frames[0]


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


@pytest.mark.slow
@pytest.mark.web
def test_page_in_headless_chromium_matches_python_runtime(models, tmp_path):
    import cv2
    from skimage import data

    from edgegan.runtime import load
    from edgegan.web.browser import check_browser_tools, decode_rgb, png_data_url, run_driver, served

    try:
        check_browser_tools()
    except EdgeGANError as err:
        pytest.fail(f"{err} (CI: make test runs scripts/setup_web.sh)")

    site = build_site(models["student"], tmp_path / "site")
    for name in ("nometa", "unsupported"):
        (site / f"{name}.onnx").write_bytes(models[name].read_bytes())
    (site / "garbage.onnx").write_bytes(b"not a protobuf at all" * 8)
    clip = tmp_path / "camera.y4m"
    frame = _fake_camera_clip(clip)
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), frame[:, :, ::-1])
    # The fixed test image, at the model's size so no resampler stands between the two runtimes.
    face = cv2.resize(data.astronaut()[20:260, 130:370], (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    shot = tmp_path / "web_demo.png"

    with served(site) as url:
        err = {"expectError": True}
        report = run_driver([
            {"name": "camera", "url": url, "waitFrames": 8, "waitFace": True, "screenshot": str(shot),
             "images": {"face": png_data_url(face)}, "photo": str(photo), "snapshot": str(tmp_path / "snap.png"),
             "benchmark": {"runs": 20, "warmup": 3, "gapMs": 33}},
            {"name": "webgpu", "url": url + "?camera=off&backend=webgpu&region=full", "args": SWIFTSHADER_WEBGPU,
             "images": {"face": png_data_url(face)}},
            {"name": "nometa", "url": url + "?model=nometa.onnx", **err},
            {"name": "garbage", "url": url + "?model=garbage.onnx", **err},
            {"name": "unsupported", "url": url + "?model=unsupported.onnx", **err},
            {"name": "missing", "url": url + "?model=nope.onnx", **err},
            {"name": "denied", "url": url, "camera": "deny", **err},
            {"name": "nocamera", "url": url, "camera": "none", **err},
        ], fake_video=clip, timeout_s=400)
    pages = report["pages"]
    (tmp_path / "report.json").write_text(json.dumps(pages, indent=2)[:200000])

    cam = pages["camera"]
    assert cam["error"] is None, cam
    assert cam["backend"].startswith("WASM SIMD") and cam["crossOriginIsolated"], cam["backend"]
    assert cam["stats"]["frames"] >= 8 and cam["stats"]["fps"] > 0 and cam["source"] == "camera", cam["stats"]
    assert cam["message"] is None, cam["message"]
    assert cam["detector"]["status"] == "ready" and cam["stats"]["faces"] == 1, (cam["detector"], cam["stats"])
    assert shot.stat().st_size > 10_000
    assert cam["photoStats"]["frames"] > cam["stats"]["frames"]
    snap = cv2.imread(str(tmp_path / "snap.png"))
    assert snap is not None and snap.shape == (240, 320, 3) and cam["snapshotName"].endswith(".png")

    expected = load(models["student"], mode="full", detector="none").translate(face)
    results = {"WASM": cam["images"]["face"]}
    gpu = pages["webgpu"]
    assert gpu["error"] is None and gpu["webgpuAvailable"] and gpu["backend"] == "WebGPU", (
        f"WebGPU (SwiftShader) did not run: {gpu.get('error') or gpu.get('backend')}")
    results["WebGPU (SwiftShader)"] = gpu["images"]["face"]
    lines = []
    for backend, result in results.items():
        assert np.array_equal(decode_rgb(result, "inputRgb"), face), f"{backend}: the page read other pixels"
        got = decode_rgb(result)
        assert got.shape == expected.shape
        psnr, worst = _psnr(got, expected), int(np.abs(got.astype(int) - expected.astype(int)).max())
        lines.append(f"{backend}: PSNR {psnr:.1f} dB vs the Python runtime (max |diff| {worst})")
        # WASM runs the same kernels as onnxruntime's CPU provider, in fp32: equal up to one rounding step.
        assert psnr >= (50 if backend == "WASM" else 35), lines[-1]
    assert expected.std() > 40, "the test model's output should span the range"

    for name, needle in [("nometa", "has no EdgeGAN metadata"), ("garbage", "is not a readable ONNX model"),
                         ("unsupported", "This browser cannot run unsupported.onnx"), ("missing", "HTTP 404"),
                         ("denied", "Camera permission was denied"), ("nocamera", "No camera found")]:
        message = pages[name]["message"]
        assert message and message["kind"] == "error" and needle in message["text"], (name, message)
    assert not pages["nometa"]["ready"] and pages["denied"]["ready"]  # a camera error leaves photos usable

    bench = cam["benchmark"]
    lines.append(f"in-browser {bench['backend']}: {bench['inferMs']:.2f} ms/inference (min {bench['minInferMs']:.2f}), "
                 f"{bench['prePostInferMs']:.2f} ms/frame incl. pre/post ({bench['size'][0]} px); camera "
                 f"{cam['stats']['fps']:.1f} fps; screenshot {shot}")
    print("\n".join(["", *lines]))
