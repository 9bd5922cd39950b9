"""One local data file (jsonl, json, csv, parquet or arrow) read as a ``datasets.Dataset``."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

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


def why(err: BaseException) -> str:
    """``"(<type>: <message>)"`` of what ``datasets`` raised, cut to 300 characters."""
    cause = err.__cause__ or err
    return f"({type(cause).__name__}: {str(cause)[:300]})"


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


def read_rows(path: Path):
    """The rows of a local ``.jsonl``, ``.json``, ``.csv``, ``.parquet`` or ``.arrow`` file.

    Parameters
    ----------
    path : Path
        The file.

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

    if path.suffix not in FORMATS:
        raise ValueError(
            f"{path}: unsupported file type {path.suffix!r}; use one of {sorted(FORMATS)}"
        )
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    if path.suffix not in BINARY:
        check_utf8(path)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            source = unwrapped(path, Path(tmp))  # {"version": ..., "data": [{...}, ...]}
            rows = load_dataset(FORMATS[path.suffix], data_files=str(source), split="train")
    except Exception as err:  # datasets' own errors name neither the file nor the fix
        raise ValueError(
            f"{path}: cannot be read as {FORMATS[path.suffix]} {why(err)}; check that it is a "
            f"valid {path.suffix} file in UTF-8"
        ) from err
    if len(rows) == 0:
        raise ValueError(f"{path} has no questions")
    return rows
