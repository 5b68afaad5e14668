"""Evaluation: sine perturbations, iterations to target, classical timings, figures, nonlinear data."""

import concurrent.futures as cf

import numpy as np
import pytest

from deq_pde.datasets import (
    DarcyConfig,
    NonlinearConfig,
    generate_nonlinear,
    load_nonlinear,
    nonlinear_problem,
)
from deq_pde.datasets.darcy import darcy_sample
from deq_pde.evaluation.classical import classical_baselines, darcy_runners, iterations_to_target
from deq_pde.evaluation.figures import plot_predictions
from deq_pde.evaluation.perturbations import sine_directions


def test_sine_directions_are_orthogonal_low_modes_vanishing_on_the_boundary():
    d = sine_directions(17, 3)
    assert d.shape == (9, 17, 17)
    gram = d.reshape(9, -1) @ d.reshape(9, -1).T
    assert np.allclose(gram, np.diag(np.diag(gram)), atol=1e-9)
    assert np.allclose(d[:, 0], 0) and np.allclose(d[:, :, -1], 0)
    with pytest.raises(ValueError, match="modes must be an integer"):
        sine_directions(5, 4)


def test_iterations_to_target_finds_the_smallest_count():
    reference = np.ones((3, 3))
    run = lambda k: reference * (1 + 0.5**k)  # error 0.5**k
    assert iterations_to_target(run, reference, 0.01, 100) == (7, True)
    assert iterations_to_target(run, reference, 1e-9, 10) == (10, False)


def test_classical_solvers_reach_the_target_on_darcy():
    config = DarcyConfig(grid_size=9)
    sample = darcy_sample(config, 0)
    runners = [darcy_runners(config, sample["field"])]
    out = classical_baselines(runners, sample["solution"][None], {"target": 1e-2}, 2000)["target"]
    assert set(out) == {"direct", "cg_amg", "jacobi", "gauss_seidel"}
    for name, timed in out.items():
        assert timed.reached and timed.error <= 1e-2, name
    assert out["direct"].error < 1e-10
    assert out["cg_amg"].iterations < out["gauss_seidel"].iterations < out["jacobi"].iterations


def test_nonlinear_dataset_solves_the_pde(tmp_path):
    config = NonlinearConfig(grid_size=9, chunk_size=2)
    with cf.ThreadPoolExecutor(max_workers=1) as executor:
        generate_nonlinear(tmp_path, 3, config, executor=executor, progress=False)
    forcing, solution = load_nonlinear(tmp_path)
    assert forcing.shape == solution.shape == (3, 9, 9)
    assert np.abs(solution).max() > 0.05  # the nonlinearity matters at this amplitude
    from deq_pde.datasets.nonlinear import nonlinear_sample

    dofs = nonlinear_sample(config, 1)["solution_dofs"]
    problem = nonlinear_problem(config, forcing[1])
    residual = problem.residual(dofs)[problem.bc.free]
    assert np.linalg.norm(residual) < 1e-8 * np.linalg.norm(problem.rhs)
    with pytest.raises(ValueError, match="does not hold a 'darcy'"):
        from deq_pde.datasets import load_darcy

        load_darcy(tmp_path)


def test_figure_is_written_and_shapes_are_checked(tmp_path):
    a = np.random.default_rng(0).random((2, 9, 9))
    path = plot_predictions(tmp_path / "f.png", a, a + 1, a + 1.01)
    assert path.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="share a"):
        plot_predictions(tmp_path / "g.png", a, a[:1], a)
