"""The sections of one study's report, in reading order, with their CSV tables and figures.

overview (parent runs) -> trial counts -> caveat -> leaderboard -> per dimension (table,
box plot, pairwise tests) -> augmentation x mode interaction -> parameter importance ->
t-SNE montage. Each section function returns document blocks and writes its files through
an ``Output``.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis import plots
from analysis.dimensions import Dimension, dimension, value_order
from analysis.document import Block, Bullets, Heading, Image, Paragraph, Table, fmt, fmt_ci
from analysis.grouping import dimension_groups
from analysis.importance import importance_table, study_importance
from analysis.load import OUTCOMES, Study
from analysis.stats import MIN_TEST_N, pairwise_tests, summarize_groups
from study.schema import OBJECTIVE, OBJECTIVE_MODE
from trainables.config import DIMENSIONS

LEADERBOARD_TOP = 10
HIGHER_IS_BETTER = OBJECTIVE_MODE == "max"
CAVEAT = (
    "**How to read the comparisons.** The adaptive (TPE) search samples settings unevenly: "
    "it proposes more trials near settings that scored well, so well-sampled values get "
    "narrower intervals and more weight, and values it abandoned early have few trials. "
    "ASHA stops weak trials early, so those trials have fewer epochs and their final "
    f"{OBJECTIVE} is lower than full training would give. Every statistic below uses each "
    "trial's final metric value and shows the n behind it; per-value comparisons are biased "
    "toward well-sampled settings and are evidence, not a controlled experiment."
)


@dataclass
class Output:
    """Where a report's files go. ``folder``: this study's files (the report folder, or a
    subfolder of it per study in a comparison); ``written`` collects every file written."""

    root: Path
    folder: Path
    written: list[Path] = field(default_factory=list)

    def path(self, name: str) -> Path:
        """A file in ``folder`` (created), recorded as written; returns its path."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / name
        if path not in self.written:
            self.written.append(path)
        return path

    def csv(self, frame: pd.DataFrame, name: str) -> Path:
        """Write ``frame`` as CSV (no index); returns the path."""
        path = self.path(name)
        frame.to_csv(path, index=False)
        return path

    def sub(self, name: str) -> Output:
        """An ``Output`` for a subfolder that records into the same ``written`` list."""
        return Output(self.root, self.root / slug(name), self.written)


def slug(name: str) -> str:
    """A file-name-safe version of ``name``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "study"


def study_sections(study: Study, client: Any, out: Output, *, top: int = LEADERBOARD_TOP,
                   level: int = 2, seed: int = 0) -> list[Block]:
    """Every section of one study's report; writes its CSV and PNG files into ``out``."""
    blocks = overview(study, out, level) + counts_section(study, out, level)
    if study.trials.empty:
        blocks.append(Paragraph("not enough trials: n=0 — this experiment holds no trial runs, "
                                "so there is nothing to rank or compare yet."))
        return blocks
    if study.scored.empty:
        blocks.append(Paragraph(f"not enough trials: n=0 trials reported a final {OBJECTIVE}, "
                                "so there is nothing to rank or compare yet."))
        return blocks
    blocks.append(Paragraph(CAVEAT))
    blocks += leaderboard_section(study, out, level, top)
    blocks += dimension_sections(study, out, level, seed)
    blocks += interaction_section(study, out, level)
    blocks += importance_section(study, out, level, seed)
    blocks += montage_section(study, client, out, level)
    return blocks


