"""The report sections of ``--preset seed-grid`` studies: the original study's view.

design and budget -> raw-pixel floor and test scores (probe, precision@1, MAP@R) per
augmentation x mode with seed-paired comparisons -> the t-SNE grid -> structure measures per
cell -> the three observations (``analysis.observations_report``). The numbers come from
``analysis.grid`` and ``analysis.observations``; every sentence and format is here.

A grid is a controlled experiment, so the search-oriented sections (leaderboard, per-dimension
Mann-Whitney tests, interaction of a search, fANOVA importance, best-trial montage) are left
out: there is no search whose sampling to correct for or whose dimensions to rank.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from analysis.defaults import slug
from analysis.document import Block, Heading, Image, Paragraph, Table, fmt, fmt_interval, fmt_p
from analysis.grid import (
    ACCURACY_METRICS,
    REPRESENTATIVE_BY,
    SMALL_EPOCHS,
    Budget,
    budget,
    cell_stats,
    comparisons,
    family,
    floor_column,
    grid_frame,
    representatives,
)
from analysis.load import Study
from analysis.montage import Panel, tsne_montage
from analysis.observations import negative_silhouettes
from analysis.observations_report import at, budget_line, listed, negative_note, observations_section
from analysis.report import Output, counts_section, overview
from analysis.stats import ALPHA, WILCOXON_MIN_N
from study.presets import GRID_AUGMENTATIONS, GRID_MODES, ORIGINAL_LOSS
from study.schema import STRUCTURE_METRICS, TEST, TEST_METRICS, TSNE_PLOT
from trainables.metrics import Progress, Structure, docs

# The floor's scores shown (the probe's convergence flag is not a score).
FLOOR_SCORES = tuple(f"{TEST}{k}" for k in
                     ("probe_accuracy", "knn_accuracy", "precision_at_1", "map_at_r"))
BELOW = "†"  # marks a cell whose mean does not beat the raw-pixel floor
FLOOR_ROW = "raw pixels"
FLOOR_TEXT = (
    "**Raw-pixel floor.** What an embedding must beat: the flattened, normalised pixels judged "
    "under the trials' own protocol (the same stratified samples, probe, kNN and "
    "leave-one-out retrieval; `trainables/floor.py`). It is the `raw pixels` row of each "
    f"table below; {BELOW} marks a cell whose mean does not beat it, and \"k of n trials ≤ "
    "floor\" counts a cell's trials that do not (each trial's check: `grid_trials.csv`).")
STRUCTURE_TEXT = (
    "What the measures mean (`trainables/structure.py`), computed once at the end of each "
    "trial on a stratified sample of its test embeddings (`tsne_samples` points) and, with the "
    "`tsne_` prefix, on that sample's 2-D t-SNE map (what the original study's plots showed): "
)


def grid_study_sections(study: Study, client: Any, out: Output, *, level: int = 2) -> list[Block]:
    """The report of one seed-grid study: overview, counts, then ``grid_sections``."""
    blocks = overview(study, out, level, dimensions=False) + counts_section(study, out, level)
    return blocks + grid_sections([study], client, out, level=level)


def grid_sections(studies: list[Study], client: Any, out: Output, *,
                  level: int = 2) -> list[Block]:
    """The original study's view of one or several seed-grid studies (one per dataset);
    writes ``grid_*`` CSV files and the t-SNE grids into ``out``."""
    frame = grid_frame(studies)
    blocks = design_section(studies, frame, out, level)
    if frame.empty:
        return blocks + [Paragraph("not enough trials: n=0 trials reported a final score, "
                                   "so there is no cell to compare yet.")]
    blocks += accuracy_section(studies, frame, out, level)
    blocks += tsne_section(studies, frame, client, out, level)
    blocks += structure_section(frame, out, level)
    blocks += observations_section(studies, frame, out, level)
    return blocks


# ---------------------------------------------------------------------------- design
def compute_text(b: Budget) -> str:
    """Whether pair and triplet trials spent the same compute (training views encoded)."""
    if b.compute_matched is None:
        return (f"`{b.experiment}`: `images_seen` was not recorded for every mode (trials "
                "older than it), so compute cannot be compared.")
    if b.compute_matched:
        return (f"`{b.experiment}`: compute was matched, every trial encoded "
                f"{listed(b.images_seen[GRID_MODES[0]])} training views.")
    seen = {m: max(v) for m, v in b.images_seen.items()}
    ratio = seen[GRID_MODES[1]] / seen[GRID_MODES[0]] if seen[GRID_MODES[0]] else float("nan")
    spent = " vs ".join(f"{m} {v}" for m, v in seen.items())
    return (f"`{b.experiment}`: compute was **not matched** — {spent} training views per "
            f"trial ({GRID_MODES[1]}/{GRID_MODES[0]} = {fmt(ratio)}), so a "
            "mode difference may partly be a compute difference; to compare the modes at "
            f"matched compute, give the {GRID_MODES[0]} cells {fmt(ratio)}× the anchors per "
            "epoch (`train_subset`) or the epochs.")


def design_section(studies: list[Study], frame: pd.DataFrame, out: Output,
                   level: int) -> list[Block]:
    """What a seed grid is, each experiment's budget and compute, missing cells, and a
    small-budget warning."""
    losses = ", ".join(f"{mode} with {loss} (margin {margin:g})"
                       for mode, (loss, margin) in ORIGINAL_LOSS.items())
    blocks: list[Block] = [Heading("Seed grid: design and budget", level), Paragraph(
        "This is a seed grid (`--preset seed-grid`), the original study's comparison: "
        f"augmentation ({' / '.join(GRID_AUGMENTATIONS)}, weakest to strongest) × mode ({losses}), "
        "every other setting fixed, each cell repeated over the same seeds (seed index i has "
        "the same torch seed in every cell, so cells are compared seed by seed) and every "
        "trial trained to its last epoch (FIFO scheduler, no early stopping). A grid is a "
        "controlled experiment: the search report's leaderboard, per-dimension tests and "
        "parameter importance do not apply (nothing was searched) and are replaced by the "
        "sections below.")]
    budgets = [budget(s) for s in studies]
    rows = []
    for s, b in zip(studies, budgets, strict=True):
        fixed = s.scored
        rows.append({
            "experiment": b.experiment, "dataset": b.dataset, "epochs": listed(b.epochs_run),
            "train_subset": listed(b.train_subset, "whole set"),
            "eval_train": listed(b.eval_train, "whole set"),
            **{f"images seen ({m})": listed(b.images_seen.get(m, ())) for m in GRID_MODES},
            "seeds per cell": f"{b.seeds_per_cell[0]}" if b.seeds_per_cell[0] ==
            b.seeds_per_cell[1] else "{}–{}".format(*b.seeds_per_cell),
            "grid seeds asked": fmt(b.grid_seeds),
            "fixed": ", ".join(f"{k}={_values(fixed, k)}" for k in (
                "embedding_dim", "encoder", "lr", "batch_size", "margin", "aug_strength",
                "positives", "mining") if k in fixed),
        })
    table = pd.DataFrame(rows)
    out.csv(table, "grid_budget.csv")
    blocks += [Table(table), Paragraph(
        f"Images seen: {docs(Progress)['images_seen']}, per trial at its last epoch. "
        + " ".join(compute_text(b) for b in budgets))]
    missing = [f"`{e}`: {a}/{m}" for e in pd.unique(frame["experiment"]) if len(frame)
               for a in GRID_AUGMENTATIONS for m in GRID_MODES
               if not ((frame["experiment"] == e) & (frame["augmentation"] == a)
                       & (frame["mode"] == m)).any()]
    missing += [f"`{s.name}`: every cell" for s in studies if s.scored.empty]
    if missing:
        blocks.append(Paragraph("Cells without a scored trial (left out of every comparison "
                                "that needs them): " + ", ".join(missing) + "."))
    small = [(b, b.shortfalls()) for b in budgets if b.shortfalls()]
    if small:
        words = {"epochs": "epoch(s)", "train_subset": "training anchors per epoch",
                 "seeds": "seed(s) per cell"}
        blocks.append(Paragraph(
            "**Small budget.** " + "; ".join(
                f"`{b.experiment}`: " + ", ".join(f"{value} {words[k]} (< {limit})"
                                                  for k, (value, limit) in why.items())
                for b, why in small)
            + f". Encoders trained this briefly (fewer than {SMALL_EPOCHS} epochs, or on a "
            "subset) may not show what fully trained ones would, and few seeds give wide "
            "intervals: treat the verdicts below as provisional."))
    return blocks


def _values(frame: pd.DataFrame, name: str) -> str:
    values = [fmt(v) for v in pd.unique(frame[name].dropna())]
    return "/".join(values) if values else "–"


# ---------------------------------------------------------------------------- accuracy
def cell_text(row: dict) -> str:
    """``mean [95% CI] (n=)``, ``†`` when the mean does not beat the floor, and how many of
    the cell's trials do not when the mean does."""
    if not row["n"]:
        return "no trial"
    text = fmt_interval(row["mean"], row["ci_low"], row["ci_high"], n=row["n"])
    if row["beats_floor"] is False:
        return f"{text} {BELOW}"
    below = row["n_not_above_floor"]
    return f"{text} ({below} of {row['n']} trials ≤ floor)" if below else text


