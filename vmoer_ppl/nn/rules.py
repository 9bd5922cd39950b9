"""Routing rules that are more than a gate function: group-limited routers with a selection bias.

A rule object has ``route(logits, k, experts=None) -> RoutingOutput``. A sigmoid rule also has
``mc_logits(samples) -> logits`` (how S logit samples are averaged before routing): it averages
its sigmoid scores, ``logit(mean_s sigmoid(l_s))``, so ``sigmoid`` of the result is ``s̄``; rules
without it (and plain :class:`~vmoer_ppl.nn.gates.GateRule` softmax members) average softmax
probabilities.

- ``GroupLimitedSigmoidRule``: top-K of ``sigmoid(l) + b`` in the best groups, weights
  ``sigmoid(l)`` renormalised × scale (DeepSeek-V3, GLM-4.5, …); with ``bias_on="logits"``
  the selection is on ``l + b`` (Kolibri-1).
- ``GroupLimitedSqrtSoftplusRule``: the same on ``sqrt(softplus(l))`` scores (DeepSeek-V4).
- ``GroupLimitedSoftmaxRule``: top-K of ``softmax(l)`` in the best groups, weights
  ``softmax(l)`` renormalised × scale (Mistral-Large-4).
- ``SparseMixerRule``: top-K of ``l``, each weighted by a softmax over the logits near its own
  (Phi-3.5-MoE's sparsemixer in evaluation mode).
- ``SharedSigmoidRule``: top-K of ``sigmoid(l) + b`` among the routed experts, weights
  normalised together with the always-on shared experts' sigmoids (Inkling); its routing
  output has K + S columns, the K routed first.
"""

from __future__ import annotations

import torch

from vmoer_ppl.nn.outputs import RoutingOutput


def sigmoid_mean_logits(samples: torch.Tensor) -> torch.Tensor:
    """``logit(mean_s sigmoid(l_s))``: `(S, ..., E)` -> `(..., E)`."""
    s_bar = samples.sigmoid().mean(0)
    eps = torch.finfo(s_bar.dtype).eps
    return torch.logit(s_bar.clamp(eps, 1 - eps))


class _GroupLimited:
    """Group-limited top-K on scores ``f(l)`` (+ a selection bias); weights from ``f(l)``."""

    def __init__(
        self,
        bias,
        n_group: int,
        topk_group: int,
        norm_topk_prob: bool,
        routed_scaling_factor: float,
        *,
        bias_on: str = "scores",
    ):
        if bias_on not in ("scores", "logits"):
            raise ValueError(f"bias_on={bias_on!r}: use 'scores' or 'logits'")
        self.bias, self.n_group, self.topk_group = bias, n_group, topk_group
        self.norm_topk_prob, self.scale = norm_topk_prob, float(routed_scaling_factor)
        self.bias_on = bias_on

    def scores(self, logits: torch.Tensor) -> torch.Tensor:
        """Routing scores `(N, E)` of logits `(N, E)`."""
        raise NotImplementedError

    def select(self, logits: torch.Tensor, k: int) -> torch.Tensor:
        """Group-limited top-K; logits `(N, E)` -> experts `(N, K)`."""
        N, E = logits.shape
        choice = logits if self.bias_on == "logits" else self.scores(logits)  # (N, E)
        if self.bias is not None:
            choice = choice + self.bias.to(logits)
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
        w = self.scores(flat).gather(1, idx)  # (N, K)
        if self.norm_topk_prob:
            w = w / (w.sum(-1, keepdim=True) + 1e-20)
        shape = (*logits.shape[:-1], idx.shape[-1])
        return RoutingOutput(logits, (w * self.scale).reshape(shape), idx.reshape(shape))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(n_group={self.n_group}, topk_group={self.topk_group}, "
            f"norm_topk_prob={self.norm_topk_prob}, routed_scaling_factor={self.scale}"
            + (", bias_on='logits')" if self.bias_on == "logits" else ")")
        )


