"""SVI training state on disk: written atomically, read back to resume with nothing lost.

One file, ``svi_state.pt``, holds everything that decides the rest of a run: the guide's parameters,
the optimiser and schedule states, the step, the loss and validation histories, the best guide so
far (early stopping) and every random number generator (torch, Python, NumPy through Pyro). The
minibatch at a step is a pure function of ``(seed, step)``, so no iterator state is needed. A kill
at any moment leaves either the previous file or the new one (written to a temporary file, then
``os.replace``-d), never a torn one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pyro.util
import torch

STATE_FILE = "svi_state.pt"


def state_path(directory: str | Path) -> Path:
    """The state file inside a checkpoint directory."""
    return Path(directory) / STATE_FILE


def save_state(directory: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` (plus the current RNG states) atomically to ``directory/svi_state.pt``.

    Parameters
    ----------
    directory : str or Path
        Checkpoint directory (created if missing).
    state : dict
        Tensors, state dicts, numbers and lists (``torch.save``-able).

    Returns
    -------
    Path
        The file written.
    """
    path = state_path(directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {**state, "rng": pyro.util.get_rng_state()}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".svi_state-", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def load_state(directory: str | Path) -> dict[str, Any] | None:
    """Read a saved state and restore the RNGs it recorded; ``None`` when there is none.

    Raises
    ------
    ValueError
        If the file exists but cannot be read (names the file to delete).
    """
    path = state_path(directory)
    if not path.exists():
        return None
    try:
        state = torch.load(path, weights_only=False)
    except Exception as err:  # a foreign or damaged file: say which, do not guess
        raise ValueError(
            f"cannot read the SVI checkpoint {path} ({err}); delete it to start afresh"
        ) from err
    pyro.util.set_rng_state(state.pop("rng"))
    return state
