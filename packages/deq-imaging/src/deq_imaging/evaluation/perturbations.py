"""The research's Lipschitz perturbation recipe: measurement perturbations ``delta_y = A delta_x`` along
Fourier singular vectors of ``A`` picked at several frequency percentiles (numpy).

Candidates are the real Fourier modes ``cos(2 pi (u i / H + v j / W))`` of the image grid. They are ranked by
their gain ``||A e|| / ||e||`` from largest to smallest: exactly the singular values ``|K(u, v)|`` for a
circular blur (whose singular vectors are these modes), and by increasing radial frequency for operators
without a transfer function (the identity: every gain is 1; parallel-beam CT, whose Fourier-slice gain
falls as ``|w|^-1/2``). The mode at each percentile of that ranking gives ``delta_x``; the directions
returned are ``A delta_x`` (the Lipschitz estimators rescale them to the chosen small norm).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def fourier_modes(shape: tuple[int, int], gains: np.ndarray | None = None) -> list[tuple[int, int]]:
    """Frequencies ``(u, v)`` of the half-plane rFFT grid of ``shape`` ranked from the largest singular
    value to the smallest (``gains`` (H, W // 2 + 1), else by increasing radial frequency), DC excluded."""
    h, w = shape
    u = np.fft.fftfreq(h)[:, None]
    v = np.fft.rfftfreq(w)[None, :]
    radius = np.sqrt(u**2 + v**2)
    key = radius if gains is None else -np.abs(gains) + 1e-12 * radius
    order = np.argsort(key, axis=None, kind="stable")
    modes = [np.unravel_index(i, radius.shape) for i in order]
    return [(int(a), int(b)) for a, b in modes if (a, b) != (0, 0)]


def cosine_mode(shape: tuple[int, int], mode: tuple[int, int]) -> np.ndarray:
    """The unit-norm real Fourier mode ``cos(2 pi (u i / H + v j / W))`` on an (H, W) grid."""
    h, w = shape
    i, j = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    e = np.cos(2 * np.pi * (mode[0] * i / h + mode[1] * j / w))
    return e / np.linalg.norm(e)


def fourier_directions(
    operator: Any, channels: int, percentiles: Sequence[float], gains: np.ndarray | None = None
) -> tuple[np.ndarray, list[dict[str, float]]]:
    """Directions ``A delta_x`` (k, C, *A.output_shape) for the Fourier modes at ``percentiles`` (0-100)
    of the singular-value ranking, and per direction its mode, percentile and gain ``||A e||``.

    ``operator`` is a numpy reference operator (``forward``, ``image_shape``); ``gains`` its transfer
    function on the rFFT grid when it has one (circular blur).
    """
    if not percentiles:
        raise ValueError("percentiles must hold at least one value in [0, 100]")
    shape = tuple(operator.image_shape)
    modes = fourier_modes(shape, gains)
    directions, info = [], []
    for p in percentiles:
        if not 0 <= p <= 100:
            raise ValueError(f"percentiles must lie in [0, 100], got {p}")
        mode = modes[min(int(round(p / 100 * (len(modes) - 1))), len(modes) - 1)]
        dx = np.broadcast_to(cosine_mode(shape, mode), (1, channels, *shape)) / np.sqrt(channels)
        dy = operator.forward(np.ascontiguousarray(dx))[0]
        directions.append(dy)
        info.append({"percentile": float(p), "u": mode[0], "v": mode[1], "gain": float(np.linalg.norm(dy))})
    return np.stack(directions).astype(np.float32), info
