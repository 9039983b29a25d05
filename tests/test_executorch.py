"""ExecuTorch (.pte): the export target per precision on real photos (fp32 >= 60 dB, fp16 >= 45 dB, INT8 on NNCF's
grids within 1 dB of NNCF's own figure; ExecuTorch's own XNNPACKQuantizer held to its own figure), the metadata read
back without torch, the delegation summary, the backend and its bench rows, and the one-line errors of a machine
without torch (ExecuTorch's Python runtime needs it) or without the extra."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

if os.environ.get("CI"):
    import executorch  # noqa: F401  (CI installs every extra, this one included: missing is a failure, not a skip)
else:
    pytest.importorskip("executorch", reason="needs the executorch extra: pip install 'edgegan[executorch]'")
pytest.importorskip("nncf", reason="INT8 exports need the quantize extra: pip install 'edgegan[quantize]'")
pytest.importorskip("onnxruntime", reason="needs the export extra: pip install 'edgegan[export]'")

import torch

from edgegan.data.unpaired import to_model_range
from edgegan.errors import EdgeGANError
from edgegan.export import executorch as et
from edgegan.export import export, resolve_targets, validate
from edgegan.export.source import load_source
from edgegan.runtime.backends import load_backend
from edgegan.runtime.bench import bench_models, format_latency
from edgegan.runtime.formats import read_model_info
from edgegan.runtime.quality import compare
from tests.conftest import EXPORT_SIZE as SIZE
from tests.conftest import run_without_torch

pytestmark = [pytest.mark.export, pytest.mark.usefixtures("one_thread")]


@pytest.fixture(scope="module")
def et_exports(export_student, tmp_path_factory):
    """ExecuTorch in every precision (INT8: NNCF PTQ on the demo-photo tiles), and the ONNX fp32 file beside it."""
    out = tmp_path_factory.mktemp("et")
    results = export(export_student, "executorch", "all", out=out, runs=2) + \
        export(export_student, "onnx", "fp32", out=out, runs=2)
    return out, {(r.target, r.precision): r for r in results}


@pytest.fixture(scope="module")
def reference(export_student):
    """(validation photos as model input, NCHW float32; fp32 PyTorch outputs on them)."""
    x = to_model_range(validate.demo_photos(SIZE))
    with torch.no_grad():
        return x, load_source(export_student).model(torch.from_numpy(x)).numpy()


def run_pte(path: Path, x: np.ndarray) -> np.ndarray:
    """The file through ExecuTorch's own runtime, without edgegan's backend (batch 1 each). Inputs are made contiguous
    (ExecuTorch reads a tensor's memory in its own dim order, whatever its strides), outputs copied (they live in
    the method's planned memory, which the next call overwrites)."""
    from executorch.runtime import Runtime

    method = Runtime.get().load_program(path).load_method("forward")
    dtype = torch.float16 if read_model_info(path).precision == "fp16" else torch.float32
    ys = []
    for i in range(len(x)):
        (y,) = method.execute([torch.from_numpy(np.ascontiguousarray(x[i:i + 1])).to(dtype)])
        ys.append(y.float().numpy().copy())
    return np.concatenate(ys)


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_executorch_export_matches_pytorch_on_real_photos(et_exports, reference, precision):
    out, results = et_exports
    r = results["executorch", precision]
    assert r.status == "ok", r.message
    path = Path(r.path)
    assert path.suffix == ".pte" and path.parent == out and r.bytes == path.stat().st_size
    assert r.runtime.startswith("executorch (Xnnpack") and r.latency_ms > 0
    assert not list(out.glob(".*partial*")), "temporary files left behind"
    x, ref = reference
    parity = compare(run_pte(path, x), ref)
    assert abs(parity.max_abs - r.parity["max_abs"]) < 1e-3 or precision == "int8", (parity, r.parity)
    if precision == "int8":
        # NNCF's grids, not a re-quantization: the file computes NNCF's fake-quant model, within 1 dB of its figure
        assert r.parity["vs_nncf_torch"]["psnr_db"] > 35, r.parity
        assert parity.psnr_db >= r.parity["nncf_torch_psnr_db"] - validate.INT8_MARGIN_DB, (parity, r.parity)
        assert parity.psnr_db < 70, "INT8 identical to fp32: not quantized"
    else:
        assert parity.psnr_db >= validate.MIN_PSNR[precision], parity
        if precision == "fp16":
            assert parity.psnr_db < 120, "fp16 identical to fp32: not converted"
    info = read_model_info(path)
    assert (info.model, info.input_size, info.precision, info.layout, info.dynamic_size) == (
        "mobile-s", SIZE, precision, "NCHW", False)
    assert info.extra["executorch"].startswith("1.")


def test_delegation_summary_names_the_ops_xnnpack_leaves_out(et_exports):
    """mobile-s: every conv, clamp and add in XNNPACK; the two nearest-neighbour up-samplings (which XNNPACK has no
    kernel for) on ExecuTorch's CPU kernels, splitting the graph into three XNNPACK partitions."""
    _, results = et_exports
    for precision in ("fp32", "fp16", "int8"):
        d = read_model_info(results["executorch", precision].path).extra["delegation"]
        assert d["backends"] == ["XnnpackBackend"] and d["partitions"] == 3, d
        assert d["not_delegated"] == {"aten_upsample_nearest2d_vec": 2}, d
        assert d["delegated"]["aten_convolution_default"] > 10, d
        if precision == "int8":
            assert any("quantize_per_tensor" in op for op in d["delegated"]), d
        line = et.format_delegation(d)
        assert line.startswith("XnnpackBackend: ") and "in 3 partitions" in line and "upsample_nearest2d" in line


def test_other_partitioners_take_the_whole_graph(export_student):
    """NPU/GPU readiness without the device: Vulkan (Android GPUs) takes the graph XNNPACK splits, in one piece."""
    cov = et.delegate_coverage(load_source(export_student).model, SIZE, ("vulkan",))
    assert cov["vulkan"]["backends"] == ["VulkanBackend"] and cov["vulkan"]["partitions"] == 1, cov
    assert cov["vulkan"]["not_delegated"] == {}, cov
    with pytest.raises(EdgeGANError, match="partitioner 'qnn'"):
        et.delegate_coverage(load_source(export_student).model, SIZE, ("qnn",))


def test_backend_runs_pte_files_and_agrees_with_onnxruntime(et_exports):
    _, results = et_exports
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, SIZE, SIZE)).astype(np.float32)
    ref = load_backend(results["onnx", "fp32"].path, threads=1)(x)
    b = load_backend(results["executorch", "fp32"].path, threads=1)
    assert b.name == "executorch" and b.device == "Xnnpack, 1 threads", b.device
    y = b(x)
    assert y.dtype == np.float32 and y.shape == ref.shape
    np.testing.assert_allclose(y, ref, atol=1e-4)
    b(-x)
    np.testing.assert_allclose(y, ref, atol=1e-4)  # the returned array is not the runtime's reused buffer
    half = load_backend(results["executorch", "fp16"].path, "pte", threads=1)
    assert half.input_dtype == np.float16
    assert compare(half(x), ref).psnr_db > 45
    # ExecuTorch's thread pool is one per process and loaded methods point at it: no resizing under open models
    with pytest.raises(EdgeGANError, match=r"--threads 2: ExecuTorch's thread pool .* runs 1 threads for "):
        load_backend(results["executorch", "int8"].path, threads=2)
    b.close()
    half.close()
    two = load_backend(results["executorch", "int8"].path, threads=2)
    assert two.device.endswith("2 threads") and two.lib._threadpool_get_thread_count() == 2
    assert compare(two(x), ref).psnr_db > 20
    two.close()


