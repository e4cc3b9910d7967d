"""The pytest plugin behind `pytest autograder`: options, points, messages, outputs.

Each rubric item is one test (the test_q*.py modules parametrize over the
rubric). This plugin
  - adds the grading options and builds the one GradingContext (a fixture);
  - verifies the rubric's totals at collection;
  - runs each check under the grader's own timer (timer.py) and turns its
    outcome into the item's result (engine.result_for): CheckFailed -> a
    failure whose report is the message (no traceback), Skipped -> passed with
    its points and a "fix X first" note, Pending or a check stopped by the
    timer -> skipped, any other exception -> a short "could not check" message;
  - records each result as it is decided (--progress-file), so a run stopped
    from outside still leaves what it finished;
  - prints the per-question summary and writes results.json / a grading sheet.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from autograder import answers, assignment, extensions, sandbox
from autograder.context import GradingContext, Options
from autograder.engine import (
    ENVIRONMENT,
    ERROR,
    FAILED,
    NOT_GRADED,
    PENDING,
    ItemResult,
    check_limits,
    checked_rubric,
    evaluate,
    manual_result,
    prefetch,
    result_for,
)
from autograder.manual import (
    CellProblem,
    ManualGrades,
    ManualGradesError,
    read_manual_grades,
    same_file,
)
from autograder.report import results_json, summary_text, write_results_json
from autograder.rubric import Item, RubricError
from autograder.submission import load_submission

PLUGIN_NAME = "autograder-grader"
# pytest-timeout stays only as a last resort behind the grader's own timer.
_BACKSTOP_MARGIN = 120.0


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("autograder", "grading a submission")
    group.addoption(
        "--submission",
        metavar="PATH",
        help="the submission folder to grade: a copy of the repo or a flat upload "
        "(default: this repository)",
    )
    group.addoption("--results-json", metavar="FILE", help="write Gradescope's results.json")
    group.addoption(
        "--live", action="store_true", help="probe the URLs listed in deliverables.yaml"
    )
    group.addoption(
        "--allow-local-urls",
        action="store_true",
        help="let http loopback URLs count in deliverables.yaml (tests, local rehearsals)",
    )
    group.addoption(
        "--manual-grades", metavar="FILE.csv", help="merge hand-given points (grading sheet)"
    )
    group.addoption(
        "--grading-sheet",
        metavar="FILE.csv",
        help="write the written answers into a grading sheet for hand grading",
    )
    group.addoption(
        "--probe-image-url",
        metavar="URL",
        default=os.environ.get("AUTOGRADER_PROBE_IMAGE_URL") or None,
        help="with --live, also ask each backend to fetch this image URL (reported, never "
        "graded: the backend's point comes from uploading the grader's own photo)",
    )
    group.addoption(
        "--script-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long a student script may run",
    )
    group.addoption(
        "--check-timeout",
        type=float,
        metavar="SECONDS",
        help="stop a check that works longer than this (its waits for work it shares with "
        "other checks, such as a script's run, do not count; default: from --script-timeout)",
    )
    group.addoption(
        "--oracle-cache",
        metavar="DIR",
        default=os.environ.get("AUTOGRADER_ORACLE_CACHE"),
        help="a folder to cache gcloud's verdicts in (shared by parallel runs)",
    )
    group.addoption(
        "--no-gcloud",
        action="store_true",
        help="do not ask the real gcloud (points are the same: it only adds its words)",
    )
    group.addoption(
        "--progress-file",
        metavar="FILE",
        help="append each item's result as a JSON line as soon as it is decided",
    )
    group.addoption(
        "--confinement",
        choices=sandbox.CHOICES,
        default=os.environ.get(sandbox.ENV_LEVEL) or "auto",
        help="how student scripts are confined: auto (the strongest level whose self-test "
        "passes), bwrap, user or none",
    )


def _confinement(requested: str) -> sandbox.Confinement:
    """The sandbox level for this run, self-tested before any submission is graded."""
    try:
        return sandbox.select(requested)
    except (sandbox.SandboxError, OSError) as exc:
        raise pytest.UsageError(
            f"--confinement={requested}: this machine cannot confine student scripts that "
            f"way ({exc}). This is about the grading machine, not a submission: "
            "use --confinement=auto to grade at the strongest level that works here."
        ) from None


def _options(config: pytest.Config) -> Options:
    get = config.getoption
    return Options(
        live=get("live"),
        allow_local_urls=get("allow_local_urls"),
        probe_image_url=get("probe_image_url"),
        script_timeout=get("script_timeout"),
        oracle_cache=Path(get("oracle_cache")) if get("oracle_cache") else None,
        use_gcloud=not get("no_gcloud"),
    )


class GraderPlugin:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        try:
            self.rubric = checked_rubric()
        except RubricError as exc:
            raise pytest.UsageError(str(exc)) from None
        root = config.getoption("submission") or str(assignment.ASSIGNMENT_ROOT)
        try:
            self.submission = load_submission(Path(root))
        except FileNotFoundError as exc:
            raise pytest.UsageError(str(exc)) from None
        self.options = _options(config)
        self.manual = self._manual_grades()  # a file that is no sheet stops the run first
        self.confinement = _confinement(config.getoption("confinement"))
        self.results: dict[str, ItemResult] = {}
        self.context: GradingContext | None = None
        progress = config.getoption("progress_file")
        self.progress_file = Path(progress) if progress else None
        if self.progress_file is not None:
            self.progress_file.write_text("", encoding="utf-8")

    # -- collection --------------------------------------------------------------------
    def pytest_collection_modifyitems(self, session, config, items) -> None:
        known = {item.id for item in self.rubric.items}
        for test in items:
            rubric_item = _rubric_item(test)
            if rubric_item is None or rubric_item.id not in known:
                raise pytest.UsageError(
                    f"{test.nodeid} is not tied to a rubric item: every grading test "
                    "must be parametrized with one"
                )
            if test.get_closest_marker("timeout") is None:
                _, wall = self._limits(rubric_item)
                test.add_marker(pytest.mark.timeout(wall + _BACKSTOP_MARGIN))

    def _limits(self, item: Item) -> tuple[float, float]:
        """(working, wall-clock) limits of the item's check (engine.check_limits)."""
        limit = self.config.getoption("check_timeout") or None
        return check_limits(self.options, item, limit)

    def pytest_sessionstart(self, session) -> None:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.reportchars = ""  # the summary below replaces pytest's short summary
        if session.config.option.tbstyle == "auto":
            session.config.option.tbstyle = "no"  # messages are in the summary instead

    # -- the shared context --------------------------------------------------------------
    def grading_context(self) -> GradingContext:
        if self.context is None:
            self.context = GradingContext(self.submission, self.options)
            prefetch(self.context, wait=False)
        return self.context

    def run_item(self, item: Item) -> None:
        """What a grading test calls: decide the item, record it, and pass, fail or skip."""
        limit, _ = self._limits(item)
        result = evaluate(self.grading_context(), item, limit)
        self._record(result)
        if result.status in (FAILED, ERROR, ENVIRONMENT):
            raise _ItemFailed(result.message)
        if result.status in (PENDING, NOT_GRADED):
            pytest.skip(f"{result.status.replace('_', ' ')}: {result.message}")

    def _record(self, result: ItemResult) -> None:
        self.results[result.item.id] = result
        if self.progress_file is not None:
            line = {
                "id": result.item.id,
                "status": result.status,
                "score": result.score,
                "message": result.message,
            }
            with self.progress_file.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(line) + "\n")

    def pytest_sessionfinish(self, session) -> None:
        if self.context is not None:
            self.context.close()

    # -- outcomes ------------------------------------------------------------------------
    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        report = outcome.get_result()
        rubric_item = _rubric_item(item)
        if rubric_item is None or call.when not in ("setup", "call"):
            return
        if call.excinfo is not None and rubric_item.id not in self.results:
            # Not decided by run_item: a fixture failed, or pytest-timeout's backstop fired.
            self._record(result_for(rubric_item, call.excinfo.value))
        result = self.results.get(rubric_item.id)
        if result is None:
            return
        if result.status in (FAILED, ERROR, ENVIRONMENT):
            report.outcome = "failed"
            report.longrepr = result.message
        if call.when == "call" or call.excinfo is not None:
            report.user_properties.append(("points", result.score))

    # -- summary and outputs ---------------------------------------------------------------
    def all_results(self) -> list[ItemResult]:
        manual = self.manual.for_submission(self.submission.name) if self.manual else None
        ordered = []
        for rubric_item in self.rubric.items:
            if rubric_item.kind == "manual":
                ordered.append(manual_result(rubric_item, manual))
            elif rubric_item.id in self.results:
                ordered.append(self.results[rubric_item.id])
        return ordered

    def _manual_grades(self) -> ManualGrades | None:
        path = self.config.getoption("manual_grades")
        if not path:
            return None
        sheet = self.config.getoption("grading_sheet")
        if sheet and same_file(Path(sheet), Path(path)):
            raise pytest.UsageError(
                f"--grading-sheet {sheet} would overwrite the hand grades read from "
                "--manual-grades: write the new sheet to another file (it carries the "
                "points already given)"
            )
        try:
            grades = read_manual_grades(Path(path), self.rubric)
        except (OSError, UnicodeDecodeError, ManualGradesError) as exc:
            raise pytest.UsageError(f"--manual-grades: {exc}") from None
        if grades.single is None and self.submission.name not in grades.by_submission:
            grades.problems.append(
                CellProblem(0, "submission", self.submission.name, "has no row with points in "
                "the sheet: its hand-graded items stay pending")
            )  # fmt: skip
        return grades

    def _answers(self) -> answers.ShortAnswers | None:
        path = self.submission.path(assignment.SHORT_ANSWER_FILE)
        if path is None or path.is_symlink():
            return None
        return answers.parse(path.read_text(encoding="utf-8", errors="replace"))

    def pytest_terminal_summary(self, terminalreporter, exitstatus, config) -> None:
        results = self.all_results()
        if not self.results:
            return
        complete = len(self.results) == sum(1 for i in self.rubric.items if i.kind != "manual")
        terminalreporter.section("autograder summary")
        if not complete:
            terminalreporter.write_line(
                "(only some checks were selected: the totals cover those)", yellow=True
            )
        for line in summary_text(self.rubric, results, str(self.submission.root)).splitlines():
            terminalreporter.write_line(line)
        going_further = extensions.review(self.submission.root, self.submission.layout)
        feedback = extensions.feedback_text(*going_further)
        if feedback:
            terminalreporter.write_line("")
            for line in feedback.splitlines():
                terminalreporter.write_line(line)
        problems = [str(p) for p in self.manual.problems] if self.manual else []
        for problem in problems:
            terminalreporter.write_line(f"--manual-grades {self.manual.path}: {problem}", red=True)
        terminalreporter.write_line("")
        terminalreporter.write_line(self.confinement.describe())
        disagreements = self._disagreements()
        for line in _disagreement_lines(disagreements):
            terminalreporter.write_line(line, yellow=True)
        parsed = self._answers()
        extra = {
            "name": parsed.name if parsed else "",
            "student_id": parsed.student_id if parsed else "",
            "layout": self.submission.layout,
            "live": self.options.live,
            "complete": complete,
            "manual_grade_problems": problems,
            "confinement": {
                "level": self.confinement.level,
                "facts": dict(self.confinement.facts),
                "not_available": list(self.confinement.tried),
            },
            "gcloud": self.context is not None and self.context.oracle.available,
            "gcloud_disagreements": [d.__dict__ for d in disagreements],
        }
        results_path = config.getoption("results_json")
        if results_path:
            data = results_json(
                self.rubric,
                results,
                self.submission.name,
                extra,
                preamble=self.confinement.describe(),
            )
            if feedback:  # shown on Gradescope as a test worth nothing
                data["tests"].append(extensions.gradescope_entry(feedback))
            write_results_json(Path(results_path), data)
            terminalreporter.write_line(f"results written to {results_path}")
        sheet = config.getoption("grading_sheet")
        if sheet:
            given = self.manual.for_submission(self.submission.name) if self.manual else None
            row = answers.sheet_row(self.submission.name, parsed, given)
            answers.write_sheet(Path(sheet), [row])
            terminalreporter.write_line(f"grading sheet written to {sheet}")

    def _disagreements(self) -> list:
        if self.context is None or self.context.oracle is None:
            return []
        return list(self.context.oracle.disagreements)


