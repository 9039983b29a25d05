"""Run the web demo in real headless Chromium (for the end-to-end test and ``benchmarks/web.py``).

Node.js runs ``driver.mjs`` with the ``playwright-core`` installed by ``npm ci`` next to it and the
system's Chromium (Debian ``chromium``); both are set up by ``scripts/setup_web.sh``. Nothing here is
needed to build or serve a site.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from edgegan.errors import EdgeGANError
from edgegan.web.build import HERE, NODE_MODULES, make_server

DRIVER = HERE / "driver.mjs"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")


def find_chromium() -> str:
    """The Chromium binary: ``$EDGEGAN_CHROMIUM`` or the system package's."""
    env = os.environ.get("EDGEGAN_CHROMIUM")
    if env:
        if not Path(env).is_file():
            raise EdgeGANError(f"EDGEGAN_CHROMIUM={env}: no such file")
        return env
    for path in CHROMIUM_CANDIDATES:
        if Path(path).is_file():
            return path
    raise EdgeGANError("Chromium not found (/usr/bin/chromium): run scripts/setup_web.sh "
                       "(apt-get install -y chromium), or set EDGEGAN_CHROMIUM")


def check_browser_tools() -> tuple[str, str]:
    """(node, chromium) paths, or a one-line error naming the set-up script."""
    node = shutil.which("node")
    if node is None:
        raise EdgeGANError("Node.js not found: install it (Debian: apt-get install -y nodejs npm), then run "
                           "scripts/setup_web.sh")
    if not (NODE_MODULES / "playwright-core" / "package.json").is_file():
        raise EdgeGANError(f"playwright-core is not installed in {NODE_MODULES}: run scripts/setup_web.sh")
    return node, find_chromium()


def run_driver(pages: list[dict], *, fake_video: str | os.PathLike[str] | None = None, timeout_s: float = 300,
               extra_args: list[str] | None = None) -> dict:
    """Run ``driver.mjs`` on ``pages`` (see its header); returns its JSON report or raises on a failure."""
    node, chromium = check_browser_tools()
    config = {"chromium": chromium, "fakeVideo": str(fake_video) if fake_video else None,
              "noSandbox": hasattr(os, "geteuid") and os.geteuid() == 0,  # Chromium refuses root otherwise
              "timeoutMs": int(timeout_s * 1000 * 0.8), "pages": pages, "extraArgs": extra_args or []}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(config, f)
    try:
        proc = subprocess.run([node, str(DRIVER), f.name], check=False, capture_output=True, text=True,
                              timeout=timeout_s, cwd=HERE)
    except subprocess.TimeoutExpired as err:
        raise EdgeGANError(f"Chromium driver timed out after {timeout_s:.0f} s") from err
    finally:
        os.unlink(f.name)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise EdgeGANError(f"Chromium driver failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    report = json.loads(lines[-1])
    if report.get("failure"):
        raise EdgeGANError(f"Chromium driver: {report['failure']}")
    return report


@contextmanager
def served(site: str | os.PathLike[str]):
    """Serve ``site`` on a free localhost port in a thread; yields the base URL."""
    server = make_server(site, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def decode_rgb(result: dict, key: str = "rgb") -> np.ndarray:
    """The (H, W, 3) uint8 image in a ``runImage`` result."""
    import base64

    data = np.frombuffer(base64.b64decode(result[key]), dtype=np.uint8)
    return data.reshape(result["height"], result["width"], 3)


def png_data_url(rgb: np.ndarray) -> str:
    """A PNG data URL of an (H, W, 3) uint8 RGB image (lossless, no colour profile)."""
    import base64

    import cv2

    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]))
    if not ok:
        raise EdgeGANError("could not encode the test image as PNG")
    return "data:image/png;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def write_y4m(path: str | os.PathLike[str], frames: list[np.ndarray], fps: int = 30) -> None:
    """Write (H, W, 3) uint8 RGB frames as a YUV4MPEG2 (4:2:0) file, Chromium's fake-camera input."""
    import cv2

    h, w = frames[0].shape[:2]
    if h % 2 or w % 2:
        raise EdgeGANError(f"y4m frames must have even sides, got {w}x{h}")
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode("ascii"))
        # OpenCV's I420 layout is exactly y4m's: the Y plane, then U, then V.
        f.writelines(b"FRAME\n" + cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2YUV_I420).tobytes()
                     for rgb in frames)
