"""Every bad setting is refused before any work starts, naming the flag; divergence is named."""

import math

import pytest
import torch

from tests.common import toy_batch
from tests.pipeline.test_fit_cli import fit_args
from vmoer_ppl import bayesianize, fit_svi
from vmoer_ppl.cli import main
from vmoer_ppl.infer.svi import SVIConfig
from vmoer_ppl.nn import ToyMoEClassifier, ToyMoEConfig
from vmoer_ppl.pipeline.config import FitConfig
from vmoer_ppl.pipeline.validate import validate_config


@pytest.mark.parametrize(
    "flag, value, message",
    [
        ("--batch-size", "0", "--batch-size 0: must be an integer >= 1"),
        ("--shards", "100", "--shards 100 exceeds --batch-size"),
        ("--svi-steps", "-1", "--svi-steps -1: must be an integer >= 1"),
        ("--num-samples", "0", "--num-samples 0: must be an integer >= 1"),
        ("--lr", "inf", "--lr inf: must be a finite number > 0"),
        ("--beta", "nan", "--beta nan: must be a finite number >= 0"),
        ("--estimator", "reinforce", "--estimator 'reinforce': use one of"),
        ("--families", "logit-xx", "logit-xx"),
        ("--prior-scale", "relative:-1", "prior scale 'relative:-1'"),
        ("--layers", "0;1", "--layers: layers='0;1': use 'all', 'last:N' (N >= 1) or router"),
    ],
)
def test_a_bad_setting_is_refused_before_anything_is_written(
    setup, tmp_path, capsys, flag, value, message
):
    model, data = setup
    run = tmp_path / "run"
    assert main(fit_args(model, data, run, flag, value)) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not run.exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--n-boot", "0"], "--n-boot 0: must be an integer >= 1"),
        (["--stability-questions", "-1"], "--stability-questions -1: must be an integer >= 0"),
        (["--num-samples", "0"], "--num-samples 0: must be an integer >= 1"),
        (["--workers", "0"], "--workers 0: must be an integer >= 1"),
    ],
)
def test_bad_evaluation_settings_are_refused_before_loading(tmp_path, capsys, argv, message):
    assert main(["evaluate", str(tmp_path / "nowhere"), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "None" not in err  # only the flag at fault


def test_the_defaults_and_the_demo_recipe_validate():
    from vmoer_ppl.pipeline.demo import DEMO

    validate_config(FitConfig())
    validate_config(DEMO)


def test_a_diverging_fit_names_the_step_and_the_learning_rate():
    torch.manual_seed(0)
    model, guide = bayesianize(ToyMoEClassifier(ToyMoEConfig()), family="logit-mf")
    ids, mask, labels = toy_batch(B=8)
    data = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    cfg = SVIConfig(num_steps=3, batch_size=4, progress=False, lr=1e38)
    with pytest.raises(
        FloatingPointError, match=r"at step \d+; lower the learning rate \(--lr, now [0-9.e+]+\)"
    ):
        fit_svi(model, guide, data, cfg)
    assert all(math.isfinite(float(p.detach().abs().max())) for p in guide.parameters())
