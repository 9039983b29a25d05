"""edgegan export: every target and precision on a tiny student, checked against PyTorch on real photos
(ONNX and TFLite run here, CoreML structure here and numbers on macOS), metadata read back without
torch, and the inputs that must fail with one line: no model, not a model, a bad size, a missing extra."""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

pytest.importorskip("onnxruntime", reason="needs the export extra: pip install 'edgegan[export]'")
pytest.importorskip("nncf", reason="INT8 exports need the quantize extra: pip install 'edgegan[quantize]'")
pytest.importorskip("litert_torch", reason="needs the tflite extra: pip install 'edgegan[tflite]'")
pytest.importorskip("coremltools", reason="needs the coreml extra: pip install 'edgegan[coreml]'")

from edgegan import __version__
from edgegan.cli import main
from edgegan.data.unpaired import to_model_range
from edgegan.errors import EdgeGANError
from edgegan.export import ExportResult, export, format_table, resolve_targets, validate
from edgegan.export.source import load_source, sha256
from edgegan.models import create_model
from edgegan.runtime.formats import read_model_info
from edgegan.runtime.metadata import METADATA_KEY, ModelInfo
from edgegan.runtime.metadata_io import embed_onnx, embed_tflite
from edgegan.runtime.quality import compare
from tests.conftest import EXPORT_SIZE, assert_one_line_error, save_generator, subprocess_env

pytestmark = [pytest.mark.export, pytest.mark.usefixtures("one_thread")]

SIZE = EXPORT_SIZE
RUNNABLE = [("onnx", "fp32"), ("onnx", "fp16"), ("onnx", "int8"), ("tflite", "fp32"), ("tflite", "fp16"),
            ("tflite", "int8")]


@pytest.fixture(scope="module")
def student(export_student) -> Path:
    return export_student


@pytest.fixture(scope="module")
def exported(student, tmp_path_factory) -> tuple[Path, dict[tuple[str, str], ExportResult]]:
    """All three targets in all three precisions, in one call (INT8: NNCF PTQ on the demo-photo tiles)."""
    out = tmp_path_factory.mktemp("exports")
    results = export(student, "onnx,tflite,coreml", "all", out=out, runs=2)  # OpenVINO: tests/test_openvino.py
    return out, {(r.target, r.precision): r for r in results}


