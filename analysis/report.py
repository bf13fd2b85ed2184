"""One search study's report, in reading order, with its CSV tables and figures.

overview (parent runs, budget) -> trial counts -> how to read it -> the raw-pixel floor ->
leaderboard (chosen on validation, reported on test) -> per dimension, interaction and
importance (``analysis.dimension_report``) -> t-SNE montage.  Each section function returns
document blocks and writes its files through an ``Output``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.defaults import LEADERBOARD_TOP, slug
from analysis.dimensions import dimension
from analysis.document import Block, Bullets, Heading, Image, Paragraph, Table, fmt
from analysis.load import OUTCOMES, Study
from analysis.montage import Panel, tsne_montage
from study.schema import FAILED, FINISHED, OBJECTIVE, OBJECTIVE_MODE, TEST, VAL

HIGHER_IS_BETTER = OBJECTIVE_MODE == "max"
SCORES = {"probe_accuracy": "probe", "knn_accuracy": "kNN", "precision_at_1": "P@1",
          "map_at_r": "MAP@R"}  # a split's scores and their short names in tables
BELOW_FLOOR = "†"  # marks a score that does not beat the raw pixels'
CAVEAT = (
    "**How to read the comparisons.** Settings are chosen on the validation split "
    f"(`{OBJECTIVE}`, each trial at its last epoch); the test split is scored once per trial, "
    "at its end, and never steers the search. The adaptive (TPE) search samples settings "
    "unevenly: it proposes more trials near settings that scored well, so well-sampled values "
    "get narrower intervals and more weight. ASHA stops weak trials early, so trials differ in "
    "how long they trained: the per-dimension comparisons therefore take every trial at the "
    "epoch all of them reached, and show the finished trials' final figures apart. They are "
    "evidence, not a controlled experiment (for that, see `--preset seed-grid`)."
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


def study_sections(study: Study, client: Any, out: Output, *, top: int = LEADERBOARD_TOP,
                   level: int = 2, seed: int = 0) -> list[Block]:
    """Every section of one study's report; writes its CSV and PNG files into ``out``."""
    from analysis.dimension_report import (
        dimension_sections,
        importance_section,
        interaction_section,
    )

    blocks = overview(study, out, level) + counts_section(study, out, level)
    if study.trials.empty:
        blocks.append(Paragraph("not enough trials: n=0 — this experiment holds no trial runs, "
                                "so there is nothing to rank or compare yet."))
        return blocks
    if study.scored.empty:
        blocks.append(Paragraph(f"not enough trials: n=0 trials reported `{OBJECTIVE}`, "
                                "so there is nothing to rank or compare yet."))
        return blocks
    blocks.append(Paragraph(CAVEAT))
    blocks += floor_section(study, out, level)
    blocks += leaderboard_section(study, out, level, top)
    blocks += dimension_sections(study, out, level, seed)
    blocks += interaction_section(study, out, level)
    blocks += importance_section(study, out, level)
    blocks += montage_section(study, client, out, level)
    return blocks


