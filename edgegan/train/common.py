"""Machinery every trainer shares: device/precision/process-group set-up, the output folder,
the metrics log, the resume bookkeeping around checkpoints, and the pieces of the training loop
that do not depend on what is trained (lr setting, NaN guard, prefetch, progress and cadence)."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.distributed as dist

from edgegan.errors import EdgeGANError
from edgegan.io_utils import write_text_atomic
from edgegan.train.checkpoint import (
    Checkpoint,
    clean_partial_writes,
    list_checkpoints,
    load_optimizers,
    load_weights,
    read_checkpoint,
    set_rng_state,
)

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11

log = logging.getLogger(__name__)


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


@contextlib.contextmanager
def removed_on_failure(out: Path):
    """A run folder this call creates is removed again if the run fails before its first checkpoint (bad
    input found late, Ctrl-C during start-up): a failed command leaves no empty --out behind."""
    existed = out.exists()
    try:
        yield
    except BaseException:
        if not existed and out.is_dir() and not list_checkpoints(out / "checkpoints"):
            shutil.rmtree(out, ignore_errors=True)
        raise


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
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 (open for the run, closed by close())

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


def adam(params, *, lr: float, betas: tuple[float, float], weight_decay: float = 0.0) -> torch.optim.Adam:
    """Adam with the fused kernel: one call for all parameters instead of a loop over them (photo2cartoon's
    generator has ~700 tensors: 60 -> 18 ms per step on one CPU core). Same update rule."""
    return torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=weight_decay, fused=True)


def set_lr(optimizers: Iterable[torch.optim.Optimizer], lr: float) -> None:
    for opt in optimizers:
        for group in opt.param_groups:
            group["lr"] = lr


def set_requires_grad(modules, flag: bool) -> None:
    for m in modules:
        for p in m.parameters():
            p.requires_grad_(flag)


def weights_checksum(modules) -> float:
    """A cheap fingerprint of the weights, to check that data-parallel ranks agree."""
    with torch.no_grad():
        return float(sum(p.detach().double().abs().sum().item() + p.detach().double().sum().item()
                         for m in modules for p in m.parameters()))


# ---------------------------------------------------------------- loop pieces shared by the trainers
def resume_point(out: Path, *, resume: bool, warn: bool = True) -> Checkpoint | None:
    """The newest complete checkpoint in ``out`` when resuming, else None (with a warning if none yet)."""
    found = list_checkpoints(out / "checkpoints") if resume else []
    ckpt = read_checkpoint(found[-1]) if found else None
    if resume and ckpt is None and warn:
        log.warning("--resume: no checkpoint in %s yet, starting from scratch", out)
    return ckpt


def restore(ckpt: Checkpoint, modules: dict[str, torch.nn.Module],
            optimizers: dict[str, torch.optim.Optimizer]) -> int:
    """Weights, optimizer moments and RNG state from ``ckpt``; returns the step to continue from."""
    load_weights(ckpt, modules)
    load_optimizers(ckpt, optimizers)
    set_rng_state(ckpt.state["rng"])
    return ckpt.step


def backward_step(loss: torch.Tensor, opt: torch.optim.Optimizer, scaler=None) -> None:
    """``loss.backward(); opt.step()``, through a GradScaler when training in fp16."""
    if scaler is None:
        loss.backward()
        opt.step()
    else:
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()


def check_finite(values: dict[str, float], keys: Iterable[str], *, step: int, last_path: Path | None) -> None:
    """Stop a diverged run with one actionable line, naming the checkpoint that is still good."""
    bad = [k for k in keys if not math.isfinite(values[k])]
    if bad:
        where = f"; the last checkpoint {last_path} is intact" if last_path else ""
        raise EdgeGANError(f"step {step}: {bad[0]} is {values[bad[0]]} (training diverged){where}; "
                           "resume with a lower --lr or --precision fp32")


def due(done: int, every: int, iters: int) -> bool:
    """Whether a periodic action (log, sample, save) runs after ``done`` steps; ``every`` 0 = never.
    The last step always counts, so a finished run ends with a fresh sample and checkpoint."""
    return bool(every) and (done % every == 0 or done == iters)


class Prefetcher:
    """Loads step ``s + 1``'s batch in a background thread while step ``s`` trains.

    ``fetch(step)`` must be a pure function of the step (the data samplers are), so the prefetch
    changes nothing about what is trained on. Use as a context manager.
    """

    def __init__(self, fetch: Callable[[int], object], start: int, stop: int):
        self._fetch, self._stop = fetch, stop
        self._pool = ThreadPoolExecutor(max_workers=1)
        self._pending = self._pool.submit(fetch, start) if start < stop else None

    def get(self, step: int):
        """The batch of ``step`` (steps must come in order, starting at ``start``)."""
        batch = self._pending.result()
        self._pending = self._pool.submit(self._fetch, step + 1) if step + 1 < self._stop else None
        return batch

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class StepLog:
    """What a trainer reports each step: a tqdm bar (optional) and ``metrics.jsonl`` lines every
    ``log_every`` steps and at the last one, each with the seconds per iteration since the previous.

    ``metrics`` None (e.g. on non-main ranks) writes no file; ``postfix`` maps bar labels to loss keys.
    """

    def __init__(self, metrics: MetricsLog | None, *, start: int, iters: int, log_every: int, desc: str,
                 progress: bool, postfix: dict[str, str]):
        self.metrics, self.iters, self.log_every, self.postfix = metrics, iters, log_every, postfix
        self.bar = None
        if progress:
            from tqdm import tqdm

            self.bar = tqdm(total=iters, initial=start, desc=desc, unit="it", dynamic_ncols=True)
        self._t_last, self._since = time.perf_counter(), 0

    def step(self, done: int, lr: float, values: dict[str, float]) -> None:
        self._since += 1
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(**{label: f"{values[key]:.3f}" for label, key in self.postfix.items()},
                                 lr=f"{lr:.1e}")
        if self.metrics is not None and due(done, self.log_every, self.iters):
            now = time.perf_counter()
            self.metrics.write({"step": done, "lr": lr, **values,
                                "sec_per_iter": round((now - self._t_last) / self._since, 4)})
            self._t_last, self._since = now, 0

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.metrics is not None:
            self.metrics.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
