"""Benchmark: the packed option pass against the padded one, on real questions.

The embedded MoE by default (or ``--model DIR``), cloze scoring of the first ``--questions``
questions of each packaged set (full forward, no prefix cache), batches of ``--batch-size`` in
the pipeline's length order. For each set: the option positions each layout runs (padded
``B·C·Tc`` against packed ``B·L``), the wall time of scoring the set padded and packed, called
alternately ``--repeats`` times (median and interquartile range of the per-pair ratios), and the
largest difference of the scores (they agree to float rounding).

    python benchmarks/cloze_packing.py --out benchmarks/results/cloze_packing.json
"""

from __future__ import annotations

import argparse
import platform
import statistics

import torch
from common import pair_ratios, quartiles, write_result

from vmoer_ppl.data.packaged import PACKAGED, load_packaged
from vmoer_ppl.data.tensors import batches, inputs_of, length_order
from vmoer_ppl.pipeline.config import FitConfig
from vmoer_ppl.pipeline.loading import load_model
from vmoer_ppl.scoring import ClozeHead, encode_cloze
from vmoer_ppl.scoring.cloze import trim
from vmoer_ppl.scoring.packing import OptionPacking


def positions(data: dict, batch_size: int) -> tuple[int, int, int]:
    """Real option tokens, and the option positions the padded and packed passes run."""
    real = padded = packed = 0
    for b in batches(inputs_of(data), batch_size, length_order(data)):
        _, om = trim(b["prompt_mask"], b["option_mask"])
        real += int(om.sum())
        padded += om.numel()
        packed += OptionPacking.of(om).real.numel()
    return real, padded, packed


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="transformers MoE dir (default: embedded)")
    parser.add_argument("--sets", nargs="*", default=sorted(PACKAGED))
    parser.add_argument("--questions", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    net, tok, label = load_model(FitConfig().replace(model=args.model))
    packed_head, padded_head = ClozeHead(net, "char"), ClozeHead(net, "char", pack=False)
    result = {
        "machine": f"{platform.machine()} {platform.processor() or ''} "
        f"threads={torch.get_num_threads()} torch={torch.__version__}",
        "model": label,
        "config": vars(args),
    }
    print(f"{label}: {args.questions} questions per set, batches of {args.batch_size}")
    for name in args.sets:
        data = encode_cloze(load_packaged(name)[: args.questions], tok)
        order = length_order(data)

        def score(head, data=data, order=order):
            with torch.no_grad():
                return torch.cat(
                    [head(**b) for b in batches(inputs_of(data), args.batch_size, order)]
                )

        a, b = score(padded_head), score(packed_head)
        finite = a.isfinite()
        assert torch.equal(finite, b.isfinite())
        diff = float((a[finite] - b[finite]).abs().max())
        t_pad, t_pack, ratios = pair_ratios(
            lambda: score(padded_head), lambda: score(packed_head), args.repeats
        )
        real, padded, packed = positions(data, args.batch_size)
        lo, hi = quartiles(ratios)
        result[name] = {
            "real_option_tokens": real,
            "padded_positions": padded,
            "packed_positions": packed,
            "padded_s": statistics.median(t_pad),
            "packed_s": statistics.median(t_pack),
            "time_ratio": statistics.median(ratios),
            "time_ratio_iqr": [lo, hi],
            "max_abs_score_diff": diff,
        }
        print(
            f"  {name:22s} option positions {padded:6d} padded, {packed:6d} packed "
            f"({real} real)   padded {statistics.median(t_pad):6.2f} s   packed "
            f"{statistics.median(t_pack):6.2f} s   packed/padded {statistics.median(ratios):.3f} "
            f"(IQR {lo:.3f}-{hi:.3f})   max |Δ score| {diff:.1e}"
        )
    write_result(args.out, result)
    return result


if __name__ == "__main__":
    main()
