import hashlib
import warnings

import pyro
import pytest
import torch

from tests.common import FAMILIES, toy_batch, toy_net, toy_pair
from vmoer_ppl import SVIConfig, bayesianize, fit_svi
from vmoer_ppl.infer import check_only_guide_trains


def _digest(module):
    return {
        n: hashlib.sha256(p.detach().numpy().tobytes()).hexdigest()
        for n, p in module.state_dict().items()
    }


def _data(n=12):
    ids, mask, y = toy_batch(B=n)
    return {"input_ids": ids, "attention_mask": mask, "labels": y}


@pytest.mark.parametrize("path", ["reference", "fused"])
@pytest.mark.parametrize("family", FAMILIES)
def test_one_svi_step_trains_the_guide_and_nothing_else(family, path):
    model, guide = toy_pair(family, perturb=0.0)
    before_net, before_guide = _digest(model.net), _digest(guide)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = fit_svi(
            model, guide, _data(), SVIConfig(num_steps=1, batch_size=4, path=path, progress=False)
        )
    assert len(res.losses) == 1 and torch.isfinite(torch.tensor(res.losses)).all()
    assert _digest(model.net) == before_net  # every pretrained tensor unchanged
    assert _digest(guide) != before_guide
    assert all(not p.requires_grad for p in model.net.parameters())
    assert len(pyro.get_param_store()) == 0


def test_training_lowers_the_loss_on_the_toy_task():
    model, guide = bayesianize(toy_net(), family="logit-mf", beta=0.01)
    data = _data(48)
    res = fit_svi(
        model, guide, data, SVIConfig(num_steps=60, batch_size=48, lr=0.05, progress=False)
    )
    assert sum(res.losses[-10:]) < sum(res.losses[:10])


def test_unfrozen_network_is_refused_with_the_fix():
    model, guide = toy_pair("logit-mf")
    model.net.layers[0].mix.weight.requires_grad_(True)
    with pytest.raises(RuntimeError, match="vmoer_ppl.infer.freeze"):
        fit_svi(model, guide, _data(), SVIConfig(num_steps=1, progress=False))


def test_optimiser_may_only_see_guide_parameters():
    model, guide = toy_pair("logit-mf")
    with pytest.raises(RuntimeError, match="not a guide parameter"):
        check_only_guide_trains(model.net, guide, [torch.nn.Parameter(torch.zeros(1))])


def test_bad_data_is_refused():
    model, guide = toy_pair("logit-mf")
    with pytest.raises(ValueError, match="data needs 'labels' and the network's inputs"):
        fit_svi(model, guide, {"input_ids": torch.zeros(2, 3, dtype=torch.long)})
    bad = _data()
    bad["labels"] = bad["labels"][:3]
    with pytest.raises(ValueError, match="mismatched"):
        fit_svi(model, guide, bad)


def test_same_seed_same_result():
    runs = []
    for _ in range(2):
        model, guide = toy_pair("logit-fc")
        runs.append(
            fit_svi(
                model, guide, _data(), SVIConfig(num_steps=3, batch_size=4, progress=False)
            ).losses
        )
    assert runs[0] == runs[1]
