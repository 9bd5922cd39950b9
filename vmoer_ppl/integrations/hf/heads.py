"""Answer heads: a transformers causal LM seen as ``(input_ids, attention_mask) -> answer logits``.

The router models observe answers through such a network; the letter and cloze scorers of the
pipeline build on :class:`NextTokenHead`.
"""

from __future__ import annotations

import inspect

import torch
from torch import nn

from vmoer_ppl.integrations.hf.attention import cpu_gqa
from vmoer_ppl.nn.masks import last_token_index, position_ids, real_span


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
        self._keeps_logits = _takes_logits_to_keep(model)

    def routing_grids(self, input_ids, attention_mask=None, **_) -> dict[str, torch.Tensor]:
        """The one routed token grid `(B, T')`: the mask without its all-padding columns."""
        return {"": trim_padding(input_ids, attention_mask)[1]}

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Answer logits.

        Columns that are padding in every row are dropped first, and the LM head runs only at the
        rows' last real tokens (``logits_to_keep``, where the model takes it).

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
        ids, mask = trim_padding(input_ids, attention_mask)
        last = last_token_index(mask)  # (B,)
        kwargs, col = {}, last
        if self._keeps_logits:
            keep = last.unique()  # sorted; one column when every row is left-padded
            kwargs["logits_to_keep"], col = keep, torch.searchsorted(keep, last)
        with cpu_gqa(self.model):
            logits = self.model(
                input_ids=ids,
                attention_mask=mask,
                position_ids=position_ids(mask),
                use_cache=False,  # one forward: a key/value cache is work and recompiles
                **kwargs,
            ).logits
        last = logits[torch.arange(len(ids), device=logits.device), col].float()  # (B, V)
        if self.token_ids is None:
            return last
        # the head is built where the model was; the logits may be elsewhere (device_map, .to())
        token_ids, unique = self.token_ids.to(last.device), self.unique.to(last.device)
        variants = last[:, token_ids]  # (B, C, W), duplicates pad options with fewer ids
        first = torch.arange(variants.shape[-1], device=last.device) < unique.unsqueeze(-1)
        return torch.logsumexp(variants.masked_fill(~first, float("-inf")), -1)  # (B, C)


def trim_padding(
    input_ids: torch.Tensor, attention_mask: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ids and mask `(B, T')` without the leading and trailing columns that are all padding."""
    if attention_mask is None:
        return input_ids, torch.ones_like(input_ids)
    span = real_span(attention_mask)
    if span is None:
        return input_ids, attention_mask
    cols = slice(*span)
    return input_ids[:, cols], attention_mask[:, cols]


def _takes_logits_to_keep(model: nn.Module) -> bool:
    """Whether ``model.forward`` names ``logits_to_keep`` (transformers causal LMs since 4.50)."""
    return "logits_to_keep" in inspect.signature(model.forward).parameters
