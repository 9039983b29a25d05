"""INT8 for the mobile students with NNCF: post-training (PTQ) and quantization-aware (QAT).

``quantize_student`` is the stage API (``edgegan quantize`` and the quickstart call it);
``load_quantized`` rebuilds the quantized torch model that the per-target exports start from.
NNCF, onnx and onnxruntime are imported lazily: ``pip install 'edgegan[quantize]'``.
"""

from edgegan.quantize.calibration import MIN_IMAGES, load_photos
from edgegan.quantize.nncf_int8 import Recipe, load_quantized
from edgegan.quantize.pipeline import format_report, quantize_student
from edgegan.quantize.qat import QATConfig

__all__ = ["MIN_IMAGES", "QATConfig", "Recipe", "format_report", "load_photos", "load_quantized",
           "quantize_student"]
