"""The ``vmoer`` command line: ``vmoer demo`` (the main job) and ``vmoer toy``."""

from __future__ import annotations

import argparse
import logging
import sys
import time

from vmoer_ppl.pipeline.demo import DemoConfig, run_demo
from vmoer_ppl.pipeline.report import summary_table
from vmoer_ppl.toy_demo import ToyDemoConfig, format_table, run_toy_demo


def _demo(args: argparse.Namespace) -> int:
    cfg = DemoConfig(out=args.out, overwrite=args.overwrite, seed=args.seed, model=args.model)
    for key in (
        "id_set",
        "svi_steps",
        "n_train",
        "n_val",
        "n_test",
        "n_ood",
        "num_samples",
        "layers",
    ):
        if getattr(args, key) is not None:
            setattr(cfg, key, getattr(args, key))
    if args.families:
        cfg.families = tuple(args.families)
    t0 = time.perf_counter()
    try:
        res = run_demo(cfg)
    except (FileExistsError, ValueError, ModuleNotFoundError) as err:
        print(f"vmoer demo: {err}", file=sys.stderr)
        return 2
    meta = res["meta"]
    print(
        f"\nvmoer demo: model {meta['model']}, scorer {meta['scorer']}, ID set {meta['id_set']}, "
        f"Bayesian layers from {meta['first_bayesian_layer']}; sizes {meta['sizes']}"
    )
    print(summary_table(res["results"]))
    took = time.perf_counter() - t0
    print(f"run directory: {cfg.out} (report.md, metrics.json); total {took:.0f} s")
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
    parser = argparse.ArgumentParser(prog="vmoer", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo", help="the main job on the embedded MoE: deterministic vs VMoER routers"
    )
    demo.add_argument("--out", default="runs/demo", help="run directory (default runs/demo)")
    demo.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    demo.add_argument(
        "--model",
        default=None,
        help="a saved transformers MoE + tokenizer instead of the embedded one",
    )
    demo.add_argument(
        "--id-set", dest="id_set", default=None, help="arc_easy, sciq, sciq+support or openbookqa"
    )
    demo.add_argument("--families", nargs="+", default=None, help="router families to fit")
    demo.add_argument("--layers", default=None, help="Bayesian layers: all, last:N or indices")
    demo.add_argument(
        "--svi-steps", dest="svi_steps", type=int, default=None, help="SVI steps per family"
    )
    demo.add_argument(
        "--n-train", dest="n_train", type=int, default=None, help="ID questions for SVI"
    )
    demo.add_argument(
        "--n-val", dest="n_val", type=int, default=None, help="ID validation questions"
    )
    demo.add_argument("--n-test", dest="n_test", type=int, default=None, help="ID test questions")
    demo.add_argument("--n-ood", dest="n_ood", type=int, default=None, help="questions per OOD set")
    demo.add_argument(
        "--num-samples", dest="num_samples", type=int, default=None, help="S at prediction"
    )
    demo.add_argument("--seed", type=int, default=0, help="seed of splits, SVI and sampling")
    demo.set_defaults(func=_demo)
    toy = sub.add_parser("toy", help="toy end-to-end example on a synthetic task")
    toy.add_argument("--smoke", action="store_true", help="tiny sizes, for tests")
    toy.add_argument("--seed", type=int, default=0, help="seed of data, training and sampling")
    toy.add_argument("--out", default=None, help="directory for metrics.json")
    toy.set_defaults(func=_toy)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``vmoer`` script."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