def _disagreement_lines(disagreements: list) -> list[str]:
    """For the instructor: where gcloud and the grader's own checks differ (points unchanged)."""
    if not disagreements:
        return []
    lines = [
        "",
        f"gcloud and the grader's own checks disagreed {len(disagreements)} time(s); the "
        "points follow the grader's checks. Please report these (the vendored gcloud rules "
        "may need `python -m tools.gcloud_reference`):",
    ]
    for item in disagreements:
        lines.append(f"- {item.what[:200]}")
        lines.append(f"    grader: {item.project.splitlines()[0][:200] if item.project else ''}")
        lines.append(f"    gcloud: {item.gcloud.splitlines()[0][:200] if item.gcloud else ''}")
    return lines


class _ItemFailed(Exception):
    """The item failed; its message is the report (no traceback)."""


def _rubric_item(test) -> Item | None:
    callspec = getattr(test, "callspec", None)
    if callspec is None:
        return None
    value = callspec.params.get("item")
    return value if isinstance(value, Item) else None


def rubric_items(*questions: str, kinds=("auto", "live")) -> list:
    """pytest params for the gradable items of some questions, named by item id."""
    rubric = checked_rubric()
    return [
        pytest.param(item, id=item.id)
        for item in rubric.items
        if item.question in questions and item.kind in kinds
    ]
