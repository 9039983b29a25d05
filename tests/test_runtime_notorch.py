"""The runtime runs where torch is not installed: a fresh interpreter with every torch import refused
loads a model, cartoonizes a real face photo, and runs ``edgegan demo`` and ``edgegan bench``."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np

from edgegan.runtime.clip import write_clip
from edgegan.runtime.metadata import ModelInfo
from edgegan.runtime.metadata_io import embed_onnx
from tests.conftest import TORCH_FREE_PRELUDE, subprocess_env

SIZE = 64


def conv_tanh_onnx(path) -> None:
    """A one-conv 'generator' built with onnx.helper: making it needs no torch either."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.normal(0, 0.3, (3, 3, 3, 3)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["image", "w"], ["c"], pads=[1, 1, 1, 1]),
         helper.make_node("Tanh", ["c"], ["cartoon"])],
        "conv_tanh",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("cartoon", TensorProto.FLOAT, [1, 3, SIZE, SIZE])],
        initializer=[weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(embed_onnx(model, ModelInfo(model="conv-tanh", input_size=SIZE, precision="fp32")), str(path))


SCRIPT = TORCH_FREE_PRELUDE + """
import numpy as np
from edgegan.runtime import load
from edgegan.runtime.clip import face_photo

cartoonizer = load(MODEL, threads=1)
photo = face_photo()
out = cartoonizer.cartoonize(photo, color="BGR")
assert out.shape == photo.shape, out.shape
assert (out != photo).any(axis=2)[90:170, 190:260].mean() > 0.9, "face not pasted back"
assert cartoonizer.process_frame(photo).faces, "no face found"

run_cli(["demo", "--model", MODEL, "--source", CLIP, "--headless", "--output", OUT, "--threads", "1"],
        ["bench", "--model", MODEL, "--runs", "3", "--frames", "4", "--threads", "1"])
assert_torch_not_loaded()
print("RUNTIME-WITHOUT-TORCH-OK")
"""


def test_runtime_imports_and_runs_without_torch(tmp_path):
    model = tmp_path / "conv.onnx"
    conv_tanh_onnx(model)
    clip = write_clip(tmp_path / "clip.mp4", n=6, size=(320, 240))
    code = f"MODEL, CLIP, OUT = {str(model)!r}, {str(clip)!r}, {str(tmp_path / 'out.mp4')!r}\n"
    proc = subprocess.run([sys.executable, "-c", code + textwrap.dedent(SCRIPT)], capture_output=True, text=True,
                          env=subprocess_env(), timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "RUNTIME-WITHOUT-TORCH-OK" in proc.stdout
    assert (tmp_path / "out.mp4").stat().st_size > 0
