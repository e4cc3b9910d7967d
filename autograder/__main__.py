"""Grade a class, and merge hand grades into it.

  python -m autograder batch DIR --jobs N --csv grades.csv [--manual-grades sheet.csv]
  python -m autograder merge --csv grades.csv --manual-grades sheet.csv

`batch` grades every submission folder in DIR; `merge` rebuilds the gradebook,
report and grading sheet from the results an earlier `batch` saved (under its
--out folder), with the hand grades of a filled-in sheet, without regrading.
(`pytest autograder [--submission PATH]` grades one submission.)
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from autograder import sandbox, workspace
from autograder.batch import (
    DEFAULT_TIMEOUT,
    SIMILARITY_THRESHOLD,
    BatchOptions,
    Written,
    read_hand_grades,
    run_batch,
    saved_outcomes,
    write_outputs,
)
from autograder.manual import ManualGradesError


def _outputs(command: argparse.ArgumentParser) -> None:
    command.add_argument("--csv", type=Path, default=Path("grades.csv"), help="the gradebook")
    command.add_argument("--report", type=Path, help="the class report (default: next to --csv)")
    command.add_argument(
        "--out",
        type=Path,
        help="per-submission results and logs, the grading sheet (default: <csv>-output)",
    )
    command.add_argument(
        "--manual-grades",
        type=Path,
        metavar="SHEET.csv",
        help="a filled-in grading sheet: its points are merged by submission, it is never "
        "overwritten (the new sheet carries them)",
    )
    command.add_argument(
        "--similarity",
        type=float,
        default=SIMILARITY_THRESHOLD,
        help="flag answer pairs at least this alike (0..1)",
    )
    command.add_argument(
        "--no-similarity", action="store_true", help="do not compare the written answers"
    )
    command.add_argument("--no-progress", action="store_true", help="no progress bars")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m autograder")
    verbs = parser.add_subparsers(dest="verb", required=True)
    batch = verbs.add_parser("batch", help="grade every submission folder in DIR")
    batch.add_argument("folder", type=Path, metavar="DIR", help="one sub-folder per submission")
    batch.add_argument("--jobs", type=int, default=2, help="submissions graded at once")
    batch.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help="seconds allowed per submission (the checks it finishes are kept)",
    )
    batch.add_argument("--live", action="store_true", help="probe the deployed services")
    batch.add_argument("--allow-local-urls", action="store_true")
    batch.add_argument("--no-gcloud", action="store_true")
    batch.add_argument(
        "--confinement",
        choices=sandbox.CHOICES,
        default=os.environ.get(sandbox.ENV_LEVEL) or "auto",
        help="how student scripts are confined; self-tested first",
    )
    batch.add_argument("--script-timeout", type=float)
    batch.add_argument(
        "--probe-image-url", help="with --live, also try /predict with this image URL (no points)"
    )
    _outputs(batch)
    merge = verbs.add_parser(
        "merge", help="rebuild the gradebook from an earlier batch's results, with hand grades"
    )
    _outputs(merge)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    out = args.out or args.csv.with_name(args.csv.stem + "-output")
    options = BatchOptions(
        out=out,
        manual_grades=args.manual_grades.resolve() if args.manual_grades else None,
        similarity=args.similarity,
        check_similarity=not args.no_similarity,
    )
    try:
        manual = read_hand_grades(options)  # before anything is written
    except (OSError, UnicodeDecodeError, ManualGradesError) as exc:
        print(f"error: --manual-grades: {exc}", file=sys.stderr)
        return 2
    if args.verb == "batch":
        if not args.folder.is_dir():
            print(f"error: {args.folder} is not a folder of submissions", file=sys.stderr)
            return 2
        try:
            confinement = sandbox.select(args.confinement)
        except sandbox.SandboxError as exc:
            print(f"error: --confinement={args.confinement}: {exc}", file=sys.stderr)
            return 2
        print(confinement.describe(), file=sys.stderr)
        # Every grading process checks the level again, but never settles for a weaker one.
        options.confinement = confinement.level
        options.jobs = args.jobs
        options.timeout = args.timeout
        options.live = args.live
        options.allow_local_urls = args.allow_local_urls
        options.no_gcloud = args.no_gcloud
        options.script_timeout = args.script_timeout
        options.probe_image_url = args.probe_image_url
        outcomes = run_batch(args.folder, options, progress=not args.no_progress)
        workspace.sweep_stale()  # folders of graders a timeout killed
    else:
        outcomes = saved_outcomes(out)
        if not outcomes:
            print(f"error: {out} holds no results of an earlier batch", file=sys.stderr)
            return 2
    report = args.report or args.csv.with_name(args.csv.stem + "-report.md")
    written = write_outputs(
        outcomes, options, args.csv, report, manual, progress=not args.no_progress
    )
    _print_summary(written, args.csv, report)
    return 0


def _print_summary(written: Written, csv_path: Path, report: Path) -> None:
    rows = written.rows
    graded = sum(row.outcome.status == "graded" for row in rows)
    final = sum(row.final() for row in rows)
    pairs = written.pairs
    print(
        f"graded {graded} of {len(rows)} submissions ({final} with a final total); "
        f"gradebook {csv_path}, report {report}, grading sheet {written.sheet}"
        + (f"; {len(pairs)} answer pairs to review" if pairs else "")
    )
    for row in rows:
        if row.outcome.status != "graded":
            print(f"  {row.outcome.name}: {row.outcome.status}: {row.outcome.detail}")
    if written.manual is not None:
        for problem in written.manual.problems:
            print(f"  hand grades: {problem}")
        for name in written.unknown:
            print(f"  hand grades: submission {name!r} is not in this class: its row was not used")


if __name__ == "__main__":
    sys.exit(main())
