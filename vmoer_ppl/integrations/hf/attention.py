"""Grouped-query attention inside the SDPA kernel on the CPU.

transformers' ``sdpa`` attention repeats the key/value heads of a grouped-query model (SmolLM2: 3
key/value heads for 9 query heads) before calling ``scaled_dot_product_attention`` whenever an
attention mask is given, because CUDA's fused kernels would then fall back to the math kernel.
torch's CPU flash kernel takes the mask and ``enable_gqa`` together, so on the CPU the copies are
pure overhead (~9 % of a cloze forward of the embedded default: 40 of 450 ms per batch of 16). The
library's own switch, ``TRANSFORMERS_SDPA_FORCE_GQA``, is read at every attention call; it is set
only around eager forwards of a model on the CPU, and restored after.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch
from torch import nn

FORCE_GQA = "TRANSFORMERS_SDPA_FORCE_GQA"


@contextlib.contextmanager
def cpu_gqa(model: nn.Module) -> Iterator[None]:
    """Run grouped-query attention in the SDPA kernel while ``model`` (on the CPU) is called.

    Parameters
    ----------
    model : nn.Module
        A transformers model; nothing changes unless its first weight is on the CPU and the
        variable is unset (a user's own setting wins).
    """
    if torch.compiler.is_compiling():  # a traced forward cannot set the environment
        yield
        return
    first = next(model.parameters(), None)
    if first is None or first.device.type != "cpu" or FORCE_GQA in os.environ:
        yield
        return
    os.environ[FORCE_GQA] = "1"
    try:
        yield
    finally:
        os.environ.pop(FORCE_GQA, None)
