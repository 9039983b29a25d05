"""Run configurations (``train``'s, with presets as data; ``distill``'s), saved next to the checkpoints.
Torch-free: the CLI's --help states their defaults from here."""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from edgegan.errors import EdgeGANError


class SavedConfig:
    """A run config that round-trips through the run's ``config.json`` (tuples are JSON lists there;
    keys a newer or older version added are ignored). Paths in ``PATH_FIELDS`` are saved resolved, so a
    run resumes from any working directory."""

    PATH_FIELDS: ClassVar[tuple[str, ...]] = ()
    COMMAND: ClassVar[str] = ""  # the command that resumes such a run
    MARKER: ClassVar[str] = ""  # a key only this kind of run's config.json has
    SHOWN: ClassVar[dict[str, str]] = {}  # what a field's default means where its value does not say

    @classmethod
    def shown_default(cls, name: str) -> str:
        """Field ``name``'s default as a --help text states it, so a default is written once: here."""
        if name in cls.SHOWN:
            return cls.SHOWN[name]
        return _shown({f.name: f for f in dataclasses.fields(cls)}[name].default)

    def to_dict(self) -> dict:
        d = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}
        for k in self.PATH_FIELDS:
            if d.get(k):
                d[k] = str(Path(d[k]).expanduser().resolve())
        return d

    @classmethod
    def from_dict(cls, d: dict):
        fields = {f.name: f for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in fields}
        for k, v in kw.items():
            if isinstance(v, list) and isinstance(getattr(cls, k, None), tuple):
                kw[k] = tuple(v)
        return cls(**kw)


def _shown(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value) if value != "" else "''"


def saved_run_config(cls, out: str, overrides: dict, arch_fields: tuple[str, ...], *, verb: str):
    """The config saved in ``out/config.json`` (None if there is none), after checking that ``overrides``
    change none of ``arch_fields``: a run only resumes with the networks it was ``verb`` with."""
    import json

    from edgegan.errors import CheckpointError

    saved = Path(out) / "config.json"
    if not saved.is_file():
        return None
    try:
        raw = json.loads(saved.read_text())
        base = cls.from_dict(raw)
    except (json.JSONDecodeError, TypeError) as err:
        raise CheckpointError(f"{saved}: unreadable run config ({err})") from err
    if cls.MARKER and cls.MARKER not in raw:
        other = next((c for c in SavedConfig.__subclasses__() if c.MARKER and c.MARKER in raw), None)
        what = f"an `edgegan {other.COMMAND}` run: resume it with `edgegan {other.COMMAND} --resume`" if other else \
            "not a run this command wrote"
        raise CheckpointError(f"--resume: {out} is {what}")

    def same(key, a, b) -> bool:  # paths: the same file however spelt (a relative one from an older run: from here)
        if key in cls.PATH_FIELDS and a and b:
            return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()
        return a == b

    for key in arch_fields:
        if key in overrides and not same(key, overrides[key], getattr(base, key)):
            flag = "--" + key.replace("_", "-")
            raise CheckpointError(f"{flag} {overrides[key]}: the run in {out} was {verb} with "
                                  f"{key}={getattr(base, key)}; drop the flag or choose another --out")
    return base