class GroupLimitedSigmoidRule(_GroupLimited):
    """DeepSeek-V3 routing (transformers ``DeepseekV3TopkRouter.forward``), logits given.

    Scores ``s = sigmoid(l)``; selection on ``s + bias`` (or ``l + bias`` with
    ``bias_on="logits"``) restricted to the ``topk_group`` groups with the largest sum of their
    top-2 scores; weights are the unbiased ``s`` of the selected, normalised if
    ``norm_topk_prob`` (+1e-20), times ``routed_scaling_factor``.

    Parameters
    ----------
    bias : torch.Tensor or None
        `(E,)` ``e_score_correction_bias`` (selection only).
    n_group, topk_group : int
        Expert groups and groups kept per token.
    norm_topk_prob : bool
        Renormalise the selected scores.
    routed_scaling_factor : float
        Multiplier of the weights.
    bias_on : {"scores", "logits"}
        Where the selection bias is added.
    """

    def scores(self, logits):
        """``sigmoid(l)``."""
        return logits.sigmoid()

    def mc_logits(self, samples: torch.Tensor) -> torch.Tensor:
        """``logit(mean_s sigmoid(l_s))`` over the leading sample dim."""
        return sigmoid_mean_logits(samples)


def _inverse_softplus(y: torch.Tensor) -> torch.Tensor:
    """``x`` with ``softplus(x) = y`` for ``y > 0`` (floored at the smallest normal float)."""
    y = y.clamp_min(torch.finfo(y.dtype).tiny)
    return y + torch.log(-torch.expm1(-y))  # log(exp(y) - 1), stable for large y


