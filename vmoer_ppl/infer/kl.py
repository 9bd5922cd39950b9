"""Closed-form KL divergences of the logit guides from an isotropic Gaussian prior.

The paper's formulas (PAPER.md §3.2), for ``q = N(l_det + Δμ, Σ)`` and ``p = N(l_det, s² I)``:

- mean field: ``KL = ½ Σ_e (σ_e²/s² + Δμ_e²/s² − 1 − log(σ_e²/s²))``
- full covariance: ``KL = ½ (‖L‖_F²/s² + ‖Δμ‖²/s² − E − 2 Σ_e log(L_ee/s))``

- low rank + diagonal, ``Σ = D + VVᵀ``, against any diagonal Gaussian ``N(m, diag σ_p²)``:
  ``KL = −H(q) + ½ Σ_e (log 2πσ_pe² + (D_ee + Σ_j V_ej² + Δμ_e²)/σ_pe²)`` (the entropy by the
  matrix determinant lemma)

Importing this module registers the full-covariance formula for
``kl_divergence(MultivariateNormal, Independent(Normal))``, which neither torch nor Pyro provides,
so that ``TraceMeanField_ELBO`` and the fused path both use the analytic KL.
"""

from __future__ import annotations

import torch
from torch.distributions import (
    Independent,
    LowRankMultivariateNormal,
    MultivariateNormal,
    Normal,
    register_kl,
)


def kl_mean_field(
    delta: torch.Tensor, sigma: torch.Tensor, prior_scale: torch.Tensor | float = 1.0
):
    """KL of ``N(m + Δμ, diag σ²)`` from ``N(m, s² I)``.

    Parameters
    ----------
    delta : torch.Tensor
        `(..., E)` mean offset Δμ.
    sigma : torch.Tensor
        `(..., E)` posterior standard deviations.
    prior_scale : float or torch.Tensor
        s, broadcastable to `(..., E)`.

    Returns
    -------
    torch.Tensor
        `(...)`
    """
    r = (sigma / prior_scale) ** 2
    return 0.5 * (r + (delta / prior_scale) ** 2 - 1.0 - r.log()).sum(-1)


def kl_full_cov(
    delta: torch.Tensor, scale_tril: torch.Tensor, prior_scale: torch.Tensor | float = 1.0
):
    """KL of ``N(m + Δμ, L Lᵀ)`` from ``N(m, s² I)``.

    Parameters
    ----------
    delta : torch.Tensor
        `(..., E)` mean offset Δμ.
    scale_tril : torch.Tensor
        `(..., E, E)` lower-triangular L with positive diagonal.
    prior_scale : float or torch.Tensor
        s, a scalar or broadcastable to `(...)`.

    Returns
    -------
    torch.Tensor
        `(...)`
    """
    s = torch.as_tensor(prior_scale, dtype=delta.dtype, device=delta.device)
    return kl_full_cov_diag(delta, scale_tril, s.unsqueeze(-1).expand_as(delta))


def kl_full_cov_diag(
    delta: torch.Tensor, scale_tril: torch.Tensor, prior_std: torch.Tensor
) -> torch.Tensor:
    """KL of ``N(m + Δμ, L Lᵀ)`` from ``N(m, diag(s²))`` with one scale per dimension.

    Parameters
    ----------
    delta : torch.Tensor
        `(..., E)` mean offset Δμ.
    scale_tril : torch.Tensor
        `(..., E, E)` lower-triangular L with positive diagonal.
    prior_std : torch.Tensor
        `(..., E)` prior standard deviations s.

    Returns
    -------
    torch.Tensor
        `(...)`. No branch on the data, so it traces under ``torch.compile``;
        :func:`kl_full_cov` is its isotropic case.
    """
    E = delta.shape[-1]
    trace = (scale_tril / prior_std.unsqueeze(-1)).pow(2).sum((-2, -1))  # tr(diag(s⁻²) L Lᵀ)
    maha = (delta / prior_std).pow(2).sum(-1)
    log_l = torch.diagonal(scale_tril, dim1=-2, dim2=-1).log().sum(-1)
    logdet = 2.0 * (log_l - prior_std.log().sum(-1))
    return 0.5 * (trace + maha - E - logdet)


@register_kl(MultivariateNormal, Independent)
def _kl_mvn_independent_normal(q: MultivariateNormal, p: Independent) -> torch.Tensor:
    base = p.base_dist
    if not isinstance(base, Normal) or p.reinterpreted_batch_ndims != 1:
        raise NotImplementedError
    return kl_full_cov_diag(q.loc - base.loc, q.scale_tril, base.scale.expand_as(q.loc))


@register_kl(LowRankMultivariateNormal, Independent)
def _kl_lowrank_independent_normal(q: LowRankMultivariateNormal, p: Independent) -> torch.Tensor:
    base = p.base_dist
    if not isinstance(base, Normal) or p.reinterpreted_batch_ndims != 1:
        raise NotImplementedError
    var_p = base.scale.pow(2).expand_as(q.loc)
    var_q = q.cov_diag + q.cov_factor.pow(2).sum(-1)  # (..., E) marginal variances of q
    cross = 0.5 * (torch.log(2 * torch.pi * var_p) + (var_q + (q.loc - base.loc) ** 2) / var_p)
    return cross.sum(-1) - q.entropy()
