"""Column layouts of MCQA files: which columns hold the question, the options and the answer.

A local file is read in the first layout its columns fit, unless the caller names the columns.
The layouts are the ones the common MCQA sets are published in:

- ``choices``: question, choices (a list, or a JSON list in a csv cell), answer (index or
  letter): MMLU on the hub, and this library's own files;
- ``labelled``: question or question_stem, choices ``{text, label}``, answerKey (one of the
  labels, or a letter / index): ARC, OpenBookQA, CommonsenseQA;
- ``options``: question, options (a list), answer or label;
- ``endings``: ctx, endings (a list), label: HellaSwag;
- ``letters``: question, one column per option A, B, C, ..., answer: MMLU's csv with a header;
- ``medmcqa``: question, opa .. opd, cop (0-based): MedMCQA;
- ``sciq``: question, distractor1..3, correct_answer (the option's text): SciQ.

A ``context``, ``support`` or ``passage`` column is read as the question's supporting passage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

#: Option letters, in order: answers given as a letter, the ``letters`` layout's option columns,
#: and the letter scorer's labels.
LETTERS = "ABCDEFGHIJ"
#: Columns read as a supporting passage, first present wins.
CONTEXT_COLUMNS = ("context", "support", "passage")


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
    """

    name: str
    question: str
    choices: str | tuple[str, ...]
    answer: str
    answer_is_text: bool = False

    def columns(self) -> list[str]:
        """Every column this layout reads (context excluded)."""
        opts = [self.choices] if isinstance(self.choices, str) else list(self.choices)
        return [self.question, *opts, self.answer]


LAYOUTS: tuple[Layout, ...] = (
    Layout("choices", "question", "choices", "answer"),
    Layout("labelled", "question", "choices", "answerKey"),
    Layout("labelled", "question_stem", "choices", "answerKey"),
    Layout("options", "question", "options", "answer"),
    Layout("options", "question", "options", "label"),
    Layout("endings", "ctx", "endings", "label"),
    Layout("medmcqa", "question", ("opa", "opb", "opc", "opd"), "cop"),
    Layout(
        "sciq",
        "question",
        ("distractor1", "distractor2", "distractor3"),
        "correct_answer",
        answer_is_text=True,
    ),
)


def letter_layout(columns: Sequence[str]) -> Layout | None:
    """``question``, option columns ``A``, ``B``, ... (at least two, consecutive), ``answer``."""
    opts = []
    for c in LETTERS:
        if c not in columns:
            break
        opts.append(c)
    if len(opts) < 2 or "question" not in columns or "answer" not in columns:
        return None
    return Layout("letters", "question", tuple(opts), "answer")


def detect_layout(columns: Sequence[str]) -> Layout | None:
    """The first layout whose columns the file has, or None.

    Parameters
    ----------
    columns : sequence of str
        The file's column names.

    Returns
    -------
    Layout or None
    """
    for layout in LAYOUTS:
        if all(c in columns for c in layout.columns()):
            return layout
    return letter_layout(columns)


def context_column(columns: Sequence[str]) -> str | None:
    """The supporting-passage column of a file, if it has one of :data:`CONTEXT_COLUMNS`."""
    return next((c for c in CONTEXT_COLUMNS if c in columns), None)


def known_layouts() -> str:
    """One line naming each layout's columns, for error messages."""
    parts = [f"{lay.name}: {', '.join(lay.columns())}" for lay in LAYOUTS]
    parts.append("letters: question, A, B, ..., answer")
    return "; ".join(parts)