def overview(study: Study, out: Output, level: int, *, dimensions: bool = True) -> list[Block]:
    """Parent runs (count, seeds, status) and, when ``dimensions``, the searched dimensions
    and those left out of the analysis."""
    parents = study.parents
    blocks: list[Block] = [Heading("Study", level)]
    if parents.empty:
        blocks.append(Paragraph(f"Experiment `{study.name}` (id {study.experiment_id}) has no "
                                "parent run (`study.role=parent`)."))
    else:
        seeds = ", ".join(fmt(s) for s in parents["study_seed"].dropna().astype(int).unique())
        statuses = ", ".join(f"{n} {s}" for s, n in parents["status"].value_counts().items())
        datasets = ", ".join(str(d) for d in parents["dataset"].dropna().unique()) or "–"
        blocks.append(Paragraph(
            f"Experiment `{study.name}` (id {study.experiment_id}): {len(parents)} parent "
            f"run(s) — study seed(s) {seeds or '–'}; dataset {datasets}; status {statuses}. "
            f"All {len(study.trials)} trial runs of the experiment are analysed together."))
        table = pd.DataFrame({
            "parent run": parents["run_name"] + " (" + parents["run_id"].str[:8] + ")",
            "status": parents["status"],
            "seed": parents["study_seed"].astype("Int64"),
            "trials asked": parents["num_samples"].astype("Int64"),
            "max epochs": parents["max_epochs"].astype("Int64"),
            "dataset": parents["dataset"],
            "started (UTC)": parents["start_time"].dt.strftime("%Y-%m-%d %H:%M"),
            "code version": parents["code_version"].fillna("–").str[:12],
        })
        blocks.append(Table(table))
        out.csv(parents, "parents.csv")
    if not dimensions:
        return blocks
    blocks.append(Paragraph(f"Objective: final `{OBJECTIVE}` ({'higher' if HIGHER_IS_BETTER else 'lower'}"
                            " is better). Searched dimensions analysed: "
                            + (", ".join(f"`{d}`" for d in study.searched) or "none") + "."))
    if study.not_searched and not study.trials.empty:
        blocks.append(Paragraph("Left out of the per-dimension analysis:"))
        blocks.append(Bullets(tuple(f"`{d}`: {why}" for d, why in study.not_searched.items())))
    return blocks


def counts_section(study: Study, out: Output, level: int) -> list[Block]:
    """Trials per outcome (finished, stopped early, failed, running), total and scored."""
    trials = study.trials
    counts = {o: int((trials["outcome"] == o).sum()) for o in OUTCOMES}
    other = len(trials) - sum(counts.values())
    rows = [{"outcome": o, "trials": n} for o, n in counts.items()]
    if other:
        rows.append({"outcome": "other", "trials": other})
    rows += [{"outcome": "total", "trials": len(trials)},
             {"outcome": f"with a final {OBJECTIVE}", "trials": len(study.scored)}]
    table = pd.DataFrame(rows)
    out.csv(table, "counts.csv")
    out.csv(trials, "trials.csv")
    blocks: list[Block] = [Heading("Trial counts", level), Table(table)]
    failed = trials[trials["outcome"] == "failed"]
    if not failed.empty:
        items = [f"trial {t.trial_id}: {t.error or 'no error text recorded'}"
                 for t in failed.head(5).itertuples()]
        if len(failed) > 5:
            items.append(f"... and {len(failed) - 5} more (see trials.csv)")
        blocks += [Paragraph("Failed trials (the last line of each error):"), Bullets(tuple(items))]
    return blocks


def settings_columns(frame: pd.DataFrame, dims: tuple[str, ...]) -> pd.DataFrame:
    """One formatted column per dimension; "–" where the dimension does not apply."""
    cols = {}
    for name in dims:
        dim = dimension(name)
        cols[name] = [_setting(v, dim) if ok else "–"
                      for v, ok in zip(frame[name], dim.applies(frame), strict=True)]
    return pd.DataFrame(cols, index=frame.index)


def _setting(value: Any, dim: Dimension) -> str:
    if pd.isna(value):
        return "–"
    if dim.log:
        return f"{float(value):.2e}"
    return fmt(float(value), 3) if dim.numeric else str(value)


def ranked(trials: pd.DataFrame) -> pd.DataFrame:
    """Scored trials, best first."""
    scored = trials[trials[OBJECTIVE].notna()]
    return scored.sort_values(OBJECTIVE, ascending=not HIGHER_IS_BETTER, kind="stable")


