"""Images from a user folder (PNG / JPEG / TIFF) and the standard benchmark folders Train400, BSD68, Set12."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from deq_imaging.datasets.images import ImageSet, to_chw

EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
BENCHMARKS = {"Train400": 400, "BSD68": 68, "Set12": 12}


def _stored_integer_type(im: Image.Image) -> np.dtype | None:
    """The integer pixel type of a TIFF in one of Pillow's ``I`` modes (its BitsPerSample and SampleFormat
    tags), or None.

    Pillow widens 16-bit signed and 32-bit TIFFs to its 32-bit signed mode ``I`` (an unsigned 32-bit value
    above 2**31 comes out negative); the tags say which type, and so which maximum, the pixels have.
    """
    tags = getattr(im, "tag_v2", None)
    if im.format != "TIFF" or tags is None or not im.mode.startswith("I"):
        return None
    bits, fmt = set(np.atleast_1d(tags.get(258))), set(np.atleast_1d(tags.get(339, 1)))
    if len(bits) != 1 or len(fmt) != 1 or fmt - {1, 2} or bits - {8, 16, 32}:
        return None
    return np.dtype(f"{'u' if fmt == {1} else 'i'}{bits.pop() // 8}")


def read_image(path: str | Path, color: str = "gray") -> np.ndarray:
    """Read one image file to float32 (C, H, W) in [0, 1] (integers scaled by their type's maximum: 8, 16 or
    32 bits, either byte order); errors name the file."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            stored = _stored_integer_type(im)
            if im.mode in ("P", "LA", "PA"):
                im = im.convert("RGBA")
            elif im.mode in ("CMYK", "YCbCr", "LAB", "HSV"):
                im = im.convert("RGB")
            arr = np.asarray(im)
    except Image.DecompressionBombError as exc:
        raise ValueError(
            f"{path}: image too large to read: {exc} (the limit is 2 * PIL.Image.MAX_IMAGE_PIXELS = "
            f"{2 * Image.MAX_IMAGE_PIXELS} pixels; raise PIL.Image.MAX_IMAGE_PIXELS to read a file you trust)"
        ) from exc
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValueError(f"{path}: not a readable image file ({exc})") from exc
    if stored is not None and arr.dtype.kind in "iu":
        arr = arr.astype(stored)
    return to_chw(arr, color, str(path))


def load_folder(folder: str | Path, color: str = "gray", shape: tuple[int, int] | None = None) -> ImageSet:
    """All PNG/JPEG/TIFF files of ``folder`` (sorted, named by stem); ``shape`` (H, W) enforced if given."""
    folder = Path(folder)
    if folder.is_file():
        raise ValueError(f"{folder} is a file, not an image folder (read one file with read_image)")
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
