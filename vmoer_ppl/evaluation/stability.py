"""Routing stability under input noise: mean Jaccard of top-K sets, clean vs noisy (PAPER.md §5).

Two noise variants: ``"embedding"``, one fixed noise tensor added at the embedding output and
propagated through the network; ``"router"``, fresh noise added to each router's captured input
and only that router re-run. ``sigma = gamma * mean token-embedding norm``. Deterministic routers
(``guide=None``) route with the gate rule; Bayesian ones as prediction routes them
(:class:`~vmoer_ppl.infer.predictive.PredictiveRouting`, the run's mode and link), so the probe
measures the router that is evaluated. A mode that draws (``mc``, ``sample``) is probed twice:
with the clean run's random stream (the noise is then the only difference: the input's effect
on the routing) and with fresh draws (what a user of the router sees, its own MC variability
included), beside the MC self-agreement, the Jaccard of two clean runs with different draws.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from vmoer_ppl.infer.predictive import PredictiveRouting, PredictMode, as_mode
from vmoer_ppl.nn.gates import route
from vmoer_ppl.routing import RoutingPolicy, run_routed

GAMMAS = (0.001, 0.002, 0.005, 0.007, 0.01, 0.02, 0.05)

#: Prediction modes whose routing draws at random (probed with paired and with fresh draws).
DRAWING = (PredictMode.MC, PredictMode.SAMPLE)


def jaccard(a: torch.Tensor, b: torch.Tensor, num_experts: int) -> torch.Tensor:
    """Per-token ``|A ∩ B| / |A ∪ B|`` of two expert sets `(..., K)`; returns `(...)`."""
    ha = torch.zeros(*a.shape[:-1], num_experts, dtype=torch.bool).scatter_(-1, a, True)
    hb = torch.zeros(*b.shape[:-1], num_experts, dtype=torch.bool).scatter_(-1, b, True)
    return (ha & hb).sum(-1).double() / (ha | hb).sum(-1).double()


@contextlib.contextmanager
def forward_hook(module: nn.Module, hook) -> Iterator[None]:
    """``hook`` registered on ``module`` for the duration of a ``with`` block."""
    handle = module.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def input_embedding(net: nn.Module) -> nn.Module:
    """The token-embedding module of a network, a transformers model or a head over one."""
    for m in (net, getattr(net, "model", None)):
        if m is not None and hasattr(m, "get_input_embeddings"):
            return m.get_input_embeddings()
    if hasattr(net, "embed_tokens"):
        return net.embed_tokens
    raise ValueError(f"{type(net).__name__}: no input embedding module found")


class StabilityProbe(RoutingPolicy):
    """Routes each Bayesian router as prediction would and keeps its experts.

    Parameters
    ----------
    model : RouterModel
        The routing semantics of a Bayesian router.
    guide : RouterGuide or None
        Route with this guide as :func:`~vmoer_ppl.infer.predictive.predict` does; ``None``: the
        gate rule on ``l_det`` (deterministic).
    ctx : RouteContext
        The forward's grids: only their real tokens are kept.
    mode : PredictMode or str
        Prediction mode of the Bayesian routers.
    link : str
        Link approximation of the ``analytic`` mode.
    num_samples : int
        S of the modes that draw.
    noise : callable, optional
        ``noise(u) -> (…, D)`` added to each router's input before routing (variant "router").

    Attributes
    ----------
    experts : dict of str to list of torch.Tensor
        Router name -> `(n, K)` selected experts of each call (one per grid).
    """

    def __init__(
        self, model, guide, ctx, mode="mc", link="second-order", num_samples=35, noise=None
    ) -> None:
        self.ctx, self.noise = ctx, noise
        self.routing = None
        if guide is not None:
            self.routing = PredictiveRouting(model, guide, ctx, as_mode(mode), link, num_samples)
        self.experts: dict[str, list[torch.Tensor]] = {}

    def __call__(self, site, u, l_det):
        """Route ``site`` (its input perturbed in variant "router") and keep the experts."""
        if self.noise is not None:  # variant "router": perturb this router's input, re-run only it
            u = u + self.noise(u)
            l_det = u @ site.weight.to(u.dtype).T
        if self.routing is None:
            out = route(l_det, site.top_k, site.gate_rule)
        else:
            out = self.routing(site, u, l_det)
        chosen = out.experts[..., : site.top_k]  # without always-on shared experts (Inkling)
        experts = chosen.reshape(-1, chosen.shape[-1])
        real = self.ctx.grid().mask.reshape(-1).to(experts.device)  # of every grid, in turn
        self.experts.setdefault(site.name, []).append(experts[real])
        return out


@torch.no_grad()
def routing_stability(
    model,
    guide,
    inputs: dict[str, torch.Tensor],
    *,
    gammas=GAMMAS,
    variant: str = "embedding",
    num_samples: int = 35,
    seed: int = 0,
    prepared=None,
    mode: PredictMode | str = PredictMode.MC,
    link: str = "second-order",
) -> dict:
    """Mean Jaccard similarity of the top-K sets of each Bayesian router, clean vs noisy.

    Parameters
    ----------
    model : RouterModel
        Supplies the network and the routers (its sites) to compare.
    guide : RouterGuide or None
        Bayesian routing with this guide; ``None`` for the deterministic router.
    inputs : dict of str to torch.Tensor
        Network inputs of the probe questions (token ids, no cached prefix states).
    gammas : sequence of float
        Noise levels relative to the mean embedding norm.
    variant : str
        ``"embedding"`` or ``"router"``.
    num_samples : int
        S of the modes that draw.
    seed : int
        Seed of the noise and of the routing draws (``seed + 1``: the fresh draws).
    prepared : StabilityInputs, optional
        Variant ``"embedding"`` on the frozen-prefix cache: the clean and noisy prefix states
        from :func:`~vmoer_ppl.evaluation.stability_prefix.stability_inputs` (same ``gammas``
        and ``seed``), shared by every router compared; only the suffix runs here.
    mode : PredictMode or str
        How the Bayesian routers route (as in :func:`~vmoer_ppl.infer.predictive.predict`).
    link : str
        Link approximation of the ``analytic`` mode.

    Returns
    -------
    dict
        ``gamma``; ``per_layer`` (router name -> mean Jaccard per gamma) and ``overall`` with the
        clean run's draws on both sides; ``fresh`` (``per_layer``, ``overall``) with fresh draws
        on the noisy side; ``self_agreement`` (``per_layer``, ``overall``: two clean runs with
        different draws); ``draws``: whether the routing draws at all (if not, ``fresh`` equals
        the paired figures and ``self_agreement`` is 1, without extra runs).
    """
    if variant not in ("embedding", "router"):
        raise ValueError(f"variant={variant!r}: use 'embedding' or 'router'")
    how = {"num_samples": num_samples, "mode": mode, "link": link}
    if prepared is not None:
        if variant != "embedding" or set(prepared.noisy) != set(gammas):
            raise ValueError("prepared prefix states hold embedding noise at other gammas")
        states = {None: prepared.clean, **prepared.noisy}

        def run(gamma, draw_seed):
            return probe_experts(model, guide, states[gamma], seed=draw_seed, **how)

        clean = run(None, seed)
    else:
        inputs = {k: v for k, v in inputs.items() if k != "labels" and not k.endswith("_states")}
        norms: list = []
        clean = probe_experts(model, guide, inputs, seed=seed, emb_hook=norms_hook(norms), **how)
        scale = torch.cat([n.flatten() for n in norms]).mean()

        def run(gamma, draw_seed):
            if gamma is None:
                return probe_experts(model, guide, inputs, seed=draw_seed, **how)
            noise = GaussianNoise(gamma * scale, seed + 1)  # the same noise for either draws
            if variant == "embedding":
                return probe_experts(
                    model, guide, inputs, seed=draw_seed, emb_hook=noise.hook, **how
                )
            return probe_experts(model, guide, inputs, seed=draw_seed, router_noise=noise, **how)

    out = compare(model.sites, clean, [run(g, seed) for g in gammas], gammas)
    draws = guide is not None and as_mode(mode) in DRAWING
    if draws:
        fresh = compare(model.sites, clean, [run(g, seed + 1) for g in gammas], gammas)
        agree = compare(model.sites, clean, [run(None, seed + 1)], (0.0,))
    else:
        fresh = out
        agree = {"per_layer": {s.name: [1.0] for s in model.sites}, "overall": [1.0]}
    out["fresh"] = {"per_layer": fresh["per_layer"], "overall": fresh["overall"]}
    out["self_agreement"] = {
        "per_layer": {k: v[0] for k, v in agree["per_layer"].items()},
        "overall": agree["overall"][0],
    }
    out["draws"] = draws
    return out


def compare(sites, clean: dict, noisy: list[dict], gammas) -> dict:
    """Mean Jaccard of ``clean`` and each of ``noisy`` (router name -> `(N, K)` experts)."""
    per_layer: dict[str, list[float]] = {s.name: [] for s in sites}
    for run in noisy:
        for s in sites:
            similarity = jaccard(clean[s.name], run[s.name], s.num_experts)
            per_layer[s.name].append(similarity.mean().item())
    overall = [sum(v[i] for v in per_layer.values()) / len(sites) for i in range(len(gammas))]
    return {"gamma": list(gammas), "per_layer": per_layer, "overall": overall}


class GaussianNoise:
    """``sigma · N(0, I)`` shaped like its input, from its own seeded generator (one per γ)."""

    def __init__(self, sigma: torch.Tensor | float, seed: int) -> None:
        self.sigma, self.gen = sigma, torch.Generator().manual_seed(seed)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Noise `(…)` like ``x``."""
        return self.sigma * torch.randn(x.shape, generator=self.gen, dtype=x.dtype)

    def hook(self, module, args, out: torch.Tensor) -> torch.Tensor:
        """A forward hook adding the noise to a module's output (the token embeddings)."""
        return out + self(out)


