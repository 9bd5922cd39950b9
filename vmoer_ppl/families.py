"""The router families: every guide class that names a family, by name.

A family registers itself by subclassing :class:`~vmoer_ppl.guides.base.RouterGuide` with a
``family`` name and the ``model_cls`` it mirrors (STYLE rule 16: dispatch through a registry).
Every module of the ``guides`` package is imported here, so a family shipped there needs no other
edit; a user's family registers when its module is imported.
"""

from __future__ import annotations

import importlib
import pkgutil
from enum import Enum

import vmoer_ppl.guides as guides
from vmoer_ppl.guides.base import RouterGuide

for _info in pkgutil.iter_modules(guides.__path__, prefix=f"{guides.__name__}."):
    importlib.import_module(_info.name)

#: Every registered family: name -> guide class (``.model_cls``, ``.default_prior()``, ...).
FAMILIES: dict[str, type[RouterGuide]] = RouterGuide.registry

#: The shipped families' names, as constants (``RouterFamily.LOGIT_FC == "logit-fc"``).
RouterFamily = Enum(  # type: ignore[misc]
    "RouterFamily", {name.upper().replace("-", "_"): name for name in FAMILIES}, type=str
)


def as_family(family: str | Enum) -> str:
    """Parse a family name, with an error that lists the known ones.

    Parameters
    ----------
    family : str or RouterFamily
        E.g. ``"logit-fc"``.

    Returns
    -------
    str
        The registered name.
    """
    name = family.value if isinstance(family, Enum) else family
    if name not in FAMILIES:
        known = ", ".join(repr(f) for f in FAMILIES)
        raise ValueError(f"unknown router family {family!r}; known families: {known}")
    return str(name)


def family_of(family: str | Enum) -> type[RouterGuide]:
    """The guide class of a family (its ``model_cls`` and build settings come with it)."""
    return FAMILIES[as_family(family)]
