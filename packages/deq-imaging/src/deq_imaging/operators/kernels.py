"""Blur kernels (numpy): Gaussian and seeded camera-shake motion blur (Boracchi-Foi trajectory model).

Kernels are float64 arrays of shape (k, k), non-negative, summing to one, centred at ``(k // 2, k // 2)``.
"""

from __future__ import annotations

import numpy as np

from deq_imaging.operators.shapes import positive_int


def gaussian_kernel(size: int, sigma: float) -> np.ndarray:
    """Isotropic Gaussian kernel of shape (size, size), standard deviation ``sigma`` pixels, sum one."""
    size = positive_int(size, "Gaussian kernel size")
    if not sigma > 0:
        raise ValueError(f"Gaussian sigma must be > 0, got {sigma}")
    r = np.arange(size, dtype=np.float64) - size // 2
    g = np.exp(-0.5 * (r / sigma) ** 2)
    k = np.outer(g, g)
    return k / k.sum()


def motion_trajectory(
    seed: int,
    max_length: float,
    anxiety: float | None = None,
    num_steps: int = 2000,
) -> np.ndarray:
    """Random camera-shake trajectory (complex positions, length ``num_steps``) after Boracchi & Foi (2012).

    A particle moves with constant speed ``max_length / (num_steps - 1)``; at each step its velocity gets a
    Gaussian random term, a centripetal pull towards the origin, and with small probability an abrupt shake
    (direction reversal). ``anxiety`` (default: uniform in [0, 0.1) from the seed) scales the randomness.
    """
    num_steps = positive_int(num_steps, "motion trajectory num_steps", minimum=2)
    if not max_length > 0:
        raise ValueError(f"max_length must be > 0, got {max_length}")
    rng = np.random.default_rng(seed)
    if anxiety is None:
        anxiety = 0.1 * rng.random()
    centripetal = 0.7 * rng.random()
    gaussian_term = 10.0 * rng.random()
    freq_big_shakes = 0.2 * rng.random()
    step = max_length / (num_steps - 1)
    v0 = np.exp(1j * 2 * np.pi * rng.random())
    v = v0 * anxiety if anxiety > 0 else v0 * step
    x = np.zeros(num_steps, dtype=np.complex128)
    for t in range(num_steps - 1):
        shake = 0.0
        if rng.random() < freq_big_shakes * anxiety:
            shake = 2 * v * np.exp(1j * (np.pi + (rng.random() - 0.5)))
        noise = complex(rng.standard_normal(), rng.standard_normal())
        v = v + shake + anxiety * (gaussian_term * noise - centripetal * x[t]) * step
        v = v / abs(v) * step
        x[t + 1] = x[t] + v
    return x


def rasterize_trajectory(trajectory: np.ndarray, size: int) -> np.ndarray:
    """Splat a complex trajectory (real part = column, imaginary = row) bilinearly onto a (size, size) kernel.

    The trajectory's bounding box is centred on the kernel; its extent must be at most ``size - 2``.
    The kernel sums to one.
    """
    pts = np.asarray(trajectory, dtype=np.complex128)
    cols, rows = pts.real.copy(), pts.imag.copy()
    extent = max(np.ptp(cols), np.ptp(rows))
    if extent > size - 2 + 1e-9:
        raise ValueError(f"trajectory extent {extent:.1f} px does not fit a {size}x{size} kernel")
    centre = (size - 1) / 2
    cols += centre - 0.5 * (cols.max() + cols.min())
    rows += centre - 0.5 * (rows.max() + rows.min())
    k = np.zeros((size + 1, size + 1), dtype=np.float64)
    r0, c0 = np.floor(rows).astype(int), np.floor(cols).astype(int)
    fr, fc = rows - r0, cols - c0
    for dr, dc, w in (
        (0, 0, (1 - fr) * (1 - fc)),
        (0, 1, (1 - fr) * fc),
        (1, 0, fr * (1 - fc)),
        (1, 1, fr * fc),
    ):
        np.add.at(k, (r0 + dr, c0 + dc), w)
    k = k[:size, :size]
    return k / k.sum()


def motion_blur_kernel(
    size: int, seed: int, extent: float | None = None, anxiety: float | None = None, num_steps: int = 2000
) -> np.ndarray:
    """Seeded random motion-blur kernel of shape (size, size) from a random camera-shake trajectory.

    The trajectory follows Boracchi & Foi's model with their 64-pixel setting (length 60, 2000 steps) and is
    scaled so that its larger bounding-box side is ``extent`` pixels (default ``size - 2``, the largest fit).
    """
    size = positive_int(size, "motion-blur kernel size", minimum=3)
    if extent is None:
        extent = size - 2
    if not 0 < extent <= size - 2:
        raise ValueError(f"trajectory extent must be in (0, size - 2] = (0, {size - 2}], got {extent}")
    traj = motion_trajectory(seed, 60.0, anxiety, num_steps)
    span = max(np.ptp(traj.real), np.ptp(traj.imag))
    return rasterize_trajectory((traj - traj[0]) * (extent / span), size)


def check_kernel(kernel: np.ndarray) -> np.ndarray:
    """Validate a 2-D blur kernel and return it as float64."""
    k = np.asarray(kernel, dtype=np.float64)
    if k.ndim != 2 or min(k.shape) < 1:
        raise ValueError(f"blur kernel: expected a 2-D array of shape (kh, kw), got shape {k.shape}")
    if not np.all(np.isfinite(k)):
        raise ValueError("blur kernel: contains NaN or inf")
    return k
