"""Baselines from MAP fine-tuning of the routers: deep ensemble (M seeds) and SWAG.

:func:`finetune_routers` trains an additive ``ΔW`` on every router weight (all else frozen) on
the answer NLL, as the thesis's stage 2a; with ``swag=True`` it also collects the SWAG moments of
``W = W_r + ΔW`` over the last part of training (Maddox et al. 2019: mean, diagonal second
moment, the last ``rank`` deviations), from which :class:`SWAGGuide` samples router weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from vmoer_ppl.baselines.base import BaselineGuide, SampledLogits
from vmoer_ppl.data.tensors import batch_at
from vmoer_ppl.infer.micro_batches import mean_loss_backward, use_length_groups
from vmoer_ppl.nn.gates import route
from vmoer_ppl.routing import RoutingPolicy, run_routed


@dataclass
class FinetuneResult:
    """Router deltas and, with SWAG, the weight moments per router (keys: router names)."""

    deltas: dict[str, torch.Tensor]
    losses: list[float] = field(default_factory=list)
    swa_mean: dict[str, torch.Tensor] = field(default_factory=dict)
    sq_mean: dict[str, torch.Tensor] = field(default_factory=dict)
    deviations: dict[str, torch.Tensor] = field(default_factory=dict)  # (rank, E, D)
    count: int = 0

    def collect(self, weights: dict[str, torch.Tensor], rank: int) -> None:
        """Add one SWAG snapshot of each router's `(E, D)` weight (running moments, deviations)."""
        self.count += 1
        for name, w in weights.items():
            m = self.swa_mean.get(name, torch.zeros_like(w))
            q = self.sq_mean.get(name, torch.zeros_like(w))
            self.swa_mean[name] = m + (w - m) / self.count
            self.sq_mean[name] = q + (w**2 - q) / self.count
            dev = (w - self.swa_mean[name])[None]
            prev = self.deviations.get(name, dev[:0])
            self.deviations[name] = torch.cat([prev, dev])[-rank:]


class DeltaRouting(RoutingPolicy):
    """Routing with fine-tuned router weights ``W_r + ΔW``: logits ``l_det + u ΔWᵀ``.

    Parameters
    ----------
    deltas : dict of str to torch.Tensor
        Router name -> `(E, D)` ``ΔW``.
    """

    def __init__(self, deltas: dict[str, torch.Tensor]) -> None:
        self.deltas = deltas

    def __call__(self, site, u, l_det):
        """The gate rule on the fine-tuned logits."""
        delta = self.deltas[site.name].to(u.dtype)
        return route(l_det + u @ delta.T, site.top_k, site.gate_rule)


def finetune_routers(
    model,
    data: dict[str, torch.Tensor],
    *,
    steps: int = 100,
    lr: float = 1e-3,
    batch_size: int = 16,
    seed: int = 0,
    swag: bool = False,
    swag_start: float = 0.5,
    rank: int = 10,
) -> FinetuneResult:
    """MAP fine-tuning of the routers of ``model.sites`` (answer NLL, Adam).

    Parameters
    ----------
    model : RouterModel
        Supplies the network and the routers to tune.
    data : dict of str to torch.Tensor
        Training questions with ``labels`` `(N,)`.
    steps, lr, batch_size, seed : int, float, int, int
        Optimisation settings; ``seed`` also initialises nothing else (ΔW starts at 0) but fixes
        the minibatch order, so ensemble members differ by ``seed``.
    swag : bool
        Collect SWAG moments once per step after ``swag_start * steps``.
    swag_start : float
        Fraction of the steps before moments are collected.
    rank : int
        Deviation columns kept for the low-rank part.

    Returns
    -------
    FinetuneResult
    """
    sites = model.sites
    deltas = nn.ParameterDict(
        {str(i): nn.Parameter(torch.zeros_like(s.weight)) for i, s in enumerate(sites)}
    )
    opt = torch.optim.Adam(deltas.parameters(), lr=lr)

    n, res = len(data["labels"]), FinetuneResult({})
    first = int(swag_start * steps)
    policy = DeltaRouting({s.name: deltas[str(i)] for i, s in enumerate(sites)})
    grouped = use_length_groups("auto", next(model.net.parameters()).device)

    def loss_sum(batch: dict) -> torch.Tensor:
        labels = batch.pop("labels")
        logits = run_routed(model.net, batch, sites, policy).float()
        return nn.functional.cross_entropy(logits, labels.to(logits.device), reduction="sum")

    for step in range(steps):
        opt.zero_grad()
        rows = batch_at(step, n, min(batch_size, n), seed)
        res.losses.append(mean_loss_backward(loss_sum, data, rows, grouped))
        opt.step()
        if swag and step >= first:
            res.collect({s.name: (s.weight + policy.deltas[s.name]).detach() for s in sites}, rank)
    res.deltas = {s.name: deltas[str(i)].detach().clone() for i, s in enumerate(sites)}
    return res


class EnsembleGuide(BaselineGuide):
    """Deep ensemble of routers: draw ``s`` uses member ``s mod M`` (exact average when M | S).

    Parameters
    ----------
    model : RouterModel
        Logit-space router model.
    members : list of FinetuneResult
        M router fine-tunings with different seeds.
    """

    def __init__(self, model, members: list[FinetuneResult]) -> None:
        super().__init__(model)
        self.members = members

    def logits_dist(self, site, u, l_det):
        """Member logits ``l_det + u ΔW_m^T``, cycled over draws."""
        per = torch.stack([l_det + u @ m.deltas[site.name].to(u.dtype).T for m in self.members])

        def sampler(n: int) -> torch.Tensor:
            return per[torch.arange(n) % len(self.members)]

        return SampledLogits(sampler, per.mean(0), per.var(0, unbiased=False))


class SWAGGuide(BaselineGuide):
    """SWAG router: ``W ~ N(W_swa, (diag + D D^T / (K-1)) / 2)`` sampled per draw.

    Parameters
    ----------
    model : RouterModel
        Logit-space router model.
    swag : FinetuneResult
        Fine-tuning with ``swag=True``.
    """

    def __init__(self, model, swag: FinetuneResult) -> None:
        super().__init__(model)
        if not swag.swa_mean:
            raise ValueError("SWAG needs moments: run finetune_routers(..., swag=True)")
        self.swag = swag

    def weights(self, name: str, n: int) -> torch.Tensor:
        """`(n, E, D)` router weights drawn from the SWAG posterior."""
        mean, sq, dev = (
            self.swag.swa_mean[name],
            self.swag.sq_mean[name],
            self.swag.deviations[name],
        )
        diag = (sq - mean**2).clamp_min(1e-12)
        z1 = torch.randn((n, *mean.shape), dtype=mean.dtype)
        w = mean + diag.sqrt() * z1 / 2**0.5
        if len(dev) > 1:
            z2 = torch.randn(n, len(dev), dtype=mean.dtype)
            w = w + torch.einsum("nk,ked->ned", z2, dev) / (2 * (len(dev) - 1)) ** 0.5
        return w

    def logits_dist(self, site, u, l_det):
        """``u W_s^T`` for each drawn ``W_s``."""
        mean = u @ self.swag.swa_mean[site.name].to(u.dtype).T

        def sampler(n: int) -> torch.Tensor:
            w = self.weights(site.name, n).to(u.dtype)  # (n, E, D)
            return torch.einsum("...d,ned->n...e", u, w)

        return SampledLogits(sampler, mean)
