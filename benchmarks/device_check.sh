#!/usr/bin/env bash
# The GPU checks, as one prepared script for a borrowed GPU machine that has torch but not
# Ray or MLflow (so it measures the trial itself, not the study).
#
#   bash benchmarks/device_check.sh DATA OUT
#
# DATA holds MNIST/*-ubyte.gz (the four IDX files, gzipped), cifar_sub.npz (a slice of the
# offline CIFAR-10 copy's JPEG bytes: train_jpeg/train_offsets/train_y, test_* likewise) and
# optionally pytorch-metric-learning's wheel (the loss tests' reference). To make DATA from
# the offline copies (about 43 MB):
#   mkdir -p DATA/MNIST && for f in ../shared/datasets/MNIST/raw/*; do
#     gzip -c "$f" > DATA/MNIST/$(basename "$f").gz; done
#   python benchmarks/cifar_slice.py ../shared/datasets/cifar10-q75/cifar10_q75_jpeg.npz DATA/cifar_sub.npz
#   pip download --no-deps --only-binary=:all: -d DATA pytorch-metric-learning==2.9.0
# Everything it prints
# goes to OUT/log. Each step has its own time cap, so one slow step cannot eat the others.
# ONLY=REGEX runs setup and the steps whose names match (e.g. ONLY='pytest|bench_trial').
set -u
DATA=$1
OUT=$2
LOG=$OUT/log
WORK=/tmp/device-check
mkdir -p "$WORK/data/MNIST/raw" "$WORK/cifar" "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD

step() {  # step NAME SECONDS CMD...
  local name=$1 cap=$2
  shift 2
  if [[ -n "${ONLY:-}" && $name != setup && ! $name =~ $ONLY ]]; then return; fi
  echo "=== $name (cap ${cap}s) $(date +%T)" | tee -a "$LOG"
  local start=$SECONDS
  timeout "$cap" bash -c '"$@"' _ "$@" 2>&1 | tee -a "$LOG" | tail -n 60
  echo "=== $name: rc=${PIPESTATUS[0]} in $((SECONDS - start))s" | tee -a "$LOG"
}

setup() {
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import torch, torchvision, sklearn; print('torch', torch.__version__, \
'torchvision', torchvision.__version__, 'sklearn', sklearn.__version__, \
'cuda', torch.cuda.is_available())"
  nproc
  for f in "$DATA"/MNIST/*.gz; do gunzip -c "$f" > "$WORK/data/MNIST/raw/$(basename "$f" .gz)"; done
  ls "$DATA"/*.whl >/dev/null 2>&1 && python3 -m pip install -q --no-index --no-deps \
    --target "$WORK/site" "$DATA"/*.whl
  python3 - "$DATA/cifar_sub.npz" "$WORK/cifar" <<'EOF'
import io, sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
import numpy as np
from PIL import Image

def decode(blobs):
    return np.stack([np.asarray(Image.open(io.BytesIO(b)).convert("RGB")) for b in blobs])

packed = np.load(sys.argv[1])
for split in ("train", "test"):
    jpeg, off = packed[f"{split}_jpeg"], packed[f"{split}_offsets"]
    blobs = [jpeg[a:b].tobytes() for a, b in zip(off[:-1], off[1:])]
    chunks = [blobs[i:i + 2000] for i in range(0, len(blobs), 2000)]
    with ProcessPoolExecutor(8) as pool:
        x = np.concatenate(list(pool.map(decode, chunks)))
    np.savez(Path(sys.argv[2]) / f"{split}.npz", x=x, y=packed[f"{split}_y"])
    print(split, x.shape)
EOF
}

concurrent() {  # N trials of the same config at once on the one GPU, against one alone
  local args=(--dataset mnist --data-dir "$WORK/data" --no-download --set epochs=1
              --set train_subset=0 --set eval_train=10000)
  local t0=$SECONDS
  OMP_NUM_THREADS=2 python3 -m trainables "${args[@]}" --set seed=0 > "$WORK/alone.txt"
  local alone=$((SECONDS - t0))
  t0=$SECONDS
  for i in 1 2 3 4; do
    OMP_NUM_THREADS=2 python3 -m trainables "${args[@]}" --set seed=$i > "$WORK/c$i.txt" &
  done
  wait
  local four=$((SECONDS - t0))
  cat "$WORK/alone.txt" "$WORK"/c*.txt
  python3 -c "a, f = $alone, $four; print(f'| trials at once | wall s | trials per minute |'); \
print('| --- | --- | --- |'); print(f'| 1 | {a} | {60 / a:.2f} |'); \
print(f'| 4 | {f} | {240 / f:.2f} |'); print(f'throughput gain from sharing: {4 * a / f:.2f}x')"
}

export DATA WORK
export -f setup concurrent
step setup 120 setup
export SHARED_DATASETS=$WORK/data PYTHONPATH=$PWD:$WORK/site
step "pytest tests/trainables (CUDA visible)" 150 python3 -m pytest -q -p no:cacheprovider tests/trainables
step "bench_augment cuda" 60 python3 -m benchmarks.bench_augment --device cuda
step "bench_trial cuda, full MNIST epochs" 120 python3 -m benchmarks.bench_trial --device cuda \
  --data-dir "$WORK/data" --train-subset 0
step "MNIST triplet, GPU budget, 3 epochs" 90 python3 -m trainables --dataset mnist \
  --data-dir "$WORK/data" --no-download --set epochs=3 --set train_subset=0 --set eval_train=10000
step "CIFAR-10 (25k train) resnet18 triplet, 2 epochs" 120 python3 -m trainables \
  --dataset "$WORK/cifar" --set encoder=resnet18 --set epochs=2 --set train_subset=0 \
  --set eval_train=10000
step "4 trials sharing the GPU" 120 concurrent
