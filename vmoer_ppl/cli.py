"""The ``vmoer`` command line."""

from __future__ import annotations

import argparse
import logging
import sys
import time

from vmoer_ppl.toy_demo import ToyDemoConfig, format_table, run_toy_demo


def _demo(args: argparse.Namespace) -> int:
    cfg = ToyDemoConfig(out=args.out, seed=args.seed)
    if args.smoke:
        cfg.num_train = cfg.num_val = cfg.num_test = 64
        cfg.pretrain_steps, cfg.svi_steps, cfg.num_samples = 5, 2, 4
    if args.svi_steps is not None:
        cfg.svi_steps = args.svi_steps
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
    demo = sub.add_parser("demo", help="toy end-to-end example: deterministic vs Bayesian routers")
    demo.add_argument("--smoke", action="store_true", help="tiny sizes, for tests")
    demo.add_argument("--svi-steps", type=int, default=None, help="SVI steps per family")
    demo.add_argument("--seed", type=int, default=0, help="seed of data, training and sampling")
    demo.add_argument("--out", default=None, help="directory for metrics.json")
    demo.set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``vmoer`` script."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
