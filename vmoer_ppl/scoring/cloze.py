"""Cloze scoring: each option's text scored as a continuation of the question.

The question prefix runs once per question; its key/value cache is repeated for the C options,
which run together as one batch of ``B·C`` continuations. An option's score is the log-probability
of its tokens, summed, or normalised per token or per character (OLMES ``acc_per_char``); the
scores of a question are the logits of a distribution over its options (missing options −inf).

References
----------
1. Gu et al. 2024, OLMES: a standard for language model evaluations (cloze/"rc" formulation).
"""

from __future__ import annotations

from enum import Enum

import torch
from torch import nn

from vmoer_ppl.sites import routing_grid


class ClozeNorm(str, Enum):
    """Length normalisation of a continuation's log-probability."""

    SUM = "sum"
    """Total log-probability of the option's tokens."""
    TOKEN = "token"
    """Mean log-probability per token."""
    CHAR = "char"
    """Total log-probability divided by the option's length in characters (OLMES default)."""


def _positions(mask: torch.Tensor) -> torch.Tensor:
    return (mask.long().cumsum(-1) - 1).clamp_min(0)


class ClozeHead(nn.Module):
    """A causal LM as ``(prompt, options) -> option logits`` by cloze scoring.

    Parameters
    ----------
    model : nn.Module
        A transformers causal LM.
    norm : ClozeNorm or str
        Length normalisation.
    """

    def __init__(self, model: nn.Module, norm: ClozeNorm | str = ClozeNorm.CHAR) -> None:
        super().__init__()
        self.model, self.norm = model, ClozeNorm(norm)

    def routing_grids(self, prompt_ids, prompt_mask, option_ids, option_mask, **_) -> dict:
        """The two token grids routed per forward: prompts `(B, Tp)`, options `(B·C, Tc)`."""
        B, C, Tc = option_ids.shape
        return {"prompt": prompt_mask, "option": option_mask.reshape(B * C, Tc)}

    def option_logprobs(self, prompt_ids, prompt_mask, option_ids, option_mask):
        """Log-probability of each option token, `(B, C, Tc)` (0 at padding)."""
        B, C, Tc = option_ids.shape
        with routing_grid("prompt"):
            out = self.model(
                input_ids=prompt_ids,
                attention_mask=prompt_mask,
                position_ids=_positions(prompt_mask),
                use_cache=True,
            )
        first = torch.log_softmax(out.logits[:, -1].float(), -1)  # (B, V)
        cache = out.past_key_values
        cache.batch_repeat_interleave(C)
        mask = torch.cat([prompt_mask.repeat_interleave(C, 0), option_mask.reshape(B * C, Tc)], 1)
        pos = prompt_mask.sum(-1).repeat_interleave(C).unsqueeze(1) + torch.arange(Tc)  # (B*C, Tc)
        ids = option_ids.reshape(B * C, Tc)
        with routing_grid("option"):
            rest = self.model(
                input_ids=ids, attention_mask=mask, position_ids=pos, past_key_values=cache
            ).logits
        logp = torch.log_softmax(rest.float(), -1)  # (B*C, Tc, V)
        tok = torch.cat(
            [
                first.repeat_interleave(C, 0).gather(1, ids[:, :1]),  # first option token
                logp[:, :-1].gather(2, ids[:, 1:].unsqueeze(-1)).squeeze(-1),
            ],
            1,
        )
        return (tok * option_mask.reshape(B * C, Tc)).reshape(B, C, Tc)

    def forward(
        self, prompt_ids, prompt_mask, option_ids, option_mask, option_chars, **_
    ) -> torch.Tensor:
        """Option logits.

        Parameters
        ----------
        prompt_ids, prompt_mask : torch.Tensor
            `(B, Tp)` left-padded question prefixes.
        option_ids, option_mask : torch.Tensor
            `(B, C, Tc)` right-padded option continuations.
        option_chars : torch.Tensor
            `(B, C)` option lengths in characters.

        Returns
        -------
        torch.Tensor
            `(B, C)` normalised log-probabilities; −inf for absent options.
        """
        total = self.option_logprobs(prompt_ids, prompt_mask, option_ids, option_mask).sum(
            -1
        )  # (B, C)
        n_tok = option_mask.sum(-1).clamp_min(1)
        if self.norm is ClozeNorm.TOKEN:
            total = total / n_tok
        elif self.norm is ClozeNorm.CHAR:
            total = total / option_chars.clamp_min(1)
        return total.masked_fill(option_mask.sum(-1) == 0, float("-inf"))


@torch.no_grad()
def score_cloze(
    model, tokenizer, records, *, norm="char", with_context=False, batch_size=16, progress=False
):
    """Cloze option logits for a list of questions, in batches.

    Parameters
    ----------
    model : nn.Module
        A transformers causal LM.
    tokenizer : PreTrainedTokenizerBase
        Its tokenizer.
    records : sequence of MCQARecord
        N questions.
    norm : str
        ``"sum"``, ``"token"`` or ``"char"``.
    with_context : bool
        Prepend supporting passages.
    batch_size : int
        Questions per forward.
    progress : bool
        Show a tqdm bar.

    Returns
    -------
    tuple of torch.Tensor
        Option logits `(N, C)` (−inf padded) and labels `(N,)`.
    """
    from tqdm.auto import tqdm

    from vmoer_ppl.scoring.batches import encode_cloze

    head, C = ClozeHead(model, norm), max(len(r.choices) for r in records)
    logits, labels = [], []
    for i in tqdm(range(0, len(records), batch_size), desc="cloze", disable=not progress):
        batch = encode_cloze(records[i : i + batch_size], tokenizer, with_context=with_context)
        out = head(**batch)
        logits.append(nn.functional.pad(out, (0, C - out.shape[1]), value=float("-inf")))
        labels.append(batch["labels"])
    return torch.cat(logits), torch.cat(labels)
