"""The ``vmoer`` command line: ``demo``, ``fit``, ``evaluate``, ``compare``, ``inspect``, ``toy``.

``fit`` and ``demo`` take one flag per setting of :class:`vmoer_ppl.pipeline.FitConfig`, sections
included (type and help from the field: :mod:`vmoer_ppl.pipeline.flags`) and ``--config FILE``
(JSON or YAML); ``demo`` only changes the defaults.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

from vmoer_ppl.evaluation.stability import GAMMAS
from vmoer_ppl.infer.sharding import shutdown
from vmoer_ppl.nn.link import LINKS
from vmoer_ppl.pipeline.config import FitConfig
from vmoer_ppl.pipeline.demo import DEMO, run_demo
from vmoer_ppl.pipeline.fit import run_fit
from vmoer_ppl.pipeline.flags import add_config_flags, config_from
from vmoer_ppl.pipeline.report import summary_table
from vmoer_ppl.pipeline.run_eval import evaluate_run
from vmoer_ppl.safe_files import RunInUseError
from vmoer_ppl.toy_demo import ToyDemoConfig, format_table, run_toy_demo

#: Errors that are the user's to fix: printed as one line, exit status 2.
USER_ERRORS = (
    FileExistsError,
    FileNotFoundError,
    ValueError,
    ModuleNotFoundError,
    RunInUseError,
    FloatingPointError,
    MemoryError,  # a batch refused by its memory estimate before allocating
)


def _print_summary(res: dict, out: str, took: float) -> None:
    meta = res["meta"]
    print(
        f"\nmodel {meta['model']}, scorer {meta['scorer']}, ID set {meta['id_set']}, "
        f"Bayesian routers {meta['layers']}, S={meta['num_samples']}; sizes {meta['sizes']}"
    )
    print(summary_table(res["results"]))
    print(f"run directory: {out} (report.md, metrics.json, plots/); total {took:.0f} s")


def _demo(args: argparse.Namespace) -> int:
    cfg, t0 = config_from(args, DEMO), time.perf_counter()
    res = run_demo(cfg)
    _print_summary(res, cfg.out, time.perf_counter() - t0)
    return 0


def _fit(args: argparse.Namespace) -> int:
    cfg, t0 = config_from(args, FitConfig()), time.perf_counter()
    res = run_fit(cfg)
    print(
        f"\nfitted {', '.join(cfg.families)} on {res['run']['model']}; sizes {res['run']['sizes']}"
    )
    print("| family | steps | best step | best val NLL | stopped early |\n|---|---|---|---|---|")
    for family, r in res["families"].items():
        best = min((v for _, v in r["val_history"]), default=float("nan"))
        print(
            f"| {family} | {len(r['losses'])} | {r['best_step']} | {best:.4f} | "
            f"{r['stopped_early']} |"
        )
    took = time.perf_counter() - t0
    print(f"run directory: {cfg.out}; evaluate with `vmoer evaluate {cfg.out}` ({took:.0f} s)")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    res = evaluate_run(
        args.run_dir,
        overwrite=args.overwrite,
        num_samples=args.num_samples,
        model=args.model,
        baselines=args.baselines,
        stability_questions=args.stability_questions,
        gammas=tuple(args.gammas),
        n_boot=args.n_boot,
        predict_mode=args.predict_mode,
        link=args.link,
        workers=args.workers,
    )
    _print_summary(res, args.run_dir, time.perf_counter() - t0)
    return 0


def _compare(args: argparse.Namespace) -> int:
    from vmoer_ppl.pipeline.seeds import compare_runs

    print(compare_runs(args.run_dirs, out=args.out))
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from vmoer_ppl.diagnostics.loo import loo_markdown
    from vmoer_ppl.pipeline.inspect import inspect_run

    res = inspect_run(
        args.run_dir,
        num_draws=args.num_draws,
        n_questions=args.n_questions,
        num_samples=args.num_samples,
    )
    print(loo_markdown(res["loo"]))
    for name, k in res["loo"]["pareto_k"].items():
        if k["share_above_0.7"] > 0:
            share = 100 * k["share_above_0.7"]
            print(f"warning: {name}: {share:.1f}% of Pareto k > 0.7 (LOO unreliable for those)")
    print("posteriors: " + ", ".join(res["posteriors"].values()))
    print("plots:\n  " + "\n  ".join(res["plots"]))
    return 0


def _toy(args: argparse.Namespace) -> int:
    cfg = ToyDemoConfig(out=args.out, seed=args.seed)
    if args.smoke:
        cfg.num_train = cfg.num_val = cfg.num_test = 64
        cfg.pretrain_steps, cfg.svi_steps, cfg.num_samples = 5, 2, 4
    t0 = time.perf_counter()
    results = run_toy_demo(cfg)
    print("Toy MoE (2 layers, E=4, K=2), synthetic counting task; Bayesian routers in all layers")
    print(format_table(results))
    print(f"total {time.perf_counter() - t0:.1f} s")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``vmoer``."""
    parser = argparse.ArgumentParser(
        prog="vmoer", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo",
        help="the main job on the embedded MoE: deterministic vs VMoER routers, fit + evaluate",
    )
    add_config_flags(demo, DEMO)
    demo.set_defaults(func=_demo)
    fit = sub.add_parser(
        "fit", help="fit Bayesian routers of an MoE model on an MCQA set into a run directory"
    )
    add_config_flags(fit, FitConfig())
    fit.set_defaults(func=_fit)
    add_evaluate(sub)
    add_compare(sub)
    add_inspect(sub)
    add_toy(sub)
    return parser


