"""Q1 (46 points): the four Cloud Build configs and the scripts that submit them."""

import pytest

from autograder.plugin import rubric_items


@pytest.mark.parametrize("item", rubric_items("Q1"))
def test_q1(item, grading):
    grading(item)
