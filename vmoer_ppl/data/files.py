"""MCQA records from a local file or data folder, read through ``datasets``."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import cast

from vmoer_ppl.data.folders import data_label, read_table
from vmoer_ppl.data.layouts import LETTERS, Layout, context_column, detect_layout, known_layouts
from vmoer_ppl.data.nested import unnested
from vmoer_ppl.data.reading import FORMATS
from vmoer_ppl.data.records import MCQARecord, shuffle_choices

log = logging.getLogger(__name__)

__all__ = ["FORMATS", "load_mcqa_file"]


def _as_int(value) -> int | None:
    """An integer answer (an int, an integral float, or digits in a string), else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)  # an integer column read as float (a missing value elsewhere)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _letter(value, n: int) -> int | None:
    """The option index of a letter answer (``"B"``: 1) among ``n`` options, else None."""
    if isinstance(value, str) and value.strip().upper() in LETTERS[:n]:
        return LETTERS.index(value.strip().upper())
    return None


def _text_index(value, opts: Sequence[str]) -> int | None:
    """The index of the one option whose text is ``value`` (spaces aside), else None."""
    if not isinstance(value, str):
        return None
    texts = [o.strip() for o in opts]
    return texts.index(value.strip()) if texts.count(value.strip()) == 1 else None


def _answer(value, opts: tuple[str, ...], where: str, offset: int = 0) -> int:
    n = len(opts)
    if (letter := _letter(value, n)) is not None:
        return letter
    idx = _as_int(value)
    if idx is None:
        if (by_text := _text_index(value, opts)) is not None:
            return by_text  # the option's text
        raise ValueError(
            f"{where}: answer {value!r} is neither a 0-based index, a letter "
            f"A-{LETTERS[min(n, len(LETTERS)) - 1]} nor one option's text; fix the row"
        )
    if not 0 <= idx - offset < n:
        raise ValueError(f"{where}: answer index {idx} out of range for {n} choices")
    return idx - offset


def answer_offset(path: Path, values: Sequence, layout: Layout) -> int:
    """1 when a numbered layout's answers count its options from 1 (WinoGrande), else 0.

    Columns numbered from 1 (``option1``, ``option2``) come with answers counted from 0 (PIQA's
    ``sol1``, COPA's ``choice1``) or from 1 (WinoGrande's ``answer``): the file's answers tell
    which, a 0 meaning from 0 and the option count meaning from 1.

    Parameters
    ----------
    path : Path
        The file (for the error message).
    values : sequence
        The answer column, `N` values.
    layout : Layout
        The file's layout.

    Returns
    -------
    int
        0 or 1, subtracted from every integer answer.

    Raises
    ------
    ValueError
        If every answer lies in 1 .. C - 1, which both readings allow.
    """
    if layout.first_number != 1:
        return 0
    ints = {_as_int(v) for v in values}
    if None in ints or 0 in ints:
        return 0  # letters or texts (read row by row), or counted from 0
    n = len(layout.choices)
    if n in ints:
        log.info("%s: answers count the options from 1 (%s)", path.name, layout.choices[0])
        return 1
    raise ValueError(
        f"{path}: every answer in {layout.answer!r} lies in 1..{n - 1}, so whether it counts "
        f"the options {', '.join(layout.choices)} from 0 or from 1 cannot be told; write the "
        "answers as letters or 0-based indices"
    )


def _text(value, what: str, where: str) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError(f"{where}: {what} is missing or empty; fix or drop the row")
    if isinstance(value, (bool, dict, list)):
        raise ValueError(f"{where}: {what} {value!r} is not text; fix the row")
    return str(value)


def _choices(row: dict, choices, where: str) -> tuple[tuple[str, ...], list[str] | None]:
    """A row's options and, for ``{"text", "label"}`` choices, their labels (else None)."""
    labels = None
    if isinstance(choices, str):
        value = row[choices]
        if isinstance(value, str):  # csv: a JSON list in one cell
            try:
                value = json.loads(value)
            except json.JSONDecodeError as err:
                raise ValueError(f"{where}: choices cell is not a JSON list ({err})") from None
        if isinstance(value, dict) and "text" in value:  # ARC / OpenBookQA: {text, label}
            labels = [str(x).strip() for x in value.get("label") or []] or None
            value = value["text"]
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{where}: choices {value!r} is not a list of options; fix the row")
        opts = tuple(_text(c, f"option {j}", where) for j, c in enumerate(value))
    else:
        opts = tuple(_text(row[c], f"option {c!r}", where) for c in choices)
    if len(opts) < 2:
        raise ValueError(f"{where}: {len(opts)} option(s); a question needs at least 2")
    if labels is not None and len(labels) != len(opts):
        raise ValueError(f"{where}: {len(labels)} labels for {len(opts)} options; fix the row")
    return opts, labels


#: ``context`` default of :func:`load_mcqa_file`: the file's passage column, if it has one.
AUTO = "auto"


def layout_of(path: Path, columns: list[str], question, choices, answer) -> Layout:
    """The layout to read: the named columns (defaults for the rest), else the detected one."""
    if question is None and choices is None and answer is None:
        found = detect_layout(columns)
        if found is not None:
            return found
        question, choices, answer = "question", "choices", "answer"
        hint = f"; known layouts: {known_layouts()}, or name the columns (load_mcqa_file)"
    else:
        question, choices, answer = question or "question", choices or "choices", answer or "answer"
        hint = ""
    names = choices if isinstance(choices, str) else tuple(choices)
    layout = Layout("named", question, names, answer)
    missing = [c for c in layout.columns() if c not in columns]
    if missing:
        raise ValueError(f"{path}: missing field(s) {missing}; the file has {columns}{hint}")
    return layout


