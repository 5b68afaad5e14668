"""The imaging networks around a cell, written once: the DEQ, its explicit twin and the unrolled network.

``ImplicitNet`` is the DEQ of a cell started from ``cell.init(y)`` (the direct reconstruction: the
measurement for blur/denoise, FBP for CT; or zeros); ``Explicit`` applies the same cell once to the direct
reconstruction (the same network and parameter count, trained as a one-shot model); ``Unrolled`` chains K
cells with untied weights. A backend's base class (see :mod:`deq_imaging.models.cells`) also provides
``_deq_class`` (deq-core's ``DEQ``), ``_iterate`` (deq-core's ``iterate_exactly``) and ``_sequence`` (how
it holds a list of submodules).
"""

from __future__ import annotations

from typing import Any


class ImplicitNet:
    """The DEQ of a cell, started from ``cell.init(y)``; ``budget(y, t)`` is the t-th iterate."""

    deq: Any

    def __init__(self, cell: Any, options: Any = None, **solve_options: Any) -> None:
        """The training solve: ``options`` (a :class:`~deq_core.config.SolveOptions`, e.g.
        ``ImagingConfig.solve``) or ``solve_options`` as deq-core's ``DEQ`` takes them."""
        self._begin()  # type: ignore[attr-defined]
        self.deq = self._deq_class(cell, options, **solve_options)  # type: ignore[attr-defined]

    def forward(self, y: Any, z0: Any = None) -> Any:
        """The equilibrium reconstruction (from ``z0``, e.g. a cached iterate, or the cell's start)."""
        return self.deq(y, self.deq.cell.init(y) if z0 is None else z0)[0]

    def budget(self, y: Any, steps: int, z0: Any = None) -> Any:
        """The reconstruction after exactly ``steps`` solver iterations from ``z0`` (default: the start)."""
        z0 = self.deq.cell.init(y) if z0 is None else z0
        return self._iterate(self.deq.cell, z0, y, steps, self.deq.options.solver)  # type: ignore[attr-defined]


class Explicit:
    """The same cell applied once to the direct reconstruction: a one-shot network of the same size."""

    cell: Any

    def __init__(self, cell: Any) -> None:
        """Wrap a freshly initialised cell."""
        self._begin()  # type: ignore[attr-defined]
        self.cell = cell

    def forward(self, y: Any) -> Any:
        """``cell(direct(y), y)``."""
        return self.cell(self.cell.family.direct(y), y)


class Unrolled:
    """``K`` cells with their own weights applied in sequence from the first cell's start: the untied
    (unrolled) counterpart of the DEQ, with ``K`` times its parameters, trained by backpropagation."""

    cells: Any

    def __init__(self, cells: list[Any]) -> None:
        """Chain ``cells`` (at least one)."""
        if not cells:
            raise ValueError("Unrolled needs at least one cell")
        self._begin()  # type: ignore[attr-defined]
        self.cells = self._sequence(cells)  # type: ignore[attr-defined]

    def forward(self, y: Any) -> Any:
        """``cell_K(... cell_1(init(y), y) ..., y)``."""
        z = self.cells[0].init(y)
        for cell in self.cells:
            z = cell(z, y)
        return z
