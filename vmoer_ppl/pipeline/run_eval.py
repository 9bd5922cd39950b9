"""`vmoer evaluate RUN_DIR`: the deterministic router and each fitted family on ID and OOD sets."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from vmoer_ppl.baselines import make_baseline
from vmoer_ppl.data.tensors import subset
from vmoer_ppl.evaluation.bootstrap import paired_bootstrap
from vmoer_ppl.evaluation.calibration import brier
from vmoer_ppl.evaluation.metrics import accuracy, nll
from vmoer_ppl.evaluation.stability import GAMMAS, routing_stability
from vmoer_ppl.evaluation.temperature_scaling import apply_temperature, fit_temperature
from vmoer_ppl.pipeline.config import FitConfig
from vmoer_ppl.pipeline.evaluate import (
    bayesian_outputs,
    check_option_counts,
    deterministic_outputs,
    evaluate_outputs,
    option_counts,
    with_answer_scores,
)
from vmoer_ppl.pipeline.open_run import open_run
from vmoer_ppl.pipeline.plots import (
    plot_reliability,
    plot_risk_coverage,
    plot_roc,
    plot_stability,
)
from vmoer_ppl.pipeline.report import write_run
from vmoer_ppl.pipeline.run_dir import read_finished, scorer_kwargs, strip
from vmoer_ppl.pipeline.validate import check_prediction
from vmoer_ppl.safe_files import run_lock

RC = "risk_coverage_id.png"


def check_run(out: Path, overwrite: bool) -> dict:
    """The run's ``run.json`` after checking the run is finished and not yet evaluated."""
    run = read_finished(out)
    if (out / "metrics.json").exists() and not overwrite:
        raise FileExistsError(f"{out} is already evaluated; pass --overwrite to evaluate again")
    return run


def evaluate_run(
    run_dir: str | Path,
    *,
    overwrite: bool = False,
    num_samples: int | None = None,
    model: str | None = None,
    n_boot: int = 200,
    stability_questions: int = 8,
    gammas: tuple[float, ...] = GAMMAS,
    baselines: tuple[str, ...] | None = None,
    predict_mode: str | None = None,
    link: str | None = None,
) -> dict:
    """Evaluate a fitted run and write ``metrics.json``, ``report.md`` and ``plots/``.

    Parameters
    ----------
    run_dir : str or Path
        A directory written by :func:`vmoer_ppl.pipeline.run_fit`.
    overwrite : bool
        Replace an earlier evaluation.
    num_samples : int, optional
        S at prediction (default: the run's).
    model : str, optional
        Load this model instead of the run's (it must be the same weights; checked).
    n_boot : int
        Bootstrap resamples of the ID metrics' 95% CIs and the paired comparisons.
    stability_questions : int
        ID test questions probed for routing stability (0: skip).
    gammas : tuple of float
        Noise levels of the stability probe.
    baselines : tuple of str, optional
        Baseline routers to evaluate (default: the run's ``baselines``).
    predict_mode, link : str, optional
        Prediction mode of the VMoER routers (``"mc"`` or ``"analytic"``) and the analytic
        mode's link approximation (default: the run's).

    Returns
    -------
    dict
        ``{"meta": ..., "results": {router: {"id": ..., "<ood set>": ...}}}``.
    """
    if n_boot < 1 or stability_questions < 0 or (num_samples is not None and num_samples < 1):
        raise ValueError(
            f"--n-boot {n_boot} / --stability-questions {stability_questions} / --num-samples "
            f"{num_samples}: need n-boot >= 1, stability-questions >= 0 and num-samples >= 1"
        )
    check_prediction(predict_mode or "mc", link or "second-order")
    with run_lock(run_dir, "evaluate"):
        return evaluate_locked(
            Path(run_dir),
            overwrite,
            num_samples,
            model,
            n_boot,
            stability_questions,
            gammas,
            baselines,
            predict_mode,
            link,
        )


