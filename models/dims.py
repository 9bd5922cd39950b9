"""Plates, masks, routing grids and objective scales shared by every model and guide.

Objective (DESIGN.md, chosen once): per minibatch,

    loss = mean over questions of answer NLL
           + β · Σ_ℓ (Σ over non-padding routed tokens of KL_ℓ,t) / N_tokens
           + β · Σ (KL of global latents) / num_data

so per-token latents are scaled by ``β / N_tokens`` and masked at padding, global latents
(router weights, hyper-priors) by ``β / num_data``, and the likelihood by ``1 / B``.

A forward may route several *grids* of tokens: a plain network routes one, ``(B, T)``, named
``""`` with plates ``batch`` (dim −2) and ``token`` (dim −1); the cloze scorer routes the question
prefix (grid ``prompt``, `(B, Tp)`) and then the options (grid ``option``, `(B·C, Tc)`), with plates
``prompt.sequence``/``prompt.token`` and ``option.sequence``/``option.token``. The network says
which grid it is routing with :func:`vmoer_ppl.sites.routing_grid`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import pyro
import torch
from pyro import poutine

from vmoer_ppl.sites import current_grid

BATCH_DIM, TOKEN_DIM = -2, -1


@dataclass
class Grid:
    """One set of routed tokens.

    Attributes
    ----------
    name : str
        ``""`` for a network's only grid, else e.g. ``"prompt"``.
    mask : torch.Tensor
        `(S, T)` bool, True at real tokens.
    sequence_plate, token_plate : pyro.plate
        Created once per run and re-entered by every site of the grid.
    """

    name: str
    mask: torch.Tensor
    sequence_plate: pyro.plate
    token_plate: pyro.plate

    @property
    def shape(self) -> tuple[int, int]:
        """``(S, T)``."""
        return tuple(self.mask.shape)


@dataclass
class RouteContext:
    """Per-forward facts every routing function needs.

    Attributes
    ----------
    grids : dict of str to Grid
        The grids this forward routes, in order.
    token_scale : float
        Scale of per-token latent sites, ``β / N_tokens`` (real tokens of all grids).
    global_scale : float
        Scale of global latent sites, ``β / num_data``.
    cache : dict
        Values of global latents, sampled once per forward and reused by every grid.
    """

    grids: dict[str, Grid]
    token_scale: float
    global_scale: float
    cache: dict = field(default_factory=dict)
    _batch_plate: pyro.plate | None = None

    def grid(self) -> Grid:
        """The grid being routed now (see :func:`vmoer_ppl.sites.routing_grid`)."""
        name = current_grid()
        if name not in self.grids:
            raise RuntimeError(f"the network routed grid {name!r}, but declared {list(self.grids)}")
        return self.grids[name]

    @property
    def first(self) -> Grid:
        """The first grid (the prompt), where uncertainty signals are read."""
        return next(iter(self.grids.values()))

    def batch_plate(self, batch_size: int) -> pyro.plate:
        """The ``batch`` plate of the likelihood (the only grid's sequence plate when it fits)."""
        g = self.grids.get("")
        if g is not None and g.shape[0] == batch_size:
            return g.sequence_plate
        if self._batch_plate is None:
            self._batch_plate = batch_plate(batch_size)
        return self._batch_plate


def make_context(grids: Mapping[str, torch.Tensor], *, beta: float, num_data: int) -> RouteContext:
    """Build the :class:`RouteContext` of one minibatch.

    Parameters
    ----------
    grids : mapping of str to torch.Tensor
        Grid name -> `(S, T)` mask of the tokens the network will route.
    beta : float
        KL weight β.
    num_data : int
        Number of training questions (scales global latents).

    Returns
    -------
    RouteContext
    """
    out, n_tokens = {}, 0
    for name, mask in grids.items():
        mask = mask.bool()
        prefix = f"{name}." if name else ""
        seq = pyro.plate(f"{prefix}sequence" if name else "batch", mask.shape[0], dim=BATCH_DIM)
        tok = pyro.plate(f"{prefix}token", mask.shape[1], dim=TOKEN_DIM)
        out[name] = Grid(name, mask, seq, tok)
        n_tokens += int(mask.sum())
    if n_tokens == 0:
        raise ValueError("attention_mask has no real token; drop empty sequences")
    return RouteContext(out, beta / n_tokens, beta / num_data)


def default_grids(
    input_ids: torch.Tensor, attention_mask: torch.Tensor | None
) -> dict[str, torch.Tensor]:
    """The one grid of a plain ``(input_ids, attention_mask)`` network."""
    if attention_mask is None:
        return {"": torch.ones(input_ids.shape, dtype=torch.bool, device=input_ids.device)}
    if attention_mask.shape != input_ids.shape:
        raise ValueError(
            f"attention_mask has shape {tuple(attention_mask.shape)}, input_ids "
            f"{tuple(input_ids.shape)}; they must match"
        )
    return {"": attention_mask}


@contextlib.contextmanager
def token_plates(grid: Grid, ctx: RouteContext) -> Iterator[None]:
    """Enter a grid's sequence (dim −2) and token (dim −1) plates, masked and scaled."""
    with (
        grid.sequence_plate,
        grid.token_plate,
        poutine.mask(mask=grid.mask),
        poutine.scale(scale=ctx.token_scale),
    ):
        yield


def batch_plate(batch_size: int) -> pyro.plate:
    """The ``batch`` plate at dim −2, for the answer likelihood."""
    return pyro.plate("batch", batch_size, dim=BATCH_DIM)
