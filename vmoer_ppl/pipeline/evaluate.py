"""Batched evaluation of a scorer or a Bayesian router model on one encoded set."""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from vmoer_ppl.data.tensors import batches, inputs_of, length_order, n_batches, unsort
from vmoer_ppl.evaluation.bootstrap import bootstrap_ci
from vmoer_ppl.evaluation.calibration import adaptive_ece, brier
from vmoer_ppl.evaluation.detection import auprc, aurc, fpr_at_tpr
from vmoer_ppl.evaluation.metrics import accuracy, auroc, calibration_errors, nll
from vmoer_ppl.infer.predictive import predict
from vmoer_ppl.nn.mc import entropy


@torch.no_grad()
def deterministic_outputs(
    head, data, batch_size: int = 16, desc: str = "deterministic"
) -> dict[str, torch.Tensor]:
    """Answer probabilities `(N, C)` and entropy `(N,)` of the untouched (deterministic) model."""
    inputs, order = inputs_of(data), length_order(data)
    todo = tqdm(batches(inputs, batch_size, order), total=n_batches(data, batch_size), desc=desc)
    probs = torch.cat([torch.softmax(head(**b), -1) for b in todo])
    return with_answer_scores({"probs": unsort(probs, order)})


def bayesian_outputs(
    model, guide, data, *, num_samples: int = 35, batch_size: int = 16, mode="mc", desc="MC"
):
    """Answer probabilities and routing signals (at the last prompt token) with Bayesian routers."""
    keys = ("probs", "routing_entropy", "mutual_information", "ilv")
    out, order = {k: [] for k in keys}, length_order(data)
    todo = batches(data, batch_size, order)
    for b in tqdm(todo, total=n_batches(data, batch_size), desc=desc):
        p = predict(model, guide, mode=mode, num_samples=num_samples, **b)
        for k in keys:
            out[k].append(getattr(p, k))
    return with_answer_scores({k: unsort(torch.cat(v), order) for k, v in out.items()})


def with_answer_scores(out: dict) -> dict:
    """Add the answer-level OOD scores: entropy and ``1 - max p`` (higher = more OOD)."""
    out["answer_entropy"] = entropy(out["probs"])
    out["max_prob"] = 1 - out["probs"].max(-1).values
    return out


def id_metrics(out, labels, *, n_boot: int = 0) -> dict[str, float]:
    """Accuracy, NLL, ECE, MCE, adaptive ECE, Brier and AURC; with ``n_boot``, 95% CIs too.

    Parameters
    ----------
    out : dict
        ``probs`` `(N, C)`.
    labels : torch.Tensor
        `(N,)` answers.
    n_boot : int
        Bootstrap resamples for ``<metric>_ci`` = [lo, hi] (0: none).

    Returns
    -------
    dict
    """
    probs = out["probs"]
    fns = {
        "acc": accuracy,
        "nll": nll,
        "ece": lambda p, y: calibration_errors(p, y)[0],
        "mce": lambda p, y: calibration_errors(p, y)[1],
        "aece": adaptive_ece,
        "brier": brier,
        "aurc": aurc,
    }
    res = {k: f(probs, labels) for k, f in fns.items()}
    if n_boot:
        for k in ("acc", "nll", "ece", "brier"):
            ci = bootstrap_ci(fns[k], probs, labels, n_boot=n_boot)
            res[f"{k}_ci"] = [ci["lo"], ci["hi"]]
    return res


SCORES = ("answer_entropy", "max_prob", "routing_entropy", "mutual_information", "ilv")


def ood_metrics(id_out, ood_out) -> dict[str, float]:
    """AUROC, AUPRC and FPR@95%TPR of every uncertainty score both outputs carry (OOD positive)."""
    res = {}
    for score in SCORES:
        if score in id_out and score in ood_out:
            s = torch.cat([id_out[score], ood_out[score]])
            y = torch.cat([torch.zeros(len(id_out[score])), torch.ones(len(ood_out[score]))]).bool()
            res[f"auroc_{score}"] = auroc(s, y)
            res[f"auprc_{score}"] = auprc(s, y)
            res[f"fpr95_{score}"] = fpr_at_tpr(s, y)
    return res


def evaluate_outputs(outs: dict, data: dict, id_key: str, *, n_boot: int = 0) -> dict:
    """ID metrics on the ID test set, and accuracy plus OOD AUROCs against it for every other set.

    Parameters
    ----------
    outs : dict
        Set name -> outputs (``probs`` `(N, C)` and uncertainty scores `(N,)`).
    data : dict
        Set name -> encoded data with ``labels`` `(N,)`.
    id_key : str
        The in-distribution test set's name.
    n_boot : int
        Bootstrap resamples for the ID metrics' CIs (0: none).

    Returns
    -------
    dict
        ``{"id": {...}, "<ood set>": {...}}``.
    """
    res = {"id": id_metrics(outs[id_key], data[id_key]["labels"], n_boot=n_boot)}
    for k in outs:
        if k != id_key:
            res[k] = {
                **ood_metrics(outs[id_key], outs[k]),
                "acc": id_metrics(outs[k], data[k]["labels"])["acc"],
            }
    return res