def torch_reference(run: Path) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 validation photos, fp32 PyTorch outputs in [-1, 1], NCHW)."""
    photos = validate.demo_photos(SIZE)
    with torch.no_grad():
        ref = load_source(run).model(torch.from_numpy(to_model_range(photos))).numpy()
    return photos, ref


def run_independently(path: Path, info: ModelInfo, photos: np.ndarray) -> np.ndarray:
    """The exported file through its runtime, called here without edgegan.export: NCHW outputs."""
    x = info.preprocess(photos)
    if path.suffix == ".onnx":
        import onnxruntime as ort

        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        y = sess.run(None, {info.input_name: x})[0]  # the ONNX files take a batch
    else:
        from ai_edge_litert.interpreter import Interpreter

        it = Interpreter(model_path=str(path))
        runner = it.get_signature_runner("serving_default")
        y = np.concatenate([runner(**{info.input_name: x[i:i + 1]})[info.output_name] for i in range(len(x))])
    return y.transpose(0, 3, 1, 2) if info.layout == "NHWC" else y


# ------------------------------------------------------------------------------------ parity
@pytest.mark.parametrize("target,precision", RUNNABLE)
def test_runnable_exports_match_pytorch(exported, student, target, precision):
    out, results = exported
    r = results[(target, precision)]
    assert r.status == "ok", r.message
    path = Path(r.path)
    assert path.parent == out and path.is_file() and r.bytes == path.stat().st_size
    assert r.latency_ms and r.latency_ms > 0
    info = read_model_info(path)
    photos, ref = torch_reference(student)
    parity = compare(run_independently(path, info, photos), ref)
    if precision == "int8":
        # held to the quantizer's own result (NNCF's fake-quant model vs fp32), minus 1 dB
        assert r.parity["nncf_torch_psnr_db"] > 25, r.parity  # a fitted student: INT8 error is measurable
        assert not math.isinf(parity.psnr_db) and parity.psnr_db < 70, "INT8 identical to fp32: not quantized"
        assert parity.psnr_db >= r.parity["nncf_torch_psnr_db"] - validate.INT8_MARGIN_DB, (parity, r.parity)
        assert r.parity["vs_nncf_torch"]["psnr_db"] > 35, r.parity  # same grids as NNCF, not a re-quantization
    else:
        assert parity.psnr_db >= validate.MIN_PSNR[precision], parity
        if precision == "fp16":
            assert parity.psnr_db < 120, "fp16 export identical to fp32: not converted"
    # The table reports what the file does. Both sides are measured on the same photos but batched and
    # threaded differently, so fp32/fp16 agree to rounding: compare the max-abs error, never two ~140 dB
    # PSNRs (whose difference is float noise, and one of which may be exact: None). INT8 errors are
    # real (~40 dB), so its PSNRs are compared, capped where a side is exact.
    if precision == "int8":
        assert abs(_capped_db(parity.psnr_db) - _capped_db(r.parity["psnr_db"])) < 1.0, (parity, r.parity)
    else:
        assert r.parity["max_abs"] == pytest.approx(parity.max_abs, abs=MAX_ABS_AGREEMENT[precision]), (
            parity, r.parity)


# How closely the export table's max-abs error must match the one measured here (outputs span [-1, 1]).
MAX_ABS_AGREEMENT = {"fp32": 1e-4, "fp16": 2e-3}
PSNR_CAP_DB = 100.0


def _capped_db(psnr_db: float | None) -> float:
    """A PSNR with exact agreement (inf, or None in JSON) and anything above the cap read as the cap."""
    return PSNR_CAP_DB if psnr_db is None or psnr_db > PSNR_CAP_DB else psnr_db


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_tflite_carries_its_gpu_delegate_report(exported, precision):
    """LiteRT's analyzer ran on the graph: every conv of the student listed, none flagged for the GPU delegate."""
    _, results = exported
    report = read_model_info(results[("tflite", precision)].path).extra["delegation"]
    assert report["ops"]["CONV_2D"] + report["ops"]["DEPTHWISE_CONV_2D"] == 31, report  # the student's 31 convs
    assert report["gpu_delegate"] == "compatible" and not report["gpu_warnings"], report


def test_sizes_shrink_with_precision(exported):
    _, results = exported
    for target in ("onnx", "tflite", "coreml"):
        fp32, fp16 = results[(target, "fp32")].bytes, results[(target, "fp16")].bytes
        assert 0 < fp16 < 0.8 * fp32, (target, fp16, fp32)
    assert results[("onnx", "int8")].bytes < 0.5 * results[("onnx", "fp32")].bytes


def test_onnx_is_dynamic_and_opset_17_or_later(exported):
    import onnx
    import onnxruntime as ort

    _, results = exported
    for precision in ("fp32", "fp16", "int8"):
        path = results[("onnx", precision)].path
        model = onnx.load(path)
        assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17
        assert read_model_info(path).dynamic_size
        y = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(
            None, {"image": np.zeros((2, 3, 48, 64), np.float32)})[0]
        assert y.shape == (2, 3, 48, 64) and np.isfinite(y).all()


