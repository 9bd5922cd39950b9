"""Post-hoc temperature scaling of the answers (Guo et al. 2017): the practical baseline."""

from __future__ import annotations

import logging

import torch

log = logging.getLogger(__name__)

#: The temperatures :func:`fit_temperature` returns. A model wrong on every validation question
#: has its NLL optimum at T → ∞ (uniform answers): in float32 that ties every answer, and the
#: argmax (accuracy) would change, which temperature scaling must never do. Right on every
#: question, the optimum is T → 0.
T_RANGE = (1e-2, 1e2)


def fit_temperature(probs: torch.Tensor, labels: torch.Tensor, *, max_iter: int = 100) -> float:
    """The temperature T minimising validation NLL of ``softmax(log p / T)``.

    Parameters
    ----------
    probs : torch.Tensor
        `(N, C)` validation answer probabilities of the model to calibrate.
    labels : torch.Tensor
        `(N,)` answers.
    max_iter : int
        L-BFGS iterations.

    Returns
    -------
    float
        T in :data:`T_RANGE` (T > 1 softens over-confident answers); when the optimum lies
        outside it, the better bound, with a warning.
    """
    logits = probs.double().clamp_min(1e-30).log()
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.5, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    opt.step(closure)
    t = log_t.exp().item()
    if T_RANGE[0] <= t <= T_RANGE[1]:
        return t
    best = min(T_RANGE, key=lambda b: torch.nn.functional.cross_entropy(logits / b, labels).item())
    log.warning(
        "post-hoc temperature: validation NLL is lowest outside T in [%g, %g] (%s); T = %g kept, "
        "which keeps every answer's ranking",
        *T_RANGE,
        "the answers' ranking carries no information on validation: near-uniform answers score best"
        if best == T_RANGE[1]
        else "the model is right on every validation question: the sharper the better",
        best,
    )
    return best


def apply_temperature(probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """``softmax(log p / T)``, `(N, C)`."""
    return torch.softmax(probs.double().clamp_min(1e-30).log() / temperature, -1).to(probs.dtype)
