"""`vmoer evaluate RUN_DIR`: the deterministic router and each fitted family on ID and OOD sets."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from vmoer_ppl.baselines import make_baseline
from vmoer_ppl.evaluation.bootstrap import paired_bootstrap
from vmoer_ppl.evaluation.calibration import brier
from vmoer_ppl.evaluation.metrics import accuracy, nll
from vmoer_ppl.evaluation.stability import GAMMAS
from vmoer_ppl.pipeline.config import FitConfig
from vmoer_ppl.pipeline.evaluate import (
    bayesian_outputs,
    check_option_counts,
    evaluate_outputs,
)
from vmoer_ppl.pipeline.machine import machine
from vmoer_ppl.pipeline.open_run import OpenedRun, open_run
from vmoer_ppl.pipeline.plots import (
    plot_reliability,
    plot_risk_coverage,
    plot_roc,
    plot_stability,
)
from vmoer_ppl.pipeline.report import write_run
from vmoer_ppl.pipeline.router_rows import (
    BASELINE_MODE,
    DETERMINISTIC,
    probe_arrays,
    router_part,
    router_row,
    router_stability,
    router_task,
    stability_probe,
    vmoer_prediction,
)
from vmoer_ppl.pipeline.run_dir import read_finished, scorer_kwargs
from vmoer_ppl.pipeline.scaled_rows import TEMPERATURE_SCALED, scaled_routers
from vmoer_ppl.pipeline.validate import POSTERIOR_MEAN, check_int, check_prediction
from vmoer_ppl.pipeline.workers import run_tasks, to_torch
from vmoer_ppl.safe_files import run_lock

RC = "risk_coverage_id.png"


def check_run(out: Path, overwrite: bool) -> dict:
    """The run's ``run.json`` after checking the run is finished and not yet evaluated."""
    run = read_finished(out)
    if (out / "metrics.json").exists() and not overwrite:
        raise FileExistsError(f"{out} is already evaluated; pass --overwrite to evaluate again")
    return run


#: How a ``vmoer-<family>@mean`` row predicts: every latent at its q location.
MEAN_PREDICTION = {"mode": "mean"}


def baseline_prediction(cfg: FitConfig) -> dict:
    """:func:`~vmoer_ppl.pipeline.evaluate.bayesian_outputs` settings of the baseline rows."""
    return {"num_samples": cfg.evaluation.num_samples, "mode": BASELINE_MODE}


@dataclass
class EvalSettings:
    """What :func:`evaluate_run` was asked for, beyond the run's own settings.

    Attributes
    ----------
    overwrite : bool
        Replace an earlier evaluation.
    num_samples : int, optional
        S at prediction (default: the run's).
    model : str, optional
        Load this model instead of the run's (the same weights; checked).
    n_boot : int
        Bootstrap resamples.
    stability_questions : int
        ID test questions probed for routing stability (0: skip).
    gammas : tuple of float
        Noise levels of the stability probe.
    baselines : tuple of str, optional
        Baseline routers (default: the run's).
    predict_mode, link : str, optional
        Prediction mode and link approximation of the VMoER routers (default: the run's).
    workers : int, optional
        Processes evaluating the deterministic router and the families side by side
        (:mod:`vmoer_ppl.pipeline.workers`; default: the run's ``--workers``).
    """

    overwrite: bool = False
    num_samples: int | None = None
    model: str | None = None
    n_boot: int = 200
    stability_questions: int = 8
    gammas: tuple[float, ...] = GAMMAS
    baselines: tuple[str, ...] | None = None
    predict_mode: str | None = None
    link: str | None = None
    workers: int | None = None

    def check(self) -> None:
        """Refuse values that cannot be evaluated, naming the flags."""
        least = {"n_boot": 1, "stability_questions": 0, "num_samples": 1, "workers": 1}
        for name, low in least.items():
            if getattr(self, name) is not None:  # None: the run's own setting
                check_int(name, getattr(self, name), low)
        check_prediction(self.predict_mode or "mc", self.link or "second-order")

    def applied(self, cfg: FitConfig) -> FitConfig:
        """The run's settings with these overrides applied (checked)."""
        given = {
            "model": self.model,
            "baselines": None if self.baselines is None else tuple(self.baselines),
            "predict_mode": self.predict_mode,
            "link": self.link,
            "num_samples": self.num_samples or None,
        }
        cfg = cfg.replace(**{k: v for k, v in given.items() if v is not None})
        check_prediction(cfg.evaluation.predict_mode, cfg.evaluation.link)
        return cfg


