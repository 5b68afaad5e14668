"""Scaling analysis: exactly-t-step iterates, both Lipschitz estimators, budgets and the report schema.

Backend tests run for every installed framework (``pytest.importorskip`` inside the fixture), on a linear
map with a known top singular value and on t-step Picard on ``z <- A z + B x``, whose Jacobian is
``sum_{k<t} A^k B``.
"""

import copy
import importlib.util
import json
import math
from types import SimpleNamespace

import numpy as np
import pytest

from deq_core.analysis import (
    ReportError,
    build_report,
    check_budgets,
    format_table,
    geometric_budgets,
    summarize_ratios,
    validate_report,
    write_report,
)
from deq_core.analysis.plot import plot_scaling
from deq_core.testing.fixtures import jax_x64


def _torch_adapter():
    torch = pytest.importorskip("torch")
    from deq_core.torch import analysis, fixed_point

    return SimpleNamespace(
        name="torch",
        analysis=analysis,
        fixed_point=fixed_point,
        array=lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float64),
        numpy=lambda a: a.detach().cpu().numpy(),
        zeros=lambda shape: torch.zeros(shape, dtype=torch.float64),
        jacobian=lambda fn, x: torch.func.jacrev(fn)(x).detach().numpy(),
    )


def _jax_adapter():
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    from deq_core.jax import analysis, fixed_point

    return SimpleNamespace(
        name="jax",
        analysis=analysis,
        fixed_point=fixed_point,
        array=lambda a: jnp.asarray(np.asarray(a), dtype=jnp.float64),
        numpy=np.asarray,
        zeros=lambda shape: jnp.zeros(shape, dtype=jnp.float64),
        jacobian=lambda fn, x: np.asarray(jax.jit(jax.jacrev(fn))(x)),
    )


@pytest.fixture(params=["torch", "jax"])
def bk(request):
    """The analysis module of one backend (skipped when that backend is not installed), in float64."""
    if request.param == "jax":
        adapter = _jax_adapter()
        with jax_x64():
            yield adapter
    else:
        yield _torch_adapter()


def _matrix_with_singular_values(values, n_out, n_in, seed):
    rng = np.random.default_rng(seed)
    u, _ = np.linalg.qr(rng.standard_normal((n_out, n_out)))
    v, _ = np.linalg.qr(rng.standard_normal((n_in, n_in)))
    s = np.zeros((n_out, n_in))
    s[np.arange(len(values)), np.arange(len(values))] = values
    return u @ s @ v.T, v[:, 0]


def _contraction(seed=0, n=6, m=3):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, n))
    a = 0.8 * a / np.linalg.norm(a, 2)
    b = rng.standard_normal((n, m))
    return a, b


def _picard_jacobian(a, b, t):
    return sum(np.linalg.matrix_power(a, k) for k in range(t)) @ b


# --- linear map with a known top singular value ------------------------------------------------------------


def test_linear_map_both_estimators(bk):
    mat, top_right = _matrix_with_singular_values([3.0, 1.0, 0.5, 0.25], 5, 4, seed=1)
    m = bk.array(mat)
    fn = lambda x: x @ m.T
    x = bk.array(np.random.default_rng(2).standard_normal((3, 4)))
    local = bk.numpy(bk.analysis.local_lipschitz(fn, x, iters=60))
    np.testing.assert_allclose(local, 3.0, rtol=1e-8)

    directions = np.concatenate([np.random.default_rng(3).standard_normal((5, 4)), top_right[None]])
    ratios = bk.analysis.finite_difference_ratios(fn, x, bk.array(directions), [1e-3, 1.0])
    assert ratios.shape == (2, 6, 3)
    assert np.all(ratios <= 3.0 + 1e-9) and np.all(ratios >= 0.25 - 1e-9)
    np.testing.assert_allclose(ratios[:, -1], 3.0, rtol=1e-9)  # the top right singular vector attains sigma_1
    unit = directions / np.linalg.norm(directions, axis=1, keepdims=True)
    expected = np.linalg.norm(unit @ mat.T, axis=1)  # linear: the ratio is ||M d|| for every sample and scale
    np.testing.assert_allclose(ratios, np.broadcast_to(expected[None, :, None], ratios.shape), rtol=1e-9)
    summary = bk.analysis.lipschitz_summary(fn, x, bk.array(directions), [0.1], power_iters=60)
    assert summary["max"] == pytest.approx(3.0, rel=1e-9)
    assert summary["mean"] == pytest.approx(expected.mean(), rel=1e-9)
    assert summary["local"] == pytest.approx(3.0, rel=1e-8)


# --- t-step Picard on a linear contraction ----------------------------------------------------------------


