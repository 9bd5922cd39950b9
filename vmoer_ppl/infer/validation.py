"""Switching off the argument checks of distributions where they cost more than they protect.

Pyro and torch validate every distribution's arguments on construction (``loc`` finite, a scale
positive, a Cholesky factor lower-triangular with a positive diagonal): data-dependent reductions
over every token's parameters. A trained guide's outputs satisfy them by construction (scales
through ``exp``/``softplus``, factors filled below the diagonal), and on the prediction path the
checks were ~40 % of a Bayesian router's time on the embedded model. :func:`no_validation` turns
them off for a block; under ``torch.compile`` they would also break the graph.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pyro
from torch.distributions import Distribution


@contextlib.contextmanager
def no_validation() -> Iterator[None]:
    """Turn off Pyro's and torch's distribution argument checks (restored on exit)."""
    before = Distribution._validate_args
    Distribution.set_default_validate_args(False)
    try:
        with pyro.validation_enabled(False):
            yield
    finally:
        Distribution.set_default_validate_args(before)
