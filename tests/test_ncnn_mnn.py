"""ncnn and MNN: the export targets (parity against PyTorch on real photos, run here through each runtime's own
Python package), their metadata (ncnn's sidecar, MNN's bizCode), the torch-free backends, the bench rows, the
numpy ncnn2table/ncnn2int8, and the inputs that must fail with one line."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("ncnn", reason="needs the ncnn extra: pip install 'edgegan[ncnn]'")
pytest.importorskip("pnnx", reason="needs the ncnn extra: pip install 'edgegan[ncnn]'")
pytest.importorskip("MNN", reason="needs the mnn extra: pip install 'edgegan[mnn]'")
pytest.importorskip("nncf", reason="INT8 exports need the quantize extra: pip install 'edgegan[quantize]'")

from edgegan.data.unpaired import to_model_range
from edgegan.errors import EdgeGANError
from edgegan.export import export, resolve_targets, validate
from edgegan.export.ncnn_int8 import BINS, kl_threshold, read_param
from edgegan.export.source import load_source
from edgegan.runtime.backends import load_backend, ncnn_gpu_count, ncnn_module
from edgegan.runtime.bench import bench_models, format_latency
from edgegan.runtime.formats import format_of, read_model_info
from edgegan.runtime.quality import compare
from tests.conftest import EXPORT_SIZE as SIZE
from tests.conftest import run_without_torch

pytestmark = [pytest.mark.export, pytest.mark.usefixtures("one_thread")]

CASES = [(t, p) for t in ("ncnn", "mnn") for p in ("fp32", "fp16", "int8")]


@pytest.fixture(scope="module")
def exported(export_student, tmp_path_factory):
    out = tmp_path_factory.mktemp("ncnn_mnn")
    results = export(export_student, ["ncnn", "mnn"], "all", out=out, runs=2)
    return out, {(r.target, r.precision): r for r in results}


@pytest.fixture(scope="module")
def reference(export_student) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 validation photos, fp32 PyTorch outputs in [-1, 1], NCHW)."""
    photos = validate.demo_photos(SIZE)
    with torch.no_grad():
        ref = load_source(export_student).model(torch.from_numpy(to_model_range(photos))).numpy()
    return photos, ref


def run_independently(path: Path, x: np.ndarray) -> np.ndarray:
    """The file through its runtime's own Python API, without edgegan.runtime: (N, 3, H, W) -> outputs."""
    ys = []
    if path.suffix == ".param":
        import ncnn

        net = ncnn.Net()
        net.opt.use_fp16_storage = net.opt.use_fp16_packed = net.opt.use_fp16_arithmetic = False
        net.opt.use_bf16_storage = False
        assert net.load_param(str(path)) == 0 and net.load_model(str(path.with_suffix(".bin"))) == 0
        for chw in x:
            with net.create_extractor() as ex:
                ex.input("image", ncnn.Mat(np.ascontiguousarray(chw)).clone())
                ret, y = ex.extract("cartoon")
                assert ret == 0
                ys.append(np.array(y)[None])
    else:
        import MNN.expr as F
        import MNN.nn

        module = MNN.nn.load_module_from_file(str(path), ["image"], ["cartoon"],
                                              precision_mode=F.PrecisionMode.High)
        for chw in x:
            y = module.forward([F.const(chw[None].copy(), [1, *chw.shape], F.NCHW)])[0]
            ys.append(np.array(F.convert(y, F.NCHW).read()))
    return np.concatenate(ys)


# ------------------------------------------------------------------------------------ parity
@pytest.mark.parametrize("target,precision", CASES)
def test_exports_match_pytorch_on_real_photos(exported, reference, target, precision):
    out, results = exported
    r = results[target, precision]
    assert r.status == "ok", r.message
    path = Path(r.path)
    assert path.parent == out and format_of(path).name == target
    photos, ref = reference
    info = read_model_info(path)
    parity = compare(run_independently(path, info.preprocess(photos)), ref)
    if precision == "int8":
        # the target's own quantizer, held to NNCF's result on the same photos (minus 1 dB) and really quantized
        nncf = r.parity["nncf_torch_psnr_db"]
        assert nncf > 25 and not math.isinf(parity.psnr_db) and parity.psnr_db < 70, (parity, r.parity)
        assert parity.psnr_db >= nncf - validate.INT8_MARGIN_DB, (parity, r.parity)
        assert abs(parity.psnr_db - r.parity["psnr_db"]) < 1.0, (parity, r.parity)
    else:
        assert parity.psnr_db >= validate.MIN_PSNR[precision], parity
        assert r.parity["max_abs"] == pytest.approx(parity.max_abs, abs=2e-3)
        if precision == "fp16":
            assert parity.psnr_db < 120, "fp16 export identical to fp32: weights not stored as fp16"
    assert r.latency_ms and r.latency_ms > 0 and r.runtime.startswith(target)


