"""ONNX -> ``.rknn`` with rknn-toolkit2, then the same model on the validation photos in its x86 simulator.

Runs as a script inside the RKNN environment (``scripts/setup_rknn.sh``), never imported by edgegan:
rknn-toolkit2 pins numpy <= 1.26.4 and onnx <= 1.18, so it cannot live beside edgegan's own stack. It
needs only rknn-toolkit2 and numpy; :mod:`edgegan.export.rknn` writes the job as JSON and reads back the
model file and the simulator's outputs. The simulator runs only a model built in the same session (a
``.rknn`` loaded from disk needs the board), which is why conversion and its check are one script.

    python rknn_convert.py JOB.json
    JOB: {"onnx", "out", "platform", "int8", "algorithm", "dataset" (int8: a text file of image paths),
          "mean", "std" (per channel, applied on the NPU to the uint8 input), "photos" (.npy, N x H x W x 3
          uint8 RGB), "outputs" (.npy written here: the simulator's N x 3 x H x W float outputs),
          "versions" (.json written here: the toolkit's version)}

Exit code 0 on success; otherwise the last line of stderr says which step failed.
"""

from __future__ import annotations

import importlib.metadata
import json
import sys


def _step(what: str, call, *args, **kwargs) -> None:
    """One toolkit call: it returns non-zero on some failures and raises a ValueError holding a whole traceback
    on others; either way one line saying which step failed and why."""
    try:
        code = call(*args, **kwargs)
    except Exception as err:
        lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
        raise RuntimeError(f"{what} failed: {lines[-1] if lines else type(err).__name__}") from None
    if code != 0:
        raise RuntimeError(f"{what} failed (returned {code})")


def convert(job: dict) -> None:
    import numpy as np
    from rknn.api import RKNN

    rknn = RKNN(verbose=False)
    try:
        # The NPU takes the camera's uint8 RGB frame as it is: (x - mean) / std runs on it, not on the CPU.
        _step("config", rknn.config, mean_values=[job["mean"]], std_values=[job["std"]],
              target_platform=job["platform"], quantized_algorithm=job["algorithm"])
        _step("load_onnx", rknn.load_onnx, job["onnx"])
        _step("build", rknn.build, do_quantization=job["int8"], dataset=job.get("dataset"))
        _step("export_rknn", rknn.export_rknn, job["out"])
        _step("init_runtime (simulator)", rknn.init_runtime)
        photos = np.load(job["photos"])
        outputs = []
        for rgb in photos:
            y = rknn.inference(inputs=[rgb[None]], data_format="nhwc")
            if not y:
                raise RuntimeError("rknn-toolkit2 simulator returned no output")
            outputs.append(np.asarray(y[0], dtype=np.float32))
        np.save(job["outputs"], np.concatenate(outputs))
        with open(job["versions"], "w", encoding="utf-8") as f:
            json.dump({"rknn_toolkit2": importlib.metadata.version("rknn-toolkit2")}, f)
    finally:
        rknn.release()


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: python rknn_convert.py JOB.json", file=sys.stderr)
        return 2
    with open(sys.argv[1], encoding="utf-8") as f:
        job = json.load(f)
    try:
        convert(job)
    except Exception as err:  # the parent shows this line to the user: one line, no traceback
        print(f"\nedgegan-rknn-error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
