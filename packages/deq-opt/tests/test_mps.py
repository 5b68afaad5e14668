"""MPS reader/writer: reference instances, malformed files, spec semantics, exact round trips (also a
hypothesis property over random small LPs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from _data import instance_names
from hypothesis import given, settings
from hypothesis import strategies as st

from deq_opt import LinearProgram
from deq_opt.baselines import solve_glop
from deq_opt.datasets import MPSFormatError, mps_text, parse_mps, random_lp, read_mps, write_mps
from deq_opt.datasets.generators import combinatorial_auction_lp, facility_location_lp


@pytest.mark.parametrize("name", instance_names())
def test_instance_reads_and_glop_matches_reference(name: str, lp_data: Path, lp_meta: dict) -> None:
    """Every reference instance parses to the listed size and GLOP reproduces its status/objective."""
    assert name in lp_meta, f"{name} is not in {lp_data / 'instances.json'}"
    info = lp_meta[name]
    lp = read_mps(lp_data / "instances" / f"{name}.mps")
    assert lp.shape == (info["rows"], info["cols"])
    res = solve_glop(lp)
    if info["status"] == "infeasible":
        assert res.status == "infeasible"
    else:
        assert res.status == "optimal"
        ref = info["objective"]
        assert abs(lp.user_objective(res.objective) - ref) <= 1e-6 * max(1.0, abs(ref))


@pytest.mark.parametrize("name", ["afiro", "adlittle", "sctest", "smalllp"])
def test_fixed_format_matches_free(name: str, lp_data: Path) -> None:
    """Netlib files are valid fixed-format MPS: both readers give the same LP."""
    path = lp_data / "instances" / f"{name}.mps"
    assert read_mps(path, fmt="fixed").equals(read_mps(path, fmt="free"))


def test_malformed_files_rejected(lp_data: Path) -> None:
    """Every malformed file fails with its path and a line number in the message."""
    files = sorted((lp_data / "malformed").glob("*.mps"))
    assert files
    for path in files:
        with pytest.raises(MPSFormatError) as err:
            read_mps(path)
        assert str(path) in str(err.value) and err.value.line >= 1


def test_nan_error_points_at_line(lp_data: Path) -> None:
    """The nan in the matrix of nan1.mps is reported on its own line."""
    with pytest.raises(MPSFormatError, match="non-finite") as err:
        read_mps(lp_data / "malformed" / "nan1.mps")
    lines = (lp_data / "malformed" / "nan1.mps").read_text().splitlines()
    assert "nan" in lines[err.value.line - 1]


BASE = """NAME T
ROWS
 N obj
 G r1
 L r2
 E r3
 E r4
COLUMNS
 x obj 1 r1 1
 x r2 1 r3 1
 y obj 2 r1 1
 y r4 1
RHS
 rhs obj 5 r1 1
 rhs r2 4 r3 2
 rhs r4 3
RANGES
 rng r1 -2 r2 -3
 rng r3 -1 r4 2
BOUNDS
 UP b x -1
 FR b y
ENDATA
"""


def test_spec_semantics() -> None:
    """RANGES sign rules, negative UP bound, FR, objective constant from RHS."""
    lp = parse_mps(BASE)
    np.testing.assert_array_equal(lp.row_lo, [1, 1, 1, 3])
    np.testing.assert_array_equal(lp.row_hi, [3, 4, 2, 5])
    np.testing.assert_array_equal(lp.lo, [-np.inf, -np.inf])
    np.testing.assert_array_equal(lp.hi, [-1, np.inf])
    assert lp.obj_const == -5.0


def test_bound_types_and_maximize() -> None:
    """MI/PL/BV/LI/UI/FX bounds, integer markers and OBJSENSE MAX."""
    text = """NAME B
OBJSENSE
    MAX
ROWS
 N obj
 L r
COLUMNS
 a obj 1 r 1
 MARKER 'MARKER' 'INTORG'
 b obj 1 r 1
 MARKER 'MARKER' 'INTEND'
 c obj 1 r 1
 d obj 1 r 1
 e obj 1 r 1
 f obj 1 r 1
RHS
 rhs r 10
BOUNDS
 MI bnd a
 UP bnd a 3
 BV bnd c
 LI bnd d -2
 UI bnd d 4
 FX bnd e 2.5
 PL bnd f
