"""Every bad input gets one line that names the file or flag (exit 2), or is handled as documented."""

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import edgegan.train.ugatit as ugatit_trainer
from edgegan.cli import main
from edgegan.train.checkpoint import list_checkpoints
from tests.conftest import TINY, assert_one_line_error, edgegan_cmd, subprocess_env


def cli(*args: str):
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stderr.strip()


def train_args(data: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--data", str(data), "--out", str(out), *TINY, "--iters", "2", "--save-every", "2",
            "--sample-every", "0", *extra]


@pytest.fixture
def data_copy(tiny_data, tmp_path) -> Path:
    dst = tmp_path / "data"
    shutil.copytree(tiny_data, dst)
    return dst


def test_missing_domain_folder(data_copy, tmp_path):
    shutil.rmtree(data_copy / "trainB")
    code, err = cli(*train_args(data_copy, tmp_path / "run"))
    assert_one_line_error(code, err, "trainB", str(data_copy / "trainB"))


def test_empty_domain_folder(data_copy, tmp_path):
    for p in (data_copy / "trainA").iterdir():
        p.unlink()
    (data_copy / "trainA" / "notes.txt").write_text("not an image")
    code, err = cli(*train_args(data_copy, tmp_path / "run"))
    assert_one_line_error(code, err, "trainA", "no image files")


def test_domain_with_only_broken_images(data_copy, tmp_path):
    for p in (data_copy / "trainB").iterdir():
        p.write_bytes(b"")
    code, err = cli(*train_args(data_copy, tmp_path / "run"))
    assert_one_line_error(code, err, "trainB", "none of the", "0 bytes")


def test_data_is_not_a_folder(tmp_path):
    code, err = cli(*train_args(tmp_path / "nope", tmp_path / "run"))
    assert_one_line_error(code, err, "--data", "nope")


