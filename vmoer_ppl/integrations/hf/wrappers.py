"""The transformers model inside a wrapper such as peft's ``PeftModel``."""

from __future__ import annotations

from torch import nn


def base_model(model: nn.Module) -> nn.Module:
    """``model.get_base_model()`` where the wrapper has it (peft), else ``model`` itself.

    Parameters
    ----------
    model : nn.Module
        A transformers model, or a wrapper that forwards ``**kwargs`` to one.

    Returns
    -------
    nn.Module
        The transformers model whose ``forward`` signature and ``.model.layers`` are real.
    """
    inner = getattr(model, "get_base_model", None)
    return inner() if callable(inner) else model
