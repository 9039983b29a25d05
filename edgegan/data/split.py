"""``edgegan data split``: hold out a random part of ``trainA/`` and ``trainB/`` as ``testA/`` and ``testB/``.

Files are moved (``os.replace``: one rename each, never a half-copied image), chosen by a seeded
shuffle of the sorted names, so the same folder and seed always give the same split.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from edgegan.data.images import list_images
from edgegan.errors import EdgeGANError


def _test_count(n: int, test: float, role: str) -> int:
    if test <= 0:
        raise EdgeGANError(f"--test: must be > 0 (a share below 1 or a count), got {test:g}")
    if test >= 1 and test != int(test):
        raise EdgeGANError(f"--test: a count must be a whole number, got {test:g}")
    k = max(1, round(n * test)) if test < 1 else int(test)
    if k >= n:
        raise EdgeGANError(f"{role}: holds {n} image(s); holding out {k} would leave none to train on")
    return k


def split_dataset(root: str | Path, *, test: float = 0.05, seed: int = 0) -> dict[str, dict[str, int]]:
    """Move ``test`` (a share, or a count when >= 1) of each of ``root/trainA``, ``root/trainB`` into
    ``root/testA``, ``root/testB``. Returns {domain: {"train": n, "test": n}}.

    Checks everything before moving anything: both train folders hold images, neither test folder
    holds any yet (a second split would shrink the training set again).
    """
    root = Path(root)
    if not root.is_dir():
        raise EdgeGANError(f"{root}: no such folder")
    plan = {}
    for domain in ("A", "B"):
        train, held = root / f"train{domain}", root / f"test{domain}"
        files = list_images(train, role=f"train{domain}")
        if held.is_file():
            raise EdgeGANError(f"test{domain}: {held} is a file, not a folder")
        if held.is_dir() and any(p.is_file() and not p.name.startswith(".") for p in held.iterdir()):
            raise EdgeGANError(f"test{domain}: {held} already holds files; the data looks split already")
        k = _test_count(len(files), test, f"train{domain}")
        order = np.random.default_rng([seed, ord(domain)]).permutation(len(files))
        plan[domain] = (held, [files[i] for i in sorted(order[:k])], len(files) - k)
    result = {}
    for domain, (held, chosen, n_train) in plan.items():
        held.mkdir(exist_ok=True)
        for path in chosen:
            os.replace(path, held / path.name)
        result[f"train{domain}/test{domain}"] = {"train": n_train, "test": len(chosen)}
    return result