def norms_hook(norms: list):
    """A forward hook that appends the token-embedding norms `(B, T)` to ``norms``."""

    def hook(module, args, out):
        norms.append(out.norm(dim=-1))

    return hook


def probe_experts(
    model,
    guide,
    inputs: dict,
    num_samples: int = 35,
    seed: int = 0,
    *,
    emb_hook=None,
    router_noise=None,
    mode: PredictMode | str = PredictMode.MC,
    link: str = "second-order",
) -> dict[str, torch.Tensor]:
    """One forward under :class:`StabilityProbe` (its own seeded draws); the experts per router.

    Parameters
    ----------
    model, guide
        As in :func:`routing_stability`.
    inputs : dict
        Network inputs `(B, T)`.
    num_samples, seed : int
        S and the seed of the routing draws.
    emb_hook : callable, optional
        Forward hook on the input embedding (noise, or measuring norms).
    router_noise : callable, optional
        Noise added to each router's input.
    mode, link
        How the Bayesian routers route (as in :func:`routing_stability`).

    Returns
    -------
    dict of str to torch.Tensor
        Router name -> `(N, K)` experts at the N real tokens of every grid the router routed
        (the cloze scorer's prompts and options), in call order.
    """
    ctx = model.context(inputs)
    probe = StabilityProbe(model, guide, ctx, mode, link, num_samples, router_noise)
    hooked = contextlib.nullcontext()
    if emb_hook is not None:
        hooked = forward_hook(input_embedding(model.net), emb_hook)
    with hooked, torch.random.fork_rng():
        torch.manual_seed(seed)
        run_routed(model.net, inputs, model.sites, probe)
    return {name: torch.cat(parts) for name, parts in probe.experts.items()}
