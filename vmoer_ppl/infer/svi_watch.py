"""What wraps the SVI step: progress, validation with early stopping, checkpoints, tracking.

:class:`Watch` is called before the first step, after every step and at the end; the step itself
(:meth:`vmoer_ppl.infer.svi.SVI.step`) knows nothing of it.
"""

from __future__ import annotations

from collections.abc import Callable

from tqdm.auto import tqdm

from vmoer_ppl.infer.checkpoint import save_state
from vmoer_ppl.infer.diagnostics import step_scalars
from vmoer_ppl.infer.sharding import world
from vmoer_ppl.infer.svi_config import SVIConfig, fingerprint
from vmoer_ppl.infer.svi_state import SVIState


class Watch:
    """Validation, checkpoints, progress bar and trackers around one fit.

    Parameters
    ----------
    cfg : SVIConfig
        ``eval_every``, ``checkpoint_dir``/``checkpoint_every`` and ``progress`` are read.
    n : int
        Training-set size (part of the checkpoint's fingerprint).
    state : SVIState
        The state being trained.
    validate : callable, optional
        ``() -> float`` validation metric (lower is better).
    track : callable, optional
        ``(scalars, step) -> None`` after every step and validation.
    callback : callable, optional
        ``(step, loss) -> None`` after every step.
    desc : str
        Progress-bar label.
    """

    def __init__(
        self,
        cfg: SVIConfig,
        n: int,
        state: SVIState,
        validate: Callable[[], float] | None = None,
        track: Callable[[dict, int], None] | None = None,
        callback: Callable[[int, float], None] | None = None,
        desc: str = "SVI",
    ) -> None:
        self.cfg, self.n, self.state = cfg, n, state
        self.validate, self.track, self.callback = validate, track, callback
        show = cfg.progress and world()[0] == 0
        self.bar = tqdm(total=cfg.num_steps, initial=state.step, desc=desc, disable=not show)

    def start(self) -> None:
        """Validate the initial guide (it competes too) when validating during training."""
        fresh = self.state.step == 0 and not self.state.stopper.history
        if self.validate is not None and self.cfg.eval_every and fresh:
            self.validation(0)

    def after_step(self, record: dict) -> None:
        """Callback, tracking, validation every ``eval_every`` steps, checkpoints."""
        step, cfg = self.state.step, self.cfg
        self.bar.update(1)
        if self.callback is not None:
            self.callback(step, record["loss"])
        if self.track is not None:
            self.track(step_scalars(record), step)
        validating = self.validate is not None and cfg.eval_every and step % cfg.eval_every == 0
        if validating:
            self.state.done = self.validation(step)
        if validating or (cfg.checkpoint_every and step % cfg.checkpoint_every == 0):
            self.checkpoint()

    def finish(self) -> None:
        """Validate the last step, restore the best guide, write the final checkpoint."""
        self.bar.close()
        stopper, step = self.state.stopper, self.state.step
        if self.validate is not None and (not stopper.history or stopper.history[-1][0] != step):
            self.validation(step)
        if stopper.best_state is not None:
            self.state.guide.load_state_dict(stopper.best_state)
        self.checkpoint(finished=True)

    def validation(self, at: int) -> bool:
        """Measure the validation metric at step ``at``; True when patience ran out."""
        assert self.validate is not None
        stopper = self.state.stopper
        done = stopper.update(at, self.validate(), self.state.guide)
        if self.track is not None:
            self.track({"val/nll": stopper.history[-1][1]}, at)
        self.bar.set_postfix(val=f"{stopper.history[-1][1]:.4f}", best=f"{stopper.best:.4f}")
        return done

    def checkpoint(self, finished: bool = False) -> None:
        """Save the whole training state (main process only)."""
        if self.cfg.checkpoint_dir and world()[0] == 0:
            state = self.state.state_dict(finished)
            state["fingerprint"] = fingerprint(self.cfg, self.n)
            save_state(self.cfg.checkpoint_dir, state)