def cell_table(stats: pd.DataFrame) -> pd.DataFrame:
    """``cell_stats`` as a grid: augmentations as rows and the floor as the last row, one
    column per mode (per experiment and mode when there are several)."""
    experiments = list(pd.unique(stats["experiment"]))
    table = pd.DataFrame({"augmentation": [*GRID_AUGMENTATIONS, FLOOR_ROW]})
    for exp in experiments:
        for mode in GRID_MODES:
            cells = stats[(stats["experiment"] == exp) & (stats["mode"] == mode)]
            by_aug = {r["augmentation"]: r for r in cells.to_dict("records")}
            floor = cells["floor"].iloc[0] if len(cells) else float("nan")
            column = mode if len(experiments) == 1 else f"{exp}: {mode}"
            table[column] = [cell_text(by_aug[a]) if a in by_aug else "no trial"
                             for a in GRID_AUGMENTATIONS] + [fmt_interval(floor)]
    return table


def floor_section(studies: list[Study], level: int) -> list[Block]:
    """The raw-pixel floor of every test score, per experiment."""
    rows = [{"experiment": s.name,
             **{k: fmt_interval(s.floor[k]) for k in FLOOR_SCORES if k in s.floor}}
            for s in studies]
    lacking = [s.name for s in studies if not s.floor]
    blocks: list[Block] = [Heading("Raw-pixel floor", level + 1), Paragraph(FLOOR_TEXT)]
    if len(lacking) < len(studies):
        blocks.append(Table(pd.DataFrame(rows).fillna("–")))
    if lacking:
        blocks.append(Paragraph("No raw-pixel floor was recorded for "
                                + ", ".join(f"`{n}`" for n in lacking) + " (studies run before "
                                "it existed): their cells cannot be checked against it."))
    return blocks


