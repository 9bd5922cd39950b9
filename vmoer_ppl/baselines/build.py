"""``make_baseline``: one call builds any baseline router on a network, like ``bayesianize``."""

from __future__ import annotations

from vmoer_ppl.baselines.finetuned import EnsembleGuide, SWAGGuide, finetune_routers
from vmoer_ppl.baselines.simple import MCDropoutGuide, TemperatureSamplingGuide

#: Baselines and whether they need training data.
BASELINES = {
    "mc-dropout": False,
    "temperature-sampling": False,
    "map": True,
    "ensemble": True,
    "swag": True,
}


def make_baseline(
    net,
    name: str,
    *,
    layers="last:5",
    data=None,
    steps: int = 100,
    lr: float = 1e-3,
    members: int = 5,
    seed: int = 0,
    **bayesianize_kwargs,
):
    """``(model, guide)`` of a baseline router in the given layers.

    Parameters
    ----------
    net : nn.Module
        The network (as for :func:`vmoer_ppl.bayesianize`).
    name : str
        ``"mc-dropout"`` (p = 0.05), ``"temperature-sampling"`` (T = 0.3), ``"map"`` (one
        fine-tuned router, deterministic: router adaptation without any uncertainty, the
        control that separates what a posterior adds from what tuning the routers adds),
        ``"ensemble"`` (M fine-tuned routers) or ``"swag"``.
    layers : str, int or sequence of int
        Routers to replace.
    data : dict of str to torch.Tensor, optional
        Training questions (MAP, ensemble and SWAG fine-tune the routers on them).
    steps, lr, members, seed : int, float, int, int
        Fine-tuning settings.
    **bayesianize_kwargs
        E.g. ``scorer``.

    Returns
    -------
    tuple
        ``(model, guide)`` for :func:`vmoer_ppl.predict`.
    """
    from vmoer_ppl.bayesianize import bayesianize

    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; known: {', '.join(BASELINES)}")
    if BASELINES[name] and data is None:
        raise ValueError(f"baseline {name!r} fine-tunes the routers: pass data=")
    model, _ = bayesianize(net, family="logit-mf", layers=layers, **bayesianize_kwargs)
    if name == "mc-dropout":
        return model, MCDropoutGuide(model)
    if name == "temperature-sampling":
        return model, TemperatureSamplingGuide(model)
    tune = dict(steps=steps, lr=lr)
    if name == "map":  # a one-member ensemble: every draw is the point estimate
        return model, EnsembleGuide(model, [finetune_routers(model, data, seed=seed, **tune)])
    if name == "ensemble":
        runs = [finetune_routers(model, data, seed=seed + m, **tune) for m in range(members)]
        return model, EnsembleGuide(model, runs)
    return model, SWAGGuide(model, finetune_routers(model, data, seed=seed, swag=True, **tune))
