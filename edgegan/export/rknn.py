"""RKNN (``.rknn``): Rockchip's NPUs (RK3588, RK3576, RK3566/68, RK3562, RV1106, ...), written by rknn-toolkit2.

- fp16: the NPU's float precision. RKNN has no fp32 (the NPU computes in fp16 or int8), so fp32 is not a
  precision of this target.
- int8: rknn-toolkit2's own post-training quantizer (asymmetric int8, per-channel weights) on the same
  calibration photos NNCF uses, held to NNCF's result like every INT8 export. NNCF's grids cannot be carried
  over: the toolkit requantizes a QDQ graph with its own scheme.

The model takes the camera's uint8 RGB frame (NHWC) as it is: ``(x - 127.5) / 127.5`` is folded into the
NPU's input stage, so the board does no float work before the call. Its output is the network's (N, 3, H, W)
float tensor. ``ModelInfo`` describes the network (NCHW, [-1, 1]); the runtime's RKNN backend hands the
NPU the uint8 frame that tensor came from.

rknn-toolkit2 2.5.0 pins numpy <= 1.26.4, onnx <= 1.18 and torch <= 2.4, so it runs in an environment of its
own (``scripts/setup_rknn.sh``, which keeps your torch instead of the pinned one) and edgegan calls it as
a child process (:mod:`edgegan.export.rknn_convert`) with the fixed-size fp32 ONNX graph the ONNX row
validated. Its x86 simulator only runs a model built in the same session, so the check on the photos happens
there too; the export row says ``simulated``: parity measured in the simulator, no latency (the simulator's
speed says nothing about the NPU's; time it on the board with ``edgegan bench``).

The metadata is the sidecar ``x.json`` (the format's ``custom_string`` holds under 1,024 characters),
which also records the model file's size so a stale sidecar is caught.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from edgegan.errors import EdgeGANError
from edgegan.runtime.metadata import ModelInfo
from edgegan.runtime.metadata_io import embed_sidecar, file_sizes

SIDECAR = ".json"
ENV_VAR = "EDGEGAN_RKNN_PYTHON"
VENV = ".venv-rknn"  # where scripts/setup_rknn.sh puts the toolkit's environment
SETUP = f"run scripts/setup_rknn.sh (an environment of its own, {VENV}/) or set {ENV_VAR} to a Python that has it"
PLATFORMS = ("rk3562", "rk3566", "rk3568", "rk3576", "rk3588", "rv1103", "rv1103b", "rv1106", "rv1106b", "rk2118")
ALGORITHM = "normal"  # the toolkit's min/max calibration; see benchmarks/ncnn_mnn.py for kl_divergence and mmse
_SIM_KEY = "rknn-simulated"


@functools.cache
def _has_toolkit(python: str) -> bool:
    probe = "import importlib.util, sys; sys.exit(importlib.util.find_spec('rknn') is None)"
    try:
        return subprocess.run([python, "-c", probe], capture_output=True, timeout=60, check=False).returncode == 0
    except OSError:
        return False


def converter_python() -> tuple[str | None, str]:
    """(the Python that has rknn-toolkit2, or None; why not). ``$EDGEGAN_RKNN_PYTHON`` when set, else
    ``.venv-rknn`` in the working directory or beside this source tree."""
    chosen = os.environ.get(ENV_VAR)
    if chosen:
        if not Path(chosen).is_file():
            return None, f"{ENV_VAR}={chosen}: no such file"
        return (chosen, "") if _has_toolkit(chosen) else (None, f"{ENV_VAR}={chosen} has no rknn-toolkit2")
    for root in (Path.cwd(), Path(__file__).resolve().parents[2]):
        python = root / VENV / "bin" / "python"
        if python.is_file() and _has_toolkit(str(python)):
            return str(python), ""
    return None, "rknn-toolkit2 not found"


def _calibration_list(job, folder: Path) -> tuple[Path, str]:
    """(the toolkit's dataset file, one image path per line; where the photos came from)."""
    from edgegan.export import save_calibration_photos

    paths, where = save_calibration_photos(job, folder)
    listing = folder.parent / "dataset.txt"
    listing.write_text("".join(f"{p}\n" for p in paths))
    return listing, f"{len(paths)} photos ({where})"


def _run_converter(python: str, job_file: Path) -> None:
    # run from a copy beside the job: a script's folder heads sys.path, and this package's folder holds onnx.py,
    # tflite.py, ... which would shadow the toolkit's own imports
    script = job_file.with_name("rknn_convert.py")
    shutil.copyfile(Path(__file__).with_name("rknn_convert.py"), script)
    try:
        # in the job's folder: the toolkit drops debug graphs (check*.onnx) in its working directory on some paths
        proc = subprocess.run([python, str(script), str(job_file)], capture_output=True, text=True, timeout=3600,
                              check=False, cwd=job_file.parent)
    except subprocess.TimeoutExpired as err:
        raise EdgeGANError("rknn-toolkit2 did not finish within an hour") from err
    if proc.returncode == 0:
        return
    text = re.sub(r"\x1b\[[0-9;]*m", "", proc.stderr + proc.stdout)
    ours = [ln.split("edgegan-rknn-error: ", 1)[1] for ln in text.splitlines() if "edgegan-rknn-error: " in ln]
    # the toolkit's own error lines ("E build: ..."), where a step only returned -1
    theirs = [ln[2:].strip() for ln in text.splitlines() if ln.startswith("E ") and "toolkit2 version" not in ln]
    if ours:
        why = ours[-1] + (f" ({theirs[-1]})" if theirs and "(returned" in ours[-1] else "")
    else:
        why = f"exit code {proc.returncode}: {' '.join(text.split())[-300:]}"
    raise EdgeGANError(f"rknn-toolkit2: {why[:400]}")


def write(job, cache: dict) -> ModelInfo:
    from edgegan.export.onnx import fp32_onnx_file
    python, why = converter_python()
    if python is None:
        raise EdgeGANError(f"RKNN: {why}; {SETUP}")
    if job.photos is None:
        raise EdgeGANError("RKNN: no validation photos for its simulator check")
    int8 = job.precision == "int8"
    info = job.info
    with tempfile.TemporaryDirectory(prefix="edgegan-rknn-") as tmp:
        tmp = Path(tmp)
        onnx_path, _ = fp32_onnx_file(job, cache, tmp / "model.onnx", static=True)
        np.save(tmp / "photos.npy", np.ascontiguousarray(job.photos, dtype=np.uint8))
        spec = {"onnx": str(onnx_path), "out": str(job.path), "platform": job.rknn_platform, "int8": int8,
                "algorithm": ALGORITHM, "mean": [-info.offset / info.scale] * 3, "std": [1 / info.scale] * 3,
                "photos": str(tmp / "photos.npy"), "outputs": str(tmp / "outputs.npy"),
                "versions": str(tmp / "versions.json")}
        if int8:
            dataset, photos = _calibration_list(job, tmp / "calib")
            spec["dataset"] = str(dataset)
        (tmp / "job.json").write_text(json.dumps(spec))
        _run_converter(python, tmp / "job.json")
        cache[_SIM_KEY, str(job.path)] = np.load(tmp / "outputs.npy")
        versions = json.loads((tmp / "versions.json").read_text())
    extra = {**info.extra, **versions, "platform": job.rknn_platform,
             "input": "uint8 RGB frame, NHWC; (x - 127.5) / 127.5 runs on the NPU",
             "checked": "rknn-toolkit2's x86 simulator"}
    if int8:
        extra["int8_from"] = (f"rknn-toolkit2's own quantizer ({ALGORITHM} calibration, asymmetric int8, per-channel "
                              f"weights) on {photos}; held to NNCF's result")
    extra["bytes"] = file_sizes(job.path, ())
    info = replace(info, layout="NCHW", input_name="image", output_name="cartoon", dynamic_size=False, extra=extra)
    embed_sidecar(job.path, info, SIDECAR)
    return info


def simulated(job, cache: dict) -> tuple[np.ndarray, str]:
    """(the simulator's outputs on the validation photos, N x 3 x H x W float; what produced them)."""
    return cache.pop((_SIM_KEY, str(job.path))), f"rknn-toolkit2 simulator ({job.rknn_platform})"


def structure(path: Path, job, info: ModelInfo) -> list[str]:
    """Problems found without the board: the container's magic and the file the sidecar describes."""
    with open(path, "rb") as f:
        head = f.read(4)
    if head != b"RKNN":
        return [f"not an RKNN file (starts with {head!r})"]
    return []
