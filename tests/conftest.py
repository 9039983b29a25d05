import os
import sys
from pathlib import Path

import pytest

from edgegan.data.demo import build_demo_dataset


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module of tiny networks: on a shared 2-core machine a second intra-op thread
    mostly waits for a time slice (measured up to 50x slower per op under load)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


TINY = ["--size", "32", "--ngf", "4", "--ndf", "4", "--n-res", "1", "--device", "cpu", "--no-progress"]


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """A small copy of the built-in demo data at 32 px."""
    root = tmp_path_factory.mktemp("data") / "demo"
    build_demo_dataset(root, size=32, n_train=16, n_test=4, seed=0, progress=False)
    return root


def edgegan_cmd() -> list[str]:
    return [sys.executable, "-m", "edgegan.cli"]


def subprocess_env() -> dict:
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    """The CLI's contract for bad input: exit code 2 and one line ``error: ...`` naming what is wrong."""
    assert code == 2, err
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, (needle, err)


# The start of a script for a fresh interpreter in which every torch import fails: the runtime must not need it.
TORCH_FREE_PRELUDE = """
import importlib.abc, sys

class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch.") or name.startswith("torchvision"):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)")
        return None

sys.meta_path.insert(0, NoTorch())


def run_cli(*arg_lists):
    from edgegan.cli import main

    for args in arg_lists:
        try:
            main(args, standalone_mode=False)
        except SystemExit as exit:
            assert not exit.code, (args, exit.code)


def assert_torch_not_loaded():
    loaded = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
    assert not loaded, loaded
"""
