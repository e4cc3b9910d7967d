"""Grade a whole class: every submission folder in parallel, each in its own process.

Each submission is graded by `pytest autograder --submission X --results-json
...` in a process of its own, in a session of its own, with its own timeout: a
crash, a hang or a hostile script in one submission ends that process only,
never the batch. The grader records each check's result as soon as it is
decided (a progress file), so a submission stopped at the batch's timeout keeps
every check it finished; the rest are "not graded", to rerun, never counted
as lost.

Those processes are forked from a server that imported pytest and the grader
once (multiprocessing's forkserver): starting a fresh interpreter and
importing them again for every submission cost about as much CPU as grading a
typical one.

Hand grades are merged here, not in the subprocesses: read once, keyed by
submission, and written back into a new grading sheet (never over the one
read). `python -m autograder merge` does only this step again, from the saved
results, without regrading.

Outputs: the gradebook CSV (points per question, points still to come, each
submission's status and grading time), a Markdown class report, the grading
sheet of the written answers, and the answer pairs too alike to be independent.
"""

from __future__ import annotations

import contextlib
import csv
import json
import multiprocessing
import os
import resource
import signal
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from autograder import answers, assignment
from autograder.engine import GRADED, NOT_GRADED, PENDING, UNDECIDED, ItemResult
from autograder.manual import ManualGrades, read_manual_grades, same_file
from autograder.report import results_json, write_results_json
from autograder.rubric import QUESTION_MAXIMA, load_rubric
from autograder.similarity import DEFAULT_THRESHOLD, similar_pairs
from autograder.submission import load_submission

DEFAULT_TIMEOUT = 600.0
SIMILARITY_THRESHOLD = DEFAULT_THRESHOLD
GRADED_STATUS, TIMEOUT_STATUS, CRASHED_STATUS = "graded", "timeout", "crashed"
ENVIRONMENT_STATUS = "environment error"
SHEET_NAME = "grading_sheet.csv"


@dataclass
class BatchOptions:
    jobs: int = 2
    timeout: float = DEFAULT_TIMEOUT
    out: Path = Path("grading-output")
    live: bool = False
    allow_local_urls: bool = False
    manual_grades: Path | None = None
    no_gcloud: bool = False
    confinement: str = "auto"  # a level the batch self-tested (sandbox.select)
    script_timeout: float | None = None
    probe_image_url: str | None = None
    similarity: float = SIMILARITY_THRESHOLD
    check_similarity: bool = True


@dataclass
class Outcome:
    submission: Path
    status: str  # graded, timeout (the checks it finished are kept), crashed,
    # environment error (the grading machine failed on some items: to grade again)
    results: dict | None = None  # its results.json (rebuilt from the finished checks on a timeout)
    detail: str = ""
    seconds: float = 0.0
    cpu_seconds: float | None = None  # the grading process's and all it ran (not on a timeout)
    answers: answers.ShortAnswers | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.submission.name


def find_submissions(folder: Path) -> list[Path]:
    return sorted(
        p for p in Path(folder).iterdir() if p.is_dir() and not p.name.startswith((".", "_"))
    )


# Imported once by the server the grading processes are forked from.
_PRELOAD = [
    "pytest",
    "pytest_timeout",
    "autograder.plugin",
    "autograder.checks.build",
    "autograder.checks.deliverables",
    "autograder.checks.deploy",
    "autograder.checks.live",
    "autograder.checks.submit",
    "autograder.checks.written",
]


def _pytest_args(submission: Path, folder: Path, options: BatchOptions) -> list[str]:
    args = [
        str(assignment.ASSIGNMENT_ROOT / "autograder"),
        "--submission",
        str(submission),
        "--results-json",
        str(folder / "results.json"),
        "--progress-file",
        str(folder / "progress.jsonl"),
        "--oracle-cache",
        str(options.out / "oracle-cache"),
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "pytest_timeout",  # the one plugin grading uses (the others are not loaded)
        "--color=no",
        "--confinement",
        options.confinement,
    ]
    if options.live:
        args.append("--live")
    if options.allow_local_urls:
        args.append("--allow-local-urls")
    if options.no_gcloud:
        args.append("--no-gcloud")
    if options.script_timeout:
        args += ["--script-timeout", str(options.script_timeout)]
    if options.probe_image_url:
        args += ["--probe-image-url", options.probe_image_url]
    return args


