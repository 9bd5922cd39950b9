"""Priors in the router's own units: ``s_ℓ = c × (median over tokens of the logit spread)``.

A logit prior ``N(l_det, s² I)`` with ``s = 1`` means nothing by itself: a trained router whose
logits spread over several units barely notices it, while a router whose logits spread 0.05 has
its top-K replaced by noise. The relative prior measures, per Bayesian router, the standard
deviation across experts of ``l_det`` at every real token of some data (the train split), takes
the median over tokens, and sets ``s_ℓ = c × spread_ℓ``.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from vmoer_ppl.data.tensors import batches, inputs_of, length_order
from vmoer_ppl.priors.base import check_scale
from vmoer_ppl.priors.gaussian import GaussianPrior
from vmoer_ppl.priors.shorthands import PerSitePrior
from vmoer_ppl.routing import Deterministic, run_routed
from vmoer_ppl.sites import router_grid


def parse_prior_scale(text: str | float | None) -> tuple[str, float] | None:
    """Parse ``"relative:C"``, ``"absolute:S"`` or a bare number (absolute) into (kind, value).

    Parameters
    ----------
    text : str, float or None
        The CLI / config form; None keeps the family's default.

    Returns
    -------
    tuple of (str, float) or None
        ``("relative", C)`` or ``("absolute", S)``.
    """
    if text is None:
        return None
    if isinstance(text, int | float) and not isinstance(text, bool):
        kind, value = "absolute", float(text)
    else:
        kind, _, raw = str(text).partition(":")
        if not raw:  # a bare number
            kind, raw = "absolute", kind
        try:
            value = float(raw)
        except ValueError:
            value = float("nan")
        if kind not in ("relative", "absolute"):
            value = float("nan")
    if not (value > 0 and value < float("inf")):
        raise ValueError(
            f"prior scale {text!r}: use 'relative:C' (C times each router's median logit spread), "
            "'absolute:S' or a number S > 0, e.g. relative:1"
        )
    return kind, value


class SpreadProbe(Deterministic):
    """Deterministic routing that records the spread of ``l_det`` per router.

    The spread is the std across experts of each real token's ``l_det``; set :attr:`ctx` to
    the batch's context before each forward.
    """

    def __init__(self) -> None:
        self.ctx = None
        self.spreads: dict[str, list[torch.Tensor]] = {}

    def __call__(self, site, u, l_det):
        """Record the spreads at ``site``, then route with the gate rule."""
        grid = self.ctx.grid()
        _, grid_logits = router_grid(site, u, l_det, *grid.shape)
        spread = grid_logits.float().std(-1)[grid.mask].cpu()  # (n_real,)
        self.spreads.setdefault(site.name, []).append(spread)
        return super().__call__(site, u, l_det)


@torch.no_grad()
def logit_spread(model, data: Mapping[str, torch.Tensor], batch_size: int = 16) -> dict[str, float]:
    """Median over real tokens of the std across experts of ``l_det``, per Bayesian router.

    The network routes deterministically while this is measured.

    Parameters
    ----------
    model : RouterModel
        Its network and Bayesian sites are used.
    data : mapping of str to torch.Tensor
        Network inputs with `(N, ·)` rows (``labels`` is ignored).
    batch_size : int
        Questions per forward.

    Returns
    -------
    dict of str to float
        Router name -> median logit spread.
    """
    probe = SpreadProbe()
    for batch in batches(inputs_of(data), batch_size, length_order(data)):  # little padding
        net_inputs = model.net_inputs(**batch)
        probe.ctx = model.context(net_inputs)
        run_routed(model.net, net_inputs, model.sites, probe)
    out = {}
    for name in (s.name for s in model.sites):
        parts = probe.spreads.get(name, [])
        if not parts or not sum(len(p) for p in parts):
            raise ValueError(f"{name}: no real token reached this router; check the data")
        out[name] = torch.cat(parts).median().item()
    return out


def relative_prior(spreads: Mapping[str, float], c: float) -> PerSitePrior:
    """``N(l_det, (c × spread_ℓ)² I)`` per router, from :func:`logit_spread`.

    Parameters
    ----------
    spreads : mapping of str to float
        Router name -> median logit spread.
    c : float
        Multiple of the spread, > 0.

    Returns
    -------
    PerSitePrior
        A Gaussian per router (routers not in ``spreads`` get ``N(l_det, c² I)``).
    """
    check_scale(c, "relative prior multiple c")
    for name, v in spreads.items():
        check_scale(v, f"logit spread of {name} (a router with constant logits?)")
    return PerSitePrior({k: GaussianPrior(c * v) for k, v in spreads.items()}, GaussianPrior(c))
