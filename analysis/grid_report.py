"""The report sections of ``--preset seed-grid`` studies: the original study's view.

design and budget -> probe accuracy (and precision@1) per augmentation x mode with seed-paired
comparisons -> the 3 x 2 grid of t-SNE plots -> structure measures per cell -> the original
study's three observations, each with a verdict computed by ``analysis.grid``.

A grid is a controlled experiment, so the search-oriented sections (leaderboard, per-dimension
Mann-Whitney tests, interaction of a search, fANOVA importance, best-trial montage) are left
out: there is no search whose sampling to correct for or whose dimensions to rank.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from analysis import plots
from analysis.document import Block, Bullets, Heading, Image, Paragraph, Table, fmt
from analysis.grid import (
    ACCURACY_METRICS,
    NEEDS_BOTH,
    SMALL_EPOCHS,
    STRONGEST,
    Budget,
    Verdict,
    budget,
    cell_stats,
    combine,
    comparisons,
    family,
    grid_frame,
    observation_1,
    observation_2,
    observation_3,
    representatives,
    structure_checks,
)
from analysis.load import Study
from analysis.montage import download_plot as _download  # interim: grid branch rewrites this
from analysis.report import Output, counts_section, overview, slug
from analysis.stats import ALPHA, WILCOXON_MIN_N
from study.presets import GRID_AUGMENTATIONS, GRID_MODES, ORIGINAL_LOSS
from study.schema import OBJECTIVE, STRUCTURE_METRICS
from trainables.metrics import Structure, docs

OBSERVATIONS = {
    1: "Augmentation changes results, but more is not always better",
    2: "The more complex images of the second dataset (CIFAR-10) change the picture",
    3: "Triplet training leads to clusters, pair training to line-like structures",
}
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
        return blocks + [Paragraph(f"not enough trials: n=0 trials reported a final {OBJECTIVE}, "
                                   "so there is no cell to compare yet.")]
    blocks += accuracy_section(frame, out, level)
    blocks += tsne_section(studies, frame, client, out, level)
    blocks += structure_section(studies, frame, out, level)
    blocks += observations_section(studies, frame, out, level)
    return blocks


# ---------------------------------------------------------------------------- design
def _ints(values: tuple[int, ...], zero: str = "") -> str:
    return ", ".join(zero if (v == 0 and zero) else str(v) for v in values) or "–"


def budget_line(b: Budget) -> str:
    """The budget of one experiment in words."""
    seeds = (str(b.seeds_per_cell[0]) if b.seeds_per_cell[0] == b.seeds_per_cell[1]
             else f"{b.seeds_per_cell[0]}–{b.seeds_per_cell[1]}")
    return (f"`{b.experiment}` ({b.dataset}): {_ints(b.epochs)} epoch(s), "
            f"train_subset {_ints(b.train_subset, 'whole training set')}, "
            f"{seeds} seed(s) per cell")


def design_section(studies: list[Study], frame: pd.DataFrame, out: Output,
                   level: int) -> list[Block]:
    """What a seed grid is, each experiment's budget, missing cells, and a small-budget
    warning."""
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
            "experiment": b.experiment, "dataset": b.dataset, "epochs": _ints(b.epochs),
            "train_subset": _ints(b.train_subset, "whole set"),
            "eval_train": _ints(b.eval_train, "whole set"),
            "seeds per cell": (f"{b.seeds_per_cell[0]}" if b.seeds_per_cell[0] ==
                               b.seeds_per_cell[1] else "{}–{}".format(*b.seeds_per_cell)),
            "grid seeds asked": fmt(b.grid_seeds),
            "fixed": ", ".join(f"{k}={_values(fixed, k)}" for k in (
                "embedding_dim", "encoder", "lr", "batch_size", "margin", "aug_strength",
                "positives", "mining") if k in fixed),
        })
    table = pd.DataFrame(rows)
    out.csv(table, "grid_budget.csv")
    blocks.append(Table(table))
    missing = [f"`{e}`: {a}/{m}" for e in pd.unique(frame["experiment"]) if len(frame)
               for a in GRID_AUGMENTATIONS for m in GRID_MODES
               if not ((frame["experiment"] == e) & (frame["augmentation"] == a)
                       & (frame["mode"] == m)).any()]
    missing += [f"`{s.name}`: every cell" for s in studies if s.scored.empty]
    if missing:
        blocks.append(Paragraph("Cells without a scored trial (left out of every comparison "
                                "that needs them): " + ", ".join(missing) + "."))
    small = [(b, b.small()) for b in budgets if b.small()]
    if small:
        blocks.append(Paragraph(
            "**Small budget.** " + "; ".join(f"`{b.experiment}`: " + ", ".join(why)
                                             for b, why in small)
            + f". Encoders trained this briefly (fewer than {SMALL_EPOCHS} epochs, or on a "
            "subset) may not show what fully trained ones would, and few seeds give wide "
            "intervals: treat the verdicts below as provisional."))
    return blocks


def _values(frame: pd.DataFrame, name: str) -> str:
    values = [fmt(v) for v in pd.unique(frame[name].dropna())]
    return "/".join(values) if values else "–"


# ---------------------------------------------------------------------------- accuracy
def _mean_ci(row: Any) -> str:
    if not row["n"]:
        return "no trial"
    if row["n"] < 2:
        return f"{fmt(row['mean'], 3)} (n=1, no CI)"
    return f"{fmt(row['mean'], 3)} [{fmt(row['ci_low'], 3)}, {fmt(row['ci_high'], 3)}] (n={row['n']})"


def cell_table(stats: pd.DataFrame) -> pd.DataFrame:
    """``cell_stats`` as a grid: augmentations as rows, one column per mode (per experiment
    and mode when there are several), each cell ``mean [95% CI] (n=)``."""
    experiments = list(pd.unique(stats["experiment"]))
    table = pd.DataFrame({"augmentation": list(GRID_AUGMENTATIONS)})
    for exp in experiments:
        for mode in GRID_MODES:
            cells = stats[(stats["experiment"] == exp) & (stats["mode"] == mode)]
            by_aug = {r["augmentation"]: r for r in cells.to_dict("records")}
            column = mode if len(experiments) == 1 else f"{exp}: {mode}"
            table[column] = [_mean_ci(by_aug[a]) if a in by_aug else "no trial"
                             for a in GRID_AUGMENTATIONS]
    return table


def _present(frame: pd.DataFrame, metric: str) -> bool:
    return metric in frame and bool(frame[metric].notna().any())


def accuracy_section(frame: pd.DataFrame, out: Output, level: int) -> list[Block]:
    """Per accuracy metric: the augmentation x mode table and the seed-paired comparisons."""
    seeds = int(frame.groupby(["experiment", "augmentation", "mode"]).size().min())
    blocks: list[Block] = [Heading("Accuracy: augmentation × mode", level), Paragraph(
        "Each cell: the mean over seeds, its 95 % Student-t confidence interval (mean ± "
        "t·sd/√n; a bootstrap of so few values would be far too narrow) and n, the number of "
        f"seeds. `{OBJECTIVE}`: test accuracy of a logistic-regression probe on the frozen "
        "embedding; `precision_at_1`: share of test embeddings whose nearest training "
        "embedding (cosine) has their class.")]
    metrics = [m for m in ACCURACY_METRICS if _present(frame, m)]
    all_stats, all_pairs = [], []
    for metric in metrics:
        stats = cell_stats(frame, metric)
        all_stats.append(stats.assign(metric=metric))
        blocks += [Heading(f"`{metric}`", level + 1), Table(cell_table(stats))]
    out.csv(pd.concat(all_stats, ignore_index=True), "grid_accuracy.csv")
    blocks += [Heading("Seed-paired comparisons", level + 1), Paragraph(
        "Because seed index i has the same torch seed in every cell, each comparison below "
        "takes the per-seed differences (a − b, one per seed, listed) and reports their mean "
        "with a 95 % t interval, how many seeds agree in sign, and a paired test. "
        + paired_test_note(seeds) + f" p_holm: Holm-adjusted across the {len(family())} comparisons "
        f"of one metric in one experiment; **clear** means p_holm < {ALPHA}. With few seeds "
        "read the signs and the intervals, not only the p-values.")]
    for metric in metrics:
        for exp in pd.unique(frame["experiment"]):
            pairs = comparisons(frame, exp, metric)
            all_pairs.append(pairs)
            blocks += [Paragraph(f"`{metric}` in `{exp}`:"), Table(comparison_table(pairs))]
    out.csv(pd.concat(all_pairs, ignore_index=True).assign(
        diffs=lambda t: t["diffs"].map(lambda d: " ".join(f"{v:.6g}" for v in d))),
        "grid_pairs.csv")
    return blocks


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
    return pd.DataFrame({
        "comparison (a − b)": [f"{r['a']} − {r['b']}" for r in pairs.to_dict("records")],
        "within": pairs["within"],
        "per-seed differences": pairs["diffs"].map(
            lambda d: ", ".join(f"{v:+.3f}" for v in d) or "–"),
        "mean [95% CI]": [_signed_ci(r) for r in pairs.to_dict("records")],
        "seeds a > b": [f"{r['n_pos']}/{r['n']}" for r in pairs.to_dict("records")],
        "test": pairs["test"],
        "p": pairs["p"].map(_p),
        "p_holm": pairs["p_holm"].map(_p),
        "clear": pairs["clear"].map({True: "yes", False: "no"}),
    })


def _signed_ci(row: dict) -> str:
    if not math.isfinite(row["mean"]):
        return "–"
    if not math.isfinite(row["ci_low"]):
        return f"{row['mean']:+.3f}"
    return f"{row['mean']:+.3f} [{row['ci_low']:+.3f}, {row['ci_high']:+.3f}]"


def _p(p: float) -> str:
    if not math.isfinite(p):
        return "–"
    return f"{p:.2g}" if p >= 0.001 else "<0.001"


# ---------------------------------------------------------------------------- t-SNE grid
def tsne_section(studies: list[Study], frame: pd.DataFrame, client: Any, out: Output,
                 level: int) -> list[Block]:
    """Per experiment, the 3 x 2 grid of t-SNE plots of each cell's median-probe trial."""
    blocks: list[Block] = [Heading("t-SNE plots: augmentation × mode", level), Paragraph(
        "One representative trial per cell: the **median-probe seed** (the trial whose "
        f"{OBJECTIVE} is the median of the cell's seeds; the lower middle one for an even count), "
        "so the picture is neither the luckiest nor the unluckiest seed. Rows: augmentation; "
        "columns: mode. Each plot is the trial's `tsne.png` artifact, the t-SNE map of its "
        "last evaluated test embedding.")]
    picks = []
    for study in studies:
        chosen = representatives(frame, study.name)
        with tempfile.TemporaryDirectory() as tmp:
            cells: dict[tuple[str, str], tuple[Path | None, str]] = {}
            for (aug, mode), t in chosen.items():
                image = _download(client, t["run_id"], Path(tmp) / t["run_id"])
                n = int(((frame["experiment"] == study.name) & (frame["augmentation"] == aug)
                         & (frame["mode"] == mode)).sum())
                caption = (f"{OBJECTIVE}={fmt(t[OBJECTIVE], 3)}, seed index {fmt(t['seed_index'])} "
                           f"(median of {n})")
                cells[(aug, mode)] = (image, caption)
                picks.append({"experiment": study.name, "augmentation": aug, "mode": mode,
                              "trial": t["trial_id"], "seed index": t["seed_index"],
                              OBJECTIVE: fmt(t[OBJECTIVE], 4),
                              "t-SNE": "shown" if image else "no tsne.png artifact"})
            png = plots.montage(cells, list(GRID_AUGMENTATIONS), list(GRID_MODES),
                                out.path(f"grid_tsne_{slug(study.name)}.png"),
                                title=f"t-SNE per augmentation × mode, median-probe seed "
                                      f"({study.name})",
                                row_label="augmentation", col_label="mode")
        blocks += [Paragraph(f"`{study.name}`:"), Image(png, f"t-SNE grid {study.name}")]
    table = pd.DataFrame(picks)
    out.csv(table, "grid_tsne_picks.csv")
    if len(table):
        blocks.append(Table(table))
    return blocks


