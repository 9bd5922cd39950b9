"""Settings dataclasses that nest, with one flat name per setting for flags and files.

A settings dataclass may hold others as *sections* (``FitConfig.svi`` is an
:class:`~vmoer_ppl.infer.SVIConfig`). Every leaf has one *flat name*: its field name, or
``metadata["flag"]`` where sections would otherwise clash (``svi.num_steps`` is ``svi_steps``).
The flat name is the ``--flag`` and a key a config file may use. Fields marked
``metadata["runtime"]`` are decided by the code for each call (a checkpoint directory, a progress
bar) and are neither flags nor saved; sections marked ``metadata["flags"] = False`` are saved but
not flags. Anchor: transformers' ``HfArgumentParser`` reads help from field metadata the same way.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from enum import Enum
from typing import Any

#: Attribute names from the root settings to a leaf: ``("svi", "num_steps")``.
AttrPath = tuple[str, ...]


def opt(default: Any, help: str, *, flag: str | None = None, runtime: bool = False) -> Any:
    """A dataclass field with a default, its help text and, optionally, its flat name.

    Parameters
    ----------
    default : object
        The default value (immutable: a tuple, not a list).
    help : str
        One line for ``--help``.
    flag : str, optional
        The flat name when it is not the field's name.
    runtime : bool
        Set by the code per call: not a flag, not saved.
    """
    meta = {"help": help, "runtime": runtime, **({"flag": flag} if flag else {})}
    return dataclasses.field(default=default, metadata=meta)


def section(factory: Any, *, flags: bool = True) -> Any:
    """A dataclass field holding a nested settings dataclass built by ``factory``."""
    return dataclasses.field(default_factory=factory, metadata={"flags": flags})


def _children(obj: Any) -> list[tuple[dataclasses.Field, Any]]:
    return [(f, getattr(obj, f.name)) for f in dataclasses.fields(obj)]


def flat_paths(obj: Any) -> dict[str, AttrPath]:
    """Flat name -> attribute path of every settable leaf of ``obj``.

    Parameters
    ----------
    obj : dataclass instance
        Settings, sections included (``FitConfig()``).

    Returns
    -------
    dict
        ``{"svi_steps": ("svi", "num_steps"), "seed": ("seed",), ...}`` in field order.

    Raises
    ------
    TypeError
        If two leaves share a flat name (give one a ``flag``).
    """
    out: dict[str, AttrPath] = {}
    for f, value in _children(obj):
        if f.metadata.get("runtime"):
            continue
        if dataclasses.is_dataclass(value):
            if f.metadata.get("flags", True):
                for name, path in flat_paths(value).items():
                    _add(out, name, (f.name, *path))
            continue
        _add(out, f.metadata.get("flag", f.name), (f.name,))
    return out


def _add(out: dict[str, AttrPath], name: str, path: AttrPath) -> None:
    if name in out:
        raise TypeError(f"settings {out[name]} and {path} share the flat name {name!r}")
    out[name] = path


def leaf_field(obj: Any, path: AttrPath) -> tuple[dataclasses.Field, Any]:
    """The field at ``path`` and its resolved annotation."""
    owner = get_path(obj, path[:-1])
    return _field(owner, path[-1]), typing.get_type_hints(type(owner))[path[-1]]


def get_path(obj: Any, path: AttrPath) -> Any:
    """``obj.a.b`` for ``path = ("a", "b")``."""
    for name in path:
        obj = getattr(obj, name)
    return obj


def flat_values(obj: Any) -> dict[str, Any]:
    """Flat name -> value of every settable leaf (what two runs of one setup share)."""
    return {name: get_path(obj, path) for name, path in flat_paths(obj).items()}


def with_values(obj: Any, values: Mapping[str, Any]) -> Any:
    """A copy of ``obj`` with the settings named by flat name replaced (sections copied too).

    Raises
    ------
    ValueError
        For a name that is not a setting, listing it.
    """
    paths = flat_paths(obj)
    if unknown := sorted(set(values) - set(paths)):
        raise ValueError(f"unknown settings {unknown}")
    nested: dict[str, Any] = {}
    for name, value in values.items():
        *head, last = paths[name]
        node = nested
        for part in head:
            node = node.setdefault(part, {})
        node[last] = value
    return _replace(obj, nested)


def _replace(obj: Any, nested: Mapping[str, Any]) -> Any:
    changes = {
        k: _replace(getattr(obj, k), v) if isinstance(v, Mapping) else v for k, v in nested.items()
    }
    return dataclasses.replace(obj, **changes)


def to_dict(obj: Any) -> dict[str, Any]:
    """Nested dict of the saved fields (runtime ones left out; enums as their values)."""
    out: dict[str, Any] = {}
    for f, value in _children(obj):
        if f.metadata.get("runtime"):
            continue
        if dataclasses.is_dataclass(value):
            out[f.name] = to_dict(value)
        else:
            out[f.name] = value.value if isinstance(value, Enum) else value
    return out


def from_dict(default: Any, raw: Mapping[str, Any]) -> Any:
    """``default`` with the settings of ``raw``: sections as nested mappings, leaves by flat name.

    Parameters
    ----------
    default : dataclass instance
        What unset settings keep (``FitConfig()``).
    raw : mapping
        ``{"svi": {"num_steps": 7}, "seed": 1}`` or flat ``{"svi_steps": 7, "seed": 1}`` (files
        written before sections existed), or both. Lists become tuples where the field is one.

    Raises
    ------
    ValueError
        For a key that is neither a section nor a flat name, naming it.
    """
    flat: dict[str, Any] = {}
    whole: dict[str, Any] = {}  # sections that are not flags: replaced as a whole
    for key, value in raw.items():
        sub = getattr(default, key, None)
        if not (dataclasses.is_dataclass(sub) and isinstance(value, Mapping)):
            flat[key] = value
        elif not _field(default, key).metadata.get("flags", True):
            whole[key] = dataclasses.replace(sub, **_known(sub, value, key))
        else:
            names = {p[1:]: n for n, p in flat_paths(default).items() if p[0] == key}
            for path, v in _flatten(sub, value, key).items():
                if path not in names:
                    raise ValueError(f"unknown settings ['{'.'.join((key, *path))}']")
                flat[names[path]] = v
    return dataclasses.replace(with_values(default, as_field_types(default, flat)), **whole)


def _field(obj: Any, name: str) -> dataclasses.Field:
    return next(f for f in dataclasses.fields(obj) if f.name == name)


def _known(sub: Any, raw: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    names = {f.name for f in dataclasses.fields(sub)}
    if unknown := sorted(set(raw) - names):
        raise ValueError(f"unknown settings {[f'{key}.{u}' for u in unknown]}")
    return raw


def _flatten(sub: Any, raw: Mapping[str, Any], key: str) -> dict[AttrPath, Any]:
    """Section ``key``'s mapping as path (inside the section) -> value."""
    out: dict[AttrPath, Any] = {}
    for name, value in _known(sub, raw, key).items():
        inner = getattr(sub, name)
        if dataclasses.is_dataclass(inner) and isinstance(value, Mapping):
            nested = _flatten(inner, value, f"{key}.{name}")
            out.update({(name, *p): v for p, v in nested.items()})
        else:
            out[(name,)] = value
    return out


def as_field_types(default: Any, values: Mapping[str, Any]) -> dict[str, Any]:
    """Lists (JSON, YAML, ``nargs``) as tuples where the setting is a tuple."""
    paths = flat_paths(default)
    out = {}
    for name, value in values.items():
        if isinstance(value, list) and name in paths:
            _, hint = leaf_field(default, paths[name])  # ``tuple[...]`` or ``tuple[...] | None``
            if tuple in {typing.get_origin(a) for a in (hint, *typing.get_args(hint))}:
                value = tuple(value)
        out[name] = value
    return out
