r"""The paper's letter format: options listed as A-D, answer = next-token logits of the letters.

Prompt (PAPER.md §4, thesis ``utils/prompt.py``): a system message asking for the letter only and
a user message ``Question: …\nChoices:\nA. …\n…\nAnswer:``, through the tokenizer's chat
template when it has one (with the assistant turn opened), else as plain text.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from vmoer_ppl.data.layouts import LETTERS
from vmoer_ppl.data.records import MCQARecord

SYSTEM = (
    "You are a multiple-choice quiz answer generator. Respond with ONLY the letter of the "
    "correct option, for example, 'A', 'B', 'C', or 'D'."
)


def letter_prompt(record: MCQARecord) -> str:
    """The user message of one question."""
    options = "\n".join(f"{LETTERS[i]}. {c.strip()}" for i, c in enumerate(record.choices))
    return f"Question: {record.question.strip()}\nChoices:\n{options}\nAnswer:"


def letter_token_ids(tokenizer, num_options: int) -> list[list[int]]:
    """Single-token ids of each letter, with and without a leading space.

    Raises
    ------
    ValueError
        When a letter has no single-token form in this vocabulary.
    """
    out = []
    for letter in LETTERS[:num_options]:
        ids = {
            t[0]
            for t in (tokenizer.encode(v, add_special_tokens=False) for v in (letter, " " + letter))
            if len(t) == 1
        }
        if not ids:
            raise ValueError(
                f"option letter {letter!r} is not a single token for this tokenizer; use cloze"
            )
        out.append(sorted(ids))
    return out


def encode_letter(
    records: Sequence[MCQARecord], tokenizer, *, chat: bool | None = None
) -> dict[str, torch.Tensor]:
    """Left-padded letter-format prompts.

    Parameters
    ----------
    records : sequence of MCQARecord
        B questions with the same number of options.
    tokenizer : PreTrainedTokenizerBase
        The model's tokenizer.
    chat : bool, optional
        Use the chat template (default: when the tokenizer has one).

    Returns
    -------
    dict
        ``input_ids``, ``attention_mask`` `(B, T)`, ``labels`` `(B,)`.
    """
    chat = getattr(tokenizer, "chat_template", None) is not None if chat is None else chat
    texts = []
    for r in records:
        if chat:
            messages = [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": letter_prompt(r)},
            ]
            texts.append(
                tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            )
        else:
            texts.append(f"{SYSTEM}\n\n{letter_prompt(r)}")
    ids = [tokenizer(t, add_special_tokens=not chat).input_ids for t in texts]
    T, pad = max(map(len, ids)), tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    input_ids = torch.full((len(ids), T), pad, dtype=torch.long)
    mask = torch.zeros(len(ids), T, dtype=torch.long)
    for b, x in enumerate(ids):
        input_ids[b, T - len(x) :], mask[b, T - len(x) :] = torch.tensor(x), 1
    return {
        "input_ids": input_ids,
        "attention_mask": mask,
        "labels": torch.tensor([r.answer for r in records]),
    }
