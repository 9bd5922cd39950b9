"""The guides: the family registry they form, and where ``q`` starts."""

import math

import pyro.distributions as dist
import pytest
import torch
from torch.distributions import kl_divergence
from vmoer_ppl.guides import AmortisedLogitGuide, MeanFieldLogitGuide, RouterGuide
from vmoer_ppl.models.base import RouterModel

from tests.common import FAMILIES, toy_batch, toy_net
from vmoer_ppl import SVIConfig, bayesianize, fit_svi
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


def test_an_amortised_logit_family_is_its_head_widths_and_its_distribution():
    class Isotropic(AmortisedLogitGuide):  # one σ per token, shared by the experts
        family = "test-isotropic"

        def head_widths(self, site):
            return site.num_experts, 1

        def logits_dist(self, site, u, l_det):
            delta, raw, s = self.head(site, u, l_det)
            return dist.Normal(l_det + s * delta, s * raw.exp().expand_as(l_det)).to_event(1)

    try:
        model, guide = bayesianize(toy_net(), family="test-isotropic", prior=0.3)
        site = model.sites[0]
        assert [n.scale.out_features for n in guide.nets] == [1] * len(model.sites)
        assert guide.scale_at(site) == pytest.approx(0.3)  # q in the prior's units
        u = torch.randn(2, 3, site.hidden_size)
        q = guide.q_dists(site, u, u @ site.weight.T)["logits"]
        assert q.batch_shape == (2, 3) and q.event_shape == (site.num_experts,)
        ids, mask, labels = toy_batch()
        data = {"input_ids": ids, "attention_mask": mask, "labels": labels}
        loss = fit_svi(model, guide, data, SVIConfig(num_steps=2, batch_size=3, progress=False))
        assert all(math.isfinite(x) for x in loss.losses)
    finally:
        RouterGuide.registry.pop("test-isotropic")


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
