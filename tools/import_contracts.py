"""The ``backend_free`` contract type of import-linter, used by ``[tool.importlinter]`` in pyproject.toml.

A forbidden contract whose source modules are found by rule rather than listed: every module of
``packages`` except its backend modules (a name segment below the package called ``torch`` or ``jax``, i.e. a
``torch.py``/``jax.py`` file or anything under a ``torch/``/``jax/`` folder, the rule of
``tools/backend_share.py``) and except ``exempt_modules`` (packages, with everything below them). Files can
move between rooms without the contract going stale. All other options are those of ``forbidden``.

import-linter sees every import in a file, also one inside a function, so "backend-free" here means no
framework import at all, lazy or not; a justified lazy one is listed in ``ignore_imports``.
"""

from __future__ import annotations

from grimp import ImportGraph
from importlinter.contracts.forbidden import ForbiddenContract
from importlinter.domain import fields
from importlinter.domain.contract import ContractCheck
from importlinter.domain.imports import ModuleExpression

BACKENDS = ("torch", "jax")


def is_backend_module(name: str) -> bool:
    """True for a module that exists for one framework: a segment below the top package is torch or jax."""
    return any(part in BACKENDS for part in name.split(".")[1:])


def within(name: str, package: str) -> bool:
    """True when module ``name`` is ``package`` or lies below it."""
    return name == package or name.startswith(package + ".")


class BackendFreeContract(ForbiddenContract):
    """``forbidden`` with source modules = the backend-free modules of ``packages`` (see the module doc)."""

    type_name = "backend_free"

    packages = fields.SetField(subfield=fields.StringField())
    exempt_modules = fields.SetField(subfield=fields.StringField(), required=False, default=set())
    source_modules = fields.SetField(subfield=fields.ModuleExpressionField(), required=False)

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        """Pick the backend-free modules, then check them one by one as a ``forbidden`` contract does."""
        sources = sorted(
            name
            for name in graph.modules
            if any(within(name, package) for package in self.packages)
            and not is_backend_module(name)
            and not any(within(name, exempt) for exempt in self.exempt_modules)
        )
        if not sources:
            raise ValueError(f"backend_free contract {self.name!r}: no module of {sorted(self.packages)}")
        self.source_modules = {ModuleExpression(name) for name in sources}
        self.as_packages = False  # each source is one module; its backend submodules are not its part
        return super().check(graph, verbose)
