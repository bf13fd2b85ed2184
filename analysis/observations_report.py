"""The prose of the original study's three observations: ``analysis.observations``' findings
written as the report's sentences, bullets and tables, and the budget wording every
comparison of the grid report states (``at``, ``budget_line``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, fields
from typing import TYPE_CHECKING

import pandas as pd

from analysis.document import Block, Bullets, Heading, Paragraph, fmt, fmt_interval, fmt_p
from analysis.grid import ACCURACY_METRICS, Budget, Comparison, budget, family
from analysis.load import Study
from analysis.observations import (
    MIXED,
    NEEDS_BOTH,
    NO_DATA,
    NOT_SUPPORTED,
    SUPPORTED,
    AugmentationFinding,
    DatasetFinding,
    EffectShift,
    StructureCheck,
    StructureFinding,
    judge,
)
from analysis.stats import ALPHA
from study.presets import GRID_MODES

if TYPE_CHECKING:
    from analysis.report import Output

OBSERVATIONS = {
    1: "Augmentation changes results, but more is not always better",
    2: "The more complex images of the second dataset (CIFAR-10) change the picture",
    3: "Triplet training leads to clusters, pair training to line-like structures",
}
HOW = {
    1: ("Every augmentation comparison of the family (stronger − weaker within a mode: "
        "rotation − none, simclr − none, simclr − rotation) on every accuracy metric ("
        + ", ".join(f"`{m}`" for m in ACCURACY_METRICS) + "), counted when clear. "
        "**Supported** when some clear comparison shows the stronger augmentation worse and "
        "the same pair and mode is not clearly better on another metric; **mixed** when "
        "every clear drop is contradicted that way; **not supported** when no comparison "
        "shows a clear drop (no clear effect at all, or only clear gains)."),
    2: ("Whether each effect changes between the datasets, not whether the level does: for "
        f"each of the {len(family())} comparisons of the family and each accuracy metric, the "
        "per-seed differences in one dataset against those in the other (Welch's t-test), "
        f"Holm across all of them; an effect differs when p_holm < {ALPHA}. **Supported** "
        "when a differing effect reverses (clear in each dataset, Holm within its family, "
        "with opposite signs); **mixed** when effects differ in magnitude only, or are clear "
        "in one dataset only; **not supported** when none differs clearly. A harder "
        "dataset lowers every cell; that level shift is shown as context and decides nothing."),
    3: ("Triplet minus pair silhouette (expected > 0: clusters) and pair minus triplet "
        "line-likeness (expected > 0: lines), matched by augmentation and seed, in the "
        "embedding and in the t-SNE map; Holm across the four checks of a dataset. "
        "**Supported** when all four hold clearly, **mixed** when some do, **not supported** "
        "when none does."),
}

EVIDENCE = {1: "Every clear augmentation comparison (mean per-seed difference [95% CI]):",
            2: "Every effect that differs clearly (mean per-seed difference in each):"}


# ---------------------------------------------------------------------------- budget words
def listed(values: Sequence[int], zero: str = "") -> str:
    return ", ".join(zero if (v == 0 and zero) else str(v) for v in values) or "–"


def seeds_text(b: Budget) -> str:
    low, high = b.seeds_per_cell
    return str(low) if low == high else f"{low}–{high}"


def images_text(b: Budget) -> str:
    """Training views encoded per trial, per mode (``images_seen`` at the last epoch)."""
    return " / ".join(f"{mode} {listed(b.images_seen.get(mode, ()))}" for mode in GRID_MODES)


def at(b: Budget) -> str:
    """The epoch and budget a comparison in ``b``'s experiment is made at."""
    asked = f" of {listed(b.epochs)}" if b.epochs and b.epochs != b.epochs_run else ""
    return (f"epoch {listed(b.epochs_run)}{asked} (each trial's last), test split, "
            f"train_subset {listed(b.train_subset, 'whole training set')}, images seen per "
            f"trial {images_text(b)}, {seeds_text(b)} seed(s) per cell")


def budget_line(b: Budget) -> str:
    return f"`{b.experiment}` ({b.dataset}): {at(b)}"


def comparison_text(c: Comparison | EffectShift) -> str:
    """``metric, within: a − b``."""
    return f"`{c.metric}`, {c.within}: {c.a} − {c.b}"


def describe(c: Comparison) -> str:
    """One comparison as evidence: mean difference [95% CI], signs over seeds, p_holm."""
    return (f"{comparison_text(c)} = {fmt_interval(c.mean, c.ci_low, c.ci_high, signed=True)}, "
            f"{c.n_pos}/{c.n} seeds higher, p_holm {fmt_p(c.p_holm)}")


