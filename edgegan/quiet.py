"""The one way EdgeGAN quiets third-party output it knows to be noise. Torch-free.

Converters and runtimes log every pass at INFO, draw their own progress bars, warn about versions
they were not tested with, or print from C++ straight to file descriptor 2: around an EdgeGAN table or
one-line error that is noise. Each call site names exactly what it silences, for as long as the call
lasts; real errors still raise.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import warnings
from collections.abc import Iterator

# Loggers that warn at import on every CPU-only machine: torchao (pulled in by litert-torch and coremltools)
# about CUDA kernels and triton it cannot load, torch about an Enum torchao registers.
IMPORT_NOISE = ("torchao", "torch.utils._pytree")


@contextlib.contextmanager
def quiet_logs(*loggers: str, level: int = logging.ERROR, warnings_off: bool = True, stdout: bool = False,
               stderr: bool = False, native_stderr: bool = False, native_stdout: bool = False,
               env: dict[str, str] | None = None) -> Iterator[None]:
    """Silence third-party output for the duration of the block.

    Args:
        loggers: logger names to raise to at least ``level`` ("" is the root logger).
        warnings_off: ignore Python warnings inside the block.
        stdout, stderr: swallow Python-level writes (progress bars drawn by the library).
        native_stderr: also point file descriptor 2 at /dev/null (C++ runtimes print there directly).
        native_stdout: the same for file descriptor 1 (MNN prints its CPU features there at import).
        env: environment variables set inside the block (libraries that read their log level from it).
    """
    with contextlib.ExitStack() as stack:
        for name in loggers:
            logger = logging.getLogger(name)
            before = logger.level
            logger.setLevel(max(before, level))
            stack.callback(logger.setLevel, before)
        if env:
            stack.enter_context(_environment(env))
        if warnings_off:
            stack.enter_context(warnings.catch_warnings())
            warnings.simplefilter("ignore")
        if stdout:
            stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
        if stderr:
            stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
        if native_stderr:
            stack.enter_context(_native_to_null(sys.stderr))
        if native_stdout:
            stack.enter_context(_native_to_null(sys.stdout))
        yield


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def _native_to_null(stream) -> Iterator[None]:
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):  # stream replaced by an object without a descriptor
        yield
        return
    stream.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), fd)
        yield
    finally:
        _flush_c_stdio()  # a pipe's stdout is block-buffered in C: flush it while it still points at null
        os.dup2(saved, fd)
        os.close(saved)


def _flush_c_stdio() -> None:
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):  # no C library to ask (e.g. some Windows builds)
        pass
