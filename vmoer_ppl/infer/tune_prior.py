"""Choose the prior scale from data (laplace-torch's ``optimize_prior_precision``, for VMoER).

For each candidate scale the routers are made Bayesian with that prior, optionally fitted by SVI
on the train split, and scored on held-out questions by the negative log of the Bayesian model
average predictive, ``−(1/N) Σ_i log (1/S) Σ_s p(y_i | x_i, l_s)`` with ``l_s ~ q`` drawn per
question (``predict(mode="sample")``). Without fitting, ``q`` is the prior (σ starts at s, the
mean at the deterministic logits), so the score is a Monte Carlo estimate of the marginal
likelihood of the validation answers, and the choice is type-II maximum likelihood.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from vmoer_ppl.data.tensors import batches, inputs_of, length_order
from vmoer_ppl.infer.predictive import predict
from vmoer_ppl.infer.svi import SVIConfig, fit_svi


@dataclass
class PriorTuning:
    """Result of :func:`tune_prior`.

    Attributes
    ----------
    best : float
        The chosen scale.
    curve : dict of float to float
        Scale -> validation score (lower is better).
    model, guide
        The Bayesian routers built (and fitted) with the chosen scale.
    """

    best: float
    curve: dict[float, float]
    model: object
    guide: object


@torch.no_grad()
def bma_nll(
    model, guide, data: Mapping[str, torch.Tensor], num_samples: int = 32, batch_size: int = 32
) -> float:
    """``−mean_i log (1/S) Σ_s p(y_i | x_i, l_s)``, ``l_s ~ q``: the averaged predictive's NLL.

    Parameters
    ----------
    model, guide
        From :func:`vmoer_ppl.bayesianize`.
    data : mapping of str to torch.Tensor
        Network inputs and ``labels`` `(N,)`.
    num_samples : int
        S routing draws per question.
    batch_size : int
        Questions per forward.

    Returns
    -------
    float
    """
    total, n = 0.0, 0
    for batch in batches(data, batch_size, length_order(data)):  # little padding
        inputs: dict[str, Any] = inputs_of(batch)
        labels = batch["labels"]
        lp = torch.stack(
            [
                torch.log_softmax(predict(model, guide, mode="sample", **inputs).logits, -1)
                for _ in range(num_samples)
            ]
        )  # (S, B, C)
        picked = lp.gather(-1, labels.to(lp.device).view(1, -1, 1).expand(num_samples, -1, 1))
        total -= (picked.squeeze(-1).logsumexp(0) - math.log(num_samples)).sum().item()
        n += len(labels)
    return total / n


def tune_prior(
    net,
    family: str,
    val_data: Mapping[str, torch.Tensor],
    scales: Sequence[float],
    *,
    train_data: Mapping[str, torch.Tensor] | None = None,
    svi: SVIConfig | None = None,
    num_samples: int = 32,
    batch_size: int = 32,
    seed: int = 0,
    **build,
) -> PriorTuning:
    """Pick the prior scale of a family's routers by the held-out averaged predictive.

    Parameters
    ----------
    net : nn.Module
        The frozen MoE network (a fresh ``bayesianize`` per scale).
    family : str
        Router family (a logit family: the scale is its ``s``).
    val_data : mapping of str to torch.Tensor
        Held-out inputs and ``labels``.
    scales : sequence of float
        Candidate prior scales s.
    train_data, svi : optional
        Fit each candidate by SVI on ``train_data`` first; without them the prior-initialised
        guide is scored (marginal likelihood).
    num_samples, batch_size : int
        Draws per question and questions per forward of the score.
    seed : int
        Every candidate starts from the same guide initialisation and the same draws.
    **build
        Further arguments of :func:`vmoer_ppl.bayesianize` (layers, β, ...).

    Returns
    -------
    PriorTuning
    """
    from vmoer_ppl.bayesianize import bayesianize

    if (train_data is None) != (svi is None):
        raise ValueError("pass both train_data and svi to fit each candidate, or neither")
    curve, fits = {}, {}
    for s in scales:
        torch.manual_seed(seed)
        model, guide = bayesianize(net, family=family, prior=float(s), **build)
        if svi is not None and train_data is not None:
            fit_svi(model, guide, train_data, svi)
        torch.manual_seed(seed + 1)
        curve[float(s)] = bma_nll(model, guide, val_data, num_samples, batch_size)
        fits[float(s)] = (model, guide)
    best = min(curve, key=lambda k: curve[k])
    return PriorTuning(best, curve, *fits[best])