def test_files_sizes_and_nothing_left_behind(exported):
    out, results = exported
    for precision in ("fp32", "fp16", "int8"):
        param = Path(results["ncnn", precision].path)
        assert param.name.endswith(f"_{precision}.ncnn.param")
        parts = [param, param.with_suffix(".bin"), param.with_suffix(".json")]
        assert all(p.is_file() for p in parts) and param.with_suffix(".json").name.endswith(".ncnn.json")
        assert results["ncnn", precision].bytes == sum(p.stat().st_size for p in parts)
    for target in ("ncnn", "mnn"):
        fp32, fp16, int8 = (results[target, p].bytes for p in ("fp32", "fp16", "int8"))
        assert 0 < int8 < fp16 < 0.8 * fp32, (target, fp32, fp16, int8)
    expected = {Path(r.path).name for r in results.values()} | {"export.json"}
    expected |= {Path(results["ncnn", p].path).with_suffix(s).name for p in ("fp32", "fp16", "int8")
                 for s in (".bin", ".json")}
    assert {p.name for p in out.iterdir()} == expected  # no .partial files, no quantizer side files


def test_graphs_say_what_they_are(exported):
    from edgegan.export import mnn

    _, results = exported
    layers = read_param(Path(results["ncnn", "int8"].path))
    assert [t for layer in layers if layer.type == "Input" for t in layer.tops] == ["image"]
    convs = [layer for layer in layers if layer.type in ("Convolution", "ConvolutionDepthWise")]
    # NNCF's recipe keeps stem, up1, up2 and head (1 + 2 + 2 + 1 convs) in fp32; both targets follow it, MNN also down
    assert len(convs) == 31 and [layer.param(8) > 0 for layer in convs] == [False] + [True] * 25 + [False] * 5
    ops = mnn.op_counts(Path(results["mnn", "int8"].path), SIZE)
    assert sum(n for op, n in ops.items() if op.startswith("Convolution") and "DT_INT8" in op) == 24, ops
    assert not any("DT_INT8" in op for op in ops if op.startswith(("UnaryOp", "Raster"))), ops  # input, tanh, output
    assert not any("DT_INT8" in op for op in mnn.op_counts(Path(results["mnn", "fp32"].path), SIZE))


# ------------------------------------------------------------------------------------ metadata
@pytest.mark.parametrize("target,precision", CASES)
def test_metadata_round_trip(exported, target, precision):
    _, results = exported
    info = read_model_info(results[target, precision].path)
    assert (info.model, info.input_size, info.precision, info.layout) == ("mobile-s", SIZE, precision, "NCHW")
    assert (info.input_name, info.output_name) == ("image", "cartoon")
    assert info.extra[target] and info.dynamic_size == (target == "ncnn" or precision != "int8")
    if precision == "int8":
        assert "own quantiz" in info.extra["int8_from"] and "NNCF" in info.extra["int8_from"]


def test_mnn_metadata_lives_in_the_file(exported, tmp_path):
    _, results = exported
    src = Path(results["mnn", "fp16"].path)
    copy = tmp_path / "renamed.mnn"
    copy.write_bytes(src.read_bytes())  # nothing travels with it
    assert read_model_info(copy) == read_model_info(src)
    assert b'"format": "edgegan-model-v1"' in src.read_bytes()


def test_ncnn_sidecar_must_belong_to_the_model(exported, tmp_path):
    _, results = exported
    src = Path(results["ncnn", "fp32"].path)
    for suffix in (".param", ".bin", ".json"):
        (tmp_path / f"m.ncnn{suffix}").write_bytes(src.with_suffix(suffix).read_bytes())
    model = tmp_path / "m.ncnn.param"
    assert read_model_info(model).precision == "fp32"
    other = Path(results["ncnn", "fp16"].path).with_suffix(".bin")
    model.with_suffix(".bin").write_bytes(other.read_bytes())  # weights of another export
    with pytest.raises(EdgeGANError, match=r"m\.ncnn\.json describes another file \(m\.ncnn\.bin"):
        read_model_info(model)
    model.with_suffix(".json").unlink()
    with pytest.raises(EdgeGANError, match="has no EdgeGAN metadata"):
        read_model_info(model)


