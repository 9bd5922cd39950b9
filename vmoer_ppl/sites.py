"""Bayesian router sites: which routers of a network become Bayesian, and how they are reached.

A site is one router module (anything with ``weight`` `(E, D)`, ``top_k``, ``gate_rule`` and a
``routing_fn`` slot, such as :class:`vmoer_ppl.nn.Router`). Sample sites are named after the
router's module path plus the latent, e.g. ``layers.1.moe.router.logits``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import nn

from vmoer_ppl.nn.router import Router


@dataclass(frozen=True)
class RouterSite:
    """One Bayesian router.

    Attributes
    ----------
    name : str
        Module path of the router in its network, e.g. ``"layers.1.moe.router"``.
    layer : int
        Index of the router among all routers of the network (0-based).
    router : nn.Module
        The frozen router module.
    """

    name: str
    layer: int
    router: nn.Module

    @property
    def num_experts(self) -> int:
        """E."""
        return int(self.weight.shape[0])

    @property
    def hidden_size(self) -> int:
        """D."""
        return int(self.weight.shape[1])

    @property
    def top_k(self) -> int:
        """K."""
        return int(cast(int, self.router.top_k))

    @property
    def gate_rule(self):
        """The architecture's gate rule."""
        return self.router.gate_rule

    @property
    def dtype(self) -> torch.dtype:
        """Dtype of router math and guide parameters: the weight's, promoted to float32 at least."""
        return torch.promote_types(self.weight.dtype, torch.float32)

    @property
    def weight(self) -> torch.Tensor:
        """The frozen pretrained router weight ``W_r`` `(E, D)`."""
        return cast(torch.Tensor, self.router.weight)

    def latent(self, key: str, grid: str = "") -> str:
        """Sample-site name of a latent, e.g. ``layers.1.moe.router.logits``.

        With a grid: ``model.layers.29.mlp.gate.prompt.logits``.
        """
        return f"{self.name}.{grid}.{key}" if grid else f"{self.name}.{key}"


def is_router(module: nn.Module) -> bool:
    """A :class:`~vmoer_ppl.nn.Router`, or a transformers router patched by an adapter."""
    return isinstance(module, Router) or getattr(module, "_vmoer_router", False)


def find_routers(net: nn.Module) -> list[RouterSite]:
    """All routers of a network, in module order.

    Parameters
    ----------
    net : nn.Module
        A network containing :class:`~vmoer_ppl.nn.Router` modules or adapter-patched
        transformers routers.

    Returns
    -------
    list of RouterSite
    """
    routers = [(n, m) for n, m in net.named_modules() if is_router(m)]
    return [RouterSite(name, i, module) for i, (name, module) in enumerate(routers)]


def parse_layers(layers: str | int | Sequence[int]) -> str | int | list[int]:
    """Read a Bayesian-layers setting: ``"all"``, ``"last:N"``, ``"0,2"``, an index or indices.

    Parameters
    ----------
    layers : str, int or sequence of int
        A string of comma-separated router indices (``"0,2"``, ``"-1"``; the command line's
        form) becomes a list of int; the other forms are returned as they are.

    Returns
    -------
    str, int or list of int

    Raises
    ------
    ValueError
        For a string of none of these forms (naming them), or an empty list.
    """
    if isinstance(layers, str):
        text = layers.replace(" ", "")
        if text == "all" or (text.startswith("last:") and text[5:].isdigit() and int(text[5:])):
            return text
        parts = text.split(",")
        if text and all(p.lstrip("-").isdigit() for p in parts):
            return [int(p) for p in parts]
        raise ValueError(
            f"layers={layers!r}: use 'all', 'last:N' (N >= 1) or router indices such as '0,2' "
            "(MoE layers counted from 0, negative from the end)"
        )
    if isinstance(layers, bool):
        raise ValueError(f"layers={layers!r}: give a router index (int), not a bool")
    if isinstance(layers, int):
        return layers
    idx = list(layers)
    if not idx or not all(isinstance(i, int) and not isinstance(i, bool) for i in idx):
        raise ValueError(f"layers={layers!r}: give at least one router index (int)")
    return idx


def select_layers(
    sites: Sequence[RouterSite], layers: str | int | Sequence[int]
) -> list[RouterSite]:
    """Choose the Bayesian routers: ``"all"``, ``"last:N"``, an index or indices (``"0,2"``).

    Parameters
    ----------
    sites : sequence of RouterSite
        Every router of the network, in order.
    layers : str, int or sequence of int
        Indices count routers (MoE layers), not decoder layers; negative indices count from the
        end. A string of comma-separated indices is read by :func:`parse_layers`.

    Returns
    -------
    list of RouterSite
    """
    n = len(sites)
    layers = parse_layers(layers)
    if isinstance(layers, str):
        if layers == "all":
            return list(sites)
        if int(layers[5:]) <= n:
            return list(sites[n - int(layers[5:]) :])
        raise ValueError(
            f"layers={layers!r}: the network has {n} MoE routers; use 'last:N' with N <= {n}, "
            "or 'all'"
        )
    idx = [layers] if isinstance(layers, int) else layers
    bad = [i for i in idx if not -n <= i < n]
    if bad:
        raise ValueError(f"layers {bad} out of range: the network has {n} MoE routers")
    return [sites[i % n] for i in sorted({i % n for i in idx})]


