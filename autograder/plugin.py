"""The pytest plugin behind `pytest autograder`: options, points, messages, outputs.

Each rubric item is one test (the test_q*.py modules parametrize over the
rubric). This plugin
  - adds the grading options and builds the one GradingContext (a fixture);
  - verifies the rubric's totals at collection and gives every test a timeout;
  - turns each outcome into the item's result: CheckFailed -> a failure whose
    report is the message (no traceback), Pending -> skipped "pending", any
    other exception or a timeout -> a short "could not check" message;
  - prints the per-question summary and writes results.json / a grading sheet.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from autograder import answers, assignment, extensions
from autograder.context import DEFAULT_PROBE_IMAGE_URL, GradingContext, Options
from autograder.engine import (
    ERROR,
    FAILED,
    ItemResult,
    checked_rubric,
    manual_result,
    result_for,
    run_check,
)
from autograder.feedback import CheckFailed, Pending
from autograder.manual import ManualGradesError, read_manual_grades
from autograder.report import results_json, summary_text, write_results_json
from autograder.rubric import Item, RubricError
from autograder.submission import load_submission

DEFAULT_TEST_TIMEOUT = 300.0
PLUGIN_NAME = "autograder-grader"


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
        default=os.environ.get("AUTOGRADER_PROBE_IMAGE_URL", DEFAULT_PROBE_IMAGE_URL),
        help="the image URL sent to /predict by --live",
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
        help="stop any one check after this long (default: from --script-timeout)",
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
        help="do not use the real gcloud (the schema fallback checks configs)",
    )


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
        self.manual = self._manual_grades()  # a bad sheet stops the run before any check
        self.results: dict[str, ItemResult] = {}
        self.notes: dict[str, str | None] = {}
        self.context: GradingContext | None = None

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
                test.add_marker(pytest.mark.timeout(self._timeout(rubric_item)))

    def _timeout(self, item: Item) -> float:
        if self.config.getoption("check_timeout"):
            return self.config.getoption("check_timeout")
        if item.kind == "live":
            return self.options.probe_timeout * 8 + 60
        return max(DEFAULT_TEST_TIMEOUT, self.options.script_timeout * 4 + 120)

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
            self.context.prefetch(wait=False)
        return self.context

    def run_item(self, item: Item) -> None:
        """What a grading test calls: run the item's check (raises on failure)."""
        self.notes[item.id] = run_check(self.grading_context(), item)

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
        if call.when == "setup" and call.excinfo is None:
            return
        error = call.excinfo.value if call.excinfo else None
        if isinstance(error, pytest.fail.Exception) and "Timeout" in str(error):
            error = CheckFailed(
                what="this check took too long and was stopped",
                expected=f"a result within {self._timeout(rubric_item):g} s",
                found="no result (a script or a service did not answer in time)",
                fix="make sure your scripts end on their own and services answer quickly",
            )
        result = result_for(rubric_item, error, self.notes.get(rubric_item.id))
        self.results[rubric_item.id] = result
        if isinstance(error, Pending):
            report.outcome = "skipped"
            report.longrepr = (str(item.path), 0, f"pending: {error}")
        elif result.status in (FAILED, ERROR):
            report.outcome = "failed"
            report.longrepr = result.message
        report.user_properties.append(("points", result.score))

    # -- summary and outputs ---------------------------------------------------------------
    def all_results(self) -> list[ItemResult]:
        manual = self.manual
        ordered = []
        for rubric_item in self.rubric.items:
            if rubric_item.kind == "manual":
                ordered.append(manual_result(rubric_item, manual))
            elif rubric_item.id in self.results:
                ordered.append(self.results[rubric_item.id])
        return ordered

    def _manual_grades(self) -> dict[str, float] | None:
        path = self.config.getoption("manual_grades")
        if not path:
            return None
        parsed = self._answers()
        try:
            return read_manual_grades(
                Path(path),
                self.rubric,
                submission=self.submission.name,
                student_id=parsed.student_id if parsed else "",
            )
        except (OSError, ManualGradesError) as exc:
            raise pytest.UsageError(f"--manual-grades: {exc}") from None

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
        parsed = self._answers()
        extra = {
            "name": parsed.name if parsed else "",
            "student_id": parsed.student_id if parsed else "",
            "layout": self.submission.layout,
            "live": self.options.live,
            "complete": complete,
        }
        results_path = config.getoption("results_json")
        if results_path:
            data = results_json(self.rubric, results, self.submission.name, extra)
            if feedback:  # shown on Gradescope as a test worth nothing
                data["tests"].append(extensions.gradescope_entry(feedback))
            write_results_json(Path(results_path), data)
            terminalreporter.write_line(f"results written to {results_path}")
        sheet = config.getoption("grading_sheet")
        if sheet:
            answers.write_sheet(Path(sheet), [answers.sheet_row(self.submission.name, parsed)])
            terminalreporter.write_line(f"grading sheet written to {sheet}")


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
