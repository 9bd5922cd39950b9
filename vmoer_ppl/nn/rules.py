"""Routing rules that are more than a gate function: DeepSeek-V3's group-limited sigmoid router.

A rule object has ``route(logits, k, experts=None) -> RoutingOutput`` and
``mc_logits(samples) -> logits`` (how S logit samples are averaged before routing). Plain
:class:`~vmoer_ppl.nn.gates.GateRule` members use softmax averaging; a sigmoid router averages its
sigmoid scores instead, ``logit(mean_s sigmoid(l_s))``, so ``sigmoid`` of the result is ``s̄``.
"""

from __future__ import annotations

import torch

from vmoer_ppl.nn.outputs import RoutingOutput


class GroupLimitedSigmoidRule:
    """DeepSeek-V3 routing (transformers ``DeepseekV3TopkRouter.forward``), logits given.

    Scores ``s = sigmoid(l)``; selection on ``s + bias`` restricted to the ``topk_group`` groups
    with the largest sum of their top-2 scores; weights are the unbiased ``s`` of the selected,
    normalised if ``norm_topk_prob`` (+1e-20), times ``routed_scaling_factor``.

    Parameters
    ----------
    bias : torch.Tensor
        `(E,)` ``e_score_correction_bias`` (selection only).
    n_group, topk_group : int
        Expert groups and groups kept per token.
    norm_topk_prob : bool
        Renormalise the selected scores.
    routed_scaling_factor : float
        Multiplier of the weights.
    """

    def __init__(
        self,
        bias,
        n_group: int,
        topk_group: int,
        norm_topk_prob: bool,
        routed_scaling_factor: float,
    ):
        self.bias, self.n_group, self.topk_group = bias, n_group, topk_group
        self.norm_topk_prob, self.scale = norm_topk_prob, float(routed_scaling_factor)

    def select(self, logits: torch.Tensor, k: int) -> torch.Tensor:
        """Group-limited top-K; logits `(N, E)` -> experts `(N, K)`."""
        N, E = logits.shape
        choice = logits.sigmoid() + self.bias.to(logits)  # (N, E)
        grouped = choice.view(N, self.n_group, E // self.n_group)  # (N, G, E/G)
        group_scores = grouped.topk(2, dim=-1)[0].sum(-1)  # (N, G)
        group_idx = torch.topk(group_scores, k=self.topk_group, dim=-1, sorted=False)[1]
        group_mask = torch.zeros_like(group_scores).scatter_(1, group_idx, 1)  # (N, G)
        score_mask = group_mask.unsqueeze(-1).expand_as(grouped).reshape(N, E).bool()
        choice = choice.masked_fill(~score_mask, float("-inf"))
        return torch.topk(choice, k=k, dim=-1, sorted=False)[1]  # (N, K)

    def route(
        self, logits: torch.Tensor, k: int, experts: torch.Tensor | None = None
    ) -> RoutingOutput:
        """Route logits `(..., E)`; returns weights and experts `(..., K)`."""
        flat = logits.reshape(-1, logits.shape[-1])  # (N, E)
        idx = self.select(flat, k) if experts is None else experts.reshape(-1, experts.shape[-1])
        w = flat.sigmoid().gather(1, idx)  # (N, K)
        if self.norm_topk_prob:
            w = w / (w.sum(-1, keepdim=True) + 1e-20)
        shape = (*logits.shape[:-1], idx.shape[-1])
        return RoutingOutput(logits, (w * self.scale).reshape(shape), idx.reshape(shape))

    def mc_logits(self, samples: torch.Tensor) -> torch.Tensor:
        """``logit(mean_s sigmoid(l_s))`` over the leading sample dim."""
        s_bar = samples.sigmoid().mean(0)
        eps = torch.finfo(s_bar.dtype).eps
        return torch.logit(s_bar.clamp(eps, 1 - eps))

    def __repr__(self) -> str:
        return (
            f"GroupLimitedSigmoidRule(n_group={self.n_group}, topk_group={self.topk_group}, "
            f"norm_topk_prob={self.norm_topk_prob}, routed_scaling_factor={self.scale})"
        )
