"""Length-grouped micro-batches: one optimiser step's rows in passes of similar length.

A batch of questions drawn at random is padded to its longest row. On the embedded default's
SciQ+support prompts (102 real tokens on average, the longest 256) a batch of 16 is 2.4× its real
tokens, and every layer computes the padding. Cutting the step's rows into runs of the length
order, each padded only to its own longest row, gives the same loss and gradient (every pass is
normalised by the whole batch) for less work. Each pass also costs a fixed overhead (Python, the
expert loop, kernel launches), so the cut minimises ``Σ_g (rows_g × longest_g + overhead)``
exactly, by dynamic programming over the sorted lengths (O(B²), B the batch size).

The overhead is in tokens: :data:`PASS_OVERHEAD_TOKENS` was measured on 2 CPU cores (embedded
default, SVI step of 16 questions: one pass 3.14 s; overhead 0 → 3.34 s, 32 → 2.17 s,
64 → 1.95 s, **128 → 1.71 s**, 256 → 1.74 s; ``benchmarks/micro_batches.py``). On a GPU a pass
costs far more tokens' worth of launches, so ``"auto"`` groups on the CPU only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch

from vmoer_ppl.data.tensors import subset, token_counts

#: Fixed cost of one pass, in tokens of padded work (2 CPU cores; see the module docstring).
PASS_OVERHEAD_TOKENS = 128

#: Values of a ``group_by_length`` setting.
GROUPING = ("auto", "on", "off")


def length_groups(lengths: torch.Tensor, overhead: float | None = None) -> list:
    """Cut rows into runs of the length order with the least padded work plus overhead.

    Parameters
    ----------
    lengths : torch.Tensor
        `(B,)` real tokens per row (:func:`vmoer_ppl.data.tensors.token_counts`).
    overhead : float, optional
        Cost of one pass in tokens (default :data:`PASS_OVERHEAD_TOKENS`); 0 gives one pass per
        distinct length, a large value one pass.

    Returns
    -------
    list of torch.Tensor
        Int64 positions into ``lengths``, each group ascending in length; together every position
        exactly once. The groups minimise ``Σ_g (len(g) × max lengths[g] + overhead)``.
    """
    if lengths.ndim != 1 or not len(lengths):
        shape = tuple(lengths.shape)
        raise ValueError(f"lengths must be a non-empty 1-d tensor, got shape {shape}")
    overhead = PASS_OVERHEAD_TOKENS if overhead is None else overhead
    order = torch.argsort(lengths, stable=True)
    sizes = lengths[order].tolist()
    n = len(sizes)
    best, cut = [0.0] + [float("inf")] * n, [0] * (n + 1)
    for j in range(1, n + 1):  # best[j]: cheapest cut of the j shortest rows
        for i in range(j):
            cost = best[i] + (j - i) * sizes[j - 1] + overhead
            if cost < best[j]:
                best[j], cut[j] = cost, i
    groups, j = [], n
    while j > 0:
        groups.append(order[cut[j] : j])
        j = cut[j]
    return groups[::-1]


def use_length_groups(setting: str, device: torch.device | str) -> bool:
    """Whether ``group_by_length`` = ``setting`` groups on ``device`` (``"auto"``: CPU only)."""
    if setting not in GROUPING:
        raise ValueError(f"group_by_length={setting!r}: use one of {GROUPING}")
    return setting == "on" or (setting == "auto" and torch.device(device).type == "cpu")


def row_groups(data: Mapping[str, torch.Tensor], rows: torch.Tensor, grouped: bool) -> list:
    """``rows`` cut by :func:`length_groups` of their token counts (one group when not ``grouped``).

    Parameters
    ----------
    data : mapping of str to torch.Tensor
        The data set (its ``*mask`` tensors give the lengths).
    rows : torch.Tensor
        `(B,)` row indices of one step (or shard).
    grouped : bool
        Cut at all.

    Returns
    -------
    list of torch.Tensor
        Row indices of each pass.
    """
    if not grouped or len(rows) < 2:
        return [rows]
    masks = {k: v[rows] for k, v in data.items() if k.endswith("mask") and v is not None}
    if not masks:
        return [rows]
    return [rows[g] for g in length_groups(token_counts(masks))]


def mean_loss_backward(
    loss_sum: Callable[[dict], torch.Tensor],
    data: Mapping[str, torch.Tensor],
    rows: torch.Tensor,
    grouped: bool,
    batch_rows: int | None = None,
) -> float:
    """Backpropagate the mean per-row loss of ``rows`` in length-grouped passes.

    Parameters
    ----------
    loss_sum : callable
        ``loss_sum(batch) -> ()``: the *summed* loss of a batch (a dict of ``data``'s rows).
    data : mapping of str to torch.Tensor
        The data set.
    rows : torch.Tensor
        `(B,)` the step's rows.
    grouped : bool
        Cut by length (:func:`row_groups`); else one pass.
    batch_rows : int, optional
        The denominator of the mean: the whole batch when ``rows`` is this process's share of
        it (data parallel; the shares' sums then add up to the batch mean). Default
        ``len(rows)``.

    Returns
    -------
    float
        ``rows``' summed loss over ``batch_rows`` (its gradient accumulated into the parameters).
    """
    total, denominator = 0.0, batch_rows or len(rows)
    for part in row_groups(data, rows, grouped):
        loss = loss_sum(subset(data, part)) / denominator
        loss.backward()
        total += loss.item()
    return total
