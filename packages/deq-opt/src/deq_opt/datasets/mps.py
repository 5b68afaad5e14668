"""Read and write MPS files (free and fixed format) with line-numbered errors, without external solvers.

Semantics follow the MPS specification as implemented by GLOP/HiGHS: the first ``N`` row is the objective
(other ``N`` rows are dropped), an RHS entry on the objective row sets the objective constant to ``-rhs``,
``RANGES`` use the sign rules of the spec (``E`` rows extend up for ``R > 0`` and down for ``R < 0``), and an
``UP`` bound below zero on a column whose lower bound was never set makes that lower bound ``-inf``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from deq_core.files import atomic_write
from deq_opt.operators.lp import LinearProgram

__all__ = ["MPSFormatError", "read_mps", "write_mps", "parse_mps"]

_SECTIONS = {"NAME", "ROWS", "COLUMNS", "RHS", "RANGES", "BOUNDS", "ENDATA", "OBJSENSE", "OBJNAME"}
_VALUE_BOUNDS = {"UP", "LO", "FX", "LI", "UI"}
_FLAG_BOUNDS = {"FR", "MI", "PL", "BV"}
_INFINITY = 1e30


class MPSFormatError(ValueError):
    """A malformed MPS file; the message names the file and the 1-based line number."""

    def __init__(self, source: str, line: int, problem: str) -> None:
        """Build the ``source:line: problem`` message."""
        super().__init__(f"{source}:{line}: {problem}")
        self.source, self.line, self.problem = source, line, problem


def read_mps(path: str | os.PathLike[str], fmt: str = "free") -> LinearProgram:
    """Read an MPS file (``fmt`` is ``"free"`` (whitespace-separated) or ``"fixed"`` (column positions))."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        line = path.read_bytes()[: err.start].count(b"\n") + 1
        raise MPSFormatError(str(path), line, "file is not text (invalid UTF-8 bytes)") from None
    return parse_mps(text, fmt=fmt, source=str(path))


def _fixed_fields(line: str) -> list[str]:
    """Split a fixed-format data line at MPS columns 2-3, 5-12, 15-22, 25-36, 40-47, 50-61."""
    pad = line.rstrip("\n")
    fields = [pad[1:3], pad[4:12], pad[14:22]]
    if pad[36:39].strip():  # a number longer than its 12 columns: the rest is whitespace-separated
        fields += pad[24:].split()
    elif len(pad) > 39:
        fields += [pad[24:36], pad[39:47], pad[49:61]]
    else:
        fields.append(pad[24:])
    fields = [f.strip() for f in fields]
    while fields and fields[-1] == "":
        fields.pop()
    return fields