def add_evaluate(sub) -> None:
    """The ``evaluate`` command's flags."""
    ev = sub.add_parser(
        "evaluate", help="evaluate a fitted run: metrics.json, report.md and plots/ in RUN_DIR"
    )
    ev.add_argument("run_dir", metavar="RUN_DIR", help="a directory written by `vmoer fit`")
    ev.add_argument("--overwrite", action="store_true", help="replace an earlier evaluation")
    ev.add_argument("--num-samples", dest="num_samples", type=int, help="S (default: the run's)")
    ev.add_argument("--model", default=None, help="load this copy of the run's model instead")
    ev.add_argument(
        "--predict-mode",
        dest="predict_mode",
        choices=("mc", "analytic"),
        help="VMoER prediction: 'mc' (S draws, the paper's) or 'analytic' (default: the run's)",
    )
    ev.add_argument(
        "--link",
        choices=LINKS,
        help="the analytic mode's approximation of E[softmax(l)] (default: the run's)",
    )
    ev.add_argument(
        "--baselines",
        nargs="*",
        default=None,
        help="baseline routers: mc-dropout, temperature-sampling, map, ensemble, swag, and "
        "posterior-mean (each VMoER fit routed at its posterior mean), temperature-scaled "
        "(every router also with its own post-hoc temperature, T on its validation "
        "predictive) (default: run's)",
    )
    ev.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes evaluating the deterministic router and the families side by side, "
        "each with cores/workers threads (default: the run's)",
    )
    add_probe_flags(ev)
    ev.set_defaults(func=_evaluate)


def add_probe_flags(ev) -> None:
    """``evaluate``'s flags of the stability probe and the bootstrap."""
    ev.add_argument(
        "--stability-questions",
        dest="stability_questions",
        type=int,
        default=8,
        help="ID test questions probed for routing stability; 0 skips (default: 8)",
    )
    ev.add_argument(
        "--gammas",
        nargs="+",
        type=float,
        default=list(GAMMAS),
        help=f"noise levels of the stability probe (default: {' '.join(map(str, GAMMAS))})",
    )
    ev.add_argument(
        "--n-boot", dest="n_boot", type=int, default=200, help="bootstrap resamples (default: 200)"
    )


def add_compare(sub) -> None:
    """The ``compare`` command's flags."""
    cmp = sub.add_parser(
        "compare", help="mean ± sd over several evaluated runs that differ only in --seed"
    )
    cmp.add_argument("run_dirs", metavar="RUN_DIR", nargs="+", help="evaluated run directories")
    cmp.add_argument("--out", default=None, help="also write OUT.md and OUT.json")
    cmp.set_defaults(func=_compare)


def add_inspect(sub) -> None:
    """The ``inspect`` command's flags."""
    ins = sub.add_parser(
        "inspect", help="ArviZ export, PSIS-LOO comparison and posterior plots of a fitted run"
    )
    ins.add_argument("run_dir", metavar="RUN_DIR", help="a directory written by `vmoer fit`")
    ins.add_argument(
        "--num-draws",
        dest="num_draws",
        type=int,
        default=100,
        help="joint posterior draws, one network pass each; PSIS needs >= 100 (default: 100)",
    )
    ins.add_argument(
        "--n-questions",
        dest="n_questions",
        type=int,
        default=30,
        help="validation questions exported (default: 30)",
    )
    ins.add_argument("--num-samples", dest="num_samples", type=int, default=35, help="S")
    ins.set_defaults(func=_inspect)


def add_toy(sub) -> None:
    """The ``toy`` command's flags."""
    toy = sub.add_parser("toy", help="toy end-to-end example on a synthetic task")
    toy.add_argument("--smoke", action="store_true", help="tiny sizes, for tests")
    toy.add_argument("--seed", type=int, default=0, help="seed of data, training and sampling")
    toy.add_argument("--out", default=None, help="directory for metrics.json")
    toy.set_defaults(func=_toy)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``vmoer`` script."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
    except USER_ERRORS as err:
        print(f"vmoer {args.command}: {err}", file=sys.stderr)
        return 2
    shutdown()  # a launched run (torchrun, accelerate launch) leaves its process group cleanly
    return code


if __name__ == "__main__":
    sys.exit(main())
