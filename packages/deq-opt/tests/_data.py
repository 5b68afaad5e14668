"""Names of the reference LP instances beside the checkout, for parametrising tests at collection time."""

from __future__ import annotations

import json

from deq_core.testing.fixtures import SHARED_DATA

MISSING = "reference-data-missing"


def instance_names() -> list[str]:
    """The instance names of ``../shared/data/lp/instances.json``, or ``[MISSING]`` without any.

    A test parametrised over these asks for the ``lp_data`` fixture, which fails in CI and skips elsewhere
    when the data is absent: the parametrisation is never silently empty.
    """
    meta = SHARED_DATA / "lp" / "instances.json"
    names = sorted(json.loads(meta.read_text())) if meta.is_file() else []
    return names or [MISSING]
