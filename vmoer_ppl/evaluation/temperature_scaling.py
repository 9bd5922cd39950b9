"""Post-hoc temperature scaling of the answers (Guo et al. 2017): the practical baseline."""

from __future__ import annotations

import torch


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
        T > 0 (T > 1 softens over-confident answers).
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
    return log_t.exp().item()


def apply_temperature(probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """``softmax(log p / T)``, `(N, C)`."""
    return torch.softmax(probs.double().clamp_min(1e-30).log() / temperature, -1).to(probs.dtype)
