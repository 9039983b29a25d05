"""Write ``ModelInfo`` into exported model files and read it back, without torch.

Where the JSON (``ModelInfo.to_json``) lives, under the key ``METADATA_KEY``:
- ONNX: ``ModelProto.metadata_props`` (what ``onnxruntime`` shows as ``custom_metadata_map``);
- TFLite: a ``Model.metadata`` entry whose buffer holds the UTF-8 JSON (the slot the TFLite
  converter itself uses for ``min_runtime_version``; interpreters ignore unknown entries);
- CoreML: ``user_defined_metadata`` of the model spec (``.mlpackage`` or ``.mlmodel``);
- OpenVINO IR: ``<rt_info><edgegan value="..."/></rt_info>`` of the ``.xml`` (``Model.set_rt_info``).
- MNN: the model's ``bizCode`` string (``Net`` field 0), which MNN's converter writes from ``--bizCode``;
- ncnn: a sidecar JSON next to the ``.param``/``.bin`` pair (neither has a free-text slot).
- ExecuTorch ``.pte``: a constant method named ``edgegan`` that returns the JSON string (``constant_methods``).

The readers parse the container formats directly (protobuf wire format, flatbuffer tables) with the
standard library only: on a device neither ``onnx``, ``coremltools`` nor TensorFlow needs to be
installed (``coremltools`` also imports torch when it is present), and nothing but the few bytes
of the metadata is copied out of a large model file. The writers run at export time and use the
exporter's own libraries (``onnx`` protos, the TFLite schema module of ``ai_edge_litert``,
``coremltools`` models).
"""

from __future__ import annotations

import json
import mmap
import struct
from pathlib import Path
from xml.etree import ElementTree

from edgegan.errors import EdgeGANError
from edgegan.runtime.metadata import METADATA_KEY, ModelInfo


# ------------------------------------------------------------------------------------------ writers
def embed_onnx(model, info: ModelInfo):
    """Set ``info`` in an ``onnx.ModelProto``'s ``metadata_props`` (replacing an older entry); returns it."""
    for prop in [p for p in model.metadata_props if p.key == METADATA_KEY]:
        model.metadata_props.remove(prop)
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, info.to_json()
    return model


def embed_tflite(data: bytes, info: ModelInfo) -> bytes:
    """A copy of the ``.tflite`` flatbuffer ``data`` with ``info`` as its ``edgegan`` metadata entry."""
    import flatbuffers
    import numpy as np
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    payload = schema.BufferT()
    payload.data = np.frombuffer(info.to_json().encode("utf-8"), dtype=np.uint8)
    model.buffers = list(model.buffers or [])
    model.metadata = [m for m in (model.metadata or []) if _text(m.name) != METADATA_KEY]
    entry = schema.MetadataT()
    entry.name, entry.buffer = METADATA_KEY, len(model.buffers)
    model.buffers.append(payload)
    model.metadata.append(entry)
    builder = flatbuffers.Builder(len(data) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def embed_coreml(mlmodel, info: ModelInfo):
    """Set ``info`` in a ``coremltools.models.MLModel``'s ``user_defined_metadata`` (and its version string)."""
    mlmodel.user_defined_metadata[METADATA_KEY] = info.to_json()
    mlmodel.version = info.edgegan_version or mlmodel.version
    mlmodel.short_description = f"EdgeGAN {info.model} photo -> cartoon, {info.input_size} px, {info.precision}"
    return mlmodel


def embed_openvino(model, info: ModelInfo):
    """Set ``info`` in an ``openvino.Model``'s runtime info (saved into the IR ``.xml``); returns it."""
    model.set_rt_info(info.to_json(), [METADATA_KEY])
    return model


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, (bytes, bytearray)) else str(value or "")


# ------------------------------------------------------------------------------------------ readers
# One per container: the file -> the metadata JSON, or None when the file holds none. Dispatched by
# suffix through ``edgegan.runtime.formats.FORMATS`` (``read_model_info``).
def onnx_metadata(path: Path) -> str | None:
    return _read_bytes(path, _onnx_metadata)


def tflite_metadata(path: Path) -> str | None:
    return _read_bytes(path, _tflite_metadata)


