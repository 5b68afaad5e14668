"""The reversible backward for PyTorch: :mod:`deq_core.engine.reversible` behind an autograd ``Function``.

The ``Function`` is the identity on the solve's ``z_N``. Its inputs are ``z0``, the tensors in ``args``
that require grad, and the leaf tensors ``f`` reaches (its parameters, or tensors a closure holds), found
by walking the graph of one evaluation of ``f``. It saves ``z_N``, ``y_N`` and the step counts; its
backward walks the iteration in reverse with one ``torch.autograd.grad`` per evaluation of ``f``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.autograd.function import once_differentiable
from torch.utils._pytree import tree_flatten, tree_unflatten

from deq_core.config import SolveOptions
from deq_core.engine import reversible
from deq_core.engine.loop import LoopResult
from deq_core.torch.ops import TorchOps


def solve_reversible(
    f: Callable[[torch.Tensor, Any], torch.Tensor], z0: torch.Tensor, args: Any, options: SolveOptions
) -> tuple[torch.Tensor, LoopResult]:
    """Solve by the coupled iteration of ``options.backward`` (a ``Reversible``); ``z_N`` has its gradient.

    Returns ``z_N`` shaped like ``z0`` in ``z0``'s dtype and the loop's flattened per-sample result. The
    gradient is the exact one of the computed ``z_N`` with respect to ``z0``, the tensors in ``args`` and
    the leaf tensors ``f`` uses; see :mod:`deq_core.engine.reversible` for the iteration and its accuracy.
    Without grad mode, or when nothing requires grad, only the forward runs.
    """
    flat = _Flat(f, z0, args)
    cpu = z0.device.type == "cpu"
    ops = TorchOps(check_every=1 if cpu else 4, cpu=cpu)
    z_init = z0.reshape(z0.shape[0], -1).to(flat.work)
    with torch.no_grad():
        loop, y_last = reversible.forward(
            ops, flat, z_init, options.backward.beta, options.stop, options.max_iter
        )
    value = loop.z
    if torch.is_grad_enabled():
        leaves = flat.leaves(z_init)
        if z0.requires_grad or flat.tensors or leaves:
            value = _Reversible.apply(
                (flat, ops, options), loop.z, y_last, loop.nstep, z_init, *flat.tensors, *leaves
            )
    return value.reshape(z0.shape).to(z0.dtype), loop


class _Flat:
    """``f`` on flattened ``(batch, n)`` iterates in the working dtype (at least float32).

    ``tensors`` are the tensors in ``args`` that require grad; a call may swap them for others. The
    autocast state at construction is kept, so the backward evaluates ``f`` exactly as the forward did.
    """

    def __init__(self, f: Callable, z0: torch.Tensor, args: Any):
        self.f, self.shape, self.dtype = f, z0.shape[1:], z0.dtype
        self.work = torch.promote_types(z0.dtype, torch.float32)
        device = z0.device.type
        self.autocast = torch.autocast(
            device, torch.get_autocast_dtype(device), enabled=torch.is_autocast_enabled(device)
        )
        self.items, self.spec = tree_flatten(args)
        self.slots = [i for i, x in enumerate(self.items) if isinstance(x, torch.Tensor) and x.requires_grad]
        self.tensors = [self.items[i] for i in self.slots]

    def __call__(self, z: torch.Tensor, tensors: list[torch.Tensor] | None = None) -> torch.Tensor:
        """``f(z, args)``, with ``tensors`` (when given) in place of :attr:`tensors`."""
        items = list(self.items)
        for i, tensor in zip(self.slots, self.tensors if tensors is None else tensors, strict=True):
            items[i] = tensor
        out = self.f(z.reshape(z.shape[0], *self.shape).to(self.dtype), tree_unflatten(items, self.spec))
        return out.reshape(z.shape[0], -1).to(self.work)

    def leaves(self, z: torch.Tensor) -> list[torch.Tensor]:
        """The leaf tensors requiring grad that ``f(z, args)`` reaches, besides ``z`` and ``args``."""
        with torch.enable_grad():
            inputs = [z.detach().requires_grad_(), *(t.detach().requires_grad_() for t in self.tensors)]
            out = self(inputs[0], inputs[1:])
        found: dict[int, torch.Tensor] = {}
        seen, stack = set(), [out.grad_fn]
        while stack:
            node = stack.pop()
            if node is None or node in seen:
                continue
            seen.add(node)
            leaf = getattr(node, "variable", None)  # set on the AccumulateGrad node of a leaf
            if leaf is not None and not any(leaf is x for x in inputs):
                found[id(leaf)] = leaf
            stack.extend(child for child, _ in node.next_functions)
        return list(found.values())

    def vjp(self, saved: list[torch.Tensor]) -> reversible.Vjp:
        """The engine's ``vjp`` with respect to ``saved`` (the ``args`` tensors, then the leaves)."""
        copies = [t.detach().requires_grad_() for t in saved[: len(self.slots)]]
        targets = [*copies, *saved[len(self.slots) :]]

        def vjp(point: torch.Tensor, cotangent: torch.Tensor, acc: tuple) -> tuple:
            point = point.detach().requires_grad_()
            with torch.enable_grad(), self.autocast:
                out = self(point, copies)
            # retain_graph: f may use non-leaf tensors computed outside it, whose graph every step reuses
            grads = torch.autograd.grad(
                out, [point, *targets], cotangent, retain_graph=True, allow_unused=True
            )
            jt = torch.zeros_like(point) if grads[0] is None else grads[0]
            acc = tuple(a if d is None else a + d for a, d in zip(acc, grads[1:], strict=True))
            return out.detach(), jt, acc

        return vjp


class _Reversible(torch.autograd.Function):
    """Identity on ``z_N``; its backward is the reverse walk, giving gradients to ``z_init`` and beyond."""

    @staticmethod
    def forward(ctx: Any, problem: tuple, z_last, y_last, nstep, z_init, *tensors) -> torch.Tensor:
        ctx.problem = problem
        ctx.save_for_backward(z_last, y_last, nstep, *tensors)
        return z_last.clone()

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, g: torch.Tensor) -> tuple:
        flat, ops, options = ctx.problem
        z_last, y_last, nstep, *saved = ctx.saved_tensors
        acc = tuple(torch.zeros_like(t) for t in saved)
        z0_bar, acc = reversible.backward(
            ops, flat.vjp(saved), z_last, y_last, nstep, g, acc, options.backward.beta, options.max_iter
        )
        return None, None, None, None, z0_bar, *acc