def _grade_in_child(args: list[str], log_path: str, usage_path: str) -> None:
    """The grading process: a session of its own (the timeout ends it whole), output to its log."""
    os.setsid()
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.chdir(assignment.ASSIGNMENT_ROOT)
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    import pytest

    code = pytest.main(args)
    sys.stdout.flush()
    sys.stderr.flush()
    # Its own CPU time and that of everything it ran and waited for (scripts, gcloud).
    cpu = sum(
        usage.ru_utime + usage.ru_stime
        for usage in (resource.getrusage(resource.RUSAGE_SELF),
                      resource.getrusage(resource.RUSAGE_CHILDREN))
    )  # fmt: skip
    Path(usage_path).write_text(json.dumps({"cpu_seconds": round(cpu, 2)}), encoding="utf-8")
    os._exit(int(code))


_server_lock = threading.Lock()


def _grading_processes():
    """The forkserver context, its server started once with the grader imported."""
    with _server_lock:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(_PRELOAD)
        return context


def grade_one(submission: Path, options: BatchOptions) -> Outcome:
    """Grade one folder in a process of its own; never raises."""
    folder = options.out / "submissions" / submission.name
    folder.mkdir(parents=True, exist_ok=True)
    results_path = folder / "results.json"
    for stale in ("results.json", "progress.jsonl", "outcome.json", "usage.json"):
        (folder / stale).unlink(missing_ok=True)
    started = time.monotonic()
    outcome = Outcome(submission, CRASHED_STATUS)
    args = _pytest_args(submission, folder, options)
    process = None
    try:
        process = _grading_processes().Process(
            target=_grade_in_child,
            args=(args, str(folder / "log.txt"), str(folder / "usage.json")),
            daemon=False,
        )
        process.start()
    except OSError as exc:
        outcome.detail = f"could not start the grader: {exc}"
    if process is not None:
        process.join(options.timeout)
        if process.is_alive():  # not reaped, so its pid is still its own to kill
            outcome.status = TIMEOUT_STATUS
            _kill(process)
    outcome.seconds = time.monotonic() - started
    with contextlib.suppress(OSError, ValueError, KeyError):
        usage = json.loads((folder / "usage.json").read_text(encoding="utf-8"))
        outcome.cpu_seconds = float(usage["cpu_seconds"])
    if outcome.status == TIMEOUT_STATUS:
        outcome.results = partial_results(submission.name, folder, options.timeout)
        unfinished = len(outcome.results["extra_data"]["not_graded"])
        outcome.detail = (
            f"stopped after {options.timeout:g} s: {unfinished} checks not graded "
            "(no points lost: rerun this submission)"
        )
        write_results_json(results_path, outcome.results)
    elif process is not None:
        try:
            outcome.results = json.loads(results_path.read_text())
            outcome.status = GRADED_STATUS
            not_graded = outcome.results.get("extra_data", {}).get("environment_errors")
            if not_graded:
                # The grading machine failed on some items: not a grade.
                outcome.status = ENVIRONMENT_STATUS
                outcome.detail = f"{len(not_graded)} item(s) not graded; see {folder / 'log.txt'}"
        except (OSError, ValueError):
            outcome.detail = (
                f"the grader exited with status {process.exitcode} without results; "
                f"see {folder / 'log.txt'}"
            )
    outcome.answers = _answers_of(submission)
    _save_outcome(folder, outcome)
    return outcome


def partial_results(name: str, folder: Path, timeout: float) -> dict:
    """results.json of a run stopped from outside: what it recorded, the rest not graded."""
    rubric = load_rubric()
    recorded: dict[str, dict] = {}
    with contextlib.suppress(OSError):
        for line in (folder / "progress.jsonl").read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                recorded[entry["id"]] = entry
    results = []
    for item in rubric.items:
        entry = recorded.get(item.id)
        if item.kind == "manual":
            results.append(ItemResult(item, PENDING, 0.0, "graded by hand (not graded yet)"))
        elif entry is not None:
            results.append(ItemResult(item, entry["status"], entry["score"], entry["message"]))
        else:
            message = (
                f"not graded: the batch stopped this submission after {timeout:g} s, before "
                "this check ran. No points are counted either way: rerun it."
            )
            results.append(ItemResult(item, NOT_GRADED, 0.0, message))
    return results_json(rubric, results, name, {"complete": False, "timed_out": True})


