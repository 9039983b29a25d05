"""What every exported EdgeGAN model says about itself: the contract between export and runtime.

Export writes one JSON object (``ModelInfo.to_json``) into the model file under the key
``METADATA_KEY``: ONNX ``metadata_props``, TFLite metadata buffer / associated file, CoreML
``user_defined_metadata``. The runtime reads it back and needs nothing else to pre- and
post-process: no torch, no checkpoint, no guessing.

Pure Python + numpy: this module is imported on edge devices without torch.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from edgegan.errors import EdgeGANError

METADATA_KEY = "edgegan"
FORMAT = "edgegan-model-v1"
LAYOUTS = ("NCHW", "NHWC")
PRECISIONS = ("fp32", "fp16", "int8")


@dataclass
class ModelInfo:
    """Pre/post-processing and provenance of one exported generator (photo -> cartoon).

    Input: ``layout`` batch of RGB (``color``) images of ``input_size`` x ``input_size``, float,
    ``pixel = u8 * scale + offset`` (the default maps [0, 255] to [-1, 1]). Output: same layout
    and colour order, ``u8 = (y - offset) / scale`` clipped to [0, 255].
    """

    model: str  # registry name, e.g. "mobile-s" or "ugatit-light"
    input_size: int  # square side in pixels the model was exported (and validated) at
    precision: str  # "fp32" | "fp16" | "int8"
    layout: str = "NCHW"
    color: str = "RGB"
    scale: float = 1 / 127.5
    offset: float = -1.0
    input_name: str = "image"
    output_name: str = "cartoon"
    stride: int = 4  # input sides must be a multiple of this when a format allows other sizes
    dynamic_size: bool = False  # whether sides other than input_size are accepted
    edgegan_version: str = ""
    source: str = ""  # checkpoint path it was exported from (informational)
    source_sha256: str = ""  # hash of the source weights file: which training run made this
    extra: dict = field(default_factory=dict)  # format-specific facts (opset, deployment target, ...)
    format: str = FORMAT

    def __post_init__(self):
        if self.layout not in LAYOUTS:
            raise EdgeGANError(f"model metadata: layout must be one of {LAYOUTS}, got {self.layout!r}")
        if self.precision not in PRECISIONS:
            raise EdgeGANError(f"model metadata: precision must be one of {PRECISIONS}, got {self.precision!r}")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str, *, where: str = "model") -> ModelInfo:
        try:
            d = json.loads(text)
        except (json.JSONDecodeError, TypeError) as err:
            raise EdgeGANError(f"{where}: unreadable EdgeGAN metadata ({err})") from err
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            found = d.get("format") if isinstance(d, dict) else d
            raise EdgeGANError(f"{where}: not EdgeGAN metadata (format {found!r})")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    # ------------------------------------------------------------ pre/post-processing (numpy only)
    def preprocess(self, rgb_u8: np.ndarray, dtype=np.float32) -> np.ndarray:
        """(H, W, 3) or (N, H, W, 3) uint8 RGB -> the model's input tensor (batch, layout, range)."""
        x = np.asarray(rgb_u8)
        if x.ndim == 3:
            x = x[None]
        if self.color == "BGR":
            x = x[..., ::-1]
        x = x.astype(np.float32) * np.float32(self.scale) + np.float32(self.offset)
        if self.layout == "NCHW":
            x = x.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(x, dtype=dtype)

    def postprocess(self, y: np.ndarray) -> np.ndarray:
        """The model's output tensor -> (N, H, W, 3) uint8 RGB."""
        y = np.asarray(y, dtype=np.float32)
        if self.layout == "NCHW":
            y = y.transpose(0, 2, 3, 1)
        if self.color == "BGR":
            y = y[..., ::-1]
        u8 = np.clip(np.rint((y - np.float32(self.offset)) / np.float32(self.scale)), 0, 255)
        return np.ascontiguousarray(u8.astype(np.uint8))
