"""A manufactured solution of -div(a grad u) = f with non-zero boundary values, shared by the tests."""

import numpy as np

PI = np.pi


def exact(x, y):
    return np.sin(PI * x) * np.sin(PI * y) + x * y


def exact_gradient(x, y):
    return PI * np.cos(PI * x) * np.sin(PI * y) + y, PI * np.sin(PI * x) * np.cos(PI * y) + x


def coefficient(x, y):
    return 2.0 + np.sin(x + y)


def source(x, y):
    ux, uy = exact_gradient(x, y)
    laplacian = -2.0 * PI**2 * np.sin(PI * x) * np.sin(PI * y)
    return -np.cos(x + y) * (ux + uy) - coefficient(x, y) * laplacian
