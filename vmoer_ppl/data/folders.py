"""A data folder read as one table: ``save_to_disk`` output, or shards of one file type.

Three kinds of folder hold a set's questions:

- a ``datasets`` ``Dataset.save_to_disk`` folder (``state.json``, ``dataset_info.json`` and
  ``*.arrow``), read with ``datasets.load_from_disk``;
- a ``DatasetDict.save_to_disk`` folder (``dataset_dict.json`` and one such folder per split):
  every split is read, in the order ``dataset_dict.json`` lists them (point at ``<folder>/<split>``
  for one split);
- a folder of files of one type (:data:`~vmoer_ppl.data.reading.FORMATS`), e.g. a hub snapshot's
  ``data/train-00000-of-00002.parquet`` shards, read in name order.

A glob pattern (``data/train-*.parquet``, as ``datasets``' ``data_files`` takes) reads the files it
matches, in name order: one split of a snapshot whose splits share a folder.

Nothing in a folder executes: arrow, parquet and JSON are data. Each row keeps the name of the
file or split it came from, so an error names ``<split> row <i>`` rather than a row of the whole.
"""

from __future__ import annotations

import glob
import json
import logging
import re
from pathlib import Path

from vmoer_ppl.data.reading import FORMATS, file_stem, file_type, read_rows, why

log = logging.getLogger(__name__)

#: Characters that make a path a glob pattern.
GLOB = re.compile(r"[*?\[]")


def data_label(path: Path) -> str:
    """A set's name: a file's stem, a folder's name, a pattern's stem before its first wildcard.

    Parameters
    ----------
    path : Path
        A data file, folder or glob pattern (``data/train-*.parquet``: ``train``; ``data/*``:
        ``data``).

    Returns
    -------
    str
    """
    if is_pattern(str(path)):
        return GLOB.split(file_stem(path))[0].strip("-_. ") or path.parent.name
    return path.name if path.is_dir() else file_stem(path)


def is_pattern(name: str) -> bool:
    """Whether the path ``name`` (as the user gave it) holds ``*``, ``?`` or ``[``."""
    return GLOB.search(name) is not None


def data_exists(name: str) -> bool:
    """Whether local data ``name`` is there: the file or folder, or a file the pattern matches.

    Parameters
    ----------
    name : str
        A path or glob pattern.

    Returns
    -------
    bool
    """
    return bool(_matches(name)) if is_pattern(name) else Path(name).exists()


def _matches(pattern: str) -> list[Path]:
    found = (Path(p) for p in glob.glob(pattern))
    return sorted(p for p in found if p.is_file() and file_type(p) in FORMATS)


def is_data_path(name: str) -> bool:
    """Whether ``name`` reads as local data: a data file's suffix, a folder, or a glob pattern.

    Parameters
    ----------
    name : str
        As the user gave it (``--data`` / ``--ood``).

    Returns
    -------
    bool
    """
    return file_type(Path(name)) in FORMATS or Path(name).is_dir() or is_pattern(name)


def _data_files(folder: Path) -> list[Path]:
    """The data files directly in ``folder`` (hidden ones aside: ``*`` skips them), by name."""
    return _matches(str(Path(glob.escape(str(folder))) / "*"))


def _from_disk(folder: Path, label: str):
    from datasets import load_from_disk

    try:
        return load_from_disk(str(folder))
    except Exception as err:  # datasets names neither the folder's role nor the fix
        raise ValueError(f"{label}: not a datasets save_to_disk folder {why(err)}") from err