@pytest.mark.parametrize("t", [1, 2, 5])
def test_picard_iterate_and_jacobian(bk, t):
    a, b = _contraction()
    am, bm = bk.array(a), bk.array(b)
    f = lambda z, x: z @ am.T + x @ bm.T
    fn = lambda x: bk.analysis.iterate_exactly(f, bk.zeros((x.shape[0], 6)), x, t)
    x = bk.array(np.random.default_rng(4).standard_normal((4, 3)))
    jac = _picard_jacobian(a, b, t)
    np.testing.assert_allclose(bk.numpy(fn(x)), bk.numpy(x) @ jac.T, rtol=1e-10, atol=1e-12)

    sigma = np.linalg.norm(jac, 2)
    np.testing.assert_allclose(bk.numpy(bk.analysis.local_lipschitz(fn, x, iters=80)), sigma, rtol=1e-7)
    top_right = np.linalg.svd(jac)[2][0]
    directions = np.concatenate([np.random.default_rng(5).standard_normal((3, 3)), top_right[None]])
    ratios = bk.analysis.finite_difference_ratios(fn, x, bk.array(directions), [1e-2])
    assert ratios.max() == pytest.approx(sigma, rel=1e-9)
    assert np.all(ratios <= sigma * (1 + 1e-9))


def test_fixed_point_with_zero_tol_runs_exactly_t_steps(bk):
    """``tol=0`` never stops early; the engine returns the image of its best measured iterate, z_t here."""
    a, b = _contraction()
    am, bm = bk.array(a), bk.array(b)
    f = lambda z, x: z @ am.T + x @ bm.T
    x = bk.array(np.random.default_rng(6).standard_normal((4, 3)))
    for t in (1, 3, 7):
        solution = bk.fixed_point(f, bk.zeros((4, 6)), x, solver="picard", tol=0.0, max_iter=t, trace=True)
        assert np.all(bk.numpy(solution.stats.nstep) == t)
        assert np.all(np.isfinite(bk.numpy(solution.stats.trace)))  # a residual for every one of the t steps
        assert not np.any(bk.numpy(solution.stats.converged))
        newest = bk.numpy(x) @ _picard_jacobian(a, b, t).T
        np.testing.assert_allclose(bk.numpy(solution.value), newest, rtol=1e-10, atol=1e-12)


def test_anderson_local_estimate_matches_exact_jacobian(bk):
    a, b = _contraction(seed=7)
    am, bm = bk.array(a), bk.array(b)
    f = lambda z, x: z @ am.T + x @ bm.T
    fn = lambda x: bk.analysis.iterate_exactly(f, bk.zeros((x.shape[0], 6)), x, 4, solver="anderson")
    x = bk.array(np.random.default_rng(8).standard_normal((2, 3)))
    full = bk.jacobian(fn, x)  # (batch, 6, batch, 3): samples are independent
    exact = [np.linalg.norm(full[i, :, i, :], 2) for i in range(2)]
    np.testing.assert_allclose(bk.numpy(bk.analysis.local_lipschitz(fn, x, iters=100)), exact, rtol=1e-6)


def test_scaling_analysis_per_budget(bk):
    a, b = _contraction(seed=9)
    am, bm = bk.array(a), bk.array(b)
    f = lambda z, x: z @ am.T + x @ bm.T
    forward = lambda x, t: bk.analysis.iterate_exactly(f, bk.zeros((x.shape[0], 6)), x, t)
    x = bk.array(np.random.default_rng(10).standard_normal((5, 3)))
    target = bk.numpy(x) @ np.linalg.solve(np.eye(6) - a, b).T  # the fixed point
    metric = lambda pred, tgt: float(np.mean((np.asarray(bk.numpy(pred)) - tgt) ** 2))
    out = bk.analysis.scaling_analysis(
        forward, x, target, [1, 2, 8, 30], metric, bk.array(np.eye(3)), [0.1], power_iters=80, progress=False
    )
    assert out["iterations"] == [1, 2, 8, 30]
    assert out["quality"][-1] < out["quality"][0]
    sigmas = [np.linalg.norm(_picard_jacobian(a, b, t), 2) for t in out["iterations"]]
    np.testing.assert_allclose(out["lipschitz"]["local"], sigmas, rtol=1e-7)
    assert all(mx <= s * (1 + 1e-9) for mx, s in zip(out["lipschitz"]["max"], sigmas, strict=True))
    assert all(mean <= mx for mean, mx in zip(out["lipschitz"]["mean"], out["lipschitz"]["max"], strict=True))


def test_bad_inputs_are_named(bk):
    fn = lambda x: 2.0 * x
    x = bk.array(np.ones((2, 3)))
    with pytest.raises(ValueError, match="directions must have shape"):
        bk.analysis.finite_difference_ratios(fn, x, bk.array(np.ones((2, 4))), [0.1])
    with pytest.raises(ValueError, match=r"directions\[1\] has zero norm"):
        bk.analysis.finite_difference_ratios(fn, x, bk.array(np.array([[1.0, 0, 0], [0, 0, 0]])), [0.1])
    with pytest.raises(ValueError, match=r"scales\[0\] must be a finite number > 0"):
        bk.analysis.finite_difference_ratios(fn, x, bk.array(np.eye(3)), [0.0])
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        bk.analysis.iterate_exactly(lambda z, x: z, x, None, 0)
    with pytest.raises(ValueError, match="f\\(z, args\\) must return an array shaped like z"):
        bk.analysis.iterate_exactly(lambda z, x: z[:, :2], x, None, 2)