# ---------------------------------------------------------------------------- observation 1
def augmentation_text(f: AugmentationFinding) -> str:
    """Observation 1's sentence for one experiment."""
    if f.verdict == NO_DATA:
        return (f"none of the {f.compared} augmentation comparisons could be tested (fewer "
                "than 2 seeds matched per cell): the tables above show single differences only.")
    if not f.clear:
        return (f"none of the {f.compared} augmentation comparisons ({f.tested} tested) is "
                "clear: no clear augmentation effect.")
    counts = (f"{len(f.clear)} of {f.compared} augmentation comparisons ({f.tested} tested) "
              f"are clear: {len(f.drops)} with the stronger augmentation worse, "
              f"{len(f.gains)} with it better")
    if f.verdict == NOT_SUPPORTED:
        return f"{counts}: only clear gains, so more augmentation is not shown to hurt."
    if f.verdict == MIXED:
        return (f"{counts}: every clear drop has a clear gain of the same pair and mode on "
                "another metric, so whether more hurts depends on the metric.")
    caveat = (f" ({len(f.contradicted)} of the drops have a clear gain of the same pair and "
              "mode on another metric)" if f.contradicted else "")
    return f"{counts}: augmentation changes results, and more is not always better{caveat}."


def augmentation_evidence(f: AugmentationFinding) -> list[str]:
    """Every clear augmentation comparison of one experiment, with its direction."""
    contradicted = set(f.contradicted)
    return [f"`{f.experiment}`: {describe(c)} — stronger "
            + ("better" if c.mean > 0 else "worse, contradicted by another metric"
               if c in contradicted else "worse") for c in f.clear]


# ---------------------------------------------------------------------------- observation 2
def shift_text(s: EffectShift, f: DatasetFinding) -> str:
    """One effect in two experiments: its mean per-seed difference in each, Welch p_holm."""
    change = s.change
    return (f"`{f.first}` → `{f.second}`: {comparison_text(s)} = "
            f"{fmt_interval(s.mean_first, signed=True)} vs {fmt_interval(s.mean_second, signed=True)}"
            f" (Welch p_holm {fmt_p(s.p_holm)}) — {change}")


def datasets_text(f: DatasetFinding) -> str:
    """Observation 2's sentence for one pair of experiments."""
    if f.verdict == NO_DATA:
        text = (f"no effect could be compared: Welch's test needs at least 2 per-seed "
                f"differences in each of `{f.first}` and `{f.second}` (2 seeds per cell).")
    elif f.verdict == SUPPORTED:
        text = (f"{len(f.differing)} of {f.tested} effects differ clearly, "
                f"{len(f.reversals)} of them reverse: the picture changes.")
    elif f.verdict == MIXED:
        one_side = sum(s.change == "clear in one only" for s in f.differing)
        text = (f"{len(f.differing)} of {f.tested} effects differ clearly but none reverses "
                "(clear in both datasets with opposite signs): "
                + ("they change in magnitude only." if not one_side else
                   f"{one_side} of them {'is' if one_side == 1 else 'are'} clear in one dataset "
                   "only, the others change in magnitude."))
    else:
        text = f"none of the {f.tested} effects differs clearly between the datasets."
    levels = "; ".join(f"`{lv.metric}` {fmt(lv.mean_first)} vs {fmt(lv.mean_second)}"
                       for lv in f.levels)
    if levels:
        text += f" Level over the cells (context, not the verdict): {levels}."
    if f.same_dataset:
        text += (f" Note: both experiments use the dataset {f.dataset_first}, so any change "
                 "here is between runs, not between datasets.")
    return text


def records(items: Sequence[object], kind: type) -> pd.DataFrame:
    """Dataclass records as a table with ``kind``'s fields as columns (and ``n``, the
    number of per-seed differences), even when there is none."""
    columns = [f.name for f in fields(kind)]
    rows = [asdict(item) for item in items]
    table = pd.DataFrame(rows, columns=columns)
    if "diffs" in columns:
        table["n"] = table["diffs"].map(len)
    return table


def shifts_table(findings: Sequence[DatasetFinding]) -> pd.DataFrame:
    """Every effect compared between two experiments, for the CSV: the two experiments, the
    effect's per-seed differences in each (``diffs_first``, ``diffs_second``) and the rest
    of ``EffectShift``."""
    rows = []
    for f in findings:
        for s in f.shifts:
            row = asdict(s)
            rows.append({"experiment_first": f.first, "experiment_second": f.second,
                         "diffs_first": row.pop("first"), "diffs_second": row.pop("second"),
                         **row, "mean_first": s.mean_first, "mean_second": s.mean_second,
                         "reverses": s.reverses, "change": s.change})
    columns = ["experiment_first", "experiment_second", "diffs_first", "diffs_second",
               *(f.name for f in fields(EffectShift) if f.name not in ("first", "second")),
               "mean_first", "mean_second", "reverses", "change"]
    return pd.DataFrame(rows, columns=columns)


