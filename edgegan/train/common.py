"""Machinery every trainer shares: device/precision/process-group set-up, the output folder,
the metrics log, and the resume bookkeeping around checkpoints."""

from __future__ import annotations

import contextlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from edgegan.errors import EdgeGANError
from edgegan.io_utils import write_text_atomic
from edgegan.train.checkpoint import clean_partial_writes, list_checkpoints


@dataclass
class Runtime:
    device: torch.device
    dtype: torch.dtype | None  # autocast dtype, None = fp32
    channels_last: bool
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)


def setup_runtime(device: str = "auto", precision: str = "auto", channels_last: str = "auto") -> Runtime:
    """Pick device and precision; join the torchrun process group when WORLD_SIZE > 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise EdgeGANError(f"--device {device}: CUDA is not available in this torch build/machine; "
                               "use --device cpu")
        dev = torch.device("cuda", local_rank if world > 1 else (torch.device(device).index or 0))
        torch.cuda.set_device(dev)
    elif device == "cpu":
        dev = torch.device("cpu")
    else:
        raise EdgeGANError(f"--device: unknown device {device!r} (use auto, cpu, cuda or cuda:N)")
    if precision == "auto":
        precision = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if dev.type == "cuda" else "fp32"
    if precision == "fp16" and dev.type != "cuda":
        raise EdgeGANError("--precision fp16 needs CUDA; on the CPU use bf16 or fp32")
    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    use_cl = dev.type == "cuda" if channels_last == "auto" else channels_last == "on"
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return Runtime(dev, dtype, use_cl, rank, world, local_rank)


def prepare_out_dir(out: Path, *, resume: bool) -> None:
    """Create ``out`` and make sure it is writable; refuse to silently train over another run."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write_test_{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise EdgeGANError(f"--out {out}: cannot write there ({err.strerror or err})") from err
    ckpts = out / "checkpoints"
    clean_partial_writes(ckpts)
    if list_checkpoints(ckpts) and not resume:
        raise EdgeGANError(f"--out {out}: already holds checkpoints; pass --resume to continue that run "
                           "or choose another --out")


class MetricsLog:
    """``metrics.jsonl``, one JSON object per logged step; on resume, lines past the checkpoint are
    dropped (they belong to steps that will be re-run), as is a line cut short by a kill."""

    def __init__(self, path: Path, *, resume_step: int | None):
        self.path = path
        if resume_step is not None and path.exists():
            kept = []
            for line in path.read_text().splitlines():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if rec.get("step", math.inf) <= resume_step:
                    kept.append(line)
            write_text_atomic(path, "".join(ln + "\n" for ln in kept))
        elif resume_step is None and path.exists():
            path.unlink()
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 (kept open for the run)

    def write(self, record: dict) -> None:
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def read_metrics(path: str | Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def linear_decay_lr(step: int, iters: int, base_lr: float) -> float:
    """Constant for the first half, then linearly to 0 at ``iters`` (U-GAT-IT's schedule)."""
    half = iters // 2
    if step < half or half == 0:
        return base_lr
    return base_lr * max(0.0, 1.0 - (step - half) / max(1, iters - half))


def set_requires_grad(modules, flag: bool) -> None:
    for m in modules:
        for p in m.parameters():
            p.requires_grad_(flag)


def weights_checksum(modules) -> float:
    """A cheap fingerprint of the weights, to check that data-parallel ranks agree."""
    with torch.no_grad():
        return float(sum(p.detach().double().abs().sum().item() + p.detach().double().sum().item()
                         for m in modules for p in m.parameters()))
