"""Finite-element operators: meshes, Lagrange P1/P2 spaces (basix), assembly, Dirichlet conditions, problems.

The numpy/scipy reference path lives here; the batched assembly of ``deq_pde.operators.batched`` runs on
numpy, and its differentiable torch and JAX versions are in ``deq_pde.operators.torch`` and
``deq_pde.operators.jax`` (imported explicitly, each needs its framework).
"""

from deq_pde.operators.assembly import assemble_matrix, coefficient_at_quadrature, load, mass, stiffness
from deq_pde.operators.boundary import DirichletBC
from deq_pde.operators.evaluate import PointEvaluator, grid_points
from deq_pde.operators.mesh import Mesh, read_mesh, unit_square, write_mesh
from deq_pde.operators.mesh_checks import MeshError
from deq_pde.operators.problems import DarcyProblem, NonlinearDiffusion, gaussian_random_field, threshold
from deq_pde.operators.space import FunctionSpace, SparsityPattern

__all__ = [
    "DarcyProblem",
    "DirichletBC",
    "NonlinearDiffusion",
    "FunctionSpace",
    "Mesh",
    "MeshError",
    "PointEvaluator",
    "SparsityPattern",
    "assemble_matrix",
    "coefficient_at_quadrature",
    "gaussian_random_field",
    "grid_points",
    "load",
    "mass",
    "read_mesh",
    "stiffness",
    "threshold",
    "unit_square",
    "write_mesh",
]
