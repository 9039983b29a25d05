"""`edgegan eval`: report contents, the identity baseline, reference mode, errors."""

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgegan.cli import main
from edgegan.data.images import list_images, load_rgb
from edgegan.eval.evaluate import evaluate, load_translator
from edgegan.eval.metrics import psnr, ssim
from tests.conftest import TINY, edgegan_cmd, subprocess_env


def _train(data: Path, out: Path, seed: int) -> Path:
    cmd = [*edgegan_cmd(), "train", "--data", str(data), "--out", str(out), *TINY, "--iters", "2",
           "--save-every", "2", "--sample-every", "0", "--seed", str(seed)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


@pytest.fixture(scope="module")
def two_runs(tiny_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return _train(tiny_data, root / "a", seed=1), _train(tiny_data, root / "b", seed=2)


def test_report_scores_model_and_identity_baseline(tiny_data, two_runs, tmp_path):
    run, _ = two_runs
    report = evaluate(run, tiny_data, fid=False, grid_path=tmp_path / "grid.png")
    assert report["n"] == 4 and report["size"] == 32 and report["direction"] == "A2B"
    # the identity baseline is the photo itself scored against its stylised ground truth
    photos = [load_rgb(p) for p in list_images(tiny_data / "testA", role="testA")]
    gts = [load_rgb(tiny_data / "testA_gt" / p.name) for p in list_images(tiny_data / "testA", role="testA")]
    base = report["paired"]["identity_baseline"]
    assert base["psnr_mean"] == pytest.approx(np.mean([psnr(a, b) for a, b in zip(photos, gts)]))
    assert base["ssim_mean"] == pytest.approx(np.mean([ssim(a, b) for a, b in zip(photos, gts)]))
    model = report["paired"]["model"]
    assert 0 < model["psnr_mean"] < 60 and -1 <= model["ssim_mean"] <= 1
    assert (tmp_path / "grid.png").stat().st_size > 0


def test_reference_mode_agrees_with_a_direct_computation(tiny_data, two_runs):
    run_a, run_b = two_runs
    report = evaluate(run_a, tiny_data, reference=run_b, fid=False)
    photos = np.stack([load_rgb(p) for p in list_images(tiny_data / "testA", role="testA")])
    out_a = load_translator(run_a).run(photos)
    out_b = load_translator(run_b).run(photos)
    direct = np.mean([psnr(a, b) for a, b in zip(out_a, out_b)])
    assert report["reference"]["psnr_mean"] == pytest.approx(direct)
    assert report["reference"]["ssim_mean"] == pytest.approx(np.mean([ssim(a, b) for a, b in zip(out_a, out_b)]))
    # a model against itself: identical outputs
    same = evaluate(run_a, tiny_data, reference=run_a, fid=False)["reference"]
    assert same["psnr_identical"] == 4 and same["ssim_mean"] == pytest.approx(1.0)


def test_b2a_direction_has_no_ground_truth_but_runs(tiny_data, two_runs):
    report = evaluate(two_runs[0], tiny_data, direction="B2A", fid=False)
    assert "paired" not in report and report["n"] == 4


def test_cli_writes_json_and_grid(tiny_data, two_runs, tmp_path):
    out = tmp_path / "r" / "report.json"
    result = CliRunner().invoke(main, ["eval", "--model", str(two_runs[0]), "--data", str(tiny_data),
                                       "--out", str(out), "--no-fid"])
    assert result.exit_code == 0, result.output
    assert "identity baseline" in result.output
    assert json.loads(out.read_text())["paired"]["model"]["n"] == 4
    assert out.with_suffix(".png").is_file()


@pytest.mark.parametrize("case", ["no-model", "corrupt-export", "missing-gt", "not-a-checkpoint"])
def test_errors_are_one_line(case, tiny_data, two_runs, tmp_path):
    data, model = tiny_data, str(two_runs[0])
    if case == "no-model":
        model, needle = str(tmp_path / "nope"), "no such file"
    elif case == "corrupt-export":  # exported files go through the runtime, which names the file
        (tmp_path / "m.onnx").write_bytes(b"x")
        model, needle = str(tmp_path / "m.onnx"), "m.onnx"
    elif case == "missing-gt":
        data = tmp_path / "data"
        shutil.copytree(tiny_data, data)
        victim = sorted((data / "testA_gt").iterdir())[0]
        victim.unlink()
        needle = victim.name
    else:
        (tmp_path / "empty").mkdir()
        model, needle = str(tmp_path / "empty"), "no checkpoint"
    result = CliRunner().invoke(main, ["eval", "--model", model, "--data", str(data), "--no-fid"])
    err = result.stderr.strip()
    assert result.exit_code == 2 and err.startswith("error: ") and "\n" not in err, err
    assert needle in err, err


def test_cli_without_the_inception_weights_still_scores(tiny_data, two_runs, monkeypatch):
    """No FID weights: PSNR/SSIM are reported, one line says how to get FID, exit 0."""
    from edgegan.eval import inception

    real = inception.importlib.util.find_spec
    monkeypatch.setattr(inception.importlib.util, "find_spec",
                        lambda name, *a: None if name == inception.PACKAGE else real(name, *a))
    result = CliRunner().invoke(main, ["eval", "--model", str(two_runs[0]), "--data", str(tiny_data)])
    assert result.exit_code == 0, result.output
    assert f"(FID/KID skipped: {inception.MISSING})" in result.output
    assert "identity baseline" in result.output