def accuracy_section(studies: list[Study], frame: pd.DataFrame, out: Output,
                     level: int) -> list[Block]:
    """The floor, then per accuracy metric the augmentation x mode table, then the
    seed-paired comparisons, each stating its epoch and budget."""
    blocks: list[Block] = [Heading("Accuracy: augmentation × mode", level), Paragraph(
        "The grid compares **test** scores: validation scores exist to steer a search, and a "
        "grid selects nothing, so each trial's final test scores are honest figures. Each "
        "cell: the mean over seeds, its 95 % Student-t interval (a bootstrap of so few values "
        "would be far too narrow) and n, the number of seeds. Measured at: "
        + "; ".join(budget_line(budget(s)) for s in studies) + ".")]
    blocks += floor_section(studies, level)
    metrics = [m for m in ACCURACY_METRICS if m in frame and frame[m].notna().any()]
    all_stats, all_pairs = [], []
    for metric in metrics:
        stats = cell_stats(frame, metric)
        all_stats.append(stats.assign(metric=metric))
        blocks += [Heading(f"`{metric}`", level + 1), Paragraph(f"{TEST_METRICS[metric]}."),
                   Table(cell_table(stats))]
    out.csv(pd.concat(all_stats, ignore_index=True), "grid_accuracy.csv")
    out.csv(trials_table(frame), "grid_trials.csv")
    seeds = int(frame.groupby(["experiment", "augmentation", "mode"]).size().min())
    blocks += [Heading("Seed-paired comparisons", level + 1), Paragraph(
        "Because seed index i has the same torch seed in every cell, each comparison below "
        "takes the per-seed differences (a − b, one per seed, listed) and reports their mean "
        "with a 95 % t interval, how many seeds agree in sign, and a paired test. "
        + paired_test_note(seeds) + f" p_holm: Holm-adjusted across the {len(family())} comparisons "
        f"of one metric in one experiment; **clear** means p_holm < {ALPHA}. With few seeds "
        "read the signs and the intervals, not only the p-values.")]
    for exp in pd.unique(frame["experiment"]):
        study = next(s for s in studies if s.name == exp)
        blocks.append(Paragraph(f"`{exp}`, compared at {at(budget(study))}:"))
        for metric in metrics:
            pairs = comparisons(frame, exp, metric)
            all_pairs.append(pairs)
            blocks += [Paragraph(f"`{metric}` in `{exp}`:"), Table(comparison_table(pairs))]
    out.csv(pd.concat(all_pairs, ignore_index=True).assign(
        diffs=lambda t: t["diffs"].map(lambda d: " ".join(f"{v:.6g}" for v in d))),
        "grid_pairs.csv")
    return blocks


