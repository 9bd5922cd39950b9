"""Cached constant tensors (index maps, quadrature rules) that ``torch.compile`` can still trace.

Dynamo does not trace through a ``functools.lru_cache`` wrapper (it warns and calls the wrapped
function, and warnings are errors in this project's tests); :func:`cached_outside_compile` keeps
the cache for eager calls and hands dynamo the plain function, which it folds into the graph.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

import torch

F = TypeVar("F", bound=Callable)


def cached_outside_compile(maxsize: int) -> Callable[[F], F]:
    """Decorator: an ``lru_cache`` of ``maxsize`` entries for eager calls, none under compile.

    Parameters
    ----------
    maxsize : int
        Entries kept (keys are the positional arguments; they must be hashable).

    Returns
    -------
    callable
        The decorator. The cached results are shared: callers must not modify them in place.
    """

    def decorate(fn: F) -> F:
        cached = functools.lru_cache(maxsize=maxsize)(fn)

        @functools.wraps(fn)
        def call(*args):
            return fn(*args) if torch.compiler.is_compiling() else cached(*args)

        return call  # type: ignore[return-value]

    return decorate
