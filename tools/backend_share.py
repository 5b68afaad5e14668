"""Print each domain package's per-backend share: lines in ``torch.py``/``jax.py`` (or under ``torch/`` or
``jax/``) over all lines of its ``src`` tree, the measure issue #13 sets at 20% at most.

``python tools/backend_share.py [--max PERCENT]`` exits 1 when a domain is over ``--max``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ("torch", "jax")


def is_backend_file(path: Path) -> bool:
    """True for a module of one framework: ``torch.py``, ``jax.py`` or anything in such a folder."""
    return path.stem in BACKENDS or any(part in BACKENDS for part in path.parent.parts)


def share(src: Path) -> tuple[int, int]:
    """``(per-backend lines, all lines)`` of the Python files under ``src``."""
    backend = total = 0
    for path in sorted(src.rglob("*.py")):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        total += lines
        if is_backend_file(path.relative_to(src)):
            backend += lines
    return backend, total


def main() -> int:
    """Print the table; return 1 if any domain is over ``--max``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max", type=float, default=None, help="fail above this percentage")
    args = parser.parse_args()
    over = []
    print(f"{'package':<14} {'per-backend':>11} {'all':>6} {'share':>6}")
    for package in sorted((ROOT / "packages").glob("deq-*")):
        if package.name == "deq-core":
            continue
        backend, total = share(package / "src")
        percent = 100 * backend / total
        print(f"{package.name:<14} {backend:>11} {total:>6} {percent:>5.0f}%")
        if args.max is not None and percent > args.max:
            over.append(f"{package.name} {percent:.0f}% > {args.max:.0f}%")
    if over:
        print("per-backend share over the limit: " + "; ".join(over), file=sys.stderr)
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