def test_bench_times_pte_rows_next_to_onnxruntime(et_exports):
    out, _ = et_exports
    rows = bench_models(out, threads=1, runs=3)
    et_rows = {r.precision: r for r in rows if r.backend == "executorch"}
    assert set(et_rows) == {"fp32", "fp16", "int8"}, format_latency(rows)
    assert all(r.median_ms > 0 and r.psnr_db is not None for r in et_rows.values()), format_latency(rows)
    assert et_rows["fp32"].psnr_db > 60 and et_rows["fp16"].psnr_db > 45 and 20 < et_rows["int8"].psnr_db < 70
    assert "executorch" in format_latency(rows)


def test_xnnpack_quantizer_is_held_to_its_own_figure(export_student, reference, tmp_path):
    """``--executorch-quantizer xnnpack``: ExecuTorch's own INT8 (XNNPACKQuantizer, PT2E observers) on the same
    calibration photos as NNCF; the .pte computes its quantizer's model and is held to NNCF's result."""
    x, ref = reference
    (r,) = export(export_student, "executorch", "int8", out=tmp_path, runs=1, executorch_quantizer="xnnpack")
    assert r.status == "ok", r.message
    info = read_model_info(r.path)
    assert info.precision == "int8" and "XNNPACKQuantizer" in info.extra["int8"]
    assert "ExecuTorch's own quantizer" in info.extra["int8_from"] and "36 photos" in info.extra["int8_from"]
    qmodel = et.xnnpack_quantize(load_source(export_student).model, to_model_range(validate.demo_calibration(SIZE)))
    with torch.no_grad():
        own = compare(qmodel(torch.from_numpy(x)).numpy(), ref)
    parity = compare(run_pte(r.path, x), ref)
    assert 20 < own.psnr_db < 70, own
    assert parity.psnr_db >= own.psnr_db - validate.INT8_MARGIN_DB, (parity, own)
    assert parity.psnr_db >= r.threshold_db == pytest.approx(r.parity["nncf_torch_psnr_db"] - 1, abs=0.01)
    with pytest.raises(EdgeGANError, match="--executorch-quantizer 'pt2e': choose from nncf, xnnpack"):
        export(export_student, "executorch", "int8", out=tmp_path, executorch_quantizer="pt2e")