# ---------------------------------------------------------------------------- observation 3
def negative_note(experiment: str, measures: Sequence[str]) -> str:
    """Why a dataset whose silhouettes are all below 0 has no clusters to speak of."""
    return (f"Every {' and every '.join(f'`{m}`' for m in measures)} in `{experiment}` is below "
            "0: classes overlap in every cell, so \"clusters\" there only compare degrees of "
            "overlap.")


def structure_text(f: StructureFinding) -> str:
    """Observation 3's sentence for one experiment."""
    if f.verdict == NO_DATA:
        return "no structure check could be tested (no trial logged the measures, or fewer " \
               "than 2 matched pairs)."
    n = len(f.checks)
    lead = {SUPPORTED: "triplet gives higher silhouettes and pair more line-like classes, "
                       "clearly, in the embedding and the t-SNE map",
            MIXED: f"{f.holds} of {n} checks hold clearly",
            NOT_SUPPORTED: (f"{f.reversed} of {n} checks clearly reversed" if f.reversed
                            else "no check holds clearly")}[f.verdict]
    expected = sum(c.mean > 0 for c in f.checks)
    parts = [f"{c.measure} {c.favoured} − {c.other} = "
             f"{fmt_interval(c.mean, c.ci_low, c.ci_high, signed=True)}, {c.n_pos}/{c.n} pairs "
             f"higher, p_holm {fmt_p(c.p_holm)}: {c.status}" for c in f.checks]
    text = f"{lead} ({expected} of {n} in the expected direction by the mean): " \
           + "; ".join(parts) + "."
    return text + (" " + negative_note(f.experiment, f.negative) if f.negative else "")


# ---------------------------------------------------------------------------- the section
def observations_section(studies: list[Study], frame: pd.DataFrame, out: Output,
                         level: int) -> list[Block]:
    """The three observations, each with its verdict overall, per dataset (per pair of
    datasets for the second) and its evidence; writes ``grid_observations.csv``,
    ``grid_augmentation_effects.csv``, ``grid_effect_shifts.csv`` and
    ``grid_structure_checks.csv``."""
    names = [s.name for s in studies]
    budgets = {s.name: budget(s) for s in studies}
    findings = judge(frame, names)
    overall = findings.overall()
    small = any(b.shortfalls() for b in budgets.values())
    blocks: list[Block] = [Heading("The original study's observations", level), Paragraph(
        "Each verdict is computed from the trials above, never fixed in advance: "
        "**supported**, **mixed** or **not supported** by the rule under each observation; "
        "**not enough data** when nothing could be tested. A result counts as clear when its "
        f"Holm-adjusted p-value is below {ALPHA}; means without a clear test are reported but "
        "decide nothing. Compared at: " + "; ".join(budget_line(b) for b in budgets.values())
        + "." + (" **The budget is small** (see above): the verdicts are provisional."
                 if small else ""))]
    scoped: dict[int, list[tuple[str, str, str]]] = {
        1: [(f.experiment, f.verdict, augmentation_text(f)) for f in findings.augmentation],
        2: [(f"{f.first} → {f.second}", f.verdict, datasets_text(f)) for f in findings.datasets]
        or [(names[0], NEEDS_BOTH, "one dataset only: run the seed grid on the second dataset "
             "too (e.g. `--dataset cifar10`) and pass both experiments to `analysis.summarize` "
             "(`--experiment-name A --experiment-name B`).")],
        3: [(f.experiment, f.verdict, structure_text(f)) for f in findings.structure],
    }
    evidence: dict[int, list[str]] = {
        1: [line for f in findings.augmentation for line in augmentation_evidence(f)],
        2: [shift_text(s, f) for f in findings.datasets for s in f.differing], 3: []}
    rows = []
    for number, title in OBSERVATIONS.items():
        blocks += [Heading(f"{number}. {title}", level + 1),
                   Paragraph(f"**Verdict: {overall[number]}.** {HOW[number]}"),
                   Bullets(tuple(f"`{scope}`: **{verdict}** — {text}"
                                 for scope, verdict, text in scoped[number]))]
        if evidence[number]:
            blocks += [Paragraph(EVIDENCE[number]), Bullets(tuple(evidence[number]))]
        rows += [{"observation": number, "title": title, "scope": scope, "verdict": verdict,
                  "overall": overall[number], "text": text}
                 for scope, verdict, text in scoped[number]]
    out.csv(pd.DataFrame(rows), "grid_observations.csv")
    out.csv(records([c for f in findings.augmentation for c in f.clear], Comparison),
            "grid_augmentation_effects.csv")
    out.csv(shifts_table(findings.datasets), "grid_effect_shifts.csv")
    out.csv(records([c for f in findings.structure for c in f.checks], StructureCheck),
            "grid_structure_checks.csv")
    return blocks
