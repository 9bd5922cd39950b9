"""Save and load a trained router adapter: safetensors weights plus a JSON config, no pickle.

The JSON records what the adapter was fitted to (architecture, router count, the Bayesian
routers with their E and K, and a SHA-256 of each frozen router weight ``W_r``), how it was built
(family, prior, β, trunk width) and the library versions. Loading refuses a model that differs
in any of these, with a message that says what differs.
"""

from __future__ import annotations

import hashlib
import json
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import cast

import torch
from safetensors import SafetensorError
from safetensors.torch import load, save_file
from torch import nn

import vmoer_ppl.priors  # noqa: F401  (registers the shipped priors' config types)
from vmoer_ppl.safe_files import atomic_write, write_text

WEIGHTS_NAME, CONFIG_NAME = "router_adapter.safetensors", "router_adapter.json"
FORMAT_VERSION = 2
#: Format 1 stored the amortised mean head in absolute units; format 2 in units of the prior scale.
READABLE_VERSIONS = (1, 2)


def weight_hash(weight: torch.Tensor) -> str:
    """SHA-256 of a tensor's float32 bytes (router weights are checked on load)."""
    return hashlib.sha256(weight.detach().float().cpu().contiguous().numpy().tobytes()).hexdigest()


def router_weight_hash(router: nn.Module) -> str:
    """:func:`weight_hash` of ``router.weight``, read from accelerate's offload when on meta."""
    weight = cast(torch.Tensor, router.weight)
    if weight.device.type != "meta":
        return weight_hash(weight)
    from accelerate.utils import align_module_device

    with align_module_device(router, torch.device("cpu")):  # device_map offload: load it back
        return weight_hash(cast(torch.Tensor, router.weight))


def library_versions(packages=("vmoer_ppl", "torch", "pyro-ppl", "transformers")) -> dict:
    """Installed version of each package.

    Parameters
    ----------
    packages : iterable of str
        Distribution names.

    Returns
    -------
    dict
        Name -> version, ``"not installed"`` where absent.
    """
    out = {}
    for pkg in packages:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def architecture_name(net: nn.Module) -> str:
    """``config.model_type`` of a transformers model, else the network's class name."""
    config = getattr(net, "config", None)
    return getattr(config, "model_type", None) or type(net).__name__


def save_pretrained(guide, directory: str | Path, *, overwrite: bool = False) -> Path:
    """Write ``router_adapter.safetensors`` and ``router_adapter.json`` into ``directory``.

    Parameters
    ----------
    guide : RouterGuide
        A guide built by :func:`vmoer_ppl.bayesianize` (its model carries the build spec).
    directory : str or Path
        Target directory (created if missing).
    overwrite : bool
        Replace an adapter already there.

    Returns
    -------
    Path
        The directory.
    """
    model, out = guide.model, Path(directory)
    if (out / CONFIG_NAME).exists() and not overwrite:
        raise FileExistsError(f"{out / CONFIG_NAME} exists; pass overwrite=True to replace it")
    out.mkdir(parents=True, exist_ok=True)
    spec = dict(model.spec)
    config = {
        "format_version": FORMAT_VERSION,
        "architecture": spec.pop("architecture"),
        "num_routers": spec.pop("num_routers"),
        "routers": [
            {
                "name": s.name,
                "index": s.layer,
                "num_experts": s.num_experts,
                "top_k": s.top_k,
                "hidden_size": s.hidden_size,
                "router_weight_sha256": router_weight_hash(s.router),
            }
            for s in model.sites
        ],
        **spec,
        "prior": model.prior.to_config(),
        "versions": library_versions(),
    }
    tensors = {k: v.detach().cpu().contiguous() for k, v in guide.state_dict().items()}
    atomic_write(out / WEIGHTS_NAME, lambda tmp: save_file(tensors, tmp, metadata={"format": "pt"}))
    config["weights_sha256"] = file_sha256(out / WEIGHTS_NAME)
    write_text(out / CONFIG_NAME, json.dumps(config, indent=2))
    return out


