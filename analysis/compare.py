"""Side-by-side sections for several studies (e.g. MNIST vs CIFAR-10): counts and floors,
the objective per experiment, leaderboards, and per-dimension statistics with one column
group per study (each study at its own common epoch, see ``analysis.dimension_report``).

Numeric dimensions share one set of quantile bins computed over all studies' scored trials,
so that a row means the same range in every column.
"""

from __future__ import annotations

import pandas as pd

from analysis import plots
from analysis.dimension_report import at_common_epoch, pair_sentence
from analysis.dimensions import ANALYSED
from analysis.document import Block, Bullets, Heading, Image, Paragraph, Table, fmt, fmt_interval
from analysis.grouping import dimension_groups
from analysis.load import OUTCOMES, Study
from analysis.report import HIGHER_IS_BETTER, LEADERBOARD_TOP, Output, ranked, settings_text
from analysis.stats import pairwise_tests, summarize_groups
from study.schema import OBJECTIVE, TEST

COMPACT = ("augmentation", "mode", "loss", "embedding_dim", "lr", "batch_size")


def comparison_sections(studies: list[Study], out: Output, *, top: int = LEADERBOARD_TOP,
                        level: int = 2, seed: int = 0) -> list[Block]:
    """The comparison part of a multi-study report; writes ``comparison_*`` files."""
    names = [s.name for s in studies]
    blocks: list[Block] = [Heading("Comparison of experiments", level), Paragraph(
        "One column (group) per experiment: " + ", ".join(f"`{n}`" for n in names) + ". "
        "Each experiment's full report follows this comparison.")]
    blocks += _counts(studies, out)
    pooled = pd.concat([s.trials for s in studies], ignore_index=True)
    scored = pooled[pooled[OBJECTIVE].notna()]
    if scored.empty:
        blocks.append(Paragraph(f"not enough trials: n=0 trials reported a final {OBJECTIVE} "
                                "in any experiment."))
        return blocks
    blocks += _metric_per_experiment(studies, scored, out, level, seed)
    blocks += _leaderboards(studies, out, level, top)
    blocks += _dimensions(studies, scored, out, level)
    return blocks


def _counts(studies: list[Study], out: Output) -> list[Block]:
    rows: dict[str, list[str]] = {"parent runs": [], "study seeds": [], "dataset": []}
    rows.update({o: [] for o in OUTCOMES})
    rows.update({"total trials": [], f"with {OBJECTIVE}": [], f"best {OBJECTIVE}": [],
                 "its test probe": [], f"median {OBJECTIVE}": [], "raw pixels, test probe": []})
    for s in studies:
        p, t = s.parents, s.trials
        rows["parent runs"].append(str(len(p)))
        seeds = p["study_seed"].dropna().astype(int).unique() if not p.empty else []
        rows["study seeds"].append(", ".join(str(x) for x in seeds) or "–")
        rows["dataset"].append(", ".join(str(d) for d in p["dataset"].dropna().unique()) or "–")
        for o in OUTCOMES:
            rows[o].append(str(int((t["outcome"] == o).sum())))
        rows["total trials"].append(str(len(t)))
        rows[f"with {OBJECTIVE}"].append(str(len(s.scored)))
        best = ranked(t)
        top = best.iloc[0] if len(best) else None
        rows[f"best {OBJECTIVE}"].append(fmt(top[OBJECTIVE], 4) if top is not None else "–")
        rows["its test probe"].append(fmt(top.get(f"{TEST}probe_accuracy"), 4)
                                      if top is not None else "–")
        rows[f"median {OBJECTIVE}"].append(fmt(best[OBJECTIVE].median(), 4) if len(best) else "–")
        rows["raw pixels, test probe"].append(fmt(s.floor.get(f"{TEST}probe_accuracy"), 4))
    table = pd.DataFrame({"": list(rows), **{s.name: [rows[k][i] for k in rows]
                                             for i, s in enumerate(studies)}})
    out.csv(table.rename(columns={"": "quantity"}), "comparison_counts.csv")
    return [Table(table)]


