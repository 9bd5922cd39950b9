"""Plates, masks and objective scales shared by every model and guide (STYLE rule 12).

Objective (DESIGN.md, chosen once): per minibatch,

    loss = mean over questions of answer NLL
           + β · Σ_ℓ (Σ over non-padding tokens of KL_ℓ,t) / N_tokens
           + β · Σ (KL of global latents) / num_data

so per-token latents are scaled by ``β / N_tokens`` and masked at padding, global latents
(router weights, hyper-priors) by ``β / num_data``, and the likelihood by ``1 / B``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import pyro
import torch
from pyro import poutine

BATCH_DIM, TOKEN_DIM = -2, -1


@dataclass(frozen=True)
class RouteContext:
    """Per-forward facts every routing function needs.

    Attributes
    ----------
    batch_size, seq_len : int
        B and T.
    mask : torch.Tensor
        `(B, T)` bool, True at real tokens.
    token_scale : float
        Scale of per-token latent sites, ``β / N_tokens``.
    global_scale : float
        Scale of global latent sites, ``β / num_data``.
    batch_plate, token_plate : pyro.plate
        Created once per model or guide run and re-entered by every site (Pyro records a plate
        as a site: two plates of one name in one trace are an error).
    """

    batch_size: int
    seq_len: int
    mask: torch.Tensor
    token_scale: float
    global_scale: float
    batch_plate: pyro.plate
    token_plate: pyro.plate


def make_context(
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    *,
    beta: float,
    num_data: int,
) -> RouteContext:
    """Build the :class:`RouteContext` of one minibatch.

    Parameters
    ----------
    input_ids : torch.Tensor
        `(B, T)` token ids.
    attention_mask : torch.Tensor, optional
        `(B, T)` 1 at tokens, 0 at padding.
    beta : float
        KL weight β.
    num_data : int
        Number of training questions (scales global latents).

    Returns
    -------
    RouteContext
    """
    B, T = input_ids.shape
    if attention_mask is None:
        mask = torch.ones(B, T, dtype=torch.bool, device=input_ids.device)
    else:
        if attention_mask.shape != (B, T):
            raise ValueError(
                f"attention_mask has shape {tuple(attention_mask.shape)}, input_ids {(B, T)}; "
                "they must match"
            )
        mask = attention_mask.bool()
    n_tokens = int(mask.sum())
    if n_tokens == 0:
        raise ValueError("attention_mask has no real token; drop empty sequences")
    plates = batch_plate(B), pyro.plate("token", T, dim=TOKEN_DIM)
    return RouteContext(B, T, mask, beta / n_tokens, beta / num_data, *plates)


@contextlib.contextmanager
def token_plates(ctx: RouteContext) -> Iterator[None]:
    """Enter the ``batch`` (dim -2) and ``token`` (dim -1) plates, masked and scaled."""
    with (
        ctx.batch_plate,
        ctx.token_plate,
        poutine.mask(mask=ctx.mask),
        poutine.scale(scale=ctx.token_scale),
    ):
        yield


def batch_plate(batch_size: int) -> pyro.plate:
    """The ``batch`` plate at dim -2, for the answer likelihood."""
    return pyro.plate("batch", batch_size, dim=BATCH_DIM)