def evaluate_locked(
    out,
    overwrite,
    num_samples,
    model,
    n_boot,
    stability_questions,
    gammas,
    baselines,
    predict_mode,
    link,
) -> dict:
    """The body of :func:`evaluate_run` while the run directory is locked."""
    run = check_run(out, overwrite)
    cfg = FitConfig.load(out)
    if model is not None:
        cfg.model = model
    if baselines is not None:
        cfg.baselines = tuple(baselines)
    cfg.predict_mode, cfg.link = predict_mode or cfg.predict_mode, link or cfg.link
    check_prediction(cfg.predict_mode, cfg.link)
    S = num_samples or cfg.num_samples
    t0 = time.perf_counter()
    opened = open_run(out, run, cfg)
    net, tok, enc, sizes = opened.net, opened.tok, opened.enc, opened.sizes
    id_key, eval_sets, guides, data = opened.id_key, opened.eval_sets, opened.guides, opened.data
    option_hist = check_option_counts({k: enc[k] for k in eval_sets}, id_key)
    if stability_questions and 0.01 not in gammas:
        gammas = (*gammas, 0.01)  # the reported column
    head = next(iter(guides.values()))[0].net
    timings = {"load_s": time.perf_counter() - t0}
    t = time.perf_counter()
    outs = {
        "deterministic": {
            k: deterministic_outputs(head, data[k], desc=f"deterministic {k}") for k in eval_sets
        }
    }
    temp = fit_temperature(deterministic_outputs(head, data["val"])["probs"], data["val"]["labels"])
    outs["temperature-scaling"] = {
        k: with_answer_scores(
            {"probs": (p := apply_temperature(o["probs"], temp))}, option_counts(data[k], p)
        )
        for k, o in outs["deterministic"].items()
    }
    timings["deterministic_s"] = time.perf_counter() - t
    for family, (bm, guide) in guides.items():
        t = time.perf_counter()
        torch.manual_seed(cfg.seed)  # each router's draws independent of evaluation order
        outs[f"vmoer-{family}"] = {
            k: bayesian_outputs(
                bm,
                guide,
                data[k],
                num_samples=S,
                mode=cfg.predict_mode,
                link=cfg.link,
                desc=f"{family} {k}",
            )
            for k in eval_sets
        }
        timings[f"{family}_s"] = time.perf_counter() - t
    kwargs = scorer_kwargs(cfg, tok, enc)
    for name in cfg.baselines:
        t = time.perf_counter()
        torch.manual_seed(cfg.seed)
        bm, guide = make_baseline(
            net,
            name,
            layers=cfg.layers,
            data=data["train"],
            steps=cfg.baseline_steps,
            seed=cfg.seed,
            **kwargs,
        )
        guides[name] = (bm, guide)
        torch.manual_seed(cfg.seed)
        outs[name] = {
            k: bayesian_outputs(bm, guide, data[k], num_samples=S, desc=f"{name} {k}")
            for k in eval_sets
        }
        timings[f"{name}_s"] = time.perf_counter() - t
    t = time.perf_counter()
    results = {name: evaluate_outputs(o, data, id_key, n_boot=n_boot) for name, o in outs.items()}
    labels = data[id_key]["labels"]
    for name, o in outs.items():
        if name != "deterministic":
            base = outs["deterministic"][id_key]["probs"]
            results[name]["vs_deterministic"] = {
                k: paired_bootstrap(fn, (o[id_key]["probs"], labels), (base, labels), n_boot=n_boot)
                for k, fn in (("acc", accuracy), ("nll", nll), ("brier", brier))
            }
    results["temperature-scaling"]["temperature"] = temp
    timings["statistics_s"] = time.perf_counter() - t
    if stability_questions:
        t = time.perf_counter()
        probe = subset(strip(enc[id_key]), range(min(stability_questions, sizes[id_key])))
        bm = next(iter(guides.values()))[0]
        results["deterministic"]["stability"] = routing_stability(bm, None, probe, gammas=gammas)
        for family, (m, g) in guides.items():
            key = family if family in cfg.baselines else f"vmoer-{family}"
            results[key]["stability"] = routing_stability(m, g, probe, gammas=gammas, num_samples=S)
        timings["stability_s"] = time.perf_counter() - t
    plots = write_plots(out, outs, data, id_key)
    plot_risk_coverage(
        {r: o[id_key] for r, o in outs.items()}, data[id_key]["labels"], out / "plots" / RC
    )
    plots.append(RC)
    if plot_stability(results, out / "plots" / "stability.png") is not None:
        plots.append("stability.png")
    timings["total_s"] = time.perf_counter() - t0
    meta = {
        "model": run["model"],
        "scorer": cfg.scorer,
        "id_set": id_key.split(":", 1)[1],
        "layers": cfg.layers,
        "num_samples": S,
        "predict_mode": cfg.predict_mode,
        "link": cfg.link,
        "sizes": sizes,
        "option_counts": {k: {str(c): n for c, n in h.items()} for k, h in option_hist.items()},
        "plots": plots,
        "timings": timings,
    }
    write_run(out, meta, results)
    return {"meta": meta, "results": results}


def write_plots(out: Path, outs: dict, data: dict, id_key: str) -> list[str]:
    """Reliability diagrams and per-router ROC curves under ``out/plots``; their file names."""
    plots = out / "plots"
    plots.mkdir(exist_ok=True)
    names = ["reliability_id.png"]
    plot_reliability(
        {r: o[id_key] for r, o in outs.items()}, data[id_key]["labels"], plots / names[0]
    )
    for router, o in outs.items():
        ood = {k: v for k, v in o.items() if k != id_key}
        if ood:
            names.append(f"roc_{router}.png")
            plot_roc(o[id_key], ood, router, plots / names[-1])
    return names
