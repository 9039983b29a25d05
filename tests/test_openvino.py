"""OpenVINO: the export target (parity on real photos, metadata, .xml + .bin kept together), the torch-free
backend (on .xml and on .onnx files), device choice and its errors, and the bench rows."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("openvino", reason="needs the openvino extra: pip install 'edgegan[openvino]'")
pytest.importorskip("nncf", reason="INT8 exports need the quantize extra: pip install 'edgegan[quantize]'")

from edgegan.errors import EdgeGANError
from edgegan.export import export
from edgegan.runtime.backends import load_backend, ov_device
from edgegan.runtime.bench import bench_models, format_latency
from edgegan.runtime.formats import read_model_info
from tests.conftest import EXPORT_SIZE as SIZE
from tests.conftest import subprocess_env


@pytest.fixture(scope="module")
def ov_exports(export_student, tmp_path_factory):
    out = tmp_path_factory.mktemp("ov")
    results = export(export_student, ["openvino", "onnx"], "all", out=out, runs=2)
    return out, {(r.target, r.precision): r for r in results}


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_openvino_export_matches_pytorch_on_real_photos(ov_exports, precision):
    out, results = ov_exports
    r = results["openvino", precision]
    assert r.status == "ok", r.message
    xml = Path(r.path)
    assert xml.suffix == ".xml" and xml.with_suffix(".bin").is_file()
    assert r.parity["psnr_db"] >= r.threshold_db
    if precision == "int8":
        # the same NNCF grids as the ONNX QDQ file: within the quantizer's tolerance of its own result
        assert abs(r.parity["psnr_db"] - results["onnx", "int8"].parity["psnr_db"]) < 2.0
    info = read_model_info(xml)
    assert (info.model, info.input_size, info.precision, info.layout) == ("mobile-s", SIZE, precision, "NCHW")
    assert not list(out.glob(".*partial*")), "temporary files left behind"


def test_backend_runs_xml_and_onnx_files_and_agrees(ov_exports):
    out, results = ov_exports
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, SIZE, SIZE)).astype(np.float32)
    ref = load_backend(results["onnx", "fp32"].path)(x)  # onnxruntime
    for path, backend in ((results["openvino", "fp32"].path, None), (results["onnx", "fp32"].path, "openvino")):
        b = load_backend(path, backend, threads=1, precision_hint="f32")
        assert b.name == "openvino" and "CPU" in b.device and "f32" in b.device
        np.testing.assert_allclose(b(x), ref, atol=1e-4)


def test_device_choice_falls_back_and_names_what_is_missing():
    cpu_only = SimpleNamespace(available_devices=["CPU"])
    with_gpu = SimpleNamespace(available_devices=["CPU", "GPU.0", "GPU.1"])
    assert ov_device(cpu_only, None) == "CPU"
    assert ov_device(cpu_only, "auto") == "CPU"
    assert ov_device(with_gpu, "auto") == "AUTO"
    assert ov_device(with_gpu, "gpu") == "GPU"
    assert ov_device(with_gpu, "gpu.1") == "GPU.1"
    with pytest.raises(EdgeGANError, match=r"--device npu: not on this machine \(OpenVINO sees: CPU\)"):
        ov_device(cpu_only, "npu")
    with pytest.raises(EdgeGANError, match="--device gpu.2: not on this machine"):
        ov_device(with_gpu, "gpu.2")
    with pytest.raises(EdgeGANError, match="--device tpu: unknown OpenVINO device"):
        ov_device(cpu_only, "tpu")


def test_bad_inputs_are_one_line(ov_exports, tmp_path):
    out, results = ov_exports
    xml = Path(results["openvino", "fp32"].path)
    lone = tmp_path / xml.name
    lone.write_bytes(xml.read_bytes())  # the .xml without its .bin
    cases = [
        (lambda: load_backend(lone), "weights .* are missing next to it"),
        (lambda: load_backend(xml, precision_hint="int4"), "--precision-hint int4: choose from"),
        (lambda: load_backend(results["onnx", "fp32"].path, device="gpu"), "--device gpu: an OpenVINO option"),
        (lambda: load_backend(xml, device="npu"), "--device npu: not on this machine"),
    ]
    not_ir = tmp_path / "page.xml"
    not_ir.write_text("<html><body/></html>")
    cases.append((lambda: read_model_info(not_ir), "not an OpenVINO IR"))
    for call, message in cases:
        with pytest.raises(EdgeGANError, match=message) as err:
            call()
        assert "\n" not in str(err.value)


def test_bench_table_has_openvino_rows_with_parity(ov_exports):
    out, _ = ov_exports
    rows = bench_models(out, threads=1, runs=3)
    ov_rows = [r for r in rows if r.backend == "openvino" and r.median_ms is not None]
    assert {r.model.rsplit(".", 1)[1] for r in ov_rows} == {"xml", "onnx"}
    assert {r.precision for r in ov_rows} == {"fp32", "fp16", "int8"}
    f32 = [r for r in ov_rows if r.precision == "fp32" and r.hint == "f32"]
    assert f32 and all(r.psnr_db > 60 for r in f32)
    table = format_latency(rows)
    assert "openvino" in table and "fastest here:" in table


def test_openvino_backend_without_torch(ov_exports):
    out, results = ov_exports
    script = f"""
    import importlib.abc, sys

    class NoTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ModuleNotFoundError(name)

    sys.meta_path.insert(0, NoTorch())
    import numpy as np
    from edgegan.runtime import load
    c = load({results["openvino", "int8"].path!r}, mode="full", detector="none", threads=1)
    y = c.cartoonize(np.full((48, 80, 3), 128, np.uint8))
    assert y.shape == (48, 80, 3) and c.backend.name == "openvino"
    assert not [m for m in sys.modules if m == "torch" or m.startswith("torch.")]
    print("OV-NO-TORCH-OK")
    """
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True,
                          env=subprocess_env(), timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "OV-NO-TORCH-OK" in proc.stdout