# ------------------------------------------------------------------------------------ CoreML
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_coreml_structure(exported, student, precision):
    """What can be checked off macOS: reload, spec version, program type, I/O, op list, metadata."""
    import coremltools as ct

    from edgegan.export import coreml

    _, results = exported
    r = results[("coreml", precision)]
    assert r.status == "structure-ok", r.message  # never "ok": no numbers were compared
    assert not r.parity and r.latency_ms is None and "macOS" in r.message
    path = Path(r.path)
    assert path.suffix == ".mlpackage" and path.is_dir()
    spec = ct.models.MLModel(str(path), skip_model_load=True).get_spec()
    assert spec.WhichOneof("Type") == "mlProgram"
    assert spec.specificationVersion == (8 if precision == "int8" else 7)  # iOS17 for W8A8, iOS16 otherwise
    assert [i.name for i in spec.description.input] == ["image"]
    assert list(spec.description.input[0].type.multiArrayType.shape) == [1, 3, SIZE, SIZE]
    assert [o.name for o in spec.description.output] == ["cartoon"]
    ops = coreml.op_counts(path)
    convs = sum(isinstance(m, torch.nn.Conv2d) for m in load_source(student).model.modules())
    assert ops["conv"] == convs == 31, ops  # stem, down, 8 blocks x 3, 2 up blocks x 2, head
    if precision == "int8":
        assert ops["quantize"] > 0 and ops["dequantize"] > 0 and ops["constexpr_affine_dequantize"] > 0, ops
    info = read_model_info(path)
    assert info.precision == precision and info.extra["deployment_target"].startswith("iOS1")


@pytest.mark.skipif(sys.platform != "darwin", reason="Core ML runs models only on macOS; on Linux the export "
                    "gets structural checks (test_coreml_structure) and its parity is not reported")
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_coreml_parity_on_macos(exported, precision):
    _, results = exported
    r = results[("coreml", precision)]
    assert r.status == "ok", r.message
    assert r.parity["psnr_db"] >= r.threshold_db


# ------------------------------------------------------------------------------------ metadata
def test_metadata_round_trip(exported, student):
    out, results = exported
    weights = next((student / "checkpoints").glob("step_*")) / "weights.safetensors"
    for (target, precision), r in results.items():
        info = read_model_info(r.path)
        assert (info.model, info.input_size, info.precision) == ("mobile-s", SIZE, precision)
        assert info.layout == ("NHWC" if target == "tflite" else "NCHW") and info.color == "RGB"
        assert (info.scale, info.offset) == (1 / 127.5, -1.0)
        assert info.edgegan_version == __version__ and info.source_sha256 == sha256(weights)
        assert info.stride == 4
    report = json.loads((out / "export.json").read_text())
    assert len(report["results"]) == 9 and {r["status"] for r in report["results"]} <= {"ok", "structure-ok"}
    assert {r["name"] for r in report["results"]} == {"mobile-s"} and report["results"][0]["size"] == SIZE


def test_metadata_io_replaces_and_cross_checks(exported, tmp_path):
    """Re-embedding replaces the entry; the flatbuffer reader agrees with the TFLite schema module."""
    import onnx
    from ai_edge_litert import schema_py_generated as schema

    _, results = exported
    new = ModelInfo(model="other", input_size=64, precision="fp16")
    proto = embed_onnx(onnx.load(results[("onnx", "fp32")].path), new)
    assert [p.key for p in proto.metadata_props].count(METADATA_KEY) == 1
    onnx.save(proto, tmp_path / "m.onnx")
    assert read_model_info(tmp_path / "m.onnx") == new

    data = embed_tflite(Path(results[("tflite", "fp32")].path).read_bytes(), new)
    (tmp_path / "m.tflite").write_bytes(data)
    assert read_model_info(tmp_path / "m.tflite") == new
    model = schema.Model.GetRootAs(data, 0)
    entries = [model.Metadata(i) for i in range(model.MetadataLength())]
    ours = [m for m in entries if m.Name() == METADATA_KEY.encode()]
    assert len(ours) == 1
    payload = model.Buffers(ours[0].Buffer()).DataAsNumpy().tobytes().decode()
    assert ModelInfo.from_json(payload) == new
    from ai_edge_litert.interpreter import Interpreter

    Interpreter(model_content=data).allocate_tensors()  # still a valid model