class GroupLimitedSqrtSoftplusRule(_GroupLimited):
    """DeepSeek-V4 routing (transformers ``DeepseekV4TopKRouter``): scores ``sqrt(softplus(l))``.

    Selection on the scores + ``bias``, weights the unbiased scores of the selected, normalised
    (+1e-20) × ``routed_scaling_factor``, as :class:`GroupLimitedSigmoidRule` with another
    score. Prediction averages scores, as the sigmoid rules do: the gate logits of a set of
    draws are ``softplus⁻¹((Σ_n w_n s(l_n))²)``; for Gaussian logits
    :func:`vmoer_ppl.nn.link.gaussian_gate_logits` takes the average by Gauss–Hermite quadrature
    per expert (16 nodes).
    """

    def scores(self, logits):
        """``sqrt(softplus(l))``."""
        return torch.nn.functional.softplus(logits).sqrt()

    def from_scores(self, s: torch.Tensor) -> torch.Tensor:
        """The logits whose score is ``s``."""
        return _inverse_softplus(s.square())

    def mc_logits(self, samples: torch.Tensor) -> torch.Tensor:
        """Logits of the mean score over the leading sample dim, `(S, ..., E)` -> `(..., E)`."""
        return self.from_scores(self.scores(samples).mean(0))

    def weighted_logits(self, samples: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Logits of the ``weights`` `(N,)`-weighted mean score, `(N, ..., E)` -> `(..., E)`."""
        w = weights.to(samples).reshape(-1, *([1] * (samples.dim() - 1)))
        return self.from_scores((w * self.scores(samples)).sum(0))


class GroupLimitedSoftmaxRule(_GroupLimited):
    """Group-limited routing on softmax scores (transformers ``MistralLarge4TextTopkRouter``).

    Scores ``p = softmax(l)``; selection on ``p`` (+ ``bias``) in the ``topk_group`` best groups;
    weights ``p`` of the selected, renormalised if ``norm_topk_prob``, × ``routed_scaling_factor``.
    MC and analytic prediction average softmax probabilities, as for the plain softmax rules.
    """

    def scores(self, logits):
        """``softmax(l)`` over experts."""
        return logits.softmax(-1)


class SparseMixerRule:
    """Phi-3.5-MoE's sparsemixer in evaluation mode (transformers ``phimoe.sparsemixer``).

    Experts are taken in order of their logits. The j-th selected expert ``e_j`` is weighted by
    a softmax over the logits still in play: not selected before, and within a relative distance
    ``(l_{e_j} − l) / max(|l|, l_{e_j}) ≤ 2ε`` of its logit (``ε`` = ``router_jitter_noise``).

    Parameters
    ----------
    jitter_eps : float
        The router's ``router_jitter_noise``.
    """

    def __init__(self, jitter_eps: float):
        self.jitter_eps = float(jitter_eps)

    def route(
        self, logits: torch.Tensor, k: int, experts: torch.Tensor | None = None
    ) -> RoutingOutput:
        """Route logits `(..., E)`; returns weights and experts `(..., K)`."""
        if experts is None:
            experts = torch.topk(logits, k, dim=-1).indices  # (..., K) in logit order
        taken = torch.zeros_like(logits, dtype=torch.bool)
        weights = []
        for j in range(experts.shape[-1]):
            e = experts[..., j : j + 1]  # (..., 1)
            thr = logits.gather(-1, e)  # (..., 1)
            far = (thr - logits) / logits.abs().clamp(min=thr) > 2 * self.jitter_eps
            gates = torch.softmax(logits.masked_fill(far | taken, float("-inf")), dim=-1)
            weights.append(gates.gather(-1, e))
            taken = taken.scatter(-1, e, True)
        return RoutingOutput(logits, torch.cat(weights, -1), experts)

    def __repr__(self) -> str:
        return f"SparseMixerRule(jitter_eps={self.jitter_eps})"


class SharedSigmoidRule:
    """Sigmoid routing with always-on shared experts inside the normalisation (Inkling).

    The last ``n_shared`` of the E logits belong to shared experts, which every token uses.
    Top-K of ``sigmoid(l) + bias`` over the routed experts; the K selected and the shared
    experts are weighted together, ``sigmoid(l_j) / Σ sigmoid(l)`` over those K + S (computed
    as a softmax of ``logsigmoid``), × ``scale``. The K routed weights come first, then the S
    shared ones; ``experts`` holds the shared experts' indices ``E - S … E - 1`` there.

    Parameters
    ----------
    bias : torch.Tensor or None
        `(E - S,)` ``e_score_correction_bias`` (selection only).
    n_shared : int
        Shared experts S, the last S logits.
    scale : float
        Multiplier of the weights (Inkling's ``route_scale``).
    global_scale : torch.Tensor, optional
        `(1,)` a further multiplier read at every call (Inkling's ``global_scale`` parameter,
        so a later dtype cast of the model is seen as upstream sees it).
    """

    def __init__(self, bias, n_shared: int, scale: float, global_scale=None):
        self.bias, self.n_shared, self.scale = bias, int(n_shared), float(scale)
        self.global_scale = global_scale

    def selectable(self, num_experts: int) -> int:
        """How many of the ``num_experts`` logits top-K chooses among (the routed ones)."""
        return num_experts - self.n_shared

    def mc_logits(self, samples: torch.Tensor) -> torch.Tensor:
        """``logit(mean_s sigmoid(l_s))`` over the leading sample dim."""
        return sigmoid_mean_logits(samples)

    def route(
        self, logits: torch.Tensor, k: int, experts: torch.Tensor | None = None
    ) -> RoutingOutput:
        """Route logits `(..., E)`; weights and experts `(..., K + S)`, routed first."""
        E = logits.shape[-1]
        routed = E - self.n_shared
        flat = logits.reshape(-1, E)  # (N, E)
        if experts is None:
            choice = flat[:, :routed].sigmoid()
            if self.bias is not None:
                choice = choice + self.bias.to(flat)
            idx = torch.topk(choice, k, dim=-1, sorted=False)[1]  # (N, K)
        else:
            idx = experts.reshape(-1, experts.shape[-1])[:, :k]
        shared = torch.arange(routed, E, device=flat.device).expand(flat.shape[0], -1)  # (N, S)
        idx = torch.cat([idx, shared], dim=-1)  # (N, K + S)
        log_s = torch.nn.functional.logsigmoid(flat.gather(1, idx))  # (N, K + S)
        w = torch.exp(log_s - torch.logsumexp(log_s, dim=-1, keepdim=True)) * self.scale
        if self.global_scale is not None:
            w = w * self.global_scale.detach().float().to(w)
        shape = (*logits.shape[:-1], idx.shape[-1])
        return RoutingOutput(logits, w.reshape(shape), idx.reshape(shape))

    def __repr__(self) -> str:
        g = "" if self.global_scale is None else ", global_scale"
        return f"SharedSigmoidRule(n_shared={self.n_shared}, scale={self.scale}{g})"
