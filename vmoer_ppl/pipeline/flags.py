"""Command-line flags of :class:`~vmoer_ppl.pipeline.config.FitConfig`, and run-config files.

One flag per field (``n_train`` -> ``--n-train``): its type from the field's annotation, its help
from the field's ``metadata["help"]``. ``--config FILE`` reads a JSON or YAML mapping of field
names; the command's defaults, then the file, then the flags given on the command line win in
that order.
"""

from __future__ import annotations

import argparse
import json
import typing
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from vmoer_ppl.pipeline.config import FitConfig

#: Fields that are not flags (nested settings of the embedded model).
NOT_FLAGS = frozenset({"embedded"})


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
    """One flag per :class:`FitConfig` field, defaults shown, plus ``--config FILE``.

    Flags default to "not given" (``argparse.SUPPRESS``), so :func:`config_from` can layer the
    command's defaults, a config file and the explicit flags.
    """
    hints = typing.get_type_hints(FitConfig)
    parser.add_argument(
        "--config",
        dest="config_file",
        default=None,
        help="JSON or YAML file of settings (field names as keys); flags given override it",
    )
    for f in fields(FitConfig):
        if f.name in NOT_FLAGS:
            continue
        flag = "--" + f.name.replace("_", "-")
        text = f"{f.metadata.get('help', '')} (default: {getattr(defaults, f.name)})"
        shape, kind = flag_kind(hints[f.name])
        common = {"dest": f.name, "default": argparse.SUPPRESS, "help": text}
        if shape == "bool":
            parser.add_argument(flag, action="store_true", **common)
        elif shape == "list":
            parser.add_argument(flag, nargs="*", type=kind, **common)
        else:
            parser.add_argument(flag, type=kind, **common)


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Settings from a JSON or YAML file, checked against :class:`FitConfig`'s fields.

    Parameters
    ----------
    path : str or Path
        ``*.json``, ``*.yaml`` or ``*.yml``: a mapping of field names to values.

    Returns
    -------
    dict
        Field name -> value (lists as tuples).
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    raw = parse_mapping(path, text)
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: a config file holds one mapping of settings, got {type(raw)}")
    known = {f.name for f in fields(FitConfig)} - NOT_FLAGS
    if unknown := sorted(set(raw) - known):
        raise ValueError(f"{path}: unknown settings {unknown}; see `vmoer fit --help`")
    return as_tuples(raw)


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
    values: dict[str, Any] = {}
    if getattr(args, "config_file", None):
        values.update(read_config_file(args.config_file))
    given = {f.name: getattr(args, f.name) for f in fields(FitConfig) if hasattr(args, f.name)}
    values.update(as_tuples(given))
    return replace(defaults, **values)


def as_tuples(values: dict[str, Any]) -> dict[str, Any]:
    """Lists (from a file or ``nargs``) as the tuples :class:`FitConfig` holds."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
