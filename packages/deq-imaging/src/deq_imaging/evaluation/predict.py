"""``deq predict`` for imaging models, backend-free: read degraded images, restore them, write PNGs, score.

The input is a folder of images (PNG/JPEG/TIFF, read as grayscale in [0, 1]) or one ``.npy`` of
(N, C, H, W) or (N, H, W) floating-point values (for CT: sinograms, ``.npy`` only). Every restored image is
written as an 8-bit PNG named after its input (``0000.png``, ... for a ``.npy``), clipped to [0, 1]; a
``.npy`` input also gives ``restored.npy`` (float32, unclipped). With ``reference`` (a folder of clean
images with the same names, or a ``.npy`` of the clean images) each row gets the PSNR and SSIM of the
clipped restoration, as the run's report scores them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from deq_core.files import atomic_path
from deq_imaging.datasets import load_folder
from deq_imaging.evaluation.metrics import psnr, ssim
from deq_imaging.models.files import ImagingModel

BATCH = 16


def read_npy(path: Path, what: str) -> np.ndarray:
    """The float32 (N, C, H, W) array of the ``.npy`` ``path`` ((N, H, W) gets one channel)."""
    if path.suffix != ".npy" or not path.is_file():
        raise ValueError(f"{what} {path}: give a folder of images or one .npy file")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as error:
        raise ValueError(f"{what} {path} is not a readable .npy file: {error}") from None
    if array.dtype.kind != "f" or array.ndim not in (3, 4):
        raise ValueError(
            f"{what} {path} must hold floats (images in [0, 1]) of shape (N, C, H, W) or (N, H, W), "
            f"got {array.dtype} {array.shape}"
        )
    return (array[:, None] if array.ndim == 3 else array).astype(np.float32)


def read_inputs(path: Path, model: ImagingModel) -> tuple[list[str], list[np.ndarray]]:
    """Names and (1, C, H, W) arrays of the inputs at ``path`` (a folder or a ``.npy``)."""
    if path.is_dir():
        if model.spec.kind == "radon":
            raise ValueError(
                f"--input {path}: a CT model reads its sinograms from one .npy file, not a folder"
            )
        images = load_folder(path, "gray")
        return list(images.names), [image[None] for image in images.images]
    array = read_npy(path, "--input")
    return [f"{i:04d}" for i in range(len(array))], list(array[:, None])


def read_references(path: Path, names: list[str], shapes: list[tuple]) -> list[np.ndarray]:
    """The clean image of every input name from the folder or ``.npy`` ``path``, each of ``shapes``."""
    if path.is_dir():
        found = load_folder(path, "gray")
        images = dict(zip(found.names, found.images, strict=True))
        missing = [name for name in names if name not in images]
        if missing:
            raise ValueError(
                f"--reference {path} has no image named {missing[:5]} (one per input, same name)"
            )
        clean = [images[name][None] for name in names]
    else:
        array = read_npy(path, "--reference")
        if len(array) != len(names):
            raise ValueError(f"--reference {path} holds {len(array)} images for {len(names)} inputs")
        clean = list(array[:, None])
    for name, image, shape in zip(names, clean, shapes, strict=True):
        if image.shape != shape:
            raise ValueError(
                f"--reference image {name!r} has shape {image.shape[1:]}, its restoration {shape[1:]}"
            )
    return clean


def write_png(path: Path, image: np.ndarray) -> None:
    """Write a (C, H, W) image in [0, 1] (clipped) as an 8-bit PNG, atomically."""
    pixels = np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)
    pixels = pixels[0] if pixels.shape[0] == 1 else np.moveaxis(pixels, 0, -1)
    with atomic_path(path) as temporary:
        Image.fromarray(pixels).save(temporary, format="PNG")


def predict(
    model: ImagingModel, input: Path, out_dir: Path, steps: int | None = None, reference: Path | None = None
) -> dict[str, Any]:
    """Restore the degraded images at ``input`` with ``model``; write PNGs into ``out_dir``; one row per image
    (its size, and PSNR/SSIM against ``reference`` when given)."""
    input, out_dir = Path(input), Path(out_dir)
    names, inputs = read_inputs(input, model)
    outputs = _restore_all(model, inputs, steps)
    budget = model.steps if steps is None else steps
    clean = read_references(Path(reference), names, [o.shape for o in outputs]) if reference else None
    rows = []
    for i, (name, output) in enumerate(zip(names, outputs, strict=True)):
        write_png(out_dir / f"{name}.png", output[0])
        row: dict[str, Any] = {"image": name, "height": output.shape[2], "width": output.shape[3]}
        if clean is not None:
            estimate = np.clip(output, 0.0, 1.0)
            row |= {"psnr": float(psnr(estimate, clean[i])[0]), "ssim": float(ssim(estimate, clean[i])[0])}
        rows.append(row)
    if not input.is_dir():
        with atomic_path(out_dir / "restored.npy") as temporary, open(temporary, "wb") as handle:
            np.save(handle, np.concatenate(outputs).astype(np.float32))
    metrics = ("psnr", "ssim") if clean is not None else ()
    summary = {f"mean_{k}": float(np.mean([row[k] for row in rows])) for k in metrics}
    return {"model": model.name, "task": model.manifest["task"], "steps": budget, **summary, "rows": rows}


def _restore_all(model: ImagingModel, inputs: list[np.ndarray], steps: int | None) -> list[np.ndarray]:
    """The restorations of ``inputs`` (each (1, C, H, W)), in batches of up to :data:`BATCH` of one shape."""
    outputs: list[np.ndarray | None] = [None] * len(inputs)
    by_shape: dict[tuple, list[int]] = {}
    for i, image in enumerate(inputs):
        by_shape.setdefault(image.shape, []).append(i)
    for indices in by_shape.values():
        for start in range(0, len(indices), BATCH):
            chunk = indices[start : start + BATCH]
            restored = model(np.concatenate([inputs[i] for i in chunk]), steps)
            for i, image in zip(chunk, restored, strict=True):
                outputs[i] = image[None]
    return outputs  # type: ignore[return-value]
