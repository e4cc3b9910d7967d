"""`pytest autograder`: this folder's tests grade a submission.

pytest loads this file only when it collects autograder/ (the project's own
`pytest`, whose testpaths is tests/, never does), so the repo's test suite
never grades the repo root by accident. The work is in plugin.py.
"""

from __future__ import annotations

import pytest

from autograder.plugin import PLUGIN_NAME, GraderPlugin, add_options


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin(PLUGIN_NAME):
        config.pluginmanager.register(GraderPlugin(config), PLUGIN_NAME)


@pytest.fixture(scope="session")
def grading(pytestconfig):
    """grading(item) runs one rubric item's check against the submission."""
    return pytestconfig.pluginmanager.get_plugin(PLUGIN_NAME).run_item
