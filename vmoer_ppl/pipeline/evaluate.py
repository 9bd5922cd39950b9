"""Batched evaluation of a scorer or a Bayesian router model on one encoded set."""

from __future__ import annotations

import logging

import torch
from tqdm.auto import tqdm

from vmoer_ppl.data.tensors import batches, inputs_of, length_order, n_batches, unsort
from vmoer_ppl.evaluation.bootstrap import bootstrap_ci
from vmoer_ppl.evaluation.calibration import adaptive_ece, brier
from vmoer_ppl.evaluation.confounds import adjusted_auroc
from vmoer_ppl.evaluation.detection import auprc, aurc, fpr_at_tpr, ood_scored
from vmoer_ppl.evaluation.metrics import accuracy, auroc, calibration_errors, nll
from vmoer_ppl.infer.predictive import predict
from vmoer_ppl.nn.mc import entropy

log = logging.getLogger(__name__)


@torch.no_grad()
def deterministic_outputs(
    head, data, batch_size: int = 16, desc: str = "deterministic"
) -> dict[str, torch.Tensor]:
    """Answer probabilities `(N, C)` and entropy `(N,)` of the untouched (deterministic) model."""
    inputs, order = inputs_of(data), length_order(data)
    todo = tqdm(batches(inputs, batch_size, order), total=n_batches(data, batch_size), desc=desc)
    probs = torch.cat([torch.softmax(head(**b), -1) for b in todo])
    probs = unsort(probs, order)
    return with_answer_scores({"probs": probs}, option_counts(data, probs))


def bayesian_outputs(
    model,
    guide,
    data,
    *,
    num_samples: int = 35,
    batch_size: int = 16,
    mode="mc",
    link: str = "second-order",
    desc="MC",
):
    """Answer probabilities and routing signals (at the last prompt token) with Bayesian routers."""
    keys = ("probs", "routing_entropy", "mutual_information", "ilv")
    out, order = {k: [] for k in keys}, length_order(data)
    todo = batches(data, batch_size, order)
    for b in tqdm(todo, total=n_batches(data, batch_size), desc=desc):
        p = predict(model, guide, mode=mode, num_samples=num_samples, link=link, **b)
        for k in keys:
            out[k].append(getattr(p, k))
    out = {k: unsort(torch.cat(v), order) for k, v in out.items()}
    return with_answer_scores(out, option_counts(data, out["probs"]))


def option_counts(data, probs: torch.Tensor) -> torch.Tensor:
    """Number of real options C of each question, `(N,)`.

    From the cloze ``option_mask`` `(N, C_max, T)` or the letter format's ``num_options``;
    otherwise the options with non-zero probability (padded options are exactly 0).
    """
    if "option_mask" in data:
        return (data["option_mask"].sum(-1) > 0).sum(-1)
    if "num_options" in data:
        return data["num_options"].long()
    return (probs > 0).sum(-1)


def with_answer_scores(out: dict, counts: torch.Tensor | None = None) -> dict:
    """Add the answer-level OOD scores, normalised for the option count C (higher = more OOD).

    Raw entropy is bounded by ``log C`` and ``1 − max p`` by ``1 − 1/C``: between sets whose
    questions have different option counts they rank the counts, not the shift. So
    ``answer_entropy`` is ``H / log C`` and ``max_prob`` is ``(1 − max p) / (1 − 1/C)``, both in
    [0, 1] with 1 at the uniform answer; for one option count they order questions exactly as the
    raw scores do. ``answer_entropy_nats`` keeps the raw entropy.

    Parameters
    ----------
    out : dict
        ``probs`` `(N, C_max)`.
    counts : torch.Tensor, optional
        `(N,)` real options per question (default: :func:`option_counts` from ``probs``).

    Returns
    -------
    dict
        ``out`` with ``answer_entropy``, ``max_prob`` and ``answer_entropy_nats`` `(N,)`.
    """
    probs = out["probs"]
    c = (option_counts({}, probs) if counts is None else counts).to(probs.device).double()
    c = c.clamp(min=2)  # a one-option question has no uncertainty: scores 0
    h = entropy(probs)
    out["answer_entropy_nats"] = h
    out["answer_entropy"] = (h.double() / c.log()).to(h.dtype)
    top = probs.max(-1).values.double()
    out["max_prob"] = ((1 - top) / (1 - 1 / c)).to(probs.dtype)
    return out