def evaluate_run(run_dir: str | Path, **settings) -> dict:
    """Evaluate a fitted run and write ``metrics.json``, ``report.md`` and ``plots/``.

    Parameters
    ----------
    run_dir : str or Path
        A directory written by :func:`vmoer_ppl.pipeline.run_fit`.
    **settings
        Fields of :class:`EvalSettings`: ``overwrite``, ``num_samples``, ``model``, ``n_boot``,
        ``stability_questions``, ``gammas``, ``baselines``, ``predict_mode``, ``link``,
        ``workers``.

    Returns
    -------
    dict
        ``{"meta": ..., "results": {router: {"id": ..., "<ood set>": ...}}}``.
    """
    how = EvalSettings(**settings)
    how.check()
    with run_lock(run_dir, "evaluate"):
        return evaluate_locked(Path(run_dir), how)


def evaluate_locked(out: Path, how: EvalSettings) -> dict:
    """The body of :func:`evaluate_run` while the run directory is locked."""
    run = check_run(out, how.overwrite)
    cfg = how.applied(FitConfig.load(out))
    t0 = time.perf_counter()
    opened = open_run(out, run, cfg)
    timings = {"load_s": time.perf_counter() - t0}
    option_hist = check_option_counts({k: opened.enc[k] for k in opened.eval_sets}, opened.id_key)
    gammas = how.gammas if 0.01 in how.gammas else (*how.gammas, 0.01)  # the report's column
    routers = [DETERMINISTIC, *cfg.families]
    workers = min(how.workers or cfg.placement.workers, len(routers))
    n_stab = how.stability_questions
    t = time.perf_counter()
    probe = stability_probe(opened, n_stab, gammas) if n_stab else None  # shared by every router
    timings["stability_probe_s"] = time.perf_counter() - t
    parts = router_parts(opened, (out, run), routers, probe, workers, timings)
    outs = {row: o for p in parts for row, o in p["outs"].items()}
    outs.update(baseline_routers(opened, cfg, timings))
    regime = parts[0]["regime"]  # the deterministic router's; its T is temperature scaling's
    temps = {"temperature-scaling": regime["temperature"]}
    if TEMPERATURE_SCALED in cfg.evaluation.baselines:
        scaled, fitted = scaled_routers(opened, predictors(opened, cfg), outs, cfg.seed, timings)
        outs.update(scaled)
        temps.update(fitted)
    t = time.perf_counter()
    results = statistics(outs, opened.data, opened.id_key, how.n_boot)
    for row, fitted_t in temps.items():
        results[row]["temperature"] = fitted_t
    timings["statistics_s"] = time.perf_counter() - t
    if probe is not None:
        t = time.perf_counter()
        done = {r: p["stability"] for r, p in zip(routers, parts, strict=True)}
        done = {r: v for r, v in done.items() if v is not None}
        for router in (r for r in (DETERMINISTIC, *opened.guides) if r not in done):
            done[router] = router_stability(opened, cfg, router, *probe)
        for router, value in done.items():
            results[router_row(router, cfg)]["stability"] = value
        timings["stability_s"] = time.perf_counter() - t
    plots = all_plots(out, outs, results, opened.data, opened.id_key)
    timings["total_s"] = time.perf_counter() - t0
    meta = {
        "model": run["model"],
        "scorer": cfg.dataset.scorer,
        "id_set": opened.id_key.split(":", 1)[1],
        "layers": cfg.layers,
        "num_samples": cfg.evaluation.num_samples,
        "predict_mode": cfg.evaluation.predict_mode,
        "link": cfg.evaluation.link,
        "sizes": opened.sizes,
        "regime": {**regime, "questions": opened.sizes["val"]},
        "option_counts": {k: {str(c): n for c, n in h.items()} for k, h in option_hist.items()},
        "plots": plots,
        "timings": timings,
        "machine": machine(workers),
    }
    write_run(out, meta, results)
    return {"meta": meta, "results": results}


def router_parts(opened: OpenedRun, run, routers: list, probe, workers: int, timings) -> list:
    """Each router's outputs (and stability, in workers), in this process or in ``workers``.

    Parameters
    ----------
    opened : OpenedRun
        The run as opened here.
    run : tuple
        ``(run directory, run.json)``, for the workers to open the run themselves.
    routers : list of str
        ``"deterministic"`` and the fitted families.
    probe : tuple, optional
        :func:`~vmoer_ppl.pipeline.router_rows.stability_probe`'s result; the workers probe
        their routers with it, this process leaves stability to its caller.
    workers : int
        Processes (1: this one).
    timings : dict
        Filled with each router's seconds (``routers_s``: the workers' wall time).

    Returns
    -------
    list of dict
        Per router: ``outs``, ``temperature``, ``stability`` (None unless a worker probed),
        ``timings``.
    """
    if workers > 1:
        sent = None if probe is None else probe_arrays(probe)
        tasks = [(str(run[0]), run[1], opened.cfg, r, sent) for r in routers]
        t = time.perf_counter()
        parts = [to_torch(p) for p in run_tasks(router_task, tasks, workers, what="router")]
        timings["routers_s"] = time.perf_counter() - t
    else:
        parts = [router_part(opened, opened.cfg, r) for r in routers]
    for p in parts:
        timings.update(p["timings"])  # with workers: each router's seconds in its worker
    return parts