def test_budgets():
    assert check_budgets([1, 2, 5]) == [1, 2, 5]
    with pytest.raises(ValueError, match=r"budgets\[1\] must be an integer >= 1"):
        check_budgets([1, 0])
    with pytest.raises(ValueError, match="strictly increasing"):
        check_budgets([2, 2])
    assert geometric_budgets(16, 5) == [1, 2, 4, 8, 16]
    assert geometric_budgets(30, 1) == [30]
    assert summarize_ratios(np.array([1.0, 3.0])) == {"max": 3.0, "mean": 2.0}
    assert math.isinf(summarize_ratios(np.array([1.0, np.inf]))["max"])


def _report(**overrides):
    report = build_report(
        domain="toy",
        task="sensing",
        backend="torch" if importlib.util.find_spec("torch") else "jax",
        device="cpu",
        iterations=[1, 2, 4],
        metric="mse",
        higher_is_better=False,
        implicit=[0.3, 0.2, float("nan")],
        explicit=0.25,
        baselines={"least_squares": {"value": 0.4, "seconds": 0.01}},
        lipschitz={"max": [1.0, 2.0, 3.0], "mean": [0.5, 1.0, 1.5], "local": [1.1, 2.1, 3.1]},
        params={"implicit": 100, "explicit": 98},
        seconds=1.5,
        config={"budgets": (1, 2, 4)},
    )
    report.update(overrides)
    return report


def test_build_report_is_valid_and_nulls_nonfinite():
    report = _report()
    assert report["quality"]["implicit"] == [0.3, 0.2, None]
    assert {"python", "numpy"} <= set(report["versions"])
    validate_report(json.loads(json.dumps(report)))


@pytest.mark.parametrize(
    ("mutate", "named"),
    [
        (lambda r: r.pop("quality"), r"report\['quality'\]: missing"),
        (lambda r: r.update(backend="mxnet"), r"report\['backend'\]: must be one of"),
        (lambda r: r["iterations"].append(3), r"report\['iterations'\]\[3\]: budgets must increase"),
        (
            lambda r: r["quality"]["implicit"].pop(),
            r"report\['quality'\]\['implicit'\]: must hold one value per",
        ),
        (lambda r: r["quality"].update(explicit="x"), r"report\['quality'\]\['explicit'\]: must be a number"),
        (
            lambda r: r["quality"]["baselines"]["least_squares"].pop("seconds"),
            r"\['least_squares'\]\['seconds'\]",
        ),
        (
            lambda r: r["lipschitz"]["max"].__setitem__(0, float("inf")),
            r"report\['lipschitz'\]\['max'\]\[0\]",
        ),
        (lambda r: r["lipschitz"].update(maxx=[1, 2, 3]), r"report\['lipschitz'\]\['maxx'\]: unknown key"),
        (lambda r: r["params"].update(implicit=1.5), r"report\['params'\]\['implicit'\]"),
        (lambda r: r["versions"].pop("python"), r"report\['versions'\]\['python'\]: missing"),
        (lambda r: r.update(surprise=1), r"report\['surprise'\]: unknown key"),
        (lambda r: r.update(seconds=-1.0), r"report\['seconds'\]: must be >= 0"),
    ],
)
def test_validate_report_names_the_bad_key(mutate, named):
    report = copy.deepcopy(_report())
    mutate(report)
    with pytest.raises(ReportError, match=named):
        validate_report(report)


def test_write_report_is_atomic_and_roundtrips(tmp_path):
    report = _report()
    path = write_report(report, tmp_path / "report.json")
    assert json.loads(path.read_text()) == json.loads(json.dumps(report))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]
    bad = copy.deepcopy(report)
    bad["quality"].pop("metric")
    with pytest.raises(ReportError, match="metric"):
        write_report(bad, tmp_path / "report.json")
    assert json.loads(path.read_text()) == json.loads(json.dumps(report))  # the old file is untouched


def test_table_and_plot(tmp_path):
    pytest.importorskip("matplotlib")
    report = _report()
    table = format_table(report)
    assert "least_squares" in table and "explicit" in table and table.count("implicit") >= 3
    path = plot_scaling(report, tmp_path / "scaling.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scaling.png"]


def test_loosest_tolerance_picks_the_loosest_setting_that_reaches_the_target():
    from deq_core.analysis.timing import loosest_tolerance

    tried = []

    def residual_at(tol: float) -> float:  # a solver that overshoots its own tolerance by 3x
        tried.append(tol)
        return 3 * tol

    tolerances = [10.0**-k for k in range(1, 9)]
    assert loosest_tolerance(residual_at, 1e-4, tolerances) == 1e-5
    assert len(tried) <= 5  # bisection, not a sweep
    with pytest.raises(ValueError, match="no tolerance down to 1.0e-08 reaches the residual 1.0e-09"):
        loosest_tolerance(residual_at, 1e-9, tolerances)
