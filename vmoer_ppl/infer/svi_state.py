"""The training state of an SVI fit: everything that changes from one step to the next.

As NumPyro's ``SVIState``: the optimiser, the schedule, the early-stopping tracker, the step
counter and the histories, with the guide whose parameters the optimiser updates. A checkpoint is
:meth:`SVIState.state_dict` plus the settings' fingerprint (:mod:`vmoer_ppl.infer.checkpoint`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch.optim.lr_scheduler import LambdaLR

from vmoer_ppl.infer.early_stop import EarlyStopping


@dataclass
class SVIState:
    """One fit's mutable state.

    Attributes
    ----------
    guide : nn.Module
        The guide being trained.
    optim : torch.optim.Optimizer
        Over the guide's parameters.
    sched : LambdaLR
        The learning-rate schedule.
    stopper : EarlyStopping
        Best validation so far and the patience count.
    step : int
        Optimiser steps taken.
    done : bool
        Early stopping fired (or a finished run was loaded).
    losses : list of float
        Loss per step.
    diagnostics : list of dict
        Per-step router statistics (fused path).
    resumed_from : int or None
        Step at which a checkpoint was picked up.
    """

    guide: torch.nn.Module
    optim: torch.optim.Optimizer
    sched: LambdaLR
    stopper: EarlyStopping
    step: int = 0
    done: bool = False
    losses: list[float] = field(default_factory=list)
    diagnostics: list[dict] = field(default_factory=list)
    resumed_from: int | None = None

    @property
    def lr(self) -> float:
        """The learning rate of the next update."""
        return float(self.optim.param_groups[0]["lr"])

    def state_dict(self, finished: bool = False) -> dict:
        """Everything a restart needs (tensors and plain data; no code)."""
        return {
            "guide": self.guide.state_dict(),
            "optim": self.optim.state_dict(),
            "sched": self.sched.state_dict(),
            "stopper": self.stopper.state_dict(),
            "losses": self.losses,
            "diagnostics": self.diagnostics,
            "step": self.step,
            "done": finished,
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue from :meth:`state_dict` (a saved checkpoint)."""
        self.guide.load_state_dict(state["guide"])
        self.optim.load_state_dict(state["optim"])
        self.sched.load_state_dict(state["sched"])
        self.stopper.load_state_dict(state["stopper"])
        self.losses, self.step, self.done = state["losses"], state["step"], state["done"]
        self.diagnostics = state.get("diagnostics", [])
        self.resumed_from = state["step"]
