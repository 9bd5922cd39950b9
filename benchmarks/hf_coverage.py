"""Survey: every MoE model type of the installed transformers through vmoer_ppl, fp32 and bf16.

Prints one markdown row per type (status, gate rule, upstream router class, parity error or the
reason for a refusal) and the counts per status. ``python benchmarks/hf_coverage.py [types...]``.
"""

import collections
import logging
import sys
import warnings

import torch
import transformers

from vmoer_ppl.integrations.hf.coverage import check, moe_model_types

warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)


def main(types):
    print(f"transformers {transformers.__version__}: {len(moe_model_types())} MoE model types\n")
    print("| model type | float32 | bfloat16 | gate rule | router class | detail |")
    print("|---|---|---|---|---|---|")
    counts = {d: collections.Counter() for d in ("float32", "bfloat16")}
    for t in types:
        a, b = check(t, torch.float32), check(t, torch.bfloat16)
        counts["float32"][a.status] += 1
        counts["bfloat16"][b.status] += 1
        detail = (b.detail if b.status != "supported" else f"bf16 {b.detail}").replace("|", "/")
        detail = detail.replace("\n", " ")[:140]
        print(f"| {t} | {a.status} | {b.status} | {a.rule} | {a.router_class} | {detail} |")
    for dtype, c in counts.items():
        print(f"\n{dtype}: " + ", ".join(f"{k} {v}" for k, v in sorted(c.items())))


if __name__ == "__main__":
    main(sys.argv[1:] or moe_model_types())
