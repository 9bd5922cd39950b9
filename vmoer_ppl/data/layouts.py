"""Column layouts of MCQA files: which columns hold the question, the options and the answer.

A local file is read in the first layout its columns fit, unless the caller names the columns.
Two published sets have layouts of their own (their column names, case aside):

- ``medmcqa``: question, opa .. opd, cop (0-based): MedMCQA;
- ``sciq``: question, distractor1..3, correct_answer (the option's text): SciQ.

Every other file is read from three parts, each found by its column names (case aside:
``Question``, ``Answer`` too):

- the question: the first of :data:`QUESTION_COLUMNS` (``question``, ``question_stem``,
  ``goal``, ``startphrase``, ``sentence``, ``ctx``, ...);
- the options: a list-valued column (:data:`LIST_COLUMNS`: ``choices``, ``options``,
  ``endings``; a list, a JSON list in a csv cell, or ``{"text", "label"}``), else numbered
  columns (``option1``, ``option2``; ``sol1``, ``sol2``; ``ending0`` .. ``ending3``;
  ``answer0`` .. ``answer3``), else letter columns ``A``, ``B``, ..., else a stem and letters
  (``answerA`` .. ``answerC``, ``option_a`` ..; integer answers counted from 1 when the file's
  answers say so: Social IQa);
- the answer: the first of :data:`ANSWER_COLUMNS` (``answer``, ``answerKey``, ``label``, ...)
  that is not an option column: an index, a letter, one of the choices' labels, or an
  option's text.

That covers MMLU, ARC, OpenBookQA, CommonsenseQA, HellaSwag, SWAG, PIQA, WinoGrande, COPA,
CosmosQA and RACE as published on the hub. AI2's own files of ARC, OpenBookQA, CommonsenseQA and
QASC nest the options in the question, and TruthfulQA's ``mc1_targets`` holds them with one-hot
labels: :func:`~vmoer_ppl.data.nested.unnested` lifts them out first. A ``context``, ``support``,
``passage``, ``article``, ``paragraph``, ``story`` or ``premise`` column is read as the
question's supporting passage.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import cast

#: Option letters, in order: answers given as a letter, the letter option columns, and the
#: letter scorer's labels.
LETTERS = "ABCDEFGHIJ"
#: Columns read as a supporting passage, first present wins.
CONTEXT_COLUMNS = ("context", "support", "passage", "article", "paragraph", "story", "premise")
#: Columns read as the question, first present wins.
QUESTION_COLUMNS = (
    "question",
    "question_stem",
    "goal",
    "startphrase",
    "sentence",
    "ctx",
    "prompt",
    "query",
    "stem",
)
#: Columns read as the answer, first present wins.
ANSWER_COLUMNS = (
    "answer",
    "answerKey",
    "label",
    "correct",
    "gold",
    "target",
    "correct_answer",
    "correct_option",
    "answer_index",
    "answer_idx",
    "gold_index",
)
#: List-valued option columns, first present wins.
LIST_COLUMNS = ("choices", "options", "endings", "answers")
#: Stems of numbered option columns preferred when a file has several numbered runs
#: (SWAG: ``sent1``, ``sent2`` beside ``ending0`` .. ``ending3``).
OPTION_STEMS = ("option", "choice", "ending", "answer", "sol", "opt", "candidate")

_NUMBERED = re.compile(r"^(.*\D)(\d+)$")
_LETTERED = re.compile(r"^(.*[a-z0-9])([A-J])$|^(.+)[_-]([a-jA-J])$")


@dataclass(frozen=True)
class Layout:
    """Where one layout keeps a question's parts.

    Attributes
    ----------
    name : str
        The layout's name (logged, and in error messages).
    question, answer : str
        Column names.
    choices : str or tuple of str
        A list-valued column (a list, a JSON list in a csv cell, or ``{"text", "label"}``), or one
        column per option.
    answer_is_text : bool
        The answer column holds the correct option's text (SciQ), not its index or letter.
    first_number : int or None
        The number of the first option column of a numbered layout (``option1``: 1), and 1 for
        letter-suffixed option columns (``answerA``): an answer column counting from 1 is read as
        such (:func:`~vmoer_ppl.data.files.answer_offset`).
    """

    name: str
    question: str
    choices: str | tuple[str, ...]
    answer: str
    answer_is_text: bool = False
    first_number: int | None = None

    def columns(self) -> list[str]:
        """Every column this layout reads (context excluded)."""
        opts = [self.choices] if isinstance(self.choices, str) else list(self.choices)
        return [self.question, *opts, self.answer]


LAYOUTS: tuple[Layout, ...] = (
    Layout("medmcqa", "question", ("opa", "opb", "opc", "opd"), "cop"),
    Layout(
        "sciq",
        "question",
        ("distractor1", "distractor2", "distractor3"),
        "correct_answer",
        answer_is_text=True,
    ),
)


def pick(columns: Sequence[str], names: Sequence[str], skip=()) -> str | None:
    """The file's column for the first of ``names`` it has, case aside (``Question``), or None."""
    by_lower = {c.lower(): c for c in reversed(columns) if c not in skip}
    return next((by_lower[n.lower()] for n in names if n.lower() in by_lower), None)


