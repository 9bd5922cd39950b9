"""A small pure-torch MoE classifier for tests and examples.

Token embeddings pass through L blocks of (causal mean-mixing, MoE of SwiGLU experts), each
pre-normed and residual, and the last non-padding token is read out into ``num_labels`` answer
logits: a stand-in for "next-token logits of the option letters" in an MoE language model.
Module paths follow transformers (``layers.{i}.moe.router``) so site names look the same.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from vmoer_ppl.nn.gates import GateRule
from vmoer_ppl.nn.masks import last_token_index
from vmoer_ppl.nn.router import Router


@dataclass
class ToyMoEConfig:
    """Configuration of :class:`ToyMoEClassifier` (HF names where the concept is the same)."""

    vocab_size: int = 32  # V, small synthetic vocabulary
    hidden_size: int = 16  # D, router input width
    intermediate_size: int = 32  # F, width of each SwiGLU expert
    num_hidden_layers: int = 2  # L, every layer is an MoE layer
    num_local_experts: int = 4  # E
    num_experts_per_tok: int = 2  # K
    num_labels: int = 4  # answer options
    gate_rule: str = GateRule.SOFTMAX_TOPK_NORM.value  # Mixtral's rule by default


class ToyExperts(nn.Module):
    """E SwiGLU experts stored as stacked weights; all experts run, then K are mixed."""

    def __init__(self, cfg: ToyMoEConfig) -> None:
        super().__init__()
        E, D, F = cfg.num_local_experts, cfg.hidden_size, cfg.intermediate_size
        self.gate_up = nn.Parameter(torch.randn(E, 2 * F, D) * D**-0.5)  # (E, 2F, D)
        self.down = nn.Parameter(torch.randn(E, D, F) * F**-0.5)  # (E, D, F)

    def forward(self, u: torch.Tensor, weights: torch.Tensor, experts: torch.Tensor):
        """Mix the selected experts' outputs.

        Parameters
        ----------
        u : torch.Tensor
            `(B, T, D)` block input.
        weights, experts : torch.Tensor
            `(B, T, K)` gate values and int64 expert indices.

        Returns
        -------
        torch.Tensor
            `(B, T, D)`
        """
        gate, up = torch.einsum("btd,efd->btef", u, self.gate_up).chunk(2, dim=-1)  # (B,T,E,F)
        out = torch.einsum("btef,edf->bted", nn.functional.silu(gate) * up, self.down)
        picked = out.gather(2, experts.unsqueeze(-1).expand(*experts.shape, out.shape[-1]))
        return (weights.unsqueeze(-1).to(picked.dtype) * picked).sum(2)  # (B, T, D)


class ToyMoEBlock(nn.Module):
    """Router + experts: ``moe(u) = Σ_k w_k expert_{e_k}(u)``."""

    def __init__(self, cfg: ToyMoEConfig) -> None:
        super().__init__()
        self.router = Router(
            cfg.hidden_size, cfg.num_local_experts, cfg.num_experts_per_tok, cfg.gate_rule
        )
        self.experts = ToyExperts(cfg)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """`(B, T, D) -> (B, T, D)`."""
        routing = self.router(u)
        return self.experts(u, routing.weights, routing.experts)


class ToyLayer(nn.Module):
    """Pre-norm residual causal mean-mixing followed by a pre-norm residual MoE block."""

    def __init__(self, cfg: ToyMoEConfig) -> None:
        super().__init__()
        self.mix_norm = nn.RMSNorm(cfg.hidden_size)
        self.mix = nn.Linear(cfg.hidden_size, cfg.hidden_size, bias=False)
        self.moe_norm = nn.RMSNorm(cfg.hidden_size)
        self.moe = ToyMoEBlock(cfg)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """`(B, T, D), (B, T) -> (B, T, D)`."""
        h = self.mix_norm(x) * mask.unsqueeze(-1)  # (B, T, D)
        seen = mask.cumsum(-1).clamp_min(1).unsqueeze(-1)  # (B, T, 1)
        x = x + self.mix(h.cumsum(1) / seen)
        return x + self.moe(self.moe_norm(x))


class ToyMoEClassifier(nn.Module):
    """Tiny MoE network mapping token ids to answer logits.

    Parameters
    ----------
    cfg : ToyMoEConfig
        Sizes and the gate rule.

    Examples
    --------
    >>> net = ToyMoEClassifier(ToyMoEConfig())
    >>> net(torch.zeros(3, 5, dtype=torch.long)).shape
    torch.Size([3, 4])
    """

    def __init__(self, cfg: ToyMoEConfig) -> None:
        super().__init__()
        self.config = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(ToyLayer(cfg) for _ in range(cfg.num_hidden_layers))
        self.norm = nn.RMSNorm(cfg.hidden_size)
        self.head = nn.Linear(cfg.hidden_size, cfg.num_labels)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Answer logits read at the last non-padding token (right padding).

        Parameters
        ----------
        input_ids : torch.Tensor
            `(B, T)` int64 token ids.
        attention_mask : torch.Tensor, optional
            `(B, T)` 1 for tokens, 0 for right padding.

        Returns
        -------
        torch.Tensor
            `(B, C)` answer logits.
        """
        B, T = input_ids.shape
        mask = torch.ones(B, T) if attention_mask is None else attention_mask
        x = self.embed_tokens(input_ids)  # (B, T, D)
        mask = mask.to(x.dtype)
        for layer in self.layers:
            x = layer(x, mask)
        return self.head(self.norm(x[torch.arange(B), last_token_index(mask)]))  # (B, C)
