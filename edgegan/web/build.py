"""Write and serve the static in-browser demo: camera -> exported ONNX student -> cartoon, nothing uploaded.

The site is plain files (no bundler, no CDN): ``index.html``, ``app.js``, ``style.css``, the model, the
onnxruntime-web build the page imports and, when installed, the face detector of ``@vladmandic/face-api``.
Those npm files come from ``edgegan/web/node_modules`` (``npm ci`` from the committed lock file, run by
``scripts/setup_web.sh``) or from ``--ort-dist``; nothing is downloaded when a site is built or opened.

The page reads the model's pre/post-processing from the ONNX file's own ``edgegan`` metadata entry (it
parses ``metadata_props`` itself, as :mod:`edgegan.runtime.metadata_io` does), so it does the same
math as :class:`edgegan.runtime.metadata.ModelInfo` and refuses a model without it.
"""

from __future__ import annotations

import functools
import http.server
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import ClassVar

from edgegan.errors import EdgeGANError

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
NODE_MODULES = HERE / "node_modules"
SETUP_HINT = f"run scripts/setup_web.sh (or: npm ci --prefix {HERE})"

# The default onnxruntime-web entry point: WebGPU (JSEP) and the WASM CPU backend in one build, with
# the SIMD + threads WASM binary it loads at run time. The plain-WASM build would save 14 MB but could not
# use a GPU, and one build means one code path on the page.
ORT_FILES = ("ort.min.mjs", "ort-wasm-simd-threaded.jsep.mjs", "ort-wasm-simd-threaded.jsep.wasm")
# Face detection (optional): face-api's ESM build carries its own TensorFlow.js; the tiny detector is 190 KB.
FACE_FILES = {
    "face-api.esm.js": "dist/face-api.esm.js",
    "tiny_face_detector_model-weights_manifest.json": "model/tiny_face_detector_model-weights_manifest.json",
    "tiny_face_detector_model.bin": "model/tiny_face_detector_model.bin",
    "LICENSE": "LICENSE",
}
SITE_MARKER = ".edgegan-web"  # marks a folder this module wrote, so a rebuild may replace it
MODEL_NAME = "model.onnx"


def find_ort_dist(ort_dist: str | os.PathLike[str] | None = None) -> Path:
    """The folder holding :data:`ORT_FILES`: ``ort_dist`` (the package folder or its ``dist/``) or the
    copy installed by ``npm ci`` next to this module."""
    flag = "--ort-dist"
    if ort_dist is None:
        base, flag = NODE_MODULES / "onnxruntime-web", "onnxruntime-web"
    else:
        base = Path(ort_dist)
    for folder in (base / "dist", base):
        if all((folder / name).is_file() for name in ORT_FILES):
            return folder
    missing = next(name for name in ORT_FILES if not (base / "dist" / name).is_file() and not (base / name).is_file())
    if ort_dist is None:
        raise EdgeGANError(f"onnxruntime-web is not installed (no {missing} in {base / 'dist'}): {SETUP_HINT}, "
                           "or pass --ort-dist")
    raise EdgeGANError(f"{flag} {base}: no {missing} there (expected the dist/ folder of the onnxruntime-web npm "
                       "package)")


def find_face_dist() -> Path | None:
    """The installed ``@vladmandic/face-api`` package, or None (the page then offers a draggable face box)."""
    base = NODE_MODULES / "@vladmandic" / "face-api"
    return base if all((base / rel).is_file() for rel in FACE_FILES.values()) else None


