"""Domain figures (matplotlib, Agg, atomic writes): clean | degraded | best baseline | DEQ at t = 1, 5, K."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from deq_core.training import atomic_path


def plot_grid(
    columns: Sequence[tuple[str, np.ndarray]],
    path: str | os.PathLike,
    rows: int = 3,
    clean: np.ndarray = None,
) -> Path:
    """One row per image (first ``rows`` of each (N, C, H, W) array), one column per ``(title, images)``;
    titles get the image's PSNR against ``clean`` when given. Returns the path of the PNG."""
    from matplotlib.figure import Figure

    from deq_imaging.evaluation.metrics import psnr

    n = min(rows, *(len(images) for _, images in columns))
    fig = Figure(figsize=(2.0 * len(columns), 2.1 * n), layout="constrained")
    axes = fig.subplots(n, len(columns), squeeze=False)
    for col, (title, images) in enumerate(columns):
        for row in range(n):
            ax = axes[row, col]
            image = np.clip(np.asarray(images[row], dtype=np.float64), 0, 1)
            ax.imshow(
                image[0] if image.shape[0] == 1 else np.moveaxis(image, 0, 2), cmap="gray", vmin=0, vmax=1
            )
            label = title
            if clean is not None and image.shape == clean[row].shape and title != "clean":
                label += f"\n{float(psnr(image[None], clean[row : row + 1])[0]):.2f} dB"
            ax.set_title(label, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    return path
