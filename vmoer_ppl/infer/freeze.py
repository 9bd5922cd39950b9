"""Assert that SVI trains guide parameters and nothing else."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


def freeze(net: nn.Module) -> nn.Module:
    """Turn off gradients of every pretrained parameter; returns ``net``."""
    return net.requires_grad_(False)


def check_only_guide_trains(
    net: nn.Module, guide: nn.Module, trainable: Iterable[torch.Tensor]
) -> None:
    """Raise unless the pretrained network is frozen and ``trainable`` are guide parameters.

    Parameters
    ----------
    net : nn.Module
        The pretrained network.
    guide : nn.Module
        The guide.
    trainable : iterable of torch.Tensor
        The tensors handed to the optimiser.
    """
    hot = [n for n, p in net.named_parameters() if p.requires_grad]
    if hot:
        raise RuntimeError(
            f"pretrained parameters require grad ({hot[:3]}{'...' if len(hot) > 3 else ''}); "
            "call vmoer_ppl.infer.freeze(net) or build the model with vmoer_ppl.bayesianize"
        )
    guide_ids = {id(p) for p in guide.parameters()}
    net_ids = {id(p) for p in net.parameters()}
    for p in trainable:
        if id(p) in net_ids or id(p) not in guide_ids:
            raise RuntimeError("the optimiser would train a tensor that is not a guide parameter")


def check_no_active_checkpointing(net: nn.Module) -> None:
    """Refuse activation checkpointing that would recompute routing without the Bayesian router.

    transformers checkpoints a decoder layer only in training mode; the recomputation in the
    backward pass would run the router with no routing function installed and give silently
    wrong gradients. :func:`vmoer_ppl.bayesianize` puts the frozen backbone in eval mode, where
    checkpointing is inactive.
    """
    if any(getattr(m, "gradient_checkpointing", False) and m.training for m in net.modules()):
        raise RuntimeError(
            "activation checkpointing is active (model in training mode): its backward "
            "recomputation would bypass the Bayesian routers; call model.eval() (the frozen "
            "backbone needs no training mode) or disable checkpointing"
        )
