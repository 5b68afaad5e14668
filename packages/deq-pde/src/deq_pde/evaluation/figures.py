"""Domain figures: input | FEM solution | prediction | error per sample, written atomically as PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deq_core.training import atomic_path


def plot_predictions(
    path: str | Path,
    inputs: np.ndarray,
    reference: np.ndarray,
    prediction: np.ndarray,
    input_name: str = "coefficient",
    model_name: str = "DEQ",
) -> Path:
    """One row per sample: ``input_name`` | FEM solution | ``model_name`` prediction | absolute error."""
    inputs, reference, prediction = (np.asarray(a, dtype=np.float64) for a in (inputs, reference, prediction))
    if not inputs.shape == reference.shape == prediction.shape or inputs.ndim != 3:
        raise ValueError(
            f"inputs, reference and prediction must share a (samples, n, n) shape, got "
            f"{inputs.shape}, {reference.shape}, {prediction.shape}"
        )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = inputs.shape[0]
    fig, axes = plt.subplots(rows, 4, figsize=(13, 3.1 * rows), squeeze=False)
    for r in range(rows):
        error = np.abs(prediction[r] - reference[r])
        rel = np.linalg.norm(prediction[r] - reference[r]) / np.linalg.norm(reference[r])
        vmin, vmax = reference[r].min(), reference[r].max()
        panels = [
            (inputs[r], input_name, "viridis", None, None),
            (reference[r], "FEM solution", "magma", vmin, vmax),
            (prediction[r], f"{model_name} prediction", "magma", vmin, vmax),
            (error, f"|error| (rel. L2 {rel:.2%})", "inferno", None, None),
        ]
        for ax, (image, title, cmap, lo, hi) in zip(axes[r], panels, strict=True):
            shown = ax.imshow(image, origin="lower", extent=(0, 1, 0, 1), cmap=cmap, vmin=lo, vmax=hi)
            ax.set_title(title, fontsize=10)
            ax.set_xticks([])
            ax.set_yticks([])
            fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
    return path
