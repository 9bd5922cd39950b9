"""Shared helpers and tiny fixtures for the tests."""

import torch

from vmoer_ppl import FAMILIES as REGISTRY
from vmoer_ppl import bayesianize
from vmoer_ppl.nn import ToyMoEClassifier, ToyMoEConfig

FAMILIES = list(REGISTRY)  # every registered family, new ones included


def assert_close(actual, expected, *, rtol=1e-7, atol=1e-9, msg=""):
    torch.testing.assert_close(
        torch.as_tensor(actual), torch.as_tensor(expected), rtol=rtol, atol=atol, msg=msg or None
    )


def toy_net(seed=0, **overrides):
    torch.manual_seed(seed)
    return ToyMoEClassifier(ToyMoEConfig(**overrides))


def toy_batch(B=3, T=6, V=32, C=4, pad=True, seed=1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(V, (B, T), generator=g)
    mask = torch.ones(B, T)
    if pad:
        mask[0, T - 2 :] = 0  # right padding in the first sequence
    return ids, mask, torch.randint(C, (B,), generator=g)


def toy_pair(family, seed=0, perturb=0.05, **kwargs):
    """A (model, guide) pair on a fresh toy net, guide moved off its initial point."""
    model, guide = bayesianize(toy_net(seed), family=family, **kwargs)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in guide.parameters():
            p.add_(perturb * torch.randn(p.shape, generator=g))
    return model, guide
