"""Writing inside a run directory that may come from a stranger: no links, no torn files.

A run directory can be shared, downloaded or unpacked from an archive, so it may contain symbolic
links planted to redirect a write (``report.md -> ~/.bashrc``, ``plots -> /etc``). Every command
that writes into a run refuses one that contains a link (:func:`refuse_links`), and every file
is written to a temporary file in its own directory and then ``os.replace``-d, which replaces a
directory entry and never follows a link, so a kill leaves the old file or the new one. A command
holds an exclusive lock on the run for its whole life (:func:`run_lock`), so two processes never
mix their states in one directory.
"""

from __future__ import annotations

import contextlib
import fcntl
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


LOCK_FILE = ".vmoer.lock"


class RunInUseError(RuntimeError):
    """Another live process holds the run directory's lock."""


@contextlib.contextmanager
def run_lock(out: str | Path, command: str, *, create: bool = False):
    """Hold an exclusive lock on a run directory for the life of a command.

    The lock is an ``flock`` on ``out/.vmoer.lock`` (which records the holder's PID and command);
    the operating system releases it when the holder exits, however it exits, so the lock of a
    dead process is simply taken over.

    Parameters
    ----------
    out : str or Path
        The run directory (created if missing).
    command : str
        What holds it (``"fit"``, ``"evaluate"``, ...), for the other process's error.
    create : bool
        Create the directory if missing (a fit); otherwise it must exist.

    Raises
    ------
    RunInUseError
        If another live process holds the lock, naming its PID and command.
    ValueError
        If the run directory contains a symbolic link (:func:`refuse_links`).
    FileNotFoundError
        If the directory is missing and ``create`` is false.
    """
    out = Path(out)
    refuse_links(out)
    if not create and not out.is_dir():
        raise FileNotFoundError(
            f"{out} is not a run directory; create one with `vmoer fit` or `vmoer demo`"
        )
    out.mkdir(parents=True, exist_ok=True)
    path = out / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            raise RunInUseError(
                f"{out} is in use by {holder}; wait for it to finish or choose another run "
                "directory"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"process {os.getpid()} (vmoer {command})".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
