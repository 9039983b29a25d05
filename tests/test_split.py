"""``edgegan data split``: a seeded, repeatable hold-out of trainA/ trainB/ into testA/ testB/, checked before
anything moves."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from edgegan.data.images import save_png_atomic
from edgegan.data.split import split_dataset
from edgegan.errors import EdgeGANError
from tests.conftest import assert_one_line_error, subprocess_env


def make_domains(root, n_a: int, n_b: int):
    for domain, n in (("trainA", n_a), ("trainB", n_b)):
        (root / domain).mkdir(parents=True)
        for i in range(n):
            save_png_atomic(root / domain / f"{i:03d}.png", np.full((8, 8, 3), i, np.uint8))
    (root / "trainA" / "prepare.json").write_text("{}")  # a report beside the crops stays where it is


def names(folder) -> list[str]:
    return sorted(p.name for p in folder.glob("*.png"))


def test_split_moves_a_share_and_is_repeatable(tmp_path):
    make_domains(tmp_path / "x", 20, 40)
    make_domains(tmp_path / "y", 20, 40)
    counts = split_dataset(tmp_path / "x", test=0.1, seed=3)
    assert counts == {"trainA/testA": {"train": 18, "test": 2}, "trainB/testB": {"train": 36, "test": 4}}
    assert len(names(tmp_path / "x" / "testA")) == 2 and len(names(tmp_path / "x" / "trainA")) == 18
    assert not set(names(tmp_path / "x" / "testB")) & set(names(tmp_path / "x" / "trainB"))
    assert (tmp_path / "x" / "trainA" / "prepare.json").exists()
    split_dataset(tmp_path / "y", test=0.1, seed=3)
    assert names(tmp_path / "x" / "testB") == names(tmp_path / "y" / "testB")  # same seed, same split


def test_split_refuses_before_moving_anything(tmp_path):
    make_domains(tmp_path, 5, 1)
    with pytest.raises(EdgeGANError, match="trainB: holds 1 image"):
        split_dataset(tmp_path, test=1)
    assert not (tmp_path / "testA").exists() and len(names(tmp_path / "trainA")) == 5
    with pytest.raises(EdgeGANError, match="whole number"):
        split_dataset(tmp_path, test=1.5)


def test_split_cli_twice_is_an_error(tmp_path):
    make_domains(tmp_path, 10, 10)
    cmd = [sys.executable, "-m", "edgegan.cli", "data", "split", str(tmp_path), "--test", "2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env(), timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "trainA/testA: 8 train / 2 test" in proc.stdout
    again = subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env(), timeout=120, check=False)
    assert_one_line_error(again.returncode, again.stderr.strip(), "testA", "already holds files")
