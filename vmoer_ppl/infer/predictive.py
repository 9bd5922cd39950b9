"""Predictive routing: MC-averaged routing inside each Bayesian router, experts run once.

Modes (DESIGN.md): ``mean`` routes with each latent at its q location; ``mc`` (default) draws
S = 35 samples of the routing logits, vectorised along a leading sample dim, averages the
routing probabilities and hands ``log p̄`` to the gate rule; ``analytic`` hands the gate rule
the closed-form ``log E_q[softmax(l)]`` instead (a link approximation for Gaussian logits,
quadrature for the temperature family: :mod:`vmoer_ppl.nn.link`), so answers carry no Monte
Carlo noise, and computes every signal in closed form too (mutual information ``½ tr(FΣ)``,
exact by quadrature for the temperature family): nothing is drawn. ``sample`` routes with one
draw. In the other modes the signals come from the same S draws.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from enum import Enum
from typing import cast

import pyro.distributions as dist
import torch

from vmoer_ppl.guides.base import RouterGuide
from vmoer_ppl.infer.validation import no_validation
from vmoer_ppl.models.base import RouterModel
from vmoer_ppl.nn.gates import route
from vmoer_ppl.nn.link import check_link, is_sigmoid_rule
from vmoer_ppl.nn.masks import last_token_index
from vmoer_ppl.nn.mc import entropy, mc_logits, mutual_information, softmax
from vmoer_ppl.nn.outputs import RoutingOutput
from vmoer_ppl.routing import RoutingPolicy, run_routed
from vmoer_ppl.sites import router_grid


class PredictMode(str, Enum):
    """How a Bayesian router routes at prediction time."""

    MEAN = "mean"
    """Each latent at its q location (Gaussian mean, log-normal median, no Gumbel noise)."""
    MC = "mc"
    """S draws of the routing logits; ``log p̄`` through the gate rule (the paper's mode)."""
    SAMPLE = "sample"
    """One draw from q (for the temperature family: Gumbel-top-K)."""
    ANALYTIC = "analytic"
    """Closed-form ``E_q`` of the routing probabilities; deterministic answers."""


@dataclass
class LayerRouting:
    """Routing of one Bayesian router.

    Attributes
    ----------
    probs : torch.Tensor
        `(B, T, E)` MC-averaged routing probabilities ``p̄``.
    experts : torch.Tensor
        `(B, T, K)` selected experts under the chosen mode.
    entropy : torch.Tensor
        `(B, T)` ``H[p̄]``.
    mutual_information : torch.Tensor
        `(B, T)` ``H[p̄] − mean_s H[p_s]``.
    ilv : torch.Tensor
        `(B, T)` inferred logit variance ``tr Cov_q[logits]``.
    draws : dict of str to torch.Tensor, optional
        With ``keep_draws``: the S draws of each latent, `(S, B, T, ...)` per token or `(S, ...)`.
    """

    probs: torch.Tensor
    experts: torch.Tensor
    entropy: torch.Tensor
    mutual_information: torch.Tensor
    ilv: torch.Tensor
    draws: dict | None = None


@dataclass
class PredictiveOutput:
    """Answers and routing uncertainty of one batch.

    Attributes
    ----------
    logits : torch.Tensor
        `(B, C)` answer logits.
    probs : torch.Tensor
        `(B, C)` answer probabilities.
    routing : dict of str to LayerRouting
        Per Bayesian router, keyed by router name.
    routing_entropy, mutual_information, ilv : torch.Tensor
        `(B,)` signals at the last real token, averaged over Bayesian routers.
    """

    logits: torch.Tensor
    probs: torch.Tensor
    routing: dict[str, LayerRouting] = field(default_factory=dict)
    routing_entropy: torch.Tensor | None = None
    mutual_information: torch.Tensor | None = None
    ilv: torch.Tensor | None = None


def draw(d: dist.Distribution, num_samples: int) -> torch.Tensor:
    """``num_samples`` draws along a new leading dim; full-covariance Gaussians by one einsum.

    ``MultivariateNormal.rsample`` broadcasts its `(..., E, E)` factor against the sample dim
    (a batched matmul over copies); ``loc + einsum(L, ε)`` is about twice as fast on CPU.

    Parameters
    ----------
    d : Distribution
        A guide distribution with batch shape `(...)`.
    num_samples : int
        S.

    Returns
    -------
    torch.Tensor
        `(S, ...)` + event shape.
    """
    if isinstance(d, dist.MultivariateNormal):
        eps = torch.randn((num_samples, *d.loc.shape), dtype=d.loc.dtype, device=d.loc.device)
        return d.loc + torch.einsum("...ij,s...j->s...i", d.scale_tril, eps)  # (S, ..., E)
    return cast(torch.distributions.Distribution, d).rsample(torch.Size((num_samples,)))


class PredictiveRouting(RoutingPolicy):
    """Prediction-time routing of each Bayesian router; its :class:`LayerRouting` in :attr:`store`.

    Parameters
    ----------
    model : RouterModel
        Routing semantics (``logit_samples``, ``analytic_routing``, ``route_latents``).
    guide : RouterGuide
        ``q`` of every latent.
    ctx : RouteContext
        Grids of the batch.
    mode : PredictMode
        How to route (see :func:`predict`).
    link : str
        Link approximation of the analytic mode.
    num_samples : int
        S.
    keep_draws : bool
        Keep the latent draws in each :class:`LayerRouting`.
    """

    def __init__(self, model, guide, ctx, mode, link, num_samples, keep_draws=False) -> None:
        self.model, self.guide, self.ctx = model, guide, ctx
        self.mode, self.link, self.num_samples, self.keep = mode, link, num_samples, keep_draws
        self.store: dict[str, LayerRouting] = {}

    def __call__(self, site, u, l_det):
        """Route ``site`` under the mode; record its routing and signals in :attr:`store`."""
        grid = self.ctx.grid()
        u, l_det = router_grid(site, u, l_det, *grid.shape)
        q = self.guide.q_dists(site, u, l_det)
        if self.mode is PredictMode.ANALYTIC and not self.keep:
            out, layer = self.closed_form(site, u, l_det, q)
        else:
            out, layer = self.sampled(site, u, l_det, q)
        self.store[routing_key(site, grid.name)] = layer
        return out

    def closed_form(self, site, u, l_det, q) -> tuple[RoutingOutput, LayerRouting]:
        """The analytic mode without draws: routing and every signal in closed form."""
        a = self.model.analytic_routing(site, u, l_det, q, self.link)
        out = route(a.gate_logits, site.top_k, site.gate_rule)
        layer = LayerRouting(a.probs, out.experts, entropy(a.probs), a.mutual_information, a.ilv)
        return out, layer

    def sampled(self, site, u, l_det, q) -> tuple[RoutingOutput, LayerRouting]:
        """S draws of the routing logits; route under the mode; signals from the same draws."""
        model, mode, keep = self.model, self.mode, self.keep
        skip = model.selection_latents if mode is not PredictMode.SAMPLE and not keep else ()
        draws = {k: draw(d, self.num_samples) for k, d in q.items() if k not in skip}  # (S, ...)
        samples = model.logit_samples(site, u, l_det, draws)  # (S, B, T, E)
        probs = softmax(samples)  # (S, B, T, E), once for routing and every signal
        gate_logits, out = self.route_mode(site, u, l_det, q, draws, samples, probs)
        ilv = model.logit_variance(q, samples, l_det)
        exact = mode is PredictMode.ANALYTIC and not is_sigmoid_rule(site.gate_rule)
        p_bar = softmax(gate_logits) if exact else probs.mean(0)
        mi = mutual_information(samples, probs=probs)
        layer = LayerRouting(p_bar, out.experts, entropy(p_bar), mi, ilv, draws if keep else None)
        return out, layer

    def route_mode(self, site, u, l_det, q, draws, samples, probs):
        """``(gate logits or None, RoutingOutput)`` of the mode, given the draws."""
        model, mode = self.model, self.mode
        if mode is PredictMode.MC:
            gate_logits = mc_logits(samples, site.gate_rule, probs=probs)  # log p̄ -> gate rule
            return gate_logits, route(gate_logits, site.top_k, site.gate_rule)
        if mode is PredictMode.ANALYTIC:  # with keep_draws: route in closed form, keep the draws
            gate_logits = model.analytic_routing(site, u, l_det, q, self.link).gate_logits
            return gate_logits, route(gate_logits, site.top_k, site.gate_rule)
        if mode is PredictMode.MEAN:
            return None, model.route_latents(site, u, l_det, self.guide.point_values(q))
        return None, model.route_latents(site, u, l_det, {k: v[0] for k, v in draws.items()})


def routing_key(site, grid: str) -> str:
    """Key in :attr:`PredictiveOutput.routing`: ``router``, or ``router.grid`` for named grids."""
    return f"{site.name}.{grid}" if grid else site.name


@torch.no_grad()
def predict(
    model: RouterModel,
    guide: RouterGuide,
    input_ids: torch.Tensor | None = None,
    attention_mask: torch.Tensor | None = None,
    *,
    mode: PredictMode | str = PredictMode.MC,
    num_samples: int = 35,
    link: str = "second-order",
    keep_draws: bool = False,
    validate_args: bool = False,
    **inputs,
) -> PredictiveOutput:
    """Answers and routing uncertainty with Bayesian routers.

    Parameters
    ----------
    model : RouterModel
        The model (network and routing semantics).
    guide : RouterGuide
        The trained guide.
    input_ids : torch.Tensor
        `(B, T)` token ids (or pass the network's own inputs as keywords).
    attention_mask : torch.Tensor, optional
        `(B, T)` 1 at tokens, 0 at padding.
    mode : PredictMode or str
        ``"mean"``, ``"mc"``, ``"analytic"`` or ``"sample"``.
    num_samples : int
        S, draws per router (the paper: 35); unused in ``analytic`` mode.
    link : str
        ``analytic`` mode's approximation of ``E[softmax(l)]`` for Gaussian logits:
        ``"second-order"``, ``"mean-field"``, ``"probit"`` or ``"bridge"``
        (:mod:`vmoer_ppl.nn.link`).
    keep_draws : bool
        Keep the latent draws in :attr:`LayerRouting.draws` (for posterior export).
    validate_args : bool
        Check every guide distribution's arguments (Pyro's validation, as in training). Off by
        default: a guide's outputs are valid by construction and the checks cost ~40 % of a
        Bayesian router's time (:mod:`vmoer_ppl.infer.validation`); NaN answers still raise.
    **inputs
        Further network inputs (e.g. the cloze scorer's); ``labels`` is ignored.

    Returns
    -------
    PredictiveOutput
        Routing per Bayesian router and grid (keys ``router`` or ``router.grid``); the signals
        are read at the last real token of the first grid (the prompt).

    Raises
    ------
    FloatingPointError
        If an answer logit is NaN (a guide produced invalid parameters; ``validate_args=True``
        names the distribution).
    """
    mode = as_mode(mode)
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    inputs.pop("labels", None)
    net_inputs = model.net_inputs(input_ids, attention_mask, **inputs)
    ctx = model.context(net_inputs)
    check_link(link)
    policy = PredictiveRouting(model, guide, ctx, mode, link, num_samples, keep_draws)
    with contextlib.nullcontext() if validate_args else no_validation():
        logits = run_routed(model.net, net_inputs, model.sites, policy)  # (B, C)
    if not validate_args and torch.isnan(logits).any():
        raise FloatingPointError(
            "NaN answer logits under Bayesian routing: a guide produced invalid parameters; "
            "rerun predict(..., validate_args=True) to see which distribution"
        )
    signals = [last_token_signal(policy.store, model.sites, ctx.first, name) for name in SIGNALS]
    return PredictiveOutput(logits, torch.softmax(logits, -1), policy.store, *signals)


#: The per-question routing signals of :class:`PredictiveOutput`, in its order.
SIGNALS = ("entropy", "mutual_information", "ilv")


def as_mode(mode: PredictMode | str) -> PredictMode:
    """Parse a prediction mode, with an error listing the known ones."""
    try:
        return PredictMode(mode)
    except ValueError:
        known = [m.value for m in PredictMode]
        raise ValueError(f"unknown mode {mode!r}; use one of {known}") from None


def last_token_signal(store: dict, sites, grid, name: str) -> torch.Tensor:
    """`(B,)` a :class:`LayerRouting` signal at each row's last real token, mean over routers.

    Routers that did not run on these inputs (ERNIE-4.5-VL's vision experts on text) are left
    out of the mean.

    Raises
    ------
    ValueError
        If none of the Bayesian routers ran.
    """
    rows, last = torch.arange(grid.shape[0]), last_token_index(grid.mask)  # (B,), (B,)
    keys = [k for k in (routing_key(s, grid.name) for s in sites) if k in store]
    if not keys:
        ran = ", ".join(s.name for s in sites)
        raise ValueError(
            f"none of the Bayesian routers ({ran}) ran on these inputs (routers of another "
            "modality?); choose routers the text passes through with layers=[...]"
        )
    return torch.stack([getattr(store[k], name)[rows, last] for k in keys]).mean(0)
