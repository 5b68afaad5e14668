"""Test helpers every package shares: the reference data beside the checkout, and JAX's x64 switch.

``shared_data("lp")`` is the path of ``../shared/data/lp``; when it is missing the test fails under CI (``CI``
set) and is skipped elsewhere, with a message naming the path either way. ``jax_x64`` is a context manager
that turns ``jax_enable_x64`` on (or off) and restores the previous value, so a float64 test never leaks its
setting into the float32 tests after it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

# The checkout's ``../shared/data`` (this file sits at packages/deq-core/src/deq_core/testing/ of an editable
# install); ``DEQ_SHARED_DATA`` points elsewhere.
SHARED_DATA = Path(
    os.environ.get("DEQ_SHARED_DATA") or Path(__file__).resolve().parents[5].parent / "shared" / "data"
)


def in_ci() -> bool:
    """True when the ``CI`` environment variable is set to something other than empty, 0 or false."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false")


def shared_data(relative: str, *, marker: str | None = None) -> Path:
    """The path of ``../shared/data/<relative>``; fail (in CI) or skip (elsewhere) when it is absent.

    ``marker`` names a file inside it that must exist too (e.g. ``"instances.json"``).
    """
    import pytest

    path = SHARED_DATA / relative
    probe = path / marker if marker else path
    if not probe.exists():
        message = f"reference data not found: {probe} (the checkout's ../shared/data)"
        if in_ci():
            pytest.fail(f"{message}; CI must provide it", pytrace=False)
        pytest.skip(message)
    return path


@contextlib.contextmanager
def jax_x64(enabled: bool = True) -> Iterator[None]:
    """Set ``jax_enable_x64`` to ``enabled`` inside the block and restore the previous value after it."""
    import jax

    previous = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", enabled)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", previous)
