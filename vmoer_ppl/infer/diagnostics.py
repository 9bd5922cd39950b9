"""Per-step SVI diagnostics at each Bayesian router: what the fit does to ``q``, in prior units.

Recorded from the fused pass itself (no extra forward), per router:

- ``kl``: mean ``KL(q ‖ p)`` per real token (nats, unweighted by β);
- ``log_sigma_mean`` / ``log_sigma_std``: mean and spread of ``log(σ / s)`` over tokens and
  latent dims, σ the guide's std and s the prior's (0 and 0 when ``q`` is the prior);
- ``dmu_over_s``: mean ``|μ_q − μ_p| / s`` (how far the posterior mean moved, in prior units);
- ``mu_over_s``: the signed mean of the same (for a temperature family: the mean shift of
  ``log T`` in prior units; > 0 flattens routing);
- ``overlap``: mean fraction of the experts the draw selects that the deterministic router selects
  too (1 = no expert swapped).

A spread of ``log σ`` at zero mean grows ``tr Σ`` without any change of the typical σ, which is
why both moments are kept (README: the earlier tr Σ report).
"""

from __future__ import annotations

import math
from collections import defaultdict

import torch
from torch.distributions import (
    Independent,
    LowRankMultivariateNormal,
    MultivariateNormal,
    Normal,
    TransformedDistribution,
)

from vmoer_ppl.data.tensors import batches, length_order
from vmoer_ppl.infer.fused import fused_loss
from vmoer_ppl.nn.gates import route

#: Per-router keys of a diagnostics record.
SITE_KEYS = ("kl", "log_sigma_mean", "log_sigma_std", "dmu_over_s", "mu_over_s", "overlap")


def gaussian_parts(d) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Location and marginal std of the Gaussian under ``d`` (log-normals: of ``log x``)."""
    while isinstance(d, Independent | TransformedDistribution):
        d = d.base_dist
    if isinstance(d, Normal):
        return d.loc, d.scale.expand_as(d.loc)
    if isinstance(d, MultivariateNormal | LowRankMultivariateNormal):
        return d.loc, d.variance.sqrt()
    return None


class Recorder:
    """Accumulates router statistics over the grids and shards of one optimiser step."""

    def __init__(self) -> None:
        self.sums: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self.nll = 0.0

    @torch.no_grad()
    def add(self, site, model, q: dict, p: dict, kls: dict, l_det, routed, mask) -> None:
        """Record one router call.

        Parameters
        ----------
        site : RouterSite
            The router.
        model : RouterModel
            Its selection latents are skipped.
        q, p : dict of str to Distribution
            Guide and prior of each latent, batch `(B, T)`.
        kls : dict of str to torch.Tensor
            `(B, T)` KL of each per-token latent.
        l_det : torch.Tensor
            `(B, T, E)` deterministic logits.
        routed : RoutingOutput
            The sampled routing, ``experts`` `(B, T, K)`.
        mask : torch.Tensor
            `(B, T)` bool, real tokens.
        """
        acc = self.sums[site.name]
        n = int(mask.sum())
        if n == 0:
            return
        acc["tokens"] += n
        acc["kl"] += float(sum(torch.where(mask, v, 0.0).sum() for v in kls.values()))
        for key, d in q.items():
            if key in model.selection_latents or key in model.global_latents:
                continue
            qp, pp = gaussian_parts(d), gaussian_parts(p[key])
            if qp is None or pp is None:
                continue
            (mq, sq), (mp, sp) = qp, pp
            rel = (sq / sp)[mask].log().double()  # (n, ·)
            acc["ls_n"] += rel.numel()
            acc["ls_sum"] += float(rel.sum())
            acc["ls_sq"] += float((rel**2).sum())
            shift = ((mq - mp) / sp)[mask].double()
            acc["dmu_sum"] += float(shift.abs().sum())
            acc["mu_sum"] += float(shift.sum())
        k = site.top_k  # the chosen experts, without always-on shared ones (Inkling)
        det = route(l_det, k, site.gate_rule).experts[..., :k]  # (B, T, K)
        same = (routed.experts[..., :k, None] == det.unsqueeze(-2)).any(-1).float().mean(-1)
        acc["overlap"] += float(same[mask].sum())

    def summary(self) -> dict[str, dict[str, float]]:
        """Router name -> the :data:`SITE_KEYS` averages of this step."""
        out = {}
        for name, a in self.sums.items():
            n, m = max(a["tokens"], 1), max(a["ls_n"], 1)
            mean = a["ls_sum"] / m
            out[name] = {
                "kl": a["kl"] / n,
                "log_sigma_mean": mean,
                "log_sigma_std": math.sqrt(max(a["ls_sq"] / m - mean**2, 0.0)),
                "dmu_over_s": a["dmu_sum"] / m,
                "mu_over_s": a["mu_sum"] / m,
                "overlap": a["overlap"] / n,
            }
        return out


@torch.no_grad()
def posterior_summary(model, guide, data, batch_size: int = 16) -> dict[str, dict[str, float]]:
    """The :data:`SITE_KEYS` statistics of ``q`` against the prior, averaged over ``data``.

    One pass of the fused ELBO per batch with the guide as it is (no update): how far the fit
    moved each router's posterior from its prior, on (e.g.) the validation questions.

    Parameters
    ----------
    model : RouterModel
        The model.
    guide : RouterGuide
        Its (trained) guide.
    data : mapping of str to torch.Tensor
        Inputs and ``labels`` with `(N, ·)` rows.
    batch_size : int
        Questions per pass.

    Returns
    -------
    dict
        Router name -> statistics, plus ``prior_scale`` (the guide's unit s_ℓ) where known.
    """
    rec = Recorder()
    for b in batches(dict(data), batch_size, length_order(data)):  # little padding
        fused_loss(model, guide, recorder=rec, **b)
    out = rec.summary()
    for site in model.sites:
        if site.name in out and getattr(guide, "scales", None):
            out[site.name]["prior_scale"] = guide.scale_at(site)
    return out


#: Router statistics flattened per step (keys of a diagnostics record's ``routers`` entries).
ROUTER_KEYS = ("kl", "log_sigma_mean", "log_sigma_std", "dmu_over_s", "overlap")


def step_scalars(record: dict) -> dict[str, float]:
    """Flatten one SVI diagnostics record into ``{"group/name": value}`` scalars.

    Parameters
    ----------
    record : dict
        An entry of :attr:`vmoer_ppl.infer.svi.SVIResult.diagnostics`, or ``{"loss": x}``.

    Returns
    -------
    dict of str to float
    """
    out = {
        f"train/{k}": float(record[k]) for k in ("loss", "nll", "grad_norm", "lr") if k in record
    }
    for router, stats in record.get("routers", {}).items():
        for key in ROUTER_KEYS:
            if key in stats:
                out[f"{key}/{router}"] = float(stats[key])
    return out