def test_metadata_reads_without_torch_and_the_backend_says_it_needs_torch(et_exports):
    _, results = et_exports
    path = results["executorch", "int8"].path
    run_without_torch(f"""
        from edgegan.errors import EdgeGANError
        from edgegan.runtime.backends import load_backend
        from edgegan.runtime.formats import read_model_info

        info = read_model_info({path!r})
        assert info.precision == "int8" and info.extra["delegation"]["partitions"] == 3, info
        try:
            load_backend({path!r})
        except EdgeGANError as err:
            message = str(err)
        else:
            raise AssertionError("a .pte opened without torch")
        assert "needs torch" in message and "edgegan[executorch]" in message and "\\n" not in message, message
    """)


def test_damaged_or_foreign_pte_files_fail_with_one_line(et_exports, tmp_path):
    _, results = et_exports
    data = Path(results["executorch", "fp32"].path).read_bytes()
    cut = tmp_path / "cut.pte"
    cut.write_bytes(data[:64])
    with pytest.raises(EdgeGANError, match="cut.pte: corrupt or unreadable pte model"):
        read_model_info(cut)
    plain = tmp_path / "plain.pte"  # lowered by ExecuTorch itself: no EdgeGAN metadata method
    edge, _ = et.lower(torch.nn.Conv2d(3, 3, 1), torch.zeros(1, 3, 8, 8))
    plain.write_bytes(edge.to_executorch().buffer)
    with pytest.raises(EdgeGANError, match="has no EdgeGAN metadata"):
        read_model_info(plain)
    garbage = tmp_path / "garbage.pte"
    garbage.write_bytes(b"\x00" * 16 + data[16:])
    with pytest.raises(EdgeGANError, match="garbage.pte"):
        load_backend(garbage)


def test_missing_extra_is_named_and_all_skips_it(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "executorch" else real(name, *a))
    with pytest.raises(EdgeGANError, match=r"--target executorch: executorch not installed: .*edgegan\[executorch\]"):
        resolve_targets("executorch")
    wanted, skipped = resolve_targets("all")
    assert "executorch" not in wanted and [s.target for s in skipped if s.target == "executorch"] == ["executorch"]
