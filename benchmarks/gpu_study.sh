#!/usr/bin/env bash
# The whole study on a GPU machine, measured: the real `python -m study.run`, its wall time,
# trials per minute and the GPU's utilisation over the study, in one device call.
#
#   bash benchmarks/gpu_study.sh DATA OUT [study.run options...]
#
# DATA holds MNIST/ as torchvision lays it out (MNIST/raw/*-ubyte, or the gzipped *.gz as
# downloaded: the loader unpacks them), e.g. ../shared/datasets here.  OUT receives:
#   study.log       everything the study printed
#   usage.csv       one sample a second: time, GPU utilisation %, GPU memory MiB (nvidia-smi;
#                   on a machine without one, the 1-minute load average instead)
#   usage.png       that curve over the study
#   summary.md      wall time, trials, trials per minute, share of samples with the GPU busy,
#                   the best trial's line and the raw-pixel floor as the study printed them
#   mlflow.db       the study's MLflow store (small: copy it back)
# Options after OUT go to study.run (they override the defaults below: --dataset, --num-samples
# ...).  The machine with the GPU has torch but not Ray, MLflow or Optuna: build their bundle
# here first (`bash ../shared/device/study-bundle.sh .venv/bin/python .bundle/site.tar.xz`)
# and carry `.bundle`; when .bundle/site.tar.xz is present it is unpacked into /tmp/site.
# Knobs: LIMIT (seconds the study may run, default 480, so the call fits 9 minutes).
#
# Here, on the CPU, with a tiny budget (that is how it is tested without a GPU):
#   bash benchmarks/gpu_study.sh ../shared/datasets out/gpu-cpu --dataset digits \
#     --num-samples 2 --max-epochs 1 --set train_subset=256
set -u
DATA=$(cd "$1" && pwd)
mkdir -p "$2"
OUT=$(cd "$2" && pwd)
shift 2
LIMIT=${LIMIT:-480}
WORK=$(mktemp -d /tmp/gpu-study.XXXXXX)
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} RAY_TMPDIR=$WORK/ray-tmp
mkdir -p "$RAY_TMPDIR"
PY=${PYTHON:-python3}
if [[ -f .bundle/site.tar.xz ]]; then
  mkdir -p /tmp/site && tar -C /tmp/site -xJf .bundle/site.tar.xz
  export PYTHONPATH=/tmp/site:$PYTHONPATH
fi
if ! "$PY" -c "import ray, mlflow, optuna, torch; print('ray', ray.__version__, 'mlflow', \
mlflow.__version__, 'optuna', optuna.__version__, 'torch', torch.__version__, 'cuda', \
torch.cuda.is_available())" > "$OUT/study.log" 2>&1; then
  cat "$OUT/study.log" >&2
  echo "gpu_study: Ray, MLflow or Optuna do not import: build and carry .bundle" >&2
  exit 2
fi
cat "$OUT/study.log"

sample() {  # one line a second until killed: unix time, GPU %, GPU MiB (or the load average)
  echo "time,gpu_util,gpu_mem_mib,load1"
  while true; do
    if command -v nvidia-smi >/dev/null; then
      g=$(nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader,nounits \
          | head -1 | tr -d ' ')
    else
      g=","
    fi
    echo "$(date +%s.%N),$g,$(cut -d' ' -f1 /proc/loadavg)"
    sleep 1
  done
}
sample > "$OUT/usage.csv" &
SAMPLER=$!
START=$(date +%s.%N)
timeout --signal=INT "$LIMIT" "$PY" -m study.run --dataset mnist --data-dir "$DATA" --no-download \
  --num-samples 50 --tracking-uri "sqlite:///$OUT/mlflow.db" --storage-path "$WORK/ray" \
  --experiment-name gpu-study "$@" 2>&1 | tee -a "$OUT/study.log"
CODE=${PIPESTATUS[0]}
END=$(date +%s.%N)
kill "$SAMPLER" 2>/dev/null
"$PY" - "$OUT" "$START" "$END" "$CODE" <<'EOF'
import re, sys
from pathlib import Path

import pandas as pd

out, start, end, code = Path(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
log = (out / "study.log").read_text()
usage = pd.read_csv(out / "usage.csv")
usage = usage[(usage["time"] >= start) & (usage["time"] <= end)]
wall = end - start
found = re.search(r"study \S+: (\d+) trials", log)
trials = int(found.group(1)) if found else 0
lines = [f"# GPU study: exit {code}", "", "| measure | value |", "| --- | --- |",
         f"| wall time | {wall:.0f} s |", f"| trials | {trials} |",
         f"| trials per minute | {60 * trials / wall:.2f} |"]
if usage["gpu_util"].notna().any():
    busy = (usage["gpu_util"] > 0).mean()
    lines += [f"| GPU busy (utilisation > 0) | {100 * busy:.0f} % of {len(usage)} samples |",
              f"| GPU utilisation, mean | {usage['gpu_util'].mean():.0f} % |",
              f"| GPU memory, max | {usage['gpu_mem_mib'].max():.0f} MiB |"]
else:
    lines.append("| GPU | none: the curve is the 1-minute load average |")
lines += ["", "```", *[l for l in log.splitlines()
                       if l.startswith(("study ", "best trial", "  settings", "raw-pixel"))], "```"]
(out / "summary.md").write_text("\n".join(lines) + "\n")
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(8, 3), layout="constrained")
column = "gpu_util" if usage["gpu_util"].notna().any() else "load1"
ax.plot(usage["time"] - start, usage[column])
ax.set_xlabel("seconds into the study")
ax.set_ylabel("GPU utilisation %" if column == "gpu_util" else "load average (1 min)")
ax.set_title(f"{trials} trials in {wall:.0f} s")
fig.savefig(out / "usage.png", dpi=100)
print((out / "summary.md").read_text())
EOF
rm -rf "$WORK"
exit "$CODE"
