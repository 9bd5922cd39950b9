"""Stage 1: deterministic routers that predict which experts contribute most.

Per layer, the target of a token is the set of K experts with the largest output norm
``‖down_e h_e‖`` on the dense model's own activations; the router ``W_r`` `(E, D)` is a linear
multi-label classifier of that set (binary cross-entropy), as MoEfication's routers are. A final
per-layer scale ``α`` on ``W_r`` (which leaves the selection unchanged) sets how far the gate
values depart from uniform; it is chosen to minimise the block's reconstruction error of the
dense MLP output on held-out tokens.
"""

from __future__ import annotations

import torch
from torch import nn

ALPHAS = (0.02, 0.05, 0.1, 0.2, 0.5, 1.0)  # > 0: a zero router would tie every logit


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
    )  # a bias only during fitting: Mixtral routers have none
    opt = torch.optim.Adam([w, b], lr=lr)
    for _ in range(steps):
        loss = nn.functional.binary_cross_entropy_with_logits(x @ w.T + b, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return w.detach()


def select(x: torch.Tensor, w: torch.Tensor, top_k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixtral routing of `(N, D)` by router `(E, D)`: experts and renormalised gates `(N, K)`."""
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


@torch.no_grad()
def choose_alpha(w, x, outputs, top_k: int) -> tuple[float, float]:
    """Scale of ``W_r`` minimising the relative error of the MoE block against the dense MLP.

    Returns
    -------
    tuple of float
        ``(alpha, relative_error)``.
    """
    dense = outputs.sum(1)  # (N, D)
    best = (1.0, float("inf"))
    for a in ALPHAS:  # a > 0: the selection is the same, only the gate values change
        err = relative_error(routed_output(x, a * w, outputs, top_k), dense)
        if err < best[1]:
            best = (a, err)
    return best


@torch.no_grad()
def refit_down(x, h, w, groups, dense_out, top_k: int, *, ridge: float = 1e-3) -> torch.Tensor:
    """Least-squares down projection for the routed block (the optional stage-1 fine-tune).

    With routing fixed, the block output ``Σ_{e∈S(x)} K w_e(x) down_e h_e(x)`` is linear in the
    down projections; solving for them by ridge regression against the dense MLP output
    compensates for the neuron groups each token no longer uses. Gate/up rows are unchanged.

    Parameters
    ----------
    x : torch.Tensor
        `(N, D)` MLP inputs.
    h : torch.Tensor
        `(N, F)` SwiGLU activations.
    w : torch.Tensor
        `(E, D)` router weight (scaled).
    groups : torch.Tensor
        `(E, F / E)` neuron groups.
    dense_out : torch.Tensor
        `(N, D)` dense MLP output.
    top_k : int
        K.
    ridge : float
        Ridge strength relative to the mean feature energy.

    Returns
    -------
    torch.Tensor
        `(D, F)` down projection in dense layout (the converter multiplies its columns by K).
    """
    idx, selected = select(x, w, top_k)
    gates = torch.zeros(len(x), w.shape[0], dtype=x.dtype).scatter_(1, idx, selected)  # (N, E)
    feats = (top_k * gates[:, :, None] * h[:, groups]).reshape(len(x), -1)  # (N, F) in group order
    gram = feats.T @ feats  # (F, F)
    gram.diagonal().add_(ridge * gram.diagonal().mean())
    sol = torch.linalg.solve(gram, feats.T @ dense_out).T  # (D, F), grouped order
    down = torch.empty_like(sol)
    down[:, groups.reshape(-1)] = sol  # back to dense neuron order
    return down
