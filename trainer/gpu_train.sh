#!/usr/bin/env bash
# The prepared GPU run: warm-start from the bundled default model and train on real posed
# pairs mixed with homography pairs, for MINUTES minutes (default 8), on whatever GPU is there.
#
#   python -m trainer.estimate_pairs --photos UNPOSED_PHOTO_FOLDERS... --out .estdata          # once, here
#   python -m trainer.pack_data --posed ../shared/data/posed .estdata --photos PHOTO_FOLDERS... --out .gpudata \
#       --max-side 560 --quality 80                       # once, here: 33 MB, so that with the repository it
#                                                         # stays under the device tool's 64 MiB (640 px: 50 MB)
#   bash trainer/gpu_train.sh [extra trainer flags]         # on the GPU machine (carry .gpudata)
#
# Without the estimated-geometry scenes the bundled model's own data fits at 640 px: pack without
# .estdata, drop the three validation scenes from the pack (the repository has them in
# benchmarks/data/posed_val) and re-encode at JPEG quality 84 (36 MB), then
#   DATA=.gpudata640 bash trainer/gpu_train.sh --posed_dir .gpudata640/posed benchmarks/data/posed_val
#
# Results go to runs/gpu; the files worth keeping are copied to $OUT (when set) every
# 20 s, so a run cut off by a time limit still returns its best model so far.
set -uo pipefail
cd "$(dirname "$0")/.."
MINUTES=${MINUTES:-8}
RUN=${RUN:-runs/gpu}
DATA=${DATA:-.gpudata}
PY=${PY:-python3}
export PYTHONUNBUFFERED=1
mkdir -p "$RUN"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
$PY -c 'import torch, cv2; print("torch", torch.__version__, "cuda", torch.cuda.is_available(), "cv2", cv2.__version__)'

keep() {  # copy what matters to $OUT (at most 8 files come back from there)
  [ -n "${OUT:-}" ] || return 0
  for f in best.safetensors best.json final.safetensors final.json checkpoint.pth val.csv train.csv; do
    [ -f "$RUN/$f" ] && cp -f "$RUN/$f" "$OUT/$f.tmp" && mv -f "$OUT/$f.tmp" "$OUT/$f"
  done
  [ -f "$RUN/log.txt" ] && cp -f "$RUN/log.txt" "$OUT/log.txt"
  return 0
}
( while sleep 20; do keep; done ) &
COPIER=$!

$PY -m trainer --dataset posed --posed_dir "$DATA/posed" --data_dir "$DATA/photos" \
  --weights resources/models/default.safetensors --optimizer adam --lr 1e-3 --exp_gamma 0.9 \
  --crop_size 384 --num_pos_per_batch 1024 --num_hn_samples_per_batch 40000 --batch_size 8 \
  --train_max_iter 600 --max_epoch 100 --max_time_min "$MINUTES" --val_max_iter 40 \
  --max_rotation 45 --min_scale 0.6 --max_scale 1.6 --perspective 0.15 \
  --num_workers 14 --seed 1 --out_dir "$RUN" "$@" 2>&1 | tr '\r' '\n' | grep -v "it/s\]$" | tee "$RUN/log.txt"
STATUS=${PIPESTATUS[0]}
kill $COPIER 2>/dev/null
keep
exit "$STATUS"