def overview(study: Study, out: Output, level: int, *, dimensions: bool = True) -> list[Block]:
    """Parent runs (seeds, status, budget) and, when ``dimensions``, the searched dimensions
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
        blocks.append(Table(pd.DataFrame({
            "parent run": parents["run_name"] + " (" + parents["run_id"].str[:8] + ")",
            "status": parents["status"],
            "seed": parents["study_seed"].astype("Int64"),
            "trials asked": parents["num_samples"].astype("Int64"),
            "max epochs": parents["max_epochs"].astype("Int64"),
            "validation images": parents["val_size"].astype("Int64"),
            "started (UTC)": parents["start_time"].dt.strftime("%Y-%m-%d %H:%M"),
            "code version": parents["code_version"].fillna("–").str[:12],
        })))
        out.csv(parents, "parents.csv")
    blocks += budget_lines(study)
    if not dimensions:
        return blocks
    blocks.append(Paragraph(
        f"Objective: `{OBJECTIVE}` ({'higher' if HIGHER_IS_BETTER else 'lower'} is better). "
        "Searched dimensions analysed: "
        + (", ".join(f"`{d}`" for d in study.searched) or "none") + "."))
    if study.not_searched and not study.trials.empty:
        blocks.append(Paragraph("Left out of the per-dimension analysis:"))
        blocks.append(Bullets(tuple(f"`{d}`: {why}" for d, why in study.not_searched.items())))
    return blocks


def budget_lines(study: Study) -> list[Block]:
    """What each trial was given: epochs, anchors per epoch, views encoded (per mode)."""
    trials = study.scored
    if trials.empty:
        return []
    subsets = sorted({int(v) for v in trials["train_subset"].dropna()})
    epochs = trials["epochs_run"].dropna()
    seen = trials.groupby("mode")["images_seen"].median().dropna()
    views = "; ".join(f"{mode} {int(v):,}" for mode, v in seen.items())
    return [Paragraph(
        f"Budget: up to {fmt(int(trials['epochs'].max()))} epoch(s) of "
        + (", ".join("the whole training split" if s == 0 else f"{s:,} anchors" for s in subsets)
           or "–") + f" each (trials ran {fmt(int(epochs.min()))}–{fmt(int(epochs.max()))}); "
        f"training views encoded per trial at its last epoch, median by mode: {views or '–'} "
        "(a triplet step encodes 3 views per anchor, a pair or batch step 2).")]


def counts_section(study: Study, out: Output, level: int) -> list[Block]:
    """Trials per outcome (finished, stopped early, failed, running), total and scored."""
    trials = study.trials
    counts = {o: int((trials["outcome"] == o).sum()) for o in OUTCOMES}
    other = len(trials) - sum(counts.values())
    rows = [{"outcome": o, "trials": n} for o, n in counts.items()]
    if other:
        rows.append({"outcome": "other", "trials": other})
    rows += [{"outcome": "total", "trials": len(trials)},
             {"outcome": f"with `{OBJECTIVE}`", "trials": len(study.scored)}]
    table = pd.DataFrame(rows)
    out.csv(table, "counts.csv")
    out.csv(trials, "trials.csv")
    blocks: list[Block] = [Heading("Trial counts", level), Table(table)]
    failed = trials[trials["outcome"] == FAILED]
    if not failed.empty:
        items = [f"trial {t.trial_id}: {t.error or 'no error text recorded'}"
                 for t in failed.head(5).itertuples()]
        if len(failed) > 5:
            items.append(f"... and {len(failed) - 5} more (see trials.csv)")
        blocks += [Paragraph("Failed trials (the last line of each error):"), Bullets(tuple(items))]
    unconverged = study.scored[study.scored.get(f"{VAL}probe_converged", pd.Series(1.0)) < 1]
    if len(unconverged):
        blocks.append(Paragraph(
            f"The probe's solver did not reach its tolerance at the last epoch of "
            f"{len(unconverged)} trial(s) ({', '.join(unconverged['trial_id'].astype(str)[:5])}"
            f"{', ...' if len(unconverged) > 5 else ''}); their probe accuracies may be a "
            "little low."))
    return blocks


def floor_section(study: Study, out: Output, level: int) -> list[Block]:
    """The raw pixels' scores under the same protocol, and how many trials beat them."""
    floor = study.floor
    blocks: list[Block] = [Heading("Raw-pixel floor", level)]
    if not floor:
        return blocks + [Paragraph("This study logged no raw-pixel floor (it predates it).")]
    scored = study.scored
    rows = []
    for name in SCORES:
        test = f"{TEST}{name}"
        beaten = int((scored[test] > floor.get(test, float("inf"))).sum()) if test in scored else 0
        rows.append({"score": SCORES[name], "validation": fmt(floor.get(f"{VAL}{name}"), 4),
                     "test": fmt(floor.get(test), 4),
                     "trials above it (test)": f"{beaten} of {scored[test].notna().sum()}"
                     if test in scored else "–"})
    table = pd.DataFrame(rows)
    out.csv(table, "floor.csv")
    return blocks + [Paragraph(
        "The flattened, normalised pixels judged under the trials' own protocol (the same "
        "training sample for the probe and the kNN, the same validation and test images): an "
        "embedding that does not beat them has learnt nothing a probe or a neighbour search "
        f"could not read off the images. Below, `{BELOW_FLOOR}` marks a trial's score that does "
        "not beat the floor."), Table(table)]


