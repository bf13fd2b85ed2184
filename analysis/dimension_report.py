"""Which settings matter, in a search study: per dimension, the augmentation x mode
interaction and fANOVA importance.

Fair comparisons: ASHA stops trials at different epochs, so every trial is taken at the
epoch all of them reached (``Study.common_epoch``, read from each trial's history of the
objective); the finished trials' final figures are shown apart.  Intervals of the mean are
Student's t for small groups and bootstrap for larger ones (``stats.group_interval``); a
pair of values is tested only when its group sizes can reach significance
(``stats.min_mann_whitney_p``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import plots
from analysis.dimensions import dimension, value_order
from analysis.document import Block, Bullets, Heading, Image, Paragraph, Table, fmt, fmt_interval, fmt_p
from analysis.grouping import dimension_groups
from analysis.importance import MIN_TRIALS, SEEDS, importance_table, study_importance
from analysis.load import Study
from analysis.report import HIGHER_IS_BETTER, Output
from analysis.stats import ALPHA, SMALL_GROUP, pairwise_tests, summarize_groups
from study.schema import FINISHED, OBJECTIVE
from trainables.config import DIMENSIONS


def at_common_epoch(study: Study) -> tuple[int, pd.Series]:
    """The epoch every scored trial reached and each trial's objective there."""
    epoch = study.common_epoch
    return epoch, study.objective_at(epoch).where(study.trials[OBJECTIVE].notna())


def dimension_sections(study: Study, out: Output, level: int, seed: int) -> list[Block]:
    """Per searched dimension: statistics per value or bin at the common epoch (table, box
    plot, pairwise tests) and the finished trials' final figures."""
    trials = study.trials
    epoch, values = at_common_epoch(study)
    finished = trials[OBJECTIVE].where(trials["outcome"] == FINISHED)
    blocks: list[Block] = [Heading("Per dimension", level), Paragraph(
        f"`{OBJECTIVE}` per value (numeric dimensions: per quantile bin) of every scored trial "
        f"at epoch {epoch}, the last epoch all of them reached, with the mean's 95 % interval "
        f"(Student's t below {SMALL_GROUP} trials, percentile bootstrap from there); beside it, "
        f"the {int(finished.notna().sum())} finished trials' final value, which compares only "
        "trials the scheduler let run to the end. Values are compared pairwise with a two-sided "
        "Mann-Whitney U test, Holm-corrected across the pairs of the dimension; pairs too small "
        f"to ever reach p < {ALPHA} are not tested.")]
    if not study.searched:
        blocks.append(Paragraph("No dimension takes more than one value in this study."))
    if values.notna().sum() < 2:
        return blocks + [Paragraph(f"not enough trials: n={int(values.notna().sum())} scored — "
                                   "per-value statistics need at least 2.")]
    for name in study.searched:
        blocks += _dimension(study, name, values, finished, out, level + 1, seed)
    return blocks


def _dimension(study: Study, name: str, values: pd.Series, finished: pd.Series, out: Output,
               level: int, seed: int) -> list[Block]:
    dim = dimension(name)
    groups = dimension_groups(study.trials, name, reference=study.scored)
    summary = summarize_groups(groups, values, seed=seed).rename(columns={"group": "value"})
    done = summarize_groups(groups, finished, seed=seed).rename(columns={"group": "value"})
    out.csv(summary.merge(done, on="value", suffixes=("", "_finished")), f"dim_{name}.csv")
    blocks: list[Block] = [Heading(f"`{name}`", level)]
    if dim.condition_text():
        blocks.append(Paragraph(f"Condition: {dim.condition_text()}."))
    if int(summary["n"].sum()) < 2:
        return blocks + [Paragraph(f"not enough trials: n={int(summary['n'].sum())} with a "
                                   f"value of `{name}`.")]
    blocks.append(Table(pd.DataFrame({
        "value": summary["value"],
        "all trials: mean [95% CI] (n)": [fmt_interval(r.mean, r.ci_low, r.ci_high, n=r.n)
                                          for r in summary.itertuples()],
        "median": [fmt(v, 3) for v in summary["median"]],
        "finished: mean [95% CI] (n)": [fmt_interval(r.mean, r.ci_low, r.ci_high, n=r.n)
                                        for r in done.itertuples()],
    })))
    scored = values.notna() & groups.notna()
    labels = [str(g) for g in summary["value"]]
    kind = "quantile bin" if dim.numeric else "value"
    png = plots.box_plot(labels, [values[scored & (groups == g)].to_numpy(float) for g in labels],
                         [study.trials.loc[scored & (groups == g), "outcome"].tolist()
                          for g in labels], out.path(f"dim_{name}.png"),
                         title=f"{OBJECTIVE} by {name}", xlabel=f"{name} ({kind})", seed=seed)
    blocks.append(Image(png, f"{OBJECTIVE} by {name}"))
    if not dim.numeric:
        pairs = pairwise_tests(groups, values, higher_is_better=HIGHER_IS_BETTER)
        out.csv(pairs, f"pairs_{name}.csv")
        if len(pairs):
            blocks.append(Bullets(tuple(pair_sentence(p) for p in pairs.itertuples())))
    return blocks