# ---------------------------------------------------------------------------- structure
def structure_section(studies: list[Study], frame: pd.DataFrame, out: Output,
                      level: int) -> list[Block]:
    """Silhouette and line-likeness per cell (embedding and t-SNE map), mean [95% CI]."""
    dims = pd.unique(frame["embedding_dim"].dropna()) if "embedding_dim" in frame else []
    dim = "/".join(str(int(d)) for d in dims) or "d"
    blocks: list[Block] = [Heading("Structure: clusters or lines", level), Paragraph(
        STRUCTURE_TEXT + " ".join(f"**{name}**: {doc}." for name, doc in docs(Structure).items())
        + f" (The embedding has {dim} dimensions.)")]
    present = [m for m in STRUCTURE_METRICS if _present(frame, m)]
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
                    row[m] = _mean_ci(cell.iloc[0]) if len(cell) else "no trial"
                rows.append(row)
        blocks += [Paragraph(f"`{exp}` (mean [95% CI] over seeds, n):"), Table(pd.DataFrame(rows))]
    return blocks


# ---------------------------------------------------------------------------- observations
def observations_section(studies: list[Study], frame: pd.DataFrame, out: Output,
                         level: int) -> list[Block]:
    """The original study's three observations, each with a verdict per dataset (per pair
    of datasets for the second) and overall."""
    names = [s.name for s in studies]
    budgets = [budget(s) for s in studies]
    blocks: list[Block] = [Heading("The original study's observations", level), Paragraph(
        "Each verdict is computed from the trials above, never fixed in advance: **supported** "
        "when the data show the observation clearly, **not supported** when they show none of "
        "it, **mixed** otherwise. A difference counts as clear when its Holm-adjusted paired "
        f"p-value is below {ALPHA}; directions by the mean alone are reported but do not make "
        "an observation supported. Budget: " + "; ".join(budget_line(b) for b in budgets)
        + "." + (" **The budget is small** (see above): the verdicts are provisional."
                 if any(b.small() for b in budgets) else ""))]
    verdicts: dict[int, list[Verdict]] = {
        1: [observation_1(frame, n) for n in names],
        2: ([observation_2(frame, a, b) for i, a in enumerate(names) for b in names[i + 1:]]
            if len(names) > 1 else [Verdict(2, names[0], NEEDS_BOTH, (
                "one dataset only: run the seed grid on the second dataset too (e.g. "
                "`--dataset cifar10`) and pass both experiments to `analysis.summarize` "
                "(`--experiment-name A --experiment-name B`)."))]),
        3: [observation_3(frame, n) for n in names],
    }
    notes = {
        1: (f"Within each mode: do the augmentations' mean {OBJECTIVE} differ clearly (best vs "
            f"worst), and is {STRONGEST}, the strongest augmentation, beaten by a weaker one "
            "(\"more is not always better\")?"),
        2: (f"Between datasets: the level of {OBJECTIVE} (the six cells paired across the "
            "datasets) and the ranking of the cells (Kendall's tau of the cell means, the best "
            "cell, and the comparisons above whose sign flips; a flip is clear when it is clear "
            "in both datasets)."),
        3: ("Triplet minus pair silhouette (expected > 0: clusters) and pair minus triplet "
            "line-likeness (expected > 0: lines), matched by augmentation and seed, in the "
            "embedding and in the t-SNE map; Holm across the four checks of a dataset."),
    }
    rows = []
    for number, title in OBSERVATIONS.items():
        found = verdicts[number]
        overall = combine(found) if found[0].verdict != NEEDS_BOTH else NEEDS_BOTH
        blocks += [Heading(f"{number}. {title}", level + 1),
                   Paragraph(f"**Verdict: {overall}.** {notes[number]}"),
                   Bullets(tuple(f"`{v.scope}`: **{v.verdict}** — {v.text}" for v in found))]
        if number == 3:
            checks = pd.concat([structure_checks(frame, n) for n in names], ignore_index=True)
            out.csv(checks, "grid_structure_checks.csv")
        rows += [{"observation": number, "title": title, "scope": v.scope,
                  "verdict": v.verdict, "overall": overall, "text": v.text} for v in found]
    out.csv(pd.DataFrame(rows), "grid_observations.csv")
    return blocks
