"""`python -m autograder batch DIR --jobs N --csv grades.csv`: grade a whole class.

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
    run_batch,
    write_outputs,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m autograder")
    verbs = parser.add_subparsers(dest="verb", required=True)
    batch = verbs.add_parser("batch", help="grade every submission folder in DIR")
    batch.add_argument("folder", type=Path, metavar="DIR", help="one sub-folder per submission")
    batch.add_argument("--jobs", type=int, default=2, help="submissions graded at once")
    batch.add_argument("--csv", type=Path, default=Path("grades.csv"), help="the gradebook")
    batch.add_argument("--report", type=Path, help="the class report (default: next to --csv)")
    batch.add_argument(
        "--out",
        type=Path,
        help="per-submission results and logs, the grading sheet (default: <csv>-output)",
    )
    batch.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help="seconds allowed per submission",
    )
    batch.add_argument("--live", action="store_true", help="probe the deployed services")
    batch.add_argument("--allow-local-urls", action="store_true")
    batch.add_argument("--manual-grades", type=Path, help="the filled-in grading sheet")
    batch.add_argument("--no-gcloud", action="store_true")
    batch.add_argument(
        "--confinement",
        choices=sandbox.CHOICES,
        default=os.environ.get(sandbox.ENV_LEVEL) or "auto",
        help="how student scripts are confined (docs/grader-trust.md); self-tested first",
    )
    batch.add_argument("--script-timeout", type=float)
    batch.add_argument("--probe-image-url")
    batch.add_argument(
        "--similarity",
        type=float,
        default=SIMILARITY_THRESHOLD,
        help="flag answer pairs at least this alike (0..1)",
    )
    batch.add_argument("--no-progress", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not args.folder.is_dir():
        print(f"error: {args.folder} is not a folder of submissions", file=sys.stderr)
        return 2
    try:
        confinement = sandbox.select(args.confinement)
    except sandbox.SandboxError as exc:
        print(f"error: --confinement={args.confinement}: {exc}", file=sys.stderr)
        return 2
    print(confinement.describe(), file=sys.stderr)
    # Every grader process checks the level again, but never settles for a weaker one.
    os.environ[sandbox.ENV_LEVEL] = confinement.level
    out = args.out or args.csv.with_name(args.csv.stem + "-output")
    options = BatchOptions(
        jobs=args.jobs,
        timeout=args.timeout,
        out=out,
        live=args.live,
        allow_local_urls=args.allow_local_urls,
        manual_grades=args.manual_grades.resolve() if args.manual_grades else None,
        no_gcloud=args.no_gcloud,
        script_timeout=args.script_timeout,
        probe_image_url=args.probe_image_url,
        similarity=args.similarity,
    )
    outcomes = run_batch(args.folder, options, progress=not args.no_progress)
    workspace.sweep_stale()  # folders of graders a timeout killed
    report = args.report or args.csv.with_name(args.csv.stem + "-report.md")
    pairs = write_outputs(outcomes, options, args.csv, report)
    not_graded = [o for o in outcomes if o.status != "graded"]
    print(
        f"graded {len(outcomes) - len(not_graded)} of {len(outcomes)} submissions; "
        f"gradebook {args.csv}, report {report}, grading sheet {out / 'grading_sheet.csv'}"
        + (f"; {len(pairs)} answer pairs to review" if pairs else "")
    )
    for outcome in not_graded:
        print(f"  {outcome.name}: {outcome.status}: {outcome.detail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
