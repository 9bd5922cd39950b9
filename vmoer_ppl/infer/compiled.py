"""The Bayesian router forward as one graph-break-free function, for ``torch.compile``.

``q(l | u)`` from the amortised guide, S reparameterised draws on a leading dim, and routing with
the MC-averaged probabilities (``log p̄`` through the architecture's gate rule): the prediction
path of one Bayesian router. ``tests/infer/test_compile.py`` checks with ``torch._dynamo.explain``
that it traces to a single graph for every amortised family, run under :func:`no_validation`
(argument validation of distributions is a data-dependent check, hence a graph break).
"""

from __future__ import annotations

import torch

from vmoer_ppl.infer.predictive import draw
from vmoer_ppl.infer.validation import no_validation
from vmoer_ppl.nn.mc import mc_route
from vmoer_ppl.nn.outputs import RoutingOutput

__all__ = ["no_validation", "router_forward"]


def router_forward(
    model, guide, site, u: torch.Tensor, l_det: torch.Tensor, num_samples: int = 35
) -> RoutingOutput:
    """MC routing of one Bayesian router.

    Parameters
    ----------
    model : RouterModel
        The Bayesian router model.
    guide : RouterGuide
        Its (trained) guide.
    site : RouterSite
        The router.
    u : torch.Tensor
        `(B, T, D)` router inputs.
    l_det : torch.Tensor
        `(B, T, E)` deterministic logits ``u W_r^T``.
    num_samples : int
        S.

    Returns
    -------
    RoutingOutput
        ``logits`` `(B, T, E)` (``log p̄``), ``weights`` and ``experts`` `(B, T, K)`.
    """
    q = guide.q_dists(site, u, l_det)
    draws = {k: draw(d, num_samples) for k, d in q.items()}
    samples = model.logit_samples(site, u, l_det, draws)  # (S, B, T, E)
    return mc_route(samples, site.top_k, site.gate_rule)
