"""The original study's view in the report: on a REAL seed grid made by ``study.run
--preset seed-grid`` (one seed, one epoch), and on two synthetic grids (two datasets)."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from analysis.grid import ACCURACY_METRICS
from analysis.summarize import main
from study.presets import GRID_AUGMENTATIONS, GRID_MODES, ORIGINAL_LOSS
from study.schema import OBJECTIVE, STRUCTURE_METRICS
from tests.analysis.conftest import RealStudy
from tests.analysis.synthetic import write_synthetic_grid

PROBE = ACCURACY_METRICS[0]


NAN = re.compile(r"\bnan\b", re.IGNORECASE)
DATA_URI = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')
VERDICT = re.compile(r"^\*\*Verdict: (supported|not supported|mixed|needs both datasets|"
                     r"not enough data)\.\*\*", re.MULTILINE)


@pytest.fixture(scope="module")
def grid_report(real_grid: RealStudy, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("grid-report") / "report"
    code = main(["--experiment-name", real_grid.experiment, "--tracking-uri", real_grid.uri,
                 "--out", str(out)])
    assert code == 0
    return out


def _section(md: str, heading: str) -> str:
    """The text of the section under ``heading`` (up to the next heading of its level)."""
    match = re.search(rf"^(#+) {re.escape(heading)}\n(.*?)(?=^\1 |\Z)", md,
                      flags=re.MULTILINE | re.DOTALL)
    assert match, f"no section {heading!r}"
    return match.group(2)


def test_the_preset_runs_the_full_factorial(real_grid: RealStudy):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(real_grid.uri)
    experiment = client.get_experiment_by_name(real_grid.experiment)
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("study.role") == "parent"]
    trials = [r for r in runs if r.data.tags.get("study.role") == "trial"]
    assert len(parents) == 1 and len(trials) == 6
    parent = parents[0].data
    assert parent.tags["preset"] == parent.params["preset"] == "seed-grid"
    assert parent.params["grid_seeds"] == "1" and parent.params["scheduler"] == "FIFO"
    cells = {(r.data.params["augmentation"], r.data.params["mode"], r.data.params["loss"])
             for r in trials}
    assert cells == {(aug, mode, loss) for aug in GRID_AUGMENTATIONS
                     for mode, (loss, _) in ORIGINAL_LOSS.items()}
    assert len({r.data.params["seed"] for r in trials}) == 1  # one seed, shared by all cells
    assert all(r.data.tags["outcome"] == "finished" for r in trials)
    for r in trials:  # the driver logged the structure measures at the end of each trial
        assert {"silhouette", "line_likeness", "tsne_silhouette", "tsne_line_likeness",
                OBJECTIVE} <= set(r.data.metrics)


def test_grid_report_sections(grid_report: Path):
    md = (grid_report / "report.md").read_text()
    heads = re.findall(r"^#{1,6} (.+)$", md, flags=re.MULTILINE)
    for expected in ("Seed grid: design and budget", "Accuracy: augmentation × mode",
                     "Raw-pixel floor", "Seed-paired comparisons",
                     "t-SNE plots: augmentation × mode", "Structure: clusters or lines",
                     "The original study's observations"):
        assert expected in heads, heads
    # search-only sections make no sense for a grid
    assert not any(h.startswith(("Leaderboard", "Parameter importance", "Per dimension"))
                   for h in heads)
    assert "adaptive (TPE) search" not in md
    assert not NAN.search(md)
    assert "**Small budget.**" in md


def test_budget_states_images_seen_and_compute(grid_report: Path):
    md = (grid_report / "report.md").read_text()
    budget = pd.read_csv(grid_report / "grid_budget.csv")
    trials = pd.read_csv(grid_report / "trials.csv")
    for mode in GRID_MODES:
        seen = trials.loc[trials["mode"] == mode, "images_seen"]
        assert seen.nunique() == 1 and seen.iloc[0] > 0
        assert int(budget[f"images seen ({mode})"].iloc[0]) == int(seen.iloc[0])
    pair, triplet = (int(trials.loc[trials["mode"] == m, "images_seen"].iloc[0])
                     for m in GRID_MODES)
    # every comparison states its epoch and budget
    assert (f"epoch 1 (each trial's last), test split, train_subset 300, images seen per trial "
            f"pair {pair} / triplet {triplet}, 1 seed(s) per cell") in md
    assert "`test-grid`: compute was **not matched**" in md  # triplet encodes 3 views, pair 2
    assert "`test-grid`, compared at epoch 1" in _section(md, "Seed-paired comparisons")


def test_accuracy_tables_show_the_floor(grid_report: Path):
    md = (grid_report / "report.md").read_text()
    floor = pd.read_csv(grid_report / "parents.csv")
    for metric in ACCURACY_METRICS:  # probe, precision@1 and MAP@R, each with the floor
        section = _section(md, f"`{metric}`")
        assert "| augmentation | pair | triplet |" in section
        for aug in GRID_AUGMENTATIONS:
            cell = r"[0-9.]+ \(no interval\) \(n=1\)( †)?"
            assert re.search(rf"^\| {aug} \| {cell} \| {cell} \|$", section,
                             flags=re.MULTILINE), section
        value = floor[f"floor_{metric}"].iloc[0]
        assert f"| raw pixels | {value:.3f} | {value:.3f} |" in section
    assert "**Raw-pixel floor.**" in md and "† marks a cell whose mean does not beat it" in md
    cells = pd.read_csv(grid_report / "grid_accuracy.csv")
    trials = pd.read_csv(grid_report / "trials.csv")
    probe_cells = cells[cells["metric"] == PROBE]
    assert len(probe_cells) == 6 and (probe_cells["n"] == 1).all()
    assert probe_cells["floor"].notna().all()
    for row in probe_cells.itertuples():
        value = trials.loc[(trials["augmentation"] == row.augmentation)
                           & (trials["mode"] == row.mode), PROBE]
        assert row.mean == pytest.approx(value.iloc[0])
        assert row.beats_floor == (value.iloc[0] > row.floor)
    per_trial = pd.read_csv(grid_report / "grid_trials.csv")
    assert len(per_trial) == 6 and f"{PROBE} beats floor" in per_trial
    # one seed: the comparisons show single differences and no test, and say why
    assert "With 1 seed per cell no test is possible" in md
    pairs = pd.read_csv(grid_report / "grid_pairs.csv")
    assert len(pairs) == 9 * len(ACCURACY_METRICS) and pairs["p"].isna().all()


def test_tsne_grid_is_embedded(grid_report: Path):
    md = (grid_report / "report.md").read_text()
    assert "![t-SNE grid test-grid](grid_tsne_test-grid.png)" in md
    with Image.open(grid_report / "grid_tsne_test-grid.png") as im:
        assert im.width > 900 and im.height > 600  # 2 rows (modes) x 3 columns (augmentations)
    picks = pd.read_csv(grid_report / "grid_tsne_picks.csv")
    assert len(picks) == 6 and (picks["t-SNE"] == "shown").all()
    assert "median-probe seed" in md
    html = (grid_report / "report.html").read_text()
    images = DATA_URI.findall(html)
    assert len(images) == md.count("![")
    for data in images:
        with Image.open(io.BytesIO(base64.b64decode(data))) as im:
            im.verify()


def test_structure_table_and_its_explanation(grid_report: Path):
    md = (grid_report / "report.md").read_text()
    section = _section(md, "Structure: clusters or lines")
    assert ("| augmentation | mode | " + " | ".join(STRUCTURE_METRICS) + " |") in section
    assert "**line_likeness**: how 1-D each class is locally" in section and "64 dim" in section
    structure = pd.read_csv(grid_report / "grid_structure.csv")
    assert set(structure["measure"]) == set(STRUCTURE_METRICS)
    assert len(structure) == 6 * len(STRUCTURE_METRICS) and structure["mean"].notna().all()


def test_observations_each_have_a_verdict(grid_report: Path):
    md = (grid_report / "report.md").read_text()
    section = _section(md, "The original study's observations")
    assert len(VERDICT.findall(section)) == 3
    assert "**Verdict: needs both datasets.**" in section  # one dataset only
    assert "Compared at: `test-grid` (digits): epoch 1" in section
    observations = pd.read_csv(grid_report / "grid_observations.csv")
    assert list(observations["observation"]) == [1, 2, 3]
    # one seed: no augmentation comparison can be tested
    assert observations["verdict"].iloc[0] == "not enough data"
    # observation 3 pools the 3 augmentations: 3 seed-matched pairs per check, tested
    checks = pd.read_csv(grid_report / "grid_structure_checks.csv")
    assert len(checks) == 4 and (checks["n"] == 3).all() and checks["p"].notna().all()


def test_two_datasets_compare_the_picture(tmp_path: Path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    write_synthetic_grid(uri, "grid-mnist", dataset="mnist", triplet_gain=0.05, seed=0)
    # triplet hurts on cifar10, its cells do not beat the floor, every silhouette is negative
    write_synthetic_grid(uri, "grid-cifar10", dataset="cifar10", triplet_gain=-0.05,
                         silhouette=-0.5, floor=0.82, seed=1)
    out = tmp_path / "cmp"
    assert main(["--experiment-name", "grid-mnist", "--experiment-name", "grid-cifar10",
                 "--tracking-uri", uri, "--out", str(out), "--no-log"]) == 0
    md = (out / "report.md").read_text()
    assert not NAN.search(md)
    heads = re.findall(r"^#{1,6} (.+)$", md, flags=re.MULTILINE)
    assert "Comparison of experiments" not in heads  # the grid view replaces it
    assert "Experiment `grid-mnist`" in heads and "Experiment `grid-cifar10`" in heads
    probe = _section(md, f"`{PROBE}`")
    assert ("| augmentation | grid-mnist: pair | grid-mnist: triplet | grid-cifar10: pair | "
            "grid-cifar10: triplet |") in probe
    assert "| raw pixels | 0.800 | 0.800 | 0.820 | 0.820 |" in probe
    rows = [line for line in probe.splitlines() if line.startswith(
        tuple(f"| {aug} |" for aug in GRID_AUGMENTATIONS))]
    assert len(rows) == 3
    for line in rows:  # only cifar10's triplet cells do not beat the floor
        assert line.count("†") == 1 and line.rstrip(" |").endswith("†"), line
    assert "`grid-cifar10`: compute was **not matched** — pair 4000 vs triplet 6000" in md
    assert "With n=3 seeds Wilcoxon's signed-rank test cannot reach p < 0.05" in md
    assert ("Every `silhouette` and every `tsne_silhouette` in `grid-cifar10` is below 0"
            in _section(md, "Structure: clusters or lines"))
    observations = pd.read_csv(out / "grid_observations.csv")
    by = {(r.observation, r.scope): r.verdict for r in observations.itertuples()}
    # triplet helps on one dataset and hurts on the other, clearly: the picture changes
    assert by[(2, "grid-mnist → grid-cifar10")] == "supported"
    shifts = pd.read_csv(out / "grid_effect_shifts.csv")
    assert (shifts["experiment_first"] == "grid-mnist").all()
    assert (shifts["experiment_second"] == "grid-cifar10").all()
    assert shifts["diffs_first"].str.startswith("(").all()  # the per-seed differences
    differing = shifts[shifts["differs"]]
    assert len(shifts) == 27 and (differing["mean_first"] * differing["mean_second"] < 0).all()
    # a reversal is clear on both sides; with 3 seeds some are clear on one side only
    assert differing["reverses"].any()
    assert (differing["reverses"] == (differing["clear_first"] & differing["clear_second"])).all()
    assert set(differing["change"]) <= {"reverses", "clear in one only"}
    # augmentation does nothing here, in either dataset
    assert by[(1, "grid-mnist")] == by[(1, "grid-cifar10")] == "not supported"
    # triplet clusters, pair lines, built into both
    assert by[(3, "grid-mnist")] == by[(3, "grid-cifar10")] == "supported"
    # synthetic runs have no t-SNE artifact: the grid says so, the report still renders
    picks = pd.read_csv(out / "grid_tsne_picks.csv")
    assert (picks["t-SNE"] == "no tsne.png artifact").all() and len(picks) == 12
    assert (out / "grid_tsne_grid-mnist.png").is_file()
    assert (out / "grid-mnist" / "counts.csv").is_file()
