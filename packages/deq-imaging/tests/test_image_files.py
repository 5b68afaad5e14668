"""Image files the folder loader reads or refuses by name: integer TIFFs of every width and byte order,
decompression bombs, a file given where a folder is expected."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from deq_imaging.datasets import load_folder, read_image

# Pillow opens these as I;16B / I;16 (16-bit unsigned) or widens them to its signed 32-bit mode "I".
INTEGER_TIFFS = [">u2", "<u2", ">i2", "<i2", "<u4", ">i4", "<i4"]


@pytest.mark.parametrize("dtype", INTEGER_TIFFS)
def test_integer_tiffs_scale_by_their_type_maximum(tmp_path, dtype):
    tifffile = pytest.importorskip("tifffile")
    top = np.iinfo(dtype).max
    pixels = np.array([[0, 1, 7], [top // 3, top - 1, top]], dtype=dtype)
    tifffile.imwrite(tmp_path / "a.tif", pixels)
    im = read_image(tmp_path / "a.tif")
    assert im.dtype == np.float32 and im.shape == (1, 2, 3)
    np.testing.assert_allclose(im[0], pixels.astype(np.float64) / top, rtol=1e-6, atol=0)
    assert load_folder(tmp_path).images[0].tobytes() == im.tobytes()


def test_big_endian_16_bit_tiff_written_by_pillow(tmp_path):
    pixels = np.array([[0, 300, 65535]], dtype=">u2")
    Image.frombytes("I;16B", (3, 1), pixels.tobytes()).save(tmp_path / "b.tiff")
    np.testing.assert_allclose(read_image(tmp_path / "b.tiff")[0], pixels / 65535.0, rtol=1e-6)


def test_signed_tiff_with_negative_pixels_is_refused_by_name(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    tifffile.imwrite(tmp_path / "neg.tif", np.array([[-5, 10]], dtype=">i2"))
    with pytest.raises(ValueError, match=r"neg\.tif: int16 image has negative pixel values"):
        read_image(tmp_path / "neg.tif")


def test_decompression_bomb_names_the_file_and_the_limit(tmp_path, monkeypatch):
    Image.fromarray(np.zeros((8, 9), dtype=np.uint8)).save(tmp_path / "huge.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 30)  # 72 pixels > 2 * 30: Pillow's error, not its warning
    limit = r"2 \* PIL\.Image\.MAX_IMAGE_PIXELS = 60 pixels"
    with pytest.raises(ValueError, match=rf"huge\.png: image too large to read: .*{limit}"):
        load_folder(tmp_path)


def test_load_folder_of_a_file_says_it_is_a_file(tmp_path):
    Image.fromarray(np.zeros((4, 4), dtype=np.uint8)).save(tmp_path / "one.png")
    with pytest.raises(ValueError, match=r"one\.png is a file, not an image folder"):
        load_folder(tmp_path / "one.png")
    with pytest.raises(ValueError, match="image folder not found"):
        load_folder(tmp_path / "missing")