def test_read_model_info_errors_name_the_file(exported, tmp_path):
    _, results = exported
    cases = {tmp_path / "missing.onnx": "no such model file", tmp_path / "model.pt": "unknown model type"}
    (tmp_path / "empty.tflite").write_bytes(b"")
    cases[tmp_path / "empty.tflite"] = "empty file"
    (tmp_path / "junk.tflite").write_bytes(b"\x00" * 64)
    cases[tmp_path / "junk.tflite"] = "corrupt"
    (tmp_path / "junk.onnx").write_bytes(b"\xff" * 64)
    cases[tmp_path / "junk.onnx"] = "corrupt"
    (tmp_path / "broken.mlpackage").mkdir()
    cases[tmp_path / "broken.mlpackage"] = "not a CoreML .mlpackage"
    import onnx

    plain = onnx.load(results[("onnx", "fp32")].path)
    del plain.metadata_props[:]
    onnx.save(plain, tmp_path / "plain.onnx")
    cases[tmp_path / "plain.onnx"] = "has no EdgeGAN metadata"
    for path, needle in cases.items():
        with pytest.raises(EdgeGANError) as err:
            read_model_info(path)
        msg = str(err.value)
        assert msg.startswith(str(path)) and needle in msg and "\n" not in msg, msg


def test_metadata_io_reads_without_torch(exported):
    _, results = exported
    paths = [results[(t, "int8")].path for t in ("onnx", "tflite", "coreml")]
    code = ("import sys; from edgegan.runtime.formats import read_model_info; "
            f"infos = [read_model_info(p) for p in {paths!r}]; "
            "assert all(i.precision == 'int8' for i in infos); "
            "bad = [m for m in ('torch', 'tensorflow', 'coremltools', 'onnx') if m in sys.modules]; "
            "assert not bad, bad")
    proc = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True,
                          env=subprocess_env(),
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


# ------------------------------------------------------------------------------------ sources
def test_quantizers_output_is_exported_on_its_own_grids(student, tmp_path):
    """From ``edgegan quantize``'s output, INT8 is that model, not a new PTQ: the exports match it closely."""
    from edgegan.quantize import nncf_int8
    from edgegan.quantize.nncf_int8 import QuantizedSpec, Recipe

    src = load_source(student)
    qmodel = nncf_int8.ptq(src.model, to_model_range(validate.demo_photos(SIZE)), Recipe())
    qdir = tmp_path / "int8"
    qdir.mkdir()
    nncf_int8.save_quantized(qmodel, qdir / "student_int8.safetensors",
                             QuantizedSpec({"name": "mobile-s", "kwargs": {"width": 0.25, "img_size": SIZE}}, SIZE,
                                           Recipe().to_dict()))
    (qdir / "report.json").write_text(json.dumps({"student": {"checkpoint": str(student)}}))
    results = export(qdir, "onnx,tflite", "int8", out=tmp_path / "out", runs=1)
    for r in results:
        assert r.status == "ok", r.message
        assert r.parity["vs_nncf_torch"]["psnr_db"] > 40, r.parity  # calibrated on the validation photos
        info = read_model_info(r.path)
        assert info.source_sha256 == sha256(qdir / "student_int8.safetensors")
        assert "quantizer's output" in info.extra["int8_from"]


def test_teacher_checkpoint_exports(tmp_path):
    torch.manual_seed(0)
    teacher = create_model("ugatit-light", ngf=4, n_res=1, img_size=SIZE)
    run = save_generator(tmp_path, teacher, "ugatit-light", {"ngf": 4, "n_res": 1, "img_size": SIZE})
    results = export(run, "all", "fp32", out=tmp_path / "out", runs=1)
    assert [(r.target, r.status) for r in results] == [("onnx", "ok"), ("tflite", "ok"), ("coreml", "structure-ok"),
                                                       ("openvino", "ok"), ("ncnn", "ok"), ("mnn", "ok"),
                                                       ("executorch", "ok"), ("rknn", "skipped")], \
        format_table(results)  # RKNN has no fp32 (its NPUs compute in fp16/int8)
    for r in results[:-1]:
        assert read_model_info(r.path).model == "ugatit-light"
        assert r.target == "coreml" or r.parity["psnr_db"] >= 60, r.parity
    with pytest.raises(EdgeGANError, match="--precision int8: ugatit-light normalises per image"):
        export(run, "onnx", "int8", out=tmp_path / "out")


# ------------------------------------------------------------------------------------ bad input
def cli(*args: str):
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stderr.strip(), result.stdout


