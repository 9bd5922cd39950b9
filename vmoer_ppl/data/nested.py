"""Rows that nest their options inside another field, lifted into a flat layout before detection.

Two published forms:

- AI2's own jsonl of ARC, OpenBookQA, CommonsenseQA and QASC: ``{"question": {"stem": ...,
  "choices": [{"text": ..., "label": ...}, ...]}, "answerKey": ...}``; the stem becomes the
  question and the options a ``choices`` column ``{"text": [...], "label": [...]}`` (the hub's
  ARC layout), so ``answerKey`` reads as a label;
- TruthfulQA's multiple-choice form: ``{"question": ..., "mc1_targets": {"choices": [...],
  "labels": [1, 0, ...]}}``; a targets column whose every row marks exactly one option becomes
  ``choices`` and an ``answer`` index. TruthfulQA puts the correct option first in every row,
  so records whose answers all sit at one position are shuffled (with a fixed seed).
"""

from __future__ import annotations

from vmoer_ppl.data.layouts import ANSWER_COLUMNS, LIST_COLUMNS, pick


def _stem_choices(value: dict) -> dict:
    options = value.get("choices") or []
    if isinstance(options, dict):  # already columns: {"text": [...], "label": [...]}
        choices = options
    else:
        pairs = [o if isinstance(o, dict) else {"text": o} for o in options]
        choices = {"text": [o.get("text") for o in pairs], "label": [o.get("label") for o in pairs]}
    if any(label is None for label in choices.get("label") or [None]):
        return {"text": choices.get("text")}  # no labels: answers are indices or letters
    return choices


def _one_hot(value) -> int | None:
    """The index of the one option marked 1 in ``{"choices", "labels"}``, else None."""
    if not isinstance(value, dict) or not isinstance(value.get("choices"), list):
        return None
    labels = value.get("labels")
    if not isinstance(labels, list) or len(labels) != len(value["choices"]):
        return None
    marked = [i for i, x in enumerate(labels) if x in (1, True) and not isinstance(x, float)]
    zeros = sum(x in (0, False) for x in labels)
    return marked[0] if len(marked) == 1 and zeros == len(labels) - 1 else None


def _targets_column(table: list[dict], columns: list[str]) -> str | None:
    """The first column whose every row marks exactly one of its choices (``mc1_targets``)."""
    for c in columns:
        if all(_one_hot(row[c]) is not None for row in table):
            return c
    return None


def unnested(table: list[dict], columns: list[str]) -> tuple[list[dict], list[str], bool]:
    """A file's rows with nested options lifted out, and whether to shuffle the options.

    Parameters
    ----------
    table : list of dict
        The file's `N` rows.
    columns : list of str
        Its column names.

    Returns
    -------
    table : list of dict
        `N` rows; unchanged unless a nested form is found.
    columns : list of str
        With ``choices`` (and ``answer``) added where options were lifted out.
    shuffle : bool
        True when lifted targets put every answer at one position (TruthfulQA: first).
    """
    q = pick(columns, ("question",))
    if q is None or pick(columns, LIST_COLUMNS) is not None or not table:
        return table, columns, False
    if all(isinstance(row[q], dict) and "stem" in row[q] for row in table):
        lifted = [{**row, q: row[q]["stem"], "choices": _stem_choices(row[q])} for row in table]
        return lifted, [*columns, "choices"], False
    if pick(columns, ANSWER_COLUMNS) is not None:
        return table, columns, False
    targets = _targets_column(table, [c for c in columns if c != q])
    if targets is None:
        return table, columns, False
    lifted = [
        {**row, "choices": row[targets]["choices"], "answer": _one_hot(row[targets])}
        for row in table
    ]
    positions = {row["answer"] for row in lifted}
    return lifted, [*columns, "choices", "answer"], len(positions) == 1 and len(lifted) > 1
