"""``python -m analysis.summarize``: read studies from MLflow, write their report.

In the order things happen: parse the command -> open the tracking store -> load each
experiment's parent and trial runs -> build the report (comparison first when several
experiments are given; a ``--preset seed-grid`` study gets the original study's view of
``analysis.grid_report`` instead of the search sections, across datasets when every study
given is a seed grid) -> write ``report.md``, a self-contained ``report.html``, CSV tables
and PNG figures into ``--out`` -> log the files into each study's parent run(s) under
``report/`` (a comparison below ``report/<report folder name>/``, by default
``report/<a>_vs_<b>/``), browsable in the MLflow UI.

Exit codes: 0 report written; 1 report written but logging to MLflow failed; 2 bad input
(unknown experiment, missing store).
"""

from __future__ import annotations

import argparse
import datetime as dt
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analysis.defaults import LEADERBOARD_TOP, slug
from study.names import name_problem
from study.schema import REPORT_DIR
from study.secrets import redact
from study.spec import UsageError
from study.store import missing_sqlite_store, resolve_tracking_uri

if TYPE_CHECKING:
    from analysis.load import Study

# The analysis itself (pandas, scipy, matplotlib) is imported once the command line is
# read: --help and usage errors answer at once.


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m analysis.summarize",
        description="Summarize hyperparameter studies recorded in MLflow: leaderboard, "
        "per-dimension statistics, interaction, importance, t-SNE montage.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--experiment-name", action="append", required=True, metavar="NAME",
                   help="MLflow experiment (study) to report; repeat to compare several")
    p.add_argument("--tracking-uri", default=None,
                   help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else "
                        "sqlite:///<cwd>/mlflow.db)")
    p.add_argument("--out", default=None,
                   help="report folder (default: reports/<name>, or reports/<a>_vs_<b>)")
    p.add_argument("--top", type=int, default=LEADERBOARD_TOP, help="trials in the leaderboard")
    p.add_argument("--no-log", action="store_true",
                   help="do not log the report files into the parent runs")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from analysis.load import ExperimentNotFoundError

    names = list(dict.fromkeys(args.experiment_name))
    uri = resolve_tracking_uri(args.tracking_uri)
    try:
        if args.top < 1:
            raise UsageError(f"--top {args.top} must be at least 1")
        if args.out is None:  # the default folder must stay inside reports/
            for name in names:
                problem = name_problem(slug(name))
                if problem is not None:
                    raise UsageError(f"--experiment-name {name[:120]!r}: as the report folder "
                                     f"name {slug(name)[:120]!r} it {problem}; pass --out DIR")
        studies, client = open_studies(uri, names)
    except UsageError as err:
        print(f"error: {redact(str(err))}", file=sys.stderr)
        return 2
    except ExperimentNotFoundError as err:
        listing = ", ".join(err.available) or "(none)"
        print(f"error: experiment {err.name!r} not found in {redact(uri)}; existing "
              f"experiments: {listing}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else Path("reports") / "_vs_".join(slug(n) for n in names)
    command = redact(shlex.join(["python", "-m", "analysis.summarize",
                                 *(sys.argv[1:] if argv is None else argv)]))
    written = write_report(studies, client, out.absolute(), uri=uri, top=args.top,
                           command=command)
    print(f"report: {out / 'report.md'} and {out / 'report.html'} ({len(written)} files)")
    if args.no_log:
        return 0
    # A comparison goes below report/<report folder name>/ so that it never mixes with (or
    # replaces) a single study's own report/ files.
    target = REPORT_DIR if len(studies) == 1 else f"{REPORT_DIR}/{out.absolute().name}"
    errors = log_report(client, studies, out.absolute(), written, target)
    for line in errors:
        print(f"warning: {redact(line)}", file=sys.stderr)
    return 1 if errors else 0


def open_studies(uri: str, names: list[str]) -> tuple[list[Study], Any]:
    """Load every named experiment; raises ``UsageError`` for a missing SQLite store and
    ``ExperimentNotFoundError`` (naming the experiments that exist) for an unknown name."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from analysis.load import load_study

    missing = missing_sqlite_store(uri)
    if missing is not None:
        raise UsageError(f"no MLflow store at {missing} (from tracking URI {uri}); pass "
                         "--tracking-uri or run from the folder that holds mlflow.db")
    try:
        client = MlflowClient(uri)
        return [load_study(client, name) for name in names], client
    except MlflowException as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UsageError(f"cannot read the MLflow store at {uri}: {first}") from None


def write_report(studies: list[Study], client: Any, root: Path, *, uri: str, top: int,
                 command: str) -> list[Path]:
    """Write report.md, report.html, CSVs and PNGs under ``root``; returns every file
    written (report.md and report.html last)."""
    from analysis.compare import comparison_sections
    from analysis.document import Block, Heading, Paragraph, html_document, markdown
    from analysis.grid import is_seed_grid
    from analysis.grid_report import grid_sections, grid_study_sections
    from analysis.report import Output, counts_section, overview, study_sections

    out = Output(root, root)
    names = [s.name for s in studies]
    title = (f"Study report: {names[0]}" if len(names) == 1
             else "Study comparison: " + " vs ".join(names))
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    blocks: list[Block] = [Heading(title, 1), Paragraph(
        f"Generated {now} from `{redact(uri)}` by `{redact(command)}`. Browse the runs with "
        f"`mlflow ui --backend-store-uri {redact(uri)}`.")]
    grids = [is_seed_grid(s) for s in studies]
    if len(studies) == 1:
        blocks += (grid_study_sections(studies[0], client, out) if grids[0]
                   else study_sections(studies[0], client, out, top=top))
    elif all(grids):  # one seed grid per dataset: the original study's view across them
        blocks += grid_sections(studies, client, out)
        for study in studies:
            blocks.append(Heading(f"Experiment `{study.name}`", 2))
            sub = out.sub(study.name)
            blocks += overview(study, sub, 3, dimensions=False) + counts_section(study, sub, 3)
    else:
        blocks += comparison_sections(studies, out, top=top)
        for study, grid in zip(studies, grids, strict=True):
            blocks.append(Heading(f"Experiment `{study.name}`", 2))
            blocks += (grid_study_sections(study, client, out.sub(study.name), level=3) if grid
                       else study_sections(study, client, out.sub(study.name), top=top,
                                           level=3))
    out.path("report.md").write_text(markdown(blocks, root), encoding="utf-8")
    out.path("report.html").write_text(html_document(blocks, title), encoding="utf-8")
    return out.written


def log_report(client: Any, studies: list[Study], root: Path, files: list[Path],
               target: str = REPORT_DIR) -> list[str]:
    """Log ``files`` (under ``root``) into every parent run of every study, below the
    artifact folder ``target`` (subfolders kept); returns one message per failed upload."""
    errors: list[str] = []
    run_ids = [r for s in studies for r in s.parents["run_id"]]
    if not run_ids:
        print("note: no parent run to log the report into", file=sys.stderr)
    for run_id in run_ids:
        for path in files:
            folder = path.parent.relative_to(root).as_posix()
            where = target if folder == "." else f"{target}/{folder}"
            try:
                client.log_artifact(run_id, str(path), where)
            except Exception as err:  # noqa: BLE001 - reported, the report itself is written
                errors.append(f"could not log {path.name} into parent run {run_id}: {err}")
    if run_ids and not errors:
        print(f"logged {len(files)} report files into {len(run_ids)} parent run(s) under "
              f"{target}/")
    return errors


if __name__ == "__main__":
    sys.exit(main())
