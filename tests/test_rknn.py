"""RKNN (Rockchip NPUs): the export target converted by rknn-toolkit2 in its own environment and checked on real
photos in its x86 simulator, the sidecar metadata, the runtime's answer off the board, the board backend's
handling of the NPU's uint8 input, and the requests that must fail with one line."""

from __future__ import annotations

import json
import math
import platform
import sys
import types
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("nncf", reason="INT8 exports need the quantize extra: pip install 'edgegan[quantize]'")

from edgegan.errors import EdgeGANError
from edgegan.export import export, resolve_targets, rknn, validate
from edgegan.runtime.backends import cannot_run_here, load_backend
from edgegan.runtime.formats import read_model_info
from tests.conftest import EXPORT_SIZE as SIZE
from tests.conftest import assert_one_line_error, cli, run_without_torch

pytestmark = [pytest.mark.export, pytest.mark.usefixtures("one_thread")]


@pytest.fixture(scope="module")
def toolkit() -> str:
    if sys.platform != "linux" or platform.machine() != "x86_64":
        pytest.skip(f"rknn-toolkit2 converts on x86_64 Linux only (this is {platform.machine()} {sys.platform})")
    python, why = rknn.converter_python()
    if python is None:
        pytest.fail(f"{why}: {rknn.SETUP} (make test does)")
    return python


@pytest.fixture(scope="module")
def exported(toolkit, export_student, tmp_path_factory):
    out = tmp_path_factory.mktemp("rknn")
    results = export(export_student, "rknn", "all", out=out, runs=2)
    return out, {r.precision: r for r in results}


def test_exports_match_pytorch_in_the_simulator(exported):
    out, results = exported
    assert results["fp32"].status == "skipped" and "no fp32" in results["fp32"].message
    for precision in ("fp16", "int8"):
        r = results[precision]
        assert r.status == "simulated", r.message
        assert r.runtime == "rknn-toolkit2 simulator (rk3588)" and r.latency_ms is None  # no NPU, no timing
        path = Path(r.path)
        assert path.parent == out and path.name == f"mobile-s_{SIZE}px_{precision}.rknn"
        assert path.read_bytes()[:4] == b"RKNN"
        psnr = r.parity["psnr_db"]
        if precision == "fp16":
            assert validate.MIN_PSNR["fp16"] <= psnr < 120, r.parity  # fp16 on the NPU: close, not identical
        else:
            nncf = r.parity["nncf_torch_psnr_db"]  # the toolkit's own quantizer, held to NNCF's result
            assert nncf > 25 and not math.isinf(psnr) and nncf - validate.INT8_MARGIN_DB <= psnr < 70, r.parity
        info = read_model_info(path)
        assert (info.precision, info.layout, info.input_size, info.dynamic_size) == (precision, "NCHW", SIZE, False)
        assert info.extra["platform"] == "rk3588" and info.extra["rknn_toolkit2"] == "2.5.0"
        assert "uint8" in info.extra["input"]
    assert "rknn-toolkit2's own quantizer" in read_model_info(results["int8"].path).extra["int8_from"]


def test_files_and_nothing_left_behind(exported):
    out, results = exported
    expected = {"export.json"}
    for precision in ("fp16", "int8"):
        path = Path(results[precision].path)
        expected |= {path.name, path.with_suffix(".json").name}
        assert results[precision].bytes == path.stat().st_size + path.with_suffix(".json").stat().st_size
    assert {p.name for p in out.iterdir()} == expected  # no .partial files, no calibration images
    report = json.loads((out / "export.json").read_text())
    assert {(r["precision"], r["status"]) for r in report["results"]} == {
        ("fp32", "skipped"), ("fp16", "simulated"), ("int8", "simulated")}


def test_sidecar_must_belong_to_the_model(exported, tmp_path):
    _, results = exported
    src = Path(results["fp16"].path)
    model = tmp_path / "m.rknn"
    model.write_bytes(src.read_bytes())
    model.with_suffix(".json").write_bytes(src.with_suffix(".json").read_bytes())
    assert read_model_info(model).precision == "fp16"
    model.write_bytes(Path(results["int8"].path).read_bytes())  # another export under this sidecar
    with pytest.raises(EdgeGANError, match=r"m\.json describes another file \(m\.rknn"):
        read_model_info(model)
    model.with_suffix(".json").unlink()
    with pytest.raises(EdgeGANError, match="has no EdgeGAN metadata"):
        read_model_info(model)
    junk = tmp_path / "junk.rknn"
    junk.write_bytes(b"hello")
    with pytest.raises(EdgeGANError, match=r"not a \.rknn model file"):
        read_model_info(junk)


def test_runtime_says_where_rknn_runs(exported):
    path = exported[1]["fp16"].path
    assert "Rockchip board's NPU" in cannot_run_here(path)
    with pytest.raises(EdgeGANError, match=r"run on a Rockchip board's NPU \(rknn-toolkit-lite2") as err:
        load_backend(path)
    assert "\n" not in str(err.value)


