"""Metrics and the Darcy coefficient distribution."""

import numpy as np
import pytest

from deq_pde.evaluation import relative_l2_fem, relative_l2_grid
from deq_pde.operators import FunctionSpace, gaussian_random_field, mass, threshold, unit_square


def test_relative_l2_grid_and_fem():
    ref = np.random.default_rng(0).random((4, 6, 6))
    assert np.allclose(relative_l2_grid(1.1 * ref, ref), 0.1)
    space = FunctionSpace(unit_square(6), 2)
    u = space.interpolate(lambda x, y: np.sin(x) + y)
    assert np.allclose(relative_l2_fem(np.stack([u, 0.5 * u]), np.stack([u, u]), mass(space)), [0.0, 0.5])
    v = space.interpolate(lambda x, y: np.sin(x) + y + 0.1 * x)
    # the mass-matrix norm is the L2 norm of the interpolants: ||0.1 x|| / ||sin x + y||
    expected = np.sqrt(
        0.01 / 3 / (np.mean(np.sin(np.linspace(0, 1, 100001)) ** 2) + 1 / 3 + 2 * 0.5 * 0.45970)
    )
    assert abs(relative_l2_fem(v, u, mass(space)) - expected) < 1e-3
    with pytest.raises(ValueError, match="does not match"):
        relative_l2_grid(ref[:2], ref)


def test_gaussian_random_field_is_seeded_and_mean_free():
    a = gaussian_random_field(np.random.default_rng(5), 33)
    b = gaussian_random_field(np.random.default_rng(5), 33)
    assert np.array_equal(a, b) and abs(a.mean()) < 1e-12 and a.std() > 0
    coef = threshold(a)
    assert set(np.unique(coef)) == {3.0, 12.0}
    fields = np.stack([gaussian_random_field(np.random.default_rng(s), 33) for s in range(50)])
    # smoothness: neighbouring values are strongly correlated under (-Laplacian + 9)^-2
    assert np.corrcoef(fields[:, 10, 10], fields[:, 10, 11])[0, 1] > 0.9
    with pytest.raises(ValueError, match="alpha and tau"):
        gaussian_random_field(np.random.default_rng(0), 8, alpha=-1.0)
