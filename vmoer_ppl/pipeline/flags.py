"""Command-line flags of :class:`~vmoer_ppl.pipeline.config.FitConfig`, and run-config files.

One flag per setting, sections included, named by its flat name (``n_train`` -> ``--n-train``,
``svi.num_steps`` -> ``--svi-steps``; :mod:`vmoer_ppl.settings`): its type from the field's
annotation, its help from the field's ``metadata["help"]``. ``--config FILE`` reads a JSON or YAML
mapping, sections nested (as config.json) or by flat name; the command's defaults, then the file,
then the flags given on the command line win in that order.
"""

from __future__ import annotations

import argparse
import json
import typing
from pathlib import Path
from typing import Any

from vmoer_ppl.pipeline.config import FitConfig
from vmoer_ppl.settings import as_field_types, flat_paths, from_dict, get_path, leaf_field


def _optional(kind):
    """``text -> kind(text)``, with ``"none"`` giving None (argparse shows the kind's name)."""

    def parse(text: str):
        return None if text.lower() == "none" else kind(text)

    parse.__name__ = kind.__name__
    return parse


def flag_kind(annotation: Any) -> tuple[str, Any]:
    """How a field's annotation is parsed: ``("bool" | "list" | "value", element parser)``.

    Parameters
    ----------
    annotation : type
        A resolved annotation such as ``int``, ``float | None`` or ``tuple[str, ...] | None``.

    Returns
    -------
    tuple
        The flag's shape and the parser of one value.
    """
    members = [a for a in typing.get_args(annotation) if a is not type(None)]
    optional = len(members) < len(typing.get_args(annotation))  # ``X | None``
    base = members[0] if optional else annotation
    if base is bool:
        return "bool", bool
    if typing.get_origin(base) is tuple:
        return "list", typing.get_args(base)[0]
    kind = base if base in (int, float) else str
    return "value", _optional(kind) if optional and kind is not str else kind


def add_config_flags(parser: argparse.ArgumentParser, defaults: FitConfig) -> None:
    """One flag per :class:`FitConfig` setting, defaults shown, plus ``--config FILE``.

    Flags default to "not given" (``argparse.SUPPRESS``), so :func:`config_from` can layer the
    command's defaults, a config file and the explicit flags.
    """
    parser.add_argument(
        "--config",
        dest="config_file",
        default=None,
        help="JSON or YAML file of settings (config.json's sections, or flag names as keys); "
        "flags given override it",
    )
    for name, path in flat_paths(defaults).items():
        f, hint = leaf_field(defaults, path)
        flag = "--" + name.replace("_", "-")
        text = f"{f.metadata.get('help', '')} (default: {get_path(defaults, path)})"
        shape, kind = flag_kind(hint)
        common = {"dest": name, "default": argparse.SUPPRESS, "help": text}
        if shape == "bool":
            parser.add_argument(flag, action="store_true", **common)
        elif shape == "list":
            parser.add_argument(flag, nargs="*", type=kind, **common)
        else:
            parser.add_argument(flag, type=kind, **common)


def read_config_file(path: str | Path, defaults: FitConfig) -> FitConfig:
    """``defaults`` with the settings of a JSON or YAML file.

    Parameters
    ----------
    path : str or Path
        ``*.json``, ``*.yaml`` or ``*.yml``: one mapping, sections nested as in a run's
        config.json (``svi: {lr: 0.1}``) or settings by flag name (``lr: 0.1``).
    defaults : FitConfig
        What the file leaves unset.

    Returns
    -------
    FitConfig
        The settings with the file's applied.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    raw = parse_mapping(path, text)
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: a config file holds one mapping of settings, got {type(raw)}")
    try:
        return from_dict(defaults, raw)
    except ValueError as err:
        raise ValueError(f"{path}: {err}; see `vmoer fit --help`") from None


def parse_mapping(path: Path, text: str) -> Any:
    """JSON, or YAML for ``*.yaml``/``*.yml`` (safe loader: plain data only, nothing executed)."""
    import yaml

    try:
        if path.suffix in (".yaml", ".yml"):
            return yaml.safe_load(text)
        return json.loads(text)
    except (yaml.YAMLError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} is not a valid config file: {err}") from None


def config_from(args: argparse.Namespace, defaults: FitConfig) -> FitConfig:
    """The :class:`FitConfig` of the command's defaults, ``--config`` file, then given flags."""
    cfg = defaults
    if getattr(args, "config_file", None):
        cfg = read_config_file(args.config_file, defaults)
    given = {name: getattr(args, name) for name in flat_paths(cfg) if hasattr(args, name)}
    return cfg.replace(**as_field_types(cfg, given))