# ------------------------------------------------------------------------------------ runtime
def test_backends_run_other_sizes_and_agree(exported):
    _, results = exported
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, 48, 64)).astype(np.float32)
    ncnn_b = load_backend(results["ncnn", "fp32"].path, threads=1)
    mnn_b = load_backend(results["mnn", "fp32"].path, threads=1)
    assert (ncnn_b.name, mnn_b.name) == ("ncnn", "mnn") and "CPU" in ncnn_b.device and "1 threads" in mnn_b.device
    y = ncnn_b(x)
    assert y.shape == (1, 3, 48, 64) and y.dtype == np.float32
    np.testing.assert_allclose(mnn_b(x), y, atol=1e-4)
    y[:] = 0  # the backend's result is the caller's copy
    assert np.abs(ncnn_b(x)).max() > 0
    ncnn_b.close()
    mnn_b.close()


def test_bench_table_has_ncnn_and_mnn_rows_with_parity(exported):
    out, _ = exported
    rows = bench_models(out, threads=1, runs=3)
    timed = [r for r in rows if r.median_ms is not None]
    assert {(r.backend, r.precision) for r in timed} == set(CASES)
    assert all(r.psnr_db > 60 for r in timed if r.precision == "fp32")
    assert all(30 < r.psnr_db < 70 for r in timed if r.precision == "int8")
    table = format_latency(rows)
    assert "ncnn" in table and "mnn" in table and "fastest here:" in table


def test_bad_inputs_are_one_line(exported, tmp_path):
    _, results = exported
    param = Path(results["ncnn", "fp32"].path)
    lone = tmp_path / param.name
    lone.write_bytes(param.read_bytes())
    lone.with_suffix(".json").write_bytes(param.with_suffix(".json").read_bytes())
    mnn_file = results["mnn", "fp32"].path
    cases = [
        (lambda: load_backend(lone), r"fp32\.ncnn\.bin is missing next to it"),
        (lambda: load_backend(mnn_file, device="gpu"), r"--device gpu: an OpenVINO option \(and ncnn\); .*on mnn"),
        (lambda: load_backend(param, device="npu"), "--device npu: an ncnn model runs on auto, cpu or gpu"),
        (lambda: load_backend(param, precision_hint="bf16"), "--precision-hint bf16: an OpenVINO option"),
    ]
    if not ncnn_gpu_count(ncnn_module()):  # this machine: no Vulkan GPU (elsewhere gpu must load)
        cases.append((lambda: load_backend(param, device="gpu"), "--device gpu: ncnn sees no Vulkan GPU"))
    else:
        assert "Vulkan" in load_backend(param, device="gpu").device
    garbage = tmp_path / "junk.mnn"
    garbage.write_bytes(b"\x08\x00\x00\x00not a flatbuffer")
    cases.append((lambda: read_model_info(garbage), "corrupt or unreadable mnn model"))
    not_ncnn = tmp_path / "x.ncnn.param"
    not_ncnn.write_text("hello\n")
    cases.append((lambda: read_model_info(not_ncnn), r"not a \.param model file"))
    for call, message in cases:
        with pytest.raises(EdgeGANError, match=message) as err:
            call()
        assert "\n" not in str(err.value)
    assert resolve_targets("ncnn,mnn") == (["ncnn", "mnn"], [])


def test_backends_without_torch_print_nothing(exported, tmp_path):
    """ncnn and MNN models load and cartoonize in an interpreter where torch cannot be imported, and MNN's
    import-time stdout line does not reach the caller's output."""
    _, results = exported
    models = [results["ncnn", "int8"].path, results["mnn", "int8"].path, results["mnn", "fp32"].path]
    printed = run_without_torch(f"""
    import numpy as np
    from edgegan.runtime import load
    from edgegan.runtime.formats import read_model_info
    for model in {models!r}:
        c = load(model, mode="full", detector="none", threads=1)
        y = c.cartoonize(np.full((48, 80, 3), 128, np.uint8))
        assert y.shape == (48, 80, 3), y.shape
        assert c.backend.name in ("ncnn", "mnn") and read_model_info(model).precision in model
        c.close()
    """)
    assert printed == ""


# ------------------------------------------------------------------------------------ ncnn2table's KL
def test_kl_threshold_clips_a_long_tail_but_not_a_full_range():
    rng = np.random.default_rng(0)
    uniform = np.histogram(rng.uniform(0, 1, 200_000), bins=BINS, range=(0, 1))[0]
    assert kl_threshold(uniform) > 0.95 * BINS  # values use the whole range: keep it
    tail = np.histogram(np.abs(rng.laplace(0, 0.02, 200_000)), bins=BINS, range=(0, 1))[0]
    assert kl_threshold(tail) < 0.5 * BINS  # a few outliers far out: clip them


def test_export_json_lists_the_new_targets(exported):
    out, _ = exported
    report = json.loads((out / "export.json").read_text())
    assert {(r["target"], r["precision"]) for r in report["results"]} == set(CASES)
