"""The MCQA record: a question, its options, the index of the right one, and its source."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class MCQARecord:
    """One multiple-choice question.

    Attributes
    ----------
    question : str
        The question text.
    choices : tuple of str
        Option texts, in presentation order.
    answer : int
        Index of the correct option in ``choices``.
    source : str
        Data-set name, e.g. ``"arc_easy"``.
    id : str
        Identifier unique within ``source``.
    context : str
        Optional supporting passage (SciQ's ``support``); empty if none.
    """

    question: str
    choices: tuple[str, ...]
    answer: int
    source: str
    id: str
    context: str = ""

    def __post_init__(self) -> None:
        if len(self.choices) < 2:
            raise ValueError(f"{self.source}/{self.id}: a question needs at least 2 choices")
        if not 0 <= self.answer < len(self.choices):
            raise ValueError(
                f"{self.source}/{self.id}: answer index {self.answer} out of range for "
                f"{len(self.choices)} choices"
            )


@dataclass
class Splits:
    """Disjoint in-distribution splits: train (SVI), val (early stopping), test (evaluation)."""

    train: list[MCQARecord]
    val: list[MCQARecord]
    test: list[MCQARecord]


def check_disjoint(splits: Splits) -> Splits:
    """Return ``splits`` after checking no question is in two of its parts.

    Raises
    ------
    ValueError
        Naming the overlapping parts and how many questions they share.
    """
    parts = {"train": splits.train, "val": splits.val, "test": splits.test}
    ids = {k: {(r.source, r.id) for r in v} for k, v in parts.items()}
    texts = {k: {question_key(r) for r in v} for k, v in parts.items()}
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        if shared := ids[a] & ids[b]:
            raise ValueError(f"{a} and {b} share {len(shared)} questions, e.g. {min(shared)}")
        if shared := texts[a] & texts[b]:
            raise ValueError(
                f"{a} and {b} share {len(shared)} questions by text, e.g. {min(shared)[0]!r}; "
                "remove the duplicates from the data"
            )
    return splits


def question_key(r: MCQARecord) -> tuple:
    """A question's identity by content: case-folded, whitespace-collapsed text and options."""

    def norm(t) -> str:
        return " ".join(str(t).casefold().split())

    return norm(r.context), norm(r.question), tuple(sorted(norm(c) for c in r.choices))


def dedupe(records: Sequence[MCQARecord]) -> tuple[list[MCQARecord], int]:
    """The first of each group of same-content questions, and how many others were dropped.

    Parameters
    ----------
    records : sequence of MCQARecord
        Questions, in order.

    Returns
    -------
    tuple
        ``(kept, dropped)``: the records whose :func:`question_key` is new, in order, and a count.
    """
    seen, kept = set(), []
    for r in records:
        if (k := question_key(r)) not in seen:
            seen.add(k)
            kept.append(r)
    return kept, len(records) - len(kept)


def shuffle_choices(records: Sequence[MCQARecord], seed: int = 0) -> list[MCQARecord]:
    """Permute each question's options with a fixed seed (keys each question by source and id).

    Parameters
    ----------
    records : sequence of MCQARecord
        Questions.
    seed : int
        Seed; the same seed gives the same permutation of the same question.

    Returns
    -------
    list of MCQARecord
    """
    out = []
    for r in records:
        order = list(range(len(r.choices)))
        random.Random(f"{seed}/{r.source}/{r.id}").shuffle(order)
        out.append(
            replace(r, choices=tuple(r.choices[i] for i in order), answer=order.index(r.answer))
        )
    return out


def gold_position_counts(records: Sequence[MCQARecord]) -> dict[int, int]:
    """How often the correct answer sits at each position."""
    return dict(sorted(Counter(r.answer for r in records).items()))


def check_gold_balance(records: Sequence[MCQARecord], *, max_share: float = 0.4) -> None:
    """Raise if one position holds more than ``max_share`` of the answers (a biased set)."""
    counts = gold_position_counts(records)
    top, n = max(counts.values()), len(records)
    if n >= 50 and top / n > max_share:
        raise ValueError(f"answer positions are unbalanced: {counts}; shuffle the choices")
