"""The built-in demo dataset: layout, provenance, determinism, disjoint splits, exact ground truth."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgegan.data import demo
from edgegan.data.demo import build_demo_dataset, cartoonize
from edgegan.data.images import list_images, load_rgb
from edgegan.errors import EdgeGANError

pytest.importorskip("skimage")

SIZE, N_TRAIN, N_TEST = 48, 10, 6
FOLDERS = ("trainA", "trainB", "testA", "testA_gt", "testB")


def _build(out: Path, **kw) -> dict:
    args = {"size": SIZE, "n_train": N_TRAIN, "n_test": N_TEST, "seed": 3, "progress": False} | kw
    return build_demo_dataset(out, **args)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "data"
    _build(out)
    return out


def _overlap(a: list[int], b: list[int]) -> bool:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    return ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah


def test_layout_counts_and_sizes(dataset: Path) -> None:
    counts = {"trainA": N_TRAIN, "trainB": N_TRAIN, "testA": N_TEST, "testA_gt": N_TEST, "testB": N_TEST}
    for folder, n in counts.items():
        files = list_images(dataset / folder, role=folder)
        assert [f.name for f in files] == [f"{i:05d}.png" for i in range(n)]
        for f in files:
            assert load_rgb(f).shape == (SIZE, SIZE, 3)
    assert (dataset / "README.md").read_text().startswith("# ")
    # Nothing else was left next to the dataset (no half-built temp folders).
    assert [p.name for p in dataset.parent.iterdir()] == ["data"]


def test_sources_json(dataset: Path) -> None:
    meta = json.loads((dataset / "SOURCES.json").read_text())
    names = {s["name"] for s in meta["sources"]}
    assert names == {s.name for s in demo.SOURCES}
    assert {"astronaut", "grace_hopper", "chelsea", "coffee", "rocket"} <= names  # portraits and photos
    for s in meta["sources"]:
        assert s["package"] in ("scikit-image", "matplotlib") and s["package_version"]
        assert s["licence"] and s["credit"] and s["loader"]
    faces = {s["name"]: s["face_split"] for s in meta["sources"] if "face_box" in s}
    assert faces == {"astronaut": "testA", "grace_hopper": "trainA"}
    params = meta["parameters"]
    assert (params["size"], params["n_train"], params["n_test"], params["seed"]) == (SIZE, N_TRAIN, N_TEST, 3)
    assert meta["edgegan_version"] and meta["style_version"] == demo.STYLE_VERSION
    assert "bilateral" in meta["stylisation"]


def test_face_crops_are_tested_on_a_face_never_trained_on(dataset: Path) -> None:
    info = json.loads((dataset / "crops.json").read_text())
    crops = info["crops"]
    test_faces = [c for c in crops["testA"] if c["face"]]
    assert [c["file"] for c in test_faces] == [f"{i:05d}.png" for i in range(0, N_TEST, demo.FACE_EVERY)]
    assert {c["source"] for c in test_faces} == {"astronaut"}
    assert {c["source"] for c in crops["trainA"] if c["face"]} == {"grace_hopper"}
    assert not any(c["face"] for split in ("trainB", "testB") for c in crops[split])
    # the astronaut's face region is one tile, held out for testA only
    tiles = info["tiles"]["astronaut"]
    face_tile = len(tiles["boxes"]) - 1
    assert tiles["splits"]["testA"].count(face_tile) == 1
    assert all(face_tile not in tiles["splits"][s] for s in ("trainA", "trainB", "testB"))
    fx, fy, fw, fh = next(s.face for s in demo.SOURCES if s.name == "astronaut")
    for c in test_faces:  # every face crop holds the whole detected face
        x, y, w, h = c["box"]
        assert x <= fx and y <= fy and fx + fw <= x + w and fy + fh <= y + h, c


def test_same_seed_gives_byte_identical_files(dataset: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    _build(again)
    files = sorted(p.relative_to(dataset) for p in dataset.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for rel in files:
        assert (dataset / rel).read_bytes() == (again / rel).read_bytes(), rel


def test_other_seed_differs(dataset: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    _build(other, seed=4)
    assert (other / "trainA" / "00000.png").read_bytes() != (dataset / "trainA" / "00000.png").read_bytes()


def test_splits_share_no_pixels(dataset: Path) -> None:
    info = json.loads((dataset / "crops.json").read_text())
    for name, t in info["tiles"].items():
        boxes, splits = t["boxes"], t["splits"]
        for a, b in itertools.combinations(range(len(boxes)), 2):
            assert not _overlap(boxes[a], boxes[b]), (name, a, b)
        for s1, s2 in itertools.combinations(splits, 2):
            assert not set(splits[s1]) & set(splits[s2]), (name, s1, s2)
    crops = info["crops"]
    assert set(crops) == {"trainA", "trainB", "testA", "testB"}
    for split, items in crops.items():
        assert len(items) == (N_TRAIN if split.startswith("train") else N_TEST)
        for c in items:
            # Each crop lies inside a tile of its own split...
            assert c["tile"] in info["tiles"][c["source"]]["splits"][split]
            tx, ty, tw, th = info["tiles"][c["source"]]["boxes"][c["tile"]]
            x, y, w, h = c["box"]
            assert tx <= x and ty <= y and x + w <= tx + tw and y + h <= ty + th
    # ...so no box of one split overlaps a box of another split on the same photo.
    for s1, s2 in itertools.combinations(crops, 2):
        for a in crops[s1]:
            for b in crops[s2]:
                if a["source"] == b["source"]:
                    assert not _overlap(a["box"], b["box"]), (s1, a, s2, b)


def test_crops_json_describes_the_files(dataset: Path) -> None:
    photos = demo.load_source_photos()
    info = json.loads((dataset / "crops.json").read_text())
    for c in info["crops"]["trainA"][:6]:
        x, y, w, h = c["box"]
        photo = photos[c["source"]][y : y + h, x : x + w]
        expected = cv2.resize(photo, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
        if c["flip"]:
            expected = expected[:, ::-1]
        got = load_rgb(dataset / "trainA" / c["file"])
        assert np.abs(got.astype(int) - expected).mean() < 2.0


def test_test_ground_truth_is_exact(dataset: Path) -> None:
    for f in list_images(dataset / "testA", role="testA"):
        np.testing.assert_array_equal(load_rgb(dataset / "testA_gt" / f.name), cartoonize(load_rgb(f)))


def test_cartoons_differ_clearly_from_photos(dataset: Path) -> None:
    photos = np.stack([load_rgb(f) for f in list_images(dataset / "testA", role="testA")])
    cartoons = np.stack([load_rgb(f) for f in list_images(dataset / "testA_gt", role="testA_gt")])
    assert np.abs(photos.astype(int) - cartoons).mean() > 15.0

    def saturation(rgb: np.ndarray) -> float:
        return float(np.mean([cv2.cvtColor(im, cv2.COLOR_RGB2HSV)[..., 1].mean() for im in rgb]))

    assert saturation(cartoons) > 1.2 * saturation(photos)


def test_the_style_is_a_continuous_function_of_the_photo() -> None:
    """What makes the benchmark learnable: a change of one grey level in the photo moves the cartoon by
    about as much, never by a quantisation step or a whole ink line."""
    import skimage.data

    rgb = cv2.resize(skimage.data.astronaut()[:256, 128:384], (64, 64), interpolation=cv2.INTER_AREA)
    noise = np.random.default_rng(0).integers(-1, 2, rgb.shape)
    nudged = np.clip(rgb.astype(int) + noise, 0, 255).astype(np.uint8)
    change = np.abs(cartoonize(rgb).astype(int) - cartoonize(nudged))
    assert change.mean() < 2.0 and np.percentile(change, 99.9) < 40, (change.mean(), change.max())


@pytest.mark.parametrize("size", [64, 256])
def test_cartoonize_keeps_shape_and_is_deterministic(size: int) -> None:
    import skimage.data

    rgb = cv2.resize(skimage.data.chelsea()[:300, :300], (size, size), interpolation=cv2.INTER_AREA)
    out = cartoonize(rgb)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out, cartoonize(rgb.copy()))
    with pytest.raises(ValueError):
        cartoonize(rgb.astype(np.float32))


def test_refuses_to_overwrite(dataset: Path, tmp_path: Path) -> None:
    before = (dataset / "trainA" / "00000.png").read_bytes()
    with pytest.raises(EdgeGANError, match="already exists; remove it or choose another --out"):
        _build(dataset)
    assert (dataset / "trainA" / "00000.png").read_bytes() == before

    out = tmp_path / "old"
    out.mkdir()
    (out / "keep.txt").write_text("old data")
    _build(out, overwrite=True)
    assert not (out / "keep.txt").exists() and (out / "SOURCES.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old"]

    empty = tmp_path / "empty"
    empty.mkdir()
    _build(empty)  # an existing empty folder is fine
    assert (empty / "testB" / "00000.png").exists()


def test_interrupted_build_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    real = demo.cartoonize

    def failing(rgb: np.ndarray) -> np.ndarray:
        calls["n"] += 1
        if calls["n"] > 3:
            raise KeyboardInterrupt
        return real(rgb)

    monkeypatch.setattr(demo, "cartoonize", failing)
    with pytest.raises(KeyboardInterrupt):
        _build(tmp_path / "data")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "kw, fragment",
    [
        ({"size": 16}, "size"),
        ({"size": 2048}, "size"),
        ({"n_train": 0}, "n_train"),
        ({"n_test": 0}, "n_test"),
    ],
)
def test_bad_arguments(tmp_path: Path, kw: dict, fragment: str) -> None:
    with pytest.raises(EdgeGANError, match=fragment) as info:
        _build(tmp_path / "data", **kw)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "data").exists()
