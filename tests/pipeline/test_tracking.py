"""`vmoer fit --log-with tensorboard`: per-step scalars reach accelerate's TensorBoard tracker."""

# ruff: noqa: F811 - `setup` is the shared fixture of test_fit_cli

import json

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.pipeline.test_fit_cli import fit_args, setup  # noqa: F401 - the fixture
from vmoer_ppl.cli import main


def test_fit_logs_per_step_curves_to_tensorboard(setup, tmp_path):
    model, data = setup
    run = tmp_path / "run"
    extra = ["--families", "logit-fc", "--baselines", "--log-with", "tensorboard"]
    assert main(fit_args(model, data, run, *extra)) == 0
    fit = json.loads((run / "fit.json").read_text())["families"]["logit-fc"]
    events = EventAccumulator(str(next((run / "logs").rglob("events.out.tfevents.*")).parent))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    steps = len(fit["losses"])
    loss = [e.value for e in events.Scalars("train/loss")]
    assert len(loss) == steps and loss == pytest.approx(fit["losses"], rel=1e-6)
    routers = fit["diagnostics"][0]["routers"]
    for key in ("kl", "log_sigma_mean", "log_sigma_std", "dmu_over_s", "overlap"):
        assert {f"{key}/{r}" for r in routers} <= tags
    assert {"train/nll", "train/grad_norm", "train/lr"} <= tags
    val = [[e.step, pytest.approx(e.value)] for e in events.Scalars("val/nll")]
    assert val == [list(h) for h in fit["val_history"]]  # every validation, the initial one too


def test_unknown_tracker_is_refused_before_any_work(setup, tmp_path, capsys):
    model, data = setup
    assert main(fit_args(model, data, tmp_path / "r", "--log-with", "notebook")) == 2
    assert "--log-with 'notebook': use any of" in capsys.readouterr().err
