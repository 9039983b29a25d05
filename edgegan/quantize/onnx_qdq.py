"""Make an exported QDQ ONNX graph what onnxruntime's CPU kernels want, and run it.

``torch.onnx.export`` of an NNCF model writes every weight in fp32 followed by a QuantizeLinear, and
signed (int8) activations wherever a tensor can be negative. :func:`finalize_qdq` rewrites both,
exactly (no value changes):

- weight ``QuantizeLinear(W)`` is evaluated once and stored as an int8 initializer: the file holds
  int8 weights (about a quarter of the fp32 size) and onnxruntime sees the ``DQ(int8 W)`` pattern
  its QLinearConv fusion expects;
- int8 activation Q/DQ pairs become uint8 with the zero point moved by 128. onnxruntime's x86
  kernels are u8 activations x s8 weights (VNNI); int8 activations that its S8->U8 pass cannot
  convert (a residual Add feeding a conv and the next Add) left every expand conv and every Add in
  fp32 between extra Q/DQ/Transpose nodes, and the INT8 model ran slower than fp32.

It also makes the file small: Constant nodes become initializers, duplicates are merged, zero points
of 0 on weights are dropped, and activation tensors get short names (the exporter's 80-character
names were a third of the INT8 file of ``mobile-s``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

INT_RANGE = {np.dtype(np.int8): (-128, 127), np.dtype(np.uint8): (0, 255)}


def _constants(graph) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    values = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return values


def _broadcast(param: np.ndarray, ndim: int, axis: int) -> np.ndarray:
    if param.ndim == 0 or param.size == 1:
        return param.reshape(())
    shape = [1] * ndim
    shape[axis] = param.size
    return param.reshape(shape)


def _attr(node, name: str, default):
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def finalize_qdq(model):
    """Rewrite an exported QDQ model for onnxruntime and for size, without changing a value (in place).

    - weight ``QuantizeLinear`` -> int8 initializer (named after the weight), zero points of 0 dropped;
    - int8 activation Q/DQ -> uint8 (zero point + 128);
    - ``Constant`` nodes -> initializers, identical initializers merged, unused ones dropped;
    - activation tensors and nodes renamed to short ids: the legacy exporter's names (80 characters, each
      written several times) were a third of a small student's INT8 file.

    Returns the model and ``{"weights_folded": n, "activations_to_uint8": m}``.
    """
    import onnx
    from onnx import numpy_helper

    graph = model.graph
    _constants_to_initializers(graph)
    consts = _constants(graph)
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    drop, new_inits = [], []
    folded = converted = 0
    for node in graph.node:
        if node.op_type != "QuantizeLinear" or len(node.input) < 3 or node.input[2] not in consts:
            continue
        x, scale_name, zp_name = node.input[:3]
        zp = consts[zp_name]
        if x in consts:  # a weight: quantize it now, under the weight's name
            axis = _attr(node, "axis", 1)
            w = consts[x].astype(np.float32)  # float32 as onnxruntime divides, so ties round alike
            axis = axis % w.ndim
            scale = _broadcast(consts[scale_name].astype(np.float32), w.ndim, axis)
            lo, hi = INT_RANGE[zp.dtype]
            q = np.clip(np.rint(w / scale) + _broadcast(zp, w.ndim, axis), lo, hi).astype(zp.dtype)
            new_inits.append(numpy_helper.from_array(q, f"{x}__q"))
            for user in consumers.get(node.output[0], []):
                user.input[0] = f"{x}__q"
                if user.op_type == "DequantizeLinear" and zp.dtype == np.int8 and not zp.any() and len(user.input) > 2:
                    del user.input[2]  # optional; 0 of the data's type (int8) by default
            drop.append(node)
            folded += 1
        elif zp.dtype == np.int8:  # a signed activation: same grid, uint8 storage
            users = [node, *[c for c in consumers.get(node.output[0], []) if c.op_type == "DequantizeLinear"]]
            for user in [u for u in users if len(u.input) > 2]:
                u8_name = f"{user.input[2]}__u8"
                if u8_name not in consts:
                    consts[u8_name] = (consts[user.input[2]].astype(np.int16) + 128).astype(np.uint8)
                    new_inits.append(numpy_helper.from_array(consts[u8_name], u8_name))
                user.input[2] = u8_name
            converted += 1
    for node in drop:
        graph.node.remove(node)
    graph.initializer.extend(new_inits)
    _merge_duplicates(graph)
    _prune(graph)
    _short_names(graph)
    onnx.checker.check_model(model)
    return model, {"weights_folded": folded, "activations_to_uint8": converted}


def _constants_to_initializers(graph) -> None:
    import onnx

    for node in [n for n in graph.node if n.op_type == "Constant"]:
        if node.attribute and node.attribute[0].name == "value":
            tensor = onnx.TensorProto()
            tensor.CopyFrom(node.attribute[0].t)
            tensor.name = node.output[0]
            graph.initializer.append(tensor)
            graph.node.remove(node)


def _merge_duplicates(graph) -> None:
    """Point every use of an initializer at the first one with the same type, shape and bytes."""
    first: dict[tuple, str] = {}
    alias: dict[str, str] = {}
    for init in graph.initializer:
        name, init.name = init.name, ""
        key = (init.data_type, tuple(init.dims), init.SerializeToString())
        init.name = name
        alias[init.name] = first.setdefault(key, init.name)
    for node in graph.node:
        node.input[:] = [alias.get(name, name) for name in node.input]


def _prune(graph) -> None:
    """Drop the initializers nothing reads any more."""
    used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    for init in [i for i in graph.initializer if i.name not in used]:
        graph.initializer.remove(init)


def _short_names(graph) -> None:
    """Short ids for every tensor except the graph's inputs/outputs and the weights; nodes unnamed."""
    keep = {v.name for v in graph.input} | {v.name for v in graph.output}
    names: dict[str, str] = {}

    def short(name: str) -> str:
        if not name or name in keep:
            return name
        if name.endswith("__q"):  # an int8 weight: keep the parameter's name
            return name[:-3]
        return names.setdefault(name, f"t{len(names)}")

    for node in graph.node:
        node.input[:] = [short(n) for n in node.input]
        node.output[:] = [short(n) for n in node.output]
        node.name = ""
    for init in graph.initializer:
        init.name = short(init.name)
    del graph.value_info[:]


def op_counts(path: str | Path, *, optimized: bool = False, threads: int = 1) -> dict[str, int]:
    """Operator histogram of an ONNX file, or of the graph onnxruntime actually runs (``optimized``)."""
    import tempfile
    from collections import Counter

    import onnx

    from edgegan.runtime.backends import ort_session

    if not optimized:
        return dict(Counter(n.op_type for n in onnx.load(str(path)).graph.node))
    with tempfile.TemporaryDirectory() as tmp:
        opt = Path(tmp) / "optimized.onnx"
        ort_session(path, threads=threads, providers=["CPUExecutionProvider"], optimized_path=opt)
        return dict(Counter(n.op_type for n in onnx.load(str(opt)).graph.node))