def coreml_metadata(path: Path) -> str | None:
    return _read_bytes(_coreml_spec_path(path), _coreml_metadata)


def _read_bytes(path: Path, parse) -> str | None:
    if path.is_dir():
        raise EdgeGANError(f"{path}: is a folder, expected a model file")
    with open(path, "rb") as f:
        if f.seek(0, 2) == 0:
            raise EdgeGANError(f"{path}: empty file, not a model")
        # mmap: a large model is not read into memory to find a few hundred bytes of metadata
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            return parse(buf)  # slicing an mmap copies just those bytes


# -------------------------------------------------------------- protobuf wire format (ONNX, CoreML)
def _varint(buf, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("malformed varint")


def _fields(buf, start: int = 0, end: int | None = None):
    """(field number, slice) of each length-delimited field of one message; other wire types skipped."""
    pos, end = start, len(buf) if end is None else end
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _varint(buf, pos)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > end:
                raise ValueError("field runs past the end of its message")
            yield number, (pos, pos + size)
            pos += size
        else:  # groups (3, 4) are not used by ONNX or CoreML specs
            raise ValueError(f"unexpected protobuf wire type {wire}")
        if pos > end:
            raise ValueError("truncated protobuf message")


def _string_map(buf, span, entry_field: int, key: str) -> str | None:
    """The value of ``key`` in a repeated key(1)/value(2) string entry field of the message at ``span``."""
    for number, (s, e) in _fields(buf, *span):
        if number != entry_field:
            continue
        entry = {n: bytes(buf[a:b]).decode("utf-8") for n, (a, b) in _fields(buf, s, e) if n in (1, 2)}
        if entry.get(1) == key:
            return entry.get(2, "")
    return None


def _onnx_metadata(buf) -> str | None:
    # ModelProto.metadata_props = 14 (StringStringEntryProto: key = 1, value = 2)
    return _string_map(buf, (0, len(buf)), 14, METADATA_KEY)


def _coreml_metadata(buf) -> str | None:
    # Model.description = 2 -> ModelDescription.metadata = 100 -> Metadata.userDefined = 100 (map)
    for number, span in _fields(buf):
        if number == 2:
            for number2, span2 in _fields(buf, *span):
                if number2 == 100:
                    return _string_map(buf, span2, 100, METADATA_KEY)
    return None


def _coreml_spec_path(path: Path) -> Path:
    """The spec protobuf of an ``.mlpackage`` (named by its Manifest.json), or the ``.mlmodel`` itself."""
    if path.suffix.lower() == ".mlmodel":
        return path
    manifest_path = path / "Manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text())
        item = manifest["itemInfoEntries"][manifest["rootModelIdentifier"]]
        spec = path / "Data" / item["path"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise EdgeGANError(f"{path}: not a CoreML .mlpackage (unreadable {manifest_path.name}: {err})") from err
    if not spec.is_file():
        raise EdgeGANError(f"{path}: incomplete .mlpackage (missing {spec.relative_to(path)})")
    return spec


# --------------------------------------------------------------------- flatbuffer tables (TFLite)
def _u16(buf, pos: int) -> int:
    return struct.unpack_from("<H", buf, pos)[0]


def _u32(buf, pos: int) -> int:
    return struct.unpack_from("<I", buf, pos)[0]


def _field(buf, table: int, index: int) -> int | None:
    """Absolute position of field ``index`` of the table at ``table``, None when absent (default)."""
    vtable = table - struct.unpack_from("<i", buf, table)[0]
    slot = 4 + 2 * index
    if slot >= _u16(buf, vtable):
        return None
    offset = _u16(buf, vtable + slot)
    return table + offset if offset else None


def _vector(buf, pos: int) -> tuple[int, int]:
    start = pos + _u32(buf, pos)
    return start + 4, _u32(buf, start)


def _table_named(buf, vector_pos: int, name: str) -> int | None:
    """The first table of the vector of tables at ``vector_pos`` whose field 0 (a string) is ``name``."""
    first, count = _vector(buf, vector_pos)
    for i in range(count):
        table = first + 4 * i + _u32(buf, first + 4 * i)
        name_pos = _field(buf, table, 0)
        if name_pos is None:
            continue
        s, n = _vector(buf, name_pos)
        if bytes(buf[s:s + n]).decode("utf-8") == name:
            return table
    return None


def _tflite_metadata(buf) -> str | None:
    # tflite schema: Model.buffers = field 4, Model.metadata = field 6; Metadata(name 0, buffer 1);
    # Buffer(data 0, offset 1, size 2): models over 2 GB keep data outside the flatbuffer at offset/size.
    if len(buf) < 8 or bytes(buf[4:8]) != b"TFL3":
        raise ValueError("no TFL3 file identifier")
    model = _u32(buf, 0)
    metadata, buffers = _field(buf, model, 6), _field(buf, model, 4)
    if metadata is None or buffers is None:
        return None
    entry = _table_named(buf, metadata, METADATA_KEY)
    if entry is None:
        return None
    index_pos = _field(buf, entry, 1)
    index = _u32(buf, index_pos) if index_pos is not None else 0
    b_first, b_count = _vector(buf, buffers)
    if index >= b_count:
        raise ValueError(f"metadata buffer {index} out of range ({b_count} buffers)")
    buffer = b_first + 4 * index + _u32(buf, b_first + 4 * index)
    data_pos = _field(buf, buffer, 0)
    if data_pos is not None:
        s, n = _vector(buf, data_pos)
    else:
        off_pos, size_pos = _field(buf, buffer, 1), _field(buf, buffer, 2)
        if off_pos is None or size_pos is None:
            return ""
        s = struct.unpack_from("<Q", buf, off_pos)[0]
        n = struct.unpack_from("<Q", buf, size_pos)[0]
    if s + n > len(buf):
        raise ValueError("metadata buffer runs past the end of the file")
    return bytes(buf[s:s + n]).decode("utf-8")


# -------------------------------------------------------------------------------- OpenVINO IR (XML)
def openvino_metadata(path: Path) -> str | None:
    """The ``edgegan`` value of the IR's top-level ``<rt_info>``. Streamed: the layer list comes first and
    is dropped element by element, so a large IR is never held in memory."""
    if path.is_dir():
        raise EdgeGANError(f"{path}: is a folder, expected a model file")
    if path.stat().st_size == 0:
        raise EdgeGANError(f"{path}: empty file, not a model")
    depth, in_rt_info, root = 0, False, None
    for event, elem in ElementTree.iterparse(path, events=("start", "end")):
        if event == "start":
            depth += 1
            if depth == 1:
                root = elem.tag
                if root != "net":
                    raise EdgeGANError(f"{path}: not an OpenVINO IR (root element <{root}>, expected <net>)")
            elif depth == 2 and elem.tag == "rt_info":
                in_rt_info = True
            elif depth == 3 and in_rt_info and elem.tag == METADATA_KEY:
                return elem.get("value")
        else:
            depth -= 1
            if depth == 1:
                in_rt_info = False
                elem.clear()
    return None


# ---------------------------------------------------------------------- sidecar JSON (ncnn, MNN)
# Formats with no slot for free text (ncnn's .param/.bin) carry ModelInfo in a JSON file next to the model,
# named by the format's companion suffix (``x.ncnn.param`` -> ``x.ncnn.json``); export moves and deletes it
# with the model. ``extra["bytes"]`` records the
# size of every file of the model, so a sidecar left next to another model is caught when read.
def embed_sidecar(path: Path, info: ModelInfo, sidecar: str) -> None:
    """Write ``info`` as the sidecar JSON (suffix ``sidecar``) of the model file ``path``."""
    from edgegan.io_utils import write_text_atomic

    write_text_atomic(path.with_suffix(sidecar), info.to_json() + "\n")


def file_sizes(path: Path, suffixes: tuple[str, ...]) -> dict[str, int]:
    """Byte sizes of ``path`` (under its own suffix) and of its companions ``suffixes``, for ``extra["bytes"]``."""
    return {s: path.with_suffix(s).stat().st_size for s in (path.suffix.lower(), *suffixes)}


def sidecar_metadata(path: Path, sidecar: str, *, magic: bytes = b"") -> str | None:
    """The ModelInfo JSON of ``path`` from its sidecar; None when the sidecar is missing."""
    if path.is_dir():
        raise EdgeGANError(f"{path}: is a folder, expected a model file")
    with open(path, "rb") as f:
        head = f.read(max(1, len(magic)))
    if not head:
        raise EdgeGANError(f"{path}: empty file, not a model")
    if magic and head != magic:
        raise EdgeGANError(f"{path}: not a {path.suffix} model file (starts with {head!r}, expected {magic!r})")
    side = path.with_suffix(sidecar)
    if not side.is_file():
        return None
    text = side.read_text(encoding="utf-8")
    sizes = json.loads(text).get("extra", {}).get("bytes", {})
    for suffix, expected in sizes.items():
        part = path.with_suffix(suffix)
        if not part.is_file():
            raise EdgeGANError(f"{path}: {part.name} is missing next to it (export writes them together)")
        if part.stat().st_size != expected:
            raise EdgeGANError(f"{path}: its metadata {side.name} describes another file ({part.name}: "
                               f"{part.stat().st_size} bytes, expected {expected}); re-export it")
    return text


def ncnn_metadata(path: Path) -> str | None:
    return sidecar_metadata(path, ".json", magic=b"7767517")


def rknn_metadata(path: Path) -> str | None:
    return sidecar_metadata(path, ".json", magic=b"RKNN")


# ------------------------------------------------------------------------------- MNN (flatbuffer)
def _mnn_metadata(buf) -> str | None:
    # MNN.fbs: the root table is Net, whose field 0 is ``bizCode: string`` (a free-text tag the converter writes
    # from ``--bizCode``, kept by the quantization tool): EdgeGAN's JSON, or the converter's default tag.
    if len(buf) < 8:
        raise ValueError("too short for an MNN flatbuffer")
    root = _u32(buf, 0)
    if root + 4 > len(buf):
        raise ValueError("root table offset past the end of the file")
    pos = _field(buf, root, 0)
    if pos is None:
        return None
    start, size = _vector(buf, pos)
    if start + size > len(buf):
        raise ValueError("bizCode runs past the end of the file")
    text = bytes(buf[start:start + size]).decode("utf-8")
    return text if text.startswith("{") else None


def mnn_metadata(path: Path) -> str | None:
    return _read_bytes(path, _mnn_metadata)


# ------------------------------------------------------------------------ ExecuTorch .pte (flatbuffer)
def _pte_metadata(buf) -> str | None:
    # program.fbs (file identifier "ET12"): Program.execution_plan = field 1; ExecutionPlan(name 0, values 2,
    # outputs 4); EValue.val is a union (type 0, value 1; NONE = 0, so String is 6); String.string_val = field 0.
    # Export adds a constant method named METADATA_KEY whose one output is the JSON string (``constant_methods``).
    if len(buf) < 8 or bytes(buf[4:8]) != b"ET12":
        raise ValueError("no ET12 file identifier")
    program = _u32(buf, 0)
    plans = _field(buf, program, 1)
    if plans is None:
        return None
    plan = _table_named(buf, plans, METADATA_KEY)
    if plan is None:
        return None
    values, outputs = _field(buf, plan, 2), _field(buf, plan, 4)
    if values is None or outputs is None:
        return None
    o_first, o_count = _vector(buf, outputs)
    v_first, v_count = _vector(buf, values)
    index = struct.unpack_from("<i", buf, o_first)[0] if o_count else -1
    if not 0 <= index < v_count:
        raise ValueError(f"metadata value {index} out of range ({v_count} values)")
    value = v_first + 4 * index + _u32(buf, v_first + 4 * index)
    kind_pos, val_pos = _field(buf, value, 0), _field(buf, value, 1)
    if kind_pos is None or buf[kind_pos] != 6 or val_pos is None:  # not a String
        return None
    string = val_pos + _u32(buf, val_pos)
    text_pos = _field(buf, string, 0)
    if text_pos is None:
        return ""
    s, n = _vector(buf, text_pos)
    if s + n > len(buf):
        raise ValueError("metadata string runs past the end of the file")
    return bytes(buf[s:s + n]).decode("utf-8")


def executorch_metadata(path: Path) -> str | None:
    return _read_bytes(path, _pte_metadata)
