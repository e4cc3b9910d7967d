"""Q4, Q5, Q7, Q8 (graded by hand): each question answered in the short-answer file."""

import pytest

from autograder.plugin import rubric_items


@pytest.mark.parametrize("item", rubric_items("Q4", "Q5", "Q7", "Q8"))
def test_written(item, grading):
    grading(item)
