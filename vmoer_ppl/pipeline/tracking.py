"""Experiment tracking through accelerate's trackers: ``vmoer fit --log-with tensorboard``.

Per SVI step the fit logs the loss, the answer NLL, the gradient norm, the learning rate and,
per Bayesian router, the KL per token, the mean and spread of log σ/s, mean |Δμ|/s and the
top-K overlap with the deterministic router; at each validation the validation NLL. Nothing is
hand-rolled beyond this callback: the trackers are accelerate's (TensorBoard writes event files
offline under ``<run>/logs``; W&B, MLflow and the others when the user picks and installs them).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from vmoer_ppl.infer.diagnostics import step_scalars

__all__ = ["TrackerLog", "check_trackers", "open_trackers", "step_scalars"]


def check_trackers(names: Sequence[str]) -> None:
    """Raise a clear error for an unknown tracker or one whose package is not installed.

    Raises
    ------
    ValueError
        Naming the tracker, the known ones, or the package to install.
    """
    from accelerate.tracking import LOGGER_TYPE_TO_CLASS
    from accelerate.utils import imports

    for name in names:
        if name not in LOGGER_TYPE_TO_CLASS:
            raise ValueError(f"--log-with {name!r}: use any of {sorted(LOGGER_TYPE_TO_CLASS)}")
        available = getattr(imports, f"is_{name}_available", None)
        if available is not None and not available():
            extra = " (pip install 'vmoer_ppl[tracking]')" if name == "tensorboard" else ""
            raise ValueError(f"--log-with {name}: the {name} package is not installed{extra}")


def open_trackers(names: Sequence[str], run_name: str, logging_dir: str | Path) -> list:
    """Accelerate trackers for one fit, writing under ``logging_dir`` where they write files."""
    from accelerate.tracking import LOGGER_TYPE_TO_CLASS

    trackers = []
    for name in names:
        cls = LOGGER_TYPE_TO_CLASS[name]
        if cls.requires_logging_directory:
            tracker = cls(run_name, logging_dir=str(logging_dir))
        else:
            tracker = cls(run_name)
        tracker.start()  # what Accelerator.init_trackers does
        trackers.append(tracker)
    return trackers


class TrackerLog:
    """``log(values, step)`` to every tracker; :meth:`finish` closes them.

    Parameters
    ----------
    trackers : list
        accelerate ``GeneralTracker`` instances.
    """

    def __init__(self, trackers: list) -> None:
        self.trackers = trackers

    def __call__(self, values: dict[str, float], step: int) -> None:
        """Log scalars at ``step``."""
        for tracker in self.trackers:
            tracker.log(values, step=step)

    def finish(self) -> None:
        """Flush and close every tracker."""
        for tracker in self.trackers:
            tracker.finish()
