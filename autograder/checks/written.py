"""Q2, Q4, Q5, Q7, Q8 written part: only whether each question is answered."""

from __future__ import annotations

from autograder import answers, assignment
from autograder.checks import check
from autograder.context import GradingContext
from autograder.feedback import CheckFailed


def parsed_answers(ctx: GradingContext) -> answers.ShortAnswers:
    return ctx.memo(("answers",), lambda: answers.parse(ctx.text(assignment.SHORT_ANSWER_FILE)))


def template_answers(ctx: GradingContext) -> answers.ShortAnswers | None:
    path = ctx.submission.assignment_file(assignment.SHORT_ANSWER_FILE)
    if not path.is_file():
        return None
    submitted = ctx.submission.path(assignment.SHORT_ANSWER_FILE)
    if submitted is not None and submitted.resolve() == path.resolve():
        # Grading the assignment's own tree (a student's clone): the file in
        # place is the student's, not the template; its placeholder is already
        # ignored by answers.parse, which is all the comparison would find.
        return None
    return answers.parse(path.read_text(encoding="utf-8"))


@check("answered")
def answered(ctx: GradingContext, question: str) -> None:
    parsed = parsed_answers(ctx)
    where = assignment.SHORT_ANSWER_FILE
    if question not in parsed.headings:
        raise CheckFailed(
            what=f"there is no `## {question}` heading",
            expected=f"the heading `## {question}` with your answer under it",
            found="headings: " + (", ".join(sorted(parsed.headings)) or "none"),
            fix="keep the template's headings exactly as they are",
            where=where,
        )
    if question in answers.unanswered(parsed, template_answers(ctx)):
        raise CheckFailed(
            what=f"{question} is not answered",
            expected="your answer under the heading",
            found="the template's text only",
            fix="replace `_Write your answer here._` with your answer",
            where=where,
        )
