"""Torch-free runtime: run exported EdgeGAN models (ONNX, TFLite, CoreML) with face detection and paste-back.

    from edgegan.runtime import load
    cartoonizer = load("demo")                         # the packaged demo model, fastest file this machine runs
    cartoonizer = load("student.onnx")                 # your export: backend from the suffix, metadata from the file
    cartoon = cartoonizer.cartoonize("selfie.jpg")     # (H, W, 3) uint8 RGB, faces restyled in place

Video: ``cartoonizer.process_frame(frame_bgr)`` tracks faces between calls and returns a
:class:`FrameResult` with per-stage timings. Needs numpy, OpenCV and one runtime (onnxruntime,
ai-edge-litert or coremltools); never torch.
"""

from __future__ import annotations

import os

from edgegan.runtime.backends import Backend, load_backend
from edgegan.runtime.faces import DETECTORS, Face, create_detector
from edgegan.runtime.formats import BACKENDS, FORMATS
from edgegan.runtime.metadata import ModelInfo
from edgegan.runtime.pipeline import MODES, Cartoonizer, FrameResult, StageTimes

__all__ = ["BACKENDS", "DETECTORS", "FORMATS", "MODES", "Backend", "Cartoonizer", "Face", "FrameResult", "ModelInfo",
           "StageTimes", "load", "load_backend"]


def load(path: str | os.PathLike[str], backend: str | None = None, *, mode: str = "face",
         detector: str = "auto", threads: int | None = None, provider: str | None = None,
         delegate: str | None = None, detect_every: int = 3, crop_scale: float = 1.8, max_faces: int | None = None,
         min_face: int = 24, device: str | None = None, precision_hint: str | None = None) -> Cartoonizer:
    """Load an exported model and the face pipeline around it.

    Args:
        path: ``.onnx``, ``.tflite``, ``.mlpackage`` or OpenVINO ``.xml`` written by ``edgegan export`` (it carries
            its own
            pre/post-processing metadata), or ``"demo"`` / ``"demo:int8"`` / ``"demo:fp32"`` / ``"demo:tflite"`` ...:
            the demo model shipped in the package (``edgegan.runtime.packaged``).
        backend: "auto" (from the suffix), "onnxruntime", "litert", "coreml" or "openvino".
        mode: "face" (paste cartoon faces back), "side" (input | result) or "full" (whole frame, no detection).
        detector: face detector (``edgegan.runtime.DETECTORS``); "none" allows only mode "full".
        threads: CPU threads for the model's runtime (default: the runtime's choice).
        provider: onnxruntime execution provider to force (default: the best available).
        delegate: LiteRT external delegate library path (GPU/NPU).
        detect_every: run the detector every N video frames and track in between.
        crop_scale: face crop side / detected face box side.
        max_faces: faces cartoonized per frame, largest first (default: every face in a still image, 4 per video
            frame).
        min_face: faces smaller than this many pixels are left unchanged.
        device, precision_hint: OpenVINO's device ("auto", "cpu", "gpu", "npu") and inference precision.
    """
    model = load_backend(path, backend, threads=threads, provider=provider, delegate=delegate, device=device,
                         precision_hint=precision_hint)
    try:
        return Cartoonizer(model, create_detector(detector), mode=mode, crop_scale=crop_scale, max_faces=max_faces,
                           min_face=min_face,
                           detect_every=detect_every)
    except BaseException:
        model.close()
        raise
