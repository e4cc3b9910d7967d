"""gunicorn configuration for backend_v2: the same approach as backend_v1."""

import os

# Set before the app (and torch) is imported in the master: the master loads the
# default model's weights but never runs a parallel op, so no thread pool exists
# before fork.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from classifier.server_config import ServerSettings, gunicorn_options

_server = ServerSettings()
globals().update(gunicorn_options(_server, preload=True))


def post_fork(server, worker):
    from classifier.inference import configure_threads

    configure_threads(_server.threads_per_worker)


def post_worker_init(worker):
    # Warm the default model up in each worker after the fork, never in the master.
    worker.wsgi.extensions["model_service"].warm_up()
