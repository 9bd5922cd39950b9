"""The guides: the family registry they form, and where ``q`` starts."""

import pytest
import torch
from torch.distributions import kl_divergence
from vmoer_ppl.guides import MeanFieldLogitGuide, RouterGuide
from vmoer_ppl.models.base import RouterModel

from tests.common import FAMILIES, toy_net
from vmoer_ppl import bayesianize
from vmoer_ppl.families import FAMILIES as REGISTRY
from vmoer_ppl.families import as_family
from vmoer_ppl.infer import kl as _kl  # noqa: F401  (registers the MVN-Independent KL)

SHIPPED = {"logit-mf", "logit-fc", "logit-lowrank", "temperature", "temperature-expert", "weight"}


def test_the_shipped_families_register_by_subclassing():
    assert SHIPPED <= set(REGISTRY)
    for name, cls in REGISTRY.items():
        assert cls.family == name and issubclass(cls.model_cls, RouterModel)


def test_a_new_family_is_one_guide_class_away():
    class ScaledMeanField(MeanFieldLogitGuide):
        family = "test-scaled-mf"
        default_prior_scale = 0.25

    try:
        assert as_family("test-scaled-mf") == "test-scaled-mf"
        model, guide = bayesianize(toy_net(), family="test-scaled-mf")
        assert type(guide) is ScaledMeanField and model.prior.scale == 0.25
    finally:
        RouterGuide.registry.pop("test-scaled-mf")


def test_two_classes_cannot_claim_one_family():
    with pytest.raises(ValueError, match="already"):

        class Other(MeanFieldLogitGuide):
            family = "logit-mf"


@pytest.mark.parametrize("family", [f for f in FAMILIES if f.startswith("logit-")])
def test_logit_guides_start_at_the_prior_in_its_units(family):
    model, guide = bayesianize(toy_net(), family=family, prior=0.4)
    site = model.sites[-1]
    u = torch.randn(2, 3, site.hidden_size)
    l_det = u @ site.weight.T
    q = guide.q_dists(site, u, l_det)["logits"]
    p = model.prior_dists(site, u, l_det, {})["logits"]
    kl = kl_divergence(
        q, p
    ).detach()  # the heads start at N(0, 1e-3²) weights: q is the prior to 1e-6
    assert kl.shape == (2, 3) and float(kl.abs().max()) < 1e-3


@pytest.mark.parametrize("family", FAMILIES)
def test_point_values_have_the_latents_shapes(family):
    model, guide = bayesianize(toy_net(), family=family)
    site = model.sites[0]
    u = torch.randn(2, 3, site.hidden_size)
    q = guide.q_dists(site, u, u @ site.weight.T)
    for key, value in guide.point_values(q).items():
        assert value.shape == q[key].batch_shape + q[key].event_shape