def fake_rknnlite(monkeypatch, *, init: int = 0) -> dict:
    """rknn-toolkit-lite2's API (``rknnlite.api.RKNNLite``) as a board would offer it, recording each call."""
    calls: dict = {"inputs": [], "released": 0}

    class RKNNLite:
        NPU_CORE_AUTO = 0

        def __init__(self, verbose=False):
            pass

        def load_rknn(self, path):
            calls["loaded"] = path
            return 0 if Path(path).read_bytes()[:4] == b"RKNN" else -1

        def init_runtime(self, core_mask=0):
            calls["core_mask"] = core_mask
            return init

        def inference(self, inputs, data_format="nhwc"):
            calls["inputs"].append((inputs[0].copy(), data_format))
            n, h, w, _ = inputs[0].shape
            return [np.full((n, 3, h, w), 0.5, np.float32)]

        def release(self):
            calls["released"] += 1

    api = types.ModuleType("rknnlite.api")
    api.RKNNLite = RKNNLite
    monkeypatch.setitem(sys.modules, "rknnlite", types.ModuleType("rknnlite"))
    monkeypatch.setitem(sys.modules, "rknnlite.api", api)
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    monkeypatch.setattr(sys, "platform", "linux")
    return calls


def test_board_backend_hands_the_npu_the_uint8_frame(exported, monkeypatch):
    path = exported[1]["int8"].path
    calls = fake_rknnlite(monkeypatch)
    backend = load_backend(path)
    assert (backend.name, backend.device) == ("rknnlite", "NPU (rk3588)") and calls["loaded"] == str(path)
    photos = validate.demo_photos(SIZE)[:2]
    out = backend.translate(photos)
    frames = [frame for frame, _ in calls["inputs"]]
    assert [layout for _, layout in calls["inputs"]] == ["nhwc", "nhwc"]
    assert all(f.dtype == np.uint8 for f in frames)
    np.testing.assert_array_equal(np.concatenate(frames), photos)  # the frame itself, not a rounded copy
    assert out.shape == photos.shape and (out == 191).all()  # 0.5 in [-1, 1] -> 191
    backend.close()
    backend.close()
    assert calls["released"] == 1


def test_board_backend_errors_are_one_line(exported, monkeypatch, tmp_path):
    path = exported[1]["fp16"].path
    fake_rknnlite(monkeypatch, init=-1)
    with pytest.raises(EdgeGANError, match=r"did not start \(is the NPU driver, rknpu2, installed\?\)"):
        load_backend(path)
    monkeypatch.setitem(sys.modules, "rknnlite", None)
    monkeypatch.setitem(sys.modules, "rknnlite.api", None)
    with pytest.raises(EdgeGANError, match="pip install rknn-toolkit-lite2"):
        load_backend(path)


def test_missing_toolkit_is_one_line(export_student, tmp_path, monkeypatch):
    monkeypatch.setenv(rknn.ENV_VAR, str(tmp_path / "no-python"))
    code, _, err = cli("export", "--model", export_student, "--target", "rknn", "--precision", "fp16",
                       "--out", tmp_path / "o")
    assert_one_line_error(code, err, "--target rknn", "EDGEGAN_RKNN_PYTHON=", "no such file", "setup_rknn.sh")
    assert not (tmp_path / "o").exists()
    wanted, skipped = resolve_targets("all")
    assert "rknn" not in wanted and [s.target for s in skipped] == ["rknn"] and "setup_rknn.sh" in skipped[0].message


def test_bad_requests_are_one_line(toolkit, export_student, tmp_path):
    for flags, needles in ((["--rknn-platform", "rk9999"], ("--rknn-platform 'rk9999'", "rk3588")),
                           (["--precision", "fp32"], ("--precision fp32", "rknn has none of it", "fp16, int8"))):
        code, _, err = cli("export", "--model", export_student, "--target", "rknn", *flags, "--out", tmp_path / "o")
        assert_one_line_error(code, err, *needles)
    assert not (tmp_path / "o").exists()


def test_converter_failure_is_one_line(toolkit, tmp_path):
    (tmp_path / "bad.onnx").write_bytes(b"not an onnx model")
    job = {"onnx": str(tmp_path / "bad.onnx"), "out": str(tmp_path / "m.rknn"), "platform": "rk3588", "int8": False,
           "algorithm": rknn.ALGORITHM, "mean": [127.5] * 3, "std": [127.5] * 3}
    (tmp_path / "job.json").write_text(json.dumps(job))
    with pytest.raises(EdgeGANError, match=r"^rknn-toolkit2: load_onnx failed: .*Error parsing message") as err:
        rknn._run_converter(toolkit, tmp_path / "job.json")
    assert "\n" not in str(err.value) and not (tmp_path / "m.rknn").exists()


def test_board_backend_runs_without_torch(exported):
    """On the board there is no torch: the pipeline opens the .rknn through rknn-toolkit-lite2 (here an identity
    NPU that returns the frame it was given, in the network's range) and gives back the photo it was handed."""
    path = exported[1]["fp16"].path
    run_without_torch(f"""
    import platform, types
    import numpy as np

    class RKNNLite:
        NPU_CORE_AUTO = 0
        def __init__(self, verbose=False): pass
        def load_rknn(self, path): return 0
        def init_runtime(self, core_mask=0): return 0
        def release(self): pass
        def inference(self, inputs, data_format=None):
            assert inputs[0].dtype == np.uint8 and data_format == "nhwc"
            return [(inputs[0].transpose(0, 3, 1, 2) / 127.5 - 1).astype(np.float32)]

    api = types.ModuleType("rknnlite.api")
    api.RKNNLite = RKNNLite
    sys.modules.update({{"rknnlite": types.ModuleType("rknnlite"), "rknnlite.api": api}})
    platform.machine = lambda: "aarch64"
    from edgegan.runtime import load
    c = load({str(path)!r}, mode="full", detector="none")
    frame = np.random.default_rng(0).integers(0, 256, ({SIZE}, {SIZE}, 3), dtype=np.uint8)
    assert c.backend.name == "rknnlite"
    assert np.array_equal(c.cartoonize(frame), frame)
    c.close()
    """)
