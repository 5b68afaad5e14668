"""The linear-program data model: ``min c.x + c0  s.t.  row_lo <= A x <= row_hi,  lo <= x <= hi``."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

__all__ = ["LinearProgram"]


def _vector(name: str, value: object, size: int) -> np.ndarray:
    """Return ``value`` as a contiguous float64 vector of length ``size`` or raise naming ``name``."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"LinearProgram.{name}: expected a real numeric array, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if arr.shape != (size,):
        raise ValueError(f"LinearProgram.{name}: expected shape ({size},), got {arr.shape}")
    return arr


@dataclass(frozen=True, eq=False)
class LinearProgram:
    """A validated LP in minimisation form with two-sided row and variable bounds (A is CSR, float64)."""

    c: np.ndarray
    A: sp.csr_matrix
    row_lo: np.ndarray
    row_hi: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    obj_const: float = 0.0
    maximize: bool = False
    name: str = "LP"
    row_names: tuple[str, ...] | None = None
    col_names: tuple[str, ...] | None = None
    integer: np.ndarray | None = field(default=None)

    def __post_init__(self) -> None:
        """Coerce arrays to float64/CSR and validate shapes, finiteness and bound order."""
        A = self.A
        if not sp.issparse(A):
            A = np.asarray(A)
            if A.ndim != 2:
                raise ValueError(f"LinearProgram.A: expected a 2-D matrix, got shape {A.shape}")
        A = sp.csr_matrix(A, dtype=np.float64)
        A.sum_duplicates()
        A.eliminate_zeros()
        A.sort_indices()
        m, n = A.shape
        c = _vector("c", self.c, n)
        row_lo = _vector("row_lo", self.row_lo, m)
        row_hi = _vector("row_hi", self.row_hi, m)
        lo = _vector("lo", self.lo, n)
        hi = _vector("hi", self.hi, n)
        if not np.all(np.isfinite(c)):
            raise ValueError(f"LinearProgram.c: non-finite objective coefficient at index {_first_bad(c)}")
        if not np.all(np.isfinite(A.data)):
            k = int(np.flatnonzero(~np.isfinite(A.data))[0])
            i = int(np.searchsorted(A.indptr, k, side="right") - 1)
            raise ValueError(f"LinearProgram.A: non-finite coefficient {A.data[k]} at ({i}, {A.indices[k]})")
        for nm, lower, upper in (("row", row_lo, row_hi), ("variable", lo, hi)):
            if np.any(np.isnan(lower)) or np.any(np.isnan(upper)):
                raise ValueError(f"LinearProgram: nan in {nm} bounds")
            if np.any(lower == np.inf) or np.any(upper == -np.inf):
                raise ValueError(f"LinearProgram: {nm} lower bound +inf or upper bound -inf")
            bad = np.flatnonzero(lower > upper)
            if bad.size:
                j = int(bad[0])
                raise ValueError(
                    f"LinearProgram: {nm} {j} has lower bound {lower[j]} > upper bound {upper[j]}"
                )
        if not np.isfinite(self.obj_const):
            raise ValueError(f"LinearProgram.obj_const: must be finite, got {self.obj_const}")
        if self.row_names is not None and len(self.row_names) != m:
            raise ValueError(f"LinearProgram.row_names: expected {m} names, got {len(self.row_names)}")
        if self.col_names is not None and len(self.col_names) != n:
            raise ValueError(f"LinearProgram.col_names: expected {n} names, got {len(self.col_names)}")
        integer = None
        if self.integer is not None:
            integer = np.asarray(self.integer, dtype=bool)
            if integer.shape != (n,):
                raise ValueError(f"LinearProgram.integer: expected shape ({n},), got {integer.shape}")
        set_ = object.__setattr__
        for key, val in (("A", A), ("c", c), ("row_lo", row_lo), ("row_hi", row_hi), ("lo", lo), ("hi", hi)):
            set_(self, key, val)
        set_(self, "obj_const", float(self.obj_const))
        set_(self, "integer", integer)
        if self.row_names is not None:
            set_(self, "row_names", tuple(self.row_names))
        if self.col_names is not None:
            set_(self, "col_names", tuple(self.col_names))

    @property
    def shape(self) -> tuple[int, int]:
        """(number of rows, number of columns)."""
        return self.A.shape

    @property
    def num_rows(self) -> int:
        """Number of constraint rows."""
        return self.A.shape[0]

    @property
    def num_cols(self) -> int:
        """Number of variables."""
        return self.A.shape[1]

    def objective(self, x: np.ndarray) -> float:
        """Minimisation objective ``c.x + c0`` at ``x``."""
        return float(self.c @ np.asarray(x, dtype=np.float64) + self.obj_const)

    def user_objective(self, value: float) -> float:
        """Convert a minimisation objective into the file's sense (negated back for maximisation)."""
        return -value if self.maximize else value

    def equals(self, other: LinearProgram) -> bool:
        """Exact equality of all data (matrix pattern and values, bounds, names, sense)."""

        def same(a: np.ndarray, b: np.ndarray) -> bool:
            return a.shape == b.shape and bool(np.array_equal(a, b))

        int_a = self.integer if self.integer is not None else np.zeros(self.num_cols, bool)
        int_b = other.integer if other.integer is not None else np.zeros(other.num_cols, bool)
        return (
            self.shape == other.shape
            and same(self.A.indptr, other.A.indptr)
            and same(self.A.indices, other.A.indices)
            and same(self.A.data, other.A.data)
            and all(same(getattr(self, k), getattr(other, k)) for k in ("c", "row_lo", "row_hi", "lo", "hi"))
            and self.obj_const == other.obj_const
            and self.maximize == other.maximize
            and same(int_a, int_b)
        )


def _first_bad(v: np.ndarray) -> int:
    """Index of the first non-finite entry of ``v``."""
    return int(np.flatnonzero(~np.isfinite(v))[0])