class _Parser:
    """State machine over the lines of one MPS file."""

    def __init__(self, source: str, fmt: str) -> None:
        """Start an empty model."""
        if fmt not in ("free", "fixed"):
            raise ValueError(f"MPS format must be 'free' or 'fixed', got {fmt!r}")
        self.source, self.fmt = source, fmt
        self.name = ""
        self.lineno = 0
        self.obj_row: str | None = None
        self.obj_name_hint: str | None = None
        self.free_rows: set[str] = set()
        self.rows: dict[str, int] = {}
        self.row_types: list[str] = []
        self.cols: dict[str, int] = {}
        self.col_names: list[str] = []
        self.integer: list[bool] = []
        self.entries: dict[tuple[int, int], float] = {}
        self.obj: dict[int, float] = {}
        self.rhs: dict[int, float] = {}
        self.ranges: dict[int, float] = {}
        self.obj_const = 0.0
        self.lo: dict[int, float] = {}
        self.hi: dict[int, float] = {}
        self.maximize = False
        self.in_integer = False
        self.ended = False

    def fail(self, problem: str) -> MPSFormatError:
        """An error at the current line."""
        return MPSFormatError(self.source, self.lineno, problem)

    def number(self, token: str, what: str, allow_inf: bool = False) -> float:
        """Parse a finite float (or an infinite one where allowed)."""
        try:
            value = float(token)
        except ValueError:
            raise self.fail(f"{what}: {token!r} is not a number") from None
        if math.isnan(value) or (math.isinf(value) and not allow_inf):
            raise self.fail(f"{what}: non-finite value {token!r}")
        return value

    def split(self, line: str) -> list[str]:
        """Tokens of a data line in the chosen format."""
        return line.split() if self.fmt == "free" else _fixed_fields(line)

    def row_index(self, name: str) -> int | None:
        """Index of a constraint row, ``-1`` for the objective, ``None`` for a dropped free row."""
        if name == self.obj_row:
            return -1
        if name in self.free_rows:
            return None
        try:
            return self.rows[name]
        except KeyError:
            raise self.fail(f"unknown row name {name!r}") from None

    def col_index(self, name: str) -> int:
        """Index of a declared column."""
        try:
            return self.cols[name]
        except KeyError:
            raise self.fail(f"unknown column name {name!r}") from None

    def run(self, text: str) -> LinearProgram:
        """Parse all lines and build the LinearProgram."""
        section = None
        seen: set[str] = set()
        for self.lineno, raw in enumerate(text.splitlines(), start=1):
            line = raw.rstrip()
            if not line.strip() or line[0] == "*":
                continue
            if not line[0].isspace():
                head = line.split()
                key = head[0].upper()
                if key not in _SECTIONS:
                    raise self.fail(f"unknown section header {head[0]!r}")
                if key in seen and key != "ENDATA":
                    raise self.fail(f"section {key} appears twice")
                if self.ended:
                    raise self.fail("content after ENDATA")
                seen.add(key)
                section = key
                if key == "NAME":
                    self.name = " ".join(head[1:]) if self.fmt == "free" else line[14:].strip()
                elif key == "ENDATA":
                    self.ended = True
                elif key == "OBJSENSE" and len(head) > 1:
                    self.set_sense(head[1])
                elif key == "OBJNAME" and len(head) > 1:
                    self.obj_name_hint = head[1]
                elif len(head) > 1 and key not in ("RHS", "RANGES", "BOUNDS", "ROWS", "COLUMNS"):
                    raise self.fail(f"unexpected text after section header {key}")
                if key in ("COLUMNS", "RHS", "RANGES", "BOUNDS") and "ROWS" not in seen:
                    raise self.fail(f"section {key} before ROWS")
                continue
            if section is None:
                raise self.fail("data line before any section header")
            if self.ended:
                raise self.fail("content after ENDATA")
            getattr(self, "do_" + section.split()[0].lower())(line)
        if not self.ended:
            raise MPSFormatError(self.source, max(self.lineno, 1), "missing ENDATA")
        if "ROWS" not in seen:
            raise MPSFormatError(self.source, self.lineno, "missing ROWS section")
        if self.obj_row is None:
            raise MPSFormatError(self.source, self.lineno, "no objective (N) row")
        return self.build()

    def set_sense(self, token: str) -> None:
        """Handle OBJSENSE MAX/MIN."""
        t = token.upper()
        if t in ("MAX", "MAXIMIZE"):
            self.maximize = True
        elif t in ("MIN", "MINIMIZE"):
            self.maximize = False
        else:
            raise self.fail(f"OBJSENSE must be MAX or MIN, got {token!r}")

    def do_name(self, line: str) -> None:
        """NAME has no data lines."""
        raise self.fail("data line in NAME section")

    def do_endata(self, line: str) -> None:
        """Unreachable: content after ENDATA is rejected before dispatch."""
        raise self.fail("content after ENDATA")

    def do_objsense(self, line: str) -> None:
        """OBJSENSE data line (MAX or MIN)."""
        self.set_sense(line.strip())

    def do_objname(self, line: str) -> None:
        """OBJNAME data line."""
        self.obj_name_hint = line.strip()

    def do_rows(self, line: str) -> None:
        """ROWS: type and name."""
        tok = line.split() if self.fmt == "free" else [line[1:3].strip(), line[4:].strip()]
        if len(tok) != 2 or not tok[1]:
            raise self.fail(f"ROWS line needs a type and a name, got {line.strip()!r}")
        kind, name = tok[0].upper(), tok[1]
        if kind not in ("N", "E", "L", "G"):
            raise self.fail(f"unknown row type {tok[0]!r} (expected N, E, L or G)")
        if name in self.rows or name in self.free_rows or name == self.obj_row:
            raise self.fail(f"duplicate row name {name!r}")
        if kind == "N":
            if self.obj_row is None and (self.obj_name_hint is None or self.obj_name_hint == name):
                self.obj_row = name
            else:
                self.free_rows.add(name)
            return
        self.rows[name] = len(self.row_types)
        self.row_types.append(kind)

    def do_columns(self, line: str) -> None:
        """COLUMNS: column, then one or two (row, value) pairs; integer markers."""
        tok = self.split(line)
        if self.fmt == "fixed":
            tok = tok[1:]
        if len(tok) >= 3 and tok[1].strip("'").upper() == "MARKER":
            marker = tok[2].strip("'").upper()
            if marker not in ("INTORG", "INTEND"):
                raise self.fail(f"unknown MARKER {tok[2]!r}")
            self.in_integer = marker == "INTORG"
            return
        if len(tok) not in (3, 5):
            raise self.fail(f"COLUMNS line needs 3 or 5 fields, got {len(tok)}")
        col = tok[0]
        j = self.cols.get(col)
        if j is None:
            j = self.cols[col] = len(self.col_names)
            self.col_names.append(col)
            self.integer.append(self.in_integer)
        for k in range(1, len(tok), 2):
            i = self.row_index(tok[k])
            value = self.number(tok[k + 1], f"coefficient of column {col!r} in row {tok[k]!r}")
            if i is None:
                continue
            if i == -1:
                if j in self.obj:
                    raise self.fail(f"duplicate objective entry for column {col!r}")
                self.obj[j] = value
            else:
                if (i, j) in self.entries:
                    raise self.fail(f"duplicate entry for column {col!r} in row {tok[k]!r}")
                self.entries[(i, j)] = value

    def pairs(self, line: str, what: str) -> list[tuple[int | None, float, str]]:
        """(row index, value, row name) pairs of an RHS or RANGES line, with or without a set name."""
        tok = self.split(line)
        if self.fmt == "fixed":
            body = tok[2:]
        else:
            body = tok[1:] if len(tok) % 2 == 1 else tok
        if len(body) not in (2, 4):
            raise self.fail(f"{what} line needs one or two (row, value) pairs")
        out = []
        for k in range(0, len(body), 2):
            value = self.number(body[k + 1], f"{what} value of row {body[k]!r}")
            out.append((self.row_index(body[k]), value, body[k]))
        return out

    def do_rhs(self, line: str) -> None:
        """RHS: right-hand sides; on the objective row the objective constant is ``-value``."""
        for i, value, name in self.pairs(line, "RHS"):
            if i == -1:
                self.obj_const = -value
            elif i is not None:
                if i in self.rhs:
                    raise self.fail(f"duplicate RHS for row {name!r}")
                self.rhs[i] = value

    def do_ranges(self, line: str) -> None:
        """RANGES: two-sided rows."""
        for i, value, name in self.pairs(line, "RANGES"):
            if i == -1:
                raise self.fail(f"RANGES on the objective row {name!r}")
            if i is not None:
                if i in self.ranges:
                    raise self.fail(f"duplicate RANGES for row {name!r}")
                self.ranges[i] = value

    def do_bounds(self, line: str) -> None:
        """BOUNDS: UP/LO/FX/FR/MI/PL/BV/LI/UI."""
        tok = self.split(line)
        if not tok:
            raise self.fail("empty BOUNDS line")
        kind = tok[0].upper()
        if kind not in _VALUE_BOUNDS | _FLAG_BOUNDS:
            raise self.fail(f"unknown bound type {tok[0]!r}")
        if self.fmt == "fixed":
            rest = tok[2:]
        elif kind in _VALUE_BOUNDS:
            rest = tok[2:] if len(tok) == 4 else tok[1:]
        elif len(tok) == 4 or (len(tok) == 3 and tok[2] in self.cols):
            rest = tok[2:]
        else:
            rest = tok[1:]
        if not rest or (kind in _VALUE_BOUNDS and len(rest) != 2) or len(rest) > 2:
            raise self.fail(f"malformed {kind} bound line {line.strip()!r}")
        j = self.col_index(rest[0])
        value = None
        if len(rest) == 2:
            value = self.number(rest[1], f"{kind} bound of column {rest[0]!r}", allow_inf=True)
            value = math.copysign(math.inf, value) if abs(value) >= _INFINITY else value
        if kind in ("UP", "UI"):
            self.hi[j] = value
            if value < 0 and j not in self.lo:
                self.lo[j] = -math.inf
        elif kind in ("LO", "LI"):
            self.lo[j] = value
        elif kind == "FX":
            self.lo[j] = self.hi[j] = value
        elif kind == "FR":
            self.lo[j], self.hi[j] = -math.inf, math.inf
        elif kind == "MI":
            self.lo[j] = -math.inf
        elif kind == "PL":
            self.hi[j] = math.inf
        else:  # BV
            self.lo[j], self.hi[j] = 0.0, 1.0
        if kind in ("LI", "UI", "BV"):
            self.integer[j] = True

    def build(self) -> LinearProgram:
        """Assemble arrays and validate."""
        m, n = len(self.row_types), len(self.col_names)
        if n == 0:
            raise MPSFormatError(self.source, self.lineno, "no columns")
        keys = np.array(list(self.entries.keys()), dtype=np.int64).reshape(-1, 2)
        vals = np.fromiter(self.entries.values(), dtype=np.float64, count=len(self.entries))
        A = sp.csr_matrix((vals, (keys[:, 0], keys[:, 1])), shape=(m, n))
        c = np.zeros(n)
        for j, v in self.obj.items():
            c[j] = v
        rhs = np.zeros(m)
        for i, v in self.rhs.items():
            rhs[i] = v
        types = np.array(self.row_types, dtype="<U1")
        row_lo = np.where(types == "L", -np.inf, rhs)
        row_hi = np.where(types == "G", np.inf, rhs)
        for i, r in self.ranges.items():
            t = types[i]
            if t == "G":
                row_hi[i] = rhs[i] + abs(r)
            elif t == "L":
                row_lo[i] = rhs[i] - abs(r)
            elif r >= 0:
                row_hi[i] = rhs[i] + r
            else:
                row_lo[i] = rhs[i] + r
        lo, hi = np.zeros(n), np.full(n, np.inf)
        for j, v in self.lo.items():
            lo[j] = v
        for j, v in self.hi.items():
            hi[j] = v
        bad = np.flatnonzero(lo > hi)
        if bad.size:
            j = int(bad[0])
            raise MPSFormatError(
                self.source,
                self.lineno,
                f"column {self.col_names[j]!r} has lower bound {lo[j]} > upper bound {hi[j]}",
            )
        if self.maximize:
            c, obj_const = -c, -self.obj_const
        else:
            obj_const = self.obj_const
        integer = np.array(self.integer, dtype=bool)
        return LinearProgram(
            c=c,
            A=A,
            row_lo=row_lo,
            row_hi=row_hi,
            lo=lo,
            hi=hi,
            obj_const=obj_const + 0.0,
            maximize=self.maximize,
            name=self.name or "LP",
            row_names=tuple(self.rows),
            col_names=tuple(self.col_names),
            integer=integer if integer.any() else None,
        )


