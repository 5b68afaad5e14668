"""Models (torch and JAX): shapes, gradients, the explicit twin's size; configs; the plugin's smoke runs."""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import pytest

from deq_imaging.datasets.problem import make_problem
from deq_imaging.evaluation import fourier_directions
from deq_imaging.models.config import TASKS, default_config, parse_config
from deq_imaging.operators import reference as ref
from deq_imaging.operators.blur_geometry import BlurGeometry


def _cfg(task: str, **over):
    cfg = parse_config(default_config(task, quick=True))
    small = dict(
        image_size=32, patch_size=24, n_val=2, n_test=2, features=8, depth=3, kernel_size=7, angles=8
    )
    return dataclasses.replace(cfg, **(small | over))


@pytest.mark.parametrize("task", list(TASKS))
@pytest.mark.parametrize("quick", [True, False])
def test_default_configs_validate(task, quick):
    config = default_config(task, quick)
    cfg = parse_config(json.loads(json.dumps(config)))
    assert max(cfg.budgets) >= 2 * cfg.max_iter
    with pytest.raises(ValueError, match="unknown imaging config keys"):
        parse_config(config | {"bogus": 1})


def test_bad_config_values_name_the_field():
    with pytest.raises(ValueError, match="model"):
        parse_config(default_config("deblur", True) | {"model": "admm"})
    with pytest.raises(ValueError, match="budgets"):
        parse_config(default_config("deblur", True) | {"budgets": [1, 2]})
    with pytest.raises(ValueError, match="lr_schedule"):
        parse_config(default_config("deblur", True) | {"lr_schedule": "step"})
    with pytest.raises(ValueError, match="refresh_every"):
        parse_config(default_config("ct", True) | {"refresh_every": 0})
    with pytest.raises(ValueError, match="start"):
        parse_config(default_config("ct", True) | {"start": "fbp"})
    with pytest.raises(ValueError, match="unrolled_stages"):
        parse_config(default_config("ct", True) | {"unrolled_stages": -1})


def test_config_holds_validated_solve_options():
    """The flat solve keys become one deq-core SolveOptions, checked once; the JSON form stays flat."""
    from deq_core.config import Implicit, solve_options
    from deq_core.errors import ConfigError

    cfg = parse_config(default_config("ct", True) | {"backward": "implicit", "adjoint_iters": 5})
    backward = Implicit(solver="picard", tol=cfg.tol, max_iter=5)
    assert cfg.solve == solve_options("picard", backward, tol=cfg.tol, max_iter=cfg.max_iter)
    assert "solve" not in cfg.to_dict() and parse_config(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ConfigError, match="ImagingConfig: solver: unknown name 'newton'"):
        parse_config(default_config("ct", True) | {"solver": "newton"})
    with pytest.raises(ConfigError, match="unknown imaging config keys"):
        parse_config(default_config("ct", True) | {"solve": {}})
    with pytest.raises(ConfigError, match="unknown imaging task"):
        default_config("inpaint", True)


def test_data_step_choice_per_operator():
    from deq_imaging.models.family import data_step_choice

    assert data_step_choice("blur", "auto", 5) == (0, "cg")  # the exact FFT proximal step
    assert data_step_choice("identity", "richardson", 3) == (3, "richardson")
    assert data_step_choice("radon", "auto", 4) == (4, "cg")  # no closed form: CG steps
    with pytest.raises(ValueError, match="closed-form proximal step; 'radon'"):
        data_step_choice("radon", "prox", 4)


def test_fourier_directions_follow_singular_values():
    kernel = np.ones((3, 3)) / 9
    op = ref.CircularBlur(kernel, (16, 16))
    gains = BlurGeometry.build(kernel, (16, 16), "circular").otf
    directions, info = fourier_directions(op, 1, (0.0, 50.0, 100.0), gains)
    assert directions.shape == (3, 1, 16, 16)
    measured = [i["gain"] for i in info]
    assert measured[0] > measured[1] > measured[2]  # ranked from the largest singular value down
    for d, i in zip(directions, info, strict=True):
        assert np.isclose(np.linalg.norm(d), i["gain"], rtol=1e-5)


def _torch_models(task: str, **over):
    torch = pytest.importorskip("torch")
    from deq_imaging.models.torch import Explicit, ImplicitNet, build_cell, count_parameters

    cfg = _cfg(task, **over)
    problem = make_problem(task, cfg, 0)
    torch.manual_seed(0)
    implicit = ImplicitNet(build_cell(problem.spec, cfg), solver="picard", backward="implicit", max_iter=3)
    explicit = Explicit(build_cell(problem.spec, cfg))
    assert count_parameters(implicit) == count_parameters(explicit)
    return torch, problem, implicit, explicit


