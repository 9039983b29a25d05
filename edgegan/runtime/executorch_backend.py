"""ExecuTorch (``.pte``): PyTorch's on-device runtime, here through its Python bindings (``executorch.runtime``).

Outside the torch-free guarantee: the ExecuTorch wheel's pybindings link libtorch and import torch first
(``executorch.extension.pybindings.portable_lib``), and their ``Method.execute`` takes and returns
``torch.Tensor``. On a phone the same ``.pte`` runs in the C++ runtime (or the Android/iOS bindings) without
torch; in Python, opening a ``.pte`` needs the ``executorch`` extra, which brings torch. This module imports
neither until a model is opened, so ``edgegan.runtime`` itself still imports without torch, and the metadata of
a ``.pte`` is read without either (``metadata_io.executorch_metadata``).

Threads: XNNPACK runs on ExecuTorch's one process-wide thread pool, and each loaded method keeps a pointer to it:
resizing the pool (``_unsafe_reset_threadpool``) while a method is loaded leaves that method on a destroyed pool (a
crash, seen here). So ``threads`` resizes the pool only while no other ExecuTorch model is open in the process;
otherwise a different size is refused with one line (the pool's size is what the models already open use).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgegan.errors import EdgeGANError
from edgegan.quiet import IMPORT_NOISE, quiet_logs
from edgegan.runtime.backends import Backend, check_input_shape
from edgegan.runtime.metadata import ModelInfo

# ExecuTorch's ScalarType codes (``TensorInfo.dtype()``, c10's numbering) of the input types an export can have
DTYPES = {6: np.float32, 5: np.float16}

_OPEN: list[weakref.ref] = []  # the backends holding a loaded method: the thread pool must not be resized under them


def _open_backends() -> list:
    alive = [b for b in (r() for r in _OPEN) if b is not None and b.method is not None]
    _OPEN[:] = [weakref.ref(b) for b in alive]
    return alive


def executorch_runtime():
    """(``executorch.runtime.Runtime``, ``portable_lib``): one line naming the extra when missing, or naming torch
    when only torch is (the pybindings cannot load without it)."""
    try:
        import torch  # noqa: F401  (imported by the pybindings anyway: say so before they fail obscurely)
    except ImportError as err:
        raise EdgeGANError("ExecuTorch's Python runtime needs torch (its pybindings link libtorch): "
                           "pip install 'edgegan[executorch]'; the torch-free runtime runs the .onnx/.tflite "
                           "exports of the same model") from err
    try:
        # the pybindings warn that their API is experimental, torchao (pulled in by executorch) that its CUDA kernels
        # are missing, and the C++ side prints its CPU probing to fd 2: noise on every CPU-only machine
        with quiet_logs(*IMPORT_NOISE, native_stderr=True):
            from executorch.extension.pybindings import portable_lib
            from executorch.runtime import Runtime

            runtime = Runtime.get()
            portable_lib._threadpool_get_thread_count()  # creates the pool: cpuinfo's probing lines go here
    except ImportError as err:
        raise EdgeGANError("ExecuTorch is not installed: pip install 'edgegan[executorch]'") from err
    return runtime, portable_lib


@dataclass
class ExecuTorchBackend(Backend):
    """A ``.pte`` program's ``forward`` method on ExecuTorch's CPU runtime (its XNNPACK partitions delegated)."""

    method: object = None
    lib: object = None
    threads: int | None = None
    input_dtype: type = np.float32
    to_tensor: object = None  # torch.from_numpy, looked up once at open, not per frame

    @classmethod
    def open(cls, path: Path, info: ModelInfo, *, threads: int | None) -> ExecuTorchBackend:
        runtime, lib = executorch_runtime()
        _set_pool(lib, threads)
        try:
            with quiet_logs(native_stderr=True):  # the XNNPACK delegate logs its set-up from C++
                program = runtime.load_program(path)
                method = program.load_method("forward")
        except (RuntimeError, ValueError) as err:
            raise EdgeGANError(f"{path}: ExecuTorch cannot load this program ({' '.join(str(err).split())[:300]})") \
                from err
        if method is None:
            raise EdgeGANError(f"{path}: ExecuTorch program without a forward method")
        meta = method.metadata
        if meta.num_inputs() != 1 or meta.num_outputs() != 1:
            raise EdgeGANError(f"{path}: {meta.num_inputs()} inputs and {meta.num_outputs()} outputs, expected 1 each")
        tensor = meta.input_tensor_meta(0)
        check_input_shape(path, info, [int(v) for v in tensor.sizes()])
        if int(tensor.dtype()) not in DTYPES:
            raise EdgeGANError(f"{path}: input of ScalarType {tensor.dtype()}, expected Float (6) or Half (5)")
        delegates = sorted(set(info.extra.get("delegation", {}).get("backends", ["XnnpackBackend"])))
        device = ", ".join(d.removesuffix("Backend") for d in delegates) + \
            f", {lib._threadpool_get_thread_count()} threads"
        import torch  # present: executorch_runtime() checked it

        backend = cls(name="executorch", path=path, info=info, device=device, method=method, lib=lib,
                      threads=threads, input_dtype=DTYPES[int(tensor.dtype())], to_tensor=torch.from_numpy)
        _OPEN.append(weakref.ref(backend))
        return backend

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=self.input_dtype)  # ExecuTorch ignores strides: a transposed view reads wrong
        (y,) = self.method.execute([self.to_tensor(x)])
        return y.numpy().astype(np.float32)  # a float32 copy (fp16 programs return half)

    def close(self) -> None:
        self.method = None


def _set_pool(lib, threads: int | None) -> None:
    """Size ExecuTorch's process-wide thread pool to ``threads`` (None: keep it), while no model holds it."""
    current = lib._threadpool_get_thread_count()
    if not threads or threads == current:
        return
    others = _open_backends()
    if others:
        raise EdgeGANError(f"--threads {threads}: ExecuTorch's thread pool is shared by the whole process and runs "
                           f"{current} threads for {others[0].path.name}, which is open; close it first, or open "
                           f"this model with threads={current}")
    with quiet_logs(warnings_off=False, native_stderr=True):  # "Resetting threadpool to N threads."
        lib._unsafe_reset_threadpool(threads)
