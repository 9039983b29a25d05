"""Atomic, pickle-free checkpoints shared by every trainer (teacher, student, QAT).

A checkpoint is a directory ``checkpoints/step_NNNNNNN/`` holding
- ``weights.safetensors``: every network's state dict under ``<name>.``, config in the metadata;
- ``optim.safetensors``: optimizer tensors (Adam moments, step counts);
- ``state.json``: step, optimizer hyper-parameters, grad-scaler and RNG state, anything else.
It is written into a hidden temp directory and renamed into place, so a run killed at any
moment (even ``kill -9`` mid-write) leaves only complete checkpoints behind.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file
from torch import nn

from edgegan.errors import CheckpointError
from edgegan.io_utils import write_json_atomic

_STEP_DIR = re.compile(r"^step_(\d{7,})$")
FORMAT = "edgegan-checkpoint-v1"


@dataclass
class Checkpoint:
    path: Path
    step: int
    config: dict
    state: dict

    def generator_spec(self, direction: str = "A2B") -> tuple[str, dict]:
        """(saved network name, {"name", "kwargs"} registry spec) of the generator translating ``direction``."""
        translators = self.state.get("translators") or {}
        if direction not in translators:
            have = ", ".join(translators) or "none"
            raise CheckpointError(f"{self.path}: has no {direction} generator (directions: {have})")
        name = translators[direction]
        return name, self.state["models"][name]

    def trained_size(self, direction: str = "A2B") -> int:
        """The side (px) the ``direction`` generator was trained at: its ``img_size`` (every teacher and
        student checkpoint saves it), else the saved config's ``size`` (a training run's; a distill run's
        0 means "the teacher's" and answers nothing). A QAT checkpoint has no generators: its config's size."""
        kwargs = self.generator_spec(direction)[1].get("kwargs", {}) if self.state.get("translators") else {}
        size = kwargs.get("img_size") or self.config.get("size")
        if not size:
            raise CheckpointError(f"{self.path}: does not say what size its {direction} generator was trained at "
                                  "(no img_size in its spec, no size in its config)")
        return int(size)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _flatten_optimizer(name: str, opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, slots in sd["state"].items():
        for key, value in slots.items():
            if torch.is_tensor(value):
                tensors[f"{name}.{idx}.{key}"] = value.detach().contiguous().cpu()
            else:
                scalars[f"{idx}.{key}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _unflatten_optimizer(name: str, tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict] = {}
    prefix = name + "."
    for key, value in tensors.items():
        if key.startswith(prefix):
            idx, slot = key[len(prefix):].split(".", 1)
            state.setdefault(int(idx), {})[slot] = value
    for key, value in meta.get("scalars", {}).items():
        idx, slot = key.split(".", 1)
        state.setdefault(int(idx), {})[slot] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def rng_state() -> dict:
    state = {"torch": base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode()}
    if torch.cuda.is_available():
        state["cuda"] = [base64.b64encode(s.numpy().tobytes()).decode() for s in torch.cuda.get_rng_state_all()]
    return state


def set_rng_state(state: dict) -> None:
    import numpy as np

    def decode(s: str) -> torch.Tensor:
        return torch.from_numpy(np.frombuffer(base64.b64decode(s), dtype=np.uint8).copy())

    torch.set_rng_state(decode(state["torch"]))
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([decode(s) for s in state["cuda"]])


def save_checkpoint(
    root: Path, step: int, *, modules: dict[str, nn.Module], optimizers: dict[str, torch.optim.Optimizer],
    config: dict, state: dict | None = None, keep: int = 3,
) -> Path:
    """Write ``root/step_NNNNNNN`` atomically and prune all but the newest ``keep`` checkpoints."""
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step:07d}"
    tmp = root / f".tmp_step_{step:07d}_{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        weights = {f"{name}.{k}": v.detach().contiguous().cpu()
                   for name, m in modules.items() for k, v in m.state_dict().items()}
        meta = {"format": FORMAT, "step": str(step), "config": json.dumps(config),
                "modules": ",".join(modules)}
        save_file(weights, tmp / "weights.safetensors", metadata=meta)
        opt_tensors, opt_meta = {}, {}
        for name, opt in optimizers.items():
            tensors, meta_o = _flatten_optimizer(name, opt)
            opt_tensors.update(tensors)
            opt_meta[name] = meta_o
        save_file(opt_tensors, tmp / "optim.safetensors", metadata={"format": FORMAT})
        full_state = {"format": FORMAT, "step": step, "config": config, "optimizers": opt_meta,
                      "rng": rng_state(), **(state or {})}
        write_json_atomic(tmp / "state.json", full_state)
        _fsync_dir(tmp)
        if final.exists():  # re-saving the same step (e.g. final save after a periodic one)
            shutil.rmtree(final)
        os.rename(tmp, final)
        _fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in list_checkpoints(root)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(root: Path) -> list[Path]:
    """Complete checkpoints under ``root``, oldest first (temp dirs of killed writes are ignored)."""
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if (m := _STEP_DIR.match(p.name)) and p.is_dir()]
    return [p for _, p in sorted(found)]


