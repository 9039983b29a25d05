"""``edgegan profile``: parameters, MACs and CPU latency of a generator, torch eager next to ONNX Runtime.

MODEL is a registry name (``mobile-s``, ``ugatit-light``: the model's default widths) or a training
checkpoint (its A2B generator). BatchNorm is folded into the convs first (how a student ships);
the ONNX file is the one ``edgegan export`` writes, run by the runtime's loader; the two are timed
call by call, interleaved (``edgegan.runtime.timing``), so both see the same machine load, and the
median is reported.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn as nn

from edgegan.errors import EdgeGANError
from edgegan.runtime.timing import time_interleaved

WARMUP = 3


class ImageOnly(nn.Module):
    """A generator with only its image output (U-GAT-IT also returns CAM logits and a heatmap)."""

    def __init__(self, generator: nn.Module):
        super().__init__()
        self.generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.generator(x)
        return out[0] if isinstance(out, tuple) else out


def load_model(model: str, size: int | None = None) -> tuple[nn.Module, str, int]:
    """(eval-mode generator with BatchNorm folded and a single output, description, input size)."""
    from edgegan.models import create_model, list_models
    from edgegan.models.mobile import fold_batchnorm

    if Path(model).exists():
        from edgegan.train.checkpoint import load_generator

        net, ckpt = load_generator(model, "A2B")
        _, spec = ckpt.generator_spec("A2B")
        trained = ckpt.trained_size("A2B")
        size = size or trained
        what = f"{ckpt.path} ({spec['name']}, A2B, trained at {trained} px)"
    elif model in list_models():
        size = size or 256
        torch.manual_seed(0)
        net = create_model(model, img_size=size)
        what = f"{model} (registry defaults, untrained weights)"
    else:
        try:
            create_model(model)  # the registry's did-you-mean
        except EdgeGANError as err:
            raise EdgeGANError(f"MODEL {model!r}: not a file or folder, and {err}") from err
    if size < 4 or size % 4:
        raise EdgeGANError(f"--size: must be a positive multiple of 4, got {size}")
    has_bn = any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    net = fold_batchnorm(net) if has_bn else net.eval()
    if has_bn:
        what += ", BatchNorm folded"
    return ImageOnly(net).eval(), what, size


def params_and_gmacs(model: nn.Module, x: torch.Tensor) -> tuple[float, float]:
    """Parameters (millions) and multiply-accumulates (billions, ``torch.utils.flop_counter`` / 2)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return sum(p.numel() for p in model.parameters()) / 1e6, counter.get_total_flops() / 2e9


def onnx_available() -> str | None:
    """None if the ONNX export and ONNX Runtime can run here, else why not (one line)."""
    from edgegan.export import TARGETS, missing_packages

    missing = missing_packages(TARGETS["onnx"])
    return f"{', '.join(missing)} not installed (pip install 'edgegan[export]')" if missing else None


def onnx_file(net: nn.Module, size: int, path: Path, threads: int):
    """The fp32 ONNX file ``edgegan export`` writes for ``net``, opened by the runtime's loader on the CPU."""
    from edgegan import __version__
    from edgegan.export import Job
    from edgegan.export import onnx as onnx_export
    from edgegan.runtime.backends import load_backend
    from edgegan.runtime.metadata import ModelInfo

    info = ModelInfo(model="profiled", input_size=size, precision="fp32", edgegan_version=__version__)
    onnx_export.write(Job(net, None, "fp32", size, info, path), {})
    return load_backend(path, threads=threads, exact=True)


def profile_model(model: str, *, size: int | None = None, threads: int | None = None, runs: int = 20) -> dict:
    """Params, GMACs, torch eager and ORT fp32 latency (ms) of ``model`` at batch 1, ``size``x``size``."""
    if runs < 1:
        raise EdgeGANError(f"--runs: must be >= 1, got {runs}")
    if threads is not None:
        if threads < 1:
            raise EdgeGANError(f"--threads: must be >= 1, got {threads}")
        torch.set_num_threads(threads)
    threads = torch.get_num_threads()
    net, what, size = load_model(model, size)
    x = torch.rand(1, 3, size, size) * 2 - 1
    try:
        params, gmacs = params_and_gmacs(net, x)
    except (RuntimeError, ValueError) as err:
        raise EdgeGANError(f"--size {size}: the model does not run at this size ({str(err).splitlines()[0]})") from err
    report = {"model": what, "size": size, "threads": threads, "runs": runs, "params_m": params, "gmacs": gmacs,
              "latency_ms": {}, "notes": []}
    runners: dict[str, Callable[[], object]] = {"torch eager": lambda: net(x)}
    with tempfile.TemporaryDirectory() as tmp:
        missing = onnx_available()
        if missing:
            report["notes"].append(f"ORT fp32 skipped: {missing}")
        else:
            ort = onnx_file(net, size, Path(tmp) / "model.onnx", threads)
            x_np = x.numpy()
            runners["ORT fp32"] = lambda: ort(x_np)
        with torch.inference_mode():
            medians = time_interleaved(runners, runs, warmup=WARMUP)
        if not missing:
            ort.close()
    report["latency_ms"] = medians
    return report


def format_profile(report: dict) -> str:
    lat = report["latency_ms"]
    lines = [f"model:    {report['model']}",
             f"input:    1x3x{report['size']}x{report['size']}, {report['threads']} thread(s), "
             f"median of {report['runs']} interleaved runs",
             f"params:   {report['params_m']:.3f} M",
             f"GMACs:    {report['gmacs']:.3f}",
             "latency:  " + "   ".join(f"{k} {v:.2f} ms" for k, v in lat.items())]
    if "torch eager" in lat and "ORT fp32" in lat:
        lines.append(f"speed-up: ORT fp32 {lat['torch eager'] / lat['ORT fp32']:.2f}x over torch eager")
    lines += [f"note:     {n}" for n in report["notes"]]
    return "\n".join(lines)
