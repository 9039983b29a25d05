"""Trainer behaviour: losses fall, exact resume after kill -9, DDP ranks agree, samples/logs."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from edgegan.train.checkpoint import list_checkpoints
from edgegan.train.common import read_metrics
from tests.conftest import TINY, edgegan_cmd, run_train, subprocess_env


def final_weights(run: Path) -> dict[str, np.ndarray]:
    return load_file(list_checkpoints(run / "checkpoints")[-1] / "weights.safetensors")


def test_tiny_run_writes_checkpoints_samples_metrics_and_config(tiny_data, tmp_path):
    out = tmp_path / "run"
    run_train(tiny_data, out, "--iters", "6", "--save-every", "3", "--sample-every", "3", "--log-every", "2")
    assert [p.name for p in list_checkpoints(out / "checkpoints")] == ["step_0000003", "step_0000006"]
    ckpt = out / "checkpoints" / "step_0000006"
    assert {p.name for p in ckpt.iterdir()} == {"weights.safetensors", "optim.safetensors", "state.json"}
    assert sorted(p.name for p in (out / "samples").glob("*.png")) == ["step_0000003.png", "step_0000006.png"]
    assert [r["step"] for r in read_metrics(out / "metrics.jsonl")] == [2, 4, 6]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["size"] == 32 and cfg["ngf"] == 4 and cfg["iters"] == 6
    weights = final_weights(out)
    assert any(k.startswith("gen_a2b.") for k in weights) and any(k.startswith("disc_local_b.") for k in weights)


@pytest.mark.slow
def test_losses_fall_on_a_tiny_run(tiny_data, tmp_path):
    out = tmp_path / "run"
    run_train(tiny_data, out, "--preset", "ugatit-light", "--iters", "150", "--save-every", "150",
              "--sample-every", "0", "--log-every", "1", "--lr", "5e-4", "--ngf", "8", "--ndf", "8")
    rows = read_metrics(out / "metrics.jsonl")
    first, last = rows[:30], rows[-30:]
    # the CAM term (weight 1000) dominates G early, so reconstruction falls more slowly
    for key, factor in (("g_cam", 0.8), ("d_loss", 0.8), ("g_loss", 0.8), ("g_cycle", 0.9), ("g_identity", 0.9)):
        before = np.mean([r[key] for r in first])
        after = np.mean([r[key] for r in last])
        assert after < factor * before, (key, before, after)


@pytest.mark.slow
def test_resume_after_kill_9_equals_an_uninterrupted_run(tiny_data, tmp_path):
    args = ["--iters", "30", "--save-every", "5", "--sample-every", "0", "--log-every", "1", "--seed", "3"]
    straight = tmp_path / "straight"
    run_train(tiny_data, straight, *args)

    killed = tmp_path / "killed"
    cmd = [*edgegan_cmd(), "train", "--data", str(tiny_data), "--out", str(killed), *TINY, *args]
    proc = subprocess.Popen(cmd, env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not list_checkpoints(killed / "checkpoints") and time.time() < deadline and proc.poll() is None:
        time.sleep(0.005)
    time.sleep(0.15)  # land somewhere past the checkpoint, maybe inside the next one's write
    still_running = proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert still_running, "the run finished before it could be killed; make it longer"
    steps = [int(p.name.split("_")[1]) for p in list_checkpoints(killed / "checkpoints")]
    assert steps and steps[-1] < 30

    resumed = run_train(tiny_data, killed, *args, "--resume")
    assert resumed.returncode == 0
    a, b = read_metrics(straight / "metrics.jsonl"), read_metrics(killed / "metrics.jsonl")
    assert [r["step"] for r in b] == list(range(1, 31))
    for ra, rb in zip(a, b):
        for key in ("d_loss", "g_loss", "g_adv", "g_cycle", "g_identity", "g_cam", "lr"):
            assert ra[key] == rb[key], (ra["step"], key, ra[key], rb[key])
    wa, wb = final_weights(straight), final_weights(killed)
    assert wa.keys() == wb.keys()
    assert all(np.array_equal(wa[k], wb[k]) for k in wa)
    assert not list((killed / "checkpoints").glob(".tmp*"))


@pytest.mark.slow
def test_ddp_gloo_two_processes_ranks_agree(tiny_data, tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "edgegan.cli", "train", "--data", str(tiny_data), "--out", str(out), *TINY,
           "--iters", "6", "--save-every", "3", "--sample-every", "3", "--log-every", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env(), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for ckpt in list_checkpoints(out / "checkpoints"):
        sums = json.loads((ckpt / "state.json").read_text())["rank_checksums"]
        assert len(sums) == 2 and sums[0] == sums[1], sums
    assert [r["step"] for r in read_metrics(out / "metrics.jsonl")] == list(range(1, 7))
    # the ranks trained on different data: a single process with the same seed ends elsewhere
    single = tmp_path / "single"
    run_train(tiny_data, single, "--iters", "6", "--save-every", "6", "--sample-every", "0")
    wa, wb = final_weights(out), final_weights(single)
    assert any(not np.array_equal(wa[k], wb[k]) for k in wa if k.startswith("gen_a2b."))


def test_resume_from_another_directory(tiny_data, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from edgegan.cli import main

    work = tmp_path / "work"
    work.mkdir()
    (work / "data").symlink_to(tiny_data)
    monkeypatch.chdir(work)
    args = ["train", "--data", "data", "--out", "run", *TINY, "--save-every", "1", "--sample-every", "0",
            "--device", "cpu", "--no-progress"]
    result = CliRunner().invoke(main, [*args, "--iters", "1"])
    assert result.exit_code == 0, result.output
    assert Path(json.loads((work / "run" / "config.json").read_text())["data"]).is_absolute()
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["train", "--out", str(work / "run"), "--resume", "--iters", "2",
                                       "--device", "cpu", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert list_checkpoints(work / "run" / "checkpoints")[-1].name == "step_0000002"


# ---------------------------------------------------------------- the CLI states the config's defaults
def _help(command: str) -> str:
    from click.testing import CliRunner

    from edgegan.cli import main

    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())  # unwrapped


def test_train_help_states_the_train_config_defaults():
    from edgegan.train.config import PRESETS, TrainConfig

    text = _help("train")
    assert f"Total iterations [{TrainConfig.iters}]." in text
    assert f"Checkpoint interval in iterations [{TrainConfig.save_every}]." in text
    assert "Adam learning rate [0.0001]." in text
    # a preset that sets a field shows its own value next to the dataclass's
    assert f"[the preset's: photo2cartoon {PRESETS['photo2cartoon']['ngf']}, others {TrainConfig.ngf}]" in text
    assert "[the preset's: edgegan on, others off]" in text  # --skip


def test_distill_help_states_the_distill_config_defaults():
    from edgegan.train.config import DistillConfig

    text = _help("distill")
    assert f"Total iterations [{DistillConfig.iters}]." in text
    assert f"the student trains BatchNorm [{DistillConfig.batch}]." in text
    assert "Training crop size [the teacher's]." in text  # its 0 default
    assert f"[{DistillConfig.student}]" in text


def test_every_train_and_distill_flag_is_a_config_field():
    """The commands pass their flags on as config fields, by name: a flag that is none would fail late."""
    import dataclasses

    from edgegan.cli import main
    from edgegan.train.config import DistillConfig, TrainConfig

    own = {"out", "resume", "no_progress", "help"}
    for command, cfg, extra in (("train", TrainConfig, {"preset"}), ("distill", DistillConfig, {"width", "skip"})):
        fields = {f.name for f in dataclasses.fields(cfg)}
        params = {p.name for p in main.commands[command].params}
        assert params - own - extra <= fields, (command, params - own - extra - fields)


# ---------------------------------------------------------------- Checkpoint.trained_size
def test_trained_size_reads_the_generator_then_the_config():
    from edgegan.errors import CheckpointError
    from edgegan.train.checkpoint import Checkpoint

    def ckpt(config: dict, kwargs: dict | None, translators: bool = True) -> Checkpoint:
        state = {"models": {"g": {"name": "x", "kwargs": kwargs}}, "translators": {"A2B": "g"}} if translators \
            else {"student_spec": {"name": "x", "kwargs": kwargs}}
        return Checkpoint(Path("run/checkpoints/step_0000001"), 1, config, state)

    assert ckpt({"size": 64}, {"img_size": 32}).trained_size() == 32  # the generator's own size first
    assert ckpt({"size": 64}, {"ngf": 4}).trained_size() == 64  # else a training config's size
    assert ckpt({"size": 48}, {}, translators=False).trained_size() == 48  # a QAT checkpoint: its config's
    with pytest.raises(CheckpointError, match="no B2A generator"):
        ckpt({"size": 64}, {"img_size": 32}).trained_size("B2A")
    with pytest.raises(CheckpointError, match="does not say what size"):  # a distill config's 0: the teacher's
        ckpt({"size": 0, "teacher": "t"}, {"width": 0.5}).trained_size()