def _metric_per_experiment(studies: list[Study], scored: pd.DataFrame, out: Output,
                           level: int, seed: int) -> list[Block]:
    names = [s.name for s in studies]
    values = [scored.loc[scored["experiment"] == n, OBJECTIVE].to_numpy(float) for n in names]
    outcomes = [scored.loc[scored["experiment"] == n, "outcome"].tolist() for n in names]
    png = plots.box_plot(names, values, outcomes, out.path("comparison_metric.png"),
                         title=f"{OBJECTIVE} per experiment", xlabel="experiment", seed=seed)
    groups = pd.Categorical(scored["experiment"], categories=names, ordered=True)
    pairs = pairwise_tests(pd.Series(groups, index=scored.index), scored[OBJECTIVE],
                           higher_is_better=HIGHER_IS_BETTER)
    out.csv(pairs, "comparison_pairs.csv")
    return [Heading(f"{OBJECTIVE} per experiment", level + 1), Image(png, f"{OBJECTIVE} per experiment"),
            Bullets(tuple(pair_sentence(p) for p in pairs.itertuples())) if len(pairs)
            else Paragraph(""),
            Paragraph("Different datasets differ in difficulty: compare the settings' ranking "
                      "within each experiment rather than raw levels across experiments.")]


def _leaderboards(studies: list[Study], out: Output, level: int, top: int) -> list[Block]:
    tops = {s.name: ranked(s.trials).head(top) for s in studies}
    depth = max((len(t) for t in tops.values()), default=0)
    table = pd.DataFrame({"rank": range(1, depth + 1)})
    for name, best in tops.items():
        dims = tuple(d for d in COMPACT if d in best)
        cells = [f"{fmt(row[OBJECTIVE], 4)} (test {fmt(row.get(f'{TEST}probe_accuracy'), 4)}) — "
                 + settings_text(row, dims) for _, row in best.iterrows()]
        table[name] = cells + ["–"] * (depth - len(cells))
    long = pd.concat([t.assign(rank=range(1, len(t) + 1)) for t in tops.values()],
                     ignore_index=True)
    out.csv(long, "comparison_leaderboard.csv")
    return [Heading(f"Leaderboards side by side (top {top})", level + 1), Table(table),
            Paragraph(f"Each cell: {OBJECTIVE} at the trial's last epoch (its test probe) — the "
                      "main settings; full settings are in each experiment's leaderboard below.")]


def _dimensions(studies: list[Study], scored: pd.DataFrame, out: Output,
                level: int) -> list[Block]:
    searched = [d for d in ANALYSED if any(d in s.searched for s in studies)]
    blocks: list[Block] = [Heading("Per dimension, side by side", level + 1), Paragraph(
        f"{OBJECTIVE} of every scored trial at the last epoch all trials of its experiment "
        "reached: mean with its 95 % interval, median and n per experiment. Numeric dimensions "
        "use the same quantile bins (over all experiments) in every column.")]
    for name in searched:
        summaries = {}
        for s in studies:
            _, values = at_common_epoch(s)
            summaries[s.name] = summarize_groups(dimension_groups(s.trials, name, reference=scored),
                                                 values).rename(columns={"group": "value"})
        order: list[str] = []
        for summary in summaries.values():
            order += [str(v) for v in summary["value"] if str(v) not in order]
        table = pd.DataFrame({"value": order})
        long = []
        for exp, summary in summaries.items():
            by_value = {str(r.value): r for r in summary.itertuples(index=False)}
            table[f"{exp} mean [95% CI]"] = [_mean_ci(by_value.get(v)) for v in order]
            table[f"{exp} median"] = [fmt(by_value[v].median, 3) if v in by_value else "–"
                                      for v in order]
            table[f"{exp} n"] = [int(by_value[v].n) if v in by_value else 0 for v in order]
            long.append(summary.assign(experiment=exp))
        out.csv(pd.concat(long, ignore_index=True), f"comparison_dim_{name}.csv")
        blocks += [Heading(f"`{name}`", level + 2), Table(table)]
    return blocks


def _mean_ci(row: object | None) -> str:
    if row is None or not row.n:
        return "–"
    return fmt_interval(row.mean, row.ci_low, row.ci_high)
