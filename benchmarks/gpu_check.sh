#!/usr/bin/env bash
# The GPU check (issue 22): CUDA tests, then the inference-overhead benchmark on the GPU.
# Run from the repository root on a machine with CUDA:  bash benchmarks/gpu_check.sh
set -euo pipefail
PY=${PY:-.venv/bin/python}
$PY -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name())"
$PY -m pytest -m gpu tests/gpu -q -p no:cacheprovider
$PY benchmarks/inference.py --device cuda --repeats 5