@pytest.mark.parametrize(("task", "over"), [("deblur", {}), ("ct", {}), ("deblur", {"model": "pgd"})])
def test_torch_models_shapes_and_gradients(task, over):
    torch, problem, implicit, explicit = _torch_models(task, **over)
    y = torch.as_tensor(problem.test_y)
    z = implicit(y)
    assert z.shape == problem.test_x.shape
    assert implicit.budget(y, 2).shape == z.shape
    loss = ((z - torch.as_tensor(problem.test_x)) ** 2).mean() + explicit(y).pow(2).mean()
    loss.backward()
    for model in (implicit, explicit):
        grads = [p.grad for p in model.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        assert any(float(g.abs().sum()) > 0 for g in grads)


def test_torch_spectral_norm_denoiser():
    torch = pytest.importorskip("torch")
    from deq_imaging.models.torch import Denoiser

    net = Denoiser(1, 8, 3, spectral=True)
    out = net(torch.rand(2, 1, 12, 12), torch.tensor(0.1))
    assert out.shape == (2, 1, 12, 12)


@pytest.mark.parametrize(("task", "over"), [("deblur", {}), ("denoise", {"model": "pgd"})])
def test_jax_models_shapes_and_gradients(task, over):
    jax = pytest.importorskip("jax")
    import equinox as eqx
    import jax.numpy as jnp

    from deq_imaging.models.jax import Explicit, ImplicitNet, build_cell, count_parameters

    cfg = _cfg(task, **over)
    problem = make_problem(task, cfg, 0)
    k1, k2 = jax.random.split(jax.random.key(0))
    implicit = ImplicitNet(
        build_cell(problem.spec, cfg, k1), solver="picard", backward="implicit", max_iter=3
    )
    explicit = Explicit(build_cell(problem.spec, cfg, k2))
    assert count_parameters(implicit) == count_parameters(explicit)
    y, x = jnp.asarray(problem.test_y), jnp.asarray(problem.test_x)
    assert implicit(y).shape == x.shape
    assert implicit.budget(y, 2).shape == x.shape
    for model in (implicit, explicit):
        grads = eqx.filter_jit(eqx.filter_grad(lambda m: jnp.mean((m(y) - x) ** 2)))(model)
        leaves = jax.tree.leaves(eqx.filter(grads, eqx.is_inexact_array))
        assert all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)
        assert any(float(jnp.abs(g).sum()) > 0 for g in leaves)


