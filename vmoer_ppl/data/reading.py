"""One local data file (jsonl, json, csv, parquet or arrow) read as a ``datasets.Dataset``.

A file compressed with gzip, bzip2 or xz (``train.jsonl.gz``) is decompressed into a scratch
folder first, so every check below sees its text.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import json
import logging
import lzma
import shutil
import tempfile
from pathlib import Path

from vmoer_ppl.data.layouts import ANSWER_COLUMNS, LETTERS, QUESTION_COLUMNS

log = logging.getLogger(__name__)

#: Suffix of each file type read, and the ``datasets`` builder that reads it.
FORMATS = {
    ".jsonl": "json",
    ".json": "json",
    ".csv": "csv",
    ".parquet": "parquet",
    ".arrow": "arrow",
}
#: Binary formats: no UTF-8 check.
BINARY = {".parquet", ".arrow"}
#: Compression suffixes read, and how to open them.
COMPRESSED = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}


def file_type(path: Path) -> str:
    """A data file's type suffix: ``.jsonl`` for ``train.jsonl`` and ``train.jsonl.gz``.

    Parameters
    ----------
    path : Path
        A file name.

    Returns
    -------
    str
        The suffix that names its format (empty when it has none).
    """
    suffixes = path.suffixes
    if len(suffixes) >= 2 and suffixes[-1] in COMPRESSED:
        return suffixes[-2]
    return path.suffix


def file_stem(path: Path) -> str:
    """A data file's name without its type and compression suffixes (``train``)."""
    name = path.name
    for suffix in (path.suffix if path.suffix in COMPRESSED else "", file_type(path)):
        name = name.removesuffix(suffix)
    return name


def decompressed(path: Path, tmp: Path) -> Path:
    """``path``, or its contents decompressed into ``tmp`` when it ends in a compression suffix.

    Parameters
    ----------
    path : Path
        The user's file.
    tmp : Path
        A scratch folder.

    Returns
    -------
    Path
        A file named ``<stem><type>`` (``train.jsonl``).
    """
    opener = COMPRESSED.get(path.suffix)
    if opener is None or file_type(path) == path.suffix:
        return path
    plain = tmp / path.name.removesuffix(path.suffix)
    try:
        with opener(path, "rb") as src, plain.open("wb") as dst:
            shutil.copyfileobj(src, dst)
    except (OSError, EOFError, lzma.LZMAError) as err:
        raise ValueError(f"{path}: cannot be decompressed ({err}); check the file") from None
    return plain


def why(err: BaseException) -> str:
    """``"(<type>: <message>)"`` of what ``datasets`` raised, cut to 300 characters."""
    cause = err.__cause__ or err
    return f"({type(cause).__name__}: {str(cause)[:300]})"


def check_utf8(path: Path, shown: Path | None = None) -> None:
    """Refuse a text file that is not UTF-8, naming its line (``datasets`` names neither).

    ``shown`` is the name the message gives (the user's compressed file), default ``path``.
    """
    raw = path.read_bytes()
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise ValueError(
            f"{shown or path} line {line}: not UTF-8 (byte 0x{raw[err.start]:02x}); re-save the "
            "file as UTF-8"
        ) from None


def unwrapped(path: Path, tmp: Path) -> Path:
    """The file to read: ``path``, or the questions of a JSON object written to ``tmp``.

    A JSON object whose one list-of-objects field holds the questions (``{"version": ...,
    "data": [...]}``) is unwrapped into a top-level list in ``tmp``: ``datasets`` reads such a
    field only when each column has one type, a top-level list also when an answer column mixes
    indices and letters.

    Parameters
    ----------
    path : Path
        The user's file.
    tmp : Path
        A scratch directory.

    Returns
    -------
    Path
    """
    if path.suffix != ".json":
        return path
    text = path.read_text(encoding="utf-8")
    if not text.lstrip().startswith("{"):
        return path
    try:
        obj = json.loads(text)
    except ValueError:
        return path  # read_rows' own error names the file
    lists = [
        v for v in obj.values() if isinstance(v, list) and v and all(isinstance(x, dict) for x in v)
    ]
    if len(lists) != 1:
        return path
    inner = tmp / path.name
    inner.write_text(json.dumps(lists[0]), encoding="utf-8")
    return inner


def csv_columns(path: Path) -> tuple[list[str], bool]:
    """A csv file's column names, and whether its first row is a question rather than a header.

    MMLU's own csv files (``data/test/<subject>_test.csv``) have no header: each row is the
    question, its options and the answer's letter. A first row of four or more cells whose last
    is one of its options' letters, and with no question or answer column name, is read so.

    Parameters
    ----------
    path : Path
        A ``.csv`` file in UTF-8.

    Returns
    -------
    names : list of str
        The header's cells, or ``question``, ``A`` .. and ``answer`` for a file without one.
    headerless : bool
    """
    with path.open(encoding="utf-8", newline="") as f:
        first = next(csv.reader(f), [])
    letters = LETTERS[: len(first) - 2]
    named = {c.lower() for c in (*QUESTION_COLUMNS, *ANSWER_COLUMNS)} & {c.lower() for c in first}
    if len(first) >= 4 and first[-1].strip() in list(letters) and not named:  # one letter
        log.info("%s: no header row (MMLU's csv): question, %s, answer", path.name, letters)
        return ["question", *letters, "answer"], True
    return first, False


def _csv_kwargs(path: Path) -> dict:
    """``load_dataset("csv")`` arguments: every cell read as text, MMLU's csv given its names."""
    from datasets import Features, Value

    names, headerless = csv_columns(path)
    if len(set(names)) < len(names) or not all(names):  # pandas renames them; types guessed
        return {}
    kwargs: dict = {"features": Features({c: Value("string") for c in names})}
    if headerless:
        kwargs.update(column_names=names, header=None)
    return kwargs


def read_rows(path: Path):
    """The rows of a local ``.jsonl``, ``.json``, ``.csv``, ``.parquet`` or ``.arrow`` file.

    Parameters
    ----------
    path : Path
        The file, optionally compressed (``.gz``, ``.bz2``, ``.xz``).

    Returns
    -------
    datasets.Dataset
        Its `N` rows.

    Raises
    ------
    ValueError
        For another file type, a text file not in UTF-8, an unreadable or an empty file (each
        message names the file and the fix).
    FileNotFoundError
        If ``path`` does not exist.
    """
    from datasets import load_dataset

    kind = file_type(path)
    if kind not in FORMATS:
        raise ValueError(
            f"{path}: unsupported file type {kind!r}; use one of {sorted(FORMATS)}, optionally "
            f"compressed ({', '.join(COMPRESSED)})"
        )
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    with tempfile.TemporaryDirectory() as tmp:
        plain = decompressed(path, Path(tmp))
        if kind not in BINARY:
            check_utf8(plain, shown=path)
        try:
            (Path(tmp) / "unwrapped").mkdir()
            source = unwrapped(plain, Path(tmp) / "unwrapped")  # {"version": ..., "data": [..]}
            kwargs = _csv_kwargs(plain) if kind == ".csv" else {}  # cells are text
            rows = load_dataset(FORMATS[kind], data_files=str(source), split="train", **kwargs)
        except Exception as err:  # datasets' own errors name neither the file nor the fix
            raise ValueError(
                f"{path}: cannot be read as {FORMATS[kind]} {why(err)}; check that it is a "
                f"valid {kind} file in UTF-8"
            ) from err
    if len(rows) == 0:
        raise ValueError(f"{path} has no questions")
    return rows
