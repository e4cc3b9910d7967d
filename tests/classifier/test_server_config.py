"""gunicorn settings every Flask service shares."""

import gc

from gunicorn.config import Config

from classifier.server_config import ServerSettings, gunicorn_options


def test_gunicorn_accepts_every_option():
    """gunicorn validates each setting (a hook of the wrong arity stops the server)."""
    config = Config()
    for name, value in gunicorn_options(ServerSettings(), preload=True).items():
        config.set(name, value)


def test_a_process_freezes_its_objects_before_it_exits():
    """Python's last collection of torch's objects would eat Cloud Run's 10 s stop window."""
    options = gunicorn_options(ServerSettings(), preload=True)
    for hook, arguments in (("worker_exit", (None, None)), ("on_exit", (None,))):
        before = gc.get_freeze_count()
        try:
            options[hook](*arguments)
            assert gc.get_freeze_count() > before
        finally:
            gc.unfreeze()
