import contextlib
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data
from click.testing import CliRunner

from edgegan.cli import main
from edgegan.data.demo import build_demo_dataset
from edgegan.runtime.metadata import ModelInfo
from edgegan.runtime.metadata_io import embed_onnx, embed_tflite


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


def run_without_torch(body: str, *, timeout: int = 120) -> str:
    """Run ``body`` in a fresh interpreter where every torch import fails, then check torch was never loaded;
    returns what it printed (the runtime's own output must stay empty where a test says so)."""
    import textwrap

    marker = "TORCH-FREE-OK"
    script = TORCH_FREE_PRELUDE + textwrap.dedent(body) + f"\nassert_torch_not_loaded()\nprint({marker!r})\n"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=subprocess_env(),
                          timeout=timeout, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.rstrip("\n").split("\n")
    assert lines[-1] == marker, proc.stdout
    return "\n".join(lines[:-1])


# ------------------------------------------------------------------------------------------ runtime models
# Made here with torch (the runtime itself never imports it; see test_runtime_notorch.py): a BatchNorm-folded
# ``mobile-s`` at width 0.25 and 64 px, exported to ONNX (fixed and dynamic size, QDQ INT8, and an fp16-input
# graph) and to TFLite with an NHWC interface, each carrying its ``ModelInfo``. Built once per session for
# test_backends, test_faces, test_pipeline and test_demo_cli.
SIZE = 64


def _student():
    import torch

    from edgegan.models import create_model
    from edgegan.models.mobile import fold_batchnorm

    torch.manual_seed(0)
    net = create_model("mobile-s", width=0.25, img_size=SIZE)
    with torch.no_grad():  # non-trivial BatchNorm statistics, so folding and the output are not flat
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return fold_batchnorm(net).eval()


def _export_onnx(net, path: Path, info: ModelInfo, *, dynamic: bool = False) -> Path:
    import onnx
    import torch

    x = torch.randn(1, 3, SIZE, SIZE)
    axes = {"image": {2: "h", 3: "w"}, "cartoon": {2: "h", 3: "w"}} if dynamic else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (x,), str(path), dynamo=False, input_names=["image"], output_names=["cartoon"],
                          opset_version=17, dynamic_axes=axes)
    model = onnx.load(str(path))
    onnx.save(embed_onnx(model, info), str(path))
    return path


@pytest.fixture(scope="session")
def student():
    return _student()


@pytest.fixture(scope="session")
def models(student, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    out = {"onnx": _export_onnx(student, root / "s.onnx", ModelInfo(model="mobile-s", input_size=SIZE,
                                                                      precision="fp32")),
           "dynamic": _export_onnx(student, root / "dyn.onnx",
                                   ModelInfo(model="mobile-s", input_size=SIZE, precision="fp32", dynamic_size=True),
                                   dynamic=True)}
    return out


@pytest.fixture(scope="session")
def tflite_model(student, tmp_path_factory) -> Path:
    import litert_torch
    import torch

    class NHWC(torch.nn.Module):  # the TFLite convention: channels last at the interface
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)

    root = tmp_path_factory.mktemp("tflite")
    edge = litert_torch.convert(NHWC(student).eval(), (torch.randn(1, SIZE, SIZE, 3),))
    edge.export(str(root / "raw.tflite"))
    info = ModelInfo(model="mobile-s", input_size=SIZE, precision="fp32", layout="NHWC")
    path = root / "s.tflite"
    path.write_bytes(embed_tflite((root / "raw.tflite").read_bytes(), info))
    return path


@pytest.fixture(scope="session")
def int8_model(models, tmp_path_factory) -> Path:
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    class Photos(CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(0)
            self.items = iter([{"image": rng.uniform(-1, 1, (1, 3, SIZE, SIZE)).astype(np.float32)}
                               for _ in range(4)])

        def get_next(self):
            return next(self.items, None)

    root = tmp_path_factory.mktemp("int8")
    path = root / "s_int8.onnx"
    quantize_static(str(models["onnx"]), str(path), Photos(), quant_format=QuantFormat.QDQ)
    model = onnx.load(str(path))
    onnx.save(embed_onnx(model, ModelInfo(model="mobile-s", input_size=SIZE, precision="int8")), str(path))
    return path


@pytest.fixture(scope="session")
def fp16_model(tmp_path_factory) -> Path:
    """A graph with float16 input and output (Tanh only): exercises the backend's dtype conversion."""
    import onnx
    from onnx import TensorProto, helper

    shape = [1, 3, SIZE, SIZE]
    graph = helper.make_graph([helper.make_node("Tanh", ["image"], ["cartoon"])], "fp16",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT16, shape)],
                              [helper.make_tensor_value_info("cartoon", TensorProto.FLOAT16, shape)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path_factory.mktemp("fp16") / "tanh16.onnx"
    onnx.save(embed_onnx(model, ModelInfo(model="tanh", input_size=SIZE, precision="fp16")), str(path))
    return path


# ------------------------------------------------------------------------------------------ runtime images
def astronaut_bgr() -> np.ndarray:
    return cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)