def trials_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Each grid trial's test scores and whether each beats its experiment's floor."""
    keep = ["experiment", "augmentation", "mode", "seed_index", "trial_id", "run_id",
            "epochs_run", "images_seen"]
    table = frame[[c for c in keep if c in frame]].copy()
    for metric in ACCURACY_METRICS:
        if metric in frame:
            floor = frame[floor_column(metric)]
            table[metric] = frame[metric]
            table[f"{metric} beats floor"] = (frame[metric] > floor).where(
                floor.notna() & frame[metric].notna())
    return table


def paired_test_note(seeds: int) -> str:
    """Which paired test the comparisons use with ``seeds`` seeds per cell, and why."""
    if seeds < 2:
        return (f"With {seeds} seed per cell no test is possible: each comparison is a single "
                "difference, shown for its direction only.")
    if seeds < WILCOXON_MIN_N:
        return (f"With n={seeds} seeds Wilcoxon's signed-rank test cannot reach p < {ALPHA} "
                f"(its smallest two-sided p is 2/2^n = {2 / 2 ** seeds:.2g}), so the paired "
                "t-test is used; it assumes roughly normal per-seed differences.")
    return f"With n={seeds} seeds: Wilcoxon's signed-rank test (two-sided)."


def comparison_table(pairs: pd.DataFrame) -> pd.DataFrame:
    """``grid.comparisons`` formatted for the report."""
    records = pairs.to_dict("records")
    return pd.DataFrame({
        "comparison (a − b)": [f"{r['a']} − {r['b']}" for r in records],
        "within": pairs["within"],
        "per-seed differences": pairs["diffs"].map(
            lambda d: ", ".join(f"{v:+.3f}" for v in d) or "–"),
        "mean [95% CI]": [fmt_interval(r["mean"], r["ci_low"], r["ci_high"], signed=True)
                          for r in records],
        "seeds a > b": [f"{r['n_pos']}/{r['n']}" for r in records],
        "test": pairs["test"],
        "p": pairs["p"].map(fmt_p),
        "p_holm": pairs["p_holm"].map(fmt_p),
        "clear": pairs["clear"].map({True: "yes", False: "no"}),
    })


# ---------------------------------------------------------------------------- t-SNE grid
def has_plot(client: Any, run_id: str) -> bool:
    """Whether the run recorded its t-SNE plot."""
    try:
        return any(f.path == TSNE_PLOT for f in client.list_artifacts(run_id))
    except Exception:  # noqa: BLE001 - an unreadable run shows as "no t-SNE plot"
        return False


def tsne_section(studies: list[Study], frame: pd.DataFrame, client: Any, out: Output,
                 level: int) -> list[Block]:
    """Per experiment, the t-SNE plots of each cell's median-probe trial: one row per
    mode, one column per augmentation (a cell without a trial keeps its place, empty)."""
    blocks: list[Block] = [Heading("t-SNE plots: augmentation × mode", level), Paragraph(
        "One representative trial per cell: the **median-probe seed** (the trial whose "
        f"`{REPRESENTATIVE_BY}` is the median of the cell's seeds; the lower middle one for an "
        "even count), so the picture is neither the luckiest nor the unluckiest seed. Rows: "
        "mode; columns: augmentation. Each plot is the trial's t-SNE map of a stratified "
        f"sample of its test embeddings; {BELOW}: the trial does not beat the raw-pixel floor.")]
    picks = []
    for study in studies:
        chosen = representatives(frame, study.name)
        panels = []
        for mode in GRID_MODES:
            for aug in GRID_AUGMENTATIONS:
                heading = f"{aug} / {mode}"
                if (aug, mode) not in chosen:
                    panels.append(Panel("", heading, "no trial"))  # "" finds no plot
                    continue
                t = chosen[(aug, mode)]
                n = int(((frame["experiment"] == study.name) & (frame["augmentation"] == aug)
                         & (frame["mode"] == mode)).sum())
                floor = t[floor_column(REPRESENTATIVE_BY)]
                below = pd.notna(floor) and not t[REPRESENTATIVE_BY] > floor
                panels.append(Panel(t["run_id"], heading,
                                    f"{REPRESENTATIVE_BY}={fmt(t[REPRESENTATIVE_BY], 3)}"
                                    f"{' ' + BELOW if below else ''}, seed index "
                                    f"{fmt(t['seed_index'])} (median of {n})"))
                picks.append({"experiment": study.name, "augmentation": aug, "mode": mode,
                              "trial": t["trial_id"], "seed index": t["seed_index"],
                              REPRESENTATIVE_BY: fmt(t[REPRESENTATIVE_BY], 4),
                              "beats floor": "–" if pd.isna(floor) else "no" if below else "yes",
                              "t-SNE": "shown" if has_plot(client, t["run_id"])
                              else "no tsne.png artifact"})
        png = tsne_montage(client, panels, out.path(f"grid_tsne_{slug(study.name)}.png"),
                           title=f"t-SNE per mode × augmentation, median-probe seed ({study.name})")
        blocks += [Paragraph(f"`{study.name}`:"), Image(png, f"t-SNE grid {study.name}")]
    table = pd.DataFrame(picks)
    out.csv(table, "grid_tsne_picks.csv")
    if len(table):
        blocks.append(Table(table))
    return blocks


# ---------------------------------------------------------------------------- structure
def structure_section(frame: pd.DataFrame, out: Output, level: int) -> list[Block]:
    """Every structure measure per cell (embedding and t-SNE map), mean [95% CI] (n), and
    a note for a dataset whose silhouettes are all below 0."""
    dims = pd.unique(frame["embedding_dim"].dropna()) if "embedding_dim" in frame else []
    dim = "/".join(str(int(d)) for d in dims) or "d"
    blocks: list[Block] = [Heading("Structure: clusters or lines", level), Paragraph(
        STRUCTURE_TEXT + " ".join(f"**{name}**: {doc}." for name, doc in docs(Structure).items())
        + f" (The embedding has {dim} dimensions.)")]
    present = [m for m in STRUCTURE_METRICS if m in frame and frame[m].notna().any()]
    if not present:
        return blocks + [Paragraph("No trial logged the structure measures (trials recorded "
                                   "before they existed, or without a t-SNE plot).")]
    long = pd.concat([cell_stats(frame, m).assign(measure=m) for m in present],
                     ignore_index=True)
    out.csv(long, "grid_structure.csv")
    for exp in pd.unique(frame["experiment"]):
        rows = []
        for aug in GRID_AUGMENTATIONS:
            for mode in GRID_MODES:
                row: dict[str, Any] = {"augmentation": aug, "mode": mode}
                for m in present:
                    cell = long[(long["experiment"] == exp) & (long["measure"] == m)
                                & (long["augmentation"] == aug) & (long["mode"] == mode)]
                    row[m] = (fmt_interval(cell["mean"].iloc[0], cell["ci_low"].iloc[0],
                                           cell["ci_high"].iloc[0], n=int(cell["n"].iloc[0]))
                              if len(cell) and cell["n"].iloc[0] else "no trial")
                rows.append(row)
        blocks += [Paragraph(f"`{exp}` (mean [95% CI] over seeds, n):"), Table(pd.DataFrame(rows))]
        negative = negative_silhouettes(frame, exp)
        if negative:
            blocks.append(Paragraph(negative_note(exp, negative)))
    return blocks
