"""The quickstart chains every stage on the demo data; shrunk here to seconds, same code path."""

from __future__ import annotations

import json
import subprocess

import pytest
from click.testing import CliRunner

from edgegan import quickstart
from edgegan.cli import main
from tests.conftest import edgegan_cmd


@pytest.fixture
def tiny_quickstart(monkeypatch):
    tiny = quickstart.Profile(
        "quick", "tiny", data=dict(size=32, n_train=20, n_test=4, seed=0),
        teacher=dict(preset="edgegan", size=32, ngf=4, ndf=4, n_res=1, iters=3, save_every=3, sample_every=3,
                     log_every=1),
        student=dict(student="mobile-s", student_kwargs={"width": 0.25}, iters=3, batch=2, save_every=3,
                     sample_every=3, log_every=1))
    monkeypatch.setitem(quickstart.PROFILES, "quick", tiny)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def test_quickstart_runs_every_stage_then_skips_what_is_done(tiny_quickstart, tmp_path):
    out = tmp_path / "qs"
    first = CliRunner().invoke(main, ["quickstart", "--out", str(out), "--device", "cpu", "--no-progress"])
    assert first.exit_code == 0, first.output
    assert (out / "data" / "SOURCES.json").is_file()
    assert (out / "teacher" / "checkpoints" / "step_0000003").is_dir()
    assert (out / "student" / "checkpoints" / "step_0000003").is_dir()
    teacher_eval = json.loads((out / "eval" / "teacher.json").read_text())
    assert {"model", "identity_baseline"} <= set(teacher_eval["paired"])
    student_eval = json.loads((out / "eval" / "student.json").read_text())
    assert student_eval["reference"]["psnr_mean"] > 0
    int8 = json.loads((out / "int8" / "report.json").read_text())
    assert int8["quality"]["int8_vs_fp32"]["psnr_mean"] > 20
    assert (out / "int8" / "student_int8.onnx").is_file()

    again = CliRunner().invoke(main, ["quickstart", "--out", str(out), "--device", "cpu", "--no-progress"])
    assert again.exit_code == 0, again.output
    assert (out / "export" / "export.json").is_file()
    for done in ("demo data: ", "(trained)", "(distilled)", "(quantized)", "(exported)"):
        assert done in again.output, again.output
    # every figure is printed next to its target, with a verdict
    assert "scorecard" in first.output and "over identity (target +3)" in first.output
    assert "vs its teacher (target 28)" in first.output and "below fp32 (target <= 0.5)" in first.output


def test_profiles_are_checked_before_any_work(tmp_path):
    from tests.conftest import assert_one_line_error

    res = CliRunner().invoke(main, ["quickstart", "--profile", "huge", "--out", str(tmp_path / "q")])
    assert res.exit_code == 2 and "--profile huge: unknown (choose from quick, demo-model)" in res.output
    assert not (tmp_path / "q").exists()
    # another profile's data in the same --out is refused, not silently reused
    data = tmp_path / "q" / "data"
    data.mkdir(parents=True)
    (data / "SOURCES.json").write_text(json.dumps({"parameters": quickstart.PROFILES["quick"].data}))
    proc = subprocess.run(edgegan_cmd() + ["quickstart", "--profile", "demo-model", "--out", str(tmp_path / "q")],
                          capture_output=True, text=True, timeout=120, check=False)
    assert_one_line_error(proc.returncode, proc.stderr.strip(), str(data), "the demo-model profile needs")
    assert not (tmp_path / "q" / "teacher").exists()


def test_demo_model_profile_is_the_packaged_models_recipe():
    """The packaged model's manifest was written from a run of this profile (scripts/train_demo_model.sh)."""
    from edgegan.runtime.packaged import read_manifest

    prof, trained = quickstart.PROFILES["demo-model"], read_manifest()["training"]
    assert {k: trained["data"][k] for k in prof.data} == prof.data
    assert {k: trained["teacher"][k] for k in ("preset", "size", "ngf", "ndf", "n_res", "iters")} == \
        {k: prof.teacher[k] for k in ("preset", "size", "ngf", "ndf", "n_res", "iters")}
    assert trained["teacher"]["iterations"] == prof.teacher["iters"]
    assert trained["student"]["iterations"] == prof.student["iters"]
    assert set(prof.int8_targets) == {"onnx", "tflite", "openvino"}
