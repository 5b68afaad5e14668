"""Offline image datasets: packaged natural images, CT phantoms, user folders, benchmarks, degraded pairs.

Arrays are numpy float32 in [0, 1] with shape (N, C, H, W) (or per-image (C, H, W) inside an ImageSet);
``datasets.torch.to_torch`` / ``datasets.jax.to_jax`` convert them for a backend.
"""

from deq_imaging.datasets.folder import load_benchmark, load_folder, read_image
from deq_imaging.datasets.images import ImageSet
from deq_imaging.datasets.natural import lfw_faces, skimage_images, sklearn_images
from deq_imaging.datasets.pairs import DegradedPairs
from deq_imaging.datasets.phantoms import random_ellipses, shepp_logan

__all__ = [
    "DegradedPairs",
    "ImageSet",
    "lfw_faces",
    "load_benchmark",
    "load_folder",
    "random_ellipses",
    "read_image",
    "shepp_logan",
    "skimage_images",
    "sklearn_images",
]