@pytest.mark.parametrize("spectral", [False, True])
def test_jax_denoiser_nhwc_layout_matches_its_layers(spectral):
    """The denoiser runs its ``eqx.nn.Conv2d`` layers in NHWC layout (fast in XLA:CPU loops); the result
    equals the layers' own NCHW call."""
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    from deq_core.jax.regularizers import SpectralNorm
    from deq_imaging.models.jax import Denoiser

    net = Denoiser(jax.random.key(0), 2, 8, 3, spectral=spectral)
    x = jax.random.uniform(jax.random.key(1), (3, 2, 10, 12))
    sigma = jnp.asarray(0.1)
    h = jnp.concatenate([x, jnp.full((3, 1, 10, 12), 0.1)], axis=1)
    for i, layer in enumerate(net.layers):
        layer = layer.normalized() if isinstance(layer, SpectralNorm) else layer
        h = jax.vmap(layer)(h)
        h = jax.nn.relu(h) if i < len(net.layers) - 1 else h
    np.testing.assert_allclose(np.asarray(net(x, sigma)), np.asarray(x - h), atol=1e-5)


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_zero_start_and_explicit_on_the_direct_reconstruction(backend):
    """``start="zero"`` starts the DEQ from zero images; the explicit twin always takes the direct
    reconstruction (FBP for CT) whatever the DEQ's start."""
    if not _has(backend):
        pytest.skip(f"{backend} not installed")
    cfg = _cfg("ct", start="zero")
    problem = make_problem("ct", cfg, 0)
    if backend == "torch":
        import torch

        from deq_imaging.models import torch as models

        cell = models.build_cell(problem.spec, cfg)
        y = torch.as_tensor(problem.test_y)
    else:
        import jax
        import jax.numpy as jnp

        from deq_imaging.models import jax as models

        cell = models.build_cell(problem.spec, cfg, jax.random.key(0))
        y = jnp.asarray(problem.test_y)
    start, direct = np.asarray(cell.init(y)), np.asarray(cell.family.direct(y))
    assert start.shape == direct.shape == problem.test_x.shape
    assert not start.any() and np.abs(direct).max() > 0.1
    explicit = models.Explicit(cell)
    once, expected = explicit(y), cell(cell.family.direct(y), y)
    if backend == "torch":
        once, expected = once.detach(), expected.detach()
    np.testing.assert_allclose(np.asarray(once), np.asarray(expected), atol=1e-6)
    with pytest.raises(ValueError, match="start"):
        cell.family.init(y, "fbp")


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_unrolled_chains_untied_cells(backend):
    """``Unrolled`` applies its K cells in order from the first cell's start and holds K cells' parameters."""
    if not _has(backend):
        pytest.skip(f"{backend} not installed")
    cfg = _cfg("deblur")
    problem = make_problem("deblur", cfg, 0)
    if backend == "torch":
        import torch

        from deq_imaging.models import torch as models

        cells = [models.build_cell(problem.spec, cfg) for _ in range(3)]
        y, as_numpy = torch.as_tensor(problem.test_y), lambda a: a.detach().numpy()
    else:
        import jax
        import jax.numpy as jnp

        from deq_imaging.models import jax as models

        cells = [models.build_cell(problem.spec, cfg, k) for k in jax.random.split(jax.random.key(0), 3)]
        y, as_numpy = jnp.asarray(problem.test_y), np.asarray
    unrolled = models.Unrolled(cells)
    assert models.count_parameters(unrolled) == 3 * models.count_parameters(models.Explicit(cells[0]))
    expected = cells[2](cells[1](cells[0](cells[0].init(y), y), y), y)
    np.testing.assert_allclose(as_numpy(unrolled(y)), as_numpy(expected), atol=1e-6)
    assert not np.allclose(
        as_numpy(unrolled(y)), as_numpy(cells[0](cells[0](cells[0](cells[0].init(y), y), y), y))
    )
    with pytest.raises(ValueError, match="at least one cell"):
        models.Unrolled([])


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_richardson_data_step_is_nonexpansive_and_converges(backend):
    """Richardson steps approach the CG solution of the CT normal equations and never expand a difference
    of starting images (the CG step, whose step size depends on ``z``, does not have that guarantee)."""
    if not _has(backend):
        pytest.skip(f"{backend} not installed")
    cfg = _cfg("ct")
    problem = make_problem("ct", cfg, 0)
    rng = np.random.default_rng(0)
    z1, z2 = (rng.random(problem.test_x.shape).astype(np.float32) for _ in range(2))
    if backend == "torch":
        import torch

        from deq_imaging.models import torch as models

        family, arr, jit = models.OperatorFamily(problem.spec), torch.as_tensor, lambda f: f
        mu = torch.tensor(0.5 * family.norm2(problem.test_y.shape))
    else:
        import jax
        import jax.numpy as jnp

        from deq_imaging.models import jax as models

        family, arr, jit = models.OperatorFamily(problem.spec), jnp.asarray, jax.jit
        mu = jnp.asarray(0.5 * family.norm2(problem.test_y.shape))
    y = arr(problem.test_y)
    op, norm2 = family.get(y.shape), family.norm2(y.shape)
    solve = jit(lambda z: models.richardson(op, y, z, mu, norm2, 30))
    exact = np.asarray(jit(lambda z: models.conjugate_gradient(op, y, z, mu, 30))(arr(z1)))
    assert np.linalg.norm(np.asarray(solve(arr(z1))) - exact) < 1e-2 * np.linalg.norm(exact)
    three = jit(lambda z: models.richardson(op, y, z, mu, norm2, 3))
    moved = np.linalg.norm(np.asarray(three(arr(z1))) - np.asarray(three(arr(z2))))
    assert moved <= np.linalg.norm(z1 - z2) * (1 + 1e-5)


@pytest.mark.parametrize("task", ["deblur", "denoise", "ct"])
def test_plugin_smoke_run(task, tmp_path, monkeypatch):
    backend = os.environ.get("DEQ_BACKEND") or ("torch" if _has("torch") else "jax")
    if not _has(backend):
        pytest.skip(f"{backend} not installed")
    monkeypatch.setenv("DEQ_SMOKE", "1")
    from deq_core.analysis import validate_report
    from deq_imaging.plugin import domain

    report = domain.run(task, domain.default_config(task, True), backend, "cpu", tmp_path, 0)
    validate_report(report)
    assert report["iterations"] == [1, 2, 4]
    assert report["params"]["implicit"] == report["params"]["explicit"]
    unrolled = report["extra"]["unrolled"]  # the smoke config trains a 2-stage unrolled network
    assert unrolled["stages"] == 2 and unrolled["params"] == 2 * report["params"]["explicit"]
    assert np.isfinite(unrolled["psnr"]) and "train_unrolled" in report["extra"]["seconds_per_phase"]
    assert report["quality"]["baselines"]
    assert (tmp_path / "grid.png").stat().st_size > 0


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None
