"""``fit_svi``: train a router guide against the frozen network.

Two estimators of the same objective (DESIGN.md): the Pyro reference path (``TraceMeanField_ELBO``,
one particle; the spec) and the fused single-pass path (the fast path). Built on
``TraceMeanField_ELBO()(model, guide)`` with ``torch.optim`` over the guide's own parameters
(STYLE rule 18); nothing goes through Pyro's global param store, which is checked to stay empty.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum

import numpy as np
import pyro
import torch
from pyro.infer import TraceMeanField_ELBO
from tqdm.auto import tqdm

from vmoer_ppl.data.tensors import subset
from vmoer_ppl.guides.base import RouterGuide
from vmoer_ppl.infer import kl as _kl  # noqa: F401  (registers the MVN-Independent KL)
from vmoer_ppl.infer.freeze import check_no_active_checkpointing, check_only_guide_trains
from vmoer_ppl.infer.fused import fused_loss
from vmoer_ppl.models.base import RouterModel

log = logging.getLogger(__name__)


class ELBOPath(str, Enum):
    """Which estimator computes the loss."""

    REFERENCE = "reference"
    """Pyro ``TraceMeanField_ELBO``: model and guide each run the network (the spec)."""
    FUSED = "fused"
    """One network pass with analytic KLs added at each router (same value and gradients)."""


@dataclass
class SVIConfig:
    """Settings of :func:`fit_svi`."""

    num_steps: int = 200  # optimiser steps
    batch_size: int = 16  # questions per step (the paper's effective batch)
    lr: float = 1e-2  # Adam learning rate for the small guide networks
    path: ELBOPath = ELBOPath.FUSED  # fused is the fast path; reference is the spec
    seed: int = 0  # fixes minibatch order and every draw
    clip_norm: float | None = 10.0  # gradient clipping of guide parameters, None for off
    schedule: str = "cosine"  # "cosine" (VMoER App. D.2: cosine decay with warm-up) or "constant"
    warmup_ratio: float = 0.05  # fraction of steps with linear warm-up (cosine schedule)
    progress: bool = True  # tqdm bar


@dataclass
class SVIResult:
    """What :func:`fit_svi` returns.

    Attributes
    ----------
    params : dict of str to torch.Tensor
        Trained guide parameters (``guide.state_dict()`` detached).
    losses : list of float
        Loss per step.
    guide : RouterGuide
        The trained guide.
    """

    params: dict[str, torch.Tensor]
    losses: list[float] = field(default_factory=list)
    guide: RouterGuide | None = None


def minibatches(n: int, batch_size: int, gen: torch.Generator) -> Iterator[torch.Tensor]:
    """Endless shuffled epochs of row indices; every row once per epoch, the last batch shorter.

    Parameters
    ----------
    n : int
        Data-set size N.
    batch_size : int
        Rows per batch.
    gen : torch.Generator
        Seeded generator (fixes the order).

    Yields
    ------
    torch.Tensor
        `(batch_size,)` or shorter int64 row indices.
    """
    while True:
        yield from torch.randperm(n, generator=gen).split(batch_size)


def lr_factor(cfg: SVIConfig) -> Callable[[int], float]:
    """Multiplier of the learning rate at each step (``LambdaLR``): cosine with warm-up, or 1."""
    if cfg.schedule == "constant":
        return lambda step: 1.0
    if cfg.schedule != "cosine":
        raise ValueError(f"schedule={cfg.schedule!r}: use 'cosine' or 'constant'")
    warm = max(1, int(cfg.warmup_ratio * cfg.num_steps))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, cfg.num_steps - warm)))

    return factor


def check_data(data: Mapping[str, torch.Tensor]) -> int:
    """Validate an SVI data dict and return its size N."""
    if "labels" not in data or len(data) < 2:
        raise ValueError(
            "data needs 'labels' and the network's inputs ('input_ids', optionally "
            f"'attention_mask', or a scorer's inputs); got {list(data)}"
        )
    n = data["labels"].shape[0]
    bad = {k: tuple(v.shape) for k, v in data.items() if v is not None and v.shape[0] != n}
    if bad:
        raise ValueError(f"every tensor in data needs {n} rows; mismatched: {bad}")
    return n


def fit_svi(
    model: RouterModel,
    guide: RouterGuide,
    data: Mapping[str, torch.Tensor],
    cfg: SVIConfig | None = None,
) -> SVIResult:
    """Fit the guide by stochastic variational inference; the network stays frozen.

    Parameters
    ----------
    model : RouterModel
        The Pyro model, e.g. from :func:`vmoer_ppl.bayesianize`.
    guide : RouterGuide
        Its guide.
    data : mapping of str to torch.Tensor
        ``input_ids`` `(N, T)`, ``labels`` `(N,)`, optional ``attention_mask`` `(N, T)`.
    cfg : SVIConfig, optional
        Steps, batch size, learning rate, ELBO path.

    Returns
    -------
    SVIResult
        Trained parameters and the loss history.

    Examples
    --------
    >>> from vmoer_ppl import bayesianize
    >>> from vmoer_ppl.nn import ToyMoEClassifier, ToyMoEConfig
    >>> model, guide = bayesianize(ToyMoEClassifier(ToyMoEConfig()), family="logit-mf")
    >>> data = {"input_ids": torch.randint(32, (8, 5)), "labels": torch.randint(4, (8,))}
    >>> res = fit_svi(model, guide, data, SVIConfig(num_steps=2, progress=False))
    >>> len(res.losses)
    2
    """
    cfg = cfg or SVIConfig()
    n = check_data(data)
    path = ELBOPath(cfg.path)
    pyro.set_rng_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    store_before = set(pyro.get_param_store().keys())
    if path is ELBOPath.REFERENCE:
        elbo = TraceMeanField_ELBO(max_plate_nesting=2)(model, guide)
        params = list(elbo.parameters())
        step_loss = elbo
    else:
        params = list(guide.parameters())
        step_loss = functools.partial(fused_loss, model, guide)
    check_only_guide_trains(model.net, guide, params)
    check_no_active_checkpointing(model.net)
    optim = torch.optim.Adam(params, lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(optim, lr_factor(cfg))
    losses: list[float] = []
    batches = minibatches(n, min(cfg.batch_size, n), gen)
    for _ in tqdm(range(cfg.num_steps), desc=f"SVI ({path.value})", disable=not cfg.progress):
        loss = step_loss(**subset(data, next(batches)))
        optim.zero_grad()
        loss.backward()
        if cfg.clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(params, cfg.clip_norm)
        optim.step()
        sched.step()
        losses.append(loss.item())
    if set(pyro.get_param_store().keys()) - store_before:
        raise RuntimeError("the guide registered parameters in Pyro's global param store")
    log.info("SVI done: %d steps, final loss %.4f", len(losses), losses[-1] if losses else np.nan)
    params_out = {k: v.detach().clone() for k, v in guide.state_dict().items()}
    return SVIResult(params_out, losses, guide)
