#!/usr/bin/env bash
# The GPU check (issues 22, 23): the CUDA tests (bf16 fit + predict, the CLI's fit + evaluate with
# --device cuda --dtype bfloat16, two processes over NCCL), then on the GPU in bf16 the
# inference-overhead benchmark and torch.compile of the routed network (SVI step, prediction).
# Run from the repository root on a machine with CUDA:  bash benchmarks/gpu_check.sh
# MODEL=dir and DATA=file.jsonl replace the embedded model and the packaged questions
# (benchmarks/random_like.py makes a random-weight copy of a model that cannot travel).
set -uo pipefail
PY=${PY:-.venv/bin/python}
ARGS=(--device cuda --dtype bfloat16)
[ -n "${MODEL:-}" ] && ARGS+=(--model "$MODEL")
[ -n "${DATA:-}" ] && ARGS+=(--data "$DATA")
RESULTS=${RESULTS:-benchmarks/results}
failed=0
$PY -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; \
print(torch.cuda.get_device_name(), 'torch', torch.__version__)" || exit 1
$PY -m pytest -m gpu tests/gpu -q -p no:cacheprovider -W ignore::DeprecationWarning -W ignore::FutureWarning || failed=1
$PY benchmarks/inference.py "${ARGS[@]}" --repeats 9 --out "$RESULTS/inference_cuda.json" || failed=1
$PY benchmarks/compile_suffix.py "${ARGS[@]}" --repeats 9 --out "$RESULTS/compile_suffix_cuda.json" \
    || failed=1
$PY benchmarks/compile_suffix.py "${ARGS[@]}" --repeats 9 --batch-size 32 \
    --out "$RESULTS/compile_suffix_cuda_b32.json" || failed=1
exit $failed