def check_option_counts(data: dict, id_key: str) -> dict[str, dict[int, int]]:
    """Option-count histograms per set; log a warning for OOD sets whose counts differ from ID.

    Parameters
    ----------
    data : dict
        Set name -> encoded data.
    id_key : str
        The ID test set.

    Returns
    -------
    dict
        Set name -> {C: number of questions}, for the sets that record their option counts
        (cloze ``option_mask`` or letter ``num_options``).
    """
    hist = {}
    for k, d in data.items():
        if "option_mask" not in d and "num_options" not in d:
            continue  # no record of the option count without answers to count
        counts = option_counts(d, torch.empty(0)).tolist()
        hist[k] = {c: counts.count(c) for c in sorted(set(counts))}
    for k, h in hist.items():
        if k != id_key and id_key in hist and set(h) != set(hist[id_key]):
            log.warning(
                "%s has questions with %s options, the ID set %s: answer-level OOD scores are "
                "normalised by log C (entropy) and 1 - 1/C (max prob) so that they compare "
                "shift, not option count; raw entropy would rank option counts",
                k,
                sorted(h),
                sorted(hist[id_key]),
            )
    return hist


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


def prompt_tokens(data) -> torch.Tensor | None:
    """Real prompt tokens per question `(N,)`: ``prompt_mask`` (cloze) or ``attention_mask``.

    None when the data carries neither (nothing to adjust OOD scores for).
    """
    for key in ("prompt_mask", "attention_mask"):
        if key in data:
            return data[key].sum(-1)
    return None


def ood_metrics(id_out, ood_out, id_len=None, ood_len=None) -> dict[str, float]:
    """AUROC, AUPRC and FPR@95%TPR of every uncertainty score both outputs carry (OOD positive).

    Parameters
    ----------
    id_out, ood_out : dict
        Scores `(N,)` and `(M,)` by name (:data:`SCORES`).
    id_len, ood_len : torch.Tensor, optional
        `(N,)` and `(M,)` prompt tokens. With them, ``auroc_prompt_tokens`` (length alone as the
        detector) and, per score, ``adjusted_auroc_<score>``: the AUROC among questions of
        similar prompt length (:func:`vmoer_ppl.evaluation.confounds.adjusted_auroc`), with
        ``length_coverage``, the fraction of OOD prompts within the ID length range.

    Returns
    -------
    dict
    """
    res, lengths = {}, id_len is not None and ood_len is not None
    for score in SCORES:
        if score in id_out and score in ood_out:
            s, y = ood_scored(id_out[score], ood_out[score])
            res[f"auroc_{score}"] = auroc(s, y)
            res[f"auprc_{score}"] = auprc(s, y)
            res[f"fpr95_{score}"] = fpr_at_tpr(s, y)
            if lengths:
                adj = adjusted_auroc(id_out[score], ood_out[score], id_len, ood_len)
                res[f"adjusted_auroc_{score}"] = adj["auroc"]
                res["length_coverage"] = adj["coverage"]  # the same for every score
    if lengths:
        res["auroc_prompt_tokens"] = auroc(*ood_scored(id_len.double(), ood_len.double()))
    return res


def mean_over_ood(result: dict, key: str) -> float:
    """Mean of ``key`` over one router's OOD sets; nan when no set has it.

    The OOD sets are the ``"<kind>:<name>"`` entries of :func:`evaluate_outputs`' result.
    """
    ood = [v for k, v in result.items() if ":" in k and key in v]
    return sum(o[key] for o in ood) / len(ood) if ood else float("nan")


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
        ``{"id": {...}, "<ood set>": {...}}``; with prompt masks in ``data``, each OOD set also
        carries prompt length's own AUROC and every score's AUROC at equal prompt length
        (:func:`ood_metrics`).
    """
    res = {"id": id_metrics(outs[id_key], data[id_key]["labels"], n_boot=n_boot)}
    id_len = prompt_tokens(data[id_key])
    for k in outs:
        if k != id_key:
            res[k] = {
                **ood_metrics(outs[id_key], outs[k], id_len, prompt_tokens(data[k])),
                "acc": id_metrics(outs[k], data[k]["labels"])["acc"],
            }
    return res
