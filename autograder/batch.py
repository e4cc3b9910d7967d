"""Grade a whole class: every submission folder in parallel, each in its own process.

Each submission is graded by `python -m pytest autograder --submission X
--results-json ...` in a subprocess with its own timeout: a crash, a hang or a
hostile script in one submission ends that process only, never the batch.
The results.json files are then gathered into the gradebook CSV (one column
per question), a Markdown class report (each check's pass rate), a grading
sheet of the written answers, and a list of answer pairs too alike to be
independent.
"""

from __future__ import annotations

import contextlib
import csv
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from autograder import answers, assignment
from autograder.rubric import QUESTION_MAXIMA, load_rubric
from autograder.submission import load_submission

DEFAULT_TIMEOUT = 600.0
SIMILARITY_THRESHOLD = 0.9
MIN_SIMILAR_LENGTH = 40  # shorter answers ("Yes.") are alike by chance


@dataclass
class BatchOptions:
    jobs: int = 2
    timeout: float = DEFAULT_TIMEOUT
    out: Path = Path("grading-output")
    live: bool = False
    allow_local_urls: bool = False
    manual_grades: Path | None = None
    no_gcloud: bool = False
    script_timeout: float | None = None
    probe_image_url: str | None = None
    similarity: float = SIMILARITY_THRESHOLD


@dataclass
class Outcome:
    submission: Path
    status: str  # "graded", "timeout", "crashed", "environment error"
    results: dict | None = None
    detail: str = ""
    seconds: float = 0.0
    answers: answers.ShortAnswers | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.submission.name


def find_submissions(folder: Path) -> list[Path]:
    return sorted(
        p for p in Path(folder).iterdir() if p.is_dir() and not p.name.startswith((".", "_"))
    )


def _command(submission: Path, results: Path, options: BatchOptions) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "pytest",
        str(assignment.ASSIGNMENT_ROOT / "autograder"),
        "--submission",
        str(submission),
        "--results-json",
        str(results),
        "--oracle-cache",
        str(options.out / "oracle-cache"),
        "-q",
        "-p",
        "no:cacheprovider",
        "--color=no",
    ]
    if options.live:
        command.append("--live")
    if options.allow_local_urls:
        command.append("--allow-local-urls")
    if options.manual_grades:
        command += ["--manual-grades", str(options.manual_grades)]
    if options.no_gcloud:
        command.append("--no-gcloud")
    if options.script_timeout:
        command += ["--script-timeout", str(options.script_timeout)]
    if options.probe_image_url:
        command += ["--probe-image-url", options.probe_image_url]
    return command


def grade_one(submission: Path, options: BatchOptions) -> Outcome:
    """Grade one folder in a subprocess; never raises."""
    folder = options.out / "submissions" / submission.name
    folder.mkdir(parents=True, exist_ok=True)
    results_path = folder / "results.json"
    results_path.unlink(missing_ok=True)
    started = time.monotonic()
    outcome = Outcome(submission, "crashed")
    with (folder / "log.txt").open("w") as log:
        try:
            process = subprocess.Popen(
                _command(submission, results_path, options),
                cwd=assignment.ASSIGNMENT_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a timeout ends the grader and all it started
            )
        except OSError as exc:
            outcome.detail = f"could not start the grader: {exc}"
            return outcome
        try:
            process.wait(timeout=options.timeout)
        except subprocess.TimeoutExpired:
            _kill(process)
            outcome.status = "timeout"
            outcome.detail = f"grading took longer than {options.timeout:g} s and was stopped"
        finally:
            _kill(process)
    outcome.seconds = time.monotonic() - started
    if outcome.status != "timeout":
        try:
            outcome.results = json.loads(results_path.read_text())
            outcome.status = "graded"
            not_graded = outcome.results.get("extra_data", {}).get("environment_errors")
            if not_graded:
                # The grading machine failed on some items: not a grade (docs/grader-trust.md).
                outcome.status = "environment error"
                outcome.detail = f"{len(not_graded)} item(s) not graded; see {folder / 'log.txt'}"
        except (OSError, ValueError):
            outcome.detail = (
                f"the grader exited with status {process.returncode} without results; "
                f"see {folder / 'log.txt'}"
            )
    outcome.answers = _answers_of(submission)
    return outcome


def _kill(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)


