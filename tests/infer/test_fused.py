"""The fused single-pass ELBO equals Pyro's TraceMeanField_ELBO in value and every gradient."""

import pyro
import pytest
import torch
from pyro.infer import TraceMeanField_ELBO

from tests.common import FAMILIES, toy_batch, toy_pair
from vmoer_ppl import HierarchicalGaussianPrior
from vmoer_ppl.infer import fused_loss


def _loss_and_grads(fn, guide):
    params = list(guide.parameters())
    loss = fn()
    return loss.detach(), torch.autograd.grad(loss, params)


@pytest.mark.parametrize("hierarchical", [False, True], ids=["gaussian", "hierarchical"])
@pytest.mark.parametrize("family", FAMILIES)
def test_fused_equals_reference_elbo(family, hierarchical):
    prior = HierarchicalGaussianPrior() if hierarchical else None
    model, guide = toy_pair(family, prior=prior, beta=0.3, num_data=20)
    ids, mask, y = toy_batch()
    elbo = TraceMeanField_ELBO(max_plate_nesting=2)
    pyro.set_rng_seed(7)
    ref, g_ref = _loss_and_grads(
        lambda: elbo.differentiable_loss(model, guide, ids, mask, y), guide
    )
    pyro.set_rng_seed(7)
    fus, g_fus = _loss_and_grads(lambda: fused_loss(model, guide, ids, mask, y), guide)
    assert abs(fus - ref) <= 1e-6 * abs(ref)
    for a, b in zip(g_ref, g_fus, strict=True):
        assert (a - b).abs().max() <= 1e-6 * a.abs().max().clamp_min(1e-12)
    assert any(g.abs().max() > 0 for g in g_fus)  # the comparison is not vacuous


def test_fused_needs_labels():
    model, guide = toy_pair("logit-mf")
    ids, mask, _ = toy_batch()
    with pytest.raises(ValueError, match="needs labels"):
        fused_loss(model, guide, ids, mask)
