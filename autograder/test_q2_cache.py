"""Q2 (12 points): pull the last base image and build from its cache; the written part."""

import pytest

from autograder.plugin import rubric_items


@pytest.mark.parametrize("item", rubric_items("Q2"))
def test_q2(item, grading):
    grading(item)
