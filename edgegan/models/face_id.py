"""Face-identity networks for photo2cartoon's face-ID loss, frozen and differentiable in PyTorch.

- ``dlib``: dlib's ResNet face-recognition model (``dlib_face_recognition_resnet_model_v1.dat``,
  CC0, 150x150 chips, 128-d embeddings). The weights ship inside the pip package
  ``face-recognition-models``; this module reads dlib's own serialization (no dlib needed) and
  rebuilds the network, so the loss runs offline and backpropagates.
- a MobileFaceNet state dict (112x112, 512-d), the checkpoint format photo2cartoon users have,
  given by path (``.pth`` read with ``weights_only=True``, or ``.safetensors``).

Both take the project's (B, 3, H, W) RGB tensors in [-1, 1] at their own ``input_size``.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from edgegan.errors import EdgeGANError

DLIB_SPEC = "dlib"
DLIB_FILE = "dlib_face_recognition_resnet_model_v1.dat"
_FACEID_EXTRA = "pip install 'edgegan[faceid]' (face-recognition-models==0.3.0)"


# ---------------------------------------------------------------- dlib's serialization
class _DlibStream:
    """Reader for dlib's portable serialization (dlib/serialize.h).

    Integers are a header byte (byte count in the low bits, 0x80 = negative) followed by that many
    little-endian bytes; floats and doubles are such an integer mantissa and exponent
    (value = mantissa * 2**exponent); strings are a length then the bytes; DNN tensors (version 2)
    are four dimensions then raw little-endian float32.
    """

    def __init__(self, data: bytes, path: Path):
        self.data, self.path, self.pos = data, path, 0

    def fail(self, what: str) -> EdgeGANError:
        return EdgeGANError(f"{self.path}: not a dlib face-recognition model ({what} at byte {self.pos})")

    def int(self) -> int:
        if self.pos >= len(self.data):
            raise self.fail("unexpected end of file")
        head = self.data[self.pos]
        n = head & 0x0F
        if n > 8 or self.pos + 1 + n > len(self.data):
            raise self.fail("bad integer")
        value = int.from_bytes(self.data[self.pos + 1:self.pos + 1 + n], "little")
        self.pos += 1 + n
        return -value if head & 0x80 else value

    def float(self) -> float:
        mantissa, exponent = self.int(), self.int()
        if exponent >= 32000:  # dlib's codes for inf, -inf and nan
            return {32000: float("inf"), 32001: float("-inf")}.get(exponent, float("nan"))
        return float(mantissa) * 2.0 ** exponent

    def peek_string(self) -> str | None:
        """The string that starts here, if what starts here reads as a short ASCII name."""
        saved = self.pos
        try:
            n = self.int()
            raw = self.data[self.pos:self.pos + n] if 0 < n < 64 else b""
            return raw.decode("ascii") if raw and raw.isascii() and raw.replace(b"_", b"").isalnum() else None
        except EdgeGANError:
            return None
        finally:
            self.pos = saved

    def string(self) -> str:
        n = self.int()
        raw = self.data[self.pos:self.pos + n]
        self.pos += n
        return raw.decode("ascii", errors="replace")

    def tensor(self) -> np.ndarray:
        version = self.int()
        dims = [self.int() for _ in range(4)]
        count = int(np.prod(dims))
        if version == 2:
            end = self.pos + 4 * count
            if end > len(self.data):
                raise self.fail("truncated tensor")
            values = np.frombuffer(self.data, dtype="<f4", count=count, offset=self.pos).astype(np.float32)
            self.pos = end
        elif version == 1:  # older files: every value in dlib's float encoding
            values = np.array([self.float() for _ in range(count)], dtype=np.float32)
        else:
            raise self.fail(f"unknown tensor version {version}")
        return values.reshape(dims)

    def alias(self) -> tuple[int, ...]:
        if self.int() != 1:
            raise self.fail("unknown alias_tensor version")
        return tuple(self.int() for _ in range(4))


@dataclass
class _Layer:
    kind: str  # con | affine | relu | max_pool | avg_pool | add_prev | fc
    params: dict


_LAYER_NAMES = {"con_4": "con", "affine_": "affine", "relu_": "relu", "max_pool_2": "max_pool",
                "avg_pool_2": "avg_pool", "add_prev_": "add_prev", "fc_2": "fc"}


def _read_layer(s: _DlibStream, name: str) -> _Layer:
    kind = _LAYER_NAMES[name]
    if kind == "con":
        params = s.tensor().ravel()
        n_filters, nr, nc, sy, sx, py, px = (s.int() for _ in range(7))
        filt, _bias = s.alias(), s.alias()
        for _ in range(4):  # learning-rate and weight-decay multipliers
            s.float()
        n_w = int(np.prod(filt))
        return _Layer(kind, {"weight": params[:n_w].reshape(filt), "bias": params[n_w:n_w + n_filters],
                             "stride": (sy, sx), "padding": (py, px), "kernel": (nr, nc)})
    if kind == "affine":
        params = s.tensor().ravel()
        gamma, _beta = s.alias(), s.alias()
        s.int()  # mode (conv / fc)
        n = int(np.prod(gamma))
        return _Layer(kind, {"gamma": params[:n], "beta": params[n:2 * n]})
    if kind in ("max_pool", "avg_pool"):
        nr, nc, sy, sx, py, px = (s.int() for _ in range(6))
        return _Layer(kind, {"kernel": (nr, nc), "stride": (sy, sx), "padding": (py, px)})
    if kind == "fc":
        n_out, n_in = s.int(), s.int()
        params = s.tensor().ravel()
        s.alias(), s.alias()
        has_bias = s.int() == 0
        for _ in range(4):
            s.float()
        weight = params[:n_in * n_out].reshape(n_in, n_out)  # dlib computes x @ W
        return _Layer(kind, {"weight": weight, "has_bias": has_bias})
    return _Layer(kind, {})


def read_dlib_resnet(path: str | Path) -> tuple[dict, list[_Layer]]:
    """Parse a dlib ``loss_metric`` network file into (input settings, layers from input to output).

    dlib writes a network outermost-first: the loss layer's details, then every wrapper's version
    number, then the input layer, then each layer's details followed by its (empty) training
    buffers, innermost first. Tag and skip layers carry only a version, so the residual topology
    is not in the file; ``DlibResNet`` rebuilds it from the sequence and checks the shapes.
    """
    path = Path(path)
    try:
        s = _DlibStream(path.read_bytes(), path)
    except OSError as err:
        raise EdgeGANError(f"{path}: cannot read ({err.strerror or err})") from err
    s.int()
    if s.string() != "loss_metric_2":
        raise s.fail("no loss_metric_2 header")
    s.float(), s.float()  # margin, distance threshold: training-only
    while s.peek_string() != "input_rgb_image_sized":
        if s.int() not in (1, 2, 3) or s.pos > 4096:
            raise s.fail("no input_rgb_image_sized layer")
    s.string()
    mean = [s.float() for _ in range(3)]
    size = (s.int(), s.int())
    layers: list[_Layer] = []
    while s.pos < len(s.data):
        name = s.peek_string()
        if name not in _LAYER_NAMES:
            raise s.fail(f"unexpected record {name!r}")
        s.string()
        layers.append(_read_layer(s, name))
        if len(s.data) - s.pos < 3 or any(c not in b"01" for c in s.data[s.pos:s.pos + 3]):
            raise s.fail("bad layer trailer")
        s.pos += 3  # setup-called / gradient-stale / output-disabled flags
        for _ in range(3):  # x_grad, cached_output, params_grad: empty in a saved model
            s.tensor()
        if len(layers) == 1 and s.pos < len(s.data) and s.peek_string() not in _LAYER_NAMES:
            s.int()  # the first layer above the input also stores its sample expansion factor
    return {"mean_rgb": mean, "size": size}, layers


# ---------------------------------------------------------------- dlib ResNet in torch
def _add_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's add_prev: tensors of different shapes add as if the smaller were zero-padded at the end."""
    c, h, w = (max(a.shape[i], b.shape[i]) for i in (1, 2, 3))

    def grow(t: torch.Tensor) -> torch.Tensor:
        pad = (0, w - t.shape[3], 0, h - t.shape[2], 0, c - t.shape[1])
        return F.pad(t, pad) if any(pad) else t

    return grow(a) + grow(b)