def parse_mps(text: str, fmt: str = "free", source: str = "<string>") -> LinearProgram:
    """Parse MPS text; ``source`` names the file in error messages."""
    return _Parser(source, fmt).run(text)


def _num(v: float) -> str:
    """Shortest decimal that round-trips exactly."""
    return repr(float(v))


def _row_spec(lo: float, hi: float) -> tuple[str, float, float | None]:
    """MPS row type, RHS and range reproducing the interval [lo, hi]."""
    if lo == hi:
        return "E", lo, None
    if lo == -np.inf and hi == np.inf:
        raise ValueError("a free row (-inf, inf) cannot be written as a constraint")
    if lo == -np.inf:
        return "L", hi, None
    if hi == np.inf:
        return "G", lo, None
    width = hi - lo
    if lo + width == hi:
        return "G", lo, width
    if hi - width == lo:
        return "L", hi, width
    return "G", lo, None


def _names(prefix: str, names: tuple[str, ...] | None, count: int) -> list[str]:
    """Given names or generated ``prefix{k}`` names, checked for whitespace."""
    out = list(names) if names is not None else [f"{prefix}{k}" for k in range(count)]
    for nm in out:
        if not nm or any(ch.isspace() for ch in nm):
            raise ValueError(f"name {nm!r} cannot be written to MPS (empty or contains whitespace)")
    return out