def _parts(folder: Path) -> list[tuple[str, object]]:
    """``(label, Dataset)`` for each split or file of ``folder``."""
    if (folder / "dataset_dict.json").is_file():
        meta = json.loads((folder / "dataset_dict.json").read_text(encoding="utf-8"))
        splits = meta.get("splits") if isinstance(meta, dict) else None
        if not isinstance(splits, list) or not all(isinstance(s, str) for s in splits):
            raise ValueError(f"{folder}/dataset_dict.json: no list of splits; re-save the set")
        for s in splits:  # a split is a folder inside this one, nothing outside it
            if Path(s).name != s or s in ("", ".", ".."):
                raise ValueError(f"{folder}/dataset_dict.json: split {s!r} is not a folder name")
        return [(f"{folder.name}/{s}", _from_disk(folder / s, f"{folder}/{s}")) for s in splits]
    if (folder / "state.json").is_file() and (folder / "dataset_info.json").is_file():
        return [(folder.name, _from_disk(folder, str(folder)))]
    files = _data_files(folder)
    if not files:
        holders = sorted(p.name for p in folder.iterdir() if p.is_dir() and _data_files(p))
        hint = f"; its folders {holders} do: pass one of them" if holders else ""
        raise ValueError(
            f"{folder}: no data file ({'/'.join(FORMATS)}) and no save_to_disk set in it{hint}"
        )
    return _shards(folder, files)


def _shards(where: Path, files: list[Path]) -> list[tuple[str, object]]:
    kinds = sorted({file_type(p) for p in files})
    if len(kinds) > 1:
        raise ValueError(
            f"{where}: files of {len(kinds)} types ({', '.join(kinds)}); several files are read "
            "as shards of one type: move the others out, or pass one file or a pattern"
        )
    return [(p.name, read_rows(p)) for p in files]


def read_folder(folder: Path):
    """Every question of a data folder, and where each row came from.

    Parameters
    ----------
    folder : Path
        A ``save_to_disk`` folder (``Dataset`` or ``DatasetDict``) or a folder of data files of
        one type.

    Returns
    -------
    rows : datasets.Dataset
        The `N` rows of every split or file, concatenated in order.
    where : list of str
        `N` labels ``"<file or split> row <i>"``, for error messages.

    Raises
    ------
    ValueError
        For a folder with no data, files of several types, splits or files with different
        columns, or no rows (each message names the folder and the fix).
    """
    return _joined(folder, _parts(folder))


def read_pattern(pattern: Path):
    """The questions of the data files a glob pattern matches, and where each row came from.

    Parameters
    ----------
    pattern : Path
        ``data/train-*.parquet``: files of one type (:data:`~vmoer_ppl.data.reading.FORMATS`),
        read in name order.

    Returns
    -------
    rows : datasets.Dataset
        `N` rows.
    where : list of str
        `N` labels ``"<file> row <i>"``.

    Raises
    ------
    FileNotFoundError
        If it matches no data file.
    """
    files = _matches(str(pattern))
    if not files:
        raise FileNotFoundError(f"{pattern} matches no data file ({'/'.join(FORMATS)})")
    return _joined(pattern, _shards(pattern, files))


def _joined(folder: Path, parts: list[tuple[str, object]]):
    """Rows of every part, concatenated; each row's ``"<part> row <i>"``."""
    from datasets import concatenate_datasets

    first_label, first = parts[0]
    for label, part in parts[1:]:
        if list(part.column_names) != list(first.column_names):
            raise ValueError(
                f"{folder}: {label} has the columns {part.column_names}, {first_label} "
                f"{first.column_names}; pass one of them"
            )
    try:
        rows = concatenate_datasets([p for _, p in parts]) if len(parts) > 1 else first
    except Exception as err:  # a column typed differently in two shards
        joined = ", ".join(lbl for lbl, _ in parts)
        raise ValueError(f"{folder}: its {joined} cannot be joined {why(err)}; pass one") from err
    if len(rows) == 0:
        raise ValueError(f"{folder} has no questions")
    if len(parts) > 1:
        log.info("%s: read %s", folder, ", ".join(f"{lbl} ({len(p)})" for lbl, p in parts))
    where = [f"{label} row {i}" for label, part in parts for i in range(len(part))]
    return rows, where


def read_table(path: Path):
    """The rows of a data file or folder, and where each came from.

    Parameters
    ----------
    path : Path
        A file (:data:`~vmoer_ppl.data.reading.FORMATS`), a folder (:func:`read_folder`) or a
        glob pattern (:func:`read_pattern`).

    Returns
    -------
    rows : datasets.Dataset
        `N` rows.
    where : list of str
        `N` labels ``"<file> row <i>"``.
    """
    if is_pattern(str(path)):
        return read_pattern(path)
    if path.is_dir():
        return read_folder(path)
    return _joined(path, [(path.name, read_rows(path))])
