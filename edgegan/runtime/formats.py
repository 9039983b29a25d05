"""The model formats EdgeGAN writes and runs, as one table: every caller dispatches from it.

A row names the format (also ``edgegan export --target``'s name), the file suffixes it is saved under
(the first is what export writes), the runtimes that run it (the default first; ``load_backend(...,
backend=)`` picks another), the reader of the metadata EdgeGAN embeds in it, the pip extra that brings
its default runtime, and the files that travel with it under the same stem. Torch-free.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

from edgegan.errors import EdgeGANError
from edgegan.runtime.metadata import ModelInfo
from edgegan.runtime.metadata_io import (
    coreml_metadata,
    executorch_metadata,
    mnn_metadata,
    ncnn_metadata,
    onnx_metadata,
    openvino_metadata,
    rknn_metadata,
    tflite_metadata,
)


@dataclass(frozen=True)
class Format:
    name: str
    suffixes: tuple[str, ...]
    backends: tuple[str, ...]
    read_metadata: Callable[[Path], str | None]
    extra: str
    companions: tuple[str, ...] = ()

    @property
    def suffix(self) -> str:
        """The suffix export writes."""
        return self.suffixes[0]


FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("onnx", (".onnx",), ("onnxruntime", "openvino"), onnx_metadata, "runtime"),
    Format("tflite", (".tflite",), ("litert",), tflite_metadata, "runtime"),
    Format("coreml", (".mlpackage", ".mlmodel"), ("coreml",), coreml_metadata, "coreml"),
    Format("openvino", (".xml",), ("openvino",), openvino_metadata, "openvino", companions=(".bin",)),
    # ncnn: pnnx's naming (x.ncnn.param + x.ncnn.bin), so its weights never meet an OpenVINO x.bin; neither file
    # has a metadata slot, so ModelInfo is the sidecar x.ncnn.json. MNN keeps it in the file (Net.bizCode).
    Format("ncnn", (".ncnn.param", ".param"), ("ncnn",), ncnn_metadata, "ncnn", companions=(".bin", ".json")),
    Format("mnn", (".mnn",), ("mnn",), mnn_metadata, "mnn"),
    # ExecuTorch: ModelInfo is a constant method of the program; its Python runtime needs torch (pybindings).
    Format("executorch", (".pte",), ("executorch",), executorch_metadata, "executorch"),
    # RKNN: Rockchip NPUs, through rknn-toolkit-lite2 on the board; no metadata slot that fits, so the sidecar x.json
    Format("rknn", (".rknn",), ("rknnlite",), rknn_metadata, "rknn", companions=(".json",)),
)}

MODEL_SUFFIXES: tuple[str, ...] = tuple(s for f in FORMATS.values() for s in f.suffixes)

# backend -> the suffixes it runs, in the table's order (onnxruntime before openvino for .onnx)
BACKENDS: dict[str, tuple[str, ...]] = {}
for _f in FORMATS.values():
    for _b in _f.backends:
        BACKENDS[_b] = BACKENDS.get(_b, ()) + _f.suffixes
del _f, _b


def format_of(path: str | os.PathLike[str]) -> Format:
    """The format of a model file, from its suffix; one line naming the file when it is none of them."""
    suffix = Path(path).suffix.lower()
    for fmt in FORMATS.values():
        if suffix in fmt.suffixes:
            return fmt
    raise EdgeGANError(f"{path}: unknown model type {suffix or '(no suffix)'!r} (expected {', '.join(MODEL_SUFFIXES)})")


def read_model_info(path: str | os.PathLike[str]) -> ModelInfo:
    """The :class:`ModelInfo` embedded in an exported model file (any format of :data:`FORMATS`).

    Raises:
        EdgeGANError: one line naming the file when it is missing, of an unknown kind, corrupt, or
            holds no EdgeGAN metadata.
    """
    path = Path(path)
    fmt = format_of(path)
    if not path.exists():
        raise EdgeGANError(f"{path}: no such model file")
    try:
        text = fmt.read_metadata(path)
    except EdgeGANError:
        raise
    except (OSError, ValueError, IndexError, struct.error, UnicodeDecodeError, KeyError, TypeError,
            ElementTree.ParseError) as err:
        raise EdgeGANError(f"{path}: corrupt or unreadable {path.suffix.lower()[1:]} model "
                           f"({type(err).__name__}: {err})") from err
    if text is None:
        raise EdgeGANError(f"{path}: has no EdgeGAN metadata (not written by `edgegan export`?)")
    return ModelInfo.from_json(text, where=str(path))
