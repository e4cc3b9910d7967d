"""Q6 (12 points): deploy v2 to Cloud Run, list its URLs, and (with --live) answer."""

import pytest

from autograder.plugin import rubric_items


@pytest.mark.parametrize("item", rubric_items("Q6"))
def test_q6(item, grading):
    grading(item)
