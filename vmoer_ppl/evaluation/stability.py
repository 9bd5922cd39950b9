"""Routing stability under input noise: mean Jaccard of top-K sets, clean vs noisy (PAPER.md §5).

Two noise variants: ``"embedding"``, one fixed noise tensor added at the embedding output and
propagated through the network; ``"router"``, fresh noise added to each router's captured input
and only that router re-run. ``sigma = gamma * mean token-embedding norm``. Deterministic routers
(``guide=None``) route with the gate rule; Bayesian ones with MC-averaged routing under one fixed
random stream, so the clean and noisy runs differ by the noise only.
"""

from __future__ import annotations

import torch
from torch import nn

from vmoer_ppl.infer.compiled import router_forward
from vmoer_ppl.nn.gates import route
from vmoer_ppl.routing import RoutingPolicy, run_routed

GAMMAS = (0.001, 0.002, 0.005, 0.007, 0.01, 0.02, 0.05)


def jaccard(a: torch.Tensor, b: torch.Tensor, num_experts: int) -> torch.Tensor:
    """Per-token ``|A ∩ B| / |A ∪ B|`` of two expert sets `(..., K)`; returns `(...)`."""
    ha = torch.zeros(*a.shape[:-1], num_experts, dtype=torch.bool).scatter_(-1, a, True)
    hb = torch.zeros(*b.shape[:-1], num_experts, dtype=torch.bool).scatter_(-1, b, True)
    return (ha & hb).sum(-1).double() / (ha | hb).sum(-1).double()


def _embedding(net: nn.Module) -> nn.Module:
    for m in (net, getattr(net, "model", None)):
        if m is not None and hasattr(m, "get_input_embeddings"):
            return m.get_input_embeddings()
    if hasattr(net, "embed_tokens"):
        return net.embed_tokens
    raise ValueError(f"{type(net).__name__}: no input embedding module found")


class StabilityProbe(RoutingPolicy):
    """Routes each Bayesian router as the compared model would and keeps its experts.

    Parameters
    ----------
    model : RouterModel
        The routing semantics of a Bayesian router.
    guide : RouterGuide or None
        MC routing with this guide; ``None``: the gate rule on ``l_det`` (deterministic).
    num_samples : int
        S of the Bayesian routers.
    noise : callable, optional
        ``noise(u) -> (…, D)`` added to each router's input before routing (variant "router").

    Attributes
    ----------
    experts : dict of str to torch.Tensor
        Router name -> `(B, T, K)` (or `(B*T, K)`) selected experts of the last forward.
    """

    def __init__(self, model, guide, num_samples: int, noise=None) -> None:
        self.model, self.guide, self.num_samples, self.noise = model, guide, num_samples, noise
        self.experts: dict[str, torch.Tensor] = {}

    def __call__(self, site, u, l_det):
        """Route ``site`` (its input perturbed in variant "router") and keep the experts."""
        if self.noise is not None:  # variant "router": perturb this router's input, re-run only it
            u = u + self.noise(u)
            l_det = u @ site.weight.to(u.dtype).T
        if self.guide is None:
            out = route(l_det, site.top_k, site.gate_rule)
        else:
            out = router_forward(self.model, self.guide, site, u, l_det, self.num_samples)
        self.experts[site.name] = out.experts
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
        S of the Bayesian routers.
    seed : int
        Seed of the noise and of the routing draws.

    Returns
    -------
    dict
        ``gamma``, ``per_layer`` (router name -> mean Jaccard per gamma) and ``overall``.
    """
    if variant not in ("embedding", "router"):
        raise ValueError(f"variant={variant!r}: use 'embedding' or 'router'")
    inputs = {k: v for k, v in inputs.items() if k != "labels" and not k.endswith("_states")}
    net, sites, emb = model.net, model.sites, _embedding(model.net)
    norms: list = []

    def run(noise_emb=None, noise_router=None) -> dict:
        if noise_emb is not None:
            hook = emb.register_forward_hook(lambda m, a, out: out + noise_emb(out))
        elif noise_router is None:  # the clean run: measure the embedding norms
            hook = emb.register_forward_hook(lambda m, a, out: norms.append(out.norm(dim=-1)))
        else:
            hook = None
        probe = StabilityProbe(model, guide, num_samples, noise_router)
        try:
            with torch.random.fork_rng():
                torch.manual_seed(seed)
                run_routed(net, inputs, sites, probe)
        finally:
            if hook is not None:
                hook.remove()
        return probe.experts

    clean = run()
    scale = torch.cat([n.flatten() for n in norms]).mean()
    per_layer = {s.name: [] for s in sites}
    for g in gammas:
        gen = torch.Generator().manual_seed(seed + 1)
        sigma = g * scale

        def noise(x, gen=gen, sigma=sigma):
            return sigma * torch.randn(x.shape, generator=gen, dtype=x.dtype)

        noisy = run(noise_emb=noise) if variant == "embedding" else run(noise_router=noise)
        for s in sites:
            per_layer[s.name].append(
                jaccard(clean[s.name], noisy[s.name], s.num_experts).mean().item()
            )
    overall = [sum(v[i] for v in per_layer.values()) / len(sites) for i in range(len(gammas))]
    return {"gamma": list(gammas), "per_layer": per_layer, "overall": overall}
