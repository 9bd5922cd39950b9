"""The key/value cache argument of a transformers model, under the name its version uses.

transformers 5.24 renamed the ``past_key_values`` argument of every model's ``forward`` to
``cache`` (the old name warns, and goes in 5.40); earlier 5.x releases know only
``past_key_values``. The name is read off the model's own signature (``deprecate_kwarg`` keeps
``__wrapped__``, so ``inspect.signature`` sees the real parameters), not off a version number,
so a model class that renames later or never is served too. Wrappers that forward ``**kwargs``
(peft's ``PeftModel``) are read through ``get_base_model()``.
"""

from __future__ import annotations

import functools
import inspect

from torch import nn

from vmoer_ppl.integrations.hf.wrappers import base_model

NAMES = ("cache", "past_key_values")  # newest first


@functools.cache
def _cache_name(forward) -> str:
    params = inspect.signature(forward).parameters
    for name in NAMES:
        if name in params:
            return name
    raise TypeError(
        f"{getattr(forward, '__qualname__', forward)} takes none of {NAMES}: "
        "key/value caching needs a transformers causal LM"
    )


def cache_kwargs(model: nn.Module, cache) -> dict:
    """``{name: cache}`` for ``model(**..., **cache_kwargs(model, cache))``.

    Parameters
    ----------
    model : nn.Module
        A transformers model (``*ForCausalLM`` or its base model), or a wrapper with
        ``get_base_model()`` (peft), whose inner model's signature is read.
    cache : transformers.Cache
        The cache object; the caller keeps it, and the model fills it in place.

    Returns
    -------
    dict
        One entry: ``"cache"`` on transformers ≥ 5.24, else ``"past_key_values"``.
    """
    return {_cache_name(type(base_model(model)).forward): cache}
