"""How gunicorn's processes leave: fast enough for Cloud Run's 10 s after SIGTERM."""

import gc
import subprocess
import sys
from pathlib import Path

import pytest
from gunicorn.config import Config

from webservice.server import ServerSettings, gunicorn_config, gunicorn_options

REPO_ROOT = Path(__file__).resolve().parents[2]
# How gunicorn ends a worker: worker_exit runs in a `finally` while the worker's
# SystemExit (or an error) is on its way out. The atexit line shows a teardown.
WORKER_ENDING = """
import atexit, sys
from webservice.server import ServerSettings, gunicorn_options
hook = gunicorn_options(ServerSettings())["worker_exit"]
atexit.register(lambda: print("torn down"))
try:
    {ending}
finally:
    hook(None, None)
"""


def test_gunicorn_accepts_every_option():
    """gunicorn validates each setting (a hook of the wrong arity stops the server)."""
    config = Config()
    for name, value in gunicorn_config(ServerSettings()).items():
        config.set(name, value)


def end_a_worker(ending: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", WORKER_ENDING.format(ending=ending)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("status", [0, 3])
def test_a_worker_leaves_without_the_teardown_with_its_status(status):
    """Tearing torch down would eat Cloud Run's 10 s between SIGTERM and SIGKILL."""
    ended = end_a_worker(f"sys.exit({status})")
    assert ended.returncode == status
    assert "torn down" not in ended.stdout


def test_a_worker_ending_otherwise_leaves_the_usual_way():
    ended = end_a_worker("raise RuntimeError('boom')")
    assert ended.returncode == 1
    assert "torn down" in ended.stdout
    assert "RuntimeError: boom" in ended.stderr


def test_the_master_freezes_its_objects_before_it_exits():
    hook = gunicorn_options(ServerSettings())["on_exit"]
    before = gc.get_freeze_count()
    try:
        hook(None)
        assert gc.get_freeze_count() > before
    finally:
        gc.unfreeze()
