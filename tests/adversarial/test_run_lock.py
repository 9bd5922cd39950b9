"""One process per run directory; a resume only continues the very same fit."""

import os

import pytest
import torch

from tests.common import toy_batch
from vmoer_ppl import bayesianize, fit_svi
from vmoer_ppl.infer.svi import SVIConfig
from vmoer_ppl.nn import ToyMoEClassifier, ToyMoEConfig
from vmoer_ppl.pipeline.run_eval import evaluate_run
from vmoer_ppl.safe_files import LOCK_FILE, RunInUseError, run_lock


def test_a_second_process_is_told_who_holds_the_run(tmp_path):
    run = tmp_path / "run"
    with run_lock(run, "fit", create=True):
        with pytest.raises(RunInUseError, match=rf"process {os.getpid()} \(vmoer fit\)"):
            with run_lock(run, "evaluate"):
                pass
        with pytest.raises(RunInUseError, match="in use by"):
            evaluate_run(run)
    with run_lock(run, "evaluate"):  # released when its holder is done
        pass


def test_the_lock_of_a_dead_process_is_taken_over(tmp_path):
    (tmp_path / LOCK_FILE).write_text("process 999999 (vmoer fit)")
    with run_lock(tmp_path, "evaluate"):
        assert "vmoer evaluate" in (tmp_path / LOCK_FILE).read_text()


def test_evaluating_a_missing_directory_creates_nothing(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        evaluate_run(tmp_path / "nowhere")
    assert not (tmp_path / "nowhere").exists()


def fit(ckpt, context, steps):
    torch.manual_seed(0)
    model, guide = bayesianize(ToyMoEClassifier(ToyMoEConfig()), family="logit-mf")
    ids, mask, labels = toy_batch(B=8)
    data = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    cfg = SVIConfig(
        num_steps=steps, batch_size=4, progress=False, checkpoint_dir=str(ckpt), context=context
    )
    return fit_svi(model, guide, data, cfg)


def test_a_resume_after_the_model_or_data_changed_is_refused(tmp_path):
    fit(tmp_path, {"model": "aaaa", "data": "1111", "beta": 0.01}, steps=3)
    for changed in ({"model": "bbbb"}, {"data": "2222"}, {"beta": 0.5}):
        context = {"model": "aaaa", "data": "1111", "beta": 0.01, **changed}
        key = next(iter(changed))
        with pytest.raises(ValueError, match=rf"other settings.*context\.{key}"):
            fit(tmp_path, context, steps=3)