def _kill(process) -> None:
    """End the grading process and everything it started, then reap it.

    A student script runs in a session of its own (script_runner), outside the
    grading process's group, so its group is found through the process tree
    and ended too, or a script that loops would outlive the timeout. The
    grading process is stopped first, so no new script starts meanwhile.
    """
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGSTOP)
    groups = {process.pid} | {group for _, group in _descendants(process.pid)}
    for group in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError, ValueError):
        process.kill()  # should it not have reached setsid() yet
    process.join(10)


def _descendants(pid: int) -> list[tuple[int, int]]:
    """(pid, process group) of every descendant of `pid`, from /proc (empty elsewhere)."""
    parents: dict[int, list[tuple[int, int]]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        parents.setdefault(int(fields[1]), []).append((int(stat.parent.name), int(fields[2])))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child[0])
    return found


def _answers_of(submission: Path) -> answers.ShortAnswers | None:
    try:
        path = load_submission(submission).path(assignment.SHORT_ANSWER_FILE)
        if path is None or path.is_symlink():
            return None
        return answers.parse(path.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return None


def _save_outcome(folder: Path, outcome: Outcome) -> None:
    saved = {
        "submission": str(outcome.submission),
        "status": outcome.status,
        "detail": outcome.detail,
        "seconds": round(outcome.seconds, 2),
        "cpu_seconds": outcome.cpu_seconds,
    }
    (folder / "outcome.json").write_text(json.dumps(saved, indent=2) + "\n", encoding="utf-8")


def saved_outcomes(out: Path) -> list[Outcome]:
    """The outcomes an earlier batch left under `out` (for `merge`)."""
    outcomes = []
    for folder in sorted((Path(out) / "submissions").glob("*/")):
        try:
            saved = json.loads((folder / "outcome.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        outcome = Outcome(Path(saved["submission"]), saved["status"], None, saved["detail"])
        outcome.seconds = saved["seconds"]
        outcome.cpu_seconds = saved.get("cpu_seconds")
        with contextlib.suppress(OSError, ValueError):
            outcome.results = json.loads((folder / "results.json").read_text(encoding="utf-8"))
        outcome.answers = _answers_of(outcome.submission)
        outcomes.append(outcome)
    return outcomes


def run_batch(folder: Path, options: BatchOptions, progress: bool = True) -> list[Outcome]:
    submissions = find_submissions(folder)
    options.out.mkdir(parents=True, exist_ok=True)
    outcomes = []
    with ThreadPoolExecutor(max_workers=max(1, options.jobs)) as pool:
        futures = [pool.submit(grade_one, s, options) for s in submissions]
        bar = tqdm(total=len(futures), unit="submission", disable=not progress, file=sys.stderr)
        for future in as_completed(futures):
            outcome = future.result()
            outcomes.append(outcome)
            bar.set_postfix_str(f"{outcome.name}: {outcome.status}", refresh=False)
            bar.update()
        bar.close()
    return sorted(outcomes, key=lambda o: o.name)


# -- the gradebook ---------------------------------------------------------------------------


@dataclass
class Row:
    """One submission in the gradebook: points given, points still to come, per question."""

    outcome: Outcome
    scores: dict[str, float]
    pending: dict[str, float]  # points not decided yet: by hand, live, checks to rerun

    @property
    def total(self) -> float:
        return sum(self.scores.values())

    @property
    def pending_total(self) -> float:
        return sum(self.pending.values())

    def final(self, question: str | None = None) -> bool:
        if self.outcome.results is None:
            return False
        return (self.pending[question] if question else self.pending_total) == 0


def gradebook_row(outcome: Outcome, hand: dict[str, float] | None = None) -> Row:
    """The row of one outcome, its hand grades ({item id: points}) merged in."""
    rubric = load_rubric()
    scores = dict.fromkeys(QUESTION_MAXIMA, 0.0)
    pending = dict.fromkeys(QUESTION_MAXIMA, 0.0)
    if outcome.results is None:  # nothing decided: everything is still to come
        return Row(outcome, scores, {q: float(m) for q, m in QUESTION_MAXIMA.items()})
    statuses = outcome.results.get("extra_data", {}).get("statuses", {})
    points = {t.get("number"): float(t.get("score", 0)) for t in outcome.results.get("tests", [])}
    for item in rubric.items:
        if item.kind == "manual" and hand and item.id in hand:
            status, score = GRADED, hand[item.id]
        else:
            status, score = statuses.get(item.id, NOT_GRADED), points.get(item.id, 0.0)
        if status in UNDECIDED:
            pending[item.question] += item.points
        else:
            scores[item.question] += score
    return Row(outcome, scores, pending)


def gradebook_rows(outcomes: list[Outcome], manual: ManualGrades | None) -> list[Row]:
    return [gradebook_row(o, manual.for_submission(o.name) if manual else None) for o in outcomes]


GRADEBOOK_HEADER = [
    "submission",
    "name",
    "student_id",
    *QUESTION_MAXIMA,
    "total",
    "pending",
    "final",
    "pending_by_question",
    "status",
    "grading_seconds",
    "detail",
]


def write_gradebook(path: Path, rows: list[Row]) -> None:
    """One row per submission. `total` counts the points given so far; `pending` the points
    still to come (hand grading, live probes, checks to rerun); `final` says whether the
    total is the submission's grade."""
    with Path(path).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(GRADEBOOK_HEADER)
        for row in rows:
            parsed = row.outcome.answers
            writer.writerow(
                [
                    row.outcome.name,
                    parsed.name if parsed else "",
                    parsed.student_id if parsed else "",
                    *(f"{row.scores[q]:g}" for q in QUESTION_MAXIMA),
                    f"{row.total:g}",
                    f"{row.pending_total:g}",
                    "yes" if row.final() else "no",
                    " ".join(f"{q}:{p:g}" for q, p in row.pending.items() if p),
                    row.outcome.status,
                    f"{row.outcome.seconds:.1f}",
                    row.outcome.detail,
                ]
            )


# -- the class report -------------------------------------------------------------------------


def _fmt(value: float) -> str:
    return f"{value:.1f}"


def class_report(
    rows: list[Row],
    pairs: list | None,
    manual: ManualGrades | None = None,
    unknown: list[str] | None = None,
) -> str:
    rubric = load_rubric()
    outcomes = [row.outcome for row in rows]
    with_results = [row for row in rows if row.outcome.results is not None]
    statuses = (GRADED_STATUS, TIMEOUT_STATUS, CRASHED_STATUS, ENVIRONMENT_STATUS)
    counts = {s: sum(o.status == s for o in outcomes) for s in statuses}
    lines = [
        "# Class report",
        "",
        f"Submissions: {len(outcomes)} (graded {counts[GRADED_STATUS]}, timed out "
        f"{counts[TIMEOUT_STATUS]} (their finished checks kept), crashed {counts[CRASHED_STATUS]}"
        + (
            f", the grading machine failed on {counts[ENVIRONMENT_STATUS]}"
            if counts[ENVIRONMENT_STATUS]
            else ""
        )
        + ")",
    ]
    if outcomes:
        seconds = [o.seconds for o in outcomes]
        cpu = [o.cpu_seconds for o in outcomes if o.cpu_seconds is not None]
        lines.append(
            f"Grading time per submission: median {statistics.median(seconds):.1f} s"
            + (f" ({statistics.median(cpu):.1f} s of CPU)" if cpu else "")
            + f", slowest {max(seconds):.1f} s ({max(outcomes, key=lambda o: o.seconds).name})"
        )
    lines += [
        "",
        "## Points per question",
        "",
        "A question counts in the mean and full marks only for the submissions where it is "
        "final: none of its points still to come (hand grading, live probes, checks to "
        "rerun). Until then the points given so far are in the last columns.",
        "",
        "| Question | Max | Final in | Mean (final) | Full marks (final) | Given so far, mean | "
        "Still to come, mean |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for question, maximum in QUESTION_MAXIMA.items():
        final = [row.scores[question] for row in with_results if row.final(question)]
        so_far = [row.scores[question] for row in with_results]
        to_come = [row.pending[question] for row in with_results]
        mean = _fmt(statistics.fmean(final)) if final else "-"
        full = f"{sum(s == maximum for s in final)}/{len(final)}" if final else "-"
        lines.append(
            f"| {question} | {maximum} | {len(final)}/{len(rows)} | {mean} | {full} | "
            f"{_fmt(statistics.fmean(so_far)) if so_far else '-'} | "
            f"{_fmt(statistics.fmean(to_come)) if to_come else '-'} |"
        )
    final_totals = [row.total for row in rows if row.final()]
    lines.append("")
    if final_totals:
        lines.append(
            f"Final totals: {len(final_totals)} of {len(rows)} submissions, mean "
            f"{_fmt(statistics.fmean(final_totals))} / {rubric.total:g}, full marks "
            f"{sum(t == rubric.total for t in final_totals)}."
        )
    waiting = [row for row in rows if not row.final()]
    if waiting:
        lines.append(
            f"Not final yet: {len(waiting)} submissions, {sum(r.pending_total for r in waiting):g}"
            f" points still to come in all; so far they have a mean of "
            f"{_fmt(statistics.fmean(r.total for r in waiting))} points given."
        )
    lines += _check_table(rubric, with_results)
    problems = [o for o in outcomes if o.status != GRADED_STATUS]
    if problems:
        lines += ["", "## To grade again", ""]
        lines += [f"- {o.name}: {o.status}: {o.detail}" for o in problems]
    lines += _manual_section(manual, unknown)
    lines += ["", "## Written answers to review for similarity", ""]
    if pairs is None:
        lines.append("Not checked in this run (--no-similarity).")
    elif pairs:
        lines += ["| Submission | Submission | Question | Similarity |", "|---|---|---|---:|"]
        lines += [f"| {a} | {b} | {q} | {s:.2f} |" for a, b, q, s in pairs]
    else:
        lines.append("No pair of answers is nearly identical.")
    return "\n".join(lines) + "\n"


def _check_table(rubric, rows: list[Row]) -> list[str]:
    lines = [
        "",
        "## Pass rate of each check",
        "",
        "Skipped: not charged, because a file it depends on fails its own checks.",
        "",
        "| Check | Question | Points | Passed | Failed | Skipped | Pending or not graded |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for item in rubric.items:
        statuses = [
            row.outcome.results.get("extra_data", {}).get("statuses", {}).get(item.id)
            for row in rows
        ]
        passed = sum(s in ("passed", "graded") for s in statuses)
        rate = f"{passed}/{len(statuses)}" + (
            f" ({100 * passed / len(statuses):.0f}%)" if statuses else ""
        )
        failed = sum(s == "failed" for s in statuses)
        skipped = sum(s == "skipped" for s in statuses)
        undecided = sum(s in UNDECIDED or s is None for s in statuses)
        lines.append(
            f"| {item.title} | {item.question} | {item.points:g} | {rate} | {failed} | "
            f"{skipped} | {undecided} |"
        )
    return lines


def _manual_section(manual: ManualGrades | None, unknown: list[str] | None) -> list[str]:
    if manual is None:
        return []
    lines = ["", "## Hand grades", "", f"Read from {manual.path}."]
    if not manual.problems and not unknown:
        lines.append("Every filled-in cell was used.")
    for problem in manual.problems:
        lines.append(f"- {problem}")
    for name in unknown or []:
        lines.append(
            f"- submission {name!r} has points in the sheet but is not in this class: "
            "nothing was taken from its row"
        )
    return lines


# -- all outputs ------------------------------------------------------------------------------


@dataclass
class Written:
    rows: list[Row]
    pairs: list | None
    sheet: Path
    manual: ManualGrades | None
    unknown: list[str]


def read_hand_grades(options: BatchOptions) -> ManualGrades | None:
    """The hand grades, read before anything is written (so nothing can overwrite them)."""
    if options.manual_grades is None:
        return None
    return read_manual_grades(options.manual_grades, load_rubric())


def write_outputs(
    outcomes: list[Outcome],
    options: BatchOptions,
    csv_path: Path,
    report_path: Path,
    manual: ManualGrades | None = None,
    progress: bool = False,
) -> Written:
    rows = gradebook_rows(outcomes, manual)
    unknown = manual.unknown_submissions({o.name for o in outcomes}) if manual else []
    pairs = None
    if options.check_similarity:
        pairs = similar_pairs(
            {o.name: o.answers.answers for o in outcomes if o.answers},
            list(assignment.WRITTEN_QUESTIONS),
            options.similarity,
            progress=progress,
        )
    write_gradebook(csv_path, rows)
    report_path.write_text(class_report(rows, pairs, manual, unknown), encoding="utf-8")
    sheet = _new_sheet_path(options.out, manual)
    answers.write_sheet(
        sheet,
        [
            answers.sheet_row(o.name, o.answers, manual.for_submission(o.name) if manual else None)
            for o in outcomes
        ],
    )
    return Written(rows, pairs, sheet, manual, unknown)


def _new_sheet_path(out: Path, manual: ManualGrades | None) -> Path:
    """Where the new grading sheet goes: never onto the sheet the hand grades came from."""
    target = Path(out) / SHEET_NAME
    if manual is not None and same_file(target, manual.path):
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = target.with_name(f"grading_sheet-{stamp}.csv")
    return target