def test_missing_model(tmp_path):
    code, err, _ = cli("export", "--model", str(tmp_path / "nope"), "--out", str(tmp_path / "o"))
    assert_one_line_error(code, err, "--model", "nope", "no such file or folder")
    assert not (tmp_path / "o").exists()


def test_not_a_model(tmp_path, exported):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    fake = tmp_path / "fake.safetensors"
    fake.write_bytes(b"not safetensors")
    onnx_file = exported[1][("onnx", "fp32")].path
    for path, needle in ((text, "no checkpoint found"), (empty, "no checkpoint found"),
                         (fake, "safetensors"), (onnx_file, "already an exported model")):
        code, err, _ = cli("export", "--model", str(path), "--out", str(tmp_path / "o"))
        assert_one_line_error(code, err, "--model", str(path), needle)


def test_unsupported_size(student, tmp_path):
    code, err, _ = cli("export", "--model", str(student), "--size", "30", "--out", str(tmp_path / "o"))
    assert_one_line_error(code, err, "--size 30", "multiple of 4")
    for flag in (["--target", "onnxx"], ["--precision", "int4"]):
        code, err, _ = cli("export", "--model", str(student), *flag, "--out", str(tmp_path / "o"))
        assert_one_line_error(code, err, flag[0])
    assert "did you mean 'onnx'" in cli("export", "--model", str(student), "--target", "onnxx")[1]


def test_missing_optional_package_names_the_extra(student, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "coremltools", None)  # what an import of a missing package meets
    code, err, _ = cli("export", "--model", str(student), "--target", "coreml", "--out", str(tmp_path / "o"))
    assert_one_line_error(code, err, "--target coreml", "coremltools", "pip install 'edgegan[coreml]'")
    wanted, skipped = resolve_targets("all")  # `all` exports what is installed and says what it skipped
    assert wanted == ["onnx", "tflite", "openvino", "ncnn", "mnn", "executorch", "rknn"] and \
        [s.target for s in skipped] == ["coreml"]
    assert skipped[0].status == "skipped" and "edgegan[coreml]" in skipped[0].message
    assert "edgegan[coreml]" in format_table(skipped)


def test_failed_validation_is_reported_as_failed(student, tmp_path, monkeypatch):
    monkeypatch.setitem(validate.MIN_PSNR, "fp32", 1000.0)
    out = tmp_path / "o"
    out.mkdir()
    final = out / f"mobile-s_{SIZE}px_fp32.tflite"
    final.write_bytes(b"an older export")  # must not survive under the name of a model that failed
    code, err, stdout = cli("export", "--model", str(student), "--target", "tflite", "--out", str(out),
                            "--runs", "1")
    assert code == 1 and "failed validation: tflite fp32" in err, err
    assert "failed" in stdout and "< 1000.0 dB" in stdout
    assert not final.exists() and (out / "failed" / final.name).is_file()
    report = json.loads((out / "export.json").read_text())
    assert report["results"][0]["status"] == "failed"


@pytest.mark.parametrize("key", [("onnx", "fp32"), ("tflite", "fp32"), ("onnx", "int8")])
def test_eval_scores_an_exported_model_through_the_runtime(exported, student, tiny_data, key):
    """`edgegan eval` takes exported files too: one scorer for every format, here against the checkpoint."""
    from edgegan.eval.evaluate import evaluate

    _, results = exported
    report = evaluate(results[key].path, tiny_data, reference=student, fid=False)
    assert report["n"] == 4
    floor = 50 if key[1] == "fp32" else 25  # fp32: uint8 rounding only; int8: the quantizer's error
    assert report["reference"]["psnr_mean"] > floor
    assert "identity_baseline" in report["paired"]


def test_eval_of_an_exported_model_refuses_b2a(exported, tiny_data):
    from edgegan.eval.evaluate import evaluate

    _, results = exported
    with pytest.raises(EdgeGANError, match="A2B"):
        evaluate(results["onnx", "fp32"].path, tiny_data, direction="B2A", fid=False)