def write_mps(lp: LinearProgram, path: str | os.PathLike[str], fmt: str = "free") -> None:
    """Write ``lp`` to an MPS file atomically; reading it back reproduces the LP exactly."""
    if fmt not in ("free", "fixed"):
        raise ValueError(f"MPS format must be 'free' or 'fixed', got {fmt!r}")
    atomic_write(path, mps_text(lp, fmt))


def mps_text(lp: LinearProgram, fmt: str = "free") -> str:
    """The MPS text of ``lp`` (see :func:`write_mps`)."""
    m, n = lp.shape
    rows, cols = _names("R", lp.row_names, m), _names("C", lp.col_names, n)
    obj = "OBJ"
    while obj in set(rows):
        obj += "_"
    if fmt == "fixed":
        for nm in [*rows, *cols, obj]:
            if len(nm) > 8:
                raise ValueError(f"name {nm!r} is longer than 8 characters; write free-format MPS instead")

    def line(f1: str, f2: str, f3: str = "", f4: str = "") -> str:
        if fmt == "free":
            return " " + " ".join(t for t in (f1, f2, f3, f4) if t)
        return f" {f1:<2} {f2:<8}  {f3:<8}  {f4}".rstrip()

    sign = -1.0 if lp.maximize else 1.0
    out = [f"NAME          {lp.name}" if lp.name else "NAME"]
    if lp.maximize:
        out += ["OBJSENSE", "    MAX"]
    out += ["ROWS", line("N", obj)]
    specs = [_row_spec(a, b) for a, b in zip(lp.row_lo, lp.row_hi, strict=True)]
    ranged = [i for i in range(m) if -np.inf < lp.row_lo[i] < lp.row_hi[i] < np.inf]
    for i in ranged:
        if specs[i][2] is None:
            raise ValueError(
                f"row {rows[i]!r}: range [{lp.row_lo[i]}, {lp.row_hi[i]}] is not exactly "
                "representable as RHS + RANGE in MPS"
            )
    out += [line(s[0], rows[i]) for i, s in enumerate(specs)]
    out.append("COLUMNS")
    csc = lp.A.tocsc()
    integer = lp.integer if lp.integer is not None else np.zeros(n, bool)
    in_int = False
    for j in range(n):
        if integer[j] != in_int:
            in_int = bool(integer[j])
            tag = "'INTORG'" if in_int else "'INTEND'"
            out.append(line("", "MARKER", "'MARKER'", tag))
        name = cols[j]
        if lp.c[j] != 0 or csc.indptr[j] == csc.indptr[j + 1]:
            out.append(line("", name, obj, _num(sign * lp.c[j])))
        for k in range(csc.indptr[j], csc.indptr[j + 1]):
            out.append(line("", name, rows[csc.indices[k]], _num(csc.data[k])))
    if in_int:
        out.append(line("", "MARKER", "'MARKER'", "'INTEND'"))
    out.append("RHS")
    if lp.obj_const != 0:
        out.append(line("", "RHS", obj, _num(-sign * lp.obj_const)))
    for i, s in enumerate(specs):
        if s[1] != 0:
            out.append(line("", "RHS", rows[i], _num(s[1])))
    if ranged:
        out.append("RANGES")
        out += [line("", "RNG", rows[i], _num(specs[i][2])) for i in ranged]
    bounds = []
    for j in range(n):
        lo, hi, nm = lp.lo[j], lp.hi[j], cols[j]
        if integer[j] and lo == 0 and hi == 1:
            bounds.append(line("BV", "BND", nm))
        elif lo == hi:
            bounds.append(line("FX", "BND", nm, _num(lo)))
        elif lo == -np.inf and hi == np.inf:
            bounds.append(line("FR", "BND", nm))
        else:
            if lo == -np.inf:
                bounds.append(line("MI", "BND", nm))
            elif lo != 0:
                bounds.append(line("LO", "BND", nm, _num(lo)))
            if hi != np.inf:
                bounds.append(line("UP", "BND", nm, _num(hi)))
    if bounds:
        out.append("BOUNDS")
        out += bounds
    out.append("ENDATA")
    return "\n".join(out) + "\n"
