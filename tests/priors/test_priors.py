import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import TraceMeanField_ELBO

from tests.common import toy_batch, toy_net
from vmoer_ppl import GaussianPrior, HierarchicalGaussianPrior, SVIConfig, bayesianize, fit_svi
from vmoer_ppl.infer import fused_loss
from vmoer_ppl.priors import CallablePrior, PerSitePrior, Prior, as_prior


def test_gaussian_prior_is_centred_on_the_location():
    loc = torch.randn(2, 3, 4)
    d = GaussianPrior(0.5).prior_dist(None, loc, {})
    assert torch.equal(d.mean, loc) and torch.allclose(d.stddev, torch.full_like(loc, 0.5))


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_non_positive_prior_scale_is_refused(bad):
    with pytest.raises(ValueError, match="prior scale must be finite and > 0"):
        GaussianPrior(bad)
    with pytest.raises(ValueError, match="must be finite and > 0"):
        HierarchicalGaussianPrior(scale=bad)


def test_shorthands():
    default = GaussianPrior(1.0)
    assert as_prior(None, default) is default
    assert as_prior(0.3, default).scale == 0.3
    per_site = as_prior({"layers.1.moe.router": 2.0}, default)
    assert isinstance(per_site, PerSitePrior)
    assert isinstance(
        as_prior(lambda site, loc, hyper: dist.Normal(loc, 1.0), default), CallablePrior
    )
    with pytest.raises(TypeError, match="pass a Prior"):
        as_prior("wide", default)


def test_hierarchical_prior_has_one_scale_per_layer():
    model, guide = bayesianize(toy_net(), family="logit-mf", prior=HierarchicalGaussianPrior())
    assert {
        "layers.0.moe.router.prior_scale",
        "layers.1.moe.router.prior_scale",
    } <= model.site_names()
    assert len(list(guide.hyper.parameters())) == 4  # loc and log-scale per layer


def test_a_user_prior_in_one_short_cell_trains_without_library_changes():
    # --- the notebook cell (at most 15 lines) -------------------------------------------
    class StudentTPrior(Prior):
        """Heavy-tailed logits: l ~ StudentT(df, l_det, scale)."""

        def __init__(self, df=3.0, scale=1.0):
            self.df, self.scale = df, scale

        def prior_dist(self, site, loc, hyper):
            return dist.StudentT(self.df, loc, self.scale * torch.ones_like(loc))

    model, guide = bayesianize(toy_net(), family="logit-mf", prior=StudentTPrior())
    ids, mask, y = toy_batch(B=12)
    res = fit_svi(
        model,
        guide,
        {"input_ids": ids, "attention_mask": mask, "labels": y},
        SVIConfig(num_steps=5, batch_size=4, progress=False),
    )
    # -------------------------------------------------------------------------------------
    assert len(res.losses) == 5 and all(torch.isfinite(torch.tensor(res.losses)))
    # No closed-form KL(Normal || StudentT): both paths fall back to the same MC estimate.
    pyro.set_rng_seed(3)
    ref = TraceMeanField_ELBO(max_plate_nesting=2).differentiable_loss(model, guide, ids, mask, y)
    pyro.set_rng_seed(3)
    torch.testing.assert_close(fused_loss(model, guide, ids, mask, y), ref)
