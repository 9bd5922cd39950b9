"""Writing inside a run directory that may come from a stranger: no links, no torn files.

A run directory can be shared, downloaded or unpacked from an archive, so it may contain symbolic
links planted to redirect a write (``report.md -> ~/.bashrc``, ``plots -> /etc``). Every command
that writes into a run refuses one that contains a link (:func:`refuse_links`), and every file
is written to a temporary file in its own directory and then ``os.replace``-d, which replaces a
directory entry and never follows a link, so a kill leaves the old file or the new one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def refuse_links(out: str | Path) -> None:
    """Raise if ``out`` or anything inside it is a symbolic link.

    Parameters
    ----------
    out : str or Path
        The run directory (need not exist yet).

    Raises
    ------
    ValueError
        Naming the first link found and where it points.
    """
    out = Path(out)
    if out.is_symlink():
        raise ValueError(f"{out} is a symbolic link; give the run directory's real path")
    if not out.exists():
        return
    for root, dirs, files in os.walk(out, followlinks=False):
        for name in dirs + files:
            p = Path(root) / name
            if p.is_symlink():
                raise ValueError(
                    f"{p} is a symbolic link (to {os.readlink(p)}) inside the run directory; "
                    "a run may not redirect its files elsewhere: remove the link"
                )


def atomic_write(path: str | Path, write: Callable[[str], object]) -> Path:
    """Write a file by ``write(tmp_name)`` into a temporary file, then replace ``path`` with it.

    Parameters
    ----------
    path : str or Path
        Destination; its directory is created if missing.
    write : callable
        Writes the content to the temporary path it is given.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=path.suffix)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def write_text(path: str | Path, text: str) -> Path:
    """Atomically write ``text`` (UTF-8) to ``path``."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def save_figure(fig, path: str | Path, **kwargs) -> Path:
    """Atomically save a matplotlib figure (``kwargs`` go to ``savefig``; format from ``path``)."""
    fmt = Path(path).suffix.lstrip(".") or "png"
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt, **kwargs))
