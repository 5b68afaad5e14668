"""``ImagingConfig``: every knob of an imaging run, with the quick, full and smoke sizes of each task."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from deq_core.config import Implicit, SolveOptions, solve_options
from deq_core.domains import smoke
from deq_core.errors import ConfigError

TASKS = {
    "deblur": "non-blind motion deblurring (random camera-shake kernel, circular boundary, noise 0.03)",
    "ct": "sparse-view parallel-beam CT (30 angles, noisy sinograms) of random-ellipse phantoms or --data",
    "denoise": "Gaussian denoising (sigma 25/255) of natural images",
}
MODELS = ("hqs", "pgd")
DATA_STEPS = ("auto", "prox", "cg", "richardson")
BACKWARDS = ("implicit", "jfb", "phantom", "unroll")
SCHEDULES = ("constant", "cosine")
STARTS = ("direct", "zero")


@dataclass(frozen=True)
class ImagingConfig:
    """One imaging run: problem, network, training (warm-started bank), evaluation; mistakes are ConfigErrors.

    ``model`` is ``hqs`` (data step ``(A*A + mu I)^-1 (A*y + mu z)``: exact by FFT for blur/identity, or
    ``cg_steps`` inner steps from ``z``: conjugate gradient when ``data_step`` is ``cg`` or the operator
    has no closed form, fixed-step gradient steps, a linear nonexpansive map of ``z``, when it is
    ``richardson``) or ``pgd`` (``z - eta A*(A z - y)``), iterated from ``start``: the direct reconstruction
    (``direct``: the measurement, or FBP for CT) or zero images (``zero``; the explicit twin always takes the
    direct reconstruction); the denoiser is a residual CNN with
    ``depth`` 3x3 conv layers of ``features`` channels and a noise-level input channel. Training keeps a
    bank of ``bank_size`` patches whose iterates are cached: every ``refresh_every`` steps ``refresh``
    patches are replaced (their iterates restart from the start image); each step advances the batch's
    cached iterates by ``warm_iters`` no-grad solver iterations and backpropagates with ``backward``
    (``jfb``: the gradient of one more cell application; ``implicit``: an adjoint solve of at most
    ``adjoint_iters`` Picard steps). An entry thus lives through about ``batch * refresh_every / refresh``
    visits of ``warm_iters + 1`` iterations: the depth of the iterates training sees. The explicit model,
    and the unrolled network of ``unrolled_stages`` untied cells (if > 0), train for ``explicit_steps`` on
    fresh patches at the same rate. All models use Adam at ``lr``, held (``constant``) or annealed to zero
    (``cosine``) over the run (``lr_schedule``).
    ``max_iter`` is the training budget K (the DEQ's own solve); ``solver``, ``backward`` (``implicit``: an
    adjoint solve of at most ``adjoint_iters`` Picard steps), ``tol`` and ``max_iter`` are validated once by
    deq-core into :attr:`solve`, the :class:`~deq_core.config.SolveOptions` the DEQ is built with (the JSON
    form keeps the flat keys). The scaling analysis runs every budget
    in ``budgets`` (up to >= 2K). The BM3D-based baselines tune over ``bm3d_grid`` (empty: their own
    grid) on the first ``bm3d_tune_images`` validation images (0: all), since each grid point costs
    several BM3D calls.
    """

    image_size: int = 128
    patch_size: int = 48
    noise: float = 0.03
    kernel_size: int = 13
    angles: int = 30
    data: str | None = None
    n_val: int = 6
    n_test: int = 12
    model: str = "hqs"
    data_step: str = "auto"
    cg_steps: int = 5
    start: str = "direct"
    features: int = 32
    depth: int = 6
    spectral_norm: bool = False
    mu0: float = 0.05
    eta0: float = 1.0
    sigma0: float = 0.05
    solver: str = "picard"
    backward: str = "jfb"
    adjoint_iters: int = 8
    tol: float = 1e-4
    max_iter: int = 16
    bank_size: int = 1024
    refresh: int = 2
    refresh_every: int = 1
    warm_iters: int = 3
    batch: int = 8
    steps: int = 2000
    explicit_steps: int = 2000
    unrolled_stages: int = 0
    lr: float = 1e-3
    lr_schedule: str = "cosine"
    budgets: tuple[int, ...] = (1, 2, 3, 5, 8, 12, 16, 24, 32, 48, 64)
    lipschitz_samples: int = 4
    percentiles: tuple[float, ...] = (10.0, 50.0, 90.0, 99.0)
    scales: tuple[float, ...] = (0.01, 0.1)
    power_iters: int = 5
    baselines: bool = True
    bm3d_grid: tuple[float, ...] = ()
    bm3d_tune_images: int = 0
    grid_budgets: tuple[int, ...] = (1, 5)
    solve: SolveOptions = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Check the choices and sizes, naming the bad field; build :attr:`solve` through deq-core."""
        for name, value, valid in (
            ("model", self.model, MODELS),
            ("data_step", self.data_step, DATA_STEPS),
            ("backward", self.backward, BACKWARDS),
            ("lr_schedule", self.lr_schedule, SCHEDULES),
            ("start", self.start, STARTS),
        ):
            if value not in valid:
                raise ConfigError(f"ImagingConfig.{name} must be one of {valid}, got {value!r}")
        for name in (
            "image_size",
            "patch_size",
            "bank_size",
            "batch",
            "steps",
            "max_iter",
            "warm_iters",
            "refresh_every",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"ImagingConfig.{name} must be an integer >= 1, got {value!r}")
        stages = self.unrolled_stages
        if isinstance(stages, bool) or not isinstance(stages, int) or stages < 0:
            raise ConfigError(f"ImagingConfig.unrolled_stages must be an integer >= 0, got {stages!r}")
        if self.batch > self.bank_size or self.refresh > self.bank_size:
            raise ConfigError(
                f"ImagingConfig: batch ({self.batch}) and refresh ({self.refresh}) must not exceed "
                f"bank_size ({self.bank_size})"
            )
        if max(self.budgets) < 2 * self.max_iter:
            raise ConfigError(
                f"ImagingConfig.budgets must reach at least 2 * max_iter = {2 * self.max_iter}, "
                f"got {list(self.budgets)}"
            )
        if not self.noise > 0:
            raise ConfigError(f"ImagingConfig.noise must be > 0, got {self.noise!r}")
        backward: Any = self.backward
        if backward == "implicit":
            backward = Implicit(solver="picard", tol=self.tol, max_iter=self.adjoint_iters)
        try:
            options = solve_options(
                solver=self.solver, backward=backward, tol=self.tol, max_iter=self.max_iter
            )
        except ConfigError as error:
            raise ConfigError(f"ImagingConfig: {error}") from None
        object.__setattr__(self, "solve", options)

    def to_dict(self) -> dict[str, Any]:
        """The plain (JSON) form that :func:`parse_config` reads back: the flat fields, ``solve`` left out."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}


_TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    "deblur": {"noise": 0.03},
    "denoise": {"noise": 25 / 255, "mu0": 1.0, "sigma0": 0.1},
    "ct": {
        "image_size": 64,
        "patch_size": 64,
        "noise": 0.01,
        "mu0": 0.01,
        "bank_size": 512,
        "refresh": 1,
        "refresh_every": 2,
        "data_step": "richardson",
        "cg_steps": 4,
        "start": "zero",
    },
}
_QUICK = {
    "image_size": 128,
    "patch_size": 40,
    "n_val": 4,
    "n_test": 8,
    "bank_size": 1024,
    "refresh": 2,
    "steps": 1500,
    "explicit_steps": 1500,
    "lr": 2e-3,
    "max_iter": 16,
    "budgets": (1, 2, 3, 5, 8, 12, 16, 24, 32, 48, 64),
    "lipschitz_samples": 2,
    "scales": (0.01,),
    "power_iters": 0,
    "bm3d_tune_images": 2,
}
_QUICK_TASK = {
    "deblur": {"bm3d_grid": (0.2, 0.4)},  # BM3D-PnP prior weight
    "denoise": {"bm3d_grid": (0.075, 0.1, 0.15)},  # the noise std BM3D assumes (true: 25/255)
    "ct": {
        "image_size": 64,
        "patch_size": 64,
        "batch": 4,
        "bank_size": 32,
        "refresh": 1,
        "refresh_every": 16,
        "data_step": "richardson",
        "cg_steps": 4,
        "steps": 400,
        "explicit_steps": 400,
    },
}
_SMOKE = {
    "image_size": 32,
    "patch_size": 24,
    "kernel_size": 7,
    "angles": 8,
    "n_val": 2,
    "n_test": 2,
    "features": 8,
    "depth": 3,
    "bank_size": 8,
    "refresh": 2,
    "bm3d_grid": (),
    "bm3d_tune_images": 0,
    "batch": 2,
    "steps": 2,
    "explicit_steps": 2,
    "max_iter": 2,
    "budgets": (1, 2, 4),
    "lipschitz_samples": 1,
    "percentiles": (50.0,),
    "scales": (0.1,),
    "power_iters": 0,
    "cg_steps": 1,
    "grid_budgets": (1,),
    "unrolled_stages": 2,
}


def default_config(task: str, quick: bool) -> dict[str, Any]:
    """The config of ``task``: full (GPU), ``quick`` (minutes on 2 CPU cores) or smoke (DEQ_SMOKE=1)."""
    if task not in TASKS:
        raise ConfigError(f"unknown imaging task {task!r}; valid tasks: {', '.join(TASKS)}")
    values: dict[str, Any] = dict(_TASK_DEFAULTS[task])
    if quick or smoke():
        values |= _QUICK | _QUICK_TASK.get(task, {})
    else:
        values["unrolled_stages"] = 8  # on a GPU the untied comparison is affordable
    if smoke():
        values |= _SMOKE
        if task == "ct":
            values |= {"image_size": 32, "patch_size": 32}
    return ImagingConfig(**values).to_dict()


def parse_config(config: dict[str, Any]) -> ImagingConfig:
    """An :class:`ImagingConfig` from a (JSON) dict; lists become tuples, unknown keys raise naming them."""
    fields = {f.name for f in dataclasses.fields(ImagingConfig) if f.init}
    unknown = sorted(set(config) - fields)
    if unknown:
        raise ConfigError(f"unknown imaging config keys {unknown}; valid keys: {sorted(fields)}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in config.items()}
    return ImagingConfig(**values)
