"""The score-function estimator: unbiased for dE[NLL]/dlog σ (finite differences), same loss."""

import statistics

import pytest
import torch

from tests.common import toy_batch, toy_net
from vmoer_ppl import bayesianize
from vmoer_ppl.infer.fused import fused_loss
from vmoer_ppl.infer.score_function import check_estimator, per_question_nll
from vmoer_ppl.infer.svi import SVIConfig, fit_svi

DRAWS = 600


def _setup():
    model, guide = bayesianize(toy_net(), family="logit-mf", prior=0.5, beta=1e-9)
    ids, mask, labels = toy_batch(B=4, T=5, seed=4)
    return model, guide, {"input_ids": ids, "attention_mask": mask, "labels": labels}


def _grads(model, guide, batch, estimator):
    """dLoss/dθ per draw, θ the scale head's bias of the first router (all its log σ at once)."""
    theta = guide.nets[0].scale.bias
    out = []
    for i in range(DRAWS):
        torch.manual_seed(i)
        guide.zero_grad()
        fused_loss(model, guide, estimator=estimator, **batch).backward()
        out.append(theta.grad.sum().item())
    return out


def _finite_difference(model, guide, batch, delta=0.3):
    theta = guide.nets[0].scale.bias
    diffs = []
    with torch.no_grad():
        for i in range(DRAWS):
            vals = []
            for sign in (1, -1):
                theta.add_(sign * delta)
                torch.manual_seed(i)  # common random numbers
                vals.append(fused_loss(model, guide, **batch).item())
                theta.sub_(sign * delta)
            diffs.append((vals[0] - vals[1]) / (2 * delta))
    return diffs


def test_score_function_matches_finite_differences_of_the_expected_nll():
    model, guide, batch = _setup()
    fd = _finite_difference(model, guide, batch)
    sf = _grads(model, guide, batch, "score-function")
    se = (statistics.variance(fd) / DRAWS + statistics.variance(sf) / DRAWS) ** 0.5
    assert abs(statistics.fmean(sf) - statistics.fmean(fd)) < 4 * se
    pathwise = statistics.fmean(_grads(model, guide, batch, "pathwise"))
    print(
        f"dE[NLL]/dlog σ: FD {statistics.fmean(fd):+.4f} ± {se:.4f}, SF "
        f"{statistics.fmean(sf):+.4f}, pathwise {pathwise:+.4f}"
    )


def test_the_loss_value_does_not_depend_on_the_estimator():
    model, guide, batch = _setup()
    vals = []
    for est in ("pathwise", "score-function"):
        torch.manual_seed(3)
        vals.append(fused_loss(model, guide, estimator=est, **batch).item())
    assert vals[0] == pytest.approx(vals[1], rel=1e-12)
    outputs = model.net(batch["input_ids"], attention_mask=batch["attention_mask"])
    per_q = per_question_nll(model, outputs, batch["labels"])
    assert per_q.shape == (4,)
    want = -torch.log_softmax(outputs, -1)[torch.arange(4), batch["labels"]].mean()
    assert per_q.sum().item() == pytest.approx(want.item(), rel=1e-10)


def test_svi_runs_with_it_and_names_bad_choices():
    model, guide, batch = _setup()
    res = fit_svi(
        model, guide, batch, SVIConfig(num_steps=2, estimator="score-function", progress=False)
    )
    assert len(res.losses) == 2
    with pytest.raises(ValueError, match="pathwise"):
        check_estimator("reinforce")
    with pytest.raises(ValueError, match="fused"):
        fit_svi(
            model,
            guide,
            batch,
            SVIConfig(num_steps=1, estimator="score-function", path="reference"),
        )
