"""The VMoER amortisation network: a shared trunk feeding a mean head and a scale head.

``Linear(D, H, no bias) + ReLU`` (H = D/4 by default) feeds a mean head and a scale head. The
mean head starts at zero, so the posterior starts centred on the deterministic router; the scale
head's weights start ~N(0, 1e-3²), so the posterior starts at the prior scale.

References
----------
1. VMoER, arXiv:2603.09453, Fig. 5 / App. C.2 (shared trunk); PAPER.md §3.2.
"""

from __future__ import annotations

import torch
from torch import nn


class AmortisedHeads(nn.Module):
    """``u -> (mean, raw_scale)`` through a shared trunk.

    Parameters
    ----------
    hidden_size : int
        D.
    mean_dim : int
        Width of the mean head (E for logits, 1 or E for temperatures).
    scale_dim : int
        Width of the scale head (E, or E(E+1)/2 for a Cholesky factor).
    trunk_dim : int, optional
        H; default ``max(1, D // trunk_divisor)``.
    trunk_divisor : int
        Sets the default H (4: D/4).
    init_std : float
        Std of the scale head's initial weights.
    """

    def __init__(
        self,
        hidden_size: int,
        mean_dim: int,
        scale_dim: int,
        *,
        trunk_dim: int | None = None,
        trunk_divisor: int = 4,
        init_std: float = 1e-3,
    ) -> None:
        super().__init__()
        H = trunk_dim or max(1, hidden_size // trunk_divisor)
        self.trunk = nn.Sequential(nn.Linear(hidden_size, H, bias=False), nn.ReLU())
        self.mean = nn.Linear(H, mean_dim)
        self.scale = nn.Linear(H, scale_dim)
        nn.init.zeros_(self.mean.weight)
        nn.init.zeros_(self.mean.bias)
        nn.init.normal_(self.scale.weight, std=init_std)
        nn.init.zeros_(self.scale.bias)

    def forward(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Amortised parameters.

        Parameters
        ----------
        u : torch.Tensor
            `(B, T, D)` router input.

        Returns
        -------
        tuple of torch.Tensor
            mean `(B, T, mean_dim)` and raw scale `(B, T, scale_dim)`.
        """
        h = self.trunk(u)  # (B, T, H)
        return self.mean(h), self.scale(h)


def fill_tril(raw: torch.Tensor, n: int) -> torch.Tensor:
    """Lower-triangular factor from row-major packed entries, diagonal through ``exp``.

    Parameters
    ----------
    raw : torch.Tensor
        `(..., n(n+1)/2)` packed entries.
    n : int
        Matrix size E.

    Returns
    -------
    torch.Tensor
        `(..., n, n)` lower-triangular with positive diagonal.
    """
    rows, cols = torch.tril_indices(n, n, device=raw.device)
    L = raw.new_zeros(*raw.shape[:-1], n, n)  # (..., E, E)
    L[..., rows, cols] = raw
    diag = torch.diagonal(L, dim1=-2, dim2=-1)
    return L - torch.diag_embed(diag) + torch.diag_embed(diag.exp())