def letter_columns(columns: Sequence[str]) -> tuple[str, ...] | None:
    """Option columns ``A``, ``B``, ... (at least two, consecutive), or None."""
    opts = []
    for c in LETTERS:
        if (col := pick(columns, [c])) is None:
            break
        opts.append(col)
    return tuple(opts) if len(opts) >= 2 else None


def _preferred(runs: dict):
    """The run of option columns whose stem comes first in :data:`OPTION_STEMS`, or None."""
    for preferred in OPTION_STEMS:
        for stem, run in runs.items():
            if stem.lower().rstrip("_-") == preferred:
                return run
    return None


def lettered_columns(columns: Sequence[str]) -> tuple[str, ...] | None:
    """Option columns of a stem and a letter (Social IQa's ``answerA`` .. ``answerC``), or None.

    A run is a stem followed by ``A``, ``B``, ... (or ``_a``, ``_b``, ...), at least two long;
    of several runs, the first whose stem is in :data:`OPTION_STEMS` wins, else the only one.

    Parameters
    ----------
    columns : sequence of str
        Column names of the file.

    Returns
    -------
    tuple of str or None
        The `C` option columns, in letter order.
    """
    by_stem: dict[str, dict[str, str]] = {}
    for c in columns:
        m = _LETTERED.match(c)
        if m:
            stem, letter = (m.group(1), m.group(2)) if m.group(2) else (m.group(3), m.group(4))
            by_stem.setdefault(stem, {})[letter.upper()] = c
    runs = {}
    for stem, lettered in by_stem.items():
        run = [lettered[c] for c in itertools.takewhile(lettered.__contains__, LETTERS)]
        if len(run) >= 2:
            runs[stem] = tuple(run)
    if (run := _preferred(runs)) is not None:
        return run
    return next(iter(runs.values())) if len(runs) == 1 else None


def numbered_columns(columns: Sequence[str]) -> tuple[tuple[str, ...], int] | None:
    """The option columns of a numbered layout and the first one's number, or None.

    A run is a stem followed by consecutive numbers from 0 or 1 (``ending0`` .. ``ending3``,
    ``option1``, ``option2``), at least two long. Of several runs, the first whose stem is in
    :data:`OPTION_STEMS` wins, else the only longest one.

    Parameters
    ----------
    columns : sequence of str
        The file's column names.

    Returns
    -------
    (tuple of str, int) or None
        The `C` option columns in order and the first one's number (0 or 1).
    """
    by_stem: dict[str, dict[int, str]] = {}
    for c in columns:
        m = _NUMBERED.match(c)
        if m:
            by_stem.setdefault(m.group(1), {})[int(m.group(2))] = c
    runs = {}
    for stem, numbered in by_stem.items():
        start = min(numbered)
        run = []
        while start in (0, 1) and start + len(run) in numbered:
            run.append(numbered[start + len(run)])
        if len(run) >= 2:
            runs[stem] = (tuple(run), start)
    if (run := _preferred(runs)) is not None:
        return run
    longest = max((len(r[0]) for r in runs.values()), default=0)
    best = [r for r in runs.values() if len(r[0]) == longest]
    return best[0] if len(best) == 1 else None


def generic_layout(columns: Sequence[str]) -> Layout | None:
    """A question column, option columns and an answer column found by name, or None."""
    question = pick(columns, QUESTION_COLUMNS)
    first = None
    name, choices = "list", pick(columns, LIST_COLUMNS)
    if choices is None and (numbered := numbered_columns(columns)) is not None:
        name, (choices, first) = "numbered", numbered
    if choices is None:
        name, choices = "letters", letter_columns(columns)
    if choices is None and (lettered := lettered_columns(columns)) is not None:
        name, choices, first = "lettered", lettered, 1  # integer answers may count from 1
    opts = {choices} if isinstance(choices, str) else set(choices or ())
    answer = pick(columns, ANSWER_COLUMNS, skip=opts)
    if question is None or choices is None or answer is None:
        return None
    return Layout(name, question, choices, answer, first_number=first)


def detect_layout(columns: Sequence[str]) -> Layout | None:
    """The layout of a file's columns: a published set's own, else :func:`generic_layout`.

    Parameters
    ----------
    columns : sequence of str
        The file's column names.

    Returns
    -------
    Layout or None
        None when no question, option or answer column is found.
    """
    for layout in LAYOUTS:
        found = [pick(columns, (c,)) for c in layout.columns()]
        if all(found):  # case aside, as the generic parts: ``Question``, ``OPA``
            q, *opts, a = cast(list[str], found)
            return replace(layout, question=q, choices=tuple(opts), answer=a)
    return generic_layout(columns)


def context_column(columns: Sequence[str]) -> str | None:
    """The supporting-passage column of a file, if it has one of :data:`CONTEXT_COLUMNS`."""
    return pick(columns, CONTEXT_COLUMNS)


def known_layouts() -> str:
    """What the detection looks for, for error messages."""
    own = "; ".join(f"{lay.name}: {', '.join(lay.columns())}" for lay in LAYOUTS)
    return (
        f"a question column ({', '.join(QUESTION_COLUMNS)}), options as a list column "
        f"({', '.join(LIST_COLUMNS)}), numbered columns (option1, option2, ...; ending0, ...) "
        "or letter columns (A, B, ...; answerA, answerB, ...), and an answer column "
        f"({', '.join(ANSWER_COLUMNS)}); or {own}"
    )
