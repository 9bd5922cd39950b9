"""A random-weight copy of a transformers model directory, for timing where weights cannot travel.

Reads ``config.json`` and the tokenizer files of ``SRC`` (no weights), initialises the model from
the config (``AutoModelForCausalLM.from_config``) in ``--dtype`` and saves it with the tokenizer
to ``DST``. Wall times and FLOPs of such a copy equal the original's; its answers do not.

    python benchmarks/random_like.py SRC DST --dtype bfloat16
"""

from __future__ import annotations

import argparse

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", help="directory with config.json and tokenizer files")
    parser.add_argument("dst")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    cfg = AutoConfig.from_pretrained(args.src)
    model = AutoModelForCausalLM.from_config(cfg, dtype=getattr(torch, args.dtype))
    model.save_pretrained(args.dst)
    AutoTokenizer.from_pretrained(args.src).save_pretrained(args.dst)
    n = sum(p.numel() for p in model.parameters())
    print(f"{args.dst}: {cfg.model_type}, {n / 1e6:.1f} M parameters, {args.dtype}, random weights")


if __name__ == "__main__":
    main()
