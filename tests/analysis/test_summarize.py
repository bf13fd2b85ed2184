"""``python -m analysis.summarize`` end to end: on a real study made by ``study.run``, on
synthetic studies with failed, running and too few trials, and on bad input."""

from __future__ import annotations

import base64
import io
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from analysis.summarize import main
from study.schema import OBJECTIVE
from tests.analysis.conftest import REAL_EXPERIMENT, RealStudy
from tests.analysis.synthetic import write_synthetic_study

NAN = re.compile(r"\bnan\b", re.IGNORECASE)
DATA_URI = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


@pytest.fixture(scope="module")
def real_report(real_study: RealStudy, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of the real study, written once for this module's tests."""
    out = tmp_path_factory.mktemp("real-report") / "report"
    code = main(["--experiment-name", REAL_EXPERIMENT, "--tracking-uri", real_study.uri,
                 "--out", str(out)])
    assert code == 0
    return out


def _sections(md: str) -> list[str]:
    return re.findall(r"^#{1,6} (.+)$", md, flags=re.MULTILINE)


def test_report_has_every_section(real_report: Path):
    md = (real_report / "report.md").read_text()
    heads = _sections(md)
    for expected in ("Study", "Trial counts", "Raw-pixel floor", "Per dimension",
                     "Interaction: augmentation × mode", "Parameter importance"):
        assert expected in heads, heads
    assert any(h.startswith("Leaderboard (top") for h in heads)
    assert any(h.startswith("t-SNE montage") for h in heads)
    # 4 trials: importance is not computed, and the report says why
    assert "not enough trials: n=4 scored (needs 20)" in md
    # chosen on validation, reported on test, every trial compared at a common epoch
    assert "the last epoch all of them reached" in md and "| val probe | test probe |" in md
    assert "adaptive (TPE) search samples settings unevenly" in md
    counts = dict(re.findall(r"^\| (finished|stopped_early|total) \| (\d+) \|$", md, re.M))
    assert counts["total"] == "4" and int(counts["finished"]) + int(counts["stopped_early"]) == 4
    assert not NAN.search(md)
    # every searched dimension got a table and its plot
    searched = re.search(r"Searched dimensions analysed: (.+)\.", md).group(1)
    for name in re.findall(r"`(\w+)`", searched):
        assert f"### `{name}`" in md
        assert (real_report / f"dim_{name}.csv").is_file()
    # every linked image exists
    for link in re.findall(r"!\[[^]]*\]\(([^)]+)\)", md):
        assert (real_report / link).is_file()


def test_csv_tables_parse(real_report: Path):
    board = pd.read_csv(real_report / "leaderboard.csv")
    assert len(board) == 4
    assert {"rank", "trial_id", OBJECTIVE, "val_knn_accuracy", "test_probe_accuracy",
            "test_map_at_r", "epochs_run", "images_seen", "outcome", "augmentation", "mode",
            "loss", "lr", "run_id"} <= set(board.columns)
    assert board[OBJECTIVE].is_monotonic_decreasing
    counts = pd.read_csv(real_report / "counts.csv")
    assert list(counts.columns) == ["outcome", "trials"]
    for path in real_report.glob("dim_*.csv"):
        frame = pd.read_csv(path)
        assert list(frame.columns)[:7] == ["value", "n", "mean", "median", "ci_low",
                                           "ci_high", "ci"]
        assert {"n_finished", "mean_finished"} <= set(frame.columns)
        assert frame["n"].sum() <= 4 and set(frame["ci"].dropna()) <= {"t"}  # small: t
    interaction = pd.read_csv(real_report / "interaction.csv")
    assert list(interaction.columns) == ["augmentation", "mode", "n", "mean", "median",
                                         "ci_low", "ci_high"]
    assert interaction["n"].sum() == 4
    assert {"scope", "n", "dimension", "importance", "spread", "note"} <= set(
        pd.read_csv(real_report / "importance.csv").columns)
    floor = pd.read_csv(real_report / "floor.csv")
    assert list(floor["score"]) == ["probe", "kNN", "P@1", "MAP@R"] and floor["test"].notna().all()
    assert len(pd.read_csv(real_report / "trials.csv")) == 4


def test_html_is_self_contained(real_report: Path):
    html = (real_report / "report.html").read_text()
    md = (real_report / "report.md").read_text()
    images = DATA_URI.findall(html)
    assert len(images) == md.count("![") >= 4
    for data in images:
        with Image.open(io.BytesIO(base64.b64decode(data))) as im:
            im.verify()
    assert not re.search(r'src="(?!data:)', html)  # no link to a file outside the page
    assert not NAN.search(re.sub(DATA_URI, "", html))


def test_parent_run_holds_the_report(real_report: Path, real_study: RealStudy):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(real_study.uri)
    experiment = client.get_experiment_by_name(REAL_EXPERIMENT)
    parents = client.search_runs([experiment.experiment_id], "tags.`study.role` = 'parent'")
    assert len(parents) == 1
    logged = {a.path for a in client.list_artifacts(parents[0].info.run_id, "report")}
    assert {"report/report.md", "report/report.html", "report/leaderboard.csv",
            "report/tsne_montage.png"} <= logged


def test_unknown_experiment_exits_2_listing_the_existing_ones(real_study: RealStudy, capsys):
    code = main(["--experiment-name", "no-such-study", "--tracking-uri", real_study.uri,
                 "--out", str(real_study.folder / "unused")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "no-such-study" in err and REAL_EXPERIMENT in err


def test_unknown_experiment_from_the_command_line(tmp_path: Path):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    MlflowClient(uri).create_experiment("exists")
    proc = subprocess.run([sys.executable, "-m", "analysis.summarize", "--experiment-name",
                           "missing", "--tracking-uri", uri], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: experiment 'missing' not found in {uri}; existing experiments: Default, exists"]
    assert not (tmp_path / "reports").exists()


def test_missing_store_exits_2(tmp_path: Path, capsys):
    code = main(["--experiment-name", "x", "--tracking-uri", f"sqlite:///{tmp_path / 'no.db'}"])
    assert code == 2
    assert "no MLflow store" in capsys.readouterr().err
    assert not (tmp_path / "no.db").exists()


def test_empty_experiment_says_so(tmp_path: Path, monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)
    MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").create_experiment("empty-study")
    # default tracking URI: sqlite:///<cwd>/mlflow.db; default folder: reports/<name>
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert main(["--experiment-name", "empty-study"]) == 0
    md = (tmp_path / "reports" / "empty-study" / "report.md").read_text()
    assert "not enough trials: n=0" in md
    assert "| total | 0 |" in md
    assert not NAN.search(md)


def test_failed_running_and_too_few_trials(tmp_path: Path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    write_synthetic_study(uri, "mixed", scored=24, failed=2, running=1, seed=1)
    write_synthetic_study(uri, "tiny", scored=1, failed=1, seed=2)
    out = tmp_path / "cmp"
    assert main(["--experiment-name", "mixed", "--experiment-name", "tiny",
                 "--tracking-uri", uri, "--out", str(out), "--top", "5"]) == 0
    md = (out / "report.md").read_text()
    assert not NAN.search(md)
    heads = _sections(md)
    assert "Comparison of experiments" in heads
    assert "Experiment `mixed`" in heads and "Experiment `tiny`" in heads
    # counts side by side, one column per experiment
    assert re.search(r"^\| failed \| 2 \| 1 \|$", md, flags=re.MULTILINE)
    assert re.search(r"^\| running \| 1 \| 0 \|$", md, flags=re.MULTILINE)
    assert "mixed mean [95% CI]" in md and "tiny mean [95% CI]" in md
    assert "RuntimeError: synthetic failure" in md
    # the tiny study: one scored trial -> statistics say so instead of computing
    assert "not enough trials: n=1" in md
    # no t-SNE artifacts in synthetic runs: the montage still renders, one panel per cell
    assert (out / "mixed" / "tsne_montage.png").is_file()
    assert (out / "comparison_metric.png").is_file()
    assert (out / "mixed" / "interaction.png").is_file()
    side = pd.read_csv(out / "comparison_dim_mode.csv")
    assert set(side["experiment"]) == {"mixed", "tiny"}
    # the synthetic metric is driven by the mode: triplet wins, and importance sees it
    mode_pairs = pd.read_csv(out / "mixed" / "pairs_mode.csv")
    assert (mode_pairs["winner"] == "triplet").sum() == len(mode_pairs) - (
        len(mode_pairs) > 1)  # triplet beats each other mode; the others tie
    importance = pd.read_csv(out / "mixed" / "importance.csv")
    main_scope = importance[importance["scope"] == "all trials"]
    assert main_scope.iloc[0]["dimension"] == "mode"
    html = (out / "report.html").read_text()
    for data in DATA_URI.findall(html):
        with Image.open(io.BytesIO(base64.b64decode(data))) as im:
            im.verify()
    # a comparison is logged below report/<report folder name>/ of every parent run
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    for name in ("mixed", "tiny"):
        experiment = client.get_experiment_by_name(name)
        parent = client.search_runs([experiment.experiment_id], "tags.`study.role` = 'parent'")[0]
        logged = {a.path for a in client.list_artifacts(parent.info.run_id, "report/cmp")}
        assert "report/cmp/report.md" in logged and "report/cmp/mixed" in logged
