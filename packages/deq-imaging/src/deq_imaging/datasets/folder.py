"""Images from a user folder (PNG / JPEG / TIFF) and the standard benchmark folders Train400, BSD68, Set12."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from deq_imaging.datasets.images import ImageSet, to_chw

EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
BENCHMARKS = {"Train400": 400, "BSD68": 68, "Set12": 12}


def read_image(path: str | Path, color: str = "gray") -> np.ndarray:
    """Read one image file to float32 (C, H, W) in [0, 1]; errors name the file."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("P", "LA", "PA"):
                im = im.convert("RGBA")
            elif im.mode in ("CMYK", "YCbCr", "LAB", "HSV"):
                im = im.convert("RGB")
            arr = np.asarray(im)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValueError(f"{path}: not a readable image file ({exc})") from exc
    return to_chw(arr, color, str(path))


def load_folder(folder: str | Path, color: str = "gray", shape: tuple[int, int] | None = None) -> ImageSet:
    """All PNG/JPEG/TIFF files of ``folder`` (sorted, named by stem); ``shape`` (H, W) enforced if given."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"image folder not found: {folder}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in EXTENSIONS)
    if not files:
        raise ValueError(f"no {'/'.join(EXTENSIONS)} files in {folder}")
    images = []
    for f in files:
        im = read_image(f, color)
        if shape is not None and im.shape[1:] != tuple(shape):
            raise ValueError(f"{f}: expected an image of shape {tuple(shape)}, got {im.shape[1:]}")
        images.append(im)
    return ImageSet(tuple(f.stem for f in files), tuple(images))


def load_benchmark(name: str, root: str | Path) -> ImageSet:
    """A standard grayscale benchmark set (``Train400``, ``BSD68`` or ``Set12``) from ``root/name``."""
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; expected one of {sorted(BENCHMARKS)}")
    images = load_folder(Path(root) / name, color="gray")
    if len(images) != BENCHMARKS[name]:
        raise ValueError(f"{Path(root) / name}: expected {BENCHMARKS[name]} images, found {len(images)}")
    return images
