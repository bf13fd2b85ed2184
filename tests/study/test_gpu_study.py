"""The prepared GPU study script runs the real study here, on the CPU, with a tiny budget,
and writes what the GPU run will report: wall time, trials per minute, the usage curve."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from tests.study.helpers import ROOT, study_runs


def test_gpu_study_script_measures_a_real_study(tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS")}
    env["PYTHON"] = sys.executable
    proc = subprocess.run(
        ["bash", "benchmarks/gpu_study.sh", str(tmp_path), str(out), "--dataset", "digits",
         "--num-samples", "2", "--max-epochs", "1", "--set", "train_subset=256",
         "--set", "tsne_samples=200"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    summary = (out / "summary.md").read_text()
    assert "| trials | 2 |" in summary and "trials per minute" in summary
    assert "best trial" in summary and "raw-pixel floor" in summary
    usage = pd.read_csv(out / "usage.csv")
    assert list(usage.columns) == ["time", "gpu_util", "gpu_mem_mib", "load1"] and len(usage) >= 5
    assert (out / "usage.png").stat().st_size > 1000
    _, parents, trials = study_runs(f"sqlite:///{out / 'mlflow.db'}", "gpu-study")
    assert len(parents) == 1 and len(trials) == 2