def leaderboard_section(study: Study, out: Output, level: int, top: int) -> list[Block]:
    """The ``top`` best trials with their settings and metrics."""
    best = ranked(study.trials).head(top)
    table = pd.concat([
        pd.DataFrame({"rank": range(1, len(best) + 1), "trial": best["trial_id"].to_numpy()},
                     index=best.index),
        settings_columns(best, study.searched),
        pd.DataFrame({OBJECTIVE: best[OBJECTIVE].map(lambda v: fmt(v, 4)),
                      "val_knn_accuracy": best["val_knn_accuracy"].map(lambda v: fmt(v, 4)),
                      "epochs run": best["epochs_run"].map(lambda v: fmt(int(v)) if pd.notna(v) else "–"),
                      "outcome": best["outcome"]}, index=best.index),
    ], axis=1)
    out.csv(best.assign(rank=range(1, len(best) + 1)), "leaderboard.csv")
    same = [f"{d}={fmt(study.trials[d].dropna().iloc[0])}" for d in study.not_searched
            if d in study.trials and study.trials[d].nunique() == 1]
    blocks: list[Block] = [
        Heading(f"Leaderboard (top {len(best)} of {len(study.scored)} scored trials)", level),
        Table(table.reset_index(drop=True)),
        Paragraph(_not_applicable(study.searched) + "Full rows: `leaderboard.csv`; every "
                  "trial: `trials.csv`." + (f" Same in every trial: {', '.join(same)}."
                                            if same else "")),
    ]
    return blocks


def _not_applicable(searched: tuple[str, ...]) -> str:
    conditions = [f"{d} exists only with {dimension(d).only_if}" for d in searched
                  if dimension(d).only_if is not None]
    return f"“–”: not applicable ({'; '.join(conditions)}). " if conditions else ""


def dimension_summary(trials: pd.DataFrame, name: str,
                      reference: pd.DataFrame | None = None) -> tuple[pd.Series, pd.DataFrame]:
    """The groups of dimension ``name`` and their statistics (``summarize_groups`` columns,
    ``group`` renamed ``value``)."""
    groups = dimension_groups(trials, name, reference)
    summary = summarize_groups(groups, trials[OBJECTIVE]).rename(columns={"group": "value"})
    return groups, summary


def summary_table(summary: pd.DataFrame) -> pd.DataFrame:
    """``dimension_summary``'s frame formatted for the report."""
    return pd.DataFrame({
        "value": summary["value"],
        "n": summary["n"],
        "mean": summary["mean"].map(lambda v: fmt(v, 3)),
        "median": summary["median"].map(lambda v: fmt(v, 3)),
        "95% CI of the mean": [fmt_ci(lo, hi) if n >= 2 else f"not enough trials: n={n}"
                               for lo, hi, n in zip(summary["ci_low"], summary["ci_high"],
                                                    summary["n"], strict=True)],
    })


def dimension_sections(study: Study, out: Output, level: int, seed: int) -> list[Block]:
    """Per searched dimension: statistics per value or bin, a box plot, pairwise tests."""
    trials = study.trials
    blocks: list[Block] = [Heading("Per dimension", level), Paragraph(
        f"Final {OBJECTIVE} per value (numeric dimensions: per quantile bin), with the mean's 95 % "
        "percentile bootstrap CI (2000 resamples, seeded). Categorical values are compared "
        "pairwise with a two-sided Mann-Whitney U test, Holm-corrected across the pairs of "
        f"the dimension (groups with n < {MIN_TEST_N} are not tested).")]
    if not study.searched:
        blocks.append(Paragraph("No dimension takes more than one value in this study."))
    if len(study.scored) < 2:
        blocks.append(Paragraph(f"not enough trials: n={len(study.scored)} scored — "
                                "per-value statistics need at least 2."))
        return blocks
    for name in study.searched:
        dim = dimension(name)
        groups, summary = dimension_summary(trials, name, reference=study.scored)
        out.csv(summary, f"dim_{name}.csv")
        blocks.append(Heading(f"`{name}`", level + 1))
        if dim.condition_text():
            blocks.append(Paragraph(f"Condition: {dim.condition_text()}."))
        n = int(summary["n"].sum())
        if n < 2:
            blocks.append(Paragraph(f"not enough trials: n={n} with a value of `{name}`."))
            continue
        blocks.append(Table(summary_table(summary)))
        scored = trials[trials[OBJECTIVE].notna() & groups.notna()]
        labels = [str(g) for g in summary["value"]]
        values = [scored.loc[groups[scored.index] == g, OBJECTIVE].to_numpy(float) for g in labels]
        outcomes = [scored.loc[groups[scored.index] == g, "outcome"].tolist() for g in labels]
        kind = "quantile bin" if dim.numeric else "value"
        png = plots.box_plot(labels, values, outcomes, out.path(f"dim_{name}.png"),
                             title=f"{OBJECTIVE} by {name}", xlabel=f"{name} ({kind})", seed=seed)
        blocks.append(Image(png, f"{OBJECTIVE} by {name}"))
        if not dim.numeric:
            pairs = pairwise_tests(groups, trials[OBJECTIVE], higher_is_better=HIGHER_IS_BETTER)
            out.csv(pairs, f"pairs_{name}.csv")
            if len(pairs):
                blocks.append(Bullets(tuple(pairs["verdict"])))
    return blocks


