"""``edgegan web``: a static in-browser demo (camera -> ONNX student via onnxruntime-web -> cartoon), offline.

    from edgegan.web import build_site, serve
    build_site("student.onnx", "site/")   # HTML + JS + onnxruntime-web + the model, nothing fetched later
    serve("site/", port=8000)             # http://localhost:8000/ (COOP/COEP set: multi-threaded WASM)

Pure standard library; never imports torch.
"""

from edgegan.web.build import build_site, make_server, serve

__all__ = ["build_site", "make_server", "serve"]