ASTRO_FACE = np.array([178, 78, 272, 175], float)  # the face in the 512 px photo


def frame_with_faces(centres_sides, size=(640, 480), bg=110) -> tuple[np.ndarray, list[np.ndarray]]:
    """A grey frame with the astronaut photo pasted so its face has the given centre and side."""
    w, h = size
    frame = np.full((h, w, 3), bg, np.uint8)
    photo = astronaut_bgr()
    boxes = []
    for (cx, cy), side in centres_sides:
        s = side / (ASTRO_FACE[2] - ASTRO_FACE[0])
        fcx, fcy = (ASTRO_FACE[0] + ASTRO_FACE[2]) / 2, (ASTRO_FACE[1] + ASTRO_FACE[3]) / 2
        m = np.array([[s, 0, cx - fcx * s], [0, s, cy - fcy * s]], np.float32)
        # paste only the head and shoulders so two faces side by side do not cover each other
        region = np.zeros(photo.shape[:2], np.uint8)
        region[20:300, 130:330] = 1
        mask = cv2.warpAffine(region, m, (w, h)) > 0
        frame[mask] = cv2.warpAffine(photo, m, (w, h))[mask]
        boxes.append(np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2]))
    return frame, boxes


def changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.astype(np.int16) - b.astype(np.int16)).max(axis=2) > 0


# ------------------------------------------------------------------------------------------ runtime CLI
def cli(*args: str):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr.strip()


def count_frames(path: Path) -> tuple[int, tuple[int, int]]:
    cap = cv2.VideoCapture(str(path))
    n, size = 0, None
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        n, size = n + 1, frame.shape[:2]
    cap.release()
    return n, size


# ------------------------------------------------------------------ export (test_export, test_openvino)
EXPORT_SIZE = 32


def save_generator(root: Path, model, name: str, kwargs: dict) -> Path:
    from edgegan.train.checkpoint import save_checkpoint

    run = root / "run"
    save_checkpoint(run / "checkpoints", 1, modules={"g": model.eval()}, optimizers={}, config={"size": EXPORT_SIZE},
                    state={"models": {"g": {"name": name, "kwargs": kwargs}}, "translators": {"A2B": "g"}})
    return run


@pytest.fixture(scope="session")
def export_student(tmp_path_factory) -> Path:
    """A tiny mobile-s fitted for a few steps to a posterised copy of real photos: real BatchNorm statistics
    and an output that depends on the photo (an untrained student's is ~constant and quantizes too well)."""
    import torch

    from edgegan.data.unpaired import to_model_range
    from edgegan.export import validate
    from edgegan.models import create_model

    torch.manual_seed(0)
    model = create_model("mobile-s", width=0.25, img_size=EXPORT_SIZE).train()
    x = torch.from_numpy(to_model_range(validate.demo_calibration(EXPORT_SIZE)))
    target = torch.round(x * 3) / 3
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(30):
        loss = (model(x) - target).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return save_generator(tmp_path_factory.mktemp("student"), model, "mobile-s",
                          {"width": 0.25, "img_size": EXPORT_SIZE})


def run_train(data: Path, out: Path, *extra: str, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [*edgegan_cmd(), "train", "--data", str(data), "--out", str(out), *TINY, *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env(), timeout=600)
    if check:
        assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


@contextlib.contextmanager
def xvfb(width: int, height: int):
    """A fresh Xvfb display (":N") for a module's real-window tests, ready for clients when yielded."""
    import shutil

    missing = [tool for tool in ("Xvfb", "xdotool") if shutil.which(tool) is None]
    assert not missing, f"{', '.join(missing)} not installed: run scripts/setup_gui.sh"
    n = next(n for n in range(90, 200) if not Path(f"/tmp/.X11-unix/X{n}").exists()
             and not Path(f"/tmp/.X{n}-lock").exists())
    server = subprocess.Popen(["Xvfb", f":{n}", "-screen", "0", f"{width}x{height}x24", "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = {**os.environ, "DISPLAY": f":{n}"}
    deadline = time.monotonic() + 10
    # the socket appears before the server accepts clients: wait until one can connect
    while not Path(f"/tmp/.X11-unix/X{n}").exists() or subprocess.run(
            ["xdotool", "getdisplaygeometry"], env=env, capture_output=True, check=False).returncode:
        assert server.poll() is None and time.monotonic() < deadline, "Xvfb did not start"
        time.sleep(0.05)
    try:
        yield f":{n}"
    finally:
        server.terminate()
        server.wait(timeout=10)
