"""MCQA records from a local file (jsonl, json, csv or parquet), read through ``datasets``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from vmoer_ppl.data.records import MCQARecord

FORMATS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
LETTERS = "ABCDEFGHIJ"


def _answer(value, n: int, where: str) -> int:
    letters = LETTERS[: min(n, len(LETTERS))]
    if isinstance(value, str) and value.strip().upper() in letters:
        return LETTERS.index(value.strip().upper())
    idx = None
    if isinstance(value, int) and not isinstance(value, bool):
        idx = value
    elif isinstance(value, float) and value.is_integer():
        idx = int(value)  # an integer column read as float (a missing value elsewhere)
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
        idx = int(value)
    if idx is None:
        raise ValueError(
            f"{where}: answer {value!r} is neither a 0-based index nor a letter "
            f"A-{letters[-1]}; fix the row"
        )
    if not 0 <= idx < n:
        raise ValueError(f"{where}: answer index {idx} out of range for {n} choices")
    return idx


def _text(value, what: str, where: str) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError(f"{where}: {what} is missing or empty; fix or drop the row")
    if isinstance(value, (bool, dict, list)):
        raise ValueError(f"{where}: {what} {value!r} is not text; fix the row")
    return str(value)


def _choices(row: dict, choices, where: str) -> tuple[str, ...]:
    if isinstance(choices, str):
        value = row[choices]
        if isinstance(value, str):  # csv: a JSON list in one cell
            try:
                value = json.loads(value)
            except json.JSONDecodeError as err:
                raise ValueError(f"{where}: choices cell is not a JSON list ({err})") from None
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{where}: choices {value!r} is not a list of options; fix the row")
        opts = tuple(_text(c, f"option {j}", where) for j, c in enumerate(value))
    else:
        opts = tuple(_text(row[c], f"option {c!r}", where) for c in choices)
    if len(opts) < 2:
        raise ValueError(f"{where}: {len(opts)} option(s); a question needs at least 2")
    return opts


def check_utf8(path: Path) -> None:
    """Refuse a text file that is not UTF-8, naming its line (``datasets`` names neither)."""
    raw = path.read_bytes()
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise ValueError(
            f"{path} line {line}: not UTF-8 (byte 0x{raw[err.start]:02x}); re-save the file "
            "as UTF-8"
        ) from None


def read_rows(path: Path):
    """The rows of a local ``.jsonl``, ``.json``, ``.csv`` or ``.parquet`` file (a ``Dataset``).

    Raises
    ------
    ValueError
        For another file type, a text file not in UTF-8, an unreadable or an empty file (each
        message names the file and the fix).
    FileNotFoundError
        If ``path`` does not exist.
    """
    from datasets import load_dataset

    if path.suffix not in FORMATS:
        raise ValueError(
            f"{path}: unsupported file type {path.suffix!r}; use one of {sorted(FORMATS)}"
        )
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    if path.suffix != ".parquet":
        check_utf8(path)
    try:
        rows = load_dataset(FORMATS[path.suffix], data_files=str(path), split="train")
    except Exception as err:  # datasets' own errors name neither the file nor the fix
        cause = err.__cause__ or err
        raise ValueError(
            f"{path}: cannot be read as {FORMATS[path.suffix]} ({type(cause).__name__}: "
            f"{str(cause)[:300]}); check that it is a valid {path.suffix} file in UTF-8"
        ) from err
    if len(rows) == 0:
        raise ValueError(f"{path} has no questions")
    return rows


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
    path = Path(path)
    rows = read_rows(path)
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
                _text(row[question], "question", where),
                opts,
                _answer(row[answer], len(opts), where),
                source or path.stem,
                str(i),
                str(row[context] or "") if context else "",
            )
        )
    return out