def router_grid(
    site: RouterSite, u: torch.Tensor, l_det: torch.Tensor, batch_size: int, seq_len: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Check a router's input and bring it and ``l_det`` to `(B, T, ·)` in the logits' dtype.

    transformers routers see flattened tokens `(B*T, D)`; the plates need `(B, T)`. Router math
    runs in the dtype of ``l_det`` (float32 for half-precision models).

    Parameters
    ----------
    site : RouterSite
        The router.
    u : torch.Tensor
        `(B, T, D)` or `(B*T, D)` router input.
    l_det : torch.Tensor
        `(B, T, E)` or `(B*T, E)` deterministic logits.
    batch_size, seq_len : int
        B and T of the current forward.

    Returns
    -------
    tuple of torch.Tensor
        ``u`` `(B, T, D)` and ``l_det`` `(B, T, E)`.
    """
    check_router_input(site, u, l_det)
    if u.shape[:-1] != (batch_size, seq_len):
        if u.shape[:-1].numel() != batch_size * seq_len:
            raise ValueError(
                f"{site.name}: router saw {tuple(u.shape[:-1])} tokens but the batch is "
                f"({batch_size}, {seq_len}); call the model with the same input_ids it routes"
            )
        u = u.reshape(batch_size, seq_len, u.shape[-1])
        l_det = l_det.reshape(batch_size, seq_len, l_det.shape[-1])
    return u.to(l_det.dtype), l_det


def check_router_input(
    site: RouterSite, u: torch.Tensor, l_det: torch.Tensor | None = None
) -> None:
    """Reject router inputs that would give a silently wrong answer.

    Parameters
    ----------
    site : RouterSite
        The router receiving ``u``.
    u : torch.Tensor
        `(B, T, D)` or `(B*T, D)` router input.
    l_det : torch.Tensor, optional
        Its logits ``u W_rᵀ`` `(..., E)`: NaN or inf in ``u`` always reaches them (``inf · 0`` is
        NaN), so their finiteness is checked instead, E/D of the work.
    """
    if u.shape[-1] != site.hidden_size:
        raise ValueError(
            f"{site.name}: router input has width {u.shape[-1]} but W_r has shape "
            f"{tuple(site.weight.shape)} (E, D={site.hidden_size}); pass hidden states of the "
            "model this router belongs to"
        )
    if torch.compiler.is_compiling():
        return  # a data-dependent branch: compiled forwards skip it, as they skip validation
    if not torch.isfinite(u if l_det is None else l_det).all():
        raise ValueError(
            f"{site.name}: router input contains NaN or inf; check the inputs and the dtype "
            "(run the backbone in float32 or bf16, not fp16, if activations overflow)"
        )


#: The grids being routed, innermost last. A plain list rather than a ContextVar so that
#: ``torch.compile`` traces :func:`current_grid` (dynamo guards on its contents); routing state
#: lives on shared router modules anyway, so one routed forward runs per thread at a time.
_GRIDS: list[str] = [""]


def current_grid() -> str:
    """Name of the token grid the network is routing now (``""`` unless a head says otherwise)."""
    return _GRIDS[-1]


@contextlib.contextmanager
def routing_grid(name: str) -> Iterator[None]:
    """Declare, inside a network's forward, which grid of tokens the next calls route."""
    _GRIDS.append(name)
    try:
        yield
    finally:
        _GRIDS.pop()


class AtSite:
    """A router's ``routing_fn``: calls ``policy(site, u, l_det)`` for its one site."""

    __slots__ = ("policy", "site")

    def __init__(self, policy: Callable[..., Any], site: RouterSite) -> None:
        self.policy, self.site = policy, site

    def __call__(self, u: torch.Tensor, l_det: torch.Tensor) -> Any:
        """Route `(…, D)` inputs with `(…, E)` logits at this site."""
        return self.policy(self.site, u, l_det)


@contextlib.contextmanager
def install_routing(
    sites: Sequence[RouterSite], policy: Callable[[RouterSite, torch.Tensor, torch.Tensor], Any]
) -> Iterator[None]:
    """Install a routing policy in each site's router for the duration of a ``with`` block.

    Prefer :func:`vmoer_ppl.routing.run_routed`, which also calls the network.

    Parameters
    ----------
    sites : sequence of RouterSite
        Routers to override.
    policy : callable
        ``policy(site, u, l_det) -> RoutingOutput``, e.g. a
        :class:`~vmoer_ppl.routing.RoutingPolicy`.
    """
    previous = [s.router.routing_fn for s in sites]
    try:
        for s in sites:
            cast(Any, s.router).routing_fn = AtSite(policy, s)  # a plain attribute, not a module
        yield
    finally:
        for s, fn in zip(sites, previous, strict=True):
            s.router.routing_fn = fn