def axis_values(study: Study, name: str) -> list[str]:
    """Rows/columns for a grid over ``name``: every choice when searched, else the values
    the trials took."""
    present = value_order(name, study.trials[name]) if name in study.trials else []
    if name in study.searched and DIMENSIONS[name].kind == "str":
        return value_order(name, pd.Series(DIMENSIONS[name].choices))
    return [str(v) for v in present]


def interaction_section(study: Study, out: Output, level: int) -> list[Block]:
    """Mean final metric and n per augmentation x mode cell: table, CSV, heat map."""
    blocks: list[Block] = [Heading("Interaction: augmentation × mode", level)]
    rows, cols = axis_values(study, "augmentation"), axis_values(study, "mode")
    scored = study.scored
    cells = []
    for aug in rows:
        for mode in cols:
            x = scored.loc[(scored["augmentation"] == aug) & (scored["mode"] == mode), OBJECTIVE]
            s = summarize_groups(pd.Series("cell", index=x.index), x)
            stats = s.iloc[0] if len(s) else pd.Series({"n": 0, "mean": np.nan, "median": np.nan,
                                                        "ci_low": np.nan, "ci_high": np.nan})
            cells.append({"augmentation": aug, "mode": mode, "n": int(stats["n"]),
                          "mean": stats["mean"], "median": stats["median"],
                          "ci_low": stats["ci_low"], "ci_high": stats["ci_high"]})
    long = pd.DataFrame(cells, columns=["augmentation", "mode", "n", "mean", "median",
                                        "ci_low", "ci_high"])
    out.csv(long, "interaction.csv")
    grid = pd.DataFrame({"augmentation": rows})
    for mode in cols:
        grid[mode] = [_cell_text(long, aug, mode) for aug in rows]
    blocks.append(Table(grid))
    means = long.pivot(index="augmentation", columns="mode", values="mean").reindex(
        index=rows, columns=cols).to_numpy(float)
    counts = long.pivot(index="augmentation", columns="mode", values="n").reindex(
        index=rows, columns=cols).fillna(0).to_numpy(int)
    png = plots.heat_map(means, counts, rows, cols, out.path("interaction.png"),
                         title=f"mean {OBJECTIVE}: augmentation × mode", row_label="augmentation",
                         col_label="mode", colour_label=f"mean final {OBJECTIVE}")
    blocks += [Image(png, "augmentation x mode heat map"), Paragraph(
        "Each cell mixes every other setting (loss, margin, embedding size, learning rate) as "
        "the search happened to sample them; read small cells with care.")]
    return blocks


def _cell_text(long: pd.DataFrame, aug: str, mode: str) -> str:
    row = long[(long["augmentation"] == aug) & (long["mode"] == mode)].iloc[0]
    return "no trial" if row["n"] == 0 else f"{fmt(row['mean'], 3)} (n={row['n']})"


