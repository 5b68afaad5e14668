"""Natural images that ship with installed packages (no network): scikit-image samples, LFW faces, sklearn."""

from __future__ import annotations

import numpy as np
import skimage.data

from deq_imaging.datasets.images import ImageSet, to_chw

GRAY_SAMPLES = (
    "camera",
    "moon",
    "coins",
    "page",
    "text",
    "clock",
    "brick",
    "grass",
    "gravel",
    "microaneurysms",
)
RGB_SAMPLES = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field", "cat")


def skimage_images(color: str = "gray") -> ImageSet:
    """scikit-image's bundled sample photographs; gray: all (colour ones converted); rgb: colour ones."""
    names = GRAY_SAMPLES + RGB_SAMPLES if color == "gray" else RGB_SAMPLES
    return ImageSet(
        names, tuple(to_chw(getattr(skimage.data, n)(), color, f"skimage.data.{n}") for n in names)
    )


def lfw_faces() -> ImageSet:
    """The 200 grayscale 25x25 faces of ``skimage.data.lfw_subset`` (names ``lfw_000`` ...)."""
    faces = skimage.data.lfw_subset()
    faces = np.clip(faces, 0.0, 1.0)
    return ImageSet(
        tuple(f"lfw_{i:03d}" for i in range(len(faces))), tuple(f[None].astype(np.float32) for f in faces)
    )


def sklearn_images(color: str = "rgb") -> ImageSet:
    """scikit-learn's two bundled photographs (china, flower); ValueError if scikit-learn is not installed."""
    try:
        from sklearn.datasets import load_sample_images
    except ImportError as exc:
        raise ValueError("sklearn_images needs scikit-learn (pip install scikit-learn)") from exc
    data = load_sample_images()
    names = tuple(f"sklearn_{n.rsplit('/', 1)[-1].split('.')[0]}" for n in data.filenames)
    return ImageSet(names, tuple(to_chw(im, color, n) for n, im in zip(names, data.images, strict=True)))