def clean_partial_writes(root: Path) -> None:
    if root.is_dir():
        for p in root.glob(".tmp_step_*"):
            shutil.rmtree(p, ignore_errors=True)


def resolve_checkpoint(path: str | Path) -> Path:
    """Accept a run dir, its ``checkpoints/`` dir, a ``step_*`` dir or a ``weights.safetensors`` file."""
    p = Path(path)
    if p.is_file() and p.name.endswith(".safetensors"):
        p = p.parent
    if (p / "weights.safetensors").is_file():
        return p
    for root in (p / "checkpoints", p):
        found = list_checkpoints(root)
        if found:
            return found[-1]
    raise CheckpointError(f"{path}: no checkpoint found (expected a run folder or a step_* folder)")


def read_checkpoint(path: str | Path) -> Checkpoint:
    ckpt_dir = resolve_checkpoint(path)
    state_file = ckpt_dir / "state.json"
    try:
        state = json.loads(state_file.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{state_file}: unreadable checkpoint state ({err})") from err
    if state.get("format") != FORMAT:
        raise CheckpointError(f"{state_file}: not an EdgeGAN checkpoint (format {state.get('format')!r})")
    return Checkpoint(ckpt_dir, int(state["step"]), state["config"], state)


def load_weights(ckpt: Checkpoint, modules: dict[str, nn.Module], *, strict: bool = True) -> None:
    """Load each module's tensors (only those); a shape or key mismatch names the file and module."""
    file = ckpt.path / "weights.safetensors"
    try:
        with safe_open(file, "pt") as f:
            keys = list(f.keys())
            for name, module in modules.items():
                prefix = name + "."
                sd = {k[len(prefix):]: f.get_tensor(k) for k in keys if k.startswith(prefix)}
                if not sd and strict:
                    raise CheckpointError(f"{file}: holds no weights for {name!r} "
                                          f"(has: {(f.metadata() or {}).get('modules', '?')})")
                _load_state(module, sd, strict, file, name)
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{file}: corrupt or unreadable safetensors file ({err})") from err


def _load_state(module: nn.Module, sd: dict, strict: bool, file: Path, name: str) -> None:
    try:
        module.load_state_dict(sd, strict=strict)
    except RuntimeError as err:
        lines = str(err).strip().splitlines()
        detail = next((ln.strip() for ln in lines if "size mismatch" in ln or "Missing" in ln
                       or "Unexpected" in ln), lines[0] if lines else "")
        raise CheckpointError(f"{file}: weights for {name!r} do not fit the configured model "
                              f"({detail[:200]})") from err


def load_generator(path: str | Path, direction: str = "A2B") -> tuple[nn.Module, Checkpoint]:
    """Rebuild the generator that translates ``direction`` from a checkpoint alone, in eval mode."""
    from edgegan.models import create_model

    ckpt = read_checkpoint(path)
    name, spec = ckpt.generator_spec(direction)
    model = create_model(spec["name"], **spec["kwargs"])
    load_weights(ckpt, {name: model})
    return model.eval(), ckpt


def load_optimizers(ckpt: Checkpoint, optimizers: dict[str, torch.optim.Optimizer]) -> None:
    file = ckpt.path / "optim.safetensors"
    try:
        tensors = load_file(file)
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{file}: corrupt or unreadable safetensors file ({err})") from err
    for name, opt in optimizers.items():
        meta = ckpt.state["optimizers"].get(name)
        if meta is None:
            raise CheckpointError(f"{ckpt.path}: no optimizer state for {name!r}")
        try:
            opt.load_state_dict(_unflatten_optimizer(name, tensors, meta))
        except (ValueError, KeyError) as err:
            raise CheckpointError(f"{file}: optimizer {name!r} does not fit the model ({err})") from err
