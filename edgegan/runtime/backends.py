"""Inference backends for exported models: ONNX Runtime, LiteRT (TFLite), CoreML, OpenVINO, ncnn, MNN and RKNN.

The model file's suffix picks the backend (``.onnx`` -> onnxruntime, ``.tflite`` -> litert,
``.mlpackage``/``.mlmodel`` -> coreml, ``.xml`` -> openvino, ``.param`` -> ncnn, ``.mnn`` -> mnn, ``.rknn`` ->
rknnlite, on a Rockchip board only);
``backend=`` overrides it where a second runtime can read the same format (OpenVINO runs ``.onnx`` files too);
the table is ``edgegan.runtime.formats``.
Every backend takes and returns float32 arrays in the model's layout (``ModelInfo``) and
converts to the file's own input type (fp16, quantized int8) itself, so callers never branch on the
format. Each runtime is imported inside the backend that needs it: an install carries only the
runtimes it uses. Nothing here imports torch. ExecuTorch (``.pte`` -> executorch, ``executorch_backend.py``) is
the exception: its Python bindings load torch, so opening a ``.pte`` needs it (importing this module does not).
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgegan.errors import EdgeGANError
from edgegan.quiet import quiet_logs
from edgegan.runtime.formats import BACKENDS, format_of, read_model_info
from edgegan.runtime.metadata import ModelInfo
from edgegan.runtime.packaged import resolve_model

log = logging.getLogger(__name__)

_ALIASES = {"ov": "openvino", "ort": "onnxruntime", "onnx": "onnxruntime", "tflite": "litert",
            "tflite_runtime": "litert",
            "ai_edge_litert": "litert", "coremltools": "coreml", "mlpackage": "coreml", "pnnx": "ncnn",
            "mnnconvert": "mnn", "pte": "executorch", "et": "executorch", "rknn": "rknnlite"}

# ONNX Runtime execution providers, most preferred first; "auto" uses every one this build has, in
# this order (ORT hands each node to the first provider that supports it, the CPU last).
ORT_PROVIDERS: dict[str, str] = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "qnn": "QNNExecutionProvider",
    "nnapi": "NnapiExecutionProvider",
    "xnnpack": "XnnpackExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
_PROVIDER_INSTALL = {
    "tensorrt": "pip install onnxruntime-gpu (with TensorRT libraries on the library path)",
    "cuda": "pip install onnxruntime-gpu (and a matching CUDA/cuDNN)",
    "coreml": "onnxruntime on macOS includes it",
    "qnn": "pip install onnxruntime-qnn (Windows/Linux on Snapdragon)",
    "nnapi": "an onnxruntime Android build includes it",
    "xnnpack": "onnxruntime mobile/Android builds include it",
    "cpu": "pip install onnxruntime",
}

# OpenVINO devices, most preferred first for "auto" (an NPU or iGPU frees the CPU for capture and detection)
OV_DEVICES = ("NPU", "GPU", "CPU")
OV_PRECISION_HINTS = ("f32", "bf16", "f16")
_OV_DEVICE_INSTALL = {
    "NPU": "an Intel Core Ultra NPU with its driver (intel-npu-driver)",
    "GPU": "an Intel GPU with its OpenCL/Level Zero runtime (intel-opencl-icd)",
    "CPU": "pip install openvino",
}

_NP_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}


def backend_for(path: str | os.PathLike[str]) -> str:
    """The backend that runs a model file by default, from its suffix."""
    return format_of(path).backends[0]


def resolve_backend(path: str | os.PathLike[str], backend: str | None) -> str:
    """``backend`` (or the one the suffix implies) checked against the file's format."""
    implied = backend_for(path)
    if backend in (None, "", "auto"):
        return implied
    name = _ALIASES.get(backend.lower(), backend.lower())
    if name not in BACKENDS:
        raise EdgeGANError(f"--backend {backend}: unknown backend (choose from auto, {', '.join(BACKENDS)})")
    if Path(path).suffix.lower() not in BACKENDS[name]:
        raise EdgeGANError(f"--backend {backend}: cannot run {Path(path).name} "
                           f"({name} runs {', '.join(BACKENDS[name])} files; this one runs on {implied})")
    return name


