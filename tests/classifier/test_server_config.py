"""gunicorn settings every Flask service shares."""

import gc

from classifier.server_config import ServerSettings, gunicorn_options


def test_a_process_freezes_its_objects_before_it_exits():
    """Python's last collection of torch's objects would eat Cloud Run's 10 s stop window."""
    options = gunicorn_options(ServerSettings(), preload=True)
    assert options["worker_exit"] is options["on_exit"]
    before = gc.get_freeze_count()
    try:
        options["worker_exit"](None, None)
        assert gc.get_freeze_count() > before
    finally:
        gc.unfreeze()
