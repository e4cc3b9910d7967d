"""The groups that take minutes run only when selected by name, whatever else -m says."""

import subprocess
import sys

import pytest

from tests.support.servers import REPO_ROOT


def collected(*args: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode in (0, 5), result.stdout + result.stderr  # 5: nothing selected
    return [line for line in result.stdout.splitlines() if "::" in line]


@pytest.mark.parametrize(
    "selection", [[], ["-m", "not slow"], ["-m", "not browser and not gcloud"]]
)
def test_the_containers_group_is_left_out_unless_named(selection):
    assert collected("tests/containers", *selection) == []


def test_naming_the_containers_group_selects_it():
    selected = collected("tests/containers", "-m", "containers")
    assert any("test_contract.py::" in test for test in selected)
    assert any("test_cloudbuild_local.py::" in test for test in selected)
