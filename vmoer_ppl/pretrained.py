"""Load a saved router adapter onto its network: ``from_pretrained``.

Reading and checking the files is :mod:`vmoer_ppl.adapter_io`'s (the adapter format); this module
rebuilds the model and guide with :func:`vmoer_ppl.bayesianize` and loads the trained parameters.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from vmoer_ppl.adapter_io import (
    CONFIG_NAME,
    READABLE_VERSIONS,
    check_compatible,
    load_guide_state,
    mean_head_to_prior_units,
    read_config,
    read_weights,
)
from vmoer_ppl.bayesianize import bayesianize, network_of
from vmoer_ppl.hub import resolve_adapter
from vmoer_ppl.priors.base import Prior, prior_from_config


def from_pretrained(
    net: nn.Module,
    directory: str | Path,
    *,
    prior: Prior | None = None,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
):
    """Rebuild ``(model, guide)`` on ``net`` from a saved adapter, after checking it matches.

    Parameters
    ----------
    net : nn.Module
        The same pretrained network (transformers model or toy) the adapter was fitted to.
    directory : str or Path
        Where :func:`save_pretrained` wrote the adapter, or a hub repo id ``owner/name``
        (downloaded by :func:`vmoer_ppl.hub.resolve_adapter`: the two data files only).
    prior : Prior, optional
        Required when the adapter was trained with a custom prior.
    revision, cache_dir : optional
        Hub revision and cache, for a repo id.

    Returns
    -------
    tuple
        ``(model, guide)`` with the trained guide parameters loaded.
    """
    path = resolve_adapter(directory, revision=revision, cache_dir=cache_dir)
    if not (path / CONFIG_NAME).exists():
        raise FileNotFoundError(f"no {CONFIG_NAME} in {path}; save one with guide.save_pretrained")
    config = read_config(path)
    if config.get("format_version") not in READABLE_VERSIONS:
        raise ValueError(
            f"adapter format {config.get('format_version')} unsupported (this version reads "
            f"{READABLE_VERSIONS}); upgrade vmoer_ppl or refit the adapter"
        )
    scorer = config.get("scorer") or "letter"
    _, routers = network_of(net, config.get("option_token_ids"), scorer)
    check_compatible(config, net, routers)
    state = read_weights(path, config)
    model, guide = bayesianize(
        net,
        family=config["family"],
        layers=[r["index"] for r in config["routers"]],
        prior=prior or prior_from_config(config["prior"]),
        beta=config["beta"],
        num_data=config["num_data"],
        trunk_dim=config["trunk_dim"] or saved_trunk_dim(state),
        option_token_ids=config.get("option_token_ids"),
        scorer=scorer,
    )
    if config["format_version"] == 1:
        state = mean_head_to_prior_units(guide, state)
    load_guide_state(guide, state, path)
    return model, guide


def saved_trunk_dim(state: dict[str, torch.Tensor]) -> int | None:
    """Trunk width of saved amortisation heads (rows of the first trunk layer), if any.

    Adapters record the width used since the twelfth session; earlier ones record ``None``
    for the default, which was D/4 for every family then: their weights say what it was.

    Parameters
    ----------
    state : dict
        The adapter's tensors.

    Returns
    -------
    int or None
        H, or ``None`` for a guide without a trunk (the weight family).
    """
    weight = state.get("nets.0.trunk.0.weight")  # (H, D)
    return None if weight is None else int(weight.shape[0])
