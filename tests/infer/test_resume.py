"""Early stopping, checkpoints, and resuming after an interruption with nothing lost."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.infer.svi_run import STEPS, run
from vmoer_ppl.infer.checkpoint import load_state, save_state, state_path
from vmoer_ppl.infer.early_stop import EarlyStopping
from vmoer_ppl.infer.svi import SVIConfig, batch_at

ROOT = Path(__file__).resolve().parents[2]


def assert_same(a, b):
    assert a.params.keys() == b.params.keys()
    for k in a.params:
        torch.testing.assert_close(a.params[k], b.params[k], rtol=0, atol=0)
    assert a.losses == b.losses
    assert a.val_history == b.val_history


def test_batches_cover_each_epoch_once_and_depend_only_on_seed_and_step():
    rows = torch.cat([batch_at(s, 10, 4, seed=5) for s in range(3)])
    assert sorted(rows.tolist()) == list(range(10))
    assert torch.equal(batch_at(4, 10, 4, seed=5), batch_at(4, 10, 4, seed=5))
    assert not torch.equal(batch_at(0, 10, 4, seed=5), batch_at(3, 10, 4, seed=5))


def test_early_stopping_restores_the_best_validation_state():
    guide = torch.nn.Linear(2, 1)
    stop = EarlyStopping(patience=2)
    values = [3.0, 2.0, 2.5, 2.6]
    states = []
    for step, v in enumerate(values):
        with torch.no_grad():
            guide.weight.fill_(step)
        states.append(guide.weight.clone())
        stopped = stop.update(step, v, guide)
    assert stopped and stop.best_step == 1 and stop.best == 2.0
    torch.testing.assert_close(stop.best_state["weight"], states[1])


def test_fit_with_validation_records_history_and_keeps_the_best(tmp_path):
    res = run(None, patience=2)
    steps = [s for s, _ in res.val_history]
    assert steps[0] == 0 and steps[1:] == list(range(10, 10 * len(steps), 10))
    best = min(res.val_history, key=lambda sv: sv[1])
    assert res.best_step == best[0]


def test_the_initial_guide_is_kept_when_training_only_hurts_validation():
    from vmoer_ppl import bayesianize, fit_svi
    from vmoer_ppl.nn import ToyMoEClassifier, ToyMoEConfig

    torch.manual_seed(0)
    model, guide = bayesianize(ToyMoEClassifier(ToyMoEConfig()), family="logit-mf")
    start = {k: v.clone() for k, v in guide.state_dict().items()}
    data = {"input_ids": torch.randint(32, (16, 6)), "labels": torch.randint(4, (16,))}
    worse = iter(range(100))  # every validation worse than the one before
    cfg = SVIConfig(num_steps=20, batch_size=8, progress=False, eval_every=5, patience=None)
    res = fit_svi(model, guide, data, cfg, validate=lambda: float(next(worse)))
    assert [s for s, _ in res.val_history] == [0, 5, 10, 15, 20] and res.best_step == 0
    for k, v in guide.state_dict().items():
        torch.testing.assert_close(v, start[k], rtol=0, atol=0)


def test_interrupted_run_resumes_to_the_uninterrupted_result(tmp_path):
    full = run(str(tmp_path / "full"))
    state = load_state(tmp_path / "full")
    assert state["done"] and state["step"] == STEPS

    def interrupt(step, loss):
        if step == 17:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(str(tmp_path / "cut"), callback=interrupt)
    assert load_state(tmp_path / "cut")["step"] == 15  # the last checkpoint before the cut
    resumed = run(str(tmp_path / "cut"))
    assert resumed.resumed_from == 15
    assert_same(full, resumed)


def test_killed_process_resumes_to_the_uninterrupted_result(tmp_path):
    ckpt = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.infer.svi_run", str(ckpt), "0.05"], cwd=ROOT, env=env
    )
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            if state_path(ckpt).exists() and load_state(ckpt)["step"] >= 12:
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    killed_at = load_state(ckpt)
    assert not killed_at["done"] and 12 <= killed_at["step"] < STEPS
    resumed = run(str(ckpt))
    assert_same(run(str(tmp_path / "full")), resumed)


def test_resuming_with_other_settings_is_refused(tmp_path):
    run(str(tmp_path / "a"))
    state = load_state(tmp_path / "a")
    state.pop("rng", None)
    state["fingerprint"]["lr"] = "0.5"
    save_state(tmp_path / "a", state)
    with pytest.raises(ValueError, match="other settings"):
        run(str(tmp_path / "a"))


def test_svi_config_defaults_do_not_validate_or_checkpoint():
    cfg = SVIConfig()
    assert cfg.checkpoint_dir is None and cfg.eval_every == 0
