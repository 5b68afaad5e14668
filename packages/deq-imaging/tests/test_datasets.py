"""Datasets: packaged images, splits, patches, phantoms, folder errors, benchmarks, degraded pairs."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from deq_imaging.datasets import (
    DegradedPairs,
    ImageSet,
    lfw_faces,
    load_benchmark,
    load_folder,
    random_ellipses,
    shepp_logan,
    skimage_images,
)
from deq_imaging.operators import reference as R
from deq_imaging.operators.kernels import gaussian_kernel


def test_skimage_images_gray_and_rgb():
    gray, rgb = skimage_images("gray"), skimage_images("rgb")
    assert len(gray) >= 15 and len(rgb) >= 5
    for im in gray.images + rgb.images:
        assert im.dtype == np.float32 and im.min() >= 0 and im.max() <= 1
    assert {im.shape[0] for im in gray.images} == {1} and {im.shape[0] for im in rgb.images} == {3}
    assert gray.center_crops(96).shape == (len(gray), 1, 96, 96)
    faces = lfw_faces()
    assert len(faces) == 200 and faces.stack().shape == (200, 1, 25, 25)


def test_split_by_image_is_disjoint_and_patches_stay_in_split():
    names = tuple(f"im{i}" for i in range(10))
    images = ImageSet(names, tuple(np.full((1, 20, 20), i / 10, dtype=np.float32) for i in range(10)))
    train, val, test = images.split([0.6, 0.2, 0.2], seed=3)
    assert (len(train), len(val), len(test)) == (6, 2, 2)
    assert not set(train.names) & set(test.names) and not set(train.names) & set(val.names)
    assert set(train.names) | set(val.names) | set(test.names) == set(names)
    assert train.names == images.split([0.6, 0.2, 0.2], seed=3)[0].names  # deterministic
    patches = train.patches(50, 8, seed=0)
    allowed = {round(float(train.subset([n]).images[0][0, 0, 0]), 4) for n in train.names}
    assert {round(float(p[0, 0, 0]), 4) for p in patches} <= allowed
    assert patches.shape == (50, 1, 8, 8) and patches.dtype == np.float32


def test_patches_seeded_with_flips():
    cam = skimage_images("gray").subset(["camera"])
    a, b = cam.patches(8, 32, seed=1), cam.patches(8, 32, seed=1)
    assert np.array_equal(a, b) and not np.array_equal(a, cam.patches(8, 32, seed=2))


def test_phantoms():
    sl = shepp_logan(64)
    assert sl.shape == (1, 1, 64, 64) and sl.dtype == np.float32 and sl.min() >= 0 and sl.max() <= 1
    e = random_ellipses(3, 32, seed=0)
    assert e.shape == (3, 1, 32, 32) and np.array_equal(e, random_ellipses(3, 32, seed=0))
    assert e[:, :, 0, 0].max() == 0 and e.max() > 0


def test_folder_loader_reads_and_names_bad_files(tmp_path):
    Image.fromarray(np.full((8, 9), 128, dtype=np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.zeros((8, 9, 3), dtype=np.uint8)).save(tmp_path / "b.jpg")
    (tmp_path / "notes.txt").write_text("ignored")
    images = load_folder(tmp_path)
    assert images.names == ("a", "b") and images.stack().shape == (2, 1, 8, 9)
    assert images.images[0][0, 0, 0] == pytest.approx(128 / 255)
    assert load_folder(tmp_path, color="rgb").stack().shape == (2, 3, 8, 9)
    with pytest.raises(ValueError, match=r"a\.png: expected an image of shape \(8, 8\), got \(8, 9\)"):
        load_folder(tmp_path, shape=(8, 8))
    (tmp_path / "c.tif").write_bytes(b"this is not a tiff")
    with pytest.raises(ValueError, match=r"c\.tif: not a readable image"):
        load_folder(tmp_path)
    with pytest.raises(ValueError, match="not found"):
        load_folder(tmp_path / "missing")


def test_benchmarks_from_reference_data(data_images):
    set12 = load_benchmark("Set12", data_images)
    assert len(set12) == 12 and all(im.shape[0] == 1 for im in set12.images)
    bsd = load_benchmark("BSD68", data_images)
    assert len(bsd) == 68 and {im.shape[1:] for im in bsd.images} <= {(321, 481), (481, 321)}
    assert 0.2 < float(np.mean([im.mean() for im in bsd.images])) < 0.8
    with pytest.raises(ValueError, match="unknown benchmark"):
        load_benchmark("Kodak24", data_images)


def test_degraded_pairs_seeded():
    x = skimage_images("gray").subset(["camera", "moon", "coins"]).center_crops(32)
    op = R.CircularBlur(gaussian_kernel(5, 1.0), 32)
    pairs = DegradedPairs(x, op.forward, "gaussian", (0.01, 0.05), seed=1)
    (x1, y1), (_, y2) = next(pairs.batches(2, epoch=0)), next(pairs.batches(2, epoch=0))
    assert np.array_equal(y1, y2) and y1.dtype == np.float32 and y1.shape == x1.shape == (2, 1, 32, 32)
    assert not np.array_equal(y1, next(pairs.batches(2, epoch=1))[1])
    res = y1 - op.forward(x1)
    assert 0.005 < res.std() < 0.06
    assert sum(len(b[0]) for b in pairs.batches(2)) == 3
    with pytest.raises(ValueError, match="float32"):
        DegradedPairs(x.astype(np.float64), op.forward)