def check_compatible(config: dict, net: nn.Module, routers) -> None:
    """Raise a ValueError naming every difference between an adapter and a network."""
    problems = []
    if config["architecture"] != architecture_name(net):
        problems.append(
            f"architecture: adapter {config['architecture']!r}, model {architecture_name(net)!r}"
        )
    if config["num_routers"] != len(routers):
        problems.append(f"MoE router count: adapter {config['num_routers']}, model {len(routers)}")
    by_name = {s.name: s for s in routers}
    for r in config["routers"]:
        site = by_name.get(r["name"])
        if site is None:
            problems.append(f"{r['name']}: no such router in the model")
            continue
        for key, have in (("num_experts", site.num_experts), ("top_k", site.top_k)):
            if r[key] != have:
                problems.append(f"{r['name']}: {key} adapter {r[key]}, model {have}")
        if r["router_weight_sha256"] != router_weight_hash(site.router):
            problems.append(
                f"{r['name']}: router weight W_r differs from the one the adapter was fitted to"
            )
    if problems:
        raise ValueError("router adapter does not match this model:\n  " + "\n  ".join(problems))


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_config(path: Path) -> dict:
    """The adapter's JSON config, or a ``ValueError`` naming the file and the fix."""
    try:
        config = json.loads((path / CONFIG_NAME).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(
            f"{path / CONFIG_NAME} is not valid JSON ({err}); save the adapter again"
        ) from None
    need = ("format_version", "family", "routers", "prior", "beta", "num_data", "trunk_dim")
    missing = [k for k in need if k not in config] if isinstance(config, dict) else list(need)
    if missing:
        raise ValueError(f"{path / CONFIG_NAME} lacks {missing}; save the adapter again")
    return config


def read_weights(path: Path, config: dict) -> dict[str, torch.Tensor]:
    """The adapter's tensors, checked against the hash its config recorded."""
    weights = path / WEIGHTS_NAME
    if not weights.is_file():
        raise FileNotFoundError(f"no {WEIGHTS_NAME} in {path}; save the adapter again")
    raw = weights.read_bytes()  # hashed and parsed from the same bytes
    want = config.get("weights_sha256")
    if want is not None and hashlib.sha256(raw).hexdigest() != want:
        raise ValueError(
            f"{weights} is not the file {CONFIG_NAME} was saved with (SHA-256 differs): the "
            "weights were replaced or damaged; save the adapter again"
        )
    try:
        return load(raw)
    except SafetensorError as err:
        raise ValueError(f"{weights} cannot be read ({err}); save the adapter again") from None


def load_guide_state(guide, state: dict[str, torch.Tensor], path: Path) -> None:
    """Load tensors into the guide, naming extra, missing or misshapen ones."""
    want = guide.state_dict()
    extra, missing = sorted(set(state) - set(want)), sorted(set(want) - set(state))
    bad = [k for k in set(state) & set(want) if state[k].shape != want[k].shape]
    if extra or missing or bad:
        raise ValueError(
            f"{path / WEIGHTS_NAME} does not fit this guide (unexpected {extra}, missing "
            f"{missing}, wrong shape {sorted(bad)}); save the adapter again"
        )
    guide.load_state_dict({k: v.to(want[k]) for k, v in state.items()}, strict=True)


def mean_head_to_prior_units(guide, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Convert a format-1 state dict: its mean heads gave ``Δμ`` in absolute units.

    Format 2 multiplies the mean head's output by the prior scale ``s_ℓ``; dividing the head's
    weight and bias by ``s_ℓ`` gives exactly the same posterior.
    """
    out = dict(state)
    for i, site in enumerate(guide.model.sites):
        if not guide.scales:
            break
        s = guide.scale_at(site)
        for part in ("weight", "bias"):
            key = f"nets.{i}.mean.{part}"
            if key in out:
                out[key] = out[key] / s
    return out
