"""The demo cartoonizer shipped inside the package: ``--model demo`` everywhere a model is taken.

``demo`` is a small student (a cartoon *filter* trained on the built-in demo photos by
``scripts/train_demo_model.sh``) exported to ONNX, TFLite and OpenVINO at fp32 and INT8. The files
and ``manifest.json`` (sha256, training command, scores) live in ``edgegan/runtime/demo_model/``;
nothing is downloaded. ``demo`` picks the fastest file this machine can run; ``demo:int8``,
``demo:fp32``, ``demo:tflite``, ``demo:openvino``, ``demo:onnx`` (and pairs such as
``demo:tflite-int8``) narrow the choice. A folder or file literally named ``demo`` is reached as
``./demo``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import platform
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from edgegan.errors import EdgeGANError

DEMO_DIR = Path(__file__).resolve().parent / "demo_model"
MANIFEST = DEMO_DIR / "manifest.json"
NAME = "demo"

# The runtime each packaged format needs, and the pip line that installs it.
_RUNTIMES = {"openvino": ("openvino", 'pip install "edgegan[openvino]"'),
             "onnx": ("onnxruntime", 'pip install "edgegan[runtime]"'),
             "tflite": ("ai_edge_litert", 'pip install "edgegan[runtime]"')}
_TOKENS = {"onnx": "onnx", "onnxruntime": "onnx", "ort": "onnx", "tflite": "tflite", "litert": "tflite",
           "openvino": "openvino", "ov": "openvino", "fp32": "fp32", "int8": "int8"}


@dataclass(frozen=True)
class PackagedModel:
    """One packaged file (OpenVINO's .bin travels beside its .xml under the same stem)."""

    path: Path
    format: str  # onnx | tflite | openvino
    precision: str  # fp32 | int8
    sha256: str
    bytes: int


def is_packaged(spec: str | os.PathLike[str] | None) -> bool:
    """Whether ``spec`` names the packaged model (``demo`` or ``demo:VARIANT``), not a path."""
    if not isinstance(spec, str):
        return False
    return spec == NAME or spec.startswith(NAME + ":")


@lru_cache(maxsize=1)
def read_manifest() -> dict:
    try:
        manifest = json.loads(MANIFEST.read_text())
    except FileNotFoundError:
        raise EdgeGANError(f"--model demo: this install has no packaged demo model ({MANIFEST} is missing); "
                           "reinstall edgegan or pass an exported model file") from None
    except ValueError as err:
        raise EdgeGANError(f"{MANIFEST}: not valid JSON ({err}); reinstall edgegan") from None
    return manifest


def packaged_models() -> list[PackagedModel]:
    """Every packaged file, in the manifest's order."""
    return [PackagedModel(DEMO_DIR / f["file"], f["format"], f["precision"], f["sha256"], int(f["bytes"]))
            for f in read_manifest()["files"]]


def preference() -> list[tuple[str, str]]:
    """(format, precision) from fastest to slowest. Measured on this project's 2-core x86 machine with
    ``edgegan bench --model demo`` (README): ONNX Runtime INT8 2.4 ms at 128 px, OpenVINO INT8 2.9 (bf16 hint),
    LiteRT INT8 3.9; the same order at 256 px. OpenVINO's IR goes before LiteRT on x86, where its kernels pay."""
    if platform.machine().lower() in ("x86_64", "amd64", "i686", "x86"):
        return [("onnx", "int8"), ("openvino", "int8"), ("onnx", "fp32"), ("openvino", "fp32"), ("tflite", "int8"),
                ("tflite", "fp32")]
    return [("onnx", "int8"), ("tflite", "int8"), ("onnx", "fp32"), ("tflite", "fp32"), ("openvino", "int8"),
            ("openvino", "fp32")]


def installed(module: str) -> bool:
    """Whether ``module`` can be imported here, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _installed(fmt: str) -> bool:
    return installed(_RUNTIMES[fmt][0])


def select(spec: str = NAME, *, formats: tuple[str, ...] | None = None,
           precision: str | None = None) -> PackagedModel:
    """The packaged file ``spec`` (``demo`` or ``demo:VARIANT``) names, among ``formats`` if given;
    ``precision``: the one to take when ``spec`` names none."""
    variant = spec[len(NAME) + 1:] if spec.startswith(NAME + ":") else ""
    wanted = set()
    for token in filter(None, variant.replace(",", "-").replace(":", "-").lower().split("-")):
        if token not in _TOKENS:
            raise EdgeGANError(f"--model {spec}: unknown variant {token!r} (choose from demo, demo:int8, demo:fp32, "
                               "demo:onnx, demo:tflite, demo:openvino, or a pair such as demo:tflite-int8)")
        wanted.add(_TOKENS[token])
    if precision and not wanted & {"fp32", "int8"}:
        wanted.add(precision)
    candidates = [m for m in packaged_models()
                  if not (wanted - {m.format, m.precision}) and (formats is None or m.format in formats)]
    if not candidates:
        have = ", ".join(f"demo:{m.format}-{m.precision}" for m in packaged_models())
        raise EdgeGANError(f"--model {spec}: no packaged file matches (packaged: {have})")
    rank = {key: i for i, key in enumerate(preference())}
    candidates.sort(key=lambda m: rank.get((m.format, m.precision), len(rank)))
    runnable = [m for m in candidates if _installed(m.format)]
    if not runnable:
        fmt = candidates[0].format
        raise EdgeGANError(f"--model {spec}: the packaged {fmt} file needs {_RUNTIMES[fmt][0]}, which is not "
                           f"installed ({_RUNTIMES[fmt][1]})")
    return verified(runnable[0])


def companion_files(path: Path) -> list[Path]:
    """A model file and the files that travel with it (OpenVINO's .bin beside its .xml)."""
    return [path] + ([path.with_suffix(".bin")] if path.suffix.lower() == ".xml" else [])


def files_sha256(path: Path) -> str:
    """sha256 over a model's files in ``companion_files`` order: what the manifest records."""
    digest = hashlib.sha256()
    for f in companion_files(path):
        digest.update(f.read_bytes())
    return digest.hexdigest()


def verified(model: PackagedModel) -> PackagedModel:
    """``model`` after checking its bytes against the manifest (a damaged install fails in one line)."""
    missing = [f for f in companion_files(model.path) if not f.is_file()]
    if missing:
        raise EdgeGANError(f"{missing[0]}: packaged demo model file is missing; reinstall edgegan")
    if files_sha256(model.path) != model.sha256:
        raise EdgeGANError(f"{model.path}: packaged demo model does not match its manifest (sha256); reinstall edgegan")
    return model


def resolve_model(spec: str | os.PathLike[str], *, formats: tuple[str, ...] | None = None,
                  precision: str | None = None) -> Path:
    """The file to open for a ``--model`` value: the packaged one for ``demo[:VARIANT]`` (see :func:`select`),
    else ``spec`` itself."""
    if is_packaged(spec):
        return select(str(spec), formats=formats, precision=precision).path
    return Path(spec)
