"""Tokenised MCQA batches for the cloze scorer: a shared question prefix and C continuations."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch

from vmoer_ppl.data.records import MCQARecord

log = logging.getLogger(__name__)

#: Longest answer option scored, in tokens (longer ones are cut; see :func:`encode_cloze`).
MAX_OPTION_TOKENS = 256
#: Prompt tokens kept by :func:`encode_cloze` (the end: the question and ``Answer:``).
MAX_PREFIX_TOKENS = 256


def cloze_context(record: MCQARecord, *, with_context: bool = False) -> str:
    r"""The prompt prefix, as in OLMES/oe_eval "rc" format: ``Question: …\nAnswer:``."""
    prefix = f"{record.context.strip()}\n" if with_context and record.context else ""
    return f"{prefix}Question: {record.question.strip()}\nAnswer:"


def encode_cloze(
    records: Sequence[MCQARecord],
    tokenizer,
    *,
    with_context: bool = False,
    max_prefix: int = MAX_PREFIX_TOKENS,
    max_option: int = MAX_OPTION_TOKENS,
) -> dict[str, torch.Tensor]:
    """Tokenise questions for cloze scoring.

    The prefix is left-padded so that every question ends at the same position; options are
    right-padded. Questions with fewer options than the widest one get empty, masked options.

    Parameters
    ----------
    records : sequence of MCQARecord
        B questions.
    tokenizer : PreTrainedTokenizerBase
        The model's tokenizer.
    with_context : bool
        Prepend the supporting passage (SciQ's ``support``).
    max_prefix : int
        Prefixes longer than this are cut from the left: a long passage loses its beginning,
        the question is kept (:func:`cut_prompts` counts them).
    max_option : int
        Options longer than this many tokens are cut from the right (a warning counts them) and
        scored on the kept text: the batch tensors are `(B, C, Tc)` with Tc the longest option,
        so one 100 KB option would otherwise cost gigabytes. The longest option of 400 MMLU
        professional-law questions is 185 SmolLM2 tokens.

    Returns
    -------
    dict
        ``prompt_ids``, ``prompt_mask`` `(B, Tp)`; ``option_ids``, ``option_mask`` `(B, C, Tc)`;
        ``option_chars`` `(B, C)`; ``labels`` `(B,)`.
    """
    prefixes = [
        tokenizer(cloze_context(r, with_context=with_context)).input_ids[-max_prefix:]
        for r in records
    ]
    options = [
        [tokenizer(" " + c.strip(), add_special_tokens=False).input_ids or [0] for c in r.choices]
        for r in records
    ]
    cut = sum(len(o) > max_option for opts in options for o in opts)
    if cut:
        log.warning("%d answer options longer than %d tokens were cut", cut, max_option)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    out = padded_batch(prefixes, options, records, pad, max_option)
    for b, (opts, r) in enumerate(zip(options, records, strict=True)):
        for c, (o, text) in enumerate(zip(opts, r.choices, strict=True)):
            kept = tokenizer.decode(o[:max_option]) if len(o) > max_option else " " + text.strip()
            out["option_chars"][b, c] = len(kept)
    return out


def padded_batch(
    prefixes: list[list[int]],
    options: list[list[list[int]]],
    records: Sequence[MCQARecord],
    pad: int,
    max_option: int,
) -> dict[str, torch.Tensor]:
    """The token tensors of :func:`encode_cloze` (``option_chars`` left at zero).

    Parameters
    ----------
    prefixes : list of list of int
        B prompts' token ids (left-padded into `(B, Tp)`).
    options : list of list of list of int
        Each question's options' token ids (right-padded into `(B, C, Tc)`, cut at
        ``max_option``).
    records : sequence of MCQARecord
        The questions (their answers become ``labels``).
    pad : int
        Padding token id.
    max_option : int
        Longest option kept.

    Returns
    -------
    dict
        As :func:`encode_cloze`.
    """
    B, C = len(records), max(len(r.choices) for r in records)
    Tp = max(map(len, prefixes))
    Tc = min(max_option, max(len(o) for opts in options for o in opts))
    out = {
        "prompt_ids": torch.full((B, Tp), pad, dtype=torch.long),
        "prompt_mask": torch.zeros(B, Tp, dtype=torch.long),
        "option_ids": torch.full((B, C, Tc), pad, dtype=torch.long),
        "option_mask": torch.zeros(B, C, Tc, dtype=torch.long),
        "option_chars": torch.zeros(B, C),
        "labels": torch.tensor([r.answer for r in records]),
    }
    for b, (p, opts) in enumerate(zip(prefixes, options, strict=True)):
        out["prompt_ids"][b, Tp - len(p) :] = torch.tensor(p)
        out["prompt_mask"][b, Tp - len(p) :] = 1
        for c, o in enumerate(opts):
            o = o[:max_option]
            out["option_ids"][b, c, : len(o)] = torch.tensor(o)
            out["option_mask"][b, c, : len(o)] = 1
    return out


def cut_prompts(batch: dict, max_prefix: int = MAX_PREFIX_TOKENS) -> int:
    """Questions of an :func:`encode_cloze` batch whose prompt reached ``max_prefix`` tokens.

    Such a prompt was cut from the left (or is exactly that long).

    Parameters
    ----------
    batch : dict
        With ``prompt_mask`` `(B, Tp)`.
    max_prefix : int
        The limit the batch was encoded with.

    Returns
    -------
    int
    """
    return int((batch["prompt_mask"].sum(-1) >= max_prefix).sum())
