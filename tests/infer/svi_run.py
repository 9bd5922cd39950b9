"""A toy SVI run with checkpoints; run as a script it is the process the resume test kills."""

import sys
import time

import torch

from vmoer_ppl import bayesianize
from vmoer_ppl.infer.svi import SVIConfig, fit_svi
from vmoer_ppl.nn import ToyMoEClassifier, ToyMoEConfig

STEPS = 60


def run(checkpoint_dir, *, delay: float = 0.0, patience=None, callback=None):
    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = ToyMoEClassifier(ToyMoEConfig())
    model, guide = bayesianize(net, family="logit-fc")
    gen = torch.Generator().manual_seed(1)
    data = {
        "input_ids": torch.randint(32, (48, 6), generator=gen),
        "labels": torch.randint(4, (48,), generator=gen),
    }
    val = {
        "input_ids": torch.randint(32, (16, 6), generator=gen),
        "labels": torch.randint(4, (16,), generator=gen),
    }
    cfg = SVIConfig(
        num_steps=STEPS,
        batch_size=8,
        lr=3e-2,
        seed=3,
        progress=False,
        eval_every=10,
        patience=patience,
        val_samples=4,
        checkpoint_dir=checkpoint_dir,
        checkpoint_every=3,
    )

    def slow(step, loss):
        if callback is not None:
            callback(step, loss)
        time.sleep(delay)

    return fit_svi(model, guide, data, cfg, val_data=val, callback=slow)


if __name__ == "__main__":
    torch.set_default_dtype(torch.float64)  # as tests/conftest.py sets for the test process
    run(sys.argv[1], delay=float(sys.argv[2]))