@dataclass
class TrainConfig(SavedConfig):
    PATH_FIELDS: ClassVar[tuple[str, ...]] = ("data",)
    COMMAND: ClassVar[str] = "train"
    MARKER: ClassVar[str] = "preset"

    data: str = ""
    out: str = "runs/train"
    preset: str = "ugatit-light"
    generator: str = "ugatit-light"  # registry name, set by the preset
    size: int = 256
    ngf: int = 64
    ndf: int = 64
    n_res: int = 4
    iters: int = 100_000
    batch: int = 1
    lr: float = 1e-4
    weight_decay: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.999)
    adv_weight: float = 1.0
    cycle_weight: float = 10.0
    identity_weight: float = 10.0
    cam_weight: float = 1000.0
    # EdgeGAN's recipe (off in the paper's presets): identity-start generators, an EMA copy of them for
    # samples/eval/export, DiffAugment of the discriminators' inputs, a faster discriminator (TTUR).
    skip: bool = False
    color_mlp: int = 0  # hidden width of the per-pixel colour path (needs skip); 0 = off
    ema_decay: float = 0.0  # 0 = off
    diffaug: str = ""  # comma-separated: color, translation, cutout
    d_lr_mult: float = 1.0
    face_id_weight: float = 0.0  # photo2cartoon's face-ID loss; 0 = off (no ID network is loaded)
    id_model: str = "dlib"  # "dlib" (packaged dlib ResNet) or a MobileFaceNet state-dict path
    face_id_crop: float = 0.75  # central fraction of each side the ID network sees (data prepare's layout)
    save_every: int = 1000
    sample_every: int = 500
    log_every: int = 10
    n_samples: int = 4
    keep_checkpoints: int = 3
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "auto"  # auto (bf16/fp16 on CUDA, fp32 on CPU) | fp32 | bf16 | fp16
    channels_last: str = "auto"  # auto (on for CUDA) | on | off
    cache_mb: float = 1024
    extra: dict = field(default_factory=dict)

    @classmethod
    def shown_default(cls, name: str) -> str:
        """The dataclass's default, after the value of each preset that sets another."""
        base = super().shown_default(name)
        own = {p: _shown(v[name]) for p, v in PRESETS.items() if name in v and _shown(v[name]) != base}
        return f"the preset's: {', '.join(f'{p} {v}' for p, v in own.items())}, others {base}" if own else base


@dataclass
class DistillConfig(SavedConfig):
    PATH_FIELDS: ClassVar[tuple[str, ...]] = ("teacher", "data")
    COMMAND: ClassVar[str] = "distill"
    MARKER: ClassVar[str] = "teacher"
    SHOWN: ClassVar[dict[str, str]] = {"size": "the teacher's"}

    teacher: str = ""  # a checkpoint with an A2B generator; pinned to its step_* folder at the start
    data: str = ""  # only trainA/ (and testA/ for samples) are used
    out: str = "runs/distill"
    student: str = "mobile-s"  # registry name
    student_kwargs: dict = field(default_factory=dict)  # e.g. {"width": 0.75}
    size: int = 0  # training crop; 0 = the teacher's size
    iters: int = 3000
    batch: int = 8  # BatchNorm statistics need a batch; 1 would make train and eval behave differently
    lr: float = 2e-3
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    pixel_weight: float = 1.0
    feature_weight: float = 1.0
    adv_weight: float = 0.0  # > 0: LSGAN term through the teacher's frozen domain-B discriminators
    save_every: int = 500
    sample_every: int = 500
    log_every: int = 10
    n_samples: int = 4
    keep_checkpoints: int = 3
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    channels_last: str = "auto"
    cache_mb: float = 1024


# Fields that define the networks: a checkpoint only resumes under the same values.
ARCH_FIELDS = ("preset", "generator", "size", "ngf", "ndf", "n_res", "skip", "color_mlp", "ema_decay")

PRESETS: dict[str, dict] = {
    # EdgeGAN's recipe, chosen by ablation on the demo data (benchmarks/convergence.py): the light
    # generator started at the identity with a per-pixel colour path, identity loss 1 (at 10 it pins an
    # identity-start generator where it starts: the L1 pull back is as strong as any step away), a CAM
    # weight its generator can live with (at 1000 the unsolvable half of G's CAM loss, 2 ln 2 at best,
    # dominated the encoder's gradient ~140x), an EMA copy for samples/eval/export, DiffAugment
    # (translation + cutout) for the discriminators.
    "edgegan": {"generator": "ugatit-light", "skip": True, "color_mlp": 16, "identity_weight": 1.0,
                "cam_weight": 10.0, "ema_decay": 0.999, "diffaug": "translation,cutout"},
    # The paper's recipe, unchanged.
    "ugatit-light": {"generator": "ugatit-light"},
    "ugatit": {"generator": "ugatit"},
    # photo2cartoon's published settings: stronger cycle term, face-ID loss, ngf 32
    "photo2cartoon": {"generator": "photo2cartoon", "ngf": 32, "cycle_weight": 50.0, "identity_weight": 10.0,
                      "cam_weight": 1000.0, "face_id_weight": 1.0},
}


