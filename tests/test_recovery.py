"""Layer (ii)/(iii): a linear-Gaussian router whose posterior is known in closed form.

Model: ``l_t ~ N(W u_t, s² I)``, ``y_t ~ N(A l_t, σ² I)``. Each token carries one of M fixed
inputs ``u_m`` and the answer ``y_m`` simulated once for it by calling the model, so the exact
posterior of a token's logits depends on ``m`` only:

    Λ = I/s² + AᵀA/σ²,   Σ = Λ⁻¹,   μ_m = Σ (W u_m / s² + Aᵀ y_m / σ²).

With β = 1 and the likelihood scaled like the KL (1/N_tokens), the full-covariance guide's
optimum is (μ_m, Σ), and the mean-field guide's is (μ_m, diag(1/Λ_ii)).
"""

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine
from torch import nn
from vmoer_ppl.models import Likelihood

from vmoer_ppl import SVIConfig, bayesianize, fit_svi, predict
from vmoer_ppl.nn import Router

D, E, N_OUT, M = 4, 3, 2, 3
SIGMA_Y, S = 0.5, 1.0


class LinearGaussianNet(nn.Module):
    """Token ids index M fixed router inputs; the output is the (sampled) routing logits."""

    def __init__(self):
        super().__init__()
        self.points = nn.Parameter(torch.rand(M, D) + 0.5)  # (M, D)
        self.router = Router(D, E, 1, "topk-softmax")

    def forward(self, input_ids, attention_mask=None):
        return self.router(self.points[input_ids]).logits  # (B, T, E)


class GaussianObs(Likelihood):
    def __init__(self, A):
        self.A = A  # (N_OUT, E)

    def forward(self, outputs, labels=None, plate=None):
        B, T, _ = outputs.shape
        with (
            plate or pyro.plate("batch", B, dim=-2),
            pyro.plate("obs_token", T, dim=-1),
            poutine.scale(scale=1.0 / (B * T)),
        ):
            mean = outputs @ self.A.T  # (B, T, N_OUT)
            return pyro.sample("obs", dist.Normal(mean, SIGMA_Y).to_event(1), obs=labels)


def _problem():
    torch.manual_seed(0)
    net = LinearGaussianNet()
    A = torch.randn(N_OUT, E)
    return net, A


def _exact(net, A, Y):
    W, U = net.router.weight.detach(), net.points.detach()
    prec = torch.eye(E) / S**2 + A.T @ A / SIGMA_Y**2
    cov = torch.linalg.inv(prec)
    mu = (U @ W.T / S**2 + Y @ A / SIGMA_Y**2) @ cov  # (M, E)
    return mu, cov, prec


@pytest.mark.parametrize("family", ["logit-fc", "logit-mf"])
def test_guide_recovers_linear_gaussian_posterior(family):
    net, A = _problem()
    model, guide = bayesianize(
        net, family, prior=S, beta=1.0, likelihood=GaussianObs(A), trunk_dim=16
    )
    # (iii) simulate the data by calling the model with labels=None
    ids = torch.arange(M).unsqueeze(0)  # (1, M)
    tr = poutine.trace(model).get_trace(ids)
    Y = tr.nodes["obs"]["value"][0].detach()  # (M, N_OUT)
    assert tr.nodes["router.logits"]["value"].shape == (1, M, E)
    ids = torch.randint(M, (64, 12))
    data = {"input_ids": ids, "labels": Y[ids]}
    fit_svi(model, guide, data, SVIConfig(num_steps=1500, batch_size=16, lr=0.02, progress=False))
    mu, cov, prec = _exact(net, A, Y)
    with torch.no_grad():
        u = net.points.unsqueeze(0)  # (1, M, D)
        q = guide.q_dists(model.sites[0], u, u @ net.router.weight.T)["logits"]
    torch.testing.assert_close(q.mean[0], mu, atol=0.05, rtol=0)
    want = cov if family == "logit-fc" else torch.diag(1 / torch.diagonal(prec))
    got = q.covariance_matrix[0] if family == "logit-fc" else torch.diag_embed(q.variance[0])
    torch.testing.assert_close(got, want.expand_as(got), atol=0.02, rtol=0)
    out = predict(model, guide, ids[:2])  # the predictive runs on this custom likelihood too
    assert out.routing["router"].probs.shape == (2, 12, E)