def predictors(opened: OpenedRun, cfg: FitConfig) -> dict:
    """Row -> ``(model, guide, bayesian_outputs kwargs)``: how each evaluated router predicts.

    The VMoER families in the run's mode and link, their ``@mean`` rows (with ``posterior-mean``)
    at the posterior mean, the baselines (built into ``opened.guides``) in
    :data:`BASELINE_MODE`.

    Parameters
    ----------
    opened : OpenedRun
        The opened run, its baselines already built into ``opened.guides``.
    cfg : FitConfig
        The run's settings as evaluated.

    Returns
    -------
    dict
        Row name -> ``(model, guide, kwargs)`` for
        :func:`~vmoer_ppl.pipeline.evaluate.bayesian_outputs`.
    """
    out = {}
    for name, (bm, guide) in opened.guides.items():
        if name in cfg.evaluation.baselines:
            out[name] = (bm, guide, baseline_prediction(cfg))
            continue
        out[f"vmoer-{name}"] = (bm, guide, vmoer_prediction(cfg))
        if POSTERIOR_MEAN in cfg.evaluation.baselines:
            out[f"vmoer-{name}@mean"] = (bm, guide, MEAN_PREDICTION)
    return out


def posterior_mean_routers(opened: OpenedRun, cfg: FitConfig, timings: dict) -> dict:
    """``vmoer-<family>@mean``: each fitted family routed with every latent at its q location.

    The same fit as the family's own row, its answers routed without uncertainty: the paired
    difference between the two rows is what sampling (or the closed-form predictive) adds to the
    tuned routers. The routing signals (MI, ILV) still come from the posterior's draws.
    """
    outs = {}
    for family in cfg.families:
        bm, guide = opened.guides[family]
        t = time.perf_counter()
        torch.manual_seed(cfg.seed)  # the signals' draws: seeded per row, not by order
        outs[f"vmoer-{family}@mean"] = {
            k: bayesian_outputs(
                bm, guide, opened.data[k], desc=f"{family}@mean {k}", **MEAN_PREDICTION
            )
            for k in opened.eval_sets
        }
        timings[f"{family}@mean_s"] = time.perf_counter() - t
    return outs


def baseline_routers(opened: OpenedRun, cfg: FitConfig, timings: dict) -> dict:
    """Build each baseline on the train split and take its outputs (added to ``opened.guides``).

    ``posterior-mean`` is no built router but :func:`posterior_mean_routers`' rows;
    ``temperature-scaled`` adds :func:`~vmoer_ppl.pipeline.scaled_rows.scaled_routers`' rows
    after the others (in :func:`evaluate_locked`).
    """
    outs, data = {}, opened.data
    kwargs = scorer_kwargs(cfg, opened.tok, opened.enc)
    for name in cfg.evaluation.baselines:
        if name == POSTERIOR_MEAN:
            outs.update(posterior_mean_routers(opened, cfg, timings))
            continue
        if name == TEMPERATURE_SCALED:
            continue
        t = time.perf_counter()
        torch.manual_seed(cfg.seed)
        bm, guide = make_baseline(
            opened.net,
            name,
            layers=cfg.layers,
            data=data["train"],
            steps=cfg.evaluation.baseline_steps,
            seed=cfg.seed,
            **kwargs,
        )
        opened.guides[name] = (bm, guide)
        torch.manual_seed(cfg.seed)
        outs[name] = {
            k: bayesian_outputs(bm, guide, data[k], desc=f"{name} {k}", **baseline_prediction(cfg))
            for k in opened.eval_sets
        }
        timings[f"{name}_s"] = time.perf_counter() - t
    return outs


def statistics(outs: dict, data: dict, id_key: str, n_boot: int) -> dict:
    """Metrics with CIs per router and set; paired differences to the deterministic router."""
    results = {name: evaluate_outputs(o, data, id_key, n_boot=n_boot) for name, o in outs.items()}
    labels, base = data[id_key]["labels"], outs["deterministic"][id_key]["probs"]
    for name, o in outs.items():
        if name != "deterministic":
            results[name]["vs_deterministic"] = {
                k: paired_bootstrap(fn, (o[id_key]["probs"], labels), (base, labels), n_boot=n_boot)
                for k, fn in (("acc", accuracy), ("nll", nll), ("brier", brier))
            }
    return results


def all_plots(out: Path, outs: dict, results: dict, data: dict, id_key: str) -> list[str]:
    """Every evaluation plot under ``out/plots``; their file names."""
    plots = write_plots(out, outs, data, id_key)
    plot_risk_coverage(
        {r: o[id_key] for r, o in outs.items()}, data[id_key]["labels"], out / "plots" / RC
    )
    plots.append(RC)
    if plot_stability(results, out / "plots" / "stability.png") is not None:
        plots.append("stability.png")
    return plots


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
            names.append(f"roc_{router.replace('@', '-at-')}.png")
            plot_roc(o[id_key], ood, router, plots / names[-1])
    return names
