"""Batched evaluation of a scorer or a Bayesian router model on one encoded set."""

from __future__ import annotations

import torch

from vmoer_ppl.data.tensors import batches
from vmoer_ppl.evaluation.metrics import accuracy, auroc, calibration_errors, nll
from vmoer_ppl.infer.predictive import predict
from vmoer_ppl.nn.mc import entropy


@torch.no_grad()
def deterministic_outputs(head, data, batch_size: int = 16) -> dict[str, torch.Tensor]:
    """Answer probabilities `(N, C)` and entropy `(N,)` of the untouched (deterministic) model."""
    inputs = {k: v for k, v in data.items() if k != "labels"}
    probs = torch.cat([torch.softmax(head(**b), -1) for b in batches(inputs, batch_size)])
    return {"probs": probs, "answer_entropy": entropy(probs)}


def bayesian_outputs(model, guide, data, *, num_samples: int = 35, batch_size: int = 16, mode="mc"):
    """Answer probabilities and routing signals (at the last prompt token) with Bayesian routers."""
    keys = ("probs", "routing_entropy", "mutual_information", "ilv")
    out = {k: [] for k in keys}
    for b in batches(data, batch_size):
        p = predict(model, guide, mode=mode, num_samples=num_samples, **b)
        for k in keys:
            out[k].append(getattr(p, k))
    out = {k: torch.cat(v) for k, v in out.items()}
    out["answer_entropy"] = entropy(out["probs"])
    return out


def id_metrics(out, labels) -> dict[str, float]:
    """Accuracy, NLL, ECE, MCE and Brier score."""
    probs = out["probs"]
    ece, mce = calibration_errors(probs, labels)
    onehot = torch.nn.functional.one_hot(labels, probs.shape[-1]).to(probs)
    brier = ((probs - onehot) ** 2).sum(-1).mean().item()
    return {
        "acc": accuracy(probs, labels),
        "nll": nll(probs, labels),
        "ece": ece,
        "mce": mce,
        "brier": brier,
    }


def ood_metrics(id_out, ood_out) -> dict[str, float]:
    """OOD AUROC of every uncertainty score both outputs carry (OOD = positive)."""
    res = {}
    for score in ("answer_entropy", "routing_entropy", "mutual_information", "ilv"):
        if score in id_out and score in ood_out:
            s = torch.cat([id_out[score], ood_out[score]])
            y = torch.cat([torch.zeros(len(id_out[score])), torch.ones(len(ood_out[score]))]).bool()
            res[f"auroc_{score}"] = auroc(s, y)
    return res


def evaluate_outputs(outs: dict, data: dict, id_key: str) -> dict:
    """ID metrics on the ID test set, and accuracy plus OOD AUROCs against it for every other set.

    Parameters
    ----------
    outs : dict
        Set name -> outputs (``probs`` `(N, C)` and uncertainty scores `(N,)`).
    data : dict
        Set name -> encoded data with ``labels`` `(N,)`.
    id_key : str
        The in-distribution test set's name.

    Returns
    -------
    dict
        ``{"id": {...}, "<ood set>": {...}}``.
    """
    res = {"id": id_metrics(outs[id_key], data[id_key]["labels"])}
    for k in outs:
        if k != id_key:
            res[k] = {
                **ood_metrics(outs[id_key], outs[k]),
                "acc": id_metrics(outs[k], data[k]["labels"])["acc"],
            }
    return res
