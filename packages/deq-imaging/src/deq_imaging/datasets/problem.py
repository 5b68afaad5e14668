"""The reconstruction problem of a task (numpy): operator description, clean data, noisy measurements.

Natural-image tasks (``deblur``, ``denoise``) split scikit-image's sample photographs (or ``--data DIR``)
by image into train / validation / test, so no test image contributes training patches; training patches
are random flipped crops, test and validation images random crops of their own images. ``ct`` uses seeded
random-ellipse phantoms (different seeds per split) and the Shepp-Logan phantom as the first test image,
or, with ``--data DIR``, the user's images in the same way as the natural-image tasks (grayscale, split by
image, ``image_size`` crops), measured as noisy sinograms by the task's Radon transform.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from deq_imaging.datasets import ImageSet, load_folder, random_ellipses, shepp_logan, skimage_images
from deq_imaging.models.config import ImagingConfig
from deq_imaging.operators import gaussian_noise, motion_blur_kernel
from deq_imaging.operators import reference as ref


@dataclass(frozen=True)
class OperatorSpec:
    """What a backend needs to build the forward operator: ``kind`` and its geometry.

    ``kind`` is ``identity``, ``blur`` (circular, ``kernel``) or ``radon`` (``theta`` in degrees, images of
    ``image_size``); blur and identity act on any image size, the Radon transform on ``image_size`` only.
    """

    kind: str
    kernel: np.ndarray | None = None
    theta: np.ndarray | None = None
    image_size: int | None = None

    def reference(self, image_shape: tuple[int, int]) -> Any:
        """The numpy reference operator for (H, W) images."""
        if self.kind == "identity":
            return ref.Identity(image_shape)
        if self.kind == "blur":
            return ref.CircularBlur(self.kernel, image_shape)
        if self.kind == "radon":
            if tuple(image_shape) != (self.image_size, self.image_size):
                raise ValueError(
                    f"the CT operator is built for {self.image_size}x{self.image_size} images, "
                    f"got {tuple(image_shape)}"
                )
            return ref.Radon(self.image_size, self.theta)
        raise ValueError(f"unknown operator kind {self.kind!r}; expected identity, blur or radon")

    def image_shape(self, measurement_shape: tuple[int, int]) -> tuple[int, int]:
        """The image shape (H, W) whose measurements have shape ``measurement_shape``."""
        if self.kind == "radon":
            expected = (self.image_size, len(self.theta))
            if tuple(measurement_shape) != expected:
                raise ValueError(f"CT sinograms must have shape {expected}, got {tuple(measurement_shape)}")
            return (self.image_size, self.image_size)
        return tuple(measurement_shape)

    def noise_std(self, noise: float) -> float:
        """Absolute noise std of the measurements: ``noise``, times ``image_size`` for CT sinograms."""
        return noise * (self.image_size if self.kind == "radon" else 1.0)


@dataclass(frozen=True)
class Problem:
    """Everything backend-free about a task: the operator, a patch source and the val / test pairs."""

    task: str
    spec: OperatorSpec
    sigma: float
    patches: Callable[[int, int, int], np.ndarray]
    val_x: np.ndarray
    val_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray

    def measure(self, x: np.ndarray, seed: int) -> np.ndarray:
        """Noisy measurements ``A x + sigma * n`` (float32) of clean images x (N, C, H, W)."""
        op = self.spec.reference(x.shape[2:])
        return gaussian_noise(op.forward(x.astype(np.float64)), self.sigma, seed).astype(np.float32)


def _natural_images(data: str | None, seed: int, cfg: ImagingConfig) -> tuple[ImageSet, ImageSet, ImageSet]:
    """Train / validation / test split by image of the user's folder or scikit-image's samples; each part
    must hold an image as large as its crops (``patch_size`` for training, else ``image_size``), else a
    ValueError naming the folder."""
    images = load_folder(data, "gray") if data else skimage_images("gray")
    where = f"image folder {data}" if data else "scikit-image's samples"
    if len(images) < 3:
        raise ValueError(f"{where}: need at least 3 images to split into train/val/test, got {len(images)}")
    parts = images.split([0.6, 0.15, 0.25], seed=seed)
    crops = {"training": "patch_size", "validation": "image_size", "test": "image_size"}
    for (part, key), names in zip(crops.items(), parts, strict=True):
        size = getattr(cfg, key)
        if not any(min(im.shape[1:]) >= size for im in names.images):
            raise ValueError(
                f"{where}: none of its {len(names)} {part} images is at least {size}x{size} ({key}); "
                f"give larger images or a smaller {key}"
            )
    return parts


def make_problem(task: str, cfg: ImagingConfig, seed: int) -> Problem:
    """Build ``task``'s problem with ``cfg``'s sizes; every random choice is seeded by ``seed``."""
    n = cfg.image_size
    if task not in ("ct", "deblur", "denoise"):
        raise ValueError(f"unknown imaging task {task!r}; valid tasks: ct, deblur, denoise")
    if task == "ct":
        theta = np.linspace(0.0, 180.0, cfg.angles, endpoint=False)
        spec = OperatorSpec("radon", theta=theta, image_size=n)
    elif task == "deblur":
        spec = OperatorSpec("blur", kernel=motion_blur_kernel(cfg.kernel_size, seed))
    else:
        spec = OperatorSpec("identity")
    if task == "ct" and cfg.data is None:
        val_x = random_ellipses(cfg.n_val, n, seed + 1)
        test_x = np.concatenate([shepp_logan(n), random_ellipses(cfg.n_test - 1, n, seed + 2)])[: cfg.n_test]

        def patches(num: int, size: int, draw: int) -> np.ndarray:
            return random_ellipses(num, size, seed + 1000 + draw)
    else:
        train, val, test = _natural_images(cfg.data, seed, cfg)
        val_x = val.patches(cfg.n_val, n, seed + 1, flips=False)
        test_x = test.patches(cfg.n_test, n, seed + 2, flips=False)

        def patches(num: int, size: int, draw: int) -> np.ndarray:
            return train.patches(num, size, seed + 1000 + draw)

    sigma = spec.noise_std(cfg.noise)
    problem = Problem(task, spec, sigma, patches, val_x, val_x, test_x, test_x)
    return Problem(
        task,
        spec,
        sigma,
        patches,
        val_x,
        problem.measure(val_x, seed + 11),
        test_x,
        problem.measure(test_x, seed + 12),
    )
