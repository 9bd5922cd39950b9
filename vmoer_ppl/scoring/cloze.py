"""Cloze scoring: each option's text scored as a continuation of the question.

The question prefix runs once per question; its options then run in one more pass over its
key/value cache: side by side in one row per question where the model's attention allows
(:mod:`vmoer_ppl.scoring.packing`), else as ``B·C`` padded rows with the cache repeated for the C
options. An option's score is the log-probability
of its tokens, summed, or normalised per token or per character (OLMES ``acc_per_char``); the
scores of a question are the logits of a distribution over its options (missing options −inf).

References
----------
1. Gu et al. 2024, OLMES: a standard for language model evaluations (cloze/"rc" formulation).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn
from transformers import DynamicCache

from vmoer_ppl.embedded.prefix_cache import SuffixCache, capture_input, suffix_layers
from vmoer_ppl.integrations.hf.attention import cpu_gqa
from vmoer_ppl.integrations.hf.kv_cache import cache_kwargs
from vmoer_ppl.nn.masks import position_ids, real_span
from vmoer_ppl.scoring.memory import check_batch_memory, cloze_batch_bytes
from vmoer_ppl.scoring.names import ClozeNorm
from vmoer_ppl.scoring.packing import OptionPacking, can_pack, mask_dtype, packed_logprobs
from vmoer_ppl.sites import routing_grid


@contextlib.contextmanager
def head_at(model: nn.Module, keep: torch.Tensor) -> Iterator[None]:
    """Run the LM head of ``model`` only at the positions ``keep``.

    Parameters
    ----------
    model : nn.Module
        A transformers causal LM (its head is ``get_output_embeddings()``).
    keep : torch.Tensor
        `(B, T)` bool; the head's input `(B, T, D)` becomes `(1, n, D)` (n = ``keep.sum()``), so
        the model's logits are `(1, n, V)`. Scaling or soft-capping after the head (Granite,
        Gemma) is elementwise and unaffected.
    """

    def pick(module, args):
        return (args[0][keep].unsqueeze(0), *args[1:])

    handle = model.get_output_embeddings().register_forward_pre_hook(pick)
    try:
        yield
    finally:
        handle.remove()


def option_pass_inputs(prompt_mask: torch.Tensor, option_mask: torch.Tensor):
    """Attention mask `(B·C, Tp + Tc)` and positions `(B·C, Tc)` of the options after the prompt."""
    B, C, Tc = option_mask.shape
    mask = torch.cat([prompt_mask.repeat_interleave(C, 0), option_mask.reshape(B * C, Tc)], 1)
    pos = prompt_mask.sum(-1).repeat_interleave(C).unsqueeze(1) + torch.arange(
        Tc, device=prompt_mask.device
    )
    return mask, pos


def trim(prompt_mask: torch.Tensor, option_mask: torch.Tensor):
    """Drop all-padding prompt columns on the left and option columns on the right."""
    p, o = real_span(prompt_mask), real_span(option_mask)
    start, stop = (p[0] if p else 0), (o[1] if o else 1)
    return prompt_mask[:, start:], option_mask[..., :stop]


def trim_batch(
    prompt_ids, prompt_mask, option_ids, option_mask, prompt_states=None, option_states=None
):
    """:func:`trim` applied to ids, masks and cached states alike."""
    p_mask, o_mask = trim(prompt_mask, option_mask)
    Tp, Tc = p_mask.shape[1], o_mask.shape[-1]
    cut_p = lambda x: None if x is None else x[:, x.shape[1] - Tp :]  # noqa: E731
    cut_o = lambda x: None if x is None else x[:, :, :Tc]  # noqa: E731
    return (
        cut_p(prompt_ids),
        p_mask,
        cut_o(option_ids),
        o_mask,
        cut_p(prompt_states),
        cut_o(option_states),
    )


def token_logprobs(first_lp, rest, ids, o_mask, predicts) -> torch.Tensor:
    """Log-probability of each option token from the two passes' logits.

    Parameters
    ----------
    first_lp : torch.Tensor
        `(B, V)` log-softmax at the last prompt position (predicts each option's first token).
    rest : torch.Tensor
        `(1, n, V)` logits of the option pass at its ``n`` predicting positions.
    ids : torch.Tensor
        `(B*C, Tc)` option token ids.
    o_mask, predicts : torch.Tensor
        `(B*C, Tc)` bool: real option tokens; positions whose next token is real.

    Returns
    -------
    torch.Tensor
        `(B*C, Tc)`, 0 at padding.
    """
    C = ids.shape[0] // first_lp.shape[0]
    later = torch.zeros(ids.shape, dtype=first_lp.dtype, device=first_lp.device)
    if predicts.any():
        logits = rest.reshape(-1, rest.shape[-1]).float()  # (n, V)
        target = ids[:, 1:][o_mask[:, 1:]]  # (n,)
        lp = logits.gather(1, target[:, None]).squeeze(1) - logits.logsumexp(-1)
        later = later.masked_scatter(predicts, lp)
    first_tok = first_lp.repeat_interleave(C, 0).gather(1, ids[:, :1])  # first option token
    return torch.cat([first_tok, later[:, :-1]], 1) * o_mask


class ClozeHead(nn.Module):
    """A causal LM as ``(prompt, options) -> option logits`` by cloze scoring.

    Parameters
    ----------
    model : nn.Module
        A transformers causal LM.
    norm : ClozeNorm or str
        Length normalisation.
    first_layer : int
        First decoder layer run on cached states (the frozen prefix), 0 without.
    pack : bool
        Run a question's options side by side in one row where the model allows
        (:func:`~vmoer_ppl.scoring.packing.can_pack`); False: always ``B·C`` padded rows.
    """

    def __init__(
        self,
        model: nn.Module,
        norm: ClozeNorm | str = ClozeNorm.CHAR,
        first_layer: int = 0,
        pack: bool = True,
    ) -> None:
        super().__init__()
        self.model, self.norm, self.first_layer = model, ClozeNorm(norm), first_layer
        self.pack = pack

    def packing(self, prompt_mask, option_mask) -> OptionPacking | None:
        """The option pass's packing of a trimmed batch, or None for the padded pass.

        Parameters
        ----------
        prompt_mask : torch.Tensor
            `(B, Tp)` prompt mask, trimmed (:func:`trim`).
        option_mask : torch.Tensor
            `(B, C, Tc)` option mask, trimmed.

        Returns
        -------
        OptionPacking or None
            None when ``pack`` is off or the model's attention cannot take the packed mask
            (:func:`~vmoer_ppl.scoring.packing.can_pack`).
        """
        span = prompt_mask.shape[1] + option_mask.shape[-1]
        if not self.pack or not can_pack(self.model.config, span):
            return None
        return OptionPacking.of(option_mask)

    def routing_grids(self, prompt_ids, prompt_mask, option_ids, option_mask, **_) -> dict:
        """The two token grids routed per forward.

        Prompts `(B, Tp)`; options `(B, L)` packed (:meth:`packing`), else `(B·C, Tc)`.
        """
        prompt_mask, option_mask = trim(prompt_mask, option_mask)
        if (packed := self.packing(prompt_mask, option_mask)) is not None:
            return {"prompt": prompt_mask, "option": packed.real.long()}
        B, C, Tc = option_mask.shape
        return {"prompt": prompt_mask, "option": option_mask.reshape(B * C, Tc)}

    def _call(self, grid, first_layer, ids, states, **kw):
        """One model call on token ids, or (suffix only) on cached states entering a layer."""
        with routing_grid(grid), cpu_gqa(self.model):
            if states is None:
                return self.model(input_ids=ids, **kw)
            with suffix_layers(self.model, first_layer):
                return self.model(inputs_embeds=states, **kw)

    def option_logprobs(
        self,
        prompt_ids,
        prompt_mask,
        option_ids,
        option_mask,
        prompt_states=None,
        option_states=None,
    ):
        """Log-probability of each option token, `(B, C, Tc)` (0 at padding)."""
        B, C, Tc = option_ids.shape
        first = self.first_layer if prompt_states is not None else 0
        self.check_memory(B, C, prompt_mask.shape[1], Tc, int(option_mask.sum()), first)
        cache = SuffixCache(first, config=self.model.config)  # filled in place by both passes
        first_lp = self._prompt_pass(first, cache, prompt_ids, prompt_mask, prompt_states)
        packed = self.packing(prompt_mask, option_mask)
        ids, states, mask, pos = self._option_inputs(
            packed, cache, prompt_mask, option_ids, option_mask, option_states
        )
        if packed is not None:
            predicts = packed.predicts()
        else:  # position j predicts option token j+1: the head runs where that token is real
            o_mask = option_mask.reshape(B * C, Tc).bool()
            predicts = torch.cat([o_mask[:, 1:], torch.zeros_like(o_mask[:, :1])], 1)
        with head_at(self.model, predicts):
            rest = self._call(
                "option",
                first,
                ids,
                states,
                attention_mask=mask,
                position_ids=pos,
                **cache_kwargs(self.model, cache),
            ).logits  # (1, n, V): the n predicting positions only
        if packed is not None:
            return packed_logprobs(packed, first_lp, rest, ids, option_ids, option_mask, predicts)
        return token_logprobs(first_lp, rest, ids, o_mask, predicts).reshape(B, C, Tc)

    def _option_inputs(self, packed, cache, prompt_mask, option_ids, option_mask, states=None):
        """The option pass's ids, states, attention mask and positions, packed or padded.

        Padded, the prompt's ``cache`` is repeated for the C options (in place): rows `(B·C, Tc)`;
        packed, rows `(B, L)` (:class:`~vmoer_ppl.scoring.packing.OptionPacking`).
        """
        if packed is not None:
            return (
                packed.pack(option_ids),
                None if states is None else packed.pack(states),
                packed.attention(prompt_mask, mask_dtype(self.model)),
                packed.positions(prompt_mask),
            )
        B, C, Tc = option_ids.shape
        cache.batch_repeat_interleave(C)
        mask, pos = option_pass_inputs(prompt_mask, option_mask)
        states = None if states is None else states.reshape(B * C, Tc, -1)
        return option_ids.reshape(B * C, Tc), states, mask, pos

    def _prompt_pass(self, first, cache, prompt_ids, prompt_mask, prompt_states):
        """The prompt pass filling ``cache``; log-probabilities `(B, V)` of the 1st option token."""
        last = torch.zeros_like(prompt_mask, dtype=torch.bool)
        last[:, -1] = True  # left padding: the last prompt position predicts the 1st option token
        with head_at(self.model, last):  # a (B, D) matrix product, not a strided batched one
            out = self._call(
                "prompt",
                first,
                prompt_ids,
                prompt_states,
                attention_mask=prompt_mask,
                position_ids=position_ids(prompt_mask),
                use_cache=True,
                **cache_kwargs(self.model, cache),
            )
        return torch.log_softmax(out.logits[0].float(), -1)

    def check_memory(self, B: int, C: int, Tp: int, Tc: int, n: int, first: int) -> None:
        """Refuse the batch before allocating it when its estimated peak exceeds free memory."""
        config = self.model.config
        layers = config.get_text_config().num_hidden_layers - first
        grad = torch.is_grad_enabled()
        nbytes = next(self.model.parameters()).element_size()
        need = cloze_batch_bytes(config, B, C, Tp, Tc, n, layers=layers, grad=grad, nbytes=nbytes)
        what = f"a cloze batch of {B} questions × {C} options ({Tp} + {Tc} tokens)"
        check_batch_memory(need, self.model.device, what)

    @torch.no_grad()
    def states_entering(self, layer, prompt_ids, prompt_mask, option_ids, option_mask, **_):
        """States entering decoder ``layer``: prompts `(B, Tp, D)`, options `(B, C, Tc, D)`.

        Only the columns with a real token in some row run; the others are zero (and, with the
        options packed, every option column past the option's last token).
        """
        Tp, Tc_in = prompt_ids.shape[1], option_ids.shape[-1]
        prompt_ids, prompt_mask, option_ids, option_mask, _, _ = trim_batch(
            prompt_ids, prompt_mask, option_ids, option_mask
        )
        B, C, Tc = option_ids.shape
        got: list = []
        cache = DynamicCache(config=self.model.config)
        with capture_input(self.model, layer, got), cpu_gqa(self.model):
            self.model(
                input_ids=prompt_ids,
                attention_mask=prompt_mask,
                position_ids=position_ids(prompt_mask),
                use_cache=True,
                **cache_kwargs(self.model, cache),
            )
        packed = self.packing(prompt_mask, option_mask)
        ids, _, mask, pos = self._option_inputs(packed, cache, prompt_mask, option_ids, option_mask)
        with capture_input(self.model, layer, got), cpu_gqa(self.model):
            self.model(
                input_ids=ids,
                attention_mask=mask,
                position_ids=pos,
                **cache_kwargs(self.model, cache),
            )
        prompts = nn.functional.pad(got[0], (0, 0, Tp - got[0].shape[1], 0))  # left padding
        if packed is None:
            options = got[1].reshape(B, C, Tc, -1)
        else:  # real tokens only: padding stays zero
            options = packed.unpack(got[1])
        return prompts, nn.functional.pad(options, (0, 0, 0, Tc_in - Tc))

    def forward(
        self,
        prompt_ids,
        prompt_mask,
        option_ids,
        option_mask,
        option_chars,
        prompt_states=None,
        option_states=None,
        **_,
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
        prompt_states, option_states : torch.Tensor, optional
            Frozen-prefix cache: hidden states entering layer ``first_layer`` `(B, Tp, D)` and
            `(B, C, Tc, D)`; then only the layers from ``first_layer`` on run.

        Returns
        -------
        torch.Tensor
            `(B, C)` normalised log-probabilities; −inf for absent options.
        """
        cut = trim_batch(
            prompt_ids, prompt_mask, option_ids, option_mask, prompt_states, option_states
        )
        total = self.option_logprobs(*cut).sum(-1)  # (B, C)
        option_mask, option_chars = cut[3], option_chars
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
