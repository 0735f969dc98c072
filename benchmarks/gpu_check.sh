#!/usr/bin/env bash
# Issue 12's GPU check, one command on a machine with a CUDA GPU (the lent H100 / H200):
#
#     bash benchmarks/gpu_check.sh
#
# Prints the card, runs the CUDA tests (nearest-neighbour search on the GPU, features and
# matches in fp32 / auto / fp16 against the CPU), then the matching timings on the GPU:
# whole pair (fp32 and auto, goal <= 50 ms per 640 x 480 pair after warm-up), the alignment pass, the network
# alone in four layouts, and the search. Needs torch with CUDA, numpy,
# opencv-python-headless, pillow, safetensors and pytest; no Qt.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "nvidia-smi: not found"
"$PY" -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda, "|", torch.cuda.get_device_name() if torch.cuda.is_available() else "no CUDA device", "| bf16:", torch.cuda.is_available() and torch.cuda.is_bf16_supported())'
"$PY" -m pytest -q -p no:cacheprovider tests/test_matching.py tests/test_precision.py tests/test_subpixel.py -k cuda
tests=$?
"$PY" benchmarks/bench_matching.py --devices cuda --parts pair align features search \
    --weights resources/models/default.safetensors --repeats 10 "$@"
bench=$?
exit $(( tests || bench ))
