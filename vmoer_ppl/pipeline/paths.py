"""Local paths in a run's settings, made absolute when the run starts.

``config.json`` is read again by ``vmoer evaluate``, ``inspect`` and a resumed ``fit``, which may
run from another directory: a data file or folder, OOD file or folder, hub copy or model directory
given relative to the directory of the first command is stored absolute, so the run finds it from
anywhere.
Hub ids, packaged set names and ``hub:<name>`` stay as given.
"""

from __future__ import annotations

from pathlib import Path

from vmoer_ppl.data.folders import is_data_path
from vmoer_ppl.data.packaged import PACKAGED
from vmoer_ppl.pipeline.config import FitConfig
from vmoer_ppl.pipeline.sets import ID_CANDIDATES


def _file(name: str, named) -> str:
    """``name`` made absolute when it is local data (a data file's suffix or a folder).

    A set's name (in ``named``) or ``hub:<name>`` stays as given, even where a folder of that
    name exists.
    """
    if name in named or name.startswith("hub:"):
        return name
    home = _home(name)
    return str(Path(home).resolve()) if is_data_path(home) else name


def _home(name: str) -> str:
    """``~/x`` (from a config file, where no shell expanded it) as the user's home's ``x``."""
    return str(Path(name).expanduser()) if name.startswith("~") else name


def absolute_paths(cfg: FitConfig) -> FitConfig:
    """``cfg`` with its local data files, hub copy and model directory as absolute paths.

    Parameters
    ----------
    cfg : FitConfig
        Settings as the user gave them (paths relative to the current directory).

    Returns
    -------
    FitConfig
        A copy; a ``model`` that is not an existing directory (a hub id) is kept as given.
    """
    d = cfg.dataset
    model = cfg.model
    if model is not None and Path(_home(model)).is_dir():
        model = str(Path(_home(model)).resolve())
    return cfg.replace(
        model=model,
        data=_file(d.name, ID_CANDIDATES),
        hub_path=None if d.hub_path is None else str(Path(_home(d.hub_path)).resolve()),
        ood=None if d.ood is None else tuple(_file(n, PACKAGED) for n in d.ood),
    )