def importance_section(study: Study, out: Output, level: int, seed: int) -> list[Block]:
    """fANOVA importance per scope (see ``analysis.importance``), with a bar chart of the
    main scope and the dimensions left out and why."""
    blocks: list[Block] = [Heading("Parameter importance", level)]
    results = study_importance(study.trials, study.searched, seed=seed)
    out.csv(importance_table(results), "importance.csv")
    main, rest = results[0], results[1:]
    conditional = [d for d in study.searched if dimension(d).conditional]
    blocks.append(Paragraph(
        "Optuna's fANOVA (`FanovaImportanceEvaluator`, seeded) on an in-memory Optuna study "
        f"rebuilt from the trials' settings and final {OBJECTIVE}: the share of the metric's "
        "variance each dimension explains. fANOVA needs every dimension in every trial, so "
        "the main table uses the dimensions present in all trials; conditional dimensions are "
        "scored within the trials where they exist."))
    if main.importances:
        table = pd.DataFrame({"dimension": list(main.importances),
                              "importance": [f"{100 * v:.1f} %" for v in main.importances.values()]})
        blocks += [Paragraph(f"All trials (n={main.n}):"), Table(table)]
        png = plots.importance_bars(main.importances, out.path("importance.png"),
                                    title=f"importance for {OBJECTIVE}, all trials (n={main.n})")
        blocks.append(Image(png, "parameter importance"))
    else:
        blocks.append(Paragraph(f"All trials: {main.note}."))
    if conditional:
        blocks += [Paragraph("Left out of the all-trials table (conditional dimensions):"),
                   Bullets(tuple(f"`{d}`: {dimension(d).condition_text()}" for d in conditional))]
    if rest:
        rows = []
        for r in rest:
            text = (", ".join(f"{d} {100 * v:.0f} %" for d, v in r.importances.items())
                    if r.importances else r.note)
            rows.append({"scope": r.scope, "n": r.n, "importance": text})
        blocks += [Paragraph("Within the trials where conditional dimensions exist:"),
                   Table(pd.DataFrame(rows))]
    return blocks


def montage_section(study: Study, client: Any, out: Output, level: int) -> list[Block]:
    """The best trial's t-SNE plot for each augmentation x mode cell, in one figure."""
    rows, cols = axis_values(study, "augmentation"), axis_values(study, "mode")
    best = ranked(study.trials).groupby(["augmentation", "mode"], sort=False).head(1)
    picks = []
    with tempfile.TemporaryDirectory() as tmp:
        cells: dict[tuple[str, str], tuple[Path | None, str]] = {}
        for t in best.itertuples():
            image = _download(client, t.run_id, Path(tmp) / t.run_id)
            caption = f"{OBJECTIVE}={fmt(getattr(t, OBJECTIVE), 3)} (trial {t.trial_id})"
            cells[(str(t.augmentation), str(t.mode))] = (image, caption)
            picks.append({"augmentation": t.augmentation, "mode": t.mode, "trial": t.trial_id,
                          OBJECTIVE: fmt(getattr(t, OBJECTIVE), 4),
                          "t-SNE": "shown" if image else "no tsne.png artifact"})
        png = plots.montage(cells, rows, cols, out.path("tsne_montage.png"),
                            title=f"t-SNE of the best trial per cell ({study.name})",
                            row_label="augmentation", col_label="mode")
    blocks: list[Block] = [Heading("t-SNE montage: best trial per augmentation × mode", level),
                           Image(png, "t-SNE montage")]
    if picks:
        blocks.append(Table(pd.DataFrame(picks)))
    return blocks


def _download(client: Any, run_id: str, folder: Path) -> Path | None:
    """The run's ``tsne.png`` downloaded into ``folder``, or None when it has none."""
    folder.mkdir(parents=True, exist_ok=True)
    with _no_progress_bar():
        try:
            return Path(client.download_artifacts(run_id, "tsne.png", str(folder)))
        except Exception:  # noqa: BLE001 - a missing artifact shows as "no t-SNE image"
            return None


@contextmanager
def _no_progress_bar() -> Iterator[None]:
    """MLflow draws a progress bar per download on stderr; switch it off meanwhile."""
    key = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    old = os.environ.get(key)
    os.environ[key] = "false"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = old
