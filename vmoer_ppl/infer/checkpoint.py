"""SVI training state on disk: data only, written atomically, read back with nothing lost.

One file, ``svi_state.safetensors``, holds everything that decides the rest of a run: the
guide's parameters, the optimiser and schedule states, the step, the loss and validation
histories, the best guide so far (early stopping) and every random number generator (torch,
Python, NumPy through Pyro). The
minibatch at a step is a pure function of ``(seed, step)``, so no iterator state is needed. A kill
at any moment leaves either the previous file or the new one (written to a temporary file, then
``os.replace``-d), never a torn one.

The file is data only: the tensors in safetensors, the rest (numbers, histories, RNG states) as
JSON in the safetensors header (:mod:`vmoer_ppl.infer.state_codec`). A run directory may come
from a stranger, so loading never unpickles; a ``svi_state.pt`` from before is never read.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import pyro.util
from safetensors import SafetensorError
from safetensors.torch import load, save_file

from vmoer_ppl.infer.state_codec import decode, encode

STATE_FILE = "svi_state.safetensors"
LEGACY_FILE = "svi_state.pt"  # pickled states of earlier versions: never loaded
FORMAT = "vmoer-svi-state/1"

log = logging.getLogger(__name__)


def state_path(directory: str | Path) -> Path:
    """The state file inside a checkpoint directory."""
    return Path(directory) / STATE_FILE


def save_state(directory: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` (plus the RNG states) atomically to ``directory/svi_state.safetensors``.

    Parameters
    ----------
    directory : str or Path
        Checkpoint directory (created if missing).
    state : dict
        Tensors, state dicts, numbers, strings, lists and tuples (see
        :func:`~vmoer_ppl.infer.state_codec.encode`).

    Returns
    -------
    Path
        The file written.
    """
    path = state_path(directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    tree, tensors = encode({**state, "rng": pyro.util.get_rng_state()})
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".svi_state-", suffix=".tmp")
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={"format": FORMAT, "state": json.dumps(tree)})
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def header_metadata(raw: bytes) -> dict:
    """The ``__metadata__`` of a safetensors file's header (its first 8 + N bytes)."""
    if len(raw) < 8:
        raise ValueError("file too short for a safetensors header")
    n = int.from_bytes(raw[:8], "little")
    if n > len(raw) - 8:
        raise ValueError("truncated safetensors header")
    header = json.loads(raw[8 : 8 + n])
    return header.get("__metadata__") or {} if isinstance(header, dict) else {}


def load_state(directory: str | Path) -> dict[str, Any] | None:
    """Read a saved state and restore the RNGs it recorded; ``None`` when there is none.

    Raises
    ------
    ValueError
        If the file exists but cannot be read (names the file to delete).
    """
    path = state_path(directory)
    if (Path(directory) / LEGACY_FILE).exists():
        log.warning(
            "%s: a pickled checkpoint of an earlier version is never loaded (it could run code); "
            "training starts afresh unless %s exists",
            Path(directory) / LEGACY_FILE,
            STATE_FILE,
        )
    if not path.exists():
        return None
    if path.is_symlink() or not path.is_file():
        raise ValueError(f"{path} is not a regular file; delete it to start afresh")
    try:
        # one read of one file: safe_open re-opens the file by name for each tensor, which mixes
        # two files when a writer replaces it in between
        raw = path.read_bytes()
        meta = header_metadata(raw)
        if meta.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} file (format {meta.get('format')!r})")
        state = decode(json.loads(meta["state"]), load(raw))
        rng = state.pop("rng")
    except (SafetensorError, ValueError, KeyError, TypeError, OSError) as err:
        raise ValueError(
            f"cannot read the SVI checkpoint {path} ({err}); delete it to start afresh"
        ) from err
    pyro.util.set_rng_state(rng)
    return state
