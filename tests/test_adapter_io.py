"""vmoer_ppl.adapter_io: the adapter format, and priors that serialise themselves."""

import json

import pyro.distributions as dist
import pytest
import torch

from tests.common import toy_net
from vmoer_ppl import bayesianize, from_pretrained
from vmoer_ppl.adapter_io import CONFIG_NAME, WEIGHTS_NAME, check_compatible, file_sha256
from vmoer_ppl.priors import (
    PRIOR_TYPES,
    CallablePrior,
    GaussianPrior,
    HierarchicalGaussianPrior,
    PerSitePrior,
    Prior,
    prior_from_config,
)
from vmoer_ppl.sites import find_routers


@pytest.mark.parametrize(
    "prior",
    [
        GaussianPrior(0.3),
        HierarchicalGaussianPrior(0.5, 0.2),
        PerSitePrior({"layers.1.moe.router": GaussianPrior(0.1)}, GaussianPrior(2.0)),
    ],
)
def test_shipped_priors_round_trip_through_json(prior):
    spec = json.loads(json.dumps(prior.to_config()))
    again = prior_from_config(spec)
    assert type(again) is type(prior) and again.to_config() == prior.to_config()


def test_a_custom_prior_is_recorded_by_repr_and_must_be_passed_again():
    custom = CallablePrior(lambda site, loc, hyper: dist.Laplace(loc, 1.0))
    for prior in (custom, PerSitePrior({"x": custom}, GaussianPrior(1.0))):
        spec = prior.to_config()
        assert spec["type"] == "custom"
        with pytest.raises(ValueError, match="pass prior="):
            prior_from_config(spec)


def test_a_user_prior_with_a_config_type_registers_itself():
    class LaplacePrior(Prior):
        config_type = "test-laplace"

        def __init__(self, scale):
            self.scale = scale

        def prior_dist(self, site, loc, hyper):
            return dist.Laplace(loc, self.scale)

        def to_config(self):
            return {"type": self.config_type, "scale": self.scale}

        @classmethod
        def from_config(cls, spec):
            return cls(spec["scale"])

    try:
        assert prior_from_config(LaplacePrior(0.7).to_config()).scale == 0.7
    finally:
        PRIOR_TYPES.pop("test-laplace")


def test_saved_config_records_each_router_and_the_weights_hash(tmp_path):
    model, guide = bayesianize(toy_net(), family="logit-mf", layers="last:1", prior=0.3)
    guide.save_pretrained(tmp_path)
    config = json.loads((tmp_path / CONFIG_NAME).read_text())
    assert config["family"] == "logit-mf" and config["prior"] == {"type": "gaussian", "scale": 0.3}
    assert [r["name"] for r in config["routers"]] == [s.name for s in model.sites]
    assert config["weights_sha256"] == file_sha256(tmp_path / WEIGHTS_NAME)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        guide.save_pretrained(tmp_path)


def test_check_compatible_names_every_difference(tmp_path):
    _, guide = bayesianize(toy_net(seed=0), family="logit-mf", layers="last:1")
    guide.save_pretrained(tmp_path)
    config = json.loads((tmp_path / CONFIG_NAME).read_text())
    other = toy_net(seed=1)
    with pytest.raises(ValueError, match="router weight W_r differs"):
        check_compatible(config, other, find_routers(other))
    net = toy_net(seed=0)
    check_compatible(config, net, find_routers(net))  # the network it was fitted to: no error
    config["routers"][0]["top_k"] += 1
    with pytest.raises(ValueError, match="top_k adapter"):
        check_compatible(config, net, find_routers(net))


def test_adapters_record_the_trunk_width_used_and_earlier_ones_load(tmp_path):
    net = toy_net()
    D = find_routers(net)[0].hidden_size
    model, guide = bayesianize(net, family="logit-lowrank", layers="last:1")
    assert model.spec["trunk_dim"] == D // 16  # the low-rank family's default
    guide.save_pretrained(tmp_path / "new")
    assert json.loads((tmp_path / "new" / CONFIG_NAME).read_text())["trunk_dim"] == D // 16
    # an adapter saved before widths were recorded: None meant D/4 for every family
    _, old = bayesianize(net, family="logit-lowrank", layers="last:1", trunk_dim=D // 4)
    old.model.spec["trunk_dim"] = None
    old.save_pretrained(tmp_path / "old")
    _, loaded = from_pretrained(net, tmp_path / "old")
    assert loaded.trunk_dim == D // 4
    for k, v in old.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v)
