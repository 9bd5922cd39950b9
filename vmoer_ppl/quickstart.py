"""Ready-made tasks for notebooks: the embedded default, or a seconds-long smoke version.

Notebooks import everything from here and from the library; they hold no logic. With
``VMOER_SMOKE=1`` (set by the test suite) :func:`notebook_task` returns a toy MoE on a synthetic
task, so a notebook that breaks fails CI in seconds; otherwise the embedded MoE (built on first
use) on the demo's ID set, with the frozen-prefix cache, Bayesian routers in the last 5 layers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch

from vmoer_ppl.data.tensors import subset


@dataclass
class NotebookTask:
    """A network to make Bayesian and its data.

    Attributes
    ----------
    net : torch.nn.Module
        The pretrained network (frozen by ``bayesianize``).
    train, val, test : dict of str to torch.Tensor
        Encoded questions with ``labels`` `(N,)`.
    kwargs : dict
        Extra ``bayesianize`` arguments (``layers``, ``scorer``).
    steps : int
        SVI steps that suit the task's size.
    name : str
        A description for printing.
    """

    net: torch.nn.Module
    train: dict
    val: dict
    test: dict
    kwargs: dict = field(default_factory=dict)
    steps: int = 30
    name: str = ""


def smoke_mode() -> bool:
    """Whether ``VMOER_SMOKE`` asks for the tiny version."""
    return os.environ.get("VMOER_SMOKE", "0") not in ("", "0", "false")


def notebook_task(smoke: bool | None = None, *, n_test: int = 200) -> NotebookTask:
    """The notebooks' task (see the module docstring).

    Parameters
    ----------
    smoke : bool, optional
        Force the toy version (default: :func:`smoke_mode`).
    n_test : int
        Test questions of the embedded task.

    Returns
    -------
    NotebookTask
    """
    if smoke if smoke is not None else smoke_mode():
        from vmoer_ppl.data import make_counting_task
        from vmoer_ppl.nn import ToyMoEClassifier, ToyMoEConfig

        torch.manual_seed(0)
        data = make_counting_task(96, max_len=8, seed=0)
        split = [subset(data, range(a, b)) for a, b in ((0, 48), (48, 64), (64, 96))]
        net = ToyMoEClassifier(ToyMoEConfig())
        return NotebookTask(net, *split, kwargs={"layers": "all"}, steps=3, name="toy (smoke)")
    from vmoer_ppl.bayesianize import bayesianize
    from vmoer_ppl.pipeline.backbone import suffix_data
    from vmoer_ppl.pipeline.demo import demo_config
    from vmoer_ppl.pipeline.loading import load_model
    from vmoer_ppl.pipeline.run_data import encode_sets
    from vmoer_ppl.pipeline.run_dir import strip

    cfg = demo_config(n_test=n_test, ood=())
    net, tok, label = load_model(cfg)
    enc, _, id_label = encode_sets(cfg, tok)
    probe, _ = bayesianize(net, family="logit-mf", layers=cfg.layers, scorer="cloze")
    data = suffix_data(probe.net, enc, net)
    return NotebookTask(
        net,
        strip(data["train"]),
        strip(data["val"]),
        strip(data[f"id:{id_label}"]),
        kwargs={"layers": cfg.layers, "scorer": "cloze"},
        steps=cfg.svi.num_steps,
        name=f"{label} on {id_label}",
    )