def pair_sentence(row: object) -> str:
    """One pairwise comparison in words: the winner, no difference, or why it is untested."""
    counts = f"n={row.n_a}/{row.n_b}"
    if np.isfinite(row.untested):
        return (f"{row.a} vs {row.b}: not tested ({counts}; groups this small cannot reach "
                f"p < {ALPHA}: the smallest possible p is {fmt_p(row.untested)})")
    medians = f"median {fmt(row.median_a, 3)} vs {fmt(row.median_b, 3)}"
    if isinstance(row.winner, str):
        loser = row.b if row.winner == row.a else row.a
        return f"{row.winner} beats {loser}: {medians}, p_holm={fmt_p(row.p_holm)}, {counts}"
    return (f"no clear difference between {row.a} and {row.b} ({medians}, "
            f"p_holm={fmt_p(row.p_holm)}, {counts})")


def axis_values(study: Study, name: str) -> list[str]:
    """Rows/columns for a grid over ``name``: every choice when searched, else the values
    the trials took."""
    if name in study.searched and DIMENSIONS[name].kind == "str":
        return value_order(name, pd.Series(DIMENSIONS[name].choices))
    return [str(v) for v in value_order(name, study.trials[name])] if name in study.trials else []


def interaction_section(study: Study, out: Output, level: int) -> list[Block]:
    """Mean objective at the common epoch per augmentation x mode cell: table, CSV, heat map."""
    epoch, values = at_common_epoch(study)
    rows, cols = axis_values(study, "augmentation"), axis_values(study, "mode")
    trials = study.trials
    cells = []
    for aug in rows:
        for mode in cols:
            x = values[(trials["augmentation"] == aug) & (trials["mode"] == mode)]
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
    means = long.pivot(index="augmentation", columns="mode", values="mean").reindex(
        index=rows, columns=cols).to_numpy(float)
    counts = long.pivot(index="augmentation", columns="mode", values="n").reindex(
        index=rows, columns=cols).fillna(0).to_numpy(int)
    png = plots.heat_map(means, counts, rows, cols, out.path("interaction.png"),
                         title=f"mean {OBJECTIVE} at epoch {epoch}: augmentation × mode",
                         row_label="augmentation", col_label="mode",
                         colour_label=f"mean {OBJECTIVE}")
    return [Heading("Interaction: augmentation × mode", level),
            Paragraph(f"Every scored trial at epoch {epoch}."), Table(grid),
            Image(png, "augmentation x mode heat map"), Paragraph(
                "Each cell mixes every other setting (loss, margin, embedding size, learning "
                "rate) as the search happened to sample them; read small cells with care.")]


def _cell_text(long: pd.DataFrame, aug: str, mode: str) -> str:
    row = long[(long["augmentation"] == aug) & (long["mode"] == mode)].iloc[0]
    return "no trial" if row["n"] == 0 else f"{fmt(row['mean'], 3)} (n={row['n']})"


def importance_section(study: Study, out: Output, level: int) -> list[Block]:
    """fANOVA importance per scope at the common epoch (``analysis.importance``), its spread
    over forest seeds, and the dimensions left out and why."""
    epoch, values = at_common_epoch(study)
    results = study_importance(study.trials.assign(**{OBJECTIVE: values}), study.searched)
    out.csv(importance_table(results), "importance.csv")
    main, rest = results[0], results[1:]
    blocks: list[Block] = [Heading("Parameter importance", level), Paragraph(
        "Optuna's fANOVA (`FanovaImportanceEvaluator`) on an in-memory Optuna study rebuilt "
        f"from the trials' settings and `{OBJECTIVE}` at epoch {epoch}: the share of the "
        "metric's variance each dimension explains, as mean ± standard deviation over "
        f"{len(SEEDS)} seeds of its random forest. It is computed only from {MIN_TRIALS} scored "
        "trials on: the forest learns the metric from the trials themselves, and below that "
        "a dozen dimensions are learnt from a handful of points each, so the shares mostly "
        "reflect noise. fANOVA needs every dimension in every trial, so conditional dimensions "
        "are scored within the trials where they exist.")]
    if main.importances:
        table = pd.DataFrame({"dimension": list(main.importances),
                              "importance": [f"{100 * m:.1f} % ± {100 * s:.1f}" for m, s in
                                             zip(main.importances.values(),
                                                 main.spread.values(), strict=True)]})
        blocks += [Paragraph(f"All trials (n={main.n}):"), Table(table)]
        png = plots.importance_bars(main.importances, out.path("importance.png"),
                                    title=f"importance for {OBJECTIVE}, all trials (n={main.n})")
        blocks.append(Image(png, "parameter importance"))
    else:
        blocks.append(Paragraph(f"All trials: {main.note}."))
    conditional = [d for d in study.searched if dimension(d).conditional]
    if conditional:
        blocks += [Paragraph("Left out of the all-trials table (conditional dimensions):"),
                   Bullets(tuple(f"`{d}`: {dimension(d).condition_text()}" for d in conditional))]
    if rest:
        rows = [{"scope": r.scope, "n": r.n,
                 "importance": (", ".join(f"{d} {100 * v:.0f} %" for d, v in r.importances.items())
                                if r.importances else r.note)} for r in rest]
        blocks += [Paragraph("Within the trials where conditional dimensions exist:"),
                   Table(pd.DataFrame(rows))]
    return blocks
