"""Hypothesis properties of the operators over random geometries: exact adjoints, numpy = torch = JAX.

Kept small (few examples, images of at most 14 pixels a side) so the whole file takes seconds.
"""

from __future__ import annotations

import importlib.util

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from imaging_checks import Arrays, inner, precision

from deq_imaging.operators import linear as L


@st.composite
def geometries(draw: st.DrawFn) -> tuple[object, np.ndarray, np.ndarray]:
    """A random operator (blur of any boundary, inpainting or Radon) with random x and y, float64."""
    kind = draw(st.sampled_from(["circular", "same", "valid", "inpaint", "radon"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    batch, channels = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    if kind == "radon":
        n, angles = draw(st.integers(4, 12)), draw(st.integers(1, 6))
        op = L.Radon(n, np.sort(rng.uniform(0, 180, angles)), circle=draw(st.booleans()))
    else:
        h, w = draw(st.integers(6, 14)), draw(st.integers(6, 14))
        if kind == "inpaint":
            op = L.Inpainting(rng.random((h, w)) < draw(st.floats(0.1, 1.0)))
        else:
            kernel = rng.random((draw(st.integers(1, min(h, 7))), draw(st.integers(1, min(w, 7)))))
            op = L.CircularBlur(kernel, (h, w)) if kind == "circular" else L.PaddedBlur(kernel, (h, w), kind)
    x = rng.standard_normal((batch, channels, *op.image_shape))
    y = rng.standard_normal((batch, channels, *op.output_shape))
    return op, x, y


@settings(max_examples=30, deadline=None)
@given(geometries())
def test_adjoint_identity(case):
    """``<A x, y> = <x, A* y>`` (numpy, float64) for every geometry."""
    op, x, y = case
    lhs, rhs = inner(op.forward(x), y), inner(x, op.adjoint(y))
    assert abs(lhs - rhs) <= 1e-10 * max(abs(lhs), np.abs(x).sum())


@settings(max_examples=6, deadline=None)
@given(geometries())
def test_backends_agree_with_numpy(case):
    """The installed frameworks compute what numpy computes (float64, eager) on every geometry."""
    op, x, y = case
    expected = op.forward(x), op.adjoint(y)
    for backend in ("torch", "jax"):
        if importlib.util.find_spec(backend) is None:
            continue
        arrays = Arrays(backend, "float64")
        with precision(backend, "float64"):
            got = arrays.numpy(op.forward(arrays.asarray(x))), arrays.numpy(op.adjoint(arrays.asarray(y)))
        for ours, oracle in zip(got, expected, strict=True):
            np.testing.assert_allclose(ours, oracle, rtol=0, atol=1e-10 * max(np.abs(oracle).max(), 1.0))
