"""Distillation: the loss falls, the run resumes exactly, eval scores the student, bad input, profile."""

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors.numpy import load_file

import edgegan.train.distill as distill_trainer
from edgegan.cli import main
from edgegan.data.unpaired import UnpairedData
from edgegan.models.mobile import MobileGenerator
from edgegan.train.checkpoint import list_checkpoints, load_generator
from edgegan.train.common import read_metrics
from tests.conftest import TINY, assert_one_line_error, edgegan_cmd, subprocess_env

LOSSES = ("loss", "pixel", "feature", "lr")


def cli(*args: str):
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stderr.strip(), result.stdout


@pytest.fixture(scope="module")
def teacher(tiny_data, tmp_path_factory) -> Path:
    """A tiny U-GAT-IT run (2 iterations at 32 px): enough to be a deterministic teacher."""
    out = tmp_path_factory.mktemp("teacher") / "run"
    cmd = [*edgegan_cmd(), "train", "--data", str(tiny_data), "--out", str(out), *TINY, "--iters", "2",
           "--save-every", "2", "--sample-every", "0"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


def distill_args(teacher: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return ["distill", "--teacher", str(teacher), "--data", str(data), "--out", str(out), "--batch", "4",
            "--device", "cpu", "--no-progress", "--sample-every", "0", *extra]


def run_distill(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([*edgegan_cmd(), *args], capture_output=True, text=True, env=subprocess_env(),
                          timeout=600)
    if check:
        assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def final_weights(run: Path) -> dict[str, np.ndarray]:
    return load_file(list_checkpoints(run / "checkpoints")[-1] / "weights.safetensors")


def assert_same_run(a: Path, b: Path, n: int) -> None:
    ma, mb = read_metrics(a / "metrics.jsonl"), read_metrics(b / "metrics.jsonl")
    assert [r["step"] for r in ma] == [r["step"] for r in mb] == list(range(1, n + 1))
    for ra, rb in zip(ma, mb):
        for key in LOSSES:
            assert ra[key] == rb[key], (ra["step"], key, ra[key], rb[key])
    wa, wb = final_weights(a), final_weights(b)
    assert wa.keys() == wb.keys()
    assert all(np.array_equal(wa[k], wb[k]) for k in wa)


@pytest.fixture(scope="module")
def tiny_run(teacher, tiny_data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("distill") / "run"
    run_distill(*distill_args(teacher, tiny_data, out, "--iters", "60", "--save-every", "30", "--sample-every",
                              "30", "--log-every", "1", "--seed", "1"))
    return out


def test_one_domain_sampling_matches_the_two_domain_sampler(tiny_data):
    both = UnpairedData(tiny_data, 32, seed=3)
    photos = UnpairedData(tiny_data, 32, seed=3, domains=("trainA",))
    assert set(photos.train) == {"trainA"} and set(photos.test) == {"testA"}
    for step in (0, 5, 17):
        np.testing.assert_array_equal(photos.domain_batch("trainA", step, 4), both.batch(step, 4)[0])


@pytest.mark.slow
def test_tiny_distillation_lowers_its_loss_and_writes_a_run(tiny_run, teacher):
    assert [p.name for p in list_checkpoints(tiny_run / "checkpoints")] == ["step_0000030", "step_0000060"]
    assert sorted(p.name for p in (tiny_run / "samples").glob("*.png")) == ["step_0000030.png", "step_0000060.png"]
    rows = read_metrics(tiny_run / "metrics.jsonl")
    assert [r["step"] for r in rows] == list(range(1, 61))
    for key, factor in (("loss", 0.6), ("pixel", 0.9), ("feature", 0.6)):
        before, after = np.mean([r[key] for r in rows[:10]]), np.mean([r[key] for r in rows[-10:]])
        assert after < factor * before, (key, before, after)
    cfg = json.loads((tiny_run / "config.json").read_text())
    assert cfg["student"] == "mobile-s" and cfg["batch"] == 4 and cfg["iters"] == 60
    assert cfg["teacher"] == str(list_checkpoints(teacher / "checkpoints")[-1])  # pinned to one checkpoint
    state = json.loads((list_checkpoints(tiny_run / "checkpoints")[-1] / "state.json").read_text())
    assert state["translators"] == {"A2B": "student"}
    # the teacher (default preset) starts at the identity, so the student does too
    assert state["models"]["student"] == {"name": "mobile-s", "kwargs": {"skip": True, "img_size": 32}}
    # the checkpoint rebuilds the student alone, BatchNorm unfolded, in eval mode
    student, _ = load_generator(tiny_run, "A2B")
    assert isinstance(student, MobileGenerator) and not student.training
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in student.modules())
    with torch.no_grad():
        y = student(torch.rand(2, 3, 32, 32) * 2 - 1)
    assert y.shape == (2, 3, 32, 32) and y.abs().max() <= 1


@pytest.mark.slow
def test_eval_scores_the_student_against_the_teacher(tiny_run, teacher, tiny_data):
    proc = subprocess.run([*edgegan_cmd(), "eval", "--model", str(tiny_run), "--data", str(tiny_data),
                           "--reference", str(teacher), "--no-fid"],
                          capture_output=True, text=True, env=subprocess_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "mobile-s, A2B" in proc.stdout and "model vs reference" in proc.stdout
    assert "identity baseline" in proc.stdout


@pytest.mark.slow
def test_interrupted_run_resumes_exactly(teacher, tiny_data, tmp_path, monkeypatch, one_thread):
    """Ctrl-C in the middle of step 18 (checkpoints every 5), then --resume: identical to a straight run."""
    args = ["--iters", "30", "--save-every", "5", "--log-every", "1", "--seed", "2"]
    straight = tmp_path / "straight"
    assert cli(*distill_args(teacher, tiny_data, straight, *args))[0] == 0

    real_step, calls = distill_trainer.distill_step, {"n": 0}

    def interrupted_step(*a, **kw):
        calls["n"] += 1
        if calls["n"] == 18:
            raise KeyboardInterrupt
        return real_step(*a, **kw)

    interrupted = tmp_path / "interrupted"
    monkeypatch.setattr(distill_trainer, "distill_step", interrupted_step)
    code, err, _ = cli(*distill_args(teacher, tiny_data, interrupted, *args))
    assert code == 130 and "--resume" in err, err
    assert list_checkpoints(interrupted / "checkpoints")[-1].name == "step_0000015"
    monkeypatch.setattr(distill_trainer, "distill_step", real_step)
    code, err, _ = cli("distill", "--out", str(interrupted), "--resume", "--no-progress")
    assert code == 0, err
    assert_same_run(straight, interrupted, 30)


@pytest.mark.slow
def test_resume_after_kill_9_equals_an_uninterrupted_run(teacher, tiny_data, tmp_path):
    args = ["--iters", "80", "--save-every", "10", "--log-every", "1", "--seed", "3"]
    straight = tmp_path / "straight"
    run_distill(*distill_args(teacher, tiny_data, straight, *args))

    killed = tmp_path / "killed"
    proc = subprocess.Popen([*edgegan_cmd(), *distill_args(teacher, tiny_data, killed, *args)],
                            env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not list_checkpoints(killed / "checkpoints") and time.time() < deadline and proc.poll() is None:
        time.sleep(0.005)
    time.sleep(0.1)  # land somewhere past the first checkpoint, maybe inside the next one's write
    still_running = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert still_running, "the run finished before it could be killed; make it longer"
    steps = [int(p.name.split("_")[1]) for p in list_checkpoints(killed / "checkpoints")]
    assert steps and steps[-1] < 80

    run_distill("distill", "--out", str(killed), "--resume", "--no-progress")
    assert_same_run(straight, killed, 80)
    assert not list((killed / "checkpoints").glob(".tmp*"))


def test_trained_size_of_a_teacher_and_a_student_checkpoint(teacher, tiny_data, tmp_path):
    from edgegan.train.checkpoint import read_checkpoint

    assert read_checkpoint(teacher).trained_size() == 32
    assert read_checkpoint(teacher).trained_size("B2A") == 32
    out = tmp_path / "student"
    code, err, _ = cli(*distill_args(teacher, tiny_data, out, "--iters", "1"))  # --size: the teacher's
    assert code == 0, err
    student = read_checkpoint(out)
    assert student.config["size"] == 0 and student.trained_size() == 32  # config 0, the student's img_size 32


# ---------------------------------------------------------------- bad input
def test_teacher_without_a_checkpoint(tiny_data, tmp_path):
    empty = tmp_path / "empty_run"
    empty.mkdir()
    code, err, _ = cli(*distill_args(empty, tiny_data, tmp_path / "out", "--iters", "2"))
    assert_one_line_error(code, err, "--teacher", str(empty), "no checkpoint")
    assert not (tmp_path / "out").exists()


def test_unknown_student_gets_did_you_mean(teacher, tiny_data, tmp_path):
    code, err, _ = cli(*distill_args(teacher, tiny_data, tmp_path / "out", "--student", "mobile-xs"))
    assert_one_line_error(code, err, "--student", "mobile-xs", "did you mean 'mobile-s'")
    assert not (tmp_path / "out").exists()


def test_teacher_checkpoint_without_an_a2b_generator(teacher, tiny_data, tmp_path):
    ckpt = tmp_path / "b2a_only" / "checkpoints" / "step_0000002"
    shutil.copytree(list_checkpoints(teacher / "checkpoints")[-1], ckpt)
    state = json.loads((ckpt / "state.json").read_text())
    state["translators"] = {"B2A": "gen_b2a"}
    (ckpt / "state.json").write_text(json.dumps(state))
    code, err, _ = cli(*distill_args(tmp_path / "b2a_only", tiny_data, tmp_path / "out"))
    assert_one_line_error(code, err, "--teacher", "no A2B generator", "B2A")


def test_batch_of_one_and_changed_architecture_on_resume_are_refused(teacher, tiny_data, tmp_path):
    code, err, _ = cli(*distill_args(teacher, tiny_data, tmp_path / "out", "--batch", "1"))
    assert_one_line_error(code, err, "--batch", "BatchNorm")
    out = tmp_path / "run"
    assert cli(*distill_args(teacher, tiny_data, out, "--iters", "2", "--save-every", "2"))[0] == 0
    code, err, _ = cli(*distill_args(teacher, tiny_data, out, "--iters", "2"))
    assert_one_line_error(code, err, "--out", "--resume")
    code, err, _ = cli("distill", "--out", str(out), "--resume", "--student", "mobile-m", "--iters", "4")
    assert_one_line_error(code, err, "--student mobile-m", "mobile-s")


def test_adversarial_term_needs_the_teacher_discriminators(teacher, tiny_data, tmp_path):
    ckpt = tmp_path / "no_disc" / "checkpoints" / "step_0000002"
    shutil.copytree(list_checkpoints(teacher / "checkpoints")[-1], ckpt)
    state = json.loads((ckpt / "state.json").read_text())
    del state["models"]["disc_global_b"]
    (ckpt / "state.json").write_text(json.dumps(state))
    code, err, _ = cli(*distill_args(tmp_path / "no_disc", tiny_data, tmp_path / "out", "--adv-weight", "0.1",
                                     "--iters", "2"))
    assert_one_line_error(code, err, "--adv-weight", "disc_global_b")
    # with them, the term is trained and logged
    out = tmp_path / "adv"
    args = distill_args(teacher, tiny_data, out, "--adv-weight", "0.1", "--iters", "2", "--log-every", "1")
    assert cli(*args)[0] == 0
    assert all(r["adv"] > 0 for r in read_metrics(out / "metrics.jsonl"))


# ---------------------------------------------------------------- profile
def test_profile_prints_params_gmacs_and_latency():
    code, err, out = cli("profile", "mobile-s", "--size", "64", "--threads", "1", "--runs", "2")
    assert code == 0, err
    for needle in ("mobile-s", "params:", "GMACs:", "latency:", "torch eager", "BatchNorm folded"):
        assert needle in out, (needle, out)
    try:
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        assert "ORT fp32 skipped" in out
    else:
        assert "ORT fp32" in out and "speed-up" in out
    gmacs = float(out.split("GMACs:")[1].split()[0])
    assert 0.015 < gmacs < 0.035  # ~0.36 GMACs at 256 px, 16x fewer pixels


def test_profile_unknown_model_is_one_line():
    code, err, _ = cli("profile", "mobile-x", "--runs", "1")
    assert_one_line_error(code, err, "mobile-x", "did you mean 'mobile-s'")


def test_resume_from_another_directory_with_another_spelling(teacher, tiny_data, tmp_path, monkeypatch):
    """Runs started with relative paths resume from anywhere; the same teacher spelt absolutely is accepted;
    `train --resume` on a distill run names the right command."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "data").symlink_to(tiny_data)
    (work / "teacher").symlink_to(teacher)
    monkeypatch.chdir(work)
    code, err, _ = cli(*distill_args(Path("teacher"), Path("data"), Path("run"), "--iters", "2", "--save-every", "1"))
    assert code == 0, err
    saved = json.loads((work / "run" / "config.json").read_text())
    assert Path(saved["data"]).is_absolute() and Path(saved["teacher"]).is_absolute()
    monkeypatch.chdir(tmp_path)
    code, err, _ = cli("distill", "--out", str(work / "run"), "--resume", "--iters", "3",
                       "--teacher", str((work / "teacher").resolve()), "--device", "cpu", "--no-progress")
    assert code == 0, err
    assert list_checkpoints(work / "run" / "checkpoints")[-1].name == "step_0000003"
    code, err, _ = cli("train", "--out", str(work / "run"), "--resume", "--iters", "4")
    assert_one_line_error(code, err, "is an `edgegan distill` run", "edgegan distill --resume")