def build_site(model: str | os.PathLike[str], out: str | os.PathLike[str], *,
               ort_dist: str | os.PathLike[str] | None = None, face_detector: bool = True) -> Path:
    """Write the static demo site for ``model`` into ``out`` (replaced as a whole; never half-written).

    Args:
        model: an ``.onnx`` file carrying EdgeGAN metadata (``edgegan export`` writes them), or ``demo[:VARIANT]``:
            the packaged demo model's ONNX file (fp32 unless named: onnxruntime-web's WASM kernels run the
            fp32 student several times faster than its INT8 QDQ graph, benchmarks/web.py).
        out: the site folder; an existing one must be empty or a site written by this function.
        ort_dist: the onnxruntime-web package (or its ``dist/``) to copy from [the ``npm ci`` install].
        face_detector: ship the face detector when it is installed (else: the manual face box only).

    Returns:
        ``out`` as a Path.

    Raises:
        EdgeGANError: the model is missing, not ONNX or has no metadata; onnxruntime-web is not
            installed; ``out`` holds something else.
    """
    from edgegan.runtime.formats import read_model_info
    from edgegan.runtime.packaged import resolve_model

    model, out = resolve_model(model, formats=("onnx",), precision="fp32"), Path(out)
    if model.suffix.lower() != ".onnx":
        raise EdgeGANError(f"--model {model}: the web demo runs ONNX models (.onnx from edgegan export), "
                           f"not {model.suffix or 'a file without suffix'}")
    try:
        info = read_model_info(model)
    except EdgeGANError as err:  # missing, corrupt, or no EdgeGAN metadata: say which flag it came from
        raise EdgeGANError(f"--model {err}" if str(err).startswith(str(model)) else str(err)) from err
    if info.layout not in ("NCHW", "NHWC") or info.color not in ("RGB", "BGR"):
        raise EdgeGANError(f"--model {model}: unsupported layout/colour {info.layout}/{info.color}")
    ort = find_ort_dist(ort_dist)
    face = find_face_dist() if face_detector else None
    if face_detector and face is None:
        log.warning("face detector not installed (%s): the page offers a draggable face box instead", SETUP_HINT)
    _check_out(out)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        for src in STATIC.iterdir():
            if src.is_file():
                shutil.copy2(src, tmp / src.name)
        (tmp / "ort").mkdir()
        for name in ORT_FILES:
            shutil.copy2(ort / name, tmp / "ort" / name)
        (tmp / "ort" / "NOTICE.txt").write_text(_notice(ort.parent, "https://github.com/microsoft/onnxruntime"))
        if face is not None:
            (tmp / "face").mkdir()
            for name, rel in FACE_FILES.items():
                shutil.copy2(face / rel, tmp / "face" / name)
        shutil.copy2(model, tmp / MODEL_NAME)
        (tmp / SITE_MARKER).write_text(f"model: {model.name}\n")
        os.chmod(tmp, 0o755)  # mkdtemp makes it 0700; a static server run as another user must read it
        _swap_in(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    log.info("web demo written to %s (%.1f MB; %s %d px %s%s)", out, size / 1e6, info.model, info.input_size,
             info.precision, ", face detector" if face else ", manual face box")
    return out


def _notice(package: Path, home: str) -> str:
    # The onnxruntime-web tarball ships no LICENSE file; its package.json names the licence.
    import json

    try:
        meta = json.loads((package / "package.json").read_text())
    except (OSError, ValueError):
        meta = {}
    return (f"{meta.get('name', package.name)} {meta.get('version', '?')}, licence {meta.get('license', '?')}, "
            f"{home}\nCopied unchanged from the npm package by `edgegan web`.\n")


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise EdgeGANError(f"--out {out}: is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / SITE_MARKER).is_file():
        raise EdgeGANError(f"--out {out}: folder is not empty and was not written by edgegan web; "
                           "choose a new or empty folder")


def _swap_in(tmp: Path, out: Path) -> None:
    # Two renames: a server reading `out` sees the old site or the new one, and a failed build leaves
    # the old site in place.
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    try:
        os.replace(tmp, out)
    except BaseException:
        if old is not None:
            os.replace(old, out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# ------------------------------------------------------------------------------------------ serving
class SiteHandler(http.server.SimpleHTTPRequestHandler):
    """Static files plus the two headers that make the page cross-origin isolated: without them browsers
    withhold SharedArrayBuffer and onnxruntime-web runs on one WASM thread."""

    extensions_map: ClassVar[dict[str, str]] = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                                                ".mjs": "text/javascript", ".js": "text/javascript",
                                                ".wasm": "application/wasm", ".onnx": "application/octet-stream",
                                                ".json": "application/json"}

    def end_headers(self) -> None:
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cache-Control", "no-cache")  # a rebuilt site must not mix with a cached model
        super().end_headers()

    def log_message(self, fmt: str, *args) -> None:
        log.debug("%s %s", self.address_string(), fmt % args)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        import sys

        # A browser that closes a tab mid-download (the 28 MB WASM file) is normal, not worth a traceback.
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)


def make_server(out: str | os.PathLike[str], port: int = 8000, host: str = "127.0.0.1"
                ) -> http.server.ThreadingHTTPServer:
    """An HTTP server for the site in ``out`` (not yet serving: call ``serve_forever``; port 0 = any free)."""
    out = Path(out)
    if not (out / "index.html").is_file() or not (out / SITE_MARKER).is_file():
        raise EdgeGANError(f"--out {out}: no web demo there (build one with edgegan web --model MODEL.onnx "
                           f"--out {out})")
    handler = functools.partial(SiteHandler, directory=str(out))
    try:
        return _Server((host, port), handler)
    except OSError as err:
        raise EdgeGANError(f"--port {port}: cannot listen on {host}:{port} ({err.strerror or err})") from err


def serve(out: str | os.PathLike[str], port: int = 8000, host: str = "127.0.0.1") -> None:
    """Serve the site in ``out`` until Ctrl-C. localhost counts as a secure context: the camera works."""
    server = make_server(out, port, host)
    url = f"http://{'localhost' if host in ('127.0.0.1', 'localhost', '') else host}:{server.server_address[1]}/"
    print(f"serving {out} at {url} (Ctrl-C to stop)", flush=True)
    if host not in ("127.0.0.1", "localhost", "::1"):
        # Browsers grant the camera only to secure contexts: https, or http on localhost.
        print("note: on plain http from another host the camera is blocked; photos still work", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped", flush=True)
    finally:
        server.server_close()
