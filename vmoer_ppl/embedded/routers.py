"""Stage 1: deterministic routers that predict which experts contribute most.

Per layer, the target of a token is the set of K experts with the largest output norm
``‖down_e h_e‖`` on the dense model's own activations; the router ``W_r`` `(E, D)` is a linear
multi-label classifier of that set (binary cross-entropy), as MoEfication's routers are. A final
per-layer scale ``α`` on ``W_r`` (which leaves the selection unchanged) sets how decisive the
router is: it maximises the held-out likelihood of the top-K sets under ``softmax(α l)``, so the
logits are calibrated evidence about which experts matter, in units a prior or a noise level can
be stated in (as a trained MoE's are). A scale chosen by reconstruction error instead goes to
zero: with neuron-group experts, uniform gates reconstruct the dense FFN best.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def expert_outputs(h: torch.Tensor, down: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """Each expert's (unscaled) output, `(N, E, D)`, from activations `(N, F)` and down `(D, F)`."""
    return torch.einsum("nef,edf->ned", h[:, groups], down[:, groups].permute(1, 0, 2))


def train_router(
    x, contrib, top_k: int, *, steps: int = 300, lr: float = 1e-2, seed: int = 0
) -> torch.Tensor:
    """Fit ``W_r`` `(E, D)` to predict the top-K experts by contribution.

    Parameters
    ----------
    x : torch.Tensor
        `(N, D)` MLP inputs.
    contrib : torch.Tensor
        `(N, E)` expert output norms.
    top_k : int
        K.
    steps, lr : int, float
        Full-batch Adam steps and learning rate.
    seed : int
        Initialisation seed.

    Returns
    -------
    torch.Tensor
        `(E, D)`.
    """
    torch.manual_seed(seed)
    N, E = contrib.shape
    target = torch.zeros(N, E, dtype=x.dtype).scatter_(1, contrib.topk(top_k, -1).indices, 1.0)
    w = nn.Parameter(torch.randn(E, x.shape[1], dtype=x.dtype) * 0.01)
    b = nn.Parameter(
        torch.zeros(E, dtype=x.dtype)
    )  # a bias only during fitting: the MoE routers have none
    opt = torch.optim.Adam([w, b], lr=lr)
    for _ in range(steps):
        loss = nn.functional.binary_cross_entropy_with_logits(x @ w.T + b, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return w.detach()


def select(x: torch.Tensor, w: torch.Tensor, top_k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-K routing of `(N, D)` by router `(E, D)`: experts and renormalised gates `(N, K)`."""
    logits = x @ w.T  # (N, E)
    idx = logits.topk(top_k, -1).indices  # (N, K)
    return idx, torch.softmax(logits.gather(1, idx), -1)


def routed_output(
    x: torch.Tensor, w: torch.Tensor, outputs: torch.Tensor, top_k: int
) -> torch.Tensor:
    """The MoE block's output ``K Σ_k g_k out_k`` `(N, D)` from expert outputs `(N, E, D)`."""
    idx, gates = select(x, w, top_k)
    picked = outputs.gather(1, idx.unsqueeze(-1).expand(-1, -1, outputs.shape[-1]))  # (N, K, D)
    return top_k * (gates.unsqueeze(-1) * picked).sum(1)


def relative_error(pred: torch.Tensor, target: torch.Tensor) -> float:
    """``‖pred − target‖ / ‖target‖``."""
    return ((pred - target).norm() / target.norm()).item()


def listwise_nll(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean NLL of the top-K sets under ``softmax(logits)``, `(A,)` for logits `(A, N, E)`.

    ``target`` `(N, E)` is the K-hot set of each token's K largest experts; a token's NLL is the
    mean over its set of ``−log softmax(l)_e`` (listwise softmax cross-entropy).
    """
    lp = torch.log_softmax(logits, -1)  # (A, N, E)
    return -(lp * target).sum(-1).mean(-1) / target.sum(-1).mean()


@torch.no_grad()
def fit_scale(
    w: torch.Tensor, x: torch.Tensor, contrib: torch.Tensor, top_k: int, *, span: float = 1e4
) -> tuple[float, float]:
    """Scale ``α`` of ``W_r`` maximising the held-out likelihood of the top-K sets.

    ``α`` (which leaves the selection unchanged) sets how decisive the router is: the listwise
    NLL of the K experts with the largest outputs under ``softmax(α x W_rᵀ)`` is convex in ``α``,
    so a log grid over ``[1/span, span]`` brackets its minimum and a golden-section search
    refines it. The minimum must lie inside the grid (asserted): a search that ends on its edge
    has not found it.

    Parameters
    ----------
    w : torch.Tensor
        `(E, D)` router.
    x : torch.Tensor
        `(N, D)` held-out MLP inputs.
    contrib : torch.Tensor
        `(N, E)` expert output norms on those tokens.
    top_k : int
        K.
    span : float
        The grid's range, ``α ∈ [1/span, span]``.

    Returns
    -------
    tuple of float
        ``(alpha, nll)``: the scale and the held-out NLL per top-K member there.
    """
    logits = x @ w.T  # (N, E)
    target = torch.zeros_like(logits).scatter_(1, contrib.topk(top_k, -1).indices, 1.0)
    grid = torch.logspace(-math.log10(span), math.log10(span), 81, dtype=logits.dtype)
    nll = listwise_nll(grid[:, None, None] * logits, target)  # (81,)
    i = int(nll.argmin())
    if i in (0, len(grid) - 1):
        raise RuntimeError(f"router scale search ended on its grid edge (alpha={grid[i]:.3g})")
    lo, hi = math.log(grid[i - 1]), math.log(grid[i + 1])
    f = lambda a: float(listwise_nll(math.exp(a) * logits[None], target))  # noqa: E731
    for _ in range(40):  # golden section on log alpha
        m1, m2 = hi - 0.618 * (hi - lo), lo + 0.618 * (hi - lo)
        lo, hi = (lo, m2) if f(m1) < f(m2) else (m1, hi)
    a = 0.5 * (lo + hi)
    return math.exp(a), f(a)


@torch.no_grad()
def routing_stats(logits: torch.Tensor, top_k: int) -> dict[str, float]:
    """How decisive a router is, from its logits `(N, E)`.

    Returns
    -------
    dict
        ``logit_std``: median over tokens of the std across experts; ``gap_k``: median gap
        between the K-th and (K+1)-th logit; ``gate_entropy``: mean entropy (nats) of the
        renormalised top-K gates, and ``gate_entropy_max``: its uniform value ``log K``.
    """
    top = logits.topk(min(top_k + 1, logits.shape[-1]), -1).values  # (N, K+1)
    gates = torch.softmax(top[:, :top_k], -1)  # (N, K)
    ent = -(gates * gates.clamp_min(1e-30).log()).sum(-1)  # (N,)
    gap = top[:, top_k - 1] - top[:, top_k] if top.shape[-1] > top_k else torch.zeros(1)
    return {
        "logit_std": float(logits.std(-1).median()),
        "gap_k": float(gap.median()),
        "gate_entropy": float(ent.mean()),
        "gate_entropy_max": math.log(top_k),
    }


@torch.no_grad()
def refit_down(
    x, h, w, groups, shared, dense_out, top_k: int, *, ridge: float = 1e-3
) -> torch.Tensor:
    """Least-squares down projections for the routed block (the optional stage-1 fine-tune).

    With routing fixed, the block output ``down_s h_s(x) + Σ_{e∈S(x)} K w_e(x) down_e h_e(x)``
    (shared expert, then the selected routed experts) is linear in the down projections; solving
    for all of them jointly by ridge regression against the dense MLP output compensates for the
    neuron groups each token no longer uses and for gate values away from uniform. Gate/up rows
    are unchanged.

    Parameters
    ----------
    x : torch.Tensor
        `(N, D)` MLP inputs.
    h : torch.Tensor
        `(N, F)` SwiGLU activations.
    w : torch.Tensor
        `(E, D)` router weight (scaled).
    groups : torch.Tensor
        `(E, F_e)` neuron groups of the routed experts.
    shared : torch.Tensor
        `(S,)` neurons of the shared expert (may be empty).
    dense_out : torch.Tensor
        `(N, D)` dense MLP output.
    top_k : int
        K.
    ridge : float
        Ridge strength relative to the mean feature energy.

    Returns
    -------
    torch.Tensor
        `(D, F)` down projection in dense neuron order (the converter scales routed columns by
        K and shared ones by 2); neurons in neither set keep zero columns.
    """
    idx, selected = select(x, w, top_k)
    gates = torch.zeros(len(x), w.shape[0], dtype=x.dtype).scatter_(1, idx, selected)  # (N, E)
    routed = (top_k * gates[:, :, None] * h[:, groups]).reshape(len(x), -1)  # (N, E*F_e)
    feats = torch.cat([h[:, shared], routed], 1)  # (N, S + E*F_e)
    gram = feats.T @ feats  # (P, P)
    gram.diagonal().add_(ridge * gram.diagonal().mean())
    sol = torch.linalg.solve(gram, feats.T @ dense_out).T  # (D, P)
    down = torch.zeros(dense_out.shape[1], h.shape[1], dtype=sol.dtype)  # (D, F)
    down[:, torch.cat([shared, groups.reshape(-1)])] = sol  # back to dense neuron order
    return down
