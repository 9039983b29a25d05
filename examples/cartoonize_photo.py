"""Cartoonize a photo with an exported model, torch-free (the runtime's three-line API).

    python examples/cartoonize_photo.py runs/quickstart/export/mobile-s_64px_int8.xml photo.jpg out.png
    python examples/cartoonize_photo.py MODEL          # the built-in test photo (scikit-image's astronaut)

Works with any file `edgegan export` writes (.onnx, .tflite, OpenVINO .xml; .mlpackage on macOS).
Faces are found, cartoonized and pasted back; the rest of the photo is unchanged.
"""

import sys

import cv2

from edgegan.runtime import load
from edgegan.runtime.clip import face_photo

model = sys.argv[1] if len(sys.argv) > 1 else "runs/quickstart/export/mobile-s_64px_fp32.onnx"
photo = sys.argv[2] if len(sys.argv) > 2 else None
out = sys.argv[3] if len(sys.argv) > 3 else "cartoon.png"

cartoonizer = load(model)                                          # backend and pre/post-processing from the file
result = cartoonizer.cartoonize(photo if photo else face_photo()[..., ::-1].copy())  # RGB in, RGB out
cv2.imwrite(out, result[..., ::-1])                                # OpenCV writes BGR
print(f"{out}: {result.shape[1]}x{result.shape[0]}, model {cartoonizer.backend.label}")