def _folded_conv(con: _Layer, affine: _Layer) -> nn.Conv2d:
    """A conv with the following affine layer (dlib's frozen batch norm) folded in."""
    w = torch.from_numpy(con.params["weight"].copy())
    gamma = torch.from_numpy(affine.params["gamma"].copy())
    beta = torch.from_numpy(affine.params["beta"].copy())
    p = con.params
    conv = nn.Conv2d(w.shape[1], w.shape[0], p["kernel"], p["stride"], p["padding"])
    with torch.no_grad():
        conv.weight.copy_(w * gamma[:, None, None, None])
        conv.bias.copy_(torch.from_numpy(con.params["bias"].copy()) * gamma + beta)
    return conv


class _DlibBlock(nn.Module):
    """conv-affine-relu-conv-affine + skip (2x2 average-pooled when down-sampling), then relu."""

    def __init__(self, conv1: nn.Conv2d, conv2: nn.Conv2d, pool: tuple[int, int] | None):
        super().__init__()
        self.conv1, self.conv2, self.pool = conv1, conv2, pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(F.relu(self.conv1(x)))
        skip = F.avg_pool2d(x, self.pool[0], self.pool[1]) if self.pool else x
        return F.relu(_add_padded(y, skip))


class DlibResNet(nn.Module):
    """dlib's 29-conv ResNet face recogniser (dlib's ``dnn_face_recognition_ex``), weights from its file."""

    def __init__(self, path: str | Path):
        super().__init__()
        info, layers = read_dlib_resnet(path)
        kinds = [layer.kind for layer in layers]
        bad = EdgeGANError(f"{path}: unexpected layer sequence for dlib's face-recognition ResNet")
        if kinds[:4] != ["con", "affine", "relu", "max_pool"] or kinds[-2:] != ["avg_pool", "fc"]:
            raise bad
        self.input_size = info["size"][0]
        self.register_buffer("mean_rgb", torch.tensor(info["mean_rgb"]).view(1, 3, 1, 1), persistent=False)
        self.stem = _folded_conv(layers[0], layers[1])
        mp = layers[3].params
        self.stem_pool = (mp["kernel"], mp["stride"], mp["padding"])
        blocks, i = [], 4
        while i < len(layers) - 2:
            body = kinds[i:i + 5]
            if body != ["con", "affine", "relu", "con", "affine"]:
                raise bad
            down = kinds[i + 5] == "avg_pool"
            pool = None
            if down:
                p = layers[i + 5].params
                pool = (p["kernel"][0], p["stride"][0])
            j = i + 5 + down
            if kinds[j:j + 2] != ["add_prev", "relu"]:
                raise bad
            blocks.append(_DlibBlock(_folded_conv(layers[i], layers[i + 1]),
                                     _folded_conv(layers[i + 3], layers[i + 4]), pool))
            i = j + 2
        self.blocks = nn.Sequential(*blocks)
        w = torch.from_numpy(layers[-1].params["weight"].T.copy())  # (128, 256)
        self.fc = nn.Linear(w.shape[1], w.shape[0], bias=False)
        with torch.no_grad():
            self.fc.weight.copy_(w)
        self.embedding_dim = w.shape[0]

    def forward_pixels(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, 150, 150) RGB in [0, 255] -> (B, 128), exactly dlib's input scaling."""
        x = (x - self.mean_rgb) / 256.0
        k, st, pad = self.stem_pool
        x = F.max_pool2d(F.relu(self.stem(x)), k, st, pad)
        x = self.blocks(x)  # (B, 256, 2, 2) at 150 px
        return self.fc(x.mean(dim=(2, 3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, 150, 150) RGB in [-1, 1] -> (B, 128) embeddings (dlib: same person if distance < 0.6)."""
        return self.forward_pixels((x + 1.0) * 127.5)


def dlib_model_path() -> Path:
    """The packaged dlib weights, found without importing face_recognition_models (it needs pkg_resources)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise EdgeGANError(f"--id-model dlib: the face-recognition weights are not installed; "
                           f"{_FACEID_EXTRA}")
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / DLIB_FILE
    if not path.is_file():
        raise EdgeGANError(f"--id-model dlib: {path} is missing; reinstall: {_FACEID_EXTRA}")
    return path


# ---------------------------------------------------------------- MobileFaceNet
class _ConvBN(nn.Module):
    """conv (no bias) + BatchNorm [+ per-channel PReLU]; attribute names follow the common checkpoints."""

    def __init__(self, cin: int, cout: int, k: int = 1, stride: int = 1, pad: int = 0, groups: int = 1,
                 act: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, pad, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.prelu = nn.PReLU(cout) if act else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return self.prelu(x) if self.prelu is not None else x


class _DepthWise(nn.Module):
    """Inverted bottleneck: 1x1 expand, 3x3 depthwise, 1x1 linear projection [+ residual]."""

    def __init__(self, cin: int, cout: int, hidden: int, stride: int, residual: bool):
        super().__init__()
        self.conv = _ConvBN(cin, hidden)
        self.conv_dw = _ConvBN(hidden, hidden, 3, stride, 1, groups=hidden)
        self.project = _ConvBN(hidden, cout, act=False)
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.conv_dw(self.conv(x)))
        return x + y if self.residual else y


class _Residual(nn.Module):
    def __init__(self, channels: int, n: int, hidden: int):
        super().__init__()
        self.model = nn.Sequential(*[_DepthWise(channels, channels, hidden, 1, True) for _ in range(n)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class MobileFaceNet(nn.Module):
    """MobileFaceNet (Chen et al. 2018), as photo2cartoon uses it: 112 px RGB in [-1, 1] -> unit 512-d."""

    input_size = 112

    def __init__(self, embedding_dim: int = 512):
        super().__init__()
        self.conv1 = _ConvBN(3, 64, 3, 2, 1)
        self.conv2_dw = _ConvBN(64, 64, 3, 1, 1, groups=64)
        self.conv_23 = _DepthWise(64, 64, 128, 2, False)
        self.conv_3 = _Residual(64, 4, 128)
        self.conv_34 = _DepthWise(64, 128, 256, 2, False)
        self.conv_4 = _Residual(128, 6, 256)
        self.conv_45 = _DepthWise(128, 128, 512, 2, False)
        self.conv_5 = _Residual(128, 2, 256)
        self.conv_6_sep = _ConvBN(128, 512)
        self.conv_6_dw = _ConvBN(512, 512, 7, 1, 0, groups=512, act=False)  # global depthwise conv
        self.linear = nn.Linear(512, embedding_dim, bias=False)
        self.bn = nn.BatchNorm1d(embedding_dim)
        self.embedding_dim = embedding_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in (self.conv1, self.conv2_dw, self.conv_23, self.conv_3, self.conv_34, self.conv_4,
                      self.conv_45, self.conv_5, self.conv_6_sep, self.conv_6_dw):
            x = stage(x)  # (B, 512, 1, 1) after conv_6_dw
        return F.normalize(self.bn(self.linear(x.flatten(1))), dim=1)


def load_mobilefacenet(path: str | Path) -> MobileFaceNet:
    """A MobileFaceNet from a state-dict file: .pth/.pt (``torch.load(weights_only=True)``), .safetensors."""
    path = Path(path)
    flag = f"--id-model {path}"
    if not path.is_file():
        raise EdgeGANError(f"{flag}: no such file (give 'dlib' or a MobileFaceNet .pth/.safetensors "
                           "state dict)")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(path)
        else:
            sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch and safetensors raise many exception types for bad files
        detail = " ".join(str(err).split())[:160]
        raise EdgeGANError(f"{flag}: not a readable state-dict file ({detail})") from err
    if isinstance(sd, dict) and isinstance(sd.get("state_dict"), dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not all(torch.is_tensor(v) for v in sd.values()):
        raise EdgeGANError(f"{flag}: expected a state dict of tensors, got {type(sd).__name__}")
    sd = {k.removeprefix("module."): v for k, v in sd.items()}  # saved from DataParallel
    dim = sd["linear.weight"].shape[0] if "linear.weight" in sd else 512
    net = MobileFaceNet(dim)
    expected = net.state_dict()
    missing = sorted(set(expected) - set(sd))
    unexpected = sorted(set(sd) - set(expected))
    wrong = sorted(k for k in set(expected) & set(sd) if expected[k].shape != sd[k].shape)
    if missing or unexpected or wrong:
        parts = [f"{len(missing)} missing (e.g. {missing[0]})" if missing else "",
                 f"{len(unexpected)} unexpected (e.g. {unexpected[0]})" if unexpected else "",
                 f"{len(wrong)} of the wrong shape (e.g. {wrong[0]})" if wrong else ""]
        raise EdgeGANError(f"{flag}: not a MobileFaceNet state dict: keys {', '.join(p for p in parts if p)}")
    net.load_state_dict(sd)
    return net


# ---------------------------------------------------------------- the loss
def load_id_network(spec: str = DLIB_SPEC) -> nn.Module:
    """``"dlib"`` (the packaged dlib ResNet) or a MobileFaceNet checkpoint path; frozen, in eval mode."""
    net = DlibResNet(dlib_model_path()) if spec == DLIB_SPEC else load_mobilefacenet(spec)
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


class FaceIDLoss(nn.Module):
    """1 - cosine similarity of the face embeddings of two image batches (photo2cartoon's face-ID loss).

    The images are the project's aligned face crops in [-1, 1]; the central ``crop`` fraction of
    each side is the region the ID network was trained on (``edgegan data prepare`` crops so that
    dlib's face chip is the central 0.75) and is resized to the network's input.
    """

    def __init__(self, net: nn.Module, crop: float = 0.75):
        super().__init__()
        if not 0.1 <= crop <= 1.0:
            raise EdgeGANError(f"--face-id-crop: must be in [0.1, 1], got {crop}")
        self.net, self.crop = net, crop

    def train(self, mode: bool = True) -> FaceIDLoss:
        super().train(mode)
        self.net.eval()  # frozen BatchNorm statistics, whatever the trainer does
        return self

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2:]
        ch, cw = max(1, round(h * self.crop)), max(1, round(w * self.crop))
        top, left = (h - ch) // 2, (w - cw) // 2
        x = x[:, :, top:top + ch, left:left + cw]
        size = self.net.input_size
        if (ch, cw) != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=ch > size)
        return self.net(x).float()

    def forward(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target = self.embed(real)
        return (1.0 - F.cosine_similarity(target, self.embed(fake), dim=1)).mean()
