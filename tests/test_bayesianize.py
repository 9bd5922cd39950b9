"""vmoer_ppl.bayesianize: which model and guide a family builds, and what stays frozen."""

import pytest
import torch

from tests.common import FAMILIES, toy_net
from vmoer_ppl import bayesianize
from vmoer_ppl.bayesianize import decoder_layer_index, network_of
from vmoer_ppl.families import RouterFamily, as_family, family_of
from vmoer_ppl.priors import GaussianPrior


@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_builds_its_registered_model_and_guide_and_only_the_guide_trains(family):
    net = toy_net()
    model, guide = bayesianize(net, family=family, layers="last:1")
    spec = family_of(family)
    assert type(guide) is spec and isinstance(model, spec.model_cls)
    assert not any(p.requires_grad for p in net.parameters())
    assert all(p.requires_grad for p in guide.parameters())
    assert model.spec["family"] == family and model.spec["num_routers"] == 2
    assert [s.layer for s in model.sites] == [len(network_of(net, None)[1]) - 1]


@pytest.mark.parametrize("family", FAMILIES)
def test_the_default_prior_is_the_familys_and_amortised_guides_start_in_its_units(family):
    model, guide = bayesianize(toy_net(), family=family)
    spec = family_of(family)
    assert isinstance(model.prior, GaussianPrior)
    assert model.prior.scale == spec.default_prior_scale
    if spec.amortised:
        assert guide.scales == {s.name: spec.default_prior_scale for s in model.sites}


def test_a_given_prior_scale_sets_the_guides_units():
    model, guide = bayesianize(toy_net(), family="logit-mf", prior=0.3)
    assert model.prior.scale == 0.3
    assert set(guide.scales.values()) == {0.3}


def test_family_names_parse_from_strings_and_constants():
    assert as_family("logit-fc") == as_family(RouterFamily.LOGIT_FC) == "logit-fc"
    with pytest.raises(ValueError, match="known families: .*'logit-mf'"):
        as_family("logit-xx")


def test_decoder_layer_index_reads_router_paths():
    assert decoder_layer_index("model.layers.27.mlp.gate") == 27
    with pytest.raises(ValueError, match="decoder-layer index"):
        decoder_layer_index("encoder.block.mlp.router")


def test_guides_compute_in_the_router_dtype():
    net = toy_net().to(torch.float64)
    _, guide = bayesianize(net, family="logit-fc")
    assert all(p.dtype == torch.float64 for p in guide.parameters())
