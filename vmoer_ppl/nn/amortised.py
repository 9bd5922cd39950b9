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

from vmoer_ppl.nn.constants import cached_outside_compile


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

    One gather from ``[raw, exp(raw at the diagonal), 0]`` (:func:`tril_gather_index`): a
    scatter into zeros followed by diagonal surgery was 3× slower on the prediction path, and
    ``exp`` is taken of the diagonal entries only (``where(diag, exp(raw), raw)`` would give
    NaN gradients where an off-diagonal ``exp`` overflows).

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
    if raw.shape[-1] != n * (n + 1) // 2:
        raise ValueError(f"fill_tril: {raw.shape[-1]} packed entries, need n(n+1)/2 for n = {n}")
    index, diagonal = tril_gather_index(n, raw.device)
    flat = raw.reshape(-1, raw.shape[-1])  # (N, P): index_select on 2-D is ~4x faster on CPU
    zero = flat.new_zeros(flat.shape[0], 1)
    source = torch.cat([flat, flat.index_select(1, diagonal).exp(), zero], 1)  # (N, P + n + 1)
    return source.index_select(1, index).reshape(*raw.shape[:-1], n, n)  # (..., n, n)


@cached_outside_compile(maxsize=64)
def tril_gather_index(n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Where :func:`fill_tril` reads each matrix entry, and the packed diagonal positions.

    Cached per ``(n, device)``: the returned tensors are shared, never modify them in place.

    Parameters
    ----------
    n : int
        Matrix size.
    device : torch.device
        Where the indices live.

    Returns
    -------
    index : torch.Tensor
        `(n·n,)` long: entry ``(i, j)`` reads packed ``i(i+1)/2 + j`` below the diagonal,
        ``P + i`` on it (``P = n(n+1)/2``, the exp-ed diagonal follows the packed entries) and
        ``P + n`` (a zero) above it.
    diagonal : torch.Tensor
        `(n,)` long: packed position ``i(i+1)/2 + i`` of each diagonal entry.
    """
    packed = n * (n + 1) // 2
    i = torch.arange(n).unsqueeze(1)  # (n, 1)
    j = torch.arange(n).unsqueeze(0)  # (1, n)
    below = i * (i + 1) // 2 + j  # (n, n)
    index = torch.where(j < i, below, torch.where(j == i, packed + i, packed + n))
    diagonal = torch.arange(n) * (torch.arange(n) + 3) // 2
    return index.flatten().to(device), diagonal.to(device)