@dataclass
class Backend:
    """A loaded model. ``__call__`` maps the float32 input tensor (batch 1, ``info.layout``) to the output."""

    name: str  # "onnxruntime" | "litert" | "coreml"
    path: Path
    info: ModelInfo
    device: str  # what actually runs it, e.g. "CPUExecutionProvider" or "XNNPACK, 2 threads"

    def __call__(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def input_hw(self, height: int, width: int) -> tuple[int, int]:
        """The input side the model accepts for a (height, width) request: its fixed size unless dynamic."""
        if not self.info.dynamic_size:
            return self.info.input_size, self.info.input_size
        s = max(1, self.info.stride)
        return max(s, round(height / s) * s), max(s, round(width / s) * s)

    def translate(self, rgb: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB photos (at a size the model takes) -> its (N, H, W, 3) uint8 RGB outputs,
        one batch-1 call per photo (how every format runs)."""
        return np.concatenate([self.info.postprocess(self(self.info.preprocess(im))) for im in rgb])

    def close(self) -> None:
        """Release the runtime's memory (a no-op where the runtime frees it on garbage collection)."""

    @property
    def label(self) -> str:
        return f"{self.name} ({self.device}), {self.info.precision}"


def load_backend(path: str | os.PathLike[str], backend: str | None = None, *, threads: int | None = None,
                 provider: str | None = None, delegate: str | None = None,
                 compute_units: str = "ALL", device: str | None = None,
                 precision_hint: str | None = None, exact: bool = False) -> Backend:
    """Open an exported EdgeGAN model on the backend its suffix implies, or on ``backend``.

    Args:
        path: ``.onnx``, ``.tflite``, ``.mlpackage``, ``.mlmodel``, OpenVINO ``.xml``, ncnn ``.param`` or
            ``.mnn`` file written by ``edgegan export``, or ``demo[:VARIANT]``: the packaged demo model
            (``edgegan.runtime.packaged``).
        backend: "auto" (default), "onnxruntime", "litert", "coreml", "openvino", "ncnn", "mnn", "executorch"
            or "rknnlite".
        threads: CPU threads (default: the runtime's own choice; MNN: every core).
        provider: onnxruntime execution provider to force ("cuda", "tensorrt", "coreml", "qnn", "nnapi",
            "xnnpack", "cpu"); default: every available one in that priority order.
        delegate: LiteRT external delegate library (GPU/NPU), e.g. ``libtensorflowlite_gpu_delegate.so``.
        compute_units: CoreML compute units ("ALL", "CPU_ONLY", "CPU_AND_GPU", "CPU_AND_NE").
        device: OpenVINO device ("auto", "cpu", "gpu", "npu"); default "auto": the best one present.
            ncnn: "auto" (Vulkan where ncnn sees a GPU, else the CPU), "cpu" or "gpu".
        precision_hint: OpenVINO inference precision ("f32", "bf16", "f16"); default: the device's own
            choice (bf16 on CPUs with AMX, f16 on GPUs).
        exact: run the file's own numbers on the CPU (onnxruntime's CPU provider, OpenVINO's CPU at f32,
            LiteRT without a delegate, Core ML CPU only, ncnn without fp16/bf16 storage or arithmetic,
            MNN at high precision), whatever accelerator or lower-precision hint this
            machine offers: what export validation and quality scores measure.
    """
    path = resolve_model(path)
    name = resolve_backend(path, backend)
    if provider and name != "onnxruntime":
        raise EdgeGANError(f"--provider {provider}: execution providers are onnxruntime's; {path.name} runs on {name}")
    if delegate and name != "litert":
        raise EdgeGANError(f"--delegate {delegate}: delegates are LiteRT's; {path.name} runs on {name}")
    for flag, value, owners in (("--device", device, ("openvino", "ncnn")),
                                ("--precision-hint", precision_hint, ("openvino",))):
        if value and value != "auto" and name not in owners:
            raise EdgeGANError(f"{flag} {value}: an OpenVINO option{' (and ncnn)' if 'ncnn' in owners else ''}; "
                               f"{path.name} runs on {name} (add --backend openvino for a .onnx file)")
    if threads is not None and threads < 1:
        raise EdgeGANError(f"--threads {threads}: must be at least 1")
    why = cannot_run_here(path, name)  # before reading the file: the same answer for any .mlpackage off macOS
    if why:
        raise EdgeGANError(f"{path}: {why}; use the .onnx or .tflite export of the same model here")
    if exact:
        if delegate:
            raise EdgeGANError(f"--delegate {delegate}: an exact (CPU) run takes no delegate")
        provider, device, precision_hint, compute_units = "cpu", "cpu", "f32", "CPU_ONLY"
    info = read_model_info(path)
    if name == "onnxruntime":
        return OrtBackend.open(path, info, threads=threads, provider=provider)
    if name == "litert":
        return LiteRTBackend.open(path, info, threads=threads, delegate=delegate)
    if name == "openvino":
        return OpenVINOBackend.open(path, info, threads=threads, device=device, precision_hint=precision_hint)
    if name == "ncnn":
        return NcnnBackend.open(path, info, threads=threads, device=device, exact=exact)
    if name == "mnn":
        return MnnBackend.open(path, info, threads=threads, exact=exact)
    if name == "executorch":  # not torch-free: ExecuTorch's Python bindings need torch (executorch_backend.py)
        from edgegan.runtime.executorch_backend import ExecuTorchBackend

        return ExecuTorchBackend.open(path, info, threads=threads)
    if name == "rknnlite":
        return RknnBackend.open(path, info)
    return CoreMLBackend.open(path, info, compute_units=compute_units)


def cannot_run_here(path: str | os.PathLike[str], backend: str | None = None) -> str | None:
    """Why this machine cannot run ``path`` on ``backend`` (default: its format's) at all, or None: a format
    whose runtime exists only on another OS. A missing package is not such a reason (the loader names it)."""
    name = resolve_backend(path, backend)
    if name == "coreml":
        if sys.platform != "darwin":
            return f"CoreML models run only on macOS (this is {sys.platform})"
        try:
            from coremltools import libcoremlpython  # noqa: F401  (the native runtime, absent from some builds)
        except ImportError as err:
            return f"coremltools has no native Core ML runtime here ({err})"
    if name == "rknnlite" and (sys.platform != "linux" or platform.machine().lower() not in ("aarch64", "arm64")):
        return (f"RKNN models run on a Rockchip board's NPU (rknn-toolkit-lite2, aarch64 Linux; this is "
                f"{platform.machine()} {sys.platform})")
    return None


def check_input_shape(path: Path, info: ModelInfo, shape) -> None:
    """One clear error when the file's input shape contradicts its metadata (e.g. NHWC data for an NCHW
    file), instead of a runtime error on the first frame."""
    n = info.input_size
    want = (1, 3, n, n) if info.layout == "NCHW" else (1, n, n, 3)
    channel_axis = 1 if info.layout == "NCHW" else 3
    dims = list(shape)
    bad = len(dims) != 4
    for axis, (dim, expected) in enumerate(zip(dims, want)):
        if axis == 0 or not isinstance(dim, int) or dim <= 0:
            continue  # batch, or a symbolic/dynamic side
        if axis == channel_axis or not info.dynamic_size:
            bad = bad or dim != expected
    if bad:
        raise EdgeGANError(f"{path}: model input shape {tuple(dims)} does not match its metadata "
                           f"({info.layout}, {n} px)")


# --------------------------------------------------------------------------------- onnxruntime
def ort_providers(provider: str | None = None) -> list[str]:
    """Execution providers to ask for: ``provider`` (+ CPU for what it cannot run) or all available, by priority."""
    try:
        import onnxruntime as ort
    except ImportError as err:
        raise EdgeGANError("onnxruntime is not installed: pip install 'edgegan[runtime]'") from err
    available = set(ort.get_available_providers())
    if provider in (None, "", "auto"):
        return [p for p in ORT_PROVIDERS.values() if p in available]
    key = provider.lower().removesuffix("executionprovider")
    if key not in ORT_PROVIDERS:
        raise EdgeGANError(f"--provider {provider}: unknown execution provider (choose from auto, "
                           f"{', '.join(ORT_PROVIDERS)})")
    wanted = ORT_PROVIDERS[key]
    if wanted not in available:
        have = ", ".join(k for k, v in ORT_PROVIDERS.items() if v in available) or "none"
        raise EdgeGANError(f"--provider {provider}: {wanted} is not in this onnxruntime build "
                           f"(available: {have}); {_PROVIDER_INSTALL[key]}")
    return [wanted] if key == "cpu" else [wanted, ORT_PROVIDERS["cpu"]]


def _provider_options(name: str) -> dict:
    if name == "TensorrtExecutionProvider":
        # without an engine cache TensorRT rebuilds its engine (minutes) at every start
        cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "edgegan" / "tensorrt"
        return {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache)}
    if name == "QNNExecutionProvider":
        return {"backend_path": "QnnHtp.dll" if sys.platform == "win32" else "libQnnHtp.so"}
    return {}


def ort_session(path: str | os.PathLike[str], *, threads: int | None = None, providers: list[str] | None = None,
                optimized_path: str | os.PathLike[str] | None = None):
    """The one place an onnxruntime session is made: all graph optimisations, ``threads`` intra-op threads
    (one inter-op), ``providers`` (default: :func:`ort_providers`); ``optimized_path`` saves the graph
    onnxruntime actually runs (fused QLinear kernels, float islands) for inspection."""
    import onnxruntime as ort

    providers = providers or ort_providers()
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3  # warnings about unused initializers etc. are not the user's problem
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    if optimized_path is not None:
        opts.optimized_model_filepath = str(optimized_path)
    return ort.InferenceSession(str(path), sess_options=opts,
                                providers=[(p, _provider_options(p)) for p in providers])


@dataclass
class OrtBackend(Backend):
    session: object = None
    input_name: str = ""
    output_name: str = ""
    input_dtype: type = np.float32

    @classmethod
    def open(cls, path: Path, info: ModelInfo, *, threads: int | None, provider: str | None) -> OrtBackend:
        try:
            session = ort_session(path, threads=threads, providers=ort_providers(provider))
        except EdgeGANError:
            raise
        except Exception as err:  # onnxruntime raises its own pybind exception types for bad files
            first = " ".join(str(err).split())[:300]
            raise EdgeGANError(f"{path}: onnxruntime cannot load this model ({first})") from err
        inputs, outputs = session.get_inputs(), session.get_outputs()
        inp = next((i for i in inputs if i.name == info.input_name), inputs[0])
        out = next((o for o in outputs if o.name == info.output_name), outputs[0])
        check_input_shape(path, info, inp.shape)
        device = ", ".join(p.removesuffix("ExecutionProvider") for p in session.get_providers())
        device += f", {threads} threads" if threads else ""
        return cls(name="onnxruntime", path=path, info=info, device=device,
                   session=session, input_name=inp.name, output_name=out.name,
                   input_dtype=_NP_TYPES.get(inp.type, np.float32))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        (y,) = self.session.run([self.output_name], {self.input_name: x.astype(self.input_dtype, copy=False)})
        return y.astype(np.float32, copy=False)

    def close(self) -> None:
        self.session = None


# ------------------------------------------------------------------------------------- LiteRT
def litert_interpreter():
    """(Interpreter, load_delegate) from ai_edge_litert, else tflite_runtime; one-line error when neither is."""
    try:
        from ai_edge_litert.interpreter import Interpreter, load_delegate
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter, load_delegate
        except ImportError as err:
            raise EdgeGANError("LiteRT is not installed: pip install ai-edge-litert "
                               "(or tflite-runtime where no ai-edge-litert wheel exists)") from err
    return Interpreter, load_delegate


@dataclass
class LiteRTBackend(Backend):
    interpreter: object = None
    input_index: int = 0
    output_index: int = 0
    input_dtype: type = np.float32
    input_quant: tuple[float, int] = (0.0, 0)
    output_quant: tuple[float, int] = (0.0, 0)
    shape: tuple[int, ...] = ()

    @classmethod
    def open(cls, path: Path, info: ModelInfo, *, threads: int | None, delegate: str | None) -> LiteRTBackend:
        Interpreter, load_delegate = litert_interpreter()
        delegates = []
        if delegate:
            try:
                delegates.append(load_delegate(delegate))
            except (ValueError, OSError, RuntimeError) as err:
                raise EdgeGANError(f"--delegate {delegate}: cannot load this delegate library "
                                   f"({' '.join(str(err).split())[:200]})") from err
        try:
            # LiteRT prints an INFO line per interpreter from C++, which would precede every one-line CLI message
            with quiet_logs(warnings_off=False, native_stderr=True):
                interp = Interpreter(model_path=str(path), num_threads=threads,
                                     experimental_delegates=delegates or None)
                interp.allocate_tensors()
        except (ValueError, RuntimeError) as err:
            raise EdgeGANError(f"{path}: LiteRT cannot load this model ({' '.join(str(err).split())[:300]})") from err
        inputs, outputs = interp.get_input_details(), interp.get_output_details()
        inp = next((d for d in inputs if info.input_name in d["name"]), inputs[0])
        out = next((d for d in outputs if info.output_name in d["name"]), outputs[0])
        check_input_shape(path, info, [int(v) for v in inp["shape"]])
        device = f"delegate {Path(delegate).name}" if delegate else "CPU"
        device += f", {threads} threads" if threads else ""
        return cls(name="litert", path=path, info=info, device=device, interpreter=interp,
                   input_index=inp["index"], output_index=out["index"], input_dtype=inp["dtype"],
                   input_quant=tuple(inp["quantization"]), output_quant=tuple(out["quantization"]),
                   shape=tuple(int(v) for v in inp["shape"]))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if tuple(x.shape) != self.shape:
            # dynamic-size models: re-plan memory only when the frame size changes
            self.interpreter.resize_tensor_input(self.input_index, list(x.shape))
            self.interpreter.allocate_tensors()
            self.shape = tuple(x.shape)
        self.interpreter.set_tensor(self.input_index, _quantize(x, self.input_dtype, self.input_quant))
        self.interpreter.invoke()
        y = self.interpreter.get_tensor(self.output_index)  # a copy: the buffer is reused by the next invoke
        return _dequantize(y, self.output_quant)

    def close(self) -> None:
        self.interpreter = None


def _quantize(x: np.ndarray, dtype, quant: tuple[float, int]) -> np.ndarray:
    if np.issubdtype(dtype, np.integer):
        scale, zero = quant
        info = np.iinfo(dtype)
        return np.clip(np.rint(x / scale + zero), info.min, info.max).astype(dtype)
    return x.astype(dtype, copy=False)


def _dequantize(y: np.ndarray, quant: tuple[float, int]) -> np.ndarray:
    if np.issubdtype(y.dtype, np.integer):
        scale, zero = quant
        return (y.astype(np.float32) - zero) * np.float32(scale)
    return y.astype(np.float32, copy=False)


# ------------------------------------------------------------------------------------- CoreML
@dataclass
class CoreMLBackend(Backend):
    model: object = None
    input_name: str = ""
    output_name: str = ""

    @classmethod
    def open(cls, path: Path, info: ModelInfo, *, compute_units: str) -> CoreMLBackend:
        try:
            import coremltools as ct
        except ImportError as err:
            raise EdgeGANError("CoreML models need coremltools: pip install coremltools") from err
        try:
            units = ct.ComputeUnit[compute_units.upper()]
        except KeyError as err:
            raise EdgeGANError(f"--compute-units {compute_units}: choose from "
                               f"{', '.join(u.name for u in ct.ComputeUnit)}") from err
        try:
            model = ct.models.MLModel(str(path), compute_units=units)
        except Exception as err:  # coremltools raises plain Exceptions for unreadable packages
            raise EdgeGANError(f"{path}: CoreML cannot load this model ({' '.join(str(err).split())[:300]})") from err
        spec = model.get_spec().description
        in_names = [i.name for i in spec.input]
        out_names = [o.name for o in spec.output]
        return cls(name="coreml", path=path, info=info, device=f"compute units {units.name}", model=model,
                   input_name=info.input_name if info.input_name in in_names else in_names[0],
                   output_name=info.output_name if info.output_name in out_names else out_names[0])

    def __call__(self, x: np.ndarray) -> np.ndarray:
        y = self.model.predict({self.input_name: x})[self.output_name]
        return np.asarray(y, dtype=np.float32)

    def close(self) -> None:
        self.model = None


# ----------------------------------------------------------------------------------- OpenVINO
def openvino_core():
    try:
        import openvino as ov
    except ImportError as err:
        raise EdgeGANError("OpenVINO is not installed: pip install 'edgegan[openvino]'") from err
    return ov.Core()


def ov_device(core, device: str | None) -> str:
    """The OpenVINO device to compile for: ``device`` if this machine has it, else one clear error;
    "auto" is OpenVINO's AUTO plugin when an accelerator is present (it starts on the CPU while the
    accelerator compiles), else the CPU."""
    available = list(core.available_devices)  # e.g. ["CPU", "GPU.0", "GPU.1", "NPU"]
    kinds = {d.split(".")[0] for d in available}
    if device in (None, "", "auto"):
        return "AUTO" if len(kinds & set(OV_DEVICES)) > 1 else "CPU"
    wanted = device.upper()
    kind = wanted.split(".")[0]
    if kind not in OV_DEVICES and kind != "AUTO":
        raise EdgeGANError(f"--device {device}: unknown OpenVINO device (choose from auto, "
                           f"{', '.join(d.lower() for d in OV_DEVICES)})")
    if kind != "AUTO" and (wanted if "." in wanted else kind) not in (available if "." in wanted else kinds):
        raise EdgeGANError(f"--device {device}: not on this machine (OpenVINO sees: {', '.join(available) or 'none'}); "
                           f"needs {_OV_DEVICE_INSTALL[kind]}")
    return wanted


@dataclass
class OpenVINOBackend(Backend):
    request: object = None
    input_dtype: type = np.float32

    @classmethod
    def open(cls, path: Path, info: ModelInfo, *, threads: int | None, device: str | None,
             precision_hint: str | None) -> OpenVINOBackend:
        core = openvino_core()
        target = ov_device(core, device)
        config: dict = {"PERFORMANCE_HINT": "LATENCY"}  # batch-1 frames: one stream, all threads on it
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        if precision_hint not in (None, "", "auto"):
            if precision_hint.lower() not in OV_PRECISION_HINTS:
                raise EdgeGANError(f"--precision-hint {precision_hint}: choose from auto, "
                                   f"{', '.join(OV_PRECISION_HINTS)}")
            config["INFERENCE_PRECISION_HINT"] = precision_hint.lower()
        if path.suffix.lower() == ".xml" and not path.with_suffix(".bin").is_file():
            raise EdgeGANError(f"{path}: its weights {path.with_suffix('.bin').name} are missing next to it")
        try:
            compiled = core.compile_model(str(path), target, config)
        except RuntimeError as err:
            raise EdgeGANError(f"{path}: OpenVINO cannot run this model on {target} "
                               f"({' '.join(str(err).split())[:300]})") from err
        inp = compiled.input(0)
        check_input_shape(path, info, [d.get_length() if d.is_static else -1 for d in inp.get_partial_shape()])
        label = target
        with contextlib.suppress(RuntimeError):  # AUTO reports its choice only once a device is running
            hint = compiled.get_property("INFERENCE_PRECISION_HINT")
            label += f", {hint.get_type_name() if hasattr(hint, 'get_type_name') else hint}"
        label += f", {threads} threads" if threads else ""
        dtype = {"f16": np.float16, "f32": np.float32}.get(inp.get_element_type().get_type_name(), np.float32)
        return cls(name="openvino", path=path, info=info, device=label, request=compiled.create_infer_request(),
                   input_dtype=dtype)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        result = self.request.infer({0: x.astype(self.input_dtype, copy=False)})
        return np.asarray(result[0], dtype=np.float32).copy()  # the request reuses its output buffer

    def close(self) -> None:
        self.request = None


# --------------------------------------------------------------------------------------- ncnn
def ncnn_module():
    try:
        import ncnn
    except ImportError as err:
        raise EdgeGANError("ncnn is not installed: pip install 'edgegan[ncnn]' (the runtime alone: pip install ncnn)") \
            from err
    return ncnn


def ncnn_gpu_count(ncnn) -> int:
    """GPUs ncnn can run Vulkan on (0 without a Vulkan driver; its loader's complaints are not shown)."""
    with quiet_logs(warnings_off=False, native_stderr=True, native_stdout=True):
        try:
            return int(ncnn.get_gpu_count())
        except (AttributeError, RuntimeError):  # a wheel built without Vulkan
            return 0


@dataclass
class NcnnBackend(Backend):
    """ncnn (Tencent's mobile runtime): the ``.param`` graph and its ``.bin`` weights, batch 1, CHW."""

    net: object = None
    mat: type = None
    input_name: str = ""
    output_name: str = ""

    @classmethod
    def open(cls, path: Path, info: ModelInfo, *, threads: int | None, device: str | None,
             exact: bool) -> NcnnBackend:
        ncnn = ncnn_module()
        weights = path.with_suffix(".bin")
        if not weights.is_file():
            raise EdgeGANError(f"{path}: its weights {weights.name} are missing next to it")
        wanted = (device or "auto").lower()
        if wanted not in ("auto", "cpu", "gpu"):
            raise EdgeGANError(f"--device {device}: an ncnn model runs on auto, cpu or gpu (Vulkan)")
        gpus = 0 if wanted == "cpu" else ncnn_gpu_count(ncnn)
        if wanted == "gpu" and not gpus:
            raise EdgeGANError("--device gpu: ncnn sees no Vulkan GPU on this machine (needs a GPU with its Vulkan "
                               "driver); use --device cpu")
        net = ncnn.Net()
        opt = net.opt
        if threads:
            opt.num_threads = threads
        if exact:
            # the file's own numbers: ncnn otherwise stores activations in fp16/bf16 where the CPU has the instructions
            opt.use_fp16_storage = opt.use_fp16_packed = opt.use_fp16_arithmetic = False
            opt.use_bf16_storage = False
        opt.use_vulkan_compute = bool(gpus)
        with quiet_logs(warnings_off=False, native_stderr=True):
            failed = net.load_param(str(path)) or net.load_model(str(weights))
        if failed:
            raise EdgeGANError(f"{path}: ncnn cannot load this model (load_param/load_model returned {failed}; "
                               "a layer this ncnn build does not know, or .param and .bin from different exports)")
        inputs, outputs = list(net.input_names()), list(net.output_names())
        if not inputs or not outputs:
            raise EdgeGANError(f"{path}: ncnn model without input or output blobs")
        device_label = "Vulkan GPU" if gpus else "CPU"
        device_label += f", {threads} threads" if threads else ""
        return cls(name="ncnn", path=path, info=info, device=device_label, net=net, mat=ncnn.Mat,
                   input_name=info.input_name if info.input_name in inputs else inputs[0],
                   output_name=info.output_name if info.output_name in outputs else outputs[0])

    def __call__(self, x: np.ndarray) -> np.ndarray:
        chw = np.ascontiguousarray(x[0], dtype=np.float32)  # (3, H, W): ncnn blobs carry no batch axis
        with self.net.create_extractor() as ex:
            ex.input(self.input_name, self.mat(chw).clone())  # clone: the Mat would otherwise borrow chw's memory
            ret, y = ex.extract(self.output_name)
        if ret != 0:
            raise EdgeGANError(f"{self.path}: ncnn failed on a {chw.shape[2]}x{chw.shape[1]} input (error {ret})")
        return np.array(y, dtype=np.float32, copy=True)[None]

    def close(self) -> None:
        if self.net is not None:
            self.net.clear()
        self.net = None


# ---------------------------------------------------------------------------------------- MNN
def mnn_modules():
    """(MNN.nn, MNN.expr); MNN prints the CPU's features to stdout when first imported."""
    try:
        with quiet_logs(warnings_off=False, native_stdout=True):
            import MNN.expr as mnn_expr
            import MNN.nn as mnn_nn
    except ImportError as err:
        raise EdgeGANError("MNN is not installed: pip install 'edgegan[mnn]' (the runtime alone: pip install MNN)") \
            from err
    return mnn_nn, mnn_expr


@dataclass
class MnnBackend(Backend):
    """MNN (Alibaba's mobile runtime) through its Module API, on the CPU."""

    module: object = None
    expr: object = None

    @classmethod
    def open(cls, path: Path, info: ModelInfo, *, threads: int | None, exact: bool) -> MnnBackend:
        mnn_nn, mnn_expr = mnn_modules()
        # High: fp32 arithmetic everywhere; Normal lets MNN pick fp16 where the CPU has it (ARMv8.2 phones)
        precision = mnn_expr.PrecisionMode.High if exact else mnn_expr.PrecisionMode.Normal
        n = threads or os.cpu_count() or 1
        try:
            with quiet_logs(warnings_off=False, native_stdout=True, native_stderr=True):
                module = mnn_nn.load_module_from_file(str(path), [info.input_name], [info.output_name],
                                                      thread_num=n, precision_mode=precision)
        except Exception as err:  # MNN raises a bare Exception (and SystemError) for unreadable files
            raise EdgeGANError(f"{path}: MNN cannot load this model ({' '.join(str(err).split())[:200]})") from err
        names = module.get_info()
        if info.input_name not in names.get("inputNames", []) or info.output_name not in names.get("outputNames", []):
            raise EdgeGANError(f"{path}: MNN model I/O {names.get('inputNames')} -> {names.get('outputNames')} "
                               f"does not match its metadata ({info.input_name} -> {info.output_name})")
        label = "CPU" + (", fp32" if exact else "") + (f", {threads} threads" if threads else "")
        return cls(name="mnn", path=path, info=info, device=label, module=module, expr=mnn_expr)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        F = self.expr
        x = np.ascontiguousarray(x, dtype=np.float32)
        (y,) = self.module.forward([F.const(x, list(x.shape), F.NCHW)])
        return np.array(F.convert(y, F.NCHW).read(), dtype=np.float32, copy=True)

    def close(self) -> None:
        self.module = None


@dataclass
class RknnBackend(Backend):
    """A Rockchip NPU through rknn-toolkit-lite2, on the board (aarch64 Linux). The export folded the input
    normalisation into the NPU, so each call hands it the uint8 NHWC frame the float tensor came from."""

    runner: object = None

    @classmethod
    def open(cls, path: Path, info: ModelInfo) -> RknnBackend:
        try:
            from rknnlite.api import RKNNLite
        except ImportError as err:
            raise EdgeGANError("RKNN models run through rknn-toolkit-lite2: pip install rknn-toolkit-lite2 "
                               "(Rockchip's wheel for the board)") from err
        runner = RKNNLite(verbose=False)
        if runner.load_rknn(str(path)) != 0:
            raise EdgeGANError(f"{path}: rknn-toolkit-lite2 cannot load this model")
        # the driver picks a free NPU core per model (RK3588 has three: a second model or demo runs on another)
        if runner.init_runtime(core_mask=RKNNLite.NPU_CORE_AUTO) != 0:
            runner.release()
            raise EdgeGANError(f"{path}: the RKNN runtime did not start (is the NPU driver, rknpu2, installed?)")
        return cls(name="rknnlite", path=path, info=info, device=f"NPU ({info.extra.get('platform', 'Rockchip')})",
                   runner=runner)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        frame = np.asarray(x, dtype=np.float32)
        if self.info.layout == "NCHW":
            frame = frame.transpose(0, 2, 3, 1)
        u8 = np.clip(np.rint((frame - np.float32(self.info.offset)) / np.float32(self.info.scale)), 0, 255)
        outputs = self.runner.inference(inputs=[np.ascontiguousarray(u8, dtype=np.uint8)], data_format="nhwc")
        if not outputs:
            raise EdgeGANError(f"{self.path}: the RKNN runtime returned no output")
        return np.asarray(outputs[0], dtype=np.float32)

    def close(self) -> None:
        if self.runner is not None:
            self.runner.release()
            self.runner = None