DEFAULT_PRESET = "edgegan"


def preset_config(preset: str, **overrides) -> TrainConfig:
    if preset not in PRESETS:
        close = difflib.get_close_matches(preset, PRESETS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise EdgeGANError(f"--preset: unknown preset {preset!r}{hint}; available: {', '.join(PRESETS)}")
    return validate(TrainConfig(preset=preset, **{**PRESETS[preset], **overrides}))


def validate(cfg: TrainConfig) -> TrainConfig:
    checks = [
        (cfg.size >= 32 and cfg.size % 4 == 0, "--size", f"must be a multiple of 4 and >= 32, got {cfg.size}"),
        (cfg.ngf >= 1, "--ngf", f"must be >= 1, got {cfg.ngf}"),
        (cfg.ndf >= 1, "--ndf", f"must be >= 1, got {cfg.ndf}"),
        (cfg.n_res >= 1, "--n-res", f"must be >= 1, got {cfg.n_res}"),
        (cfg.iters >= 1, "--iters", f"must be >= 1, got {cfg.iters}"),
        (cfg.batch >= 1, "--batch", f"must be >= 1, got {cfg.batch}"),
        (cfg.lr > 0, "--lr", f"must be > 0, got {cfg.lr}"),
        (cfg.d_lr_mult > 0, "--d-lr-mult", f"must be > 0, got {cfg.d_lr_mult}"),
        (0 <= cfg.ema_decay < 1, "--ema-decay", f"must be in [0, 1) (0 = off), got {cfg.ema_decay}"),
        (not cfg.skip or cfg.generator == "ugatit-light", "--skip",
         f"the identity-start skip exists for ugatit-light only, not {cfg.generator}"),
        (cfg.color_mlp >= 0 and (cfg.skip or not cfg.color_mlp), "--color-mlp",
         f"must be >= 0 and needs --skip, got {cfg.color_mlp}"),
        (cfg.save_every >= 1, "--save-every", f"must be >= 1, got {cfg.save_every}"),
        (cfg.sample_every >= 0, "--sample-every", f"must be >= 0 (0 = off), got {cfg.sample_every}"),
        (cfg.precision in ("auto", "fp32", "bf16", "fp16"), "--precision",
         f"must be auto, fp32, bf16 or fp16, got {cfg.precision!r}"),
        (cfg.channels_last in ("auto", "on", "off"), "--channels-last",
         f"must be auto, on or off, got {cfg.channels_last!r}"),
        (cfg.face_id_weight >= 0, "--face-id-weight", f"must be >= 0 (0 = off), got {cfg.face_id_weight}"),
        (0.1 <= cfg.face_id_crop <= 1.0, "--face-id-crop", f"must be in [0.1, 1], got {cfg.face_id_crop}"),
        (cfg.generator != "photo2cartoon" or cfg.size % 16 == 0, "--size",
         f"must be a multiple of 16 for photo2cartoon (hourglass blocks), got {cfg.size}"),
        (cfg.generator != "photo2cartoon" or cfg.ngf >= 4, "--ngf",
         f"must be >= 4 for photo2cartoon, got {cfg.ngf}"),
    ]
    for ok, flag, msg in checks:
        if not ok:
            raise EdgeGANError(f"{flag}: {msg}")
    from edgegan.train.recipe import parse_policy

    parse_policy(cfg.diffaug)
    return cfg


def resolve_config(*, out: str, preset: str | None, overrides: dict, resume: bool) -> TrainConfig:
    """The config a ``train`` call means: on ``--resume`` the saved one, with only non-architecture
    flags allowed to change (e.g. ``--iters`` to train longer); otherwise the preset's defaults."""
    from edgegan.errors import CheckpointError

    base = saved_run_config(TrainConfig, out, overrides, ARCH_FIELDS, verb="trained") if resume else None
    if base is not None:
        if preset is not None and preset != base.preset:
            raise CheckpointError(f"--preset {preset}: the run in {out} was trained with preset {base.preset!r}")
        return validate(dataclasses.replace(base, **overrides))
    return preset_config(preset or DEFAULT_PRESET, **overrides)
