"""MCQA records from a local file (jsonl, json, csv or parquet), read through ``datasets``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from vmoer_ppl.data.records import MCQARecord

FORMATS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
LETTERS = "ABCDEFGHIJ"


def _answer(value, n: int, where: str) -> int:
    if isinstance(value, str) and value.strip().upper() in LETTERS[:n]:
        return LETTERS.index(value.strip().upper())
    try:
        idx = int(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"{where}: answer {value!r} is neither an index nor a letter A-{LETTERS[n - 1]}"
        ) from None
    if not 0 <= idx < n:
        raise ValueError(f"{where}: answer index {idx} out of range for {n} choices")
    return idx


def _choices(row: dict, choices, where: str) -> tuple[str, ...]:
    if isinstance(choices, str):
        value = row[choices]
        if isinstance(value, str):  # csv: a JSON list in one cell
            value = json.loads(value)
        return tuple(str(c) for c in value)
    return tuple(str(row[c]) for c in choices)


def load_mcqa_file(
    path: str | Path,
    *,
    question: str = "question",
    choices: str | Sequence[str] = "choices",
    answer: str = "answer",
    context: str | None = None,
    source: str | None = None,
) -> list[MCQARecord]:
    """Read MCQA records from a local file.

    Parameters
    ----------
    path : str or Path
        ``.jsonl``, ``.json``, ``.csv`` or ``.parquet``.
    question, answer : str
        Column names; the answer is a 0-based index or a letter.
    choices : str or sequence of str
        A list-valued column (a JSON list in a csv cell), or the names of one column per option.
    context : str, optional
        Column of a supporting passage.
    source : str, optional
        Source name of the records (default: the file stem).

    Returns
    -------
    list of MCQARecord
    """
    from datasets import load_dataset

    path = Path(path)
    if path.suffix not in FORMATS:
        raise ValueError(
            f"{path}: unsupported file type {path.suffix!r}; use one of {sorted(FORMATS)}"
        )
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    rows = load_dataset(FORMATS[path.suffix], data_files=str(path), split="train")
    needed = [question, answer] + ([choices] if isinstance(choices, str) else list(choices))
    needed += [context] if context else []
    missing = [c for c in needed if c not in rows.column_names]
    if missing:
        raise ValueError(f"{path}: missing field(s) {missing}; the file has {rows.column_names}")
    out = []
    for i, row in enumerate(rows):
        where = f"{path.name} row {i}"
        opts = _choices(row, choices, where)
        out.append(
            MCQARecord(
                str(row[question]),
                opts,
                _answer(row[answer], len(opts), where),
                source or path.stem,
                str(i),
                str(row[context] or "") if context else "",
            )
        )
    return out
