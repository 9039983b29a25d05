"""edgegan.runtime backends: ONNX Runtime, LiteRT and CoreML loading, dtypes, providers and bad model files.

The test models (``student``, ``models``, ``tflite_model``, ``int8_model``, ``fp16_model``) are session fixtures in
conftest.py.
"""

from __future__ import annotations

import sys

import cv2
import numpy as np
import pytest
import skimage.data

from edgegan.errors import EdgeGANError
from edgegan.runtime import load, load_backend
from edgegan.runtime.backends import ort_providers
from edgegan.runtime.metadata import ModelInfo
from tests.conftest import SIZE, _export_onnx


def test_onnx_backend_matches_torch(student, models):
    import torch

    backend = load_backend(models["onnx"], threads=1)
    assert backend.name == "onnxruntime" and backend.info.input_size == SIZE
    rgb = skimage.data.astronaut()[100:164, 190:254]
    x = backend.info.preprocess(rgb)
    with torch.no_grad():
        ref = student(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(backend(x), ref, atol=1e-4)
    assert backend.info.postprocess(backend(x)).shape == (1, SIZE, SIZE, 3)


def test_litert_backend_nhwc_matches_onnx(models, tflite_model):
    onnx_b = load_backend(models["onnx"], threads=1)
    lite = load_backend(tflite_model, threads=1)
    assert lite.name == "litert" and lite.info.layout == "NHWC"
    rgb = skimage.data.astronaut()[100:164, 190:254]
    a = onnx_b.info.postprocess(onnx_b(onnx_b.info.preprocess(rgb)))
    b = lite.info.postprocess(lite(lite.info.preprocess(rgb)))
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1  # same network, two runtimes: rounding only


def test_int8_and_fp16_models_run(models, int8_model, fp16_model):
    fp32 = load(models["onnx"], mode="full", detector="none", threads=1)
    int8 = load(int8_model, mode="full", detector="none", threads=1)
    assert int8.info.precision == "int8"
    rgb = cv2.resize(skimage.data.astronaut(), (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    diff = np.abs(fp32.translate(rgb).astype(int) - int8.translate(rgb).astype(int)).mean()
    assert diff < 12, diff  # quantization noise, not a different picture

    fp16 = load_backend(fp16_model)
    x = np.linspace(-2, 2, 3 * SIZE * SIZE, dtype=np.float32).reshape(1, 3, SIZE, SIZE)
    y = fp16(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, np.tanh(x), atol=2e-3)


def test_backend_choice_and_its_errors(models, tflite_model, tmp_path):
    assert load_backend(models["onnx"], "ort").name == "onnxruntime"
    with pytest.raises(EdgeGANError, match="--backend litert: cannot run s.onnx"):
        load_backend(models["onnx"], "litert")
    with pytest.raises(EdgeGANError, match="--backend tensorflow: unknown backend"):
        load_backend(models["onnx"], "tensorflow")
    with pytest.raises(EdgeGANError, match="unknown model type '.pt'"):
        load_backend(tmp_path / "model.pt")
    with pytest.raises(EdgeGANError, match="--provider cuda: execution providers are onnxruntime's"):
        load_backend(tflite_model, provider="cuda")
    with pytest.raises(EdgeGANError, match="--threads 0"):
        load_backend(models["onnx"], threads=0)


def test_ort_provider_priority_and_missing_provider(models):
    chosen = ort_providers()
    assert chosen[-1] == "CPUExecutionProvider" and "AzureExecutionProvider" not in chosen
    assert ort_providers("cpu") == ["CPUExecutionProvider"]
    assert "CPU" in load_backend(models["onnx"], provider="cpu").device
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        with pytest.raises(EdgeGANError, match=r"--provider cuda: CUDAExecutionProvider is not in this onnxruntime "
                                               r"build \(available: .*cpu\); pip install onnxruntime-gpu"):
            load_backend(models["onnx"], provider="cuda")
    with pytest.raises(EdgeGANError, match="--provider warp: unknown execution provider"):
        load_backend(models["onnx"], provider="warp")


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # ai_edge_litert's Delegate.__del__
def test_litert_missing_delegate_is_one_line(tflite_model):
    with pytest.raises(EdgeGANError, match="--delegate /nonexistent/libgpu.so: cannot load"):
        load_backend(tflite_model, delegate="/nonexistent/libgpu.so")


@pytest.mark.skipif(sys.platform == "darwin", reason="checks the message CoreML models give off macOS")
def test_coreml_off_macos_is_a_clear_message(tmp_path):
    package = tmp_path / "s.mlpackage"
    package.mkdir()
    with pytest.raises(EdgeGANError, match="CoreML models run only on macOS.*use the .onnx or .tflite export"):
        load(package)


@pytest.mark.skipif(sys.platform != "darwin", reason="CoreML prediction runs only on macOS")
def test_coreml_predicts_on_macos(student, tmp_path):
    import coremltools as ct
    import torch

    from edgegan.runtime.metadata_io import embed_coreml

    traced = torch.jit.trace(student, torch.randn(1, 3, SIZE, SIZE))
    ml = ct.convert(traced, inputs=[ct.TensorType(name="image", shape=(1, 3, SIZE, SIZE))],
                    outputs=[ct.TensorType(name="cartoon")], convert_to="mlprogram")
    path = tmp_path / "s.mlpackage"
    embed_coreml(ml, ModelInfo(model="mobile-s", input_size=SIZE, precision="fp32")).save(str(path))
    out = load(path, mode="full", detector="none").translate(skimage.data.astronaut())
    assert out.shape == (512, 512, 3)


@pytest.mark.parametrize("case", ["missing", "empty", "garbage", "no-metadata", "folder"])
def test_bad_model_files(case, models, tmp_path):
    import onnx

    path = tmp_path / "m.onnx"
    if case == "empty":
        path.write_bytes(b"")
    elif case == "garbage":
        path.write_bytes(b"\x08\x07garbage that is not a protobuf" * 10)
    elif case == "no-metadata":
        model = onnx.load(str(models["onnx"]))
        del model.metadata_props[:]
        onnx.save(model, str(path))
    elif case == "folder":
        path.mkdir()
    with pytest.raises(EdgeGANError) as err:
        load_backend(path)
    message = str(err.value)
    assert str(path) in message and "\n" not in message
    assert {"missing": "no such model file", "empty": "empty file", "no-metadata": "no EdgeGAN metadata",
            "folder": "is a folder"}.get(case, "") in message


def test_metadata_that_contradicts_the_model(student, tmp_path):
    wrong = _export_onnx(student, tmp_path / "w.onnx", ModelInfo(model="mobile-s", input_size=SIZE, precision="fp32",
                                                                 layout="NHWC"))
    with pytest.raises(EdgeGANError, match=r"w.onnx: model input shape \(1, 3, 64, 64\) does not match its metadata"):
        load_backend(wrong)
