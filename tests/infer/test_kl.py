import pyro.distributions as dist
import pytest
import torch
from torch.distributions import MultivariateNormal, Normal, kl_divergence
from vmoer_ppl.models.temperature_router import log_space

from vmoer_ppl.infer import kl_full_cov, kl_mean_field
from vmoer_ppl.nn.amortised import fill_tril

B, E = 7, 5


@pytest.mark.parametrize("s", [1.0, 0.3])
def test_mean_field_kl_matches_torch(s):
    loc, delta, sigma = torch.randn(B, E), torch.randn(B, E), torch.rand(B, E) + 0.1
    q = Normal(loc + delta, sigma)
    p = Normal(loc, torch.full_like(loc, s))
    torch.testing.assert_close(kl_mean_field(delta, sigma, s), kl_divergence(q, p).sum(-1))


@pytest.mark.parametrize("s", [1.0, 2.5])
def test_full_cov_kl_matches_torch_mvn(s):
    loc, delta = torch.randn(B, E), torch.randn(B, E)
    L = fill_tril(0.3 * torch.randn(B, E * (E + 1) // 2), E)
    q = MultivariateNormal(loc + delta, scale_tril=L)
    p = MultivariateNormal(loc, scale_tril=s * torch.eye(E).expand(B, E, E))
    torch.testing.assert_close(kl_full_cov(delta, L, s), kl_divergence(q, p))


def test_registered_mvn_vs_isotropic_normal_prior_is_the_closed_form():
    loc, delta = torch.randn(B, E), torch.randn(B, E)
    L = fill_tril(0.3 * torch.randn(B, E * (E + 1) // 2), E)
    q = dist.MultivariateNormal(loc + delta, scale_tril=L)
    p_iso = dist.Normal(loc, 0.7 * torch.ones(B, E)).to_event(1)
    p_diag = dist.Normal(loc, torch.rand(B, E) + 0.5).to_event(1)
    for p in (p_iso, p_diag):
        mvn = MultivariateNormal(p.base_dist.loc, scale_tril=torch.diag_embed(p.base_dist.scale))
        torch.testing.assert_close(kl_divergence(q, p), kl_divergence(q, mvn))


def test_log_normal_temperature_kl_equals_gaussian_kl_in_log_space():
    q0, p0 = (
        dist.Normal(torch.randn(B), torch.rand(B) + 0.2),
        dist.Normal(torch.zeros(B), 0.5 * torch.ones(B)),
    )
    torch.testing.assert_close(kl_divergence(log_space(q0), log_space(p0)), kl_divergence(q0, p0))


def test_gumbel_selection_noise_has_zero_kl():
    g = dist.Gumbel(torch.zeros(B, E), torch.ones(B, E)).to_event(1)
    assert kl_divergence(g, g).abs().max() < 1e-12


def test_low_rank_kl_equals_the_dense_gaussian_kl():
    from torch.distributions import LowRankMultivariateNormal, MultivariateNormal

    g = torch.Generator().manual_seed(0)
    E, r = 6, 2
    loc, factor = torch.randn(3, 5, E, generator=g), torch.randn(3, 5, E, r, generator=g)
    diag = torch.rand(3, 5, E, generator=g) + 0.1
    q = LowRankMultivariateNormal(loc, factor, diag)
    p_loc, p_scale = torch.randn(3, 5, E, generator=g), torch.rand(3, 5, E, generator=g) + 0.5
    p = dist.Independent(dist.Normal(p_loc, p_scale), 1)
    dense_q = MultivariateNormal(loc, covariance_matrix=q.covariance_matrix)
    dense_p = MultivariateNormal(p_loc, scale_tril=torch.diag_embed(p_scale))
    torch.testing.assert_close(kl_divergence(q, p), kl_divergence(dense_q, dense_p))