def answers_are_text(answers: Sequence, parsed: Sequence[tuple], layout: Layout) -> bool:
    """Whether a file's answers are its options' texts, read as such in every row.

    True when every answer is exactly one of its row's option texts and at least one cannot be
    an index or a letter (``"12"`` among the options ``"10"`` .. ``"13"``): then a ``"2"``
    elsewhere in the file is the option ``"2"``, not the third option. Files whose answers all
    read as indices or letters keep that reading.

    Parameters
    ----------
    answers : sequence
        The answer column, `N` values.
    parsed : sequence of tuple
        Each row's ``(options, labels)`` (:func:`_choices`), `N` of them.
    layout : Layout
        The file's layout.

    Returns
    -------
    bool
    """
    if layout.answer_is_text:
        return False  # SciQ: the answer is an extra option (read by _record)
    beyond_index = False
    for raw, (opts, labels) in zip(answers, parsed, strict=True):
        if _text_index(raw, opts) is None:
            return False
        if labels is not None and raw.strip() in labels:
            return False  # ARC: a label
        idx = _as_int(raw)
        beyond_index |= _letter(raw, len(opts)) is None and not (
            idx is not None and 0 <= idx < len(opts)
        )
    return beyond_index


def _record(
    row: dict,
    layout: Layout,
    parsed: tuple,
    context: str | None,
    source: str,
    i: int,
    where: str,
    offset: int,
    by_text: bool,
):
    opts, labels = parsed  # _choices(row, layout.choices, where)
    raw = row[layout.answer]
    if layout.answer_is_text:  # SciQ: the distractors, then the answer's text
        opts, idx = (*opts, _text(raw, "answer", where)), len(opts)
    elif by_text:  # every answer is an option's text (numbers among numbers too)
        idx = cast(int, _text_index(raw, opts))
    elif labels is not None and str(raw).strip() in labels:  # ARC: "answerKey" is a label
        idx = labels.index(str(raw).strip())
    else:
        idx = _answer(raw, opts, where, offset)
    rec = MCQARecord(
        _text(row[layout.question], "question", where),
        opts,
        idx,
        source,
        str(i),
        str(row[context] or "") if context else "",
    )
    return shuffle_choices([rec])[0] if layout.answer_is_text else rec  # not always last


def load_mcqa_file(
    path: str | Path,
    *,
    question: str | None = None,
    choices: str | Sequence[str] | None = None,
    answer: str | None = None,
    context: str | None = AUTO,
    source: str | None = None,
) -> list[MCQARecord]:
    """Read MCQA records from a local file or data folder.

    With no column named, the file is read in the layout :func:`~vmoer_ppl.data.layouts.
    detect_layout` finds from its column names (MMLU, ARC, OpenBookQA, CommonsenseQA, HellaSwag,
    SWAG, PIQA, WinoGrande, COPA, CosmosQA, RACE, MedMCQA, SciQ as published, and files like
    them); named columns replace the default ``question`` / ``choices`` / ``answer``.

    Parameters
    ----------
    path : str or Path
        ``.jsonl``, ``.json``, ``.csv``, ``.parquet`` or ``.arrow``; or a folder: a ``datasets``
        ``save_to_disk`` folder (every split of a ``DatasetDict``) or files of one of those
        types (:func:`~vmoer_ppl.data.folders.read_folder`); or a glob pattern of such files
        (``data/train-*.parquet``).
    question, answer : str, optional
        Column names; the answer is a 0-based index (1-based when a numbered layout's answers
        say so: :func:`answer_offset`), a letter, one of the choices' labels, or an option's
        text.
    choices : str or sequence of str, optional
        A list-valued column (a JSON list in a csv cell, or ``{"text": [...], "label": [...]}``),
        or the names of one column per option.
    context : str, optional
        Column of a supporting passage; ``"auto"`` (default): the first of
        :data:`~vmoer_ppl.data.layouts.CONTEXT_COLUMNS` the file has; None: none.
    source : str, optional
        Source name of the records (default: the file's stem, the folder's name).

    Returns
    -------
    list of MCQARecord
        `N` records, in the file's order; SciQ-layout options shuffled with a fixed seed (the
        file keeps the answer last), and lifted targets' options likewise when every answer
        sits at one position (:func:`~vmoer_ppl.data.nested.unnested`).
    """
    path = Path(path)
    rows, where = read_table(path)
    table, columns, shuffle = unnested(list(rows), list(rows.column_names))  # decoded once
    layout = layout_of(path, columns, question, choices, answer)
    if context == AUTO:
        context = context_column(columns)
    elif context and context not in columns:
        raise ValueError(f"{path}: missing field(s) [{context!r}]; the file has {columns}")
    log.info("%s: layout %s %s, passage %s", path.name, layout.name, layout.columns(), context)
    src = source or data_label(path)
    answers = [row[layout.answer] for row in table]
    offset = answer_offset(path, answers, layout)
    parsed = [_choices(row, layout.choices, w) for row, w in zip(table, where, strict=True)]
    by_text = answers_are_text(answers, parsed, layout)
    if by_text:
        log.info("%s: the answers are the options' texts", path.name)
    records = [
        _record(row, layout, parsed[i], context, src, i, where[i], offset, by_text)
        for i, row in enumerate(table)
    ]
    if shuffle:  # TruthfulQA: the correct option first in every row
        log.info("%s: every answer at one position; options shuffled (fixed seed)", path.name)
        return shuffle_choices(records)
    return records
