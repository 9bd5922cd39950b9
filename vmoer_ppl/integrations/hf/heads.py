"""Answer heads: a transformers causal LM seen as ``(input_ids, attention_mask) -> answer logits``.

The router models observe answers through such a network; the letter and cloze scorers of the
pipeline build on :class:`NextTokenHead`.
"""

from __future__ import annotations

import torch
from torch import nn

from vmoer_ppl.nn.masks import last_token_index, position_ids


class NextTokenHead(nn.Module):
    """Next-token logits at the last real token, optionally restricted to answer tokens.

    Parameters
    ----------
    model : nn.Module
        A transformers causal LM.
    token_ids : sequence of int or of sequences of int, optional
        Token ids of the options (e.g. the letters ``A``-``D``); an option with several ids
        (``"A"`` and ``" A"``) gets the log-sum-exp of their logits. All of the vocabulary if None.
    """

    def __init__(self, model: nn.Module, token_ids=None) -> None:
        super().__init__()
        self.model = model
        ids = None
        if token_ids is not None:
            variants = [[int(t)] if isinstance(t, int) else [int(v) for v in t] for t in token_ids]
            width = max(map(len, variants))
            ids = torch.tensor([v + [v[0]] * (width - len(v)) for v in variants])  # (C, W)
            self.register_buffer(
                "unique", torch.tensor([len(set(v)) for v in variants]), persistent=False
            )
        self.register_buffer("token_ids", ids, persistent=False)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Answer logits.

        Parameters
        ----------
        input_ids : torch.Tensor
            `(B, T)` prompt token ids.
        attention_mask : torch.Tensor, optional
            `(B, T)` 1 at tokens, 0 at padding (left or right).

        Returns
        -------
        torch.Tensor
            `(B, C)` float32 logits (C = number of options, or V).
        """
        B, T = input_ids.shape
        mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
        logits = self.model(
            input_ids=input_ids, attention_mask=mask, position_ids=position_ids(mask)
        ).logits
        last = logits[torch.arange(B), last_token_index(mask)].float()  # (B, V)
        if self.token_ids is None:
            return last
        variants = last[:, self.token_ids]  # (B, C, W), duplicates pad options with fewer ids
        first = torch.arange(variants.shape[-1]) < self.unique.unsqueeze(-1)  # (C, W)
        return torch.logsumexp(variants.masked_fill(~first, float("-inf")), -1)  # (B, C)
