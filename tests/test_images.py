"""Image I/O: every bad file becomes one ImageError naming it; every good mode becomes 8-bit RGB."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from edgegan.data.images import list_images, load_rgb, save_png_atomic
from edgegan.errors import EdgeGANError, ImageError
from edgegan.io_utils import write_json_atomic


def _noise(h: int = 64, w: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _assert_image_error(path: Path, fragment: str) -> None:
    with pytest.raises(ImageError) as info:
        load_rgb(path)
    message = str(info.value)
    assert message.startswith(str(path)), message
    assert "\n" not in message
    assert fragment in message


# --------------------------------------------------------------------------- bad files


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    _assert_image_error(path, "empty file (0 bytes)")


def test_missing_file(tmp_path: Path) -> None:
    _assert_image_error(tmp_path / "nope.png", "no such file")


def test_text_file_named_jpg(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a picture\n")
    _assert_image_error(path, "not an image")


@pytest.mark.parametrize("fmt, suffix", [("PNG", ".png"), ("JPEG", ".jpg")])
def test_truncated_image(tmp_path: Path, fmt: str, suffix: str) -> None:
    path = tmp_path / f"cut{suffix}"
    Image.fromarray(_noise()).save(path, fmt)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    _assert_image_error(path, "truncated or corrupt")


def test_decompression_bomb_is_refused_from_the_header(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    Image.fromarray(_noise(4, 4)).save(path)
    data = bytearray(path.read_bytes())
    # Rewrite the IHDR size to 20000 x 20000 (400 MP) and fix its CRC.
    data[16:24] = struct.pack(">II", 20000, 20000)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    _assert_image_error(path, "too large")


# --------------------------------------------------------------------------- mode conversion


def test_rgb_png_round_trip(tmp_path: Path) -> None:
    rgb = _noise(32, 48)
    path = tmp_path / "rgb.png"
    Image.fromarray(rgb).save(path)
    out = load_rgb(path)
    assert out.dtype == np.uint8 and out.shape == (32, 48, 3)
    np.testing.assert_array_equal(out, rgb)


def test_16bit_grey_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    grey = np.zeros((8, 8), np.uint16)
    grey[:, :3] = 65535
    grey[:, 3:6] = 32768
    path = tmp_path / "grey16.png"
    assert cv2.imwrite(str(path), grey)
    out = load_rgb(path)
    assert out.shape == (8, 8, 3) and out.dtype == np.uint8
    assert (out[:, :3] == 255).all()
    assert (np.abs(out[:, 3:6].astype(int) - 128) <= 1).all()
    assert (out[:, 6:] == 0).all()


def test_16bit_rgb_png(tmp_path: Path) -> None:
    bgr16 = np.zeros((4, 4, 3), np.uint16)
    bgr16[..., 2] = 65535  # red, in OpenCV's BGR order
    bgr16[..., 1] = 32768
    path = tmp_path / "rgb16.png"
    assert cv2.imwrite(str(path), bgr16)
    out = load_rgb(path)
    assert (out[..., 0] == 255).all()
    assert (np.abs(out[..., 1].astype(int) - 128) <= 1).all()
    assert (out[..., 2] == 0).all()


def test_grey_png_becomes_three_equal_channels(tmp_path: Path) -> None:
    grey = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    path = tmp_path / "grey.png"
    Image.fromarray(grey, "L").save(path)
    out = load_rgb(path)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], grey)


def test_rgba_transparent_pixels_become_white(tmp_path: Path) -> None:
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200  # red-ish everywhere
    rgba[:2, :, 3] = 0  # top half fully transparent
    rgba[2:, :, 3] = 255
    path = tmp_path / "rgba.png"
    Image.fromarray(rgba, "RGBA").save(path)
    out = load_rgb(path)
    assert (out[:2] == 255).all()
    assert (out[2:] == [200, 0, 0]).all()


def test_palette_png(tmp_path: Path) -> None:
    colours = np.array([[255, 0, 0], [0, 128, 255], [20, 200, 30], [250, 250, 10]], np.uint8)
    idx = np.arange(16).reshape(4, 4) % 4
    im = Image.fromarray(idx.astype(np.uint8), "P")
    im.putpalette(colours.flatten().tolist())
    path = tmp_path / "pal.png"
    im.save(path)
    np.testing.assert_array_equal(load_rgb(path), colours[idx])


def test_palette_png_with_transparency(tmp_path: Path) -> None:
    im = Image.fromarray((np.arange(16).reshape(4, 4) % 2).astype(np.uint8), "P")
    im.putpalette([0, 0, 255, 10, 20, 30])
    path = tmp_path / "pal_t.png"
    im.save(path, transparency=0)
    out = load_rgb(path)
    assert (out[:, 0::2] == 255).all()  # index 0 is transparent -> white
    assert (out[:, 1::2] == [10, 20, 30]).all()


def test_cmyk_jpeg(tmp_path: Path) -> None:
    cmyk = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # pure red ink-wise
    path = tmp_path / "cmyk.jpg"
    cmyk.save(path, "JPEG", quality=95)
    out = load_rgb(path).astype(int)
    assert out.shape == (16, 16, 3)
    assert (np.abs(out - [255, 0, 0]) <= 12).all(), out[0, 0]


def test_exif_rotated_jpeg(tmp_path: Path) -> None:
    # Stored landscape, left half red / right half blue; orientation 6 means "rotate 90° CW to show".
    rgb = np.zeros((20, 40, 3), np.uint8)
    rgb[:, :20] = [255, 0, 0]
    rgb[:, 20:] = [0, 0, 255]
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    Image.fromarray(rgb).save(path, "JPEG", quality=95, exif=exif.tobytes())
    out = load_rgb(path).astype(int)
    assert out.shape == (40, 20, 3)
    assert (np.abs(out[5, 10] - [255, 0, 0]) < 40).all()  # the left half is now on top
    assert (np.abs(out[35, 10] - [0, 0, 255]) < 40).all()


# --------------------------------------------------------------------------- folders and saving


def test_list_images_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(EdgeGANError, match=r"^trainA: folder .*nowhere does not exist$"):
        list_images(tmp_path / "nowhere", role="trainA")


def test_list_images_folder_without_images(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "sub.png").mkdir()  # a folder with an image-like name is not an image
    with pytest.raises(EdgeGANError, match="holds no image files") as info:
        list_images(tmp_path, role="trainB")
    assert str(tmp_path) in str(info.value) and str(info.value).startswith("trainB: ")


def test_list_images_filters_and_sorts(tmp_path: Path) -> None:
    for name in ["b.PNG", "a.jpg", "c.jpeg", "d.webp", "notes.txt", ".hidden.png", "model.pt"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "e.png").write_bytes(b"x")
    names = [p.name for p in list_images(tmp_path, role="testA")]
    assert names == ["a.jpg", "b.PNG", "c.jpeg", "d.webp"]


def test_save_png_atomic_round_trip_leaves_no_temp_file(tmp_path: Path) -> None:
    rgb = _noise(24, 40)
    path = tmp_path / "out.png"
    save_png_atomic(path, rgb)
    save_png_atomic(path, rgb[::-1].copy())  # overwriting works too
    np.testing.assert_array_equal(load_rgb(path), rgb[::-1])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


def test_save_png_atomic_cleans_up_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "taken.png"
    target.mkdir()  # os.replace onto a folder fails after the temp file was written
    with pytest.raises(OSError):
        save_png_atomic(target, _noise(8, 8))
    with pytest.raises(ValueError):
        save_png_atomic(tmp_path / "bad.png", np.zeros((8, 8), np.float32))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken.png"]


def test_write_json_atomic(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    write_json_atomic(path, {"b": 1, "a": [1, 2]})
    text = path.read_text()
    assert text.endswith("}\n") and text.index('"b"') < text.index('"a"')
    assert json.loads(text) == {"b": 1, "a": [1, 2]}
