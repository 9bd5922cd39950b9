"""The one vocabulary of answer scorers, shared by ``bayesianize``, saved adapters and the CLI.

``"letter"`` is the paper's format (options listed as A-D, the answer is the next token's
logits over the option letters); ``"cloze"`` scores each option as a continuation of the
question, with a length normalisation after a colon (``"cloze:sum"``, ``"cloze:token"``,
``"cloze:char"``; plain ``"cloze"`` is ``"cloze:char"``).
"""

from __future__ import annotations

from enum import Enum


class ClozeNorm(str, Enum):
    """Length normalisation of a continuation's log-probability."""

    SUM = "sum"
    """Total log-probability of the option's tokens."""
    TOKEN = "token"
    """Mean log-probability per token."""
    CHAR = "char"
    """Total log-probability divided by the option's length in characters (OLMES default)."""


class ScorerKind(str, Enum):
    """How the answer is read off the language model."""

    LETTER = "letter"
    """Next-token logits of the option letters (the paper's prompt)."""
    CLOZE = "cloze"
    """Each option's log-probability as a continuation."""


#: Names of earlier versions, read from saved adapters and run directories.
ALIASES = {"next-token": ScorerKind.LETTER.value}
NORMS = tuple(n.value for n in ClozeNorm)
#: Every current scorer name (the CLI's ``--scorer`` choices).
SCORER_NAMES = ("cloze", *(f"cloze:{n}" for n in NORMS), "letter")


def parse_scorer(name: str) -> tuple[ScorerKind, ClozeNorm | None]:
    """The kind and cloze normalisation of a scorer name.

    Parameters
    ----------
    name : str
        ``"letter"``, ``"cloze"`` or ``"cloze:sum|token|char"`` (``"next-token"``, the earlier
        name of ``"letter"``, is read too).

    Returns
    -------
    tuple
        ``(ScorerKind, ClozeNorm)``; the norm is None for the letter scorer.

    Raises
    ------
    ValueError
        For any other name, listing the valid ones.
    """
    kind, _, norm = ALIASES.get(name, name).partition(":")
    if kind == ScorerKind.LETTER.value and not norm:
        return ScorerKind.LETTER, None
    if kind == ScorerKind.CLOZE.value and norm in ("", *NORMS):
        return ScorerKind.CLOZE, ClozeNorm(norm or ClozeNorm.CHAR.value)
    raise ValueError(f"scorer {name!r}: use 'letter', 'cloze' or 'cloze:sum|token|char'")


def scorer_name(name: str) -> str:
    """The canonical spelling of a scorer name (``"next-token"`` -> ``"letter"``).

    Parameters
    ----------
    name : str
        Any name :func:`parse_scorer` reads.

    Returns
    -------
    str
        ``"letter"`` or ``"cloze:<norm>"``.
    """
    kind, norm = parse_scorer(name)
    return kind.value if norm is None else f"{kind.value}:{norm.value}"
