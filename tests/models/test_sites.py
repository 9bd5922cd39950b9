"""Structural tests: site names, shape snapshots, model/guide agreement, simulation."""

from pathlib import Path

import pytest
import torch
from pyro import poutine

from tests.common import FAMILIES, toy_batch, toy_pair
from vmoer_ppl import HierarchicalGaussianPrior

SNAPSHOTS = Path(__file__).parent / "snapshots"
LATENTS = {
    "logit-mf": ["logits"],
    "logit-fc": ["logits"],
    "logit-lowrank": ["logits"],
    "temperature": ["temperature", "gumbel"],
    "temperature-expert": ["temperature", "gumbel"],
    "weight": ["weight"],
}


def _shapes(family):
    model, _ = toy_pair(family, layers="last:1")
    ids, mask, y = toy_batch(B=2, T=3, pad=False)
    tr = poutine.trace(model).get_trace(ids, mask, y)
    tr.compute_log_prob()
    return tr.format_shapes()


@pytest.mark.parametrize("family", FAMILIES)
def test_trace_shapes_snapshot(family):
    want = (SNAPSHOTS / f"{family}.txt").read_text()
    assert _shapes(family) == want.rstrip("\n")


def _latents(tr):
    skip = ("obs", "batch", "token")
    return [n for n, s in tr.nodes.items() if s["type"] == "sample" and n not in skip]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("prior", [None, HierarchicalGaussianPrior()], ids=["gaussian", "hier"])
def test_model_and_guide_have_the_same_latent_sites(family, prior):
    model, guide = toy_pair(family, prior=prior)
    ids, mask, y = toy_batch()
    m = poutine.trace(model).get_trace(ids, mask, y)
    g = poutine.trace(guide).get_trace(ids, mask, y)
    assert _latents(m) == _latents(g)  # same sites in the same order (mean-field check)
    keys = LATENTS[family] + (["prior_scale"] if prior else [])
    routers = ["layers.0.moe.router", "layers.1.moe.router"]
    assert set(_latents(m)) == {f"{r}.{k}" for r in routers for k in keys}
    assert model.site_names() == set(_latents(m))


@pytest.mark.parametrize("family", FAMILIES)
def test_calling_the_model_without_labels_simulates_answers(family):
    model, _ = toy_pair(family)
    ids, mask, _ = toy_batch()
    y = model(ids, mask)
    assert y.shape == (3,) and y.dtype == torch.long and ((0 <= y) & (y < 4)).all()


def test_padding_is_masked_out_of_the_latent_sites():
    model, _ = toy_pair("logit-mf", layers="last:1")
    ids, mask, y = toy_batch()
    tr = poutine.trace(model).get_trace(ids, mask, y)
    site = tr.nodes["layers.1.moe.router.logits"]
    assert torch.equal(site["mask"], mask.bool())
    assert site["scale"] == pytest.approx(0.01 / mask.sum().item())
