"""A named collection of images (numpy float32 in [0, 1], each (C, H, W)), with splits, crops and patches."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def to_chw(image: np.ndarray, color: str, name: str) -> np.ndarray:
    """Convert an (H, W), (H, W, 3) or (H, W, 4) image to float32 (C, H, W) in [0, 1] ('gray' or 'rgb');
    integer pixels are divided by their type's maximum (uint8 by 255, uint16 by 65535, int16 by 32767)."""
    if color not in ("gray", "rgb"):
        raise ValueError(f"color must be 'gray' or 'rgb', got {color!r}")
    a = np.asarray(image)
    if a.dtype == np.bool_:
        a = a.astype(np.float32)
    elif a.dtype.kind in "iu" and a.dtype.itemsize <= 4:
        if a.size and a.min() < 0:
            raise ValueError(f"{name}: {a.dtype.name} image has negative pixel values (expected 0 .. max)")
        a = a.astype(np.float32) / float(np.iinfo(a.dtype).max)
    elif np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float32)
        if not np.all(np.isfinite(a)) or a.min() < 0 or a.max() > 1:
            raise ValueError(f"{name}: floating-point image must have finite values in [0, 1]")
    else:
        raise ValueError(
            f"{name}: unsupported pixel type {a.dtype} (expected 8, 16 or 32-bit integers, bool or float)"
        )
    if a.ndim == 3 and a.shape[2] == 4:
        a = a[..., :3]
    if a.ndim == 2:
        a = a[None] if color == "gray" else np.repeat(a[None], 3, axis=0)
    elif a.ndim == 3 and a.shape[2] == 3:
        a = np.moveaxis(a, 2, 0)
        if color == "gray":
            a = (0.2125 * a[0] + 0.7154 * a[1] + 0.0721 * a[2])[None]
    else:
        raise ValueError(
            f"{name}: expected an image of shape (H, W), (H, W, 3) or (H, W, 4), got {np.shape(image)}"
        )
    return np.ascontiguousarray(a, dtype=np.float32)


@dataclass(frozen=True)
class ImageSet:
    """Images of possibly different sizes, each float32 (C, H, W) in [0, 1], with unique names."""

    names: tuple[str, ...]
    images: tuple[np.ndarray, ...]

    def __post_init__(self) -> None:
        """Check names are unique and images are (C, H, W) with one channel count."""
        if len(self.names) != len(self.images):
            raise ValueError(f"ImageSet: {len(self.names)} names for {len(self.images)} images")
        if len(set(self.names)) != len(self.names):
            raise ValueError("ImageSet: image names must be unique")
        chans = {im.shape[0] for im in self.images}
        if any(im.ndim != 3 for im in self.images) or len(chans) > 1:
            raise ValueError("ImageSet: every image must be (C, H, W) with the same C")

    def __len__(self) -> int:
        """Number of images."""
        return len(self.images)

    def subset(self, names: Sequence[str]) -> ImageSet:
        """The images with the given names, in that order."""
        index = {n: i for i, n in enumerate(self.names)}
        missing = [n for n in names if n not in index]
        if missing:
            raise ValueError(f"ImageSet.subset: unknown image names {missing}")
        return ImageSet(tuple(names), tuple(self.images[index[n]] for n in names))

    def split(self, fractions: Sequence[float], seed: int = 0) -> tuple[ImageSet, ...]:
        """Deterministic split *by image* into len(fractions) disjoint sets (sizes ~ fractions, each >= 1)."""
        f = np.asarray(fractions, dtype=np.float64)
        if f.ndim != 1 or f.size < 2 or np.any(f <= 0):
            raise ValueError(f"split fractions must be >= 2 positive numbers, got {list(fractions)}")
        if len(self) < f.size:
            raise ValueError(f"cannot split {len(self)} images into {f.size} non-empty parts")
        order = sorted(self.names)
        perm = np.random.default_rng(seed).permutation(len(order))
        counts = np.maximum(1, np.floor(f / f.sum() * len(order)).astype(int))
        counts[0] = len(order) - counts[1:].sum()
        if counts[0] < 1:
            raise ValueError(f"cannot split {len(self)} images with fractions {list(fractions)}")
        bounds = np.concatenate(([0], np.cumsum(counts)))
        return tuple(self.subset([order[i] for i in perm[bounds[j] : bounds[j + 1]]]) for j in range(f.size))

    def center_crops(self, size: int) -> np.ndarray:
        """Central (size, size) crop of every image, stacked to (N, C, size, size)."""
        out = []
        for name, im in zip(self.names, self.images, strict=True):
            h, w = im.shape[1:]
            if h < size or w < size:
                raise ValueError(f"image {name!r} of shape {im.shape} is smaller than the crop {size}")
            t, lft = (h - size) // 2, (w - size) // 2
            out.append(im[:, t : t + size, lft : lft + size])
        return np.stack(out)

    def stack(self) -> np.ndarray:
        """All images stacked to (N, C, H, W); they must share one shape."""
        shapes = {im.shape for im in self.images}
        if len(shapes) != 1:
            raise ValueError(
                f"ImageSet.stack: images have different shapes {sorted(shapes)}; use center_crops"
            )
        return np.stack(self.images)

    def patches(self, num: int, size: int, seed: int, flips: bool = True) -> np.ndarray:
        """``num`` random (size, size) crops, (N, C, size, size), randomly flipped / transposed."""
        ok = [i for i, im in enumerate(self.images) if min(im.shape[1:]) >= size]
        if not ok:
            raise ValueError(f"no image is at least {size}x{size}")
        rng = np.random.default_rng(seed)
        out = np.empty((num, self.images[0].shape[0], size, size), dtype=np.float32)
        for j in range(num):
            im = self.images[ok[int(rng.integers(len(ok)))]]
            h, w = im.shape[1:]
            t, lft = int(rng.integers(h - size + 1)), int(rng.integers(w - size + 1))
            p = im[:, t : t + size, lft : lft + size]
            if flips:
                if rng.random() < 0.5:
                    p = p[:, :, ::-1]
                if rng.random() < 0.5:
                    p = p[:, ::-1, :]
                if rng.random() < 0.5:
                    p = np.swapaxes(p, 1, 2)
            out[j] = p
        return out
