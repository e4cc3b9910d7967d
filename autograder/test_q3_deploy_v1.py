"""Q3 (12 points): deploy v1 to Cloud Run, list its URLs, and (with --live) answer."""

import pytest

from autograder.plugin import rubric_items


@pytest.mark.parametrize("item", rubric_items("Q3"))
def test_q3(item, grading):
    grading(item)