ENDATA
"""
    lp = parse_mps(text)
    assert lp.maximize
    np.testing.assert_array_equal(lp.c, -np.ones(6))
    np.testing.assert_array_equal(lp.lo, [-np.inf, 0, 0, -2, 2.5, 0])
    np.testing.assert_array_equal(lp.hi, [3, np.inf, 1, 4, 2.5, np.inf])
    np.testing.assert_array_equal(lp.integer, [False, True, True, True, False, False])


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        (BASE.replace(" y r4 1", " y r9 1"), 12, "unknown row name 'r9'"),
        (BASE.replace(" x r2 1 r3 1", " x r2 inf r3 1"), 10, "non-finite"),
        (BASE.replace(" rhs r4 3", " rhs r4 abc"), 16, "not a number"),
        (BASE.replace(" FR b y", " XX b y"), 22, "unknown bound type"),
        (BASE.replace("ENDATA\n", ""), 22, "missing ENDATA"),
        (BASE.replace("RANGES", "RANGERS"), 17, "unknown section"),
        (BASE.replace(" UP b x -1", " UP b zz -1"), 21, "unknown column"),
        (BASE.replace(" y r4 1", " y r1 7"), 12, "duplicate entry"),
    ],
)
def test_errors_name_line(text: str, line: int, problem: str) -> None:
    """Malformed content raises with file name and the offending line number."""
    with pytest.raises(MPSFormatError, match=problem) as err:
        parse_mps(text, source="t.mps")
    assert err.value.line == line and str(err.value).startswith(f"t.mps:{line}:")


@pytest.mark.parametrize("fmt", ["free", "fixed"])
def test_round_trip_exact(fmt: str, tmp_path: Path) -> None:
    """write -> read reproduces LPs bit for bit (ranges, infinite bounds, maximisation, constants)."""
    for lp in (
        random_lp(seed=3),
        combinatorial_auction_lp(10, 20, seed=1),
        facility_location_lp(4, 3, seed=2),
        parse_mps(BASE),
    ):
        path = tmp_path / f"{lp.name}.mps"
        write_mps(lp, path, fmt=fmt)
        back = read_mps(path, fmt=fmt)
        assert back.equals(lp), lp.name
        assert mps_text(back, fmt) == path.read_text()


def test_round_trip_netlib(lp_data: Path, tmp_path: Path) -> None:
    """A Netlib instance with ranges and bounds survives write -> read exactly."""
    for name in ("e226", "israel", "sctest"):
        lp = read_mps(lp_data / "instances" / f"{name}.mps")
        write_mps(lp, tmp_path / "x.mps")
        assert read_mps(tmp_path / "x.mps").equals(lp), name


_FINITE = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
_QUARTERS = st.integers(-40, 40).map(lambda k: k / 4)  # row bounds whose ranges MPS can represent exactly


@st.composite
def _small_lps(draw: st.DrawFn) -> LinearProgram:
    """A random LP of at most 4 rows and 5 columns: every row and bound type, ranges, integers, sense."""
    m, n = draw(st.integers(1, 4)), draw(st.integers(1, 5))
    mask = np.array(draw(st.lists(st.booleans(), min_size=m * n, max_size=m * n)), bool).reshape(m, n)
    values = draw(st.lists(_FINITE.filter(lambda v: v != 0), min_size=m * n, max_size=m * n))
    A = sp.csr_matrix(np.where(mask, np.reshape(values, (m, n)), 0.0))
    row_lo, row_hi = np.empty(m), np.empty(m)
    for i in range(m):
        kind, value, width = draw(st.sampled_from("ELGR")), draw(_QUARTERS), draw(st.integers(1, 20)) / 4
        row_lo[i] = -np.inf if kind == "L" else value
        row_hi[i] = {"E": value, "L": value, "G": np.inf, "R": value + width}[kind]
    lo = np.array([draw(st.sampled_from([-np.inf, 0.0]) | _FINITE) for _ in range(n)])
    hi = np.array([max(lo[j], draw(st.sampled_from([np.inf]) | _FINITE)) for j in range(n)])
    return LinearProgram(
        c=np.array(draw(st.lists(_FINITE, min_size=n, max_size=n))),
        A=A,
        row_lo=row_lo,
        row_hi=row_hi,
        lo=lo,
        hi=hi,
        obj_const=draw(_FINITE),
        maximize=draw(st.booleans()),
        name="H",
        integer=np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), bool),
    )


@settings(max_examples=30, deadline=None)
@given(lp=_small_lps(), fmt=st.sampled_from(["free", "fixed"]))
def test_round_trip_random_lps(lp: LinearProgram, fmt: str) -> None:
    """Property: MPS write -> read reproduces any small LP exactly, in free and fixed format."""
    back = parse_mps(mps_text(lp, fmt), fmt=fmt)
    assert back.equals(lp)
    assert mps_text(back, fmt) == mps_text(lp, fmt)