def _answers_of(submission: Path) -> answers.ShortAnswers | None:
    try:
        path = load_submission(submission).path(assignment.SHORT_ANSWER_FILE)
        if path is None or path.is_symlink():
            return None
        return answers.parse(path.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return None


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


def _question_scores(outcome: Outcome) -> dict[str, float]:
    if not outcome.results:
        return dict.fromkeys(QUESTION_MAXIMA, 0.0)
    questions = outcome.results.get("extra_data", {}).get("questions", {})
    return {q: float(questions.get(q, {}).get("score", 0.0)) for q in QUESTION_MAXIMA}


def write_gradebook(path: Path, outcomes: list[Outcome]) -> None:
    header = ["submission", "name", "student_id", *QUESTION_MAXIMA, "total", "status", "detail"]
    with Path(path).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for outcome in outcomes:
            scores = _question_scores(outcome)
            parsed = outcome.answers
            writer.writerow(
                [
                    outcome.name,
                    parsed.name if parsed else "",
                    parsed.student_id if parsed else "",
                    *(f"{scores[q]:g}" for q in QUESTION_MAXIMA),
                    f"{sum(scores.values()):g}",
                    outcome.status,
                    outcome.detail,
                ]
            )


def similar_pairs(outcomes: list[Outcome], threshold: float) -> list[tuple[str, str, str, float]]:
    """(submission, submission, question, similarity) for written answers too alike."""
    pairs = []
    with_answers = [o for o in outcomes if o.answers]
    for question in assignment.WRITTEN_QUESTIONS:
        for first, second in itertools.combinations(with_answers, 2):
            a = first.answers.answers.get(question, "")
            b = second.answers.answers.get(question, "")
            if min(len(answers.normalize(a)), len(answers.normalize(b))) < MIN_SIMILAR_LENGTH:
                continue
            score = answers.similarity(a, b)
            if score >= threshold:
                pairs.append((first.name, second.name, question, score))
    return sorted(pairs, key=lambda p: (-p[3], p[2], p[0], p[1]))


def class_report(outcomes: list[Outcome], pairs: list) -> str:
    rubric = load_rubric()
    graded = [o for o in outcomes if o.status == "graded"]
    lines = [
        "# Class report",
        "",
        f"Submissions: {len(outcomes)} (graded {len(graded)}, "
        f"timed out {sum(o.status == 'timeout' for o in outcomes)}, "
        f"crashed {sum(o.status == 'crashed' for o in outcomes)})",
        "",
        "## Points per question",
        "",
        "| Question | Mean | Max possible | Full marks |",
        "|---|---:|---:|---:|",
    ]
    for question, maximum in QUESTION_MAXIMA.items():
        scores = [_question_scores(o)[question] for o in graded]
        mean = sum(scores) / len(scores) if scores else 0.0
        full = sum(s == maximum for s in scores)
        lines.append(f"| {question} | {mean:.1f} | {maximum} | {full}/{len(scores)} |")
    totals = [sum(_question_scores(o).values()) for o in graded]
    if totals:
        lines += ["", f"Mean total: {sum(totals) / len(totals):.1f} / {rubric.total:g}"]
    lines += [
        "",
        "## Pass rate of each check",
        "",
        "| Check | Question | Points | Passed | Pending |",
        "|---|---|---:|---:|---:|",
    ]
    for item in rubric.items:
        statuses = [
            o.results.get("extra_data", {}).get("statuses", {}).get(item.id) for o in graded
        ]
        passed = sum(s in ("passed", "graded") for s in statuses)
        pending = sum(s == "pending" for s in statuses)
        rate = f"{passed}/{len(statuses)}" + (
            f" ({100 * passed / len(statuses):.0f}%)" if statuses else ""
        )
        lines.append(f"| {item.title} | {item.question} | {item.points:g} | {rate} | {pending} |")
    problems = [o for o in outcomes if o.status != "graded"]
    if problems:
        lines += ["", "## Not graded", ""]
        lines += [f"- {o.name}: {o.status}: {o.detail}" for o in problems]
    lines += ["", "## Written answers to review for similarity", ""]
    if pairs:
        lines += ["| Submission | Submission | Question | Similarity |", "|---|---|---|---:|"]
        lines += [f"| {a} | {b} | {q} | {s:.2f} |" for a, b, q, s in pairs]
    else:
        lines.append("No pair of answers is nearly identical.")
    return "\n".join(lines) + "\n"


def write_outputs(
    outcomes: list[Outcome], options: BatchOptions, csv_path: Path, report_path: Path
) -> list:
    write_gradebook(csv_path, outcomes)
    pairs = similar_pairs(outcomes, options.similarity)
    report_path.write_text(class_report(outcomes, pairs), encoding="utf-8")
    answers.write_sheet(
        options.out / "grading_sheet.csv",
        [answers.sheet_row(o.name, o.answers) for o in outcomes],
    )
    return pairs
