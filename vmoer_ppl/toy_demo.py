"""The toy end-to-end example: pretrain a small MoE, fit Bayesian routers, compare them.

Stage 1 trains the toy MoE classifier (routers included) deterministically on the synthetic
counting task; stage 2 freezes it and fits each router family by SVI on a held-out validation
split (as DESIGN.md does with OpenBookQA val), since on stage 1's own data the over-fitted
network is already confident and right; evaluation compares the
deterministic router with each family's MC-averaged routing (S = 35) on held-out in-distribution
questions and on a shifted (OOD) set.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from vmoer_ppl.bayesianize import bayesianize
from vmoer_ppl.data.synthetic import make_counting_task
from vmoer_ppl.evaluation.detection import ood_scored
from vmoer_ppl.evaluation.metrics import accuracy, auroc, calibration_errors, nll
from vmoer_ppl.infer.predictive import predict
from vmoer_ppl.infer.svi import SVIConfig, fit_svi
from vmoer_ppl.nn.mc import entropy
from vmoer_ppl.nn.toy import ToyMoEClassifier, ToyMoEConfig

log = logging.getLogger(__name__)


@dataclass
class ToyDemoConfig:
    """Settings of :func:`run_toy_demo`."""

    families: tuple[str, ...] = ("logit-mf", "logit-fc", "temperature", "weight")
    num_train: int = 2000  # questions for stage 1
    num_val: int = 1000  # held-out questions for stage 2 (SVI)
    num_test: int = 1000  # in-distribution and OOD test questions each
    pretrain_steps: int = 1500  # stage 1 (deterministic) Adam steps
    svi_steps: int = 300  # stage 2 steps per family
    num_samples: int = 35  # S, MC samples per router at prediction
    beta: float = 0.01  # KL weight
    seed: int = 0
    out: str | None = None  # write metrics.json here when given
    model: ToyMoEConfig = field(default_factory=ToyMoEConfig)


def pretrain(cfg: ToyDemoConfig, data: dict[str, torch.Tensor]) -> ToyMoEClassifier:
    """Stage 1: train the whole toy MoE deterministically (cross-entropy, Adam)."""
    torch.manual_seed(cfg.seed)
    net = ToyMoEClassifier(cfg.model)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(cfg.seed)
    for _ in tqdm(range(cfg.pretrain_steps), desc="stage 1 (deterministic)"):
        idx = torch.randint(len(data["labels"]), (64,), generator=g)
        logits = net(data["input_ids"][idx], data["attention_mask"][idx])
        loss = torch.nn.functional.cross_entropy(logits, data["labels"][idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


def _scores(probs, labels, ood_probs) -> dict[str, float]:
    ece, _ = calibration_errors(probs, labels)
    return {
        "acc": accuracy(probs, labels),
        "nll": nll(probs, labels),
        "ece": ece,
        "ood_auroc_entropy": auroc(*ood_scored(entropy(probs), entropy(ood_probs))),
    }


def _fit_and_score(cfg: ToyDemoConfig, net, family: str, val, test, ood) -> dict[str, float]:
    """Bayesianize a copy of ``net`` as ``family``, fit it on ``val``, score it on test and OOD."""
    t0 = time.perf_counter()
    model, guide = bayesianize(
        copy.deepcopy(net), family=family, beta=cfg.beta, num_data=cfg.num_val
    )
    fit_svi(
        model,
        guide,
        val,
        SVIConfig(num_steps=cfg.svi_steps, batch_size=64, lr=1e-2, seed=cfg.seed),
    )
    out_id = predict(
        model, guide, test["input_ids"], test["attention_mask"], num_samples=cfg.num_samples
    )
    out_ood = predict(
        model, guide, ood["input_ids"], ood["attention_mask"], num_samples=cfg.num_samples
    )
    r = _scores(out_id.probs, test["labels"], out_ood.probs)
    mi = ood_scored(out_id.mutual_information, out_ood.mutual_information)
    r["ood_auroc_routing_mi"] = auroc(*mi)
    r["seconds"] = time.perf_counter() - t0
    return r


def run_toy_demo(cfg: ToyDemoConfig | None = None) -> dict[str, dict[str, float]]:
    """Run stage 1, stage 2 for each family, and the evaluation; return metrics per router.

    Parameters
    ----------
    cfg : ToyDemoConfig, optional
        Sizes and steps.

    Returns
    -------
    dict
        Router name -> metric name -> value.
    """
    cfg = cfg or ToyDemoConfig()
    kw = {"vocab_size": cfg.model.vocab_size, "num_labels": cfg.model.num_labels}
    train = make_counting_task(cfg.num_train, seed=cfg.seed, **kw)
    val = make_counting_task(cfg.num_val, seed=cfg.seed + 3, **kw)
    test = make_counting_task(cfg.num_test, seed=cfg.seed + 1, **kw)
    ood = make_counting_task(cfg.num_test, seed=cfg.seed + 2, ood=True, **kw)
    net = pretrain(cfg, train)
    results = {}
    with torch.no_grad():
        p_id = torch.softmax(net(test["input_ids"], test["attention_mask"]), -1)
        p_ood = torch.softmax(net(ood["input_ids"], ood["attention_mask"]), -1)
    results["deterministic"] = _scores(p_id, test["labels"], p_ood)
    for family in cfg.families:
        results[f"vmoer-{family}"] = _fit_and_score(cfg, net, family, val, test, ood)
    if cfg.out:
        Path(cfg.out).mkdir(parents=True, exist_ok=True)
        payload = {"config": asdict(cfg), "metrics": results}
        (Path(cfg.out) / "metrics.json").write_text(json.dumps(payload, indent=2))
    return results


def format_table(results: dict[str, dict[str, float]]) -> str:
    """A plain-text summary table of :func:`run_toy_demo`'s results."""
    cols = ["acc", "nll", "ece", "ood_auroc_entropy", "ood_auroc_routing_mi"]
    lines = [f"{'router':<24}" + "".join(f"{c:>22}" for c in cols)]
    for name, r in results.items():
        lines.append(f"{name:<24}" + "".join(f"{r.get(c, float('nan')):>22.4f}" for c in cols))
    return "\n".join(lines)