def test_broken_files_are_skipped_with_a_count_and_odd_formats_converted(data_copy, tmp_path):
    a = data_copy / "trainA"
    (a / "zero.png").write_bytes(b"")
    (a / "text.jpg").write_text("hello")
    good = (a / "00000.png").read_bytes()
    (a / "truncated.png").write_bytes(good[: len(good) // 2])
    rgb = np.asarray(Image.open(a / "00001.png").convert("RGB"))
    Image.fromarray(rgb).convert("CMYK").save(a / "cmyk.jpg")
    Image.fromarray(rgb).convert("L").save(a / "grey.png")
    Image.fromarray(rgb).convert("RGBA").save(a / "rgba.png")
    Image.fromarray(rgb[..., 0].astype(np.uint16) * 257).save(a / "sixteen.png")
    cmd = [*edgegan_cmd(), *train_args(data_copy, tmp_path / "run")]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "trainA: skipped 3 unreadable file(s) of" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unknown_preset():
    code, err = cli("train", "--data", "x", "--out", "y", "--preset", "ugatit-lite")
    assert_one_line_error(code, err, "--preset", "ugatit-lite", "did you mean 'ugatit-light'")


def test_unwritable_out(tiny_data, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("I am a file")
    code, err = cli(*train_args(tiny_data, blocker / "run"))
    assert_one_line_error(code, err, "--out", str(blocker / "run"))


def test_bad_flag_values(tiny_data, tmp_path):
    code, err = cli(*train_args(tiny_data, tmp_path / "run", "--size", "30"))
    assert_one_line_error(code, err, "--size")
    code, err = cli(*train_args(tiny_data, tmp_path / "run", "--iters", "0"))
    assert_one_line_error(code, err, "--iters")


def test_missing_cuda_is_a_clear_error(tiny_data, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA; the error path is for machines without it")
    args = train_args(tiny_data, tmp_path / "run")
    args[args.index("--device") + 1] = "cuda"
    code, err = cli(*args)
    assert_one_line_error(code, err, "--device cuda", "not available")


def test_existing_run_needs_resume_and_incompatible_resume_is_refused(tiny_data, tmp_path):
    out = tmp_path / "run"
    assert cli(*train_args(tiny_data, out))[0] == 0
    code, err = cli(*train_args(tiny_data, out))
    assert_one_line_error(code, err, "--out", "--resume")
    args = train_args(tiny_data, out, "--resume")
    args[args.index("--ngf") + 1] = "8"
    code, err = cli(*args)
    assert_one_line_error(code, err, "--ngf 8", "ngf=4")
    # resuming with a longer schedule is fine and continues from step 2
    args = train_args(tiny_data, out, "--resume")
    args[args.index("--iters") + 1] = "4"
    assert cli(*args)[0] == 0
    assert [p.name for p in list_checkpoints(out / "checkpoints")] == ["step_0000002", "step_0000004"]


def test_corrupt_checkpoint_names_the_file(tiny_data, tmp_path):
    out = tmp_path / "run"
    assert cli(*train_args(tiny_data, out))[0] == 0
    weights = list_checkpoints(out / "checkpoints")[-1] / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    args = train_args(tiny_data, out, "--resume")
    args[args.index("--iters") + 1] = "4"
    code, err = cli(*args)
    assert_one_line_error(code, err, str(weights), "corrupt")


def test_checkpoint_from_another_architecture_names_the_file(tiny_data, tmp_path):
    small, big = tmp_path / "small", tmp_path / "big"
    assert cli(*train_args(tiny_data, small))[0] == 0
    args = train_args(tiny_data, big)
    args[args.index("--ngf") + 1] = "8"
    assert cli(*args)[0] == 0
    # a user copies a checkpoint into a run of another width
    src = list_checkpoints(small / "checkpoints")[-1]
    dst = list_checkpoints(big / "checkpoints")[-1]
    shutil.copy(src / "weights.safetensors", dst / "weights.safetensors")
    args = train_args(tiny_data, big, "--resume")
    args[args.index("--ngf") + 1] = "8"
    args[args.index("--iters") + 1] = "4"
    code, err = cli(*args)
    assert_one_line_error(code, err, str(dst / "weights.safetensors"), "do not fit")


def test_nan_loss_stops_with_a_clear_error_and_keeps_the_last_checkpoint(tiny_data, tmp_path, monkeypatch):
    out = tmp_path / "run"
    args = train_args(tiny_data, out)
    args[args.index("--iters") + 1] = "6"
    args[args.index("--save-every") + 1] = "3"
    calls = {"n": 0}
    real_l1 = ugatit_trainer.F.l1_loss

    def l1_that_diverges(a, b):
        calls["n"] += 1
        out_ = real_l1(a, b)
        return out_ * float("nan") if calls["n"] > 4 * 4 else out_  # NaN from step 5 on

    monkeypatch.setattr(ugatit_trainer.F, "l1_loss", l1_that_diverges)
    code, err = cli(*args)
    assert_one_line_error(code, err, "step 5", "g_loss is nan", "step_0000003")
    assert [p.name for p in list_checkpoints(out / "checkpoints")] == ["step_0000003"]


def test_failed_runs_leave_no_empty_out_folder(data_copy, tmp_path):
    """Bad input found after --out was made (a missing face-ID model, a missing data folder): no folder left."""
    from click.testing import CliRunner

    from edgegan.cli import main

    out = tmp_path / "t"
    result = CliRunner().invoke(main, ["train", "--data", str(data_copy), "--out", str(out), *TINY, "--iters", "1",
                                       "--face-id-weight", "1", "--id-model", str(tmp_path / "nope.pth"),
                                       "--no-progress"])
    assert result.exit_code == 2 and "nope.pth" in result.stderr
    assert not out.exists()
    teacher = tmp_path / "teacher"
    assert CliRunner().invoke(main, ["train", "--data", str(data_copy), "--out", str(teacher), *TINY, "--iters", "1",
                                     "--save-every", "1", "--sample-every", "0", "--no-progress"]).exit_code == 0
    out = tmp_path / "d"
    result = CliRunner().invoke(main, ["distill", "--teacher", str(teacher), "--data", str(tmp_path / "nodata"),
                                       "--out", str(out), "--no-progress"])
    assert result.exit_code == 2 and not out.exists()
    existing = tmp_path / "mine"
    existing.mkdir()  # a folder the user made is never removed
    result = CliRunner().invoke(main, ["distill", "--teacher", str(teacher), "--data", str(tmp_path / "nodata"),
                                       "--out", str(existing), "--no-progress"])
    assert result.exit_code == 2 and existing.is_dir()