def ranked(trials: pd.DataFrame) -> pd.DataFrame:
    """Scored trials, best first by the objective at their last epoch."""
    scored = trials[trials[OBJECTIVE].notna()]
    return scored.sort_values(OBJECTIVE, ascending=not HIGHER_IS_BETTER, kind="stable")


def settings_text(row: pd.Series, dims: tuple[str, ...]) -> str:
    """``name=value`` of each searched dimension that applies to the trial."""
    parts = []
    for name in dims:
        dim = dimension(name)
        if name in row and pd.notna(row[name]) and dim.row.applies(row.to_dict()):
            value = row[name]
            parts.append(f"{name}={f'{float(value):.2e}' if dim.log else fmt(value, 3)}")
    return ", ".join(parts)


def marked(value: float, floor: float | None, digits: int = 4) -> str:
    """A score, marked when it does not beat the floor."""
    text = fmt(value, digits)
    return text + (f" {BELOW_FLOOR}" if floor is not None and pd.notna(value)
                   and value <= floor else "")


def leaderboard_section(study: Study, out: Output, level: int, top: int) -> list[Block]:
    """The ``top`` trials by the validation objective, with their test figures."""
    best = ranked(study.trials).head(top)
    floor = study.floor
    table = pd.DataFrame({
        "rank": range(1, len(best) + 1),
        "trial": best["trial_id"].to_numpy(),
        "settings": [settings_text(row, study.searched) for _, row in best.iterrows()],
        "val probe": [fmt(v, 4) for v in best[OBJECTIVE]],
        **{f"test {short}": [marked(v, floor.get(f"{TEST}{name}"))
                             for v in best.get(f"{TEST}{name}", [])]
           for name, short in SCORES.items() if f"{TEST}{name}" in best},
        "epochs": [fmt(int(v)) if pd.notna(v) else "–" for v in best["epochs_run"]],
        "outcome": best["outcome"].to_numpy(),
    })
    out.csv(best.assign(rank=range(1, len(best) + 1)), "leaderboard.csv")
    return [Heading(f"Leaderboard (top {len(best)} of {len(study.scored)} scored trials)", level),
            Paragraph(f"Ranked by `{OBJECTIVE}` at each trial's last epoch; the test columns "
                      "are that trial's test scores (probe, kNN, precision@1, MAP@R), made once "
                      "at its end. Full rows: `leaderboard.csv`; every trial: `trials.csv`."),
            Table(table)]


def montage_section(study: Study, client: Any, out: Output, level: int) -> list[Block]:
    """The best trial's t-SNE plot of each augmentation x mode cell that has a trial."""
    best = ranked(study.trials).groupby(["augmentation", "mode"], sort=True).head(1)
    panels = [Panel(t.run_id, f"{t.augmentation} / {t.mode} ({t.loss})",
                    f"trial {t.trial_id}: val probe {fmt(getattr(t, OBJECTIVE), 3)}")
              for t in best.itertuples()]
    blocks: list[Block] = [Heading("t-SNE montage: the best trial per augmentation × mode", level)]
    if not panels:
        return blocks + [Paragraph("No trial to show.")]
    png = tsne_montage(client, panels, out.path("tsne_montage.png"),
                       title=f"t-SNE of the best trial per cell ({study.name})")
    blocks.append(Image(png, "t-SNE montage"))
    finished = int((best["outcome"] == FINISHED).sum())
    blocks.append(Paragraph(f"{len(panels)} cell(s) with a trial; {finished} of the trials shown "
                            "finished, the others were stopped early (each map is of the "
                            "trial's last epoch)."))
    return blocks
