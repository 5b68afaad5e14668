"""The toy linear inverse problem in numpy: smooth signals, measurement operators, classical baselines."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Problem:
    """Measurements ``y = M x + noise`` of smooth signals ``x``, split into train and test (float32)."""

    operator: np.ndarray
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray


def operator(task: str, n: int, m: int, rng: np.random.Generator) -> np.ndarray:
    """The ``(m, n)`` measurement matrix of ``task`` (``sensing`` or ``deblur``)."""
    if task == "sensing":
        return rng.standard_normal((m, n)) / np.sqrt(m)
    if task == "deblur":
        if m != n:
            raise ValueError(f"deblur needs m == n, got m={m}, n={n}")
        offsets = np.arange(n)[:, None] - np.arange(n)[None, :]
        kernel = np.exp(-0.5 * (offsets / 1.5) ** 2)
        return kernel / kernel.sum(axis=1, keepdims=True)
    raise ValueError(f"unknown toy task {task!r}; valid tasks: sensing, deblur")


def make_problem(task: str, n: int, m: int, n_train: int, n_test: int, noise: float, seed: int) -> Problem:
    """Draw a problem: Gaussian signals with a squared-exponential covariance (length 3) and noisy data."""
    rng = np.random.default_rng(seed)
    grid = np.arange(n)
    cov = np.exp(-0.5 * ((grid[:, None] - grid[None, :]) / 3.0) ** 2) + 1e-6 * np.eye(n)
    chol = np.linalg.cholesky(cov)
    op = operator(task, n, m, rng)
    x = rng.standard_normal((n_train + n_test, n)) @ chol.T
    y = x @ op.T + noise * rng.standard_normal((n_train + n_test, m))
    f32 = lambda a: a.astype(np.float32)
    return Problem(f32(op), f32(x[:n_train]), f32(y[:n_train]), f32(x[n_train:]), f32(y[n_train:]))


def mse(prediction: np.ndarray, target: np.ndarray) -> float:
    """Mean squared error over every entry."""
    return float(np.mean((np.asarray(prediction, np.float64) - np.asarray(target, np.float64)) ** 2))


def baselines(problem: Problem) -> dict[str, dict[str, float]]:
    """Least squares (minimum norm) and Tikhonov (weight chosen on the training set): test MSE and seconds."""
    op = problem.operator.astype(np.float64)
    out = {}
    start = time.perf_counter()
    prediction = problem.test_y @ np.linalg.pinv(op).T
    out["least_squares"] = {"value": mse(prediction, problem.test_x), "seconds": time.perf_counter() - start}

    start = time.perf_counter()
    gram, n = op.T @ op, op.shape[1]

    def ridge(y: np.ndarray, weight: float) -> np.ndarray:
        return np.linalg.solve(gram + weight * np.eye(n), op.T @ y.T).T

    weights = np.logspace(-6, 1, 15)
    best = min(weights, key=lambda w: mse(ridge(problem.train_y, w), problem.train_x))
    out["tikhonov"] = {
        "value": mse(ridge(problem.test_y, best), problem.test_x),
        "seconds": time.perf_counter() - start,
    }
    return out
